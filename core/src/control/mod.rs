//! The control-service protocol that `receptorctl` speaks (control-and-work.md §1, Appendix A),
//! without sockets, tasks or clocks.

mod command;
mod duration;
mod gofmt;
mod json;
mod line;
mod reply;
mod work;

pub use command::{Command, ParseError, parse_line};
pub use duration::{go_duration_nanos, go_duration_string};
pub use line::{LineEvent, LineReader, MAX_LINE_LEN};
pub use reply::{
    CONNECTING, ConnectionStatus, HostInfo, ReloadError, STATUS_FIELDS, StatusSnapshot,
    UnitStatus, error_line, format_cancelled, format_ping, format_released, format_reload,
    format_status, format_submitted, format_traceroute, format_unit_list, format_unit_status,
    greeting, state_name, streaming_results, work_unit_created,
};
pub use work::{WorkRequest, WorkSubmit};
