//! `work results`: a unit's stdout from an offset, streamed while it grows. When the stream
//! ends is core's rule ([`ResultsFollow`], control-and-work.md §2.5), the one the `receptor`
//! binary follows too: once the unit is complete (Succeeded or Failed) and everything its
//! record counts (`StdoutSize`) has been sent, when its stdout file stays missing, or at once
//! for a negative offset (Go's seek error). A Canceled unit is not complete (as in Go): its
//! stream waits for more. Here a unit released meanwhile (unknown to the engine) also ends
//! its stream at once, and a write failing (the client left) ends it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use event_listener::EventListener;
use futures_lite::FutureExt as _;
use futures_lite::io::{AsyncWrite, AsyncWriteExt};
use receptor_core::os::stdout::StdoutReader;
use receptor_core::work::{ResultsFollow, ResultsNext, STDOUT_CHECK_EVERY};
use tracing::debug;

use super::Work;
use super::unit::Unit;

/// How often the file is looked at again while a child process runs and nothing watches its
/// writes ([`super::stdout_watch`]: not Linux, no node, out of inotify instances), when there
/// was nothing new (Go: 250 ms). The child writes its stdout file itself, so nothing else
/// here hears of its growth; everything else that matters (the record, a remote unit's
/// appended output, the child's exit, the unit's release) wakes the stream through the unit.
const POLL: Duration = Duration::from_millis(100);

/// The unit's notifications a stream waits for, taken before it looks.
struct Listeners {
    changed: EventListener,
    grew: EventListener,
}

impl Listeners {
    fn new(unit: &Unit) -> Self {
        Self {
            changed: unit.listen(),
            grew: unit.listen_output(),
        }
    }
}

/// Until the unit changes or its stdout grows, or the next look is due: [`POLL`] while an
/// unwatched child writes the file, otherwise [`STDOUT_CHECK_EVERY`] (core's rule checks for
/// the file that often).
async fn next_look(work: &Work, unit: &Unit, l: Listeners) {
    let slow = if unit.output_unwatched() {
        POLL
    } else {
        STDOUT_CHECK_EVERY
    };
    unit.changed(l.changed)
        .or(l.grew)
        .or(async {
            Timer::after(slow).await;
        })
        .await;
    #[cfg(test)]
    work.results_looks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(test))]
    let _ = work;
}

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
        let id = &self.id;
        let mut follow = ResultsFollow::new(self.start_pos);
        let (file, path, unit) = loop {
            let Ok(unit) = self.work.unit(id) else {
                return debug!("[{id}] released while its results were streamed");
            };
            let listeners = Listeners::new(&unit);
            let path = unit.stdout_path();
            match std::fs::File::open(&path) {
                Ok(f) => break (f, path, unit),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let end = match self.work.status(id) {
                        Some(st) => {
                            follow.no_stdout(Instant::now(), false, st.state, st.stdout_size)
                        }
                        None => follow.no_stdout(Instant::now(), true, 0, 0),
                    };
                    if let Some(end) = end {
                        return debug!("[{id}] results: {end}");
                    }
                }
                Err(e) => return debug!("[{id}] error accessing stdout file: {e}"),
            }
            next_look(&self.work, &unit, listeners).await;
        };
        let pos = match follow.opened(Instant::now()) {
            Ok(pos) => pos,
            Err(end) => return debug!("[{id}] results: {end}"),
        };
        // Chunks grow as core's rule says; the buffer is freed before the stream waits.
        let mut reader = StdoutReader::new(file, pos);
        loop {
            let listeners = Listeners::new(&unit);
            // Everything there is now.
            loop {
                let chunk = match reader.next_chunk() {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => return debug!("[{id}] error reading stdout: {e}"),
                };
                if out.write_all(chunk).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
            reader.release_buffer();
            let pos = reader.pos();
            let Some(st) = self.work.status(id) else {
                return debug!("[{id}] released while its results were streamed");
            };
            let end = match follow.caught_up(Instant::now(), pos, st.state, st.stdout_size) {
                ResultsNext::End(end) => Some(end),
                ResultsNext::CheckStdout => follow.stdout_checked(path.exists()),
                ResultsNext::Wait => None,
            };
            if let Some(end) = end {
                return debug!("[{id}] results: {end}");
            }
            next_look(&self.work, &unit, listeners).await;
        }
    }
}
