//! Units of work on smol, through core's [`Engine`]: the same lifecycle (unit table, IDs,
//! start, cancel, release with Go's removal retries, restart rules) that the `receptor` binary
//! runs under tokio, with this crate carrying out the effects.
//!
//! [`Work`] runs command work types as child processes of this process (no supervisor process
//! that outlives it, unlike the `receptor` binary; dropping the `Work` kills them): each unit
//! lives in `<dir>/<unitid>/` with the files Go uses (`status`, `stdin`, `stdout`), so a node
//! started again finds its units, and one that was still running then fails. Given to the
//! control service ([`ControlOptions::work`](crate::control::ControlOptions::work)), it answers
//! `receptorctl`'s `work` commands.
//!
//! ```no_run
//! # async fn demo() -> Result<(), receptor_core::work::WorkError> {
//! let work = receptor_smol::work::Work::new("/tmp/units".into(), 7);
//! work.register("cat", "cat", "");
//! let id = work.submit("cat", b"hello").await?;
//! let done = work.wait(&id).await?;
//! assert_eq!(done.detail, "exit status 0");
//! # Ok(()) }
//! ```

mod remote;
mod results;
#[cfg(target_os = "linux")]
mod stdout_watch;
#[cfg(test)]
mod tests;
mod unit;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_io::Timer;
use futures_lite::FutureExt as _;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use receptor_core::control::{StatusWait, UnitStatus, WaitStep, WorkSubmit, parse_go_duration};
use receptor_core::os::unit_root;
use receptor_core::os::work_keys::WorkKeys;
use receptor_core::wire::WorkCommand;
use receptor_core::work::remote::RemoteExtraData;
use receptor_core::work::remote_unit::RemoteUnitConfig;
use receptor_core::work::signing::{signature_gate, signature_needed};
use receptor_core::work::{
    Effect, Engine, ExtraData, Operation, Outcome, STATE_CANCELED, StatusRecord, StdoutSize,
    WorkError, command_params, is_complete, new_remote_data,
};

pub use results::ResultsStream;
pub use unit::CommandWorkType;
use unit::{Kind, Unit, lock};

use crate::NodeHandle;
use crate::control::ConnectTls;

/// The wall clock, since the Unix epoch (expirations, signatures).
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The units of one node, run on smol.
#[derive(Debug)]
pub struct Work {
    dir: PathBuf,
    /// Registered types in registration order (the advertised order).
    types: Mutex<Vec<(String, Arc<CommandWorkType>)>>,
    /// Shared with remote units' jobs, which forget a unit once it is released there.
    engine: Arc<Mutex<Engine<Arc<Unit>>>>,
    rng: Mutex<ChaCha8Rng>,
    /// The node, for remote units (`None`: submitting to another node is refused).
    mesh: Option<remote::Mesh>,
    /// `work-signing` (for remote units with `signwork`) and `work-verification` (for work
    /// types with `verifysignature`) key files.
    keys: WorkKeys,
    /// How long a remote unit's node may stay unreachable before the unit fails.
    unreachable_timeout: Option<Duration>,
    /// Set once `dir` has been made and marked ([`unit_root::prepare`]).
    root_ready: std::sync::OnceLock<()>,
    /// The watcher of running children's stdout, started with the first child on a node,
    /// and its reader task (ends with the `Work`).
    #[cfg(target_os = "linux")]
    stdout_watch: std::sync::OnceLock<Option<(Arc<stdout_watch::StdoutWatch>, crate::Task<()>)>>,
    /// How often long-polled `work status` requests have looked at their unit.
    #[cfg(test)]
    status_wait_looks: std::sync::atomic::AtomicU64,
    /// How often results streams have looked at their unit after waiting.
    #[cfg(test)]
    results_looks: std::sync::atomic::AtomicU64,
}

impl Work {
    /// Units kept under `dir`; unit IDs drawn from an RNG seeded with `seed`.
    pub fn new(dir: PathBuf, seed: u64) -> Self {
        Self {
            dir,
            types: Mutex::new(Vec::new()),
            engine: Arc::new(Mutex::new(Engine::new())),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            mesh: None,
            keys: WorkKeys::default(),
            unreachable_timeout: RemoteUnitConfig::default().unreachable_timeout,
            root_ready: std::sync::OnceLock::new(),
            #[cfg(target_os = "linux")]
            stdout_watch: std::sync::OnceLock::new(),
            #[cfg(test)]
            status_wait_looks: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            results_looks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How long a remote unit's node may stay unreachable before the unit fails (`None`:
    /// forever, as in Go; by default the remote-unit machine's, as `work-remote`'s
    /// `unreachabletimeout` sets it for the `receptor` binary).
    pub fn with_unreachable_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.unreachable_timeout = timeout;
        self
    }

    /// Signs the work of remote units submitted with `signwork` with `keys.signing`, and
    /// verifies the signatures of commands for work types with `verifysignature` with
    /// `keys.verifying` (Go's `work-signing` and `work-verification`; the files are read on
    /// each use, see [`check_exists`](receptor_core::os::work_keys::check_exists)).
    pub fn with_keys(mut self, keys: WorkKeys) -> Self {
        self.keys = keys;
        self
    }

    /// Lets `work submit` name another node: a unit of the built-in type `remote` here runs
    /// the work there through `node`, over mesh streams to that node's `control` service
    /// (TLS by `tlsclient` name from `tls`; without it plain streams in the insecure mode).
    /// Call before [`Work::scan`], which follows such units again.
    pub fn with_node(mut self, node: NodeHandle, tls: Option<ConnectTls>) -> Self {
        self.mesh = Some(remote::Mesh {
            node,
            tls,
            pool: Arc::default(),
        });
        self
    }

    /// Offers work type `name`: `command` run with `params` (split as a shell would), no
    /// runtime parameters allowed.
    pub fn register(&self, name: &str, command: &str, params: &str) {
        self.register_type(
            name,
            CommandWorkType {
                command: command.to_owned(),
                params: params.to_owned(),
                ..CommandWorkType::default()
            },
        );
    }

    /// Offers work type `name` (registering a name again replaces its type).
    pub fn register_type(&self, name: &str, ty: CommandWorkType) {
        let mut types = lock(&self.types);
        let ty = Arc::new(ty);
        match types.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = ty,
            None => types.push((name.to_owned(), ty)),
        }
    }

    /// What units of work type `name` run as.
    fn kind_of(&self, name: &str) -> Kind {
        if name == "remote" {
            return Kind::Remote;
        }
        self.registered(name).map_or(Kind::Unknown, Kind::Command)
    }

    fn registered(&self, name: &str) -> Option<Arc<CommandWorkType>> {
        lock(&self.types)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    }

    /// The work types to advertise (`secure`: commands for it must be signed).
    pub fn work_commands(&self) -> Vec<WorkCommand> {
        lock(&self.types)
            .iter()
            .map(|(name, ty)| WorkCommand {
                work_type: name.clone(),
                secure: ty.verify_signature,
            })
            .collect()
    }

    /// Go's signature check before a command for a unit of `work_type` runs on node
    /// `node_id` (core's [`signature_needed`] and [`signature_gate`]): `sign_work` for a
    /// `remote` unit, `verifysignature` for the others; `local`: the command came on the
    /// unix socket, trusted as it is.
    pub fn check_signature(
        &self,
        work_type: &str,
        sign_work: bool,
        signature: &str,
        local: bool,
        node_id: &str,
    ) -> Result<(), String> {
        let needed = signature_needed(work_type, sign_work, |wt| {
            self.registered(wt).is_some_and(|t| t.verify_signature)
        });
        if signature_gate(needed, signature, local).map_err(|e| e.to_string())? {
            self.keys
                .verify(signature, node_id, wall_clock())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// [`Work::check_signature`] for a command on unit `id` (an unknown unit passes: what
    /// happens to it is the engine's rule, as `force-release`'s).
    pub fn check_unit_signature(
        &self,
        id: &str,
        signature: &str,
        local: bool,
        node_id: &str,
    ) -> Result<(), String> {
        let Some(rec) = self.status(id) else {
            return Ok(());
        };
        let sign_work = rec.remote().is_some_and(|r| r.sign_work);
        self.check_signature(&rec.work_type, sign_work, signature, local, node_id)
    }

    /// Picks up the units a previous run left in the directory (Go's restart rules).
    pub fn scan(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        for id in ids {
            let dir = self.dir.join(&id);
            let loaded = std::fs::read(dir.join("status")).map_err(|e| e.to_string());
            // The work type decides the shape of ExtraData: read it with no assumptions
            // first, then over a record of that shape (as Go reads into its unit's type).
            let mut probe = StatusRecord::new("", None);
            if let Ok(d) = &loaded {
                let _ = probe.merge_json(d);
            }
            let kind = self.kind_of(&probe.work_type);
            let blank = match kind {
                Kind::Command(_) => Some(ExtraData::command(0, "")),
                Kind::Remote => Some(ExtraData::Remote(RemoteExtraData::default())),
                Kind::Unknown => None,
            };
            let mut rec = StatusRecord::new("", blank);
            let loaded = loaded.and_then(|d| rec.merge_json(&d).map_err(|e| e.to_string()));
            let unit = Arc::new(Unit::new(dir, kind.clone(), rec.clone()));
            let effects = lock(&self.engine).handle_found(
                &id,
                unit.clone(),
                loaded.map(|()| &rec),
                kind.work_type(),
            );
            self.apply(&id, &unit, effects);
        }
    }

    /// Creates a unit of `work_type` with `payload` as its input and starts it; its ID.
    pub async fn submit(&self, work_type: &str, payload: &[u8]) -> Result<String, WorkError> {
        let id = self.create(work_type, &BTreeMap::new())?;
        if let Err(e) = std::fs::write(self.dir.join(&id).join("stdin"), payload) {
            self.payload_failed(&id, &e.to_string());
            return Err(WorkError::Worker(e.to_string()));
        }
        self.start(&id).await?;
        Ok(id)
    }

    /// `work submit`, first half: a unit of `work_type` with the submitted `params` (its
    /// `params` entry is added to the configured ones where the type allows it) waits for its
    /// payload in [`Work::stdin_path`]; its ID. Then [`Work::start`] (or
    /// [`Work::payload_failed`]).
    pub fn create(
        &self,
        work_type: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<String, WorkError> {
        let ty = self
            .registered(work_type)
            .ok_or_else(|| WorkError::Worker(format!("unknown work type {work_type}")))?;
        let params = command_params(&ty.params, ty.allow_runtime_params, params)
            .map_err(|e| WorkError::Worker(e.to_string()))?;
        let rec = StatusRecord::new(work_type, Some(ExtraData::command(0, params)));
        self.create_unit(Kind::Command(ty), rec)
    }

    /// `work submit` to another node (`req.node`), first half: a unit of type `remote` here
    /// that submits the work there once its payload is in ([`Work::stdin_path`], then
    /// [`Work::start`]); its ID. Core's [`new_remote_data`] checks the request; a `ttl`
    /// (Go's duration) sets when a unit not started there by then fails, and `signwork` signs
    /// its commands with the key of [`Work::with_keys`].
    pub fn create_remote(&self, req: &WorkSubmit) -> Result<String, WorkError> {
        let Some(mesh) = &self.mesh else {
            return Err(WorkError::Worker(
                "remote work needs a running node".to_owned(),
            ));
        };
        let tls_known =
            req.tls_client.is_empty() || mesh.knows_tls(&req.tls_client, &req.node).is_ok();
        let now = wall_clock().as_nanos() as i128;
        let parse_ttl = |s: &str| parse_go_duration(s).map_err(|e| e.to_string());
        let new = new_remote_data(req, tls_known, self.keys.token_lifetime(), now, parse_ttl)
            .map_err(|e| WorkError::Worker(e.to_string()))?;
        if new.ttl_outlives_token {
            tracing::warn!("json web token expires before ttl");
        }
        let rec = StatusRecord::new("remote", Some(ExtraData::Remote(new.data)));
        self.create_unit(Kind::Remote, rec)
    }

    /// A new unit with `rec` waits for its payload.
    fn create_unit(&self, kind: Kind, rec: StatusRecord) -> Result<String, WorkError> {
        let id = {
            let engine = lock(&self.engine);
            engine.new_unit_id(&mut *lock(&self.rng), |id| self.dir.join(id).exists())
        };
        let dir = self.dir.join(&id);
        if self.root_ready.get().is_none() {
            unit_root::prepare(&self.dir).map_err(|e| WorkError::Worker(e.to_string()))?;
            let _ = self.root_ready.set(());
        }
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::File::create(dir.join("stdin")).map(drop));
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(WorkError::Worker(e.to_string()));
        }
        let work_type = rec.work_type.clone();
        let unit = Arc::new(Unit::new(dir, kind, rec));
        let effects = lock(&self.engine).create(&id, unit.clone(), &work_type)?;
        self.apply(&id, &unit, effects);
        Ok(id)
    }

    /// The file a new unit's payload goes to.
    pub fn stdin_path(&self, id: &str) -> Result<PathBuf, WorkError> {
        Ok(self.unit(id)?.stdin_path())
    }

    /// The payload of unit `id` could not be read: it fails.
    pub fn payload_failed(&self, id: &str, err: &str) {
        let Ok(unit) = self.unit(id) else { return };
        let effects = lock(&self.engine).payload_failed(id, err);
        self.apply(id, &unit, effects);
    }

    /// `work submit`, second half: starts unit `id` once its payload is in; whether the start
    /// is pending (never, for command units).
    pub async fn start(&self, id: &str) -> Result<bool, WorkError> {
        let unit = self.unit(id)?;
        let effects = lock(&self.engine).start(id)?;
        self.run(id, &unit, effects).await
    }

    /// The status of unit `id`.
    pub fn status(&self, id: &str) -> Option<StatusRecord> {
        let unit = lock(&self.engine).get(id).cloned()?;
        self.observe(id, &unit);
        let rec = lock(&unit.rec).clone();
        Some(rec)
    }

    /// `work status`: unit `id` as the reply shows it.
    pub fn unit_status(&self, id: &str) -> Result<UnitStatus, WorkError> {
        let unit = self.unit(id)?;
        self.observe(id, &unit);
        Ok(unit.reply_status())
    }

    /// `work status` long-polled (the extension our nodes use among themselves): answers as
    /// the core's [`StatusWait::step`] rules (news at once, otherwise at the capped wait),
    /// looking again whenever the unit changes (or its child exits) and at the deadline.
    pub async fn unit_status_wait(
        &self,
        id: &str,
        wait: &StatusWait,
    ) -> Result<UnitStatus, WorkError> {
        let until = wait.deadline(Instant::now());
        loop {
            // A unit released meanwhile is unknown here already.
            let unit = self.unit(id)?;
            let listener = unit.listen();
            let st = self.unit_status(id)?;
            #[cfg(test)]
            self.status_wait_looks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match wait.step(Some(st), Instant::now() >= until) {
                WaitStep::Answer(st) => return Ok(st),
                WaitStep::Unknown => return Err(WorkError::UnknownUnit(id.to_owned())),
                WaitStep::Wait => {
                    unit.changed(listener)
                        .or(async {
                            Timer::at(until).await;
                        })
                        .await;
                }
            }
        }
    }

    /// `work list`: every unit, or just `id`.
    pub fn list(&self, id: Option<&str>) -> Result<BTreeMap<String, UnitStatus>, WorkError> {
        let ids: Vec<String> = match id {
            Some(id) => vec![self.unit(id).map(|_| id.to_owned())?],
            None => lock(&self.engine)
                .units()
                .map(|(id, _)| id.to_owned())
                .collect(),
        };
        Ok(ids
            .into_iter()
            .filter_map(|id| self.unit_status(&id).ok().map(|st| (id, st)))
            .collect())
    }

    /// The output of unit `id` so far.
    pub fn results(&self, id: &str) -> Option<Vec<u8>> {
        let unit = lock(&self.engine).get(id).cloned()?;
        std::fs::read(unit.stdout_path()).ok()
    }

    /// `work results`: the output of unit `id` from byte `start_pos`, to be streamed.
    pub fn results_stream(
        self: &Arc<Self>,
        id: &str,
        start_pos: i64,
    ) -> Result<ResultsStream, WorkError> {
        self.unit(id)?;
        Ok(ResultsStream::new(self.clone(), id.to_owned(), start_pos))
    }

    /// Waits until unit `id` is complete (Succeeded or Failed) or Canceled; its status.
    pub async fn wait(&self, id: &str) -> Result<StatusRecord, WorkError> {
        loop {
            let unit = self.unit(id)?;
            let listener = unit.listen();
            let rec = self
                .status(id)
                .ok_or_else(|| WorkError::UnknownUnit(id.to_owned()))?;
            if is_complete(rec.state) || rec.state == STATE_CANCELED {
                return Ok(rec);
            }
            unit.changed(listener).await;
        }
    }

    /// `work cancel`.
    pub async fn cancel(&self, id: &str) -> Result<(), WorkError> {
        let unit = self.unit(id)?;
        let effects = lock(&self.engine).cancel(id)?;
        self.run(id, &unit, effects).await.map(drop)
    }

    /// `work cancel`; whether the other node of a remote unit has not heard yet.
    pub async fn cancel_pending(&self, id: &str) -> Result<bool, WorkError> {
        let unit = self.unit(id)?;
        let effects = lock(&self.engine).cancel(id)?;
        self.run(id, &unit, effects).await
    }

    /// `work release` (`force`: `work force-release`).
    pub async fn release(&self, id: &str, force: bool) -> Result<(), WorkError> {
        self.release_pending(id, force).await.map(drop)
    }

    /// `work release` (`force`: `work force-release`); whether the other node of a remote
    /// unit has not heard yet.
    pub async fn release_pending(&self, id: &str, force: bool) -> Result<bool, WorkError> {
        let unit = lock(&self.engine).get(id).cloned();
        let effects = lock(&self.engine).release(id, force)?;
        match unit {
            Some(u) => self.run(id, &u, effects).await,
            None => Ok(false),
        }
    }

    fn unit(&self, id: &str) -> Result<Arc<Unit>, WorkError> {
        lock(&self.engine)
            .get(id)
            .cloned()
            .ok_or_else(|| WorkError::UnknownUnit(id.to_owned()))
    }

    /// Tells the engine what the unit's child did.
    fn observe(&self, id: &str, unit: &Unit) {
        unit.reap();
        let state = lock(&unit.rec).state;
        lock(&self.engine).handle_status(id, state);
    }

    /// Carries out `effects` for `unit` through core's [`Operation`]; the request's answer.
    async fn run(
        &self,
        id: &str,
        unit: &Arc<Unit>,
        effects: Vec<Effect>,
    ) -> Result<bool, WorkError> {
        let mut op = Operation::new(effects);
        while let Some(effect) = op.poll_effect() {
            let outcome = match effect {
                Effect::StartWorker { .. } => Outcome::Started(match unit.kind {
                    Kind::Remote => remote::start(self, id, unit).await,
                    _ => unit.spawn().map(|()| {
                        self.watch_child(id, unit);
                        false
                    }),
                }),
                Effect::CancelWorker { release, .. } => Outcome::Cancelled(match unit.kind {
                    Kind::Remote => remote::cancel(self, id, unit, release).await,
                    _ => unit.cancel_child().await,
                }),
                Effect::RemoveDir { not_before, .. } => {
                    if let Some(at) = not_before {
                        Timer::at(at).await;
                    }
                    Outcome::Removed(unit.remove_dir())
                }
                other => self.do_now(id, unit, other),
            };
            self.answer(&mut op, outcome);
        }
        op.into_reply()
    }

    /// With a node to run tasks on, records a command unit's exit as soon as it happens (in
    /// its status file too, so a node killed afterwards finds it finished), and has its
    /// writes to stdout wake its results streams; without one, the exit is recorded when the
    /// unit is next looked at.
    fn watch_child(&self, id: &str, unit: &Arc<Unit>) {
        let Some(mesh) = &self.mesh else { return };
        #[cfg(target_os = "linux")]
        if let Some(watched) = self
            .stdout_watch
            .get_or_init(|| stdout_watch::StdoutWatch::start(&mesh.node))
            .as_ref()
            .and_then(|(w, _)| w.watch(unit))
        {
            unit.set_watched(watched);
        }
        let (id, unit, engine) = (id.to_owned(), unit.clone(), self.engine.clone());
        let watch = async move {
            while unit.has_child() {
                // No news from outside here: this only ends once the child exits.
                unit.changed(unit.listen()).await;
                if unit.reap() {
                    let state = lock(&unit.rec).state;
                    lock(&engine).handle_status(&id, state);
                }
            }
        };
        mesh.node.spawn(watch).detach();
    }

    /// Carries out effects that need no waiting (those of creating or finding a unit).
    fn apply(&self, id: &str, unit: &Arc<Unit>, effects: Vec<Effect>) {
        let mut op = Operation::new(effects);
        while let Some(effect) = op.poll_effect() {
            let outcome = self.do_now(id, unit, effect);
            self.answer(&mut op, outcome);
        }
    }

    /// One effect that needs no waiting; how it went.
    fn do_now(&self, id: &str, unit: &Arc<Unit>, effect: Effect) -> Outcome {
        match effect {
            Effect::SetStatus {
                state,
                detail,
                stdout,
                ..
            } => {
                let size = match stdout {
                    StdoutSize::Zero => Some(0),
                    StdoutSize::Keep => None,
                    StdoutSize::Current => Some(unit.stdout_size()),
                };
                unit.set(state, detail, size);
                Outcome::Done
            }
            Effect::ReattachWorker { .. } => Outcome::Reattached(match unit.kind {
                Kind::Remote => remote::restart(self, id, unit),
                // Its process was the child of an earlier run of this node.
                _ => Err("its process ended with the previous run".to_owned()),
            }),
            // The engine has dropped it already; its handle goes with the last reference.
            // Its waiters find it unknown now.
            Effect::Forget { .. } => {
                unit.notify();
                Outcome::Done
            }
            other => {
                tracing::debug!("effect {other:?} needs the async driver");
                Outcome::Done
            }
        }
    }

    fn answer(&self, op: &mut Operation, outcome: Outcome) {
        if let Err(e) = op.handle_outcome(&mut lock(&self.engine), Instant::now(), outcome) {
            tracing::warn!("{e}");
        }
    }
}

impl Drop for Work {
    /// The units' processes end with the node.
    fn drop(&mut self) {
        // Not under the engine's lock: a remote unit's job takes it while acting.
        let units: Vec<Arc<Unit>> = lock(&self.engine).units().map(|(_, u)| u.clone()).collect();
        for unit in units {
            unit.kill_now();
        }
    }
}
