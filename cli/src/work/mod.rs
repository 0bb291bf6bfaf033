//! The workceptor: units of work on this node (control-and-work.md §2).
//!
//! Units live in `<datadir>/<nodeid>/<unitid>/` (`status`, `status.lock`, `stdin`, `stdout`).
//! The control service drives them: `work submit` creates a unit and streams its payload into
//! `stdin` ([`Workceptor::submit`], then [`Workceptor::start`]), `work list` / `work status`
//! read the status files, `work results` streams `stdout` ([`Workceptor::results`]), `work
//! cancel` / `work release` stop and delete units.
//!
//! The lifecycle (the unit table, IDs, start, cancel, release, what a node restart does to
//! each unit, a worker that vanished) is core's sans-IO [`Engine`]; this module carries out
//! its effects on the OS (`effects`) and reports back. Each work type is a
//! [`Worker`](worker::Worker), registered by name; a remote unit's protocol is core's
//! `RemoteUnit`, driven by `remote`.
//!
//! Work types are registered from the configuration. `work-command` units run under a
//! command-runner supervisor process (the small `receptor-command-runner` program beside
//! `receptor`, or the `receptor` binary itself with the hidden `--command-runner` entity, see
//! [`runner`]) that survives a receptor restart; on start the
//! node rescans its data directory and picks its units up again.
//!
//! A `work submit` naming another node makes a unit of the built-in type `remote` here, whose
//! start, monitoring, cancel and release talk to that node's control service over the mesh
//! (`remote`). Commands for such units can be signed (`work-signing`), and work types with
//! `verifysignature` accept commands from non-Unix connections only with a valid signature
//! (`work-verification`, see [`Keys`]).

mod client;
mod command;
mod dirwatch;
mod effects;
mod proc;
mod remote;
mod results;
pub mod runner;
pub(crate) mod statusfile;
mod worker;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use receptor_core::control::{
    ErrorReply, StatusWait, UnitStatus, WaitStep, WorkSubmit, state_name,
};
use receptor_core::os::unit_root;
use receptor_core::wire::WorkCommand;
use receptor_core::work::remote_unit::RemoteUnitConfig;
use receptor_core::work::signing::{signature_gate, signature_needed};
use receptor_core::work::{
    Engine, StatusRecord, StdoutSize, SubmitTo, is_safe_unit_id, submit_target,
};
use tokio::sync::watch;
use tracing::{debug, error, info};

pub use client::Mesh;
use effects::reply_of;
pub use receptor_core::os::work_keys::{WorkKeys as Keys, check_exists};
pub use receptor_core::work::signing::DEFAULT_TOKEN_EXPIRATION;
pub use results::ResultsStream;
pub use worker::CommandType;

use crate::config::WorkCommandCfg;

/// How long a remote unit's node may stay unreachable before the unit fails, by default: the
/// remote-unit machine's own default ([`RemoteUnitConfig`]), so the value lives in one place.
pub fn default_unreachable_timeout() -> Option<Duration> {
    RemoteUnitConfig::default().unreachable_timeout
}

/// How often waiters on a unit look again when nothing woke them, for a unit whose directory
/// is watched (a safety net: every change wakes them).
const WATCHED_FALLBACK: Duration = Duration::from_secs(1);
/// How often waiters on a unit whose directory is not watched look again (Go's interval).
const UNWATCHED_POLL: Duration = Duration::from_millis(250);

/// One unit of work: its handle in the engine's table.
pub struct Unit {
    id: String,
    dir: PathBuf,
    /// Its work type's worker.
    worker: Arc<dyn worker::Worker>,
    /// The record as last read or written; refreshed from the status file when read.
    status: Mutex<StatusRecord>,
    /// For a command unit whose supervisor is running: becomes `true` once it has exited.
    supervisor: Mutex<Option<watch::Receiver<bool>>>,
    /// Set once released; the directory is gone.
    released: AtomicBool,
    /// A remote unit's task: starting, monitoring, or telling the other node to cancel or
    /// release.
    job: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Bumped whenever the unit may have changed (status, stdout, released); waiters
    /// subscribe.
    changes: watch::Sender<u64>,
    /// Whether its directory is watched for changes (else waiters poll).
    watched: AtomicBool,
    /// Whether another process writes its status file (a command unit's supervisor): then
    /// every read and write takes the lock and reads the file. Otherwise the record here is
    /// the truth, written through to the file without reading it back.
    shared: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Unit {
    fn new(id: String, dir: PathBuf, worker: Arc<dyn worker::Worker>, work_type: &str) -> Self {
        let extra = worker.blank_extra();
        let shared = worker.shares_status();
        Self {
            id,
            dir,
            worker,
            status: Mutex::new(StatusRecord::new(work_type, extra)),
            supervisor: Mutex::new(None),
            released: AtomicBool::new(false),
            job: Mutex::new(None),
            changes: watch::Sender::new(0),
            watched: AtomicBool::new(false),
            shared,
        }
    }

    /// Wakes everyone waiting for this unit to change.
    fn touch(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every [`Unit::touch`] after this call.
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until the unit may have changed since `rx` last looked, or for the fallback
    /// poll interval.
    async fn changed(&self, rx: &mut watch::Receiver<u64>) {
        let fallback = if self.watched.load(Ordering::Relaxed) {
            WATCHED_FALLBACK
        } else {
            UNWATCHED_POLL
        };
        let _ = tokio::time::timeout(fallback, rx.changed()).await;
    }

    /// The unit ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The unit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// The status, refreshed from the status file when another process writes it (the
    /// supervisor).
    pub fn status(&self) -> StatusRecord {
        let mut rec = lock(&self.status);
        let before = rec.state;
        if self.shared
            && !self.is_released()
            && let Err(e) = statusfile::load(&self.dir, &mut rec)
        {
            debug!("[{}] reading status: {e}", self.id);
        }
        self.log_state_change(before, &rec);
        rec.clone()
    }

    /// Reads the status file after the directory watcher saw it replaced, so that a state
    /// change made by the command runner is logged when it happens.
    fn refresh_from_watch(&self) {
        let mut rec = lock(&self.status);
        let before = rec.state;
        if !self.is_released() && statusfile::load_existing(&self.dir, &mut rec).is_ok() {
            self.log_state_change(before, &rec);
        }
    }

    /// Tells the operator (Info) that the unit changed state, whoever changed it: this node,
    /// its command runner (seen when the status file is read), or the remote node.
    fn log_state_change(&self, before: i64, now: &StatusRecord) {
        if before != now.state {
            info!(
                "[{}] state {} -> {}: {}",
                self.id,
                state_name(before),
                state_name(now.state),
                now.detail
            );
        }
    }

    /// The status as `work status` / `work list` report it.
    fn reply_status(&self) -> UnitStatus {
        self.worker.reply_status(&self.status())
    }

    /// Go's `UpdateFullStatus`: read-modify-write of the status file (written through
    /// when no other process writes it); errors are logged.
    fn update(&self, change: impl FnOnce(&mut StatusRecord)) -> Result<(), String> {
        let mut rec = lock(&self.status);
        let before = rec.state;
        let r = if self.shared {
            statusfile::update(&self.dir, &mut rec, change)
        } else {
            change(&mut rec);
            statusfile::write_private(&self.dir, &rec)
        };
        self.log_state_change(before, &rec);
        drop(rec);
        self.touch();
        if let Err(e) = &r {
            error!(
                "Error updating status file {}: {e}.",
                self.dir.join("status").display()
            );
        }
        r
    }

    /// Go's `UpdateBasicStatus` (`stdout_size` `None` keeps it).
    fn update_basic(&self, state: i64, detail: impl Into<String>, stdout_size: Option<i64>) {
        let detail = detail.into();
        let _ = self.update(|r| r.set_basic(state, detail, stdout_size));
    }

    fn stdout_size(&self) -> i64 {
        statusfile::stdout_size(&self.dir)
    }

    /// A status write the engine asked for.
    fn set_status(&self, state: i64, detail: String, stdout: StdoutSize) {
        let size = match stdout {
            StdoutSize::Zero => Some(0),
            StdoutSize::Keep => None,
            StdoutSize::Current => Some(self.stdout_size()),
        };
        self.update_basic(state, detail, size);
    }
}

/// Settings for starting command-runner supervisors.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// This node's `receptor` binary, which runs a supervisor with `--command-runner` when
    /// there is no [`runner::PROGRAM`] beside it.
    pub exe: PathBuf,
    /// The log level name passed on (`--log-level <name>`).
    pub log_level: String,
}

impl RunnerSpec {
    /// The program to start a supervisor with: [`runner::PROGRAM`] from the directory of
    /// [`exe`](Self::exe) when that is an executable file, else `exe` itself. Both take the
    /// same arguments. Looked up at each start, so a node whose small program is removed (or
    /// installed) while it runs starts its next supervisor with what is there.
    pub fn program(&self) -> PathBuf {
        let beside = self
            .exe
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(runner::PROGRAM));
        match beside {
            Some(small) if runner::is_executable(&small) => small,
            _ => self.exe.clone(),
        }
    }
}

/// The units of this node and the work types it offers.
#[derive(Debug)]
pub struct Workceptor {
    node_id: String,
    data_dir: PathBuf,
    /// Registered types in registration order (the advertised order).
    types: Vec<(String, Arc<dyn worker::Worker>)>,
    /// The unit table and lifecycle.
    engine: Mutex<Engine<Arc<Unit>>>,
    rng: Mutex<ChaCha20Rng>,
    /// The node, for remote units.
    mesh: Option<Mesh>,
    /// `work-signing` / `work-verification`.
    keys: Keys,
    /// When a remote unit's node has been unreachable this long, the unit fails.
    unreachable_timeout: Option<Duration>,
    /// Change notification for unit directories (made on first use; `None` if there is
    /// none).
    dirwatch: OnceLock<Option<Arc<dirwatch::DirWatch>>>,
    /// Idle control sessions to other nodes, for remote units.
    pool: remote::Pool,
    /// Set once `data_dir` has been made and marked ([`unit_root::prepare`]).
    root_ready: OnceLock<()>,
}

impl Workceptor {
    /// A workceptor for node `node_id` keeping units under `<datadir>/<node_id>/`, offering the
    /// configured `work-command` types. Call [`Workceptor::scan`] (inside the runtime) to pick up
    /// units left by an earlier run.
    pub fn new(
        node_id: &str,
        datadir: &str,
        commands: &[WorkCommandCfg],
        runner: RunnerSpec,
    ) -> Result<Self, String> {
        let datadir = if datadir.is_empty() {
            std::env::temp_dir().join("receptor")
        } else {
            PathBuf::from(datadir)
        };
        let mut types: Vec<(String, Arc<dyn worker::Worker>)> = Vec::new();
        for c in commands {
            if c.work_type == "remote" || types.iter().any(|(t, _)| *t == c.work_type) {
                return Err(format!("work type {} already registered", c.work_type));
            }
            let ty = CommandType {
                command: c.command.clone(),
                base_params: c.params.clone(),
                allow_runtime_params: c.allow_runtime_params,
                verify_signature: c.verify_signature,
            };
            let runner = runner.clone();
            types.push((
                c.work_type.clone(),
                Arc::new(worker::CommandWorker { ty, runner }),
            ));
        }
        Ok(Self {
            node_id: node_id.to_owned(),
            data_dir: datadir.join(node_id),
            types,
            engine: Mutex::new(Engine::new()),
            rng: Mutex::new(ChaCha20Rng::from_seed(random_seed())),
            mesh: None,
            keys: Keys::default(),
            unreachable_timeout: default_unreachable_timeout(),
            dirwatch: OnceLock::new(),
            pool: remote::Pool::default(),
            root_ready: OnceLock::new(),
        })
    }

    /// Lets remote units reach other nodes through `mesh`.
    pub fn with_mesh(mut self, mesh: Mesh) -> Self {
        self.mesh = Some(mesh);
        self
    }

    /// Sets the work signing and verification keys.
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self
    }

    /// Sets how long a remote unit's node may stay unreachable before the unit fails (`None`:
    /// forever, as in Go).
    pub fn with_unreachable_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.unreachable_timeout = timeout;
        self
    }

    /// The node's unit directory, `<datadir>/<nodeid>`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The work types to advertise: `{"WorkType":..,"Secure":verifysignature}` each.
    pub fn work_commands(&self) -> Vec<WorkCommand> {
        self.types
            .iter()
            .map(|(name, t)| WorkCommand {
                work_type: name.clone(),
                secure: t.verify_signature(),
            })
            .collect()
    }

    /// Watches the unit's directory, so its waiters wake on changes instead of polling. A
    /// unit whose files only this process writes needs no watch: each write wakes them.
    fn watch_unit(&self, unit: &Arc<Unit>) {
        if !unit.shared {
            unit.watched.store(true, Ordering::Relaxed);
            return;
        }
        if let Some(w) = self.dirwatch.get_or_init(dirwatch::DirWatch::start)
            && w.add(unit)
        {
            unit.watched.store(true, Ordering::Relaxed);
        }
    }

    /// The registered (configured) work type `work_type`.
    fn registered(&self, work_type: &str) -> Option<Arc<dyn worker::Worker>> {
        self.types
            .iter()
            .find(|(t, _)| t == work_type)
            .map(|(_, w)| w.clone())
    }

    /// The worker for units of `work_type`: a registered one, the built-in `remote`, or
    /// the one for unknown types.
    fn worker_of(&self, work_type: &str) -> Arc<dyn worker::Worker> {
        if work_type == "remote" {
            return Arc::new(worker::RemoteWorker);
        }
        self.registered(work_type)
            .unwrap_or_else(|| Arc::new(worker::UnknownWorker))
    }

    fn engine(&self) -> MutexGuard<'_, Engine<Arc<Unit>>> {
        lock(&self.engine)
    }

    /// Picks up every unit directory not known yet (startup recovery, §2.3): loads its status
    /// and restarts it (a running command is monitored again; a pending one failed).
    pub fn scan(self: &Arc<Self>) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            self.scan_unit(&name);
        }
    }

    /// Loads and restarts the unit in directory `id` if it is not known yet.
    fn scan_unit(self: &Arc<Self>, id: &str) -> Option<Arc<Unit>> {
        if !is_safe_unit_id(id) {
            return None;
        }
        if let Some(u) = self.engine().get(id) {
            return Some(u.clone());
        }
        let dir = self.data_dir.join(id);
        if !dir.is_dir() || !dir.join("status").is_file() {
            return None;
        }
        // The work type decides the worker; read it with no assumptions first.
        let mut probe = StatusRecord::new("", None);
        let _ = statusfile::load(&dir, &mut probe);
        let worker = self.worker_of(&probe.work_type);
        let unit = Arc::new(Unit::new(
            id.to_owned(),
            dir.clone(),
            worker.clone(),
            &probe.work_type,
        ));
        let loaded = {
            let mut rec = lock(&unit.status);
            statusfile::load(&dir, &mut rec).map(|()| rec.clone())
        };
        let effects = {
            let mut engine = self.engine();
            if let Some(u) = engine.get(id) {
                // Found meanwhile by another lookup.
                return Some(u.clone());
            }
            let known: Option<&dyn receptor_core::work::WorkType> =
                if probe.work_type == "remote" || self.registered(&probe.work_type).is_some() {
                    Some(&*worker)
                } else {
                    None
                };
            engine.handle_found(
                id,
                unit.clone(),
                loaded.as_ref().map_err(Clone::clone),
                known,
            )
        };
        self.watch_unit(&unit);
        self.apply_sync(&unit, effects);
        Some(unit)
    }

    /// A known unit, or one found on disk (Go's `findUnit` falls back to scanning its
    /// directory).
    pub fn find(self: &Arc<Self>, id: &str) -> Option<Arc<Unit>> {
        if let Some(u) = self.engine().get(id).cloned() {
            return Some(u);
        }
        self.scan_unit(id)
    }

    fn find_or_err(self: &Arc<Self>, id: &str) -> Result<Arc<Unit>, String> {
        self.find(id).ok_or_else(|| unknown_unit(id))
    }

    /// Go's `processSignature`: a signature is needed for a `remote` unit that signs its
    /// work, or for a registered type with `verifysignature`; one that is not needed must not
    /// be sent; a needed one is verified unless the connection is on the Unix socket.
    fn check_signature(
        &self,
        work_type: &str,
        sign_work: bool,
        signature: &str,
        conn_is_unix: bool,
    ) -> Result<(), String> {
        let needed = signature_needed(work_type, sign_work, |wt| {
            self.types
                .iter()
                .any(|(t, c)| t == wt && c.verify_signature())
        });
        if signature_gate(needed, signature, conn_is_unix).map_err(|e| e.to_string())? {
            self.keys
                .verify(signature, &self.node_id, unix_now())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The signature check for a command on an existing unit.
    fn check_unit_signature(
        &self,
        unit: &Unit,
        signature: &str,
        conn_is_unix: bool,
    ) -> Result<(), String> {
        let st = unit.status();
        let sign_work = st.remote().is_some_and(|r| r.sign_work);
        self.check_signature(&st.work_type, sign_work, signature, conn_is_unix)
    }

    /// `work submit`, first half: validates the request, creates the unit and its empty `stdin`
    /// and marks it `Waiting for Input Data`. The caller copies the payload into
    /// [`Unit::stdin_path`] and then calls [`Workceptor::start`].
    pub fn submit(
        self: &Arc<Self>,
        req: &WorkSubmit,
        conn_is_unix: bool,
    ) -> Result<Arc<Unit>, String> {
        self.check_signature(&req.work_type, req.sign_work, &req.signature, conn_is_unix)?;
        let target = submit_target(req, &self.node_id).map_err(|e| e.to_string())?;
        let (worker, work_type) = if target == SubmitTo::Local {
            let worker = self
                .registered(&req.work_type)
                .ok_or_else(|| format!("unknown work type {}", req.work_type))?;
            (worker, req.work_type.as_str())
        } else {
            (self.worker_of("remote"), "remote")
        };
        let rec = worker.new_record(self, req)?;
        let (id, dir) = self.allocate_dir()?;
        let unit = Arc::new(Unit::new(id, dir.clone(), worker, work_type));
        {
            let mut st = lock(&unit.status);
            *st = rec;
            let saved = if unit.shared {
                statusfile::save(&dir, &st)
            } else {
                statusfile::write_private(&dir, &st)
            };
            if let Err(e) = saved {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
        self.created(unit)
    }

    /// A new unit is known and takes its payload.
    fn created(self: &Arc<Self>, unit: Arc<Unit>) -> Result<Arc<Unit>, String> {
        let work_type = unit.status().work_type;
        let effects = self
            .engine()
            .create(&unit.id, unit.clone(), &work_type)
            .map_err(|e| e.to_string())?;
        self.watch_unit(&unit);
        let stdin = unit.stdin_path();
        if let Err(e) = create_private(&stdin) {
            return Err(statusfile::go_path_error("open", &stdin, &e));
        }
        self.apply_sync(&unit, effects);
        Ok(unit)
    }

    /// A fresh unit ID and its directory (0700), avoiding known units and existing directories.
    /// The first one makes the node's unit directory, marked so the filesystem spreads units.
    fn allocate_dir(&self) -> Result<(String, PathBuf), String> {
        let engine = self.engine();
        let id = engine.new_unit_id(&mut *lock(&self.rng), |id| {
            std::fs::symlink_metadata(self.data_dir.join(id)).is_ok()
        });
        let dir = self.data_dir.join(&id);
        if self.root_ready.get().is_none() {
            unit_root::prepare(&self.data_dir)
                .map_err(|e| statusfile::go_path_error("mkdir", &self.data_dir, &e))?;
            let _ = self.root_ready.set(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| statusfile::go_path_error("mkdir", &dir, &e))?;
        Ok((id, dir))
    }

    /// `work submit` failed while reading the payload: the unit fails.
    pub fn payload_failed(self: &Arc<Self>, unit: &Arc<Unit>, err: &str) {
        let effects = self.engine().payload_failed(&unit.id, err);
        self.apply_sync(unit, effects);
    }

    /// `work submit`, second half: starts the worker once the payload is in. Returns whether
    /// the start is pending (`Job Submitted`: a remote node not reached yet).
    pub async fn start(self: &Arc<Self>, unit: &Arc<Unit>) -> Result<bool, String> {
        if unit.is_released() {
            return Err(unknown_unit(&unit.id));
        }
        let effects = self.engine().start(&unit.id).map_err(|e| e.to_string())?;
        self.run(unit, effects).await
    }

    /// `work list`: every known unit, or just `unit_id`.
    pub fn list(
        self: &Arc<Self>,
        unit_id: Option<&str>,
    ) -> Result<BTreeMap<String, UnitStatus>, String> {
        let units: Vec<Arc<Unit>> = match unit_id {
            Some(id) => vec![self.find_or_err(id)?],
            None => self.engine().units().map(|(_, u)| u.clone()).collect(),
        };
        Ok(units
            .iter()
            .map(|u| (u.id.clone(), u.reply_status()))
            .collect())
    }

    /// How many units there are of each (work type, state name), for metrics.
    pub fn unit_counts(&self) -> BTreeMap<(String, String), u64> {
        let units: Vec<Arc<Unit>> = self.engine().units().map(|(_, u)| u.clone()).collect();
        let mut counts = BTreeMap::new();
        for u in units {
            let st = u.status();
            *counts
                .entry((st.work_type, state_name(st.state)))
                .or_insert(0) += 1;
        }
        counts
    }

    /// `work status`.
    pub fn status(self: &Arc<Self>, unit_id: &str) -> Result<UnitStatus, String> {
        Ok(self.find_or_err(unit_id)?.reply_status())
    }

    /// `work status` long-polled (an extension our nodes use among themselves, see
    /// [`StatusWait`]): answers as [`StatusWait::step`] rules, waking on every change of the
    /// unit and at the deadline.
    pub async fn status_wait(
        self: &Arc<Self>,
        unit_id: &str,
        wait: &StatusWait,
    ) -> Result<UnitStatus, String> {
        let unit = self.find_or_err(unit_id)?;
        let mut rx = unit.subscribe();
        let now = || tokio::time::Instant::now().into_std();
        let deadline = wait.deadline(now());
        loop {
            let current = (!unit.is_released()).then(|| unit.reply_status());
            match wait.step(current, now() >= deadline) {
                WaitStep::Answer(st) => return Ok(st),
                WaitStep::Unknown => return Err(unknown_unit(unit_id)),
                WaitStep::Wait => {
                    let _ = tokio::time::timeout_at(deadline.into(), unit.changed(&mut rx)).await;
                }
            }
        }
    }

    /// `work cancel`: stops a running unit (its state becomes Canceled). Returns whether the
    /// cancel is pending (remote units only).
    pub async fn cancel(
        self: &Arc<Self>,
        unit_id: &str,
        signature: &str,
        conn_is_unix: bool,
    ) -> Result<bool, String> {
        let unit = self.find_or_err(unit_id)?;
        self.check_unit_signature(&unit, signature, conn_is_unix)?;
        let effects = self.engine().cancel(unit_id).map_err(|e| e.to_string())?;
        self.run(&unit, effects).await
    }

    /// `work release` / `work force-release`: cancels the unit and deletes its directory.
    ///
    /// An ID that could never name a unit (empty, `.`, `..`, with `/` or NUL) is refused as
    /// such. A unit that does not exist (any more) is Go's `unknown work unit` for `release`;
    /// `force-release` of it succeeds quietly (Go issue #758), so cleanup can be repeated.
    pub async fn release(
        self: &Arc<Self>,
        unit_id: &str,
        signature: &str,
        force: bool,
        conn_is_unix: bool,
    ) -> Result<bool, String> {
        let unit = if is_safe_unit_id(unit_id) {
            self.find(unit_id)
        } else {
            None
        };
        if let Some(u) = &unit {
            self.check_unit_signature(u, signature, conn_is_unix)?;
        }
        // Unsafe and unknown IDs are answered by the engine at once.
        let effects = self
            .engine()
            .release(unit_id, force)
            .map_err(|e| e.to_string())?;
        match &unit {
            Some(u) => self.run(u, effects).await,
            None => reply_of(effects),
        }
    }

    /// A released unit (its directory gone) is forgotten: lookups fail, its streams end.
    fn forget_unit(&self, unit: &Unit) {
        unit.released.store(true, Ordering::SeqCst);
        self.engine().forget(&unit.id);
        unit.touch();
    }

    /// `work results`: checks the unit and returns the stream of its stdout from `start_pos`.
    pub fn results(
        self: &Arc<Self>,
        unit_id: &str,
        start_pos: i64,
        signature: &str,
        conn_is_unix: bool,
    ) -> Result<ResultsStream, String> {
        let unit = self.find_or_err(unit_id)?;
        self.check_unit_signature(&unit, signature, conn_is_unix)?;
        Ok(ResultsStream::new(unit, start_pos))
    }
}

impl Unit {
    /// The file the payload goes to.
    pub fn stdin_path(&self) -> PathBuf {
        self.dir.join("stdin")
    }
}

/// Creates (or truncates) a file readable only by us.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// 32 bytes from the kernel's RNG, or (should that fail) from the process's hash seeds and
/// the clock.
fn random_seed() -> [u8; 32] {
    use std::io::Read;
    let mut seed = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .is_ok()
    {
        return seed;
    }
    use std::hash::{BuildHasher, Hasher};
    for chunk in seed.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
    seed
}

/// Go's `unknown work unit <id>`, worded by the reply codec its readers decode it with.
fn unknown_unit(unit_id: &str) -> String {
    ErrorReply::UnknownUnit {
        unit_id: unit_id.to_owned(),
    }
    .to_string()
}

/// The wall clock, since the Unix epoch (signatures are checked against it).
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}
