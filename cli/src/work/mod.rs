//! The workceptor: units of work on this node (control-and-work.md §2).
//!
//! Units live in `<datadir>/<nodeid>/<unitid>/` (`status`, `status.lock`, `stdin`, `stdout`).
//! The control service drives them: `work submit` creates a unit and streams its payload into
//! `stdin` ([`Workceptor::submit`], then [`Workceptor::start`]), `work list` / `work status`
//! read the status files, `work results` streams `stdout` ([`Workceptor::results`]), `work
//! cancel` / `work release` stop and delete units.
//!
//! Work types are registered from the configuration. `work-command` units run under a
//! command-runner supervisor process (the `receptor` binary itself with the hidden
//! `--command-runner` entity, see [`runner`]) that survives a receptor restart; on start the
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
mod proc;
mod remote;
mod results;
pub mod runner;
mod signing;
pub(crate) mod statusfile;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use receptor_core::control::{ErrorReply, UnitStatus, WorkSubmit, state_name};
use receptor_core::wire::WorkCommand;
use receptor_core::work::{
    ExtraData, STATE_FAILED, STATE_PENDING, StatusRecord, command_params, generate_unit_id,
    is_safe_unit_id,
};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

pub use client::Mesh;
pub use results::ResultsStream;
pub use signing::{DEFAULT_TOKEN_EXPIRATION, Keys, check_exists};

use crate::config::WorkCommandCfg;

/// A registered `work-command` type.
#[derive(Debug, Clone)]
pub struct CommandType {
    /// The command to run.
    pub command: String,
    /// Configured parameters, before any runtime ones.
    pub base_params: String,
    /// Whether submitters may add parameters.
    pub allow_runtime_params: bool,
    /// Whether submissions from non-Unix connections must be signed.
    pub verify_signature: bool,
}

/// What runs a unit. `Remote` units run on another node. Units found on disk whose work type
/// is not registered are `Unknown`: listed (with `ExtraData` `"Unknown WorkType"`), never
/// started or cancelled, deleted on release.
#[derive(Debug, Clone)]
enum UnitKind {
    Command(CommandType),
    Remote,
    Unknown,
}

/// How long a remote unit's node may stay unreachable before the unit fails, by default.
pub const DEFAULT_UNREACHABLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How often waiters on a unit look again when nothing woke them, for a unit whose directory
/// is watched (a safety net: every change wakes them).
const WATCHED_FALLBACK: Duration = Duration::from_secs(1);
/// How often waiters on a unit whose directory is not watched look again (Go's interval).
const UNWATCHED_POLL: Duration = Duration::from_millis(250);
/// Longest wait of a long-polled `work status` (the extension our nodes use among themselves).
const STATUS_WAIT_MAX: Duration = Duration::from_secs(30);

/// One unit of work.
#[derive(Debug)]
pub struct Unit {
    id: String,
    dir: PathBuf,
    kind: UnitKind,
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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Unit {
    fn new(id: String, dir: PathBuf, kind: UnitKind, work_type: &str) -> Self {
        let extra = match &kind {
            UnitKind::Command(_) => Some(ExtraData::command(0, "")),
            UnitKind::Remote => Some(ExtraData::Remote(Default::default())),
            UnitKind::Unknown => None,
        };
        Self {
            id,
            dir,
            kind,
            status: Mutex::new(StatusRecord::new(work_type, extra)),
            supervisor: Mutex::new(None),
            released: AtomicBool::new(false),
            job: Mutex::new(None),
            changes: watch::Sender::new(0),
            watched: AtomicBool::new(false),
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

    /// The status, refreshed from the status file (which the supervisor keeps writing).
    pub fn status(&self) -> StatusRecord {
        let mut rec = lock(&self.status);
        let before = rec.state;
        if !self.is_released()
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
        let mut u = self.status().to_unit_status();
        if matches!(self.kind, UnitKind::Unknown) {
            u.extra_data = Some("\"Unknown WorkType\"".to_owned());
        }
        u
    }

    /// Go's `UpdateFullStatus`: read-modify-write of the status file; errors are logged.
    fn update(&self, change: impl FnOnce(&mut StatusRecord)) -> Result<(), String> {
        let mut rec = lock(&self.status);
        let before = rec.state;
        let r = statusfile::update(&self.dir, &mut rec, change);
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
}

/// Settings for starting command-runner supervisors.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// The `receptor` binary to run with `--command-runner`.
    pub exe: PathBuf,
    /// The log level name passed on (`--log-level <name>`).
    pub log_level: String,
}

/// The units of this node and the work types it offers.
#[derive(Debug)]
pub struct Workceptor {
    node_id: String,
    data_dir: PathBuf,
    /// Registered types in registration order (the advertised order).
    types: Vec<(String, CommandType)>,
    units: Mutex<BTreeMap<String, Arc<Unit>>>,
    runner: RunnerSpec,
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
        let mut types: Vec<(String, CommandType)> = Vec::new();
        for c in commands {
            if c.work_type == "remote" || types.iter().any(|(t, _)| *t == c.work_type) {
                return Err(format!("work type {} already registered", c.work_type));
            }
            types.push((
                c.work_type.clone(),
                CommandType {
                    command: c.command.clone(),
                    base_params: c.params.clone(),
                    allow_runtime_params: c.allow_runtime_params,
                    verify_signature: c.verify_signature,
                },
            ));
        }
        Ok(Self {
            node_id: node_id.to_owned(),
            data_dir: datadir.join(node_id),
            types,
            units: Mutex::new(BTreeMap::new()),
            runner,
            rng: Mutex::new(ChaCha20Rng::from_seed(random_seed())),
            mesh: None,
            keys: Keys::default(),
            unreachable_timeout: Some(DEFAULT_UNREACHABLE_TIMEOUT),
            dirwatch: OnceLock::new(),
            pool: remote::Pool::default(),
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
                secure: t.verify_signature,
            })
            .collect()
    }

    /// Watches the unit's directory, so its waiters wake on changes instead of polling.
    fn watch_unit(&self, unit: &Arc<Unit>) {
        if let Some(w) = self.dirwatch.get_or_init(dirwatch::DirWatch::start)
            && w.add(unit)
        {
            unit.watched.store(true, Ordering::Relaxed);
        }
    }

    fn kind_of(&self, work_type: &str) -> UnitKind {
        if work_type == "remote" {
            return UnitKind::Remote;
        }
        self.types
            .iter()
            .find(|(t, _)| t == work_type)
            .map_or(UnitKind::Unknown, |(_, c)| UnitKind::Command(c.clone()))
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
        if let Some(u) = lock(&self.units).get(id) {
            return Some(u.clone());
        }
        let dir = self.data_dir.join(id);
        if !dir.is_dir() || !dir.join("status").is_file() {
            return None;
        }
        // The work type decides the kind; read it with no assumptions first.
        let mut probe = StatusRecord::new("", None);
        let _ = statusfile::load(&dir, &mut probe);
        let unit = Arc::new(Unit::new(
            id.to_owned(),
            dir.clone(),
            self.kind_of(&probe.work_type),
            &probe.work_type,
        ));
        {
            let mut rec = lock(&unit.status);
            if let Err(e) = statusfile::load(&dir, &mut rec) {
                drop(rec);
                warn!("Failed to restart worker {}: {e}", dir.display());
                unit.update_basic(
                    STATE_FAILED,
                    format!("Failed to restart: {e}"),
                    Some(unit.stdout_size()),
                );
            }
        }
        lock(&self.units).insert(id.to_owned(), unit.clone());
        self.watch_unit(&unit);
        match &unit.kind {
            UnitKind::Command(_) => command::restart(&unit),
            UnitKind::Remote => {
                if let Err(e) = remote::restart(self, &unit) {
                    warn!("Failed to restart worker {}: {e}", dir.display());
                    unit.update_basic(
                        STATE_FAILED,
                        format!("Failed to restart: {e}"),
                        Some(unit.stdout_size()),
                    );
                }
            }
            UnitKind::Unknown => {}
        }
        Some(unit)
    }

    /// A known unit, or one found on disk (Go's `findUnit` falls back to scanning its
    /// directory).
    pub fn find(self: &Arc<Self>, id: &str) -> Option<Arc<Unit>> {
        if let Some(u) = lock(&self.units).get(id) {
            return Some(u.clone());
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
        let needed = if work_type == "remote" {
            sign_work
        } else {
            self.types
                .iter()
                .any(|(t, c)| t == work_type && c.verify_signature)
        };
        if !needed && !signature.is_empty() {
            return Err("work type did not expect a signature".to_owned());
        }
        if needed && !conn_is_unix {
            self.keys.verify(signature, &self.node_id)?;
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

    fn is_local(&self, node: &str) -> bool {
        node == self.node_id || node.eq_ignore_ascii_case("localhost")
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
        if !self.is_local(&req.node) {
            return self.submit_remote(req);
        }
        if !req.ttl.is_empty() {
            return Err("ttl option is intended for remote work only".to_owned());
        }
        let UnitKind::Command(ct) = self.kind_of(&req.work_type) else {
            return Err(format!("unknown work type {}", req.work_type));
        };
        let params = command_params(&ct.base_params, ct.allow_runtime_params, &req.params)
            .map_err(|e| e.to_string())?;
        let (id, dir) = self.allocate_dir()?;
        let unit = Arc::new(Unit::new(
            id.clone(),
            dir.clone(),
            UnitKind::Command(ct),
            &req.work_type,
        ));
        {
            let mut rec = lock(&unit.status);
            rec.extra_data = Some(ExtraData::command(0, params));
            if let Err(e) = statusfile::save(&dir, &rec) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
        self.created(unit)
    }

    /// `work submit` to another node: a local `remote` unit.
    fn submit_remote(self: &Arc<Self>, req: &WorkSubmit) -> Result<Arc<Unit>, String> {
        let red = remote::new_data(
            self,
            &req.node,
            &req.work_type,
            &req.tls_client,
            &req.ttl,
            req.sign_work,
            &req.params,
        )?;
        let (id, dir) = self.allocate_dir()?;
        let unit = Arc::new(Unit::new(id, dir.clone(), UnitKind::Remote, "remote"));
        {
            let mut rec = lock(&unit.status);
            *rec = remote::new_record(red);
            if let Err(e) = statusfile::save(&dir, &rec) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
        self.created(unit)
    }

    /// A new unit is known and takes its payload.
    fn created(&self, unit: Arc<Unit>) -> Result<Arc<Unit>, String> {
        lock(&self.units).insert(unit.id.clone(), unit.clone());
        self.watch_unit(&unit);
        let stdin = unit.stdin_path();
        if let Err(e) = create_private(&stdin) {
            return Err(statusfile::go_path_error("open", &stdin, &e));
        }
        unit.update_basic(STATE_PENDING, "Waiting for Input Data", Some(0));
        Ok(unit)
    }

    /// A fresh unit ID and its directory (0700), avoiding known units and existing directories.
    fn allocate_dir(&self) -> Result<(String, PathBuf), String> {
        let units = lock(&self.units);
        loop {
            let id = generate_unit_id(&mut *lock(&self.rng));
            let dir = self.data_dir.join(&id);
            if units.contains_key(&id) || std::fs::symlink_metadata(&dir).is_ok() {
                continue;
            }
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| statusfile::go_path_error("mkdir", &dir, &e))?;
            return Ok((id, dir));
        }
    }

    /// `work submit` failed while reading the payload: the unit fails.
    pub fn payload_failed(&self, unit: &Unit, err: &str) {
        unit.update_basic(
            STATE_FAILED,
            format!("Error reading input data: {err}"),
            Some(0),
        );
    }

    /// `work submit`, second half: starts the worker once the payload is in. Returns whether
    /// the start is pending (`Job Submitted`: a remote node not reached yet).
    pub async fn start(self: &Arc<Self>, unit: &Arc<Unit>) -> Result<bool, String> {
        if unit.is_released() {
            return Err(unknown_unit(&unit.id));
        }
        unit.update_basic(STATE_PENDING, "Starting Worker", Some(0));
        let r = match &unit.kind {
            UnitKind::Command(_) => command::start(unit, &self.runner).map(|()| false),
            UnitKind::Remote => remote::start(self, unit).await,
            UnitKind::Unknown => Ok(false),
        };
        if let Err(e) = &r {
            unit.update_basic(STATE_FAILED, format!("Error starting worker: {e}"), Some(0));
        }
        r
    }

    /// `work list`: every known unit, or just `unit_id`.
    pub fn list(
        self: &Arc<Self>,
        unit_id: Option<&str>,
    ) -> Result<BTreeMap<String, UnitStatus>, String> {
        let units: Vec<Arc<Unit>> = match unit_id {
            Some(id) => vec![self.find_or_err(id)?],
            None => lock(&self.units).values().cloned().collect(),
        };
        Ok(units
            .iter()
            .map(|u| (u.id.clone(), u.reply_status()))
            .collect())
    }

    /// How many units there are of each (work type, state name), for metrics.
    pub fn unit_counts(&self) -> BTreeMap<(String, String), u64> {
        let units: Vec<Arc<Unit>> = lock(&self.units).values().cloned().collect();
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
    /// [`receptor_core::control::StatusWait`]): answers once the unit's State or Detail differ
    /// from `known`, or once `wait` has passed (at most [`STATUS_WAIT_MAX`]); a unit released
    /// meanwhile is unknown.
    pub async fn status_wait(
        self: &Arc<Self>,
        unit_id: &str,
        known_state: i64,
        known_detail: &str,
        wait: Duration,
    ) -> Result<UnitStatus, String> {
        let unit = self.find_or_err(unit_id)?;
        let mut rx = unit.subscribe();
        let until = tokio::time::Instant::now() + wait.min(STATUS_WAIT_MAX);
        loop {
            if unit.is_released() {
                return Err(unknown_unit(unit_id));
            }
            let st = unit.reply_status();
            if st.state != known_state || st.detail != known_detail {
                return Ok(st);
            }
            if tokio::time::timeout_at(until, unit.changed(&mut rx))
                .await
                .is_err()
            {
                return Ok(unit.reply_status());
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
        if let UnitKind::Remote = unit.kind {
            return remote::cancel_or_release(self, &unit, false, false).await;
        }
        cancel_unit(&unit).await.map(|()| false)
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
        if !is_safe_unit_id(unit_id) {
            return Err(format!(
                "invalid work unit ID {unit_id:?}: a unit ID is one path component (not empty, \
                 . or .., no / or NUL)"
            ));
        }
        let Some(unit) = self.find(unit_id) else {
            return if force {
                Ok(false)
            } else {
                Err(unknown_unit(unit_id))
            };
        };
        self.check_unit_signature(&unit, signature, conn_is_unix)?;
        if let UnitKind::Remote = unit.kind {
            return remote::cancel_or_release(self, &unit, true, force).await;
        }
        if let Err(e) = cancel_unit(&unit).await
            && !force
        {
            return Err(e);
        }
        let mut attempts = 3;
        loop {
            match std::fs::remove_dir_all(&unit.dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if force => break,
                Err(e) => {
                    attempts -= 1;
                    if attempts == 0 {
                        error!("Error removing directory for {unit_id}. No more retries left.");
                        return Err(statusfile::go_path_error("unlinkat", &unit.dir, &e));
                    }
                    warn!(
                        "Error removing directory for {unit_id}. Retrying {attempts} more times."
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.forget_unit(&unit);
        Ok(false)
    }

    /// A released unit (its directory gone) is forgotten: lookups fail, its streams end.
    fn forget_unit(&self, unit: &Unit) {
        unit.released.store(true, Ordering::SeqCst);
        lock(&self.units).remove(&unit.id);
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

async fn cancel_unit(unit: &Arc<Unit>) -> Result<(), String> {
    match &unit.kind {
        UnitKind::Command(_) => command::cancel(unit).await,
        UnitKind::Remote | UnitKind::Unknown => Ok(()),
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
