//! `work results`: a unit's stdout, streamed while it grows (control-and-work.md §2.5).
//!
//! Go reads the file again every 250 ms. Here the stream waits for the unit to change (its
//! directory is watched, and this process's own status writes wake it too), so output and
//! completion are forwarded at once; it looks again at least every second anyway (every 250
//! ms for a unit whose directory could not be watched).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, Instant};

use receptor_core::work::is_complete;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::Unit;

/// How often the stdout file is checked for (it vanishes when the unit is released).
const STAT_EVERY: Duration = Duration::from_secs(1);
/// Read size.
const CHUNK: usize = 256 * 1024;

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
    /// Ends when the unit is complete (Succeeded or Failed) and everything it recorded has
    /// been sent, when the stdout file has been gone for more than 3 checks a second apart
    /// (released), when a write fails, or as soon as `gone(out)` reports that the client
    /// disconnected. A Canceled unit is not complete (as in Go): its stream waits for the
    /// client to leave. A negative start position ends the stream at once (Go's seek error).
    pub async fn run<W, G>(self, out: &mut W, mut gone: G)
    where
        W: AsyncWrite + Unpin,
        G: FnMut(&W) -> bool,
    {
        let unit = &self.unit;
        let path = unit.dir.join("stdout");
        // Subscribed before every look at the file, so no change is missed.
        let mut changes = unit.subscribe();
        // Since when the unit has been complete while its stdout is still missing: a remote
        // unit's status can say Succeeded before the first output has been copied here.
        let mut complete_since: Option<Instant> = None;
        let mut file = loop {
            match std::fs::File::open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if unit.is_released() {
                        return;
                    }
                    let st = unit.status();
                    if is_complete(st.state) {
                        let since = *complete_since.get_or_insert_with(Instant::now);
                        if st.stdout_size <= self.start_pos || since.elapsed() > 3 * STAT_EVERY {
                            debug!("[{}] unit completed without producing any stdout", unit.id);
                            return;
                        }
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
        let Ok(mut pos) = u64::try_from(self.start_pos) else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        let mut missing = 0;
        let mut last_stat = Instant::now();
        loop {
            // Everything there is now.
            loop {
                let n = match file
                    .seek(SeekFrom::Start(pos))
                    .and_then(|_| file.read(&mut buf))
                {
                    Ok(n) => n,
                    Err(e) => {
                        debug!("[{}] error reading stdout: {e}", unit.id);
                        return;
                    }
                };
                if n == 0 {
                    break;
                }
                pos += n as u64;
                let Some(chunk) = buf.get(..n) else { return };
                if out.write_all(chunk).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
            let st = unit.status();
            if is_complete(st.state) && i64::try_from(pos).unwrap_or(i64::MAX) >= st.stdout_size {
                debug!("[{}] stdout complete", unit.id);
                return;
            }
            if last_stat.elapsed() >= STAT_EVERY {
                last_stat = Instant::now();
                if path.exists() {
                    missing = 0;
                } else {
                    missing += 1;
                    if missing > 3 {
                        debug!("[{}] exceeded retries for reading stdout", unit.id);
                        return;
                    }
                }
            }
            if gone(out) {
                return;
            }
            unit.changed(&mut changes).await;
        }
    }
}
