//! Units of work on smol, through core's [`Engine`]: the same lifecycle (unit table, IDs,
//! start, cancel, release with Go's removal retries, restart rules) that the `receptor` binary
//! runs under tokio, with this crate carrying out the effects.
//!
//! [`Work`] runs command work types as child processes of this process (no supervisor process
//! that outlives it, unlike the `receptor` binary; dropping the `Work` kills them): each unit
//! lives in `<dir>/<unitid>/` with the files Go uses (`status`, `stdin`, `stdout`), so a node
//! started again finds its units, and one that was still running then fails.
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

use receptor_core::os::process::process_exit;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_io::Timer;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use receptor_core::work::{
    CancelOutcome, Effect, Engine, ExtraData, Restart, STATE_FAILED, STATE_RUNNING,
    STATE_SUCCEEDED, StatusRecord, StdoutSize, WorkError, WorkType, is_complete, shlex_split,
};

/// How often running children are looked at.
const CHILD_POLL: Duration = Duration::from_millis(20);

/// A command work type.
#[derive(Debug)]
struct CommandType {
    command: String,
    params: String,
}

impl WorkType for CommandType {
    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_process(rec)
    }
}

/// One unit: its directory, its record, its child while it runs.
#[derive(Debug)]
struct Unit {
    dir: PathBuf,
    ty: Option<Arc<CommandType>>,
    rec: Mutex<StatusRecord>,
    child: Mutex<Option<Child>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Unit {
    /// Writes the record to `status` (a new file renamed over the old one, so a reader never
    /// sees half of it).
    fn save(&self) -> Result<(), String> {
        let json = lock(&self.rec).to_json();
        let tmp = self.dir.join("status.new");
        std::fs::write(&tmp, json).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, self.dir.join("status")).map_err(|e| e.to_string())
    }

    fn stdout_size(&self) -> i64 {
        std::fs::metadata(self.dir.join("stdout"))
            .map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
    }

    fn set(&self, state: i64, detail: String, stdout: Option<i64>) {
        lock(&self.rec).set_basic(state, detail, stdout);
        if let Err(e) = self.save() {
            tracing::warn!("writing status in {}: {e}", self.dir.display());
        }
    }

    /// Starts the command with `stdin` as its input and `stdout` taking its output.
    fn spawn(&self) -> Result<(), String> {
        let Some(ty) = &self.ty else {
            return Ok(());
        };
        let stdin = std::fs::File::open(self.dir.join("stdin")).map_err(|e| e.to_string())?;
        let stdout = std::fs::File::create(self.dir.join("stdout")).map_err(|e| e.to_string())?;
        let stderr = stdout.try_clone().map_err(|e| e.to_string())?;
        let args = shlex_split(&ty.params).map_err(|e| e.to_string())?;
        let child = Command::new(&ty.command)
            .args(args)
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("fork/exec {}: {e}", ty.command))?;
        let pid = i64::from(child.id());
        *lock(&self.child) = Some(child);
        self.set(STATE_RUNNING, format!("Running: PID {pid}"), Some(0));
        Ok(())
    }

    /// Records the exit of a child that has ended; whether it had.
    fn reap(&self) -> bool {
        let exited = {
            let mut child = lock(&self.child);
            match child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    *child = None;
                    Some(Ok(status))
                }
                Some(Err(e)) => {
                    *child = None;
                    Some(Err(e.to_string()))
                }
                _ => None,
            }
        };
        let Some(exited) = exited else {
            return false;
        };
        let size = Some(self.stdout_size());
        match exited.map(process_exit) {
            Ok(exit) if exit.success() => self.set(STATE_SUCCEEDED, exit.to_string(), size),
            Ok(exit) => self.set(STATE_FAILED, exit.to_string(), size),
            Err(e) => self.set(STATE_FAILED, e, size),
        }
        true
    }
}

/// The units of one node, run on smol.
#[derive(Debug)]
pub struct Work {
    dir: PathBuf,
    types: Mutex<BTreeMap<String, Arc<CommandType>>>,
    engine: Mutex<Engine<Arc<Unit>>>,
    rng: Mutex<ChaCha8Rng>,
}

impl Work {
    /// Units kept under `dir`; unit IDs drawn from an RNG seeded with `seed`.
    pub fn new(dir: PathBuf, seed: u64) -> Self {
        Self {
            dir,
            types: Mutex::new(BTreeMap::new()),
            engine: Mutex::new(Engine::new()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// Offers work type `name`: `command` run with `params` (split as a shell would).
    pub fn register(&self, name: &str, command: &str, params: &str) {
        let ty = CommandType {
            command: command.to_owned(),
            params: params.to_owned(),
        };
        lock(&self.types).insert(name.to_owned(), Arc::new(ty));
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
            let mut rec = StatusRecord::new("", Some(ExtraData::command(0, "")));
            let loaded = loaded.and_then(|d| rec.merge_json(&d).map_err(|e| e.to_string()));
            let ty = lock(&self.types).get(&rec.work_type).cloned();
            let unit = Arc::new(Unit {
                dir,
                ty: ty.clone(),
                rec: Mutex::new(rec.clone()),
                child: Mutex::new(None),
            });
            let effects = lock(&self.engine).handle_found(
                &id,
                unit.clone(),
                loaded.map(|()| &rec),
                ty.as_deref().map(|t| t as &dyn WorkType),
            );
            self.apply(&unit, effects);
        }
    }

    /// Creates a unit of `work_type` with `payload` as its input and starts it; its ID.
    pub async fn submit(&self, work_type: &str, payload: &[u8]) -> Result<String, WorkError> {
        let ty = lock(&self.types)
            .get(work_type)
            .cloned()
            .ok_or_else(|| WorkError::Worker(format!("unknown work type {work_type}")))?;
        let id = {
            let engine = lock(&self.engine);
            engine.new_unit_id(&mut *lock(&self.rng), |id| self.dir.join(id).exists())
        };
        let dir = self.dir.join(&id);
        let made =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("stdin"), payload));
        if let Err(e) = made {
            return Err(WorkError::Worker(e.to_string()));
        }
        let extra = ExtraData::command(0, ty.params.clone());
        let unit = Arc::new(Unit {
            dir,
            ty: Some(ty),
            rec: Mutex::new(StatusRecord::new(work_type, Some(extra))),
            child: Mutex::new(None),
        });
        let effects = lock(&self.engine).create(&id, unit.clone(), work_type)?;
        self.apply(&unit, effects);
        let effects = lock(&self.engine).start(&id)?;
        self.run(&unit, effects).await?;
        Ok(id)
    }

    /// The status of unit `id`.
    pub fn status(&self, id: &str) -> Option<StatusRecord> {
        let unit = lock(&self.engine).get(id).cloned()?;
        self.observe(id, &unit);
        let rec = lock(&unit.rec).clone();
        Some(rec)
    }

    /// The output of unit `id` so far.
    pub fn results(&self, id: &str) -> Option<Vec<u8>> {
        let unit = lock(&self.engine).get(id).cloned()?;
        std::fs::read(unit.dir.join("stdout")).ok()
    }

    /// Waits until unit `id` is complete (Succeeded or Failed) or Canceled; its status.
    pub async fn wait(&self, id: &str) -> Result<StatusRecord, WorkError> {
        loop {
            let rec = self
                .status(id)
                .ok_or_else(|| WorkError::UnknownUnit(id.to_owned()))?;
            if is_complete(rec.state) || rec.state == receptor_core::work::STATE_CANCELED {
                return Ok(rec);
            }
            Timer::after(CHILD_POLL).await;
        }
    }

    /// `work cancel`.
    pub async fn cancel(&self, id: &str) -> Result<(), WorkError> {
        let unit = self.unit(id)?;
        let effects = lock(&self.engine).cancel(id)?;
        self.run(&unit, effects).await.map(drop)
    }

    /// `work release` (`force`: `work force-release`).
    pub async fn release(&self, id: &str, force: bool) -> Result<(), WorkError> {
        let unit = lock(&self.engine).get(id).cloned();
        let effects = lock(&self.engine).release(id, force)?;
        match unit {
            Some(u) => self.run(&u, effects).await.map(drop),
            None => Ok(()),
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

    /// Carries out `effects` for `unit`, feeding back each answer; the request's answer.
    async fn run(&self, unit: &Arc<Unit>, effects: Vec<Effect>) -> Result<bool, WorkError> {
        let mut queue = VecDeque::from(effects);
        let mut reply = Ok(false);
        while let Some(effect) = queue.pop_front() {
            let more = match effect {
                Effect::StartWorker { unit: id } => {
                    let r = unit.spawn().map(|()| false);
                    lock(&self.engine).handle_start_result(&id, r)
                }
                Effect::CancelWorker { unit: id, release } => {
                    let outcome = cancel_child(unit).await;
                    lock(&self.engine).handle_cancel_result(&id, release, outcome)
                }
                Effect::RemoveDir {
                    unit: id,
                    force,
                    tries_left,
                    not_before,
                } => {
                    if let Some(at) = not_before {
                        Timer::at(at).await;
                    }
                    let r = match std::fs::remove_dir_all(&unit.dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                        _ => Ok(()),
                    };
                    lock(&self.engine).handle_remove_result(
                        Instant::now(),
                        &id,
                        force,
                        tries_left,
                        r,
                    )
                }
                Effect::Reply(r) => {
                    reply = r;
                    Vec::new()
                }
                other => {
                    self.apply(unit, vec![other]);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
        reply
    }

    /// Effects that need no waiting.
    fn apply(&self, unit: &Arc<Unit>, effects: Vec<Effect>) {
        let mut queue = VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
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
                }
                Effect::ReattachWorker { unit: id } => {
                    // Its process was the child of an earlier run of this node.
                    let r = Err("its process ended with the previous run".to_owned());
                    queue.extend(lock(&self.engine).handle_reattach_result(&id, r));
                }
                Effect::Forget { unit: id } => {
                    lock(&self.engine).forget(&id);
                }
                other => tracing::debug!("effect {other:?} needs the async driver"),
            }
        }
    }
}

impl Drop for Work {
    /// The units' processes end with the node.
    fn drop(&mut self) {
        let engine = lock(&self.engine);
        for (_, unit) in engine.units() {
            if let Some(mut c) = lock(&unit.child).take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Kills a running child and waits for it.
async fn cancel_child(unit: &Unit) -> CancelOutcome {
    let killed = match lock(&unit.child).as_mut() {
        Some(child) => child.kill().map_err(|e| e.to_string()),
        None => return CancelOutcome::NotRunning,
    };
    if let Err(e) = killed {
        return CancelOutcome::Failed(e);
    }
    while lock(&unit.child).is_some() {
        let gone = lock(&unit.child)
            .as_mut()
            .map_or(Ok(true), |c| c.try_wait().map(|s| s.is_some()));
        match gone {
            Ok(true) => *lock(&unit.child) = None,
            Ok(false) => {
                Timer::after(CHILD_POLL).await;
            }
            Err(e) => return CancelOutcome::Failed(e.to_string()),
        }
    }
    CancelOutcome::Stopped
}
