//! The command-runner supervisor (control-and-work.md §2.4): run by receptor in a separate
//! process (its own process group) for each started `work-command` unit, so the command
//! outlives a receptor restart.
//!
//! Two programs run it, with the same arguments and the same behaviour: the small
//! [`PROGRAM`] installed beside `receptor` (what a node starts when it finds it there: see
//! [`main`]), and `receptor` itself with the hidden `--command-runner` entity (what Go nodes,
//! and ours without the small program, start). The small one links no TLS, crypto or
//! configuration parser, so starting it costs a unit less: exec and the dynamic loader's
//! relocations grow with the binary.
//!
//! It runs the command with the unit's `stdin` file as stdin and its `stdout` file as stdout and
//! stderr, writes `Running: PID <pid>` with the current output size to the status file at once
//! and then every 250 ms when the output has grown (Go rewrites it every 250 ms, changed or
//! not; a write that failed is tried again at the next tick), and on exit writes the final
//! state with Go's `ProcessState` text as the detail. On SIGINT or SIGTERM it interrupts the command (SIGKILL after 10 s), writes
//! Failed `Killed` and exits -1.
//!
//! Unlike Go, `stdout` is not opened `O_SYNC`: that made every write of the command wait for
//! the disk (100 MiB of output took seconds instead of a tenth of one). Readers on this machine
//! see the data at once either way; the output is flushed to disk once, when the command has
//! exited and before its final state is written, so a recorded final StdoutSize is on disk.

use receptor_core::os::process::process_exit;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use receptor_core::work::{
    ExtraData, STATE_FAILED, STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED, StatusRecord,
    shlex_split,
};
use rustix::process::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use super::proc;
use super::statusfile::{self, go_errno_text, go_path_error};
use crate::config::CommandRunnerCfg;

pub mod cmdline;

/// The supervisor's own program, which a node runs from its own executable's directory when
/// it is there (see [`RunnerSpec`](super::RunnerSpec)).
pub const PROGRAM: &str = "receptor-command-runner";

/// How often the supervisor looks at the command's output size, and reports it if it grew.
const TICK: Duration = Duration::from_millis(250);
/// How long an interrupted command gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// The [`PROGRAM`]'s entry point: reads its command line ([`cmdline`]), logs as receptor
/// does, and runs the supervisor to the end; the process's exit status. A bad command line is
/// reported as receptor reports one (`Error: ...` on stdout, exit status 1).
pub fn main(args: &[String]) -> ExitCode {
    let inv = match cmdline::parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            println!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::logging::init(inv.log_level, inv.trace);
    exit_status(run(&inv.runner))
}

/// The process exit status of a supervisor that returned `code` (-1 is 255, as Go's
/// `os.Exit(-1)`).
pub fn exit_status(code: i32) -> ExitCode {
    ExitCode::from(code as u8)
}

/// Runs the supervisor to the end and returns its exit code (the command's, or -1).
pub fn run(cfg: &CommandRunnerCfg) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("Command runner exited with error: {e}");
            return -1;
        }
    };
    let dir = PathBuf::from(&cfg.unit_dir);
    match rt.block_on(supervise(&cfg.command, &cfg.params, &dir)) {
        Ok(code) => code,
        Err(e) => {
            // Go's commandRunnerCfg.Run: the error becomes the unit's Failed detail.
            let mut rec = fresh_record();
            let size = statusfile::stdout_size(&dir);
            if let Err(e2) = statusfile::update(&dir, &mut rec, |r| {
                r.set_basic(STATE_FAILED, e.clone(), Some(size));
            }) {
                error!(
                    "Error updating status file {}: {e2}",
                    dir.join("status").display()
                );
            }
            error!("Command runner exited with error: {e}");
            -1
        }
    }
}

fn fresh_record() -> StatusRecord {
    StatusRecord::new("", Some(ExtraData::command(0, "")))
}

/// Writes `state` and `detail` with the current output size; the size written, `None` if the
/// write failed (logged).
fn write_status(dir: &Path, rec: &mut StatusRecord, state: i64, detail: String) -> Option<i64> {
    let size = statusfile::stdout_size(dir);
    match statusfile::update(dir, rec, |r| r.set_basic(state, detail, Some(size))) {
        Ok(()) => Some(size),
        Err(e) => {
            error!(
                "Error updating status file {}: {e}",
                dir.join("status").display()
            );
            None
        }
    }
}

async fn supervise(command: &str, params: &str, dir: &Path) -> Result<i32, String> {
    let mut rec = fresh_record();
    if let Err(e) = statusfile::update(dir, &mut rec, |r| {
        r.set_basic(STATE_PENDING, "Not started yet", Some(0));
    }) {
        error!(
            "Error updating status file {}: {e}",
            dir.join("status").display()
        );
    }
    let args = if params.is_empty() {
        Vec::new()
    } else {
        shlex_split(params).map_err(|e| e.to_string())?
    };
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
    };
    let stdin_path = dir.join("stdin");
    let stdin = File::open(&stdin_path).map_err(|e| go_path_error("open", &stdin_path, &e))?;
    let stdout_path = dir.join("stdout");
    let stdout = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(&stdout_path)
        .map_err(|e| go_path_error("open", &stdout_path, &e))?;
    let dup = || {
        stdout
            .try_clone()
            .map_err(|e| go_path_error("dup", &stdout_path, &e))
    };
    let (stderr, ours) = (dup()?, dup()?);
    let path = look_path(command)?;
    let mut child = tokio::process::Command::new(&path)
        .arg0(command)
        .args(&args)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("fork/exec {}: {}", path.display(), go_errno_text(&e)))?;
    let pid = child.id().map_or(0, i64::from);
    let running = format!("Running: PID {pid}");
    let mut reported = write_status(dir, &mut rec, STATE_RUNNING, running.clone());
    let mut failures = 0;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st.map_err(|e| e.to_string())?,
            _ = int.recv() => return Ok(killed(&mut child, pid, dir, &mut rec).await),
            _ = term.recv() => return Ok(killed(&mut child, pid, dir, &mut rec).await),
            () = tokio::time::sleep(TICK) => {
                // Only new output is news: Go rewrites the same record every tick, and each
                // write wakes the node, which reads the file again (four times a second for
                // every unit whose command is quiet).
                if reported.is_some() && reported == Some(statusfile::stdout_size(dir)) {
                    continue;
                }
                reported = write_status(dir, &mut rec, STATE_RUNNING, running.clone());
                if reported.is_some() {
                    failures = 0;
                } else {
                    failures += 1;
                    if failures > 3 {
                        error!("Exceeded retries for updating status file {}", dir.join("status").display());
                        return Ok(-1);
                    }
                }
            }
        }
    };
    if let Err(e) = ours.sync_data() {
        warn!("could not flush {}: {e}", stdout_path.display());
    }
    drop(ours);
    let exit = process_exit(status);
    let state = if exit.success() {
        STATE_SUCCEEDED
    } else {
        STATE_FAILED
    };
    write_status(dir, &mut rec, state, exit.to_string());
    Ok(exit.exit_code())
}

/// SIGINT to the command, SIGKILL if it is still there after [`TERM_GRACE`]; then Failed
/// `Killed` and exit code -1.
async fn killed(
    child: &mut tokio::process::Child,
    pid: i64,
    dir: &Path,
    rec: &mut StatusRecord,
) -> i32 {
    if let Err(e) = proc::signal(pid, Signal::INT) {
        warn!("could not interrupt pid {pid}: {e}");
    }
    if tokio::time::timeout(TERM_GRACE, child.wait())
        .await
        .is_err()
    {
        warn!("timed out waiting for pid {pid} to terminate with SIGINT");
        info!("sending SIGKILL to pid {pid}");
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    write_status(dir, rec, STATE_FAILED, "Killed".to_owned());
    -1
}

/// Go's `exec.Command` lookup: a name with a `/` is used as it is; otherwise the first
/// executable regular file `<dir>/<name>` along `$PATH` (an empty entry is `.`, and a match
/// that is relative is refused, as Go ≥ 1.19 does).
fn look_path(name: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let not_found = || format!("exec: {name:?}: executable file not found in $PATH");
    if name.is_empty() {
        return Err(not_found());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            if candidate.is_relative() {
                return Err(format!(
                    "exec: {name:?}: cannot run executable found relative to current directory"
                ));
            }
            return Ok(candidate);
        }
    }
    Err(not_found())
}

/// Whether `path` is a regular file (after symlinks) with an execute bit set.
pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup() {
        assert!(look_path("sh").unwrap().is_absolute());
        assert_eq!(look_path("./x").unwrap(), PathBuf::from("./x"));
        assert_eq!(
            look_path("base").unwrap_err(),
            "exec: \"base\": executable file not found in $PATH"
        );
        assert_eq!(
            look_path("").unwrap_err(),
            "exec: \"\": executable file not found in $PATH"
        );
    }
}
