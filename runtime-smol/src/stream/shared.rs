//! The pipe between the node task and one [`MeshStream`](super::MeshStream): the bytes
//! read from QUIC and waiting for the reader (bounded: the node task stops reading when it
//! is full and the reader asks it to go on), and the writer's credit (bytes it may hand
//! over before QUIC has taken what it handed). One mutex guards both, so pausing and
//! resuming cannot race.

use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};

/// Bytes queued for the reader at which the node task stops reading from QUIC.
pub(crate) const READ_HIGH: usize = 256 * 1024;
/// Bytes queued below which a paused reader asks the node task to read again.
const READ_LOW: usize = READ_HIGH / 2;

#[derive(Debug, Default)]
struct State {
    /// Data for the reader, oldest first.
    queue: VecDeque<Bytes>,
    /// Bytes in `queue`.
    queued: usize,
    /// How reading ends once `queue` is empty: `Ok` is EOF.
    end: Option<Result<(), String>>,
    /// The node task stopped reading because `queue` was full.
    paused: bool,
    /// The reader waiting for data.
    reader: Option<Waker>,
    /// Bytes the writer may still hand over.
    credit: usize,
    /// Why writes fail, once they do.
    write_error: Option<String>,
    /// The writer waiting for credit. `poll_read` and `poll_write` take `&mut self`, so one
    /// reader and one writer wait at most.
    writer: Option<Waker>,
    /// Whether the peer acknowledged everything written, FIN included (`Some(true)`), or the
    /// writing side failed first (`Some(false)`).
    acked: Option<bool>,
    /// The task waiting for that.
    ack_waiter: Option<Waker>,
}

/// The node task's and the stream's common state.
#[derive(Debug)]
pub(crate) struct Shared(Mutex<State>);

/// What a read got.
pub(crate) struct ReadOutcome {
    /// Bytes copied (0 at the end of the stream).
    pub(crate) n: usize,
    /// The node task had paused and must now be told to read again.
    pub(crate) resume: bool,
}

impl Shared {
    pub(crate) fn new(credit: usize) -> Self {
        Self(Mutex::new(State {
            credit,
            ..State::default()
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock still holds sane state.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // The reader's side.

    /// Copies queued bytes into `buf` (not empty), waiting while there are none.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<ReadOutcome>> {
        let mut s = self.lock();
        if let Some(front) = s.queue.front_mut() {
            let n = front.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), front.get(..n)) {
                dst.copy_from_slice(src);
            }
            front.advance(n);
            if front.is_empty() {
                s.queue.pop_front();
            }
            s.queued -= n;
            let resume = s.paused && s.queued <= READ_LOW;
            if resume {
                s.paused = false;
            }
            return Poll::Ready(Ok(ReadOutcome { n, resume }));
        }
        match &s.end {
            Some(Ok(())) => Poll::Ready(Ok(ReadOutcome {
                n: 0,
                resume: false,
            })),
            Some(Err(e)) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                e.clone(),
            ))),
            None => {
                s.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    // The node task's side of reading.

    /// Whether the reader's queue has room; if not, marks the reader paused.
    pub(crate) fn room(&self) -> bool {
        let mut s = self.lock();
        if s.queued < READ_HIGH {
            return true;
        }
        s.paused = true;
        false
    }

    /// Queues bytes for the reader.
    pub(crate) fn push(&self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let w = {
            let mut s = self.lock();
            s.queued += data.len();
            s.queue.push_back(data);
            s.reader.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Ends reading after the queued bytes: EOF for `None`, else that error. The first end
    /// recorded wins.
    pub(crate) fn end_reads(&self, error: Option<String>) {
        let w = {
            let mut s = self.lock();
            s.end.get_or_insert(error.map_or(Ok(()), Err));
            s.reader.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    // The writer's side.

    /// Takes up to `want` bytes of credit, waiting while there is none.
    pub(crate) fn poll_credit(&self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let mut s = self.lock();
        if let Some(e) = &s.write_error {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, e.clone())));
        }
        if s.credit == 0 {
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = s.credit.min(want);
        s.credit -= n;
        Poll::Ready(Ok(n))
    }

    // The node task's side of writing.

    /// Gives credit back: QUIC took `n` bytes.
    pub(crate) fn add_credit(&self, n: usize) {
        if n == 0 {
            return;
        }
        let w = {
            let mut s = self.lock();
            s.credit += n;
            s.writer.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// No more writes: the waiting writer, and every later one, fails with `why` (the first
    /// reason recorded wins).
    pub(crate) fn fail_writes(&self, why: &str) {
        let (w, a) = {
            let mut s = self.lock();
            s.write_error.get_or_insert_with(|| why.to_owned());
            s.acked.get_or_insert(false);
            (s.writer.take(), s.ack_waiter.take())
        };
        for w in [w, a].into_iter().flatten() {
            w.wake();
        }
    }

    /// The peer acknowledged everything written, FIN included (the first outcome wins).
    pub(crate) fn acked(&self) {
        let w = {
            let mut s = self.lock();
            s.acked.get_or_insert(true);
            s.ack_waiter.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Waits until the peer acknowledged everything written (`Ok`) or the writing side ended
    /// without that.
    pub(crate) fn poll_acked(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.lock();
        match s.acked {
            Some(true) => Poll::Ready(Ok(())),
            Some(false) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "mesh stream ended before the peer acknowledged everything written",
            ))),
            None => {
                s.ack_waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
