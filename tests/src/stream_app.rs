//! The simulator's ports for the core's stream glue (`receptor_core::stream::side`): what an
//! application's end of a stream is here (a small shared state the echo, sink and dialer
//! applications read and fill), how dial answers and accepted streams come back, and the
//! applications themselves ([`service`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use receptor_core::stream::app::AppEnd;
use receptor_core::stream::side::{StreamPorts, StreamSide};
use receptor_core::stream::{DialFailure, StreamFailure, StreamHandle};
use receptor_core::{Addr, Channels, Node, ServiceName};

use crate::streams::{StreamApp, StreamEnd, StreamReport, StreamRole, fnv, pattern};

/// Largest chunk an application writes at once.
const CHUNK: usize = 64 * 1024;

/// Bytes a writer may have handed to the glue beyond what QUIC has taken (the runtimes
/// allow 1 MiB; less here keeps the simulated queues short).
pub(crate) const WRITE_CREDIT: usize = 256 * 1024;

/// How one stream's end stands, as the glue left it for the application.
#[derive(Debug, Default)]
pub(crate) struct EndState {
    /// Read, not yet taken by the application.
    pub(crate) inbox: VecDeque<Bytes>,
    inbox_len: usize,
    /// Bytes the application holds that count against its reading room (an echo's queue).
    pub(crate) held: usize,
    /// At most this much inbox and held data before reading pauses (`None`: no limit).
    pub(crate) cap: Option<usize>,
    /// Reading is over: `Some(None)` at the end of the stream, else the error.
    pub(crate) end: Option<Option<String>>,
    /// Bytes the application may still hand over.
    pub(crate) credit: usize,
    /// Bytes QUIC took.
    pub(crate) taken: u64,
    pub(crate) write_error: Option<String>,
    pub(crate) acked: bool,
    /// How the connection ended: `Some(None)` this end closed it, `Some(Some(lost))` not.
    pub(crate) gone: Option<Option<Option<StreamFailure>>>,
}

impl EndState {
    /// Takes what was read so far.
    pub(crate) fn take_inbox(&mut self) -> VecDeque<Bytes> {
        self.inbox_len = 0;
        std::mem::take(&mut self.inbox)
    }
}

/// A stream's state, shared by the glue's end and the application.
pub(crate) type Shared = Arc<Mutex<EndState>>;

/// Locks a stream's state (nothing panics while it is held).
pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, EndState> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The glue's end of one stream.
pub(crate) struct SimEnd(Shared);

impl AppEnd for SimEnd {
    fn room(&mut self) -> bool {
        let s = lock(&self.0);
        s.cap.is_none_or(|c| s.inbox_len + s.held < c)
    }

    fn push(&mut self, data: Bytes) {
        let mut s = lock(&self.0);
        s.inbox_len += data.len();
        s.inbox.push_back(data);
    }

    fn end(&mut self, error: Option<String>) {
        lock(&self.0).end.get_or_insert(error);
    }

    fn add_credit(&mut self, n: usize) {
        let mut s = lock(&self.0);
        s.credit += n;
        s.taken += n as u64;
    }

    fn fail_writes(&mut self, why: &str) {
        lock(&self.0)
            .write_error
            .get_or_insert_with(|| why.to_owned());
    }

    fn acked(&mut self) {
        lock(&self.0).acked = true;
    }

    fn lost(&mut self, error: Option<&StreamFailure>) {
        lock(&self.0).gone.get_or_insert(Some(error.cloned()));
    }

    fn closed(&mut self) {
        lock(&self.0).gone.get_or_insert(None);
    }
}

/// A stream that opened: its handle, peer and state.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) handle: StreamHandle,
    pub(crate) remote: Option<Addr>,
    pub(crate) shared: Shared,
}

/// Answers in the simulator: a channel the simulator drains after each step.
#[derive(Debug)]
pub(crate) struct SimChannels;

impl Channels for SimChannels {
    type Reply<T> = mpsc::Sender<T>;
    type Feed<T> = mpsc::Sender<T>;

    fn reply<T>(tx: mpsc::Sender<T>, value: T) {
        let _ = tx.send(value);
    }

    fn feed<T>(tx: &mpsc::Sender<T>, value: T) {
        let _ = tx.send(value);
    }
}

/// The simulator's ports: accepted streams wait in `accepted` for the simulator, with the
/// application and service of their listener.
#[derive(Debug, Default)]
pub(crate) struct SimPorts {
    pub(crate) accepted: Vec<((StreamApp, ServiceName), Opened)>,
}

impl StreamPorts for SimPorts {
    type Channels = SimChannels;
    type End = SimEnd;
    type Stream = Opened;
    type Accept = (StreamApp, ServiceName);

    fn open(&mut self, handle: StreamHandle, remote: Option<&Addr>) -> Option<(SimEnd, Opened)> {
        let shared = Arc::new(Mutex::new(EndState {
            credit: WRITE_CREDIT,
            ..EndState::default()
        }));
        let opened = Opened {
            handle,
            remote: remote.cloned(),
            shared: shared.clone(),
        };
        Some((SimEnd(shared), opened))
    }

    fn offer(&mut self, listener: &(StreamApp, ServiceName), stream: Opened) -> bool {
        self.accepted.push((*listener, stream));
        true
    }
}

/// A stream the test drives itself (a [`StreamApp::Raw`] listener's, or
/// [`crate::Sim::stream_dial_raw`]'s): what was read waits here for the test, what the test
/// writes goes out as credit allows.
#[derive(Debug, Default)]
pub(crate) struct RawIo {
    /// Read, not yet taken by the test.
    pub(crate) inbox: VecDeque<Bytes>,
    /// Written by the test, not yet handed to the glue.
    pub(crate) outbox: VecDeque<Bytes>,
    /// Why the dial failed, as the glue said.
    pub(crate) dial_failure: Option<DialFailure>,
    /// The test let go before the dial answered: drop the stream once it opens.
    pub(crate) drop_wanted: bool,
}

/// One end of a stream: its report and its application's state.
pub(crate) struct Entry {
    pub(crate) report: StreamReport,
    pub(crate) node: u32,
    pub(crate) handle: StreamHandle,
    /// A dialer's answer, until it comes.
    pub(crate) dial: Option<mpsc::Receiver<Result<Opened, DialFailure>>>,
    /// The stream's state, once open.
    pub(crate) shared: Option<Shared>,
    /// Echo: read, not yet handed back.
    pub(crate) echo: VecDeque<Bytes>,
    /// Dialer: pattern bytes handed over.
    pub(crate) handed: u64,
    /// FIN once everything queued is handed over.
    pub(crate) fin_wanted: bool,
    /// Driven by the test rather than by an application here.
    pub(crate) raw: Option<RawIo>,
}

impl Entry {
    pub(crate) fn new(report: StreamReport, node: u32, handle: StreamHandle) -> Self {
        Self {
            report,
            node,
            handle,
            dial: None,
            shared: None,
            echo: VecDeque::new(),
            handed: 0,
            fin_wanted: false,
            raw: None,
        }
    }

    pub(crate) fn end(&mut self, end: StreamEnd, at: Duration) {
        if self.report.end.is_none() {
            self.report.end = Some(end);
            self.report.ended_at = Some(at);
        }
    }

    /// Whether the application has something to hand over (data or its FIN).
    fn wants_to_write(&self) -> bool {
        let r = &self.report;
        (r.role == StreamRole::Dialer && self.handed < r.queued)
            || !self.echo.is_empty()
            || self.raw.as_ref().is_some_and(|raw| !raw.outbox.is_empty())
            || (self.fin_wanted && !r.fin_sent)
    }

    /// Takes in what the glue left (data, ends, credit) and works out what to hand over
    /// next; returns the writes, whether to finish, and whether anything changed. Runs under
    /// the stream's lock: the glue is called only after it is released.
    fn absorb(&mut self, s: &mut EndState, at: Duration) -> (Vec<Bytes>, bool, bool) {
        let mut progress = false;
        for b in s.take_inbox() {
            progress = true;
            self.took(s, b);
        }
        let r = &mut self.report;
        if !r.eof
            && r.read_error.is_none()
            && let Some(end) = &s.end
        {
            progress = true;
            match end {
                None => {
                    r.eof = true;
                    // Echo and sink finish their side once the dialer has finished its.
                    if r.role != StreamRole::Dialer && self.raw.is_none() {
                        self.fin_wanted = true;
                    }
                }
                Some(e) => r.read_error = Some(e.clone()),
            }
        }
        if r.written != s.taken || r.fin_acked != s.acked {
            progress = true;
            r.written = s.taken;
            r.fin_acked = s.acked;
        }
        if let Some(gone) = &s.gone
            && self.report.end.is_none()
        {
            progress = true;
            let end = gone.clone().map_or(StreamEnd::Closed, StreamEnd::Lost);
            self.end(end, at);
        }
        if let Some(e) = &s.write_error {
            // A failed write is the application's to see only if it still had one to make.
            if self.report.write_error.is_none() && self.wants_to_write() {
                progress = true;
                self.report.write_error = Some(e.clone());
            }
            return (Vec::new(), false, progress);
        }
        let mut writes = Vec::new();
        let r = &mut self.report;
        while s.credit > 0 {
            let chunk = match (r.role, self.raw.as_mut()) {
                (_, Some(raw)) => match raw.outbox.pop_front() {
                    Some(mut b) => {
                        if b.len() > s.credit {
                            raw.outbox.push_front(b.split_off(s.credit));
                        }
                        b
                    }
                    None => break,
                },
                (StreamRole::Dialer, None) if self.handed < r.queued => {
                    let n = (r.queued - self.handed).min(CHUNK as u64) as usize;
                    let n = n.min(s.credit);
                    Bytes::from(pattern(r.seed, self.handed, n))
                }
                (StreamRole::Acceptor(StreamApp::Echo), None) => match self.echo.pop_front() {
                    Some(mut b) => {
                        if b.len() > s.credit {
                            self.echo.push_front(b.split_off(s.credit));
                        }
                        s.held -= b.len();
                        b
                    }
                    None => break,
                },
                _ => break,
            };
            s.credit -= chunk.len();
            self.handed += chunk.len() as u64;
            r.written_hash = fnv(r.written_hash, &chunk);
            writes.push(chunk);
        }
        let drained = match &self.raw {
            Some(raw) => raw.outbox.is_empty(),
            None => self.handed == r.queued || r.role != StreamRole::Dialer,
        };
        let finish = self.fin_wanted && !r.fin_sent && drained && self.echo.is_empty();
        if finish {
            r.fin_sent = true;
        }
        progress |= finish || !writes.is_empty();
        (writes, finish, progress)
    }

    /// Bytes read: hashed, checked (dialer) or queued to echo.
    fn took(&mut self, s: &mut EndState, b: Bytes) {
        let r = &mut self.report;
        if let Some(raw) = &mut self.raw {
            raw.inbox.push_back(b.clone());
        } else if r.role == StreamRole::Dialer && r.mismatch_at.is_none() {
            let want = pattern(r.seed, r.read, b.len());
            if let Some(i) = want.iter().zip(b.iter()).position(|(x, y)| x != y) {
                r.mismatch_at = Some(r.read + i as u64);
            }
        }
        r.read_hash = fnv(r.read_hash, &b);
        r.read += b.len() as u64;
        if r.role == StreamRole::Acceptor(StreamApp::Echo) {
            s.held += b.len();
            self.echo.push_back(b);
        }
    }
}

/// Moves one stream's application as far as it can go now; returns whether anything moved.
pub(crate) fn service(
    side: &mut StreamSide<SimPorts>,
    node: &mut Node,
    e: &mut Entry,
    now: Instant,
    at: Duration,
) -> bool {
    let mut progress = false;
    if let Some(answer) = e.dial.as_ref().and_then(|rx| rx.try_recv().ok()) {
        progress = true;
        e.dial = None;
        match answer {
            Ok(o) if e.raw.as_ref().is_some_and(|r| r.drop_wanted) => {
                // The test gave up on this dial: let go of the stream at once.
                side.dropped(node, now, o.handle);
                e.end(StreamEnd::Closed, at);
                return true;
            }
            Ok(o) => {
                e.report.opened_at = Some(at);
                e.shared = Some(o.shared);
            }
            Err(f) => {
                if let Some(raw) = &mut e.raw {
                    raw.dial_failure = Some(f.clone());
                }
                match f {
                    DialFailure::Failed(f) => e.end(StreamEnd::Lost(Some(f)), at),
                    DialFailure::Closed => e.end(StreamEnd::Lost(None), at),
                    other => e.end(StreamEnd::NotStarted(other.to_string()), at),
                }
            }
        }
    }
    let Some(shared) = e.shared.clone() else {
        return progress;
    };
    let (writes, finish, moved) = e.absorb(&mut lock(&shared), at);
    let handed_echo = !writes.is_empty() && e.report.role != StreamRole::Dialer;
    for data in writes {
        side.write(now, e.handle, data);
    }
    if finish {
        side.finish(now, e.handle);
    }
    if handed_echo {
        // The echo made room: read on.
        side.resume(node, now, e.handle);
    }
    progress || moved
}
