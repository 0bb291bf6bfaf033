//! The `work-command` worker on the receptor side (control-and-work.md §2.4): starting the
//! command-runner supervisor, watching it, cancelling it, and picking running units up again
//! after a restart.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use receptor_core::work::{CancelOutcome, ExtraData, STATE_FAILED, STATE_PENDING, is_complete};
use rustix::process::Signal;
use tokio::sync::watch;
use tracing::{info, warn};

use super::worker::CommandType;
use super::{RunnerSpec, Unit, Workceptor, lock, proc};
use receptor_core::os::process::process_exit;

/// How often a supervisor this process did not start is checked for.
const ADOPTED_POLL: Duration = Duration::from_secs(1);
/// How long a cancel waits for the supervisor (which itself gives the command 10 s) before
/// killing it.
const CANCEL_GRACE: Duration = Duration::from_secs(15);

/// Starts the supervisor for `unit` ([`RunnerSpec::program`]) in a new process group (so a
/// terminal's Ctrl-C or a signal to receptor's group does not reach it; Go uses a new session)
/// and records its PID.
pub(super) fn start(
    w: &Arc<Workceptor>,
    unit: &Arc<Unit>,
    ty: &CommandType,
    runner: &RunnerSpec,
) -> Result<(), String> {
    unit.update_basic(STATE_PENDING, "Launching command runner", Some(0));
    let rec = unit.status();
    let command = ty.command.clone();
    let params = match &rec.extra_data {
        Some(ExtraData::Command(c)) => c.params.clone(),
        _ => ty.base_params.clone(),
    };
    let spawned = tokio::process::Command::new(runner.program())
        .args([
            "--node",
            "id=worker",
            "--log-level",
            &runner.log_level,
            "--command-runner",
            &format!("command={command}"),
            &format!("params={params}"),
            &format!("unitdir={}", unit.dir.display()),
        ])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            unit.update_basic(
                STATE_FAILED,
                format!("Failed to start command runner: {e}"),
                Some(0),
            );
            return Err(e.to_string());
        }
    };
    let pid = child.id().map_or(0, i64::from);
    let _ = unit.update(|r| match &mut r.extra_data {
        Some(ExtraData::Command(c)) => c.pid = pid,
        other => *other = Some(ExtraData::command(pid, params.clone())),
    });
    let (tx, rx) = watch::channel(false);
    *lock(&unit.supervisor) = Some(rx);
    let (w, unit) = (w.clone(), unit.clone());
    tokio::spawn(async move {
        let exit = child.wait().await.ok().map(process_exit);
        supervisor_gone(&w, &unit, exit.map(|e| e.to_string()));
        let _ = tx.send(true);
    });
    Ok(())
}

/// The supervisor exited: `ExtraData` becomes `null` (as in Go). A supervisor that died
/// without writing a final state (killed from outside) leaves its unit Failed (the engine's
/// rule), not Running forever as in Go. It writes its final state before it exits, so the
/// status read here is the last one.
fn supervisor_gone(w: &Arc<Workceptor>, unit: &Arc<Unit>, exit: Option<String>) {
    if unit.is_released() {
        return;
    }
    let _ = unit.update(|r| r.extra_data = None);
    let state = unit.status().state;
    let how = exit.as_deref().unwrap_or("unknown status");
    let detail = format!("Command runner exited unexpectedly ({how})");
    let effects = w.engine().handle_worker_gone(&unit.id, state, detail);
    w.apply_sync(unit, effects);
}

/// Follows a command unit found on disk that may still run (the engine applied Go's
/// `Restart` rules first): through its status file, with the supervisor watched by PID.
pub(super) fn reattach(w: &Arc<Workceptor>, unit: &Arc<Unit>) {
    let rec = unit.status();
    let Some(pid) = rec.command_pid() else {
        return;
    };
    if !proc::supervisor_alive(pid, &unit.dir) {
        // It finished (or died) while receptor was down.
        supervisor_gone(w, unit, None);
        return;
    }
    info!(
        "[{}] resuming supervision of command runner pid {pid}",
        unit.id
    );
    let (tx, rx) = watch::channel(false);
    *lock(&unit.supervisor) = Some(rx);
    let (w, unit) = (w.clone(), unit.clone());
    tokio::spawn(async move {
        while proc::supervisor_alive(pid, &unit.dir) {
            if unit.is_released() {
                return;
            }
            tokio::time::sleep(ADOPTED_POLL).await;
        }
        supervisor_gone(&w, &unit, None);
        let _ = tx.send(true);
    });
}

/// Go's `Cancel`: SIGINT to the supervisor, wait for it to exit ([`CancelOutcome::Stopped`]:
/// the engine makes the unit Canceled). A unit whose supervisor is gone is left as it is, and
/// so is a complete one whose supervisor has not exited yet (it has written the final state
/// and is about to; Go would interrupt it and turn Succeeded into Canceled, a window that a
/// prompt `work release` after `work results` now meets).
pub(super) async fn cancel(unit: &Arc<Unit>) -> CancelOutcome {
    match stop(unit).await {
        Ok(true) => CancelOutcome::Stopped,
        Ok(false) => CancelOutcome::NotRunning,
        Err(e) => CancelOutcome::Failed(e),
    }
}

/// Stops the supervisor; whether one was running.
async fn stop(unit: &Arc<Unit>) -> Result<bool, String> {
    let rec = unit.status();
    let Some(pid) = rec.command_pid() else {
        return Ok(false);
    };
    if is_complete(rec.state) {
        return Ok(false);
    }
    let watcher = lock(&unit.supervisor).clone();
    let alive = match &watcher {
        Some(rx) => !*rx.borrow(),
        None => proc::supervisor_alive(pid, &unit.dir),
    };
    if !alive {
        return Ok(false);
    }
    proc::signal(pid, Signal::INT)?;
    if !wait_gone(unit, pid, watcher.clone(), CANCEL_GRACE).await {
        warn!(
            "[{}] command runner pid {pid} ignored SIGINT; killing it",
            unit.id
        );
        proc::signal(pid, Signal::KILL)?;
        wait_gone(unit, pid, watcher, Duration::from_secs(5)).await;
    }
    Ok(true)
}

/// Waits up to `within` for the supervisor to exit; whether it did.
async fn wait_gone(
    unit: &Unit,
    pid: i64,
    watcher: Option<watch::Receiver<bool>>,
    within: Duration,
) -> bool {
    let wait = async {
        match watcher {
            Some(mut rx) => {
                let _ = rx.wait_for(|gone| *gone).await;
            }
            None => {
                while proc::supervisor_alive(pid, &unit.dir) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}
