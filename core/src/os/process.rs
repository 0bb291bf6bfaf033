//! How a finished child process ended, as the work engine reads it.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use crate::work::ProcessExit;

/// The exit status as Go's `ProcessState` sees it.
pub fn process_exit(status: ExitStatus) -> ProcessExit {
    match (status.code(), status.signal()) {
        (Some(code), _) => ProcessExit::Exited(code),
        (None, Some(signal)) => ProcessExit::Signaled {
            signal,
            core_dumped: status.core_dumped(),
        },
        (None, None) => ProcessExit::Exited(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_texts() {
        assert_eq!(
            process_exit(ExitStatus::from_raw(3 << 8)).to_string(),
            "exit status 3"
        );
        assert_eq!(
            process_exit(ExitStatus::from_raw(9)).to_string(),
            "signal: killed"
        );
        assert_eq!(process_exit(ExitStatus::from_raw(0)).exit_code(), 0);
    }
}
