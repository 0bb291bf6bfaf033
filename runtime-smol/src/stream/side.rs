//! The node task's side of streams: the core's [`Streams`], the services it owns, and the
//! application's ends of open streams (kept by the core's [`AppStreams`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Sender, WeakSender};
use async_executor::Executor;
use bytes::Bytes;
use receptor_core::stream::app::{self, AppEnd, AppStreams, Forgotten};
use receptor_core::stream::{DialFailure, StreamEvent, StreamHandle, Streams};
use receptor_core::{Addr, Event, Node, ServiceName};
use tracing::warn;

use super::mesh::MeshStream;
use super::shared::Shared;
use super::{ACCEPT_QUEUE, Mailbox, NODE_GONE, StreamCommand, StreamListener};
use crate::apps::Command;

/// Bytes a writer may have handed to the node task beyond what QUIC has taken.
const WRITE_CREDIT: usize = 1 << 20;

/// How the node task reaches one [`MeshStream`]: the buffer and credit they share.
struct SmolEnd(Arc<Shared>);

impl AppEnd for SmolEnd {
    fn room(&mut self) -> bool {
        self.0.room()
    }

    fn push(&mut self, data: Bytes) {
        self.0.push(data);
    }

    fn end(&mut self, error: Option<String>) {
        self.0.end_reads(error);
    }

    fn add_credit(&mut self, n: usize) {
        self.0.add_credit(n);
    }

    fn fail_writes(&mut self, why: &str) {
        self.0.fail_writes(why);
    }
}

type DialReply = Sender<Result<MeshStream, DialFailure>>;

/// The stream half of the node task.
pub(crate) struct StreamSide {
    streams: Streams,
    /// Services whose datagrams and notices belong to `streams`.
    services: BTreeSet<ServiceName>,
    listeners: BTreeMap<ServiceName, Sender<MeshStream>>,
    dials: BTreeMap<StreamHandle, (DialReply, ServiceName)>,
    open: AppStreams<SmolEnd>,
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
            open: AppStreams::default(),
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
                service,
                reporter,
                notice,
            } if self.services.contains(&service) => {
                self.streams.handle_unreachable(service, &reporter, &notice);
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
        let ids: Vec<StreamHandle> = self
            .open
            .streams()
            .chain(self.dials.keys().copied())
            .collect();
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
                match app::dial(
                    node,
                    &mut self.streams,
                    now,
                    &to,
                    &service,
                    tls,
                    &server_name,
                ) {
                    Ok((id, local)) => {
                        self.services.insert(local);
                        self.dials.insert(id, (reply, local));
                    }
                    Err(e) => drop(reply.try_send(Err(DialFailure::Invalid(e)))),
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
            StreamCommand::Write(id, data) => self.open.write(&mut self.streams, now, id, data),
            StreamCommand::Shutdown(id) => self.open.shutdown(&mut self.streams, now, id),
            StreamCommand::Resume(id) => {
                let gone = self.open.resume(&mut self.streams, now, id);
                self.unbind(node, now, gone);
            }
            StreamCommand::Drop(id) => {
                let gone = self.open.dropped(&mut self.streams, now, id);
                self.unbind(node, now, gone);
            }
        }
    }

    fn unbind(&mut self, node: &mut Node, now: Instant, gone: Option<Forgotten>) {
        if let Some(local) = gone.and_then(|g| g.local) {
            self.services.remove(&local);
            node.unlisten(now, local);
        }
    }

    /// Moves QUIC packets into the node and stream events to the application. Returns whether
    /// anything moved (the caller loops until quiet).
    pub(crate) fn pump(&mut self, node: &mut Node, now: Instant) -> bool {
        let mut moved = false;
        for gone in self.open.retry_paused(&mut self.streams, now) {
            self.unbind(node, now, Some(gone));
        }
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
                    self.open.remove(stream);
                }
            }
            StreamEvent::Closed { stream, error } if self.dials.contains_key(&stream) => {
                if let Some((reply, local)) = self.dials.remove(&stream) {
                    let why = error.map_or(DialFailure::Closed, DialFailure::Failed);
                    let _ = reply.try_send(Err(why));
                    self.services.remove(&local);
                    node.unlisten(now, local);
                }
            }
            StreamEvent::Refused {
                service,
                remote,
                failure,
            } => {
                warn!("refused a mesh stream from {remote} to service {service}: {failure}");
            }
            ev => {
                let gone = self.open.handle_event(&mut self.streams, now, &ev);
                self.unbind(node, now, gone);
            }
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
        self.open.insert(id, SmolEnd(shared.clone()), local);
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
        self.open.shut_down(NODE_GONE);
    }
}
