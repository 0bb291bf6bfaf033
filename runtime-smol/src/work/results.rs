//! `work results`: a unit's stdout from an offset, streamed while it grows, by the rule the
//! `receptor` binary follows (control-and-work.md §2.5): the stream ends once the unit is
//! complete (Succeeded or Failed, core's [`is_complete`]) and everything its record counts
//! (`StdoutSize`) has been sent, or when the unit is released, or a write fails. A Canceled
//! unit is not complete (as in Go): its stream waits for more until it is released or the
//! client leaves. A negative offset ends it at once (Go's seek error).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::io::{AsyncWrite, AsyncWriteExt};
use receptor_core::work::is_complete;
use tracing::debug;

use super::Work;

/// How often the file and the unit are looked at again when there was nothing new (Go: 250 ms).
const POLL: Duration = Duration::from_millis(100);
/// Read size.
const CHUNK: usize = 64 * 1024;

/// The stdout of one unit from an offset, ready to be streamed ([`Work::results_stream`]).
#[derive(Debug)]
pub struct ResultsStream {
    work: Arc<Work>,
    id: String,
    start_pos: i64,
}

impl ResultsStream {
    pub(super) fn new(work: Arc<Work>, id: String, start_pos: i64) -> Self {
        Self {
            work,
            id,
            start_pos,
        }
    }

    /// Writes the unit's stdout from the start position to `out` as it becomes available,
    /// until the stream ends (see the module's rule).
    pub async fn run<W: AsyncWrite + Unpin>(self, out: &mut W) {
        let Ok(mut pos) = u64::try_from(self.start_pos) else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        let mut file = None;
        loop {
            let Ok(unit) = self.work.unit(&self.id) else {
                debug!("[{}] released while its results were streamed", self.id);
                return;
            };
            if file.is_none() {
                file = std::fs::File::open(unit.stdout_path()).ok();
            }
            // Everything there is now.
            while let Some(f) = file.as_mut() {
                let n = match f.seek(SeekFrom::Start(pos)).and_then(|_| f.read(&mut buf)) {
                    Ok(n) => n,
                    Err(e) => {
                        debug!("[{}] error reading stdout: {e}", self.id);
                        return;
                    }
                };
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                    break;
                };
                pos += n as u64;
                if out.write_all(chunk).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
            let Some(st) = self.work.status(&self.id) else {
                return;
            };
            // A complete unit without a stdout file never ran a process: nothing will come.
            let sent_all =
                file.is_none() || i64::try_from(pos).unwrap_or(i64::MAX) >= st.stdout_size;
            if is_complete(st.state) && sent_all {
                debug!("[{}] stdout complete", self.id);
                return;
            }
            Timer::after(POLL).await;
        }
    }
}
