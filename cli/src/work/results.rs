//! `work results`: a unit's stdout, streamed while it grows (control-and-work.md §2.5).
//!
//! Go reads the file again every 250 ms. Here the stream waits for the unit to change (its
//! directory is watched, and this process's own status writes wake it too), so output and
//! completion are forwarded at once; it looks again at least every second anyway (every 250
//! ms for a unit whose directory could not be watched).

use std::sync::Arc;
use std::time::Instant;

use receptor_core::os::stdout::StdoutReader;
use receptor_core::work::{ResultsFollow, ResultsNext};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::Unit;

/// The stdout of one unit from an offset, ready to be streamed.
#[derive(Debug)]
pub struct ResultsStream {
    unit: Arc<Unit>,
    start_pos: i64,
}

impl ResultsStream {
    pub(super) fn new(unit: Arc<Unit>, start_pos: i64) -> Self {
        Self { unit, start_pos }
    }

    /// Writes the unit's stdout from the start position to `out` as it becomes available.
    ///
    /// Ends as the core's [`ResultsFollow`] rule says (the unit complete and everything it
    /// recorded sent, the stdout file gone, a negative start position, ...), when a write
    /// fails, or as soon as `gone(out)` reports that the client disconnected.
    pub async fn run<W, G>(self, out: &mut W, mut gone: G)
    where
        W: AsyncWrite + Unpin,
        G: FnMut(&W) -> bool,
    {
        let unit = &self.unit;
        let path = unit.dir.join("stdout");
        let mut follow = ResultsFollow::new(self.start_pos);
        // Subscribed before every look at the file, so no change is missed.
        let mut changes = unit.subscribe();
        let file = loop {
            match std::fs::File::open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let st = unit.status();
                    let end = follow.no_stdout(
                        Instant::now(),
                        unit.is_released(),
                        st.state,
                        st.stdout_size,
                    );
                    if let Some(end) = end {
                        debug!("[{}] results end: {end}", unit.id);
                        return;
                    }
                }
                Err(e) => {
                    debug!("[{}] error accessing stdout file: {e}", unit.id);
                    return;
                }
            }
            if gone(out) {
                return;
            }
            unit.changed(&mut changes).await;
        };
        let Ok(pos) = follow.opened(Instant::now()) else {
            return;
        };
        // Chunks grow as core's rule says; the buffer is freed before the stream waits.
        let mut reader = StdoutReader::new(file, pos);
        loop {
            // Everything there is now.
            loop {
                let chunk = match reader.next_chunk() {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        debug!("[{}] error reading stdout: {e}", unit.id);
                        return;
                    }
                };
                if out.write_all(chunk).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
            reader.release_buffer();
            let pos = reader.pos();
            let st = unit.status();
            let end = match follow.caught_up(Instant::now(), pos, st.state, st.stdout_size) {
                ResultsNext::End(end) => Some(end),
                ResultsNext::CheckStdout => follow.stdout_checked(path.exists()),
                ResultsNext::Wait => None,
            };
            if let Some(end) = end {
                debug!("[{}] results end: {end}", unit.id);
                return;
            }
            if gone(out) {
                return;
            }
            unit.changed(&mut changes).await;
        }
    }
}
