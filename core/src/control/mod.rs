//! The control-service protocol that `receptorctl` speaks (control-and-work.md §1, Appendix A),
//! without sockets, tasks or clocks.

mod command;
mod gofmt;
mod json;
mod line;
mod work;

pub use command::{Command, ParseError, parse_line};
pub use line::{LineEvent, LineReader, MAX_LINE_LEN};
pub use work::{WorkRequest, WorkSubmit};
