//! How a finished command reads in its unit's `Detail`: Go's `os.ProcessState.String()`.

use std::fmt;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessExit {
    /// It exited with this status code.
    Exited(i32),
    /// A signal killed it.
    Signaled {
        /// The signal number.
        signal: i32,
        /// It left a core dump.
        core_dumped: bool,
    },
}

impl ProcessExit {
    /// Exit status 0.
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }

    /// Go's `ProcessState.ExitCode()`: the status, or -1 when killed by a signal.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled { .. } => -1,
        }
    }
}

/// `exit status 3`, `signal: killed`, `signal: segmentation fault (core dumped)`.
impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exited(code) => write!(f, "exit status {code}"),
            Self::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "signal: {}", signal_name(signal))?;
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// Go's `syscall.Signal.String()` on Linux: `killed`, `terminated`, ..., `signal 40` for
/// numbers without a name.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        5 => "trace/breakpoint trap",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        10 => "user defined signal 1",
        11 => "segmentation fault",
        12 => "user defined signal 2",
        13 => "broken pipe",
        14 => "alarm clock",
        15 => "terminated",
        16 => "stack fault",
        17 => "child exited",
        18 => "continued",
        19 => "stopped (signal)",
        20 => "stopped",
        21 => "stopped (tty input)",
        22 => "stopped (tty output)",
        23 => "urgent I/O condition",
        24 => "CPU time limit exceeded",
        25 => "file size limit exceeded",
        26 => "virtual timer expired",
        27 => "profiling timer expired",
        28 => "window changed",
        29 => "I/O possible",
        30 => "power failure",
        31 => "bad system call",
        n => return format!("signal {n}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_texts() {
        assert_eq!(ProcessExit::Exited(0).to_string(), "exit status 0");
        assert_eq!(ProcessExit::Exited(3).to_string(), "exit status 3");
        let killed = ProcessExit::Signaled {
            signal: 9,
            core_dumped: false,
        };
        assert_eq!(killed.to_string(), "signal: killed");
        assert_eq!(
            ProcessExit::Signaled {
                signal: 11,
                core_dumped: true
            }
            .to_string(),
            "signal: segmentation fault (core dumped)"
        );
        assert_eq!(
            ProcessExit::Signaled {
                signal: 15,
                core_dumped: false
            }
            .to_string(),
            "signal: terminated"
        );
        assert_eq!(signal_name(2), "interrupt");
        assert_eq!(signal_name(40), "signal 40");
        assert!(ProcessExit::Exited(0).success());
        assert!(!ProcessExit::Exited(1).success());
        assert_eq!(killed.exit_code(), -1);
        assert_eq!(ProcessExit::Exited(7).exit_code(), 7);
    }
}
