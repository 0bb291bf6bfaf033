//! The control-service protocol that `receptorctl` speaks (control-and-work.md §1, Appendix A),
//! without sockets, tasks or clocks.
//!
//! A [`Session`] turns client bytes into [`Action`]s for the runtime and the runtime's
//! [`Reply`]s into the exact bytes Go receptor writes: the greeting, one JSON object per line
//! (`encoding/json` rules: sorted keys, Go string escaping and float formatting), `ERROR:` lines
//! with Go's texts, and the protocol switches of `connect`, `work submit` and `work results`.
//!
//! The pieces are usable on their own: [`LineReader`] (framing that never reads past a command
//! line), [`parse_line`] (plain and JSON commands), and the `format_*` functions and
//! [`go_duration_string`] for replies. [`Reply`] is one type both ways: the runtime answers
//! actions with it and [`Reply::encode`] writes its line; [`Reply::decode`] reads such a line
//! back, as a remote unit reads the replies of the node that runs its work.
//!
//! ```
//! use receptor_core::control::{Action, Phase, Reply, Session};
//!
//! let mut s = Session::new("node1");
//! assert_eq!(&s.poll_output().unwrap()[..], b"Receptor Control, node node1\n");
//! let input = b"ping node2\nstatus\n";
//! let used = s.handle_bytes(input);
//! assert_eq!(used, 11); // stops after the ping line: the runtime has to act first
//! let Some(Action::Ping { target }) = s.poll_action() else { unreachable!() };
//! assert_eq!(target, "node2");
//! s.complete(Reply::Error("no route to node".into())).unwrap();
//! assert_eq!(&s.poll_output().unwrap()[..], b"ERROR: no route to node\n");
//! assert_eq!(s.phase(), Phase::Reading);
//! assert_eq!(s.handle_bytes(&input[used..]), 7); // the kept bytes: the next command
//! ```

mod command;
mod conn;
mod duration;
mod gofmt;
mod json;
mod line;
mod reply;
mod reply_codec;
mod session;
mod work;

#[cfg(feature = "fuzzing")]
pub(crate) use work::NON_PARAMS;

pub use command::{Command, ParseError, parse_line};
pub use conn::{BRIDGE_HOLD, Connection, Step, TraceHops, connect_target, failed_ping, ping_reply};
pub use duration::{ParseDurationError, go_duration_nanos, go_duration_string, parse_go_duration};
pub use line::{LineEvent, LineReader, MAX_LINE_LEN};
pub use reply::{
    CONNECTING, ConnectionStatus, HostInfo, ReloadError, STATUS_FIELDS, StatusSnapshot, UnitStatus,
    error_line, format_cancelled, format_ping, format_released, format_reload, format_status,
    format_submitted, format_traceroute, format_unit_list, format_unit_status, greeting,
    state_name, streaming_results, work_unit_created,
};
pub use reply_codec::{ErrorReply, Reply, ReplyDecodeError};
pub use session::{Action, CompleteError, Phase, Session};
pub use work::{STATUS_WAIT_MAX, StatusWait, WaitStep, WorkRequest, WorkSubmit};
