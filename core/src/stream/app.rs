//! The application's side of open streams, for runtimes: write queues with credit, read
//! pacing, half-close, and when to close a connection. Runtimes differ only in how bytes
//! reach their application ([`AppEnd`]); the rules live here, once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::{IDLE_TIMEOUT, Read, StreamEvent, StreamFailure, StreamHandle, Streams};
use crate::id::ServiceName;

/// Largest chunk read from QUIC at once.
const READ_CHUNK: usize = 64 * 1024;

/// How a runtime hands one stream's bytes to its application and takes them back.
pub trait AppEnd {
    /// Whether the reader can take more now. When it cannot, the runtime remembers that
    /// reading paused and calls [`AppStreams::resume`] once the reader made room (it may
    /// also just rely on [`AppStreams::retry_paused`]).
    fn room(&mut self) -> bool;
    /// Data for the reader (only after `room` said yes).
    fn push(&mut self, data: Bytes);
    /// Reading is over after what was pushed: `None` is the end of the stream, else an error.
    fn end(&mut self, error: Option<String>);
    /// The writer may hand over `n` more bytes (QUIC took that many).
    fn add_credit(&mut self, n: usize);
    /// Writes fail from now on.
    fn fail_writes(&mut self, why: &str);
    /// The peer acknowledged everything written, FIN included: a half-closed stream's data
    /// has arrived (comes before any `fail_writes` of a normal end).
    fn acked(&mut self) {}
    /// The connection ended without this end closing it: the peer closed it normally
    /// (`None`), or it failed. Comes before the `fail_writes` and the reader's end.
    fn lost(&mut self, _error: Option<&StreamFailure>) {}
    /// This end closed the connection, both directions being done.
    fn closed(&mut self) {}
}

/// A stream whose state is gone: the runtime unbinds `local` (a dial's ephemeral service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// The stream.
    pub stream: StreamHandle,
    /// The service its dial bound, if any.
    pub local: Option<ServiceName>,
}

struct Entry<A> {
    app: A,
    /// Bytes handed over that QUIC has not taken yet (bounded by the writer's credit).
    pending: VecDeque<Bytes>,
    fin_wanted: bool,
    fin_sent: bool,
    /// Reading ended (the peer's FIN, or an error).
    read_done: bool,
    /// The application let go of the stream.
    app_gone: bool,
    /// The peer acknowledged all we sent, FIN included.
    acked: bool,
    /// The connection is closed; what it left is still being read.
    conn_gone: bool,
    local: Option<ServiceName>,
}

/// Every open stream of one node, as its applications see them.
pub struct AppStreams<A> {
    open: BTreeMap<StreamHandle, Entry<A>>,
    paused: BTreeSet<StreamHandle>,
}

impl<A> Default for AppStreams<A> {
    fn default() -> Self {
        Self {
            open: BTreeMap::new(),
            paused: BTreeSet::new(),
        }
    }
}

impl<A: AppEnd> AppStreams<A> {
    /// Tracks a stream that just opened (`local`: the service its dial bound).
    pub fn insert(&mut self, stream: StreamHandle, app: A, local: Option<ServiceName>) {
        self.open.insert(
            stream,
            Entry {
                app,
                pending: VecDeque::new(),
                fin_wanted: false,
                fin_sent: false,
                read_done: false,
                app_gone: false,
                acked: false,
                conn_gone: false,
                local,
            },
        );
    }

    /// Stops tracking a stream without further ado (one nobody accepted).
    pub fn remove(&mut self, stream: StreamHandle) -> Option<A> {
        self.paused.remove(&stream);
        self.open.remove(&stream).map(|e| e.app)
    }

    /// The application's end of a tracked stream.
    pub fn app_mut(&mut self, stream: StreamHandle) -> Option<&mut A> {
        self.open.get_mut(&stream).map(|e| &mut e.app)
    }

    /// The streams tracked.
    pub fn streams(&self) -> impl Iterator<Item = StreamHandle> + '_ {
        self.open.keys().copied()
    }

    /// The application wrote `data`.
    pub fn write(&mut self, s: &mut Streams, now: Instant, stream: StreamHandle, data: Bytes) {
        if let Some(e) = self.open.get_mut(&stream) {
            e.pending.push_back(data);
            Self::flush(s, now, stream, e);
        }
    }

    /// The application finished its sending side.
    pub fn shutdown(&mut self, s: &mut Streams, now: Instant, stream: StreamHandle) {
        if let Some(e) = self.open.get_mut(&stream) {
            e.fin_wanted = true;
            Self::flush(s, now, stream, e);
        }
    }

    /// The application let go of the stream: finish it, discard what still comes.
    pub fn dropped(
        &mut self,
        s: &mut Streams,
        now: Instant,
        stream: StreamHandle,
    ) -> Option<Forgotten> {
        let e = self.open.get_mut(&stream)?;
        e.app_gone = true;
        e.fin_wanted = true;
        Self::flush(s, now, stream, e);
        let ended = self.fill(s, now, stream);
        self.maybe_close(s, now, stream, ended)
    }

    /// The reader made room: read on.
    pub fn resume(
        &mut self,
        s: &mut Streams,
        now: Instant,
        stream: StreamHandle,
    ) -> Option<Forgotten> {
        self.paused.remove(&stream);
        let ended = self.fill(s, now, stream);
        if ended {
            return self.maybe_close(s, now, stream, true);
        }
        None
    }

    /// Tries every paused stream again (for runtimes whose resume requests can be lost).
    pub fn retry_paused(&mut self, s: &mut Streams, now: Instant) -> Vec<Forgotten> {
        let ids: Vec<StreamHandle> = std::mem::take(&mut self.paused).into_iter().collect();
        ids.into_iter()
            .filter_map(|id| self.resume(s, now, id))
            .collect()
    }

    /// A stream event from [`Streams::poll_event`] for a tracked stream.
    pub fn handle_event(
        &mut self,
        s: &mut Streams,
        now: Instant,
        ev: &StreamEvent,
    ) -> Option<Forgotten> {
        match ev {
            StreamEvent::Readable { stream } => {
                let ended = self.fill(s, now, *stream);
                if ended {
                    return self.maybe_close(s, now, *stream, true);
                }
                None
            }
            StreamEvent::Writable { stream } => {
                if let Some(e) = self.open.get_mut(stream) {
                    Self::flush(s, now, *stream, e);
                }
                None
            }
            StreamEvent::Finished { stream } => {
                let e = self.open.get_mut(stream)?;
                e.acked = true;
                e.app.acked();
                self.maybe_close(s, now, *stream, false)
            }
            StreamEvent::Closed { stream, error } => {
                let e = self.open.get_mut(stream)?;
                e.conn_gone = true;
                e.app.lost(error.as_ref());
                match error {
                    Some(f) => e.app.fail_writes(&f.to_string()),
                    None => e.app.fail_writes("mesh stream closed"),
                }
                // What the connection left is read first, then its end or its error, as far
                // as the reader has room; the rest as it makes room.
                self.fill(s, now, *stream);
                self.maybe_close(s, now, *stream, false)
            }
            _ => None,
        }
    }

    /// The node is stopping: every reader and writer fails with `why`.
    pub fn shut_down(&mut self, why: &str) {
        for (_, mut e) in std::mem::take(&mut self.open) {
            e.app.end(Some(why.to_owned()));
            e.app.fail_writes(why);
        }
        self.paused.clear();
    }

    /// Hands queued bytes to QUIC as far as flow control allows, returning credit for them.
    fn flush(s: &mut Streams, now: Instant, stream: StreamHandle, e: &mut Entry<A>) {
        while !e.pending.is_empty() {
            let chunks = e.pending.make_contiguous();
            match s.write_chunks(now, stream, chunks) {
                Ok(0) => return,
                Ok(n) => {
                    e.app.add_credit(n);
                    // Whole chunks taken are gone; a partly taken one was cut in place.
                    while e.pending.front().is_some_and(Bytes::is_empty) {
                        e.pending.pop_front();
                    }
                }
                Err(err) => {
                    e.pending.clear();
                    e.app.fail_writes(&err.to_string());
                    return;
                }
            }
        }
        if e.fin_wanted && !e.fin_sent {
            e.fin_sent = true;
            let _ = s.finish(now, stream);
        }
    }

    /// Moves data from QUIC to the reader while it has room. Returns whether reading ended
    /// just now.
    fn fill(&mut self, s: &mut Streams, now: Instant, stream: StreamHandle) -> bool {
        let Some(e) = self.open.get_mut(&stream) else {
            return false;
        };
        if e.read_done {
            return false;
        }
        if e.app_gone {
            // Nobody reads: drain and discard so the peer is not stalled.
            loop {
                match s.read(now, stream, usize::MAX) {
                    Ok(Read::Data(_)) => {}
                    Ok(Read::Blocked) => return false,
                    Ok(Read::Eof) | Err(_) => {
                        e.read_done = true;
                        return true;
                    }
                }
            }
        }
        loop {
            if !e.app.room() {
                self.paused.insert(stream);
                return false;
            }
            match s.read(now, stream, READ_CHUNK) {
                Ok(Read::Data(b)) => e.app.push(b),
                Ok(Read::Blocked) => return false,
                Ok(Read::Eof) => {
                    e.read_done = true;
                    e.app.end(None);
                    return true;
                }
                Err(err) => {
                    e.read_done = true;
                    e.app.end(Some(err.to_string()));
                    return true;
                }
            }
        }
    }

    /// Closes a stream's connection once both directions are finished. What QUIC has
    /// acknowledged may not be read yet by the peer's application, and a close discards it
    /// (quic-go's), so only the side that reads the last FIN (its own already acknowledged)
    /// closes at once; the other leaves the close to its peer and closes itself only after
    /// the idle timeout. When the FINs cross, each end reads the other's before its own is
    /// acknowledged, and both waited out the idle timeout (500 connections, 55 KB each,
    /// after 200 remote units): a peer known to be one of ours keeps what arrived before a
    /// close readable ([`Streams::peer_keeps_unread`]), so with it the end closes as soon
    /// as both directions are done. An application that let go without reading to the end
    /// is treated the same way once its own data is acknowledged. A stream whose connection
    /// is gone is forgotten once its reader has everything.
    fn maybe_close(
        &mut self,
        s: &mut Streams,
        now: Instant,
        stream: StreamHandle,
        read_last_fin: bool,
    ) -> Option<Forgotten> {
        let e = self.open.get(&stream)?;
        if e.conn_gone {
            return e.read_done.then(|| self.forget(stream)).flatten();
        }
        let written = e.fin_sent && e.pending.is_empty() && e.acked;
        if !written {
            return None;
        }
        if e.read_done && (read_last_fin || s.peer_keeps_unread(stream)) {
            s.close(now, stream);
            if let Some(e) = self.open.get_mut(&stream) {
                e.app.closed();
            }
            return self.forget(stream);
        }
        if e.read_done || e.app_gone {
            s.close_at(stream, now + IDLE_TIMEOUT);
        }
        None
    }

    fn forget(&mut self, stream: StreamHandle) -> Option<Forgotten> {
        self.paused.remove(&stream);
        let mut e = self.open.remove(&stream)?;
        e.app.fail_writes("mesh stream closed");
        Some(Forgotten {
            stream,
            local: e.local,
        })
    }
}

/// Starts a dial from `node` to `service` on `to` (`localhost` is `node` itself): binds a
/// fresh ephemeral service for it on the node and dials from there. On failure nothing stays
/// bound. Returns the stream and the service it dials from.
pub fn dial(
    node: &mut crate::Node,
    streams: &mut Streams,
    now: Instant,
    to: &str,
    service: &str,
    tls: quinn_proto::ClientConfig,
    server_name: &str,
) -> Result<(StreamHandle, ServiceName), String> {
    let target = if to.eq_ignore_ascii_case("localhost") {
        node.id().clone()
    } else {
        crate::NodeId::new(to).map_err(|e| e.to_string())?
    };
    let remote = crate::Addr {
        node: target,
        service: ServiceName::new(service).map_err(|e| e.to_string())?,
    };
    let local = node.listen(now, None, None).map_err(|e| e.to_string())?;
    match streams.dial(now, local, remote, tls, server_name) {
        Ok(id) => Ok((id, local)),
        Err(e) => {
            node.unlisten(now, local);
            Err(e.to_string())
        }
    }
}
