//! The control-service protocol that `receptorctl` speaks (control-and-work.md §1, Appendix A),
//! without sockets, tasks or clocks.

mod line;

pub use line::{LineEvent, LineReader, MAX_LINE_LEN};
