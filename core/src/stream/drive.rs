//! Moving one QUIC connection forward: transmits, endpoint events, application events.

use std::time::Instant;

use bytes::Bytes;
use quinn_proto::{Dir, Event, StreamEvent as QStreamEvent, VarInt};

use super::{CLOSE_SETUP, OutDatagram, State, StreamEvent, StreamFailure, StreamHandle, Streams};

/// Packets at least this large leave in the buffer quinn wrote them into, without a copy.
const HAND_OVER: usize = 4096;

impl Streams {
    /// Drains everything the connection has to say after an input, and files its next timer.
    pub(super) fn drive(&mut self, now: Instant, id: StreamHandle) {
        self.drive_once(now, id);
        self.note_path(now, id);
        self.reindex(id);
    }

    fn drive_once(&mut self, now: Instant, id: StreamHandle) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let mut progressed = false;
            // Packets out, one datagram each (no GSO: each is one mesh message).
            loop {
                self.buf.clear();
                let Some(t) = c.conn.poll_transmit(now, 1, &mut self.buf) else {
                    break;
                };
                progressed = true;
                let payload = if t.size >= HAND_OVER && t.size == self.buf.len() {
                    // A large packet: hand over the buffer itself rather than copying it (quinn
                    // allocates the next one); small ones (ACKs) are copied out of the reused one.
                    Bytes::from(std::mem::take(&mut self.buf))
                } else {
                    Bytes::copy_from_slice(self.buf.get(..t.size).unwrap_or_default())
                };
                let to = self
                    .addrs
                    .mesh(&t.destination)
                    .cloned()
                    .unwrap_or_else(|| c.remote.clone());
                self.out.push_back(OutDatagram {
                    from: c.service,
                    to,
                    payload,
                });
            }
            // Endpoint bookkeeping (connection IDs, drained).
            let mut drained = false;
            while let Some(ev) = c.conn.poll_endpoint_events() {
                progressed = true;
                drained |= ev.is_drained();
                if let Some(e) = self.endpoints.get_mut(&c.service)
                    && e.serial == c.endpoint
                    && let Some(cev) = e.ep.handle_event(c.handle, ev)
                {
                    c.conn.handle_event(cev);
                }
            }
            // Application events (a connection that drains at once, as on an idle timeout,
            // still has its `ConnectionLost` to tell before it is forgotten).
            while let Some(ev) = c.conn.poll() {
                progressed = true;
                match ev {
                    Event::Connected => {
                        if c.client {
                            if let Some(s) = c.conn.streams().open(Dir::Bi) {
                                // Go's listener waits for this byte before it hands the stream on.
                                let _ = c.conn.send_stream(s).write(&[0]);
                                c.stream = Some(s);
                                c.state = State::Confirming;
                            }
                        } else {
                            c.state = State::AwaitStream;
                            Self::accept_stream(c);
                            Self::read_zero(now, c);
                            Self::announce(&mut self.events, id, c);
                        }
                    }
                    Event::ConnectionLost { reason } => {
                        let error = StreamFailure::from_lost(&reason);
                        if !c.client && !c.announced && !c.app_closed {
                            // A listener's connection that never reached the application.
                            if let Some(failure) = error.clone() {
                                self.events.push_back(StreamEvent::Refused {
                                    service: c.service,
                                    remote: c.remote.clone(),
                                    failure,
                                });
                            }
                        } else if !c.app_closed {
                            // What arrived before the close stays readable: a peer closes
                            // once QUIC acknowledged its data, not once we read it.
                            Self::keep_tail(&mut self.leftovers, id, c, error.is_none());
                            self.events
                                .push_back(StreamEvent::Closed { stream: id, error });
                        }
                        c.app_closed = true;
                    }
                    // A new stream's first data comes with `Opened`, not with a `Readable`.
                    Event::Stream(QStreamEvent::Opened { dir: Dir::Bi }) => {
                        Self::accept_stream(c);
                        Self::read_zero(now, c);
                        Self::announce(&mut self.events, id, c);
                    }
                    Event::Stream(QStreamEvent::Readable { .. }) => {
                        if c.state == State::AwaitZero {
                            Self::read_zero(now, c);
                            Self::announce(&mut self.events, id, c);
                        } else if c.state == State::Open && !c.app_closed {
                            self.events.push_back(StreamEvent::Readable { stream: id });
                        }
                    }
                    Event::Stream(QStreamEvent::Writable { .. } | QStreamEvent::Stopped { .. })
                        if c.state == State::Open && !c.app_closed =>
                    {
                        self.events.push_back(StreamEvent::Writable { stream: id });
                    }
                    Event::Stream(QStreamEvent::Finished { .. }) if !c.app_closed => {
                        self.events.push_back(StreamEvent::Finished { stream: id });
                    }
                    _ => {}
                }
            }
            if c.state == State::Confirming && confirmed(&c.conn) {
                c.state = State::Open;
                c.deadline = None;
                if !c.app_closed {
                    self.events.push_back(StreamEvent::Connected { stream: id });
                    // What the server sent with its confirmation.
                    self.events.push_back(StreamEvent::Readable { stream: id });
                }
            }
            if drained {
                self.forget(id);
                return;
            }
            if !progressed {
                return;
            }
        }
    }

    /// Server: tells the application about a stream whose `0x00` just arrived.
    fn announce(
        events: &mut std::collections::VecDeque<StreamEvent>,
        id: StreamHandle,
        c: &mut super::Conn,
    ) {
        if c.state == State::Open && !c.client && !c.announced && !c.app_closed {
            c.announced = true;
            events.push_back(StreamEvent::Accepted {
                stream: id,
                service: c.service,
                remote: c.remote.clone(),
            });
            events.push_back(StreamEvent::Readable { stream: id });
        }
    }

    /// Server: take the client's first bidirectional stream; later ones are never used.
    fn accept_stream(c: &mut super::Conn) {
        if c.state != State::AwaitStream {
            return;
        }
        if let Some(s) = c.conn.streams().accept(Dir::Bi) {
            c.stream = Some(s);
            c.state = State::AwaitZero;
        }
    }

    /// Server: the stream must start with `0x00`; anything else closes with code 500.
    fn read_zero(now: Instant, c: &mut super::Conn) {
        if c.state != State::AwaitZero {
            return;
        }
        let Some(s) = c.stream else { return };
        let mut recv = c.conn.recv_stream(s);
        let Ok(mut chunks) = recv.read(true) else {
            return;
        };
        let first = chunks.next(usize::MAX);
        let _ = chunks.finalize();
        match first {
            Ok(Some(chunk)) => {
                let mut bytes = chunk.bytes;
                if bytes.first() == Some(&0) {
                    let rest = bytes.split_off(1);
                    c.first = (!rest.is_empty()).then_some(rest);
                    c.state = State::Open;
                    c.deadline = None;
                } else {
                    c.conn.close(
                        now,
                        VarInt::from_u32(CLOSE_SETUP),
                        Bytes::from_static(b"Read Data Error"),
                    );
                }
            }
            Ok(None) | Err(quinn_proto::ReadError::Reset(_)) => {
                c.conn.close(
                    now,
                    VarInt::from_u32(CLOSE_SETUP),
                    Bytes::from_static(b"Read Data Error"),
                );
            }
            Err(quinn_proto::ReadError::Blocked) => {}
        }
    }

    /// We closed a connection the application did not close (its linger or setup deadline
    /// passed, or an unreachable notice named its peer). Quinn reports no `ConnectionLost`
    /// for a close of ours, so the application hears `Closed` here, as for a close by the
    /// peer: what arrived stays readable. A server stream never announced stays unknown to
    /// the application (`Refused` tells the node why, if it failed).
    pub(super) fn closed_here(&mut self, id: StreamHandle, error: Option<StreamFailure>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.app_closed {
            return;
        }
        c.app_closed = true;
        if c.client || c.announced {
            Self::keep_tail(&mut self.leftovers, id, c, error.is_none());
            self.events
                .push_back(StreamEvent::Closed { stream: id, error });
        } else if let Some(failure) = error {
            self.events.push_back(StreamEvent::Refused {
                service: c.service,
                remote: c.remote.clone(),
                failure,
            });
        }
    }

    /// Keeps what a connection that ended under the application left readable, for
    /// [`Streams::read`]; `clean` (a normal close) ends it cleanly even without its FIN. Only
    /// an open stream is read: a dial that fails before it opens leaves nothing (nobody would
    /// read it, and its entry would stay forever).
    fn keep_tail(
        leftovers: &mut super::Leftovers,
        id: StreamHandle,
        c: &mut super::Conn,
        clean: bool,
    ) {
        if c.state != State::Open {
            return;
        }
        let (tail, fin) = Self::take_tail(c);
        leftovers.insert(id, (tail, fin || clean));
    }

    /// Everything the stream has buffered, and whether its FIN was among it.
    fn take_tail(c: &mut super::Conn) -> (std::collections::VecDeque<Bytes>, bool) {
        let mut tail = std::collections::VecDeque::new();
        if let Some(first) = c.first.take() {
            tail.push_back(first);
        }
        let Some(s) = c.stream.filter(|_| c.state == State::Open) else {
            return (tail, false);
        };
        let mut recv = c.conn.recv_stream(s);
        let Ok(mut chunks) = recv.read(true) else {
            return (tail, false);
        };
        let fin = loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => tail.push_back(chunk.bytes),
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        let _ = chunks.finalize();
        (tail, fin)
    }

    fn forget(&mut self, id: StreamHandle) {
        if let Some(c) = self.conns.remove(&id) {
            if let Some(t) = c.timer {
                self.timers.remove(&(t, id));
            }
            self.by_handle.remove(&(c.endpoint, c.handle));
            // Quinn drained it: it sends nothing more, and its endpoint let go of it.
            self.addrs.release(&c.remote);
            // A dialer's endpoint lives as long as its connection (one, unless a new dial
            // picked the same name while this one drained).
            if c.client
                && self
                    .endpoints
                    .get(&c.service)
                    .is_some_and(|e| e.serial == c.endpoint && e.ep.open_connections() == 0)
            {
                self.endpoints.remove(&c.service);
            }
        }
    }
}

/// Whether the server has accepted the client: it confirmed the handshake (HANDSHAKE_DONE),
/// or it sent stream data, which it does only on a connection it accepted.
fn confirmed(conn: &quinn_proto::Connection) -> bool {
    let rx = conn.stats().frame_rx;
    rx.handshake_done > 0 || rx.stream > 0
}
