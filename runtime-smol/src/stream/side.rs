//! The node task's side of streams: the core's [`Streams`], the services it owns, and one
//! [`Open`] per stream the application holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Sender, WeakSender};
use async_executor::Executor;
use bytes::Bytes;
use receptor_core::stream::{Read, StreamEvent, StreamHandle, Streams};
use receptor_core::{Addr, Event, Node, NodeId, ServiceName};
use tracing::debug;

use super::mesh::MeshStream;
use super::shared::Shared;
use super::{ACCEPT_QUEUE, Mailbox, NODE_GONE, StreamCommand, StreamListener};
use crate::apps::Command;

/// Bytes a writer may have handed to the node task beyond what QUIC has taken.
const WRITE_CREDIT: usize = 1 << 20;
/// Largest chunk read from QUIC at once.
const READ_CHUNK: usize = 64 * 1024;

/// The node task's side of one stream the application holds.
struct Open {
    shared: Arc<Shared>,
    /// Bytes handed over that QUIC has not taken yet (at most `WRITE_CREDIT`).
    pending: VecDeque<Bytes>,
    fin_wanted: bool,
    fin_sent: bool,
    /// Reading has ended (EOF or error); later data is discarded.
    read_done: bool,
    app_gone: bool,
    /// The peer acknowledged everything we sent, FIN included.
    acked: bool,
    /// The connection is closed; what it left is still being read.
    conn_gone: bool,
    /// The ephemeral service a dial bound; unbound when the stream ends.
    local: Option<ServiceName>,
}

type DialReply = Sender<Result<MeshStream, String>>;

/// The stream half of the node task.
pub(crate) struct StreamSide {
    streams: Streams,
    /// Services whose datagrams and notices belong to `streams`.
    services: BTreeSet<ServiceName>,
    listeners: BTreeMap<ServiceName, Sender<MeshStream>>,
    dials: BTreeMap<StreamHandle, (DialReply, ServiceName)>,
    open: BTreeMap<StreamHandle, Open>,
    /// Weak, so that the node task does not keep its own command queue open: it ends when
    /// every handle, listener and stream is gone.
    commands: WeakSender<Command>,
    executor: Arc<Executor<'static>>,
}

impl StreamSide {
    pub(crate) fn new(
        seed: u64,
        commands: &Sender<Command>,
        executor: Arc<Executor<'static>>,
    ) -> Self {
        Self {
            streams: Streams::new(seed),
            services: BTreeSet::new(),
            listeners: BTreeMap::new(),
            dials: BTreeMap::new(),
            open: BTreeMap::new(),
            commands: commands.downgrade(),
            executor,
        }
    }

    /// Takes a node event meant for a stream service; hands any other back.
    pub(crate) fn event(&mut self, now: Instant, ev: Event) -> Option<Event> {
        match ev {
            Event::Datagram {
                service,
                from,
                payload,
            } if self.services.contains(&service) => {
                self.streams.handle_datagram(now, service, from, payload);
                None
            }
            Event::Unreachable {
                service, notice, ..
            } if self.services.contains(&service) => {
                self.streams.handle_unreachable(
                    service,
                    &notice.to_node,
                    &notice.to_service,
                    &notice.problem,
                );
                None
            }
            ev => Some(ev),
        }
    }

    /// When QUIC's next timer is due.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        self.streams.poll_timeout()
    }

    /// Runs QUIC's due timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.streams.handle_timeout(now);
    }

    /// Closes every connection (the node is shutting down); the peers learn at once rather
    /// than at their idle timeout once `pump` has sent the closes.
    pub(crate) fn close_all(&mut self, now: Instant) {
        let ids: Vec<StreamHandle> = self.open.keys().chain(self.dials.keys()).copied().collect();
        for id in ids {
            self.streams.close(now, id);
        }
    }

    pub(crate) fn command(&mut self, node: &mut Node, now: Instant, cmd: StreamCommand) {
        match cmd {
            StreamCommand::Dial {
                node: to,
                service,
                tls,
                server_name,
                reply,
            } => {
                let target = if to.eq_ignore_ascii_case("localhost") {
                    node.id().to_string()
                } else {
                    to
                };
                let remote = match (NodeId::new(&target), ServiceName::new(&service)) {
                    (Ok(node), Ok(service)) => Addr { node, service },
                    (Err(e), _) => return drop(reply.try_send(Err(e.to_string()))),
                    (_, Err(e)) => return drop(reply.try_send(Err(e.to_string()))),
                };
                let local = match node.listen(now, None, None) {
                    Ok(s) => s,
                    Err(e) => return drop(reply.try_send(Err(e.to_string()))),
                };
                self.services.insert(local);
                match self.streams.dial(now, local, remote, tls, &server_name) {
                    Ok(id) => {
                        self.dials.insert(id, (reply, local));
                    }
                    Err(e) => {
                        self.services.remove(&local);
                        node.unlisten(now, local);
                        let _ = reply.try_send(Err(e.to_string()));
                    }
                }
            }
            StreamCommand::Listen {
                service,
                tls,
                advertise,
                reply,
            } => {
                let r = match self.commands.upgrade() {
                    None => Err(NODE_GONE.to_owned()),
                    Some(keep) => node
                        .listen(now, Some(&service), advertise)
                        .map_err(|e| e.to_string())
                        .map(|name| {
                            self.services.insert(name);
                            self.streams.listen(name, tls);
                            let (tx, rx) = async_channel::bounded(ACCEPT_QUEUE);
                            self.listeners.insert(name, tx);
                            StreamListener {
                                service: name,
                                rx,
                                _node: keep,
                            }
                        }),
                };
                let _ = reply.try_send(r);
            }
            StreamCommand::Write(id, data) => {
                if let Some(o) = self.open.get_mut(&id) {
                    o.pending.push_back(data);
                    self.flush_writes(now, id);
                }
            }
            StreamCommand::Shutdown(id) => {
                if let Some(o) = self.open.get_mut(&id) {
                    o.fin_wanted = true;
                    self.flush_writes(now, id);
                }
            }
            StreamCommand::Resume(id) => {
                if self.fill_reader(now, id) {
                    self.maybe_close(node, now, id, true);
                }
            }
            StreamCommand::Drop(id) => {
                if let Some(o) = self.open.get_mut(&id) {
                    o.app_gone = true;
                    o.fin_wanted = true;
                    self.flush_writes(now, id);
                    let ended = self.fill_reader(now, id);
                    self.maybe_close(node, now, id, ended);
                }
            }
        }
    }

    /// Hands queued bytes to QUIC as far as flow control allows; returns credit for them.
    fn flush_writes(&mut self, now: Instant, id: StreamHandle) {
        let Some(o) = self.open.get_mut(&id) else {
            return;
        };
        while let Some(mut chunk) = o.pending.pop_front() {
            match self.streams.write(now, id, &chunk) {
                Ok(n) => {
                    o.shared.add_credit(n);
                    if n < chunk.len() {
                        o.pending.push_front(chunk.split_off(n));
                        return;
                    }
                }
                Err(e) => {
                    debug!(?id, "stream write failed: {e}");
                    o.pending.clear();
                    o.shared.fail_writes(&e.to_string());
                    return;
                }
            }
        }
        if o.fin_wanted && !o.fin_sent {
            o.fin_sent = true;
            let _ = self.streams.finish(now, id);
        }
    }

    /// Moves data from QUIC to the reader while its queue has room. Returns whether reading
    /// ended just now (EOF or error).
    fn fill_reader(&mut self, now: Instant, id: StreamHandle) -> bool {
        let Some(o) = self.open.get_mut(&id) else {
            return false;
        };
        if o.read_done {
            return false;
        }
        if o.app_gone {
            // Nobody reads: drain and discard so the peer is not stalled.
            loop {
                match self.streams.read(now, id, usize::MAX) {
                    Ok(Read::Data(_)) => {}
                    Ok(Read::Blocked) => return false,
                    Ok(Read::Eof) | Err(_) => {
                        o.read_done = true;
                        return true;
                    }
                }
            }
        }
        while o.shared.room() {
            match self.streams.read(now, id, READ_CHUNK) {
                Ok(Read::Data(b)) => o.shared.push(b),
                Ok(Read::Blocked) => return false,
                Ok(Read::Eof) => {
                    o.read_done = true;
                    o.shared.end_reads(None);
                    return true;
                }
                Err(e) => {
                    o.read_done = true;
                    o.shared.end_reads(Some(e.to_string()));
                    return true;
                }
            }
        }
        false
    }

    /// Closes a stream's connection once both directions are finished. What QUIC has
    /// acknowledged may not be read yet by the peer's application, and a close discards it,
    /// so only the side that reads the last FIN (its own already acknowledged) closes at
    /// once; the other leaves the close to its peer and closes itself only after the idle
    /// timeout. An application that dropped its stream without reading to the end is
    /// treated the same way once its own data is acknowledged.
    fn maybe_close(
        &mut self,
        node: &mut Node,
        now: Instant,
        id: StreamHandle,
        read_last_fin: bool,
    ) {
        let Some(o) = self.open.get(&id) else { return };
        if o.conn_gone {
            if o.read_done {
                self.forget(node, now, id);
            }
            return;
        }
        let written = o.fin_sent && o.pending.is_empty() && o.acked;
        if !written {
            return;
        }
        if o.read_done && read_last_fin {
            self.streams.close(now, id);
            self.forget(node, now, id);
        } else if o.read_done || o.app_gone {
            self.streams
                .close_at(id, now + receptor_core::stream::IDLE_TIMEOUT);
        }
    }

    /// Drops a stream's state: its writer fails, its reader reads what is queued, then EOF
    /// (or the error recorded before).
    fn forget(&mut self, node: &mut Node, now: Instant, id: StreamHandle) {
        if let Some(o) = self.open.remove(&id) {
            o.shared.fail_writes("mesh stream closed");
            o.shared.end_reads(None);
            if let Some(local) = o.local {
                self.services.remove(&local);
                node.unlisten(now, local);
            }
        }
    }

    /// Moves QUIC packets into the node and stream events to the application. Returns whether
    /// anything moved (the caller loops until quiet).
    pub(crate) fn pump(&mut self, node: &mut Node, now: Instant) -> bool {
        let mut moved = false;
        while let Some(ev) = self.streams.poll_event() {
            moved = true;
            self.stream_event(node, now, ev);
        }
        while let Some(d) = self.streams.poll_datagram() {
            moved = true;
            // A lost packet is QUIC's to recover; no route now may be a route soon.
            let _ = node.send(
                now,
                d.from,
                d.to.node.as_str(),
                d.to.service,
                d.payload,
                None,
            );
        }
        moved
    }

    fn stream_event(&mut self, node: &mut Node, now: Instant, ev: StreamEvent) {
        match ev {
            StreamEvent::Connected { stream } => {
                if let Some((reply, local)) = self.dials.remove(&stream) {
                    let remote = self.streams.remote(stream).cloned();
                    match self.open_stream(stream, Some(local), remote) {
                        // A dialer that gave up drops the stream, which closes it.
                        Some(s) => drop(reply.try_send(Ok(s))),
                        None => {
                            self.streams.close(now, stream);
                            self.services.remove(&local);
                            node.unlisten(now, local);
                        }
                    }
                }
            }
            StreamEvent::Accepted {
                stream,
                service,
                remote,
            } => {
                let s = self.open_stream(stream, None, Some(remote));
                let taken = match (s, self.listeners.get(&service)) {
                    (Some(s), Some(l)) => l.try_send(s).is_ok(),
                    _ => false,
                };
                if !taken {
                    // A full accept queue, or nobody accepting: refuse it.
                    self.streams.close(now, stream);
                    self.open.remove(&stream);
                }
            }
            StreamEvent::Readable { stream } if self.fill_reader(now, stream) => {
                self.maybe_close(node, now, stream, true);
            }
            StreamEvent::Readable { .. } => {}
            StreamEvent::Writable { stream } => self.flush_writes(now, stream),
            StreamEvent::Finished { stream } => {
                if let Some(o) = self.open.get_mut(&stream) {
                    o.acked = true;
                }
                self.maybe_close(node, now, stream, false);
            }
            StreamEvent::Closed { stream, error } => {
                if let Some((reply, local)) = self.dials.remove(&stream) {
                    let why = error.clone().unwrap_or_else(|| "connection closed".into());
                    let _ = reply.try_send(Err(why));
                    self.services.remove(&local);
                    node.unlisten(now, local);
                }
                if let Some(o) = self.open.get_mut(&stream) {
                    o.conn_gone = true;
                    o.shared
                        .fail_writes(error.as_deref().unwrap_or("mesh stream closed"));
                    // Deliver what the connection left (then its end or its error) as far as
                    // the reader has room; the rest as it makes room.
                    self.fill_reader(now, stream);
                    self.maybe_close(node, now, stream, false);
                }
            }
            _ => {}
        }
    }

    /// The application's end of a stream that just opened; `None` when the node is on its
    /// way out (no handle left to keep its command queue open).
    fn open_stream(
        &mut self,
        id: StreamHandle,
        local: Option<ServiceName>,
        remote: Option<Addr>,
    ) -> Option<MeshStream> {
        let commands = self.commands.upgrade()?;
        let shared = Arc::new(Shared::new(WRITE_CREDIT));
        self.open.insert(
            id,
            Open {
                shared: shared.clone(),
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
        let mailbox = Mailbox {
            commands,
            executor: self.executor.clone(),
        };
        Some(MeshStream::new(id, remote, mailbox, shared))
    }
}

impl Drop for StreamSide {
    /// The node task ended: every stream fails, and pending dials learn it (their reply
    /// channels close).
    fn drop(&mut self) {
        for o in self.open.values() {
            o.shared.fail_writes(NODE_GONE);
            o.shared.end_reads(Some(NODE_GONE.to_owned()));
        }
    }
}
