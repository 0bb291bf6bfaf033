//! Looking at and signalling processes by PID (command-runner supervisors that may outlive the
//! receptor that started them).

use std::path::Path;

use rustix::process::{Pid, Signal, kill_process, test_kill_process};

/// Sends `signal` to `pid`. A PID that does not exist counts as success (it already finished).
pub(crate) fn signal(pid: i64, signal: Signal) -> Result<(), String> {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Ok(());
    };
    match kill_process(pid, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `pid` is still the command-runner supervisor of `unit_dir`.
///
/// After a restart the PID in a status file may be stale: the supervisor finished (a zombie
/// reads as an empty command line) or the number was reused. Where `/proc` exists the process's
/// command line must be `... --command-runner ... unitdir=<unit_dir>`; elsewhere only existence
/// is checked.
pub(crate) fn supervisor_alive(pid: i64, unit_dir: &Path) -> bool {
    let Some(raw) = i32::try_from(pid).ok().filter(|p| *p > 0) else {
        return false;
    };
    match std::fs::read(format!("/proc/{raw}/cmdline")) {
        Ok(cmdline) => {
            let want = format!("unitdir={}", unit_dir.display());
            let mut runner = false;
            let mut dir = false;
            for arg in cmdline.split(|&b| b == 0) {
                runner |= arg == b"--command-runner";
                dir |= arg == want.as_bytes();
            }
            runner && dir
        }
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => Pid::from_raw(raw).is_some_and(|p| test_kill_process(p).is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_foreign_pids() {
        assert!(!supervisor_alive(0, Path::new("/x")));
        assert!(!supervisor_alive(-5, Path::new("/x")));
        assert!(!supervisor_alive(i64::MAX, Path::new("/x")));
        // This test process is alive but is no supervisor.
        assert!(!supervisor_alive(
            i64::from(std::process::id()),
            Path::new("/x")
        ));
        assert!(signal(i64::from(i32::MAX), Signal::INT).is_ok());
    }
}
