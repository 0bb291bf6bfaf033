//! `work results`: a unit's stdout from an offset, streamed while it grows (control-and-work.md
//! §2.5). When the stream ends is the core's [`ResultsFollow`] rule, the one the `receptor`
//! binary follows (the unit complete and everything its record counts sent, its stdout file
//! gone, a negative offset, ...); it also ends when the unit is released here or a write
//! fails.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::io::{AsyncWrite, AsyncWriteExt};
use receptor_core::work::{ResultsFollow, ResultsNext};
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
        let mut follow = ResultsFollow::new(self.start_pos);
        let mut buf = vec![0u8; CHUNK];
        let mut file = None;
        let mut pos = 0;
        loop {
            let Ok(unit) = self.work.unit(&self.id) else {
                debug!("[{}] released while its results were streamed", self.id);
                return;
            };
            if file.is_none() {
                match std::fs::File::open(unit.stdout_path()) {
                    Ok(f) => {
                        let Ok(from) = follow.opened(Instant::now()) else {
                            return;
                        };
                        pos = from;
                        file = Some(f);
                    }
                    Err(_) => {
                        let Some(st) = self.work.status(&self.id) else {
                            return;
                        };
                        let end = follow.no_stdout(Instant::now(), false, st.state, st.stdout_size);
                        if let Some(end) = end {
                            debug!("[{}] results end: {end}", self.id);
                            return;
                        }
                        Timer::after(POLL).await;
                        continue;
                    }
                }
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
            // The status after the reads: a unit that completed meanwhile has its last
            // output in the file already.
            let Some(st) = self.work.status(&self.id) else {
                return;
            };
            let end = match follow.caught_up(Instant::now(), pos, st.state, st.stdout_size) {
                ResultsNext::End(end) => Some(end),
                ResultsNext::CheckStdout => follow.stdout_checked(unit.stdout_path().exists()),
                ResultsNext::Wait => None,
            };
            if let Some(end) = end {
                debug!("[{}] results end: {end}", self.id);
                return;
            }
            Timer::after(POLL).await;
        }
    }
}
