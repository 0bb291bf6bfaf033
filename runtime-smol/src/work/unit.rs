//! One unit of work on smol: its directory, its status record, its child process while it
//! runs. The files are Go's (`status`, `stdin`, `stdout`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_executor::Task;
use async_io::Timer;
use event_listener::{Event, EventListener};
use futures_lite::FutureExt as _;
use receptor_core::control::UnitStatus;
use receptor_core::os::process::process_exit;
use receptor_core::work::{
    CancelOutcome, ExtraData, Restart, STATE_FAILED, STATE_RUNNING, STATE_SUCCEEDED, StatusRecord,
    WorkType, shlex_split,
};

/// How often a running child is looked at where its exit cannot wake anyone (no pidfd: not
/// Linux, or a kernel before 5.3).
pub(super) const CHILD_POLL: Duration = Duration::from_millis(20);

/// A command work type (Go's `work-command`).
#[derive(Debug, Clone, Default)]
pub struct CommandWorkType {
    /// The command to run.
    pub command: String,
    /// Its configured parameters (split as a shell would), before any runtime ones.
    pub params: String,
    /// Whether submitters may add parameters (`allowruntimeparams`).
    pub allow_runtime_params: bool,
    /// Whether commands for its units from other nodes must be signed (`verifysignature`;
    /// see [`Work::with_keys`](super::Work::with_keys)).
    pub verify_signature: bool,
}

impl WorkType for CommandWorkType {
    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_process(rec)
    }
}

/// Go's `remote` work type: the work runs on another node ([`super::remote`]).
#[derive(Debug)]
pub(super) struct RemoteType;

impl WorkType for RemoteType {
    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_remote(rec)
    }
}

/// What a unit runs as.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// A registered command type: a child process here.
    Command(Arc<CommandWorkType>),
    /// A `remote` unit: a [`super::remote`] job drives it.
    Remote,
    /// A type not registered here: listed, never started.
    Unknown,
}

impl Kind {
    /// Its rules, for the engine (`None`: unknown).
    pub(super) fn work_type(&self) -> Option<&dyn WorkType> {
        match self {
            Self::Command(c) => Some(&**c),
            Self::Remote => Some(&RemoteType),
            Self::Unknown => None,
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A command unit's running child.
#[derive(Debug)]
pub(super) struct Running {
    child: Child,
    /// Readable once the child has exited (Linux's pidfd, in the reactor); `None`: its exit
    /// is looked for every [`CHILD_POLL`].
    exit: Option<Arc<ExitFd>>,
    /// Its stdout watched for writes (results streams need not poll it).
    watched: Option<Watched>,
    /// Killed by [`Unit::cancel_child`], which reaps it: its exit is no news for the record
    /// (the unit is about to be Canceled, not Failed by a signal).
    killed: bool,
}

#[cfg(target_os = "linux")]
type Watched = super::stdout_watch::Watched;
#[cfg(not(target_os = "linux"))]
type Watched = std::convert::Infallible;

#[cfg(target_os = "linux")]
type ExitFd = async_io::Async<std::os::fd::OwnedFd>;
#[cfg(not(target_os = "linux"))]
type ExitFd = ();

impl Running {
    fn new(child: Child) -> Self {
        let exit = exit_fd(&child).map(Arc::new);
        Self {
            child,
            exit,
            watched: None,
            killed: false,
        }
    }
}

/// A descriptor that turns readable when `child` exits (`None` where there is none).
#[cfg(target_os = "linux")]
fn exit_fd(child: &Child) -> Option<ExitFd> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    // Not reaped yet (only the unit reaps it), so the PID is still this child's.
    let pid = Pid::from_raw(i32::try_from(child.id()).ok()?)?;
    let fd = pidfd_open(pid, PidfdFlags::empty()).ok()?;
    async_io::Async::new(fd).ok()
}

#[cfg(not(target_os = "linux"))]
fn exit_fd(_: &Child) -> Option<ExitFd> {
    None
}

/// Until `exit` reports the child gone (or, without one, [`CHILD_POLL`]).
async fn exited(exit: Option<Arc<ExitFd>>) {
    #[cfg(target_os = "linux")]
    if let Some(fd) = exit
        && fd.readable().await.is_ok()
    {
        return;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = exit;
    Timer::after(CHILD_POLL).await;
}

/// One unit: its directory, its record, its child while it runs.
#[derive(Debug)]
pub(super) struct Unit {
    pub(super) dir: PathBuf,
    pub(super) kind: Kind,
    pub(super) rec: Mutex<StatusRecord>,
    pub(super) child: Mutex<Option<Running>>,
    /// Notified whenever the record changes, the unit's stdout grows by our own writes (a
    /// remote unit's), or the engine forgets the unit ([`Unit::notify`]). A child's exit and
    /// its writes to stdout come from outside: see [`Unit::changed`].
    changed: Event,
    /// Notified when the unit's stdout grows ([`Unit::notify_output`]).
    grew: Event,
    /// A remote unit's job (start, follow, cancel or release); dropping it stops it.
    pub(super) job: Mutex<Option<Task<()>>>,
    /// Which job may act on the unit: bumped whenever one is stopped, and held by a job while
    /// it carries out its machine's outputs, so a job being cancelled (cancellation takes
    /// effect at its next await) never writes after its successor started.
    pub(super) job_gen: Mutex<u64>,
}

impl Unit {
    pub(super) fn new(dir: PathBuf, kind: Kind, rec: StatusRecord) -> Self {
        Self {
            dir,
            kind,
            rec: Mutex::new(rec),
            child: Mutex::new(None),
            changed: Event::new(),
            grew: Event::new(),
            job: Mutex::new(None),
            job_gen: Mutex::new(0),
        }
    }

    /// Wakes everyone waiting for the unit to change.
    pub(super) fn notify(&self) {
        self.changed.notify(usize::MAX);
    }

    /// A listener for the next [`Unit::notify`]: take it before looking at the unit, then
    /// await it with [`Unit::changed`], so that no change between the look and the wait is
    /// missed.
    pub(super) fn listen(&self) -> EventListener {
        self.changed.listen()
    }

    /// Until `listener` hears of a change, or the running child (if any) exits. Its exit is
    /// recorded by whoever reaps it ([`Unit::reap`]): a waiter woken by it looks again.
    pub(super) async fn changed(&self, listener: EventListener) {
        let exit = lock(&self.child)
            .as_ref()
            .filter(|r| !r.killed)
            .map(|r| r.exit.clone());
        match exit {
            None => listener.await,
            Some(exit) => listener.or(exited(exit)).await,
        }
    }

    /// Wakes the unit's results streams: its stdout grew.
    pub(super) fn notify_output(&self) {
        self.grew.notify(usize::MAX);
    }

    /// A listener for the next [`Unit::notify_output`] (taken before reading, as
    /// [`Unit::listen`]).
    pub(super) fn listen_output(&self) -> EventListener {
        self.grew.listen()
    }

    /// Its running child's stdout is watched from now on (until the child is reaped).
    pub(super) fn set_watched(&self, watched: Watched) {
        if let Some(r) = lock(&self.child).as_mut() {
            r.watched = Some(watched);
        }
    }

    /// Whether a child is running whose writes to stdout wake nobody: its results streams
    /// poll the file.
    pub(super) fn output_unwatched(&self) -> bool {
        lock(&self.child)
            .as_ref()
            .is_some_and(|r| !r.watched.as_ref().is_some_and(Watched::live))
    }

    /// Whether a child is running.
    pub(super) fn has_child(&self) -> bool {
        lock(&self.child).is_some()
    }

    /// Writes the record to `status` (a new file renamed over the old one, so a reader never
    /// sees half of it).
    fn save(&self) -> Result<(), String> {
        let json = lock(&self.rec).to_json();
        let tmp = self.dir.join("status.new");
        std::fs::write(&tmp, json).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, self.dir.join("status")).map_err(|e| e.to_string())
    }

    pub(super) fn stdin_path(&self) -> PathBuf {
        self.dir.join("stdin")
    }

    pub(super) fn stdout_path(&self) -> PathBuf {
        self.dir.join("stdout")
    }

    pub(super) fn stdout_size(&self) -> i64 {
        std::fs::metadata(self.stdout_path())
            .map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
    }

    pub(super) fn set(&self, state: i64, detail: String, stdout: Option<i64>) {
        self.update(|r| r.set_basic(state, detail, stdout));
    }

    /// Changes the record, writes it (a failed write is logged) and wakes the unit's waiters.
    pub(super) fn update(&self, change: impl FnOnce(&mut StatusRecord)) {
        change(&mut lock(&self.rec));
        if let Err(e) = self.save() {
            tracing::warn!("writing status in {}: {e}", self.dir.display());
        }
        self.notify();
    }

    /// The status as `work status` / `work list` report it.
    pub(super) fn reply_status(&self) -> UnitStatus {
        let mut st = lock(&self.rec).to_unit_status();
        if matches!(self.kind, Kind::Unknown) {
            // Go's rendering of a unit whose work type is not registered.
            st.extra_data = Some("\"Unknown WorkType\"".to_owned());
        }
        st
    }

    /// Starts the command with `stdin` as its input and `stdout` taking its output, with the
    /// parameters recorded for this unit.
    pub(super) fn spawn(&self) -> Result<(), String> {
        let Kind::Command(ty) = &self.kind else {
            return Ok(());
        };
        let params = match &lock(&self.rec).extra_data {
            Some(ExtraData::Command(c)) => c.params.clone(),
            _ => ty.params.clone(),
        };
        let stdin = std::fs::File::open(self.stdin_path()).map_err(|e| e.to_string())?;
        let stdout = std::fs::File::create(self.stdout_path()).map_err(|e| e.to_string())?;
        let stderr = stdout.try_clone().map_err(|e| e.to_string())?;
        let args = shlex_split(&params).map_err(|e| e.to_string())?;
        let child = Command::new(&ty.command)
            .args(args)
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("fork/exec {}: {e}", ty.command))?;
        let pid = i64::from(child.id());
        *lock(&self.child) = Some(Running::new(child));
        self.set(STATE_RUNNING, format!("Running: PID {pid}"), Some(0));
        Ok(())
    }

    /// Records the exit of a child that has ended (not one being cancelled); whether it had.
    pub(super) fn reap(&self) -> bool {
        let exited = {
            let mut child = lock(&self.child);
            match child
                .as_mut()
                .filter(|r| !r.killed)
                .map(|r| r.child.try_wait())
            {
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

    /// Kills a running child and waits for it.
    pub(super) async fn cancel_child(&self) -> CancelOutcome {
        let killed = match lock(&self.child).as_mut() {
            Some(r) => r.child.kill().map(|()| r.killed = true),
            None => return CancelOutcome::NotRunning,
        };
        if let Err(e) = killed {
            return CancelOutcome::Failed(e.to_string());
        }
        // Not reaped here after all (an error, or this request dropped): the exit is for
        // whoever looks next to record, as for any other exit.
        let _unclaim = OnDrop(|| {
            if let Some(r) = lock(&self.child).as_mut() {
                r.killed = false;
                self.notify();
            }
        });
        loop {
            let exit = {
                let mut child = lock(&self.child);
                let Some(r) = child.as_mut() else { break };
                match r.child.try_wait() {
                    Ok(Some(_)) => {
                        *child = None;
                        break;
                    }
                    Ok(None) => r.exit.clone(),
                    Err(e) => return CancelOutcome::Failed(e.to_string()),
                }
            };
            exited(exit).await;
        }
        CancelOutcome::Stopped
    }

    /// Kills the child, if any, and waits for it, and stops a remote unit's job (the node is
    /// going away).
    pub(super) fn kill_now(&self) {
        *lock(&self.job_gen) += 1;
        drop(lock(&self.job).take());
        if let Some(mut r) = lock(&self.child).take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }

    /// Removes the unit's directory (one already gone counts as removed).
    pub(super) fn remove_dir(&self) -> Result<(), String> {
        remove_dir(&self.dir)
    }
}

/// Runs its closure when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
        _ => Ok(()),
    }
}
