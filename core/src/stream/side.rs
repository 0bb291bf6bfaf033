//! The node's stream side: the glue between a [`Node`] and its [`Streams`], written once for
//! every runtime and the simulator.
//!
//! [`StreamSide`] owns the stream layer, the node services it uses (listeners and one
//! ephemeral service per dial), the dials in progress and the application's ends of open
//! streams ([`AppStreams`]). A runtime supplies only how an application's end is made and
//! handed over ([`StreamPorts`]: its channels) and drives the pair with the drain loop
//! [`StreamSide::poll_output`], which moves node events for stream services into the stream
//! layer and QUIC packets into the node until both are quiet, handing the runtime what is its
//! own (transmits for its links, the remaining node events).
//!
//! Shutdown order ([`StreamSide::close`]): every QUIC connection is closed first, and its
//! close packet sent while the node still has routes, so peers learn at once rather than at
//! their idle timeout; only then does the node close its links. [`StreamSide::shut_down`]
//! then fails every stream and pending dial.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn_proto::ClientConfig;
use tracing::{info, warn};

use super::app::{self, AppEnd, AppStreams, Forgotten};
use super::{DialFailure, OutDatagram, ServerTls, StreamEvent, StreamHandle, Streams};
use crate::id::{Addr, ServiceName};
use crate::{Advertise, Channels, Event, Input, ListenError, Node, Transmit};

/// What the application ends of streams are, and how they reach the application: the
/// runtime's channels.
pub trait StreamPorts {
    /// How answers reach applications (the channels the runtime's [`Apps`](crate::Apps) use).
    type Channels: Channels;
    /// The node task's end of one open stream.
    type End: AppEnd;
    /// The application's end of one open stream.
    type Stream;
    /// Where a listener's accepted streams go.
    type Accept;

    /// Makes both ends of a stream that just opened (`remote`: the peer); `None` when the
    /// application side is on its way out (the stream is then closed).
    fn open(
        &mut self,
        stream: StreamHandle,
        remote: Option<&Addr>,
    ) -> Option<(Self::End, Self::Stream)>;

    /// Offers an accepted stream to its listener without waiting; `false` when the listener
    /// cannot take it (full, or gone): the stream is then refused.
    fn offer(&mut self, accept: &Self::Accept, stream: Self::Stream) -> bool;
}

/// Where a dial's outcome goes. A dialer that gave up drops the stream, which closes it.
pub type DialReply<P> = <<P as StreamPorts>::Channels as Channels>::Reply<
    Result<<P as StreamPorts>::Stream, DialFailure>,
>;

/// Where a stream listener's outcome goes.
pub type ListenReply<P> =
    <<P as StreamPorts>::Channels as Channels>::Reply<Result<ServiceName, ListenError>>;

/// A request from an application (or one of its streams) to the node's stream side.
pub enum StreamCommand<P: StreamPorts> {
    /// Open a stream to `service` on `node` (`localhost` is this node).
    Dial {
        /// The node.
        node: String,
        /// The service.
        service: String,
        /// QUIC client TLS (the insecure config for ConnType 1 services, a user config for 2).
        tls: ClientConfig,
        /// The TLS server name.
        server_name: String,
        /// The outcome.
        reply: DialReply<P>,
    },
    /// Listen for streams on `service`.
    Listen {
        /// The service.
        service: String,
        /// QUIC server TLS.
        tls: ServerTls,
        /// What to advertise, if anything.
        advertise: Option<Advertise>,
        /// Where accepted streams go.
        accept: P::Accept,
        /// The bound service, or why not.
        reply: ListenReply<P>,
    },
    /// Bytes the writer took credit for.
    Write(StreamHandle, Bytes),
    /// The writer is done (FIN); reading goes on.
    Shutdown(StreamHandle),
    /// The reader drained its queue: read from QUIC again.
    Resume(StreamHandle),
    /// The application let go of the stream.
    Drop(StreamHandle),
}

/// What the drain loop hands the runtime.
#[derive(Debug)]
pub enum Output {
    /// Bytes for one of the runtime's links.
    Transmit(Transmit),
    /// A node event that is not for the stream layer.
    Event(Event),
}

/// How long a stopping node waits at most for its streams' close packets (QUIC may pace
/// one behind the packets just sent) before it closes its links.
pub const CLOSE_GRACE: Duration = Duration::from_millis(50);

/// Where shutting down is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Running,
    /// Streams are closed; the node closes once their packets are out, by `until` at the
    /// latest.
    Streams {
        until: Instant,
    },
    /// The node is closed too.
    Node,
}

/// The stream half of a node's driver (see the module docs).
pub struct StreamSide<P: StreamPorts> {
    streams: Streams,
    /// Services whose datagrams and notices belong to `streams`.
    services: BTreeSet<ServiceName>,
    listeners: BTreeMap<ServiceName, P::Accept>,
    /// Dials in progress: whom to answer, the service bound for the dial, and the target.
    dials: BTreeMap<StreamHandle, (DialReply<P>, ServiceName, Option<Addr>)>,
    open: AppStreams<P::End>,
    ports: P,
    closing: Closing,
}

impl<P: StreamPorts> StreamCommand<P> {
    /// Open a stream to `service` on `node`.
    pub fn dial(
        node: &str,
        service: &str,
        tls: ClientConfig,
        server_name: &str,
        reply: DialReply<P>,
    ) -> Self {
        Self::Dial {
            node: node.to_owned(),
            service: service.to_owned(),
            tls,
            server_name: server_name.to_owned(),
            reply,
        }
    }

    /// Listen for streams on `service`.
    pub fn listen(
        service: &str,
        tls: ServerTls,
        advertise: Option<Advertise>,
        accept: P::Accept,
        reply: ListenReply<P>,
    ) -> Self {
        Self::Listen {
            service: service.to_owned(),
            tls,
            advertise,
            accept,
            reply,
        }
    }
}

impl<P: StreamPorts> std::fmt::Debug for StreamSide<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSide")
            .field("streams", &self.streams)
            .field("services", &self.services.len())
            .field("dials", &self.dials.len())
            .finish_non_exhaustive()
    }
}

impl<P: StreamPorts> StreamSide<P> {
    /// A stream side whose QUIC randomness derives from `seed`
    /// ([`Config::stream_rng_seed`](crate::Config::stream_rng_seed)).
    pub fn new(seed: u64, ports: P) -> Self {
        Self {
            streams: Streams::new(seed),
            services: BTreeSet::new(),
            listeners: BTreeMap::new(),
            dials: BTreeMap::new(),
            open: AppStreams::default(),
            ports,
            closing: Closing::Running,
        }
    }

    // ---- getters ----

    /// The stream layer (for counts and peers).
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// The runtime's ports.
    pub fn ports(&self) -> &P {
        &self.ports
    }

    /// The runtime's ports, to change.
    pub fn ports_mut(&mut self) -> &mut P {
        &mut self.ports
    }

    /// Whether datagrams for `service` belong to the stream layer.
    pub fn owns(&self, service: ServiceName) -> bool {
        self.services.contains(&service)
    }

    /// Services of the stream layer still bound on the node (listeners, and dials' services
    /// until their connection is gone).
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// The application's end of an open stream, as the node task keeps it.
    pub fn end_mut(&mut self, stream: StreamHandle) -> Option<&mut P::End> {
        self.open.app_mut(stream)
    }

    // ---- inputs ----

    /// Takes a node event meant for a stream service; hands any other back.
    pub fn handle_node_event(&mut self, now: Instant, ev: Event) -> Option<Event> {
        match ev {
            Event::Datagram {
                service,
                from,
                payload,
            } if self.owns(service) => {
                self.streams.handle_datagram(now, service, from, payload);
                None
            }
            Event::Unreachable {
                service,
                reporter,
                notice,
            } if self.owns(service) => {
                self.streams
                    .handle_unreachable(now, service, &reporter, &notice);
                None
            }
            ev => Some(ev),
        }
    }

    /// Runs the node's and the streams' due timers.
    pub fn handle_timeout(&mut self, node: &mut Node, now: Instant) {
        if node.poll_timeout().is_some_and(|at| at <= now) {
            node.handle_input(now, Input::Timeout);
        }
        self.handle_streams_timeout(now);
    }

    /// Runs the streams' due timers only (for a driver that times node and streams apart).
    pub fn handle_streams_timeout(&mut self, now: Instant) {
        if self.streams.poll_timeout().is_some_and(|at| at <= now) {
            self.streams.handle_timeout(now);
        }
    }

    // ---- commands ----

    /// Dials `service` on `to` (`localhost` is this node) from a fresh ephemeral service; the
    /// outcome goes to `reply` once the stream opens or fails. Returns the stream and the
    /// service it dials from, or `None` when the dial could not start (`reply` has its
    /// answer then).
    #[allow(clippy::too_many_arguments)]
    pub fn dial(
        &mut self,
        node: &mut Node,
        now: Instant,
        to: &str,
        service: &str,
        tls: ClientConfig,
        server_name: &str,
        reply: DialReply<P>,
    ) -> Option<(StreamHandle, ServiceName)> {
        match app::dial(node, &mut self.streams, now, to, service, tls, server_name) {
            Ok((id, local)) => {
                self.services.insert(local);
                let remote = self.streams.remote(id).cloned();
                self.dials.insert(id, (reply, local, remote));
                Some((id, local))
            }
            Err(e) => {
                P::Channels::reply(reply, Err(DialFailure::Invalid(e)));
                None
            }
        }
    }

    /// Listens for streams on `service` (bound on the node, advertised if asked); accepted
    /// streams go to `accept`.
    pub fn listen(
        &mut self,
        node: &mut Node,
        now: Instant,
        service: &str,
        tls: ServerTls,
        advertise: Option<Advertise>,
        accept: P::Accept,
    ) -> Result<ServiceName, ListenError> {
        let name = node.listen(now, Some(service), advertise)?;
        self.services.insert(name);
        self.streams.listen(name, tls);
        self.listeners.insert(name, accept);
        Ok(name)
    }

    /// Carries out an application's request.
    pub fn command(&mut self, node: &mut Node, now: Instant, cmd: StreamCommand<P>) {
        match cmd {
            StreamCommand::Dial {
                node: to,
                service,
                tls,
                server_name,
                reply,
            } => {
                self.dial(node, now, &to, &service, tls, &server_name, reply);
            }
            StreamCommand::Listen {
                service,
                tls,
                advertise,
                accept,
                reply,
            } => {
                let r = self.listen(node, now, &service, tls, advertise, accept);
                P::Channels::reply(reply, r);
            }
            StreamCommand::Write(id, data) => self.write(now, id, data),
            StreamCommand::Shutdown(id) => self.finish(now, id),
            StreamCommand::Resume(id) => self.resume(node, now, id),
            StreamCommand::Drop(id) => self.dropped(node, now, id),
        }
    }

    /// The application wrote `data` (it holds credit for it).
    pub fn write(&mut self, now: Instant, stream: StreamHandle, data: Bytes) {
        self.open.write(&mut self.streams, now, stream, data);
    }

    /// The application finished its sending side (reading goes on).
    pub fn finish(&mut self, now: Instant, stream: StreamHandle) {
        self.open.shutdown(&mut self.streams, now, stream);
    }

    /// The application's reader made room.
    pub fn resume(&mut self, node: &mut Node, now: Instant, stream: StreamHandle) {
        let gone = self.open.resume(&mut self.streams, now, stream);
        self.unbind(node, now, gone);
    }

    /// The application let go of the stream.
    pub fn dropped(&mut self, node: &mut Node, now: Instant, stream: StreamHandle) {
        let gone = self.open.dropped(&mut self.streams, now, stream);
        self.unbind(node, now, gone);
    }

    /// Starts shutting down: every connection (open streams, dials, and streams a listener
    /// has not accepted yet) is closed now, and
    /// [`StreamSide::poll_output`] closes the node once their close packets are out (within
    /// [`CLOSE_GRACE`]; keep feeding inputs and timeouts until [`StreamSide::is_closed`]).
    /// Then call [`StreamSide::shut_down`].
    pub fn close(&mut self, now: Instant) {
        if self.closing != Closing::Running {
            return;
        }
        self.closing = Closing::Streams {
            until: now + CLOSE_GRACE,
        };
        self.streams.close_all(now);
    }

    /// The node task is ending: every stream's reader and writer fails, every dial in
    /// progress hears [`DialFailure::NodeStopped`], listeners are dropped.
    pub fn shut_down(&mut self) {
        self.open.shut_down("the node has stopped");
        for (_, (reply, _, _)) in std::mem::take(&mut self.dials) {
            P::Channels::reply(reply, Err(DialFailure::NodeStopped));
        }
        self.listeners.clear();
    }

    // ---- outputs ----

    /// When [`StreamSide::handle_timeout`] is due next (the node's timers and the streams').
    pub fn poll_timeout(&mut self, node: &Node) -> Option<Instant> {
        let grace = match self.closing {
            Closing::Streams { until } => Some(until),
            _ => None,
        };
        [node.poll_timeout(), self.streams.poll_timeout(), grace]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether [`StreamSide::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing != Closing::Running
    }

    /// Whether shutting down is over: streams closed, then the node.
    pub fn is_closed(&self) -> bool {
        self.closing == Closing::Node
    }

    /// When the streams' timers are due next.
    pub fn poll_streams_timeout(&mut self) -> Option<Instant> {
        self.streams.poll_timeout()
    }

    /// The drain loop: the node's transmits and events, each stream event handled and each
    /// QUIC packet sent through the node, until node and streams are both quiet (`None`).
    /// Call after every input or command, until `None`; then wait for the next input or
    /// [`StreamSide::poll_timeout`].
    pub fn poll_output(&mut self, node: &mut Node, now: Instant) -> Option<Output> {
        loop {
            if let Some(t) = node.poll_transmit() {
                return Some(Output::Transmit(t));
            }
            while let Some(ev) = node.poll_event() {
                if let Some(ev) = self.handle_node_event(now, ev) {
                    return Some(Output::Event(ev));
                }
            }
            let mut moved = self.pump_events(node, now);
            while let Some(d) = self.poll_datagram() {
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
            if moved {
                continue;
            }
            if let Closing::Streams { until } = self.closing {
                // A close QUIC paced goes out once its timer is due, also when the driver
                // woke for something else.
                if self.streams.poll_timeout().is_some_and(|t| t <= now) {
                    self.streams.handle_timeout(now);
                    continue;
                }
                // Once the streams' closes are queued on the links (nothing of theirs is due
                // before the grace ends), the node may close the links.
                if now >= until || self.streams.poll_timeout().is_none_or(|t| t > until) {
                    self.closing = Closing::Node;
                    node.close(now);
                    continue;
                }
            }
            return None;
        }
    }

    /// The next QUIC packet to send through the node (for a driver that sends them itself;
    /// [`StreamSide::poll_output`] does).
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<OutDatagram> {
        self.streams.poll_datagram()
    }

    /// Handles every stream event (opening, reading, writing and closing streams); returns
    /// whether there was any. [`StreamSide::poll_output`] calls it.
    pub fn pump_events(&mut self, node: &mut Node, now: Instant) -> bool {
        let mut moved = false;
        // A reader's request to resume can be lost to a full command queue; the node task is
        // busy then, so it comes here soon and finds the room itself.
        for gone in self.open.retry_paused(&mut self.streams, now) {
            self.unbind(node, now, Some(gone));
        }
        while let Some(ev) = self.streams.poll_event() {
            moved = true;
            self.stream_event(node, now, ev);
        }
        moved
    }

    fn stream_event(&mut self, node: &mut Node, now: Instant, ev: StreamEvent) {
        match ev {
            StreamEvent::Connected { stream } => {
                let Some((reply, local, remote)) = self.dials.remove(&stream) else {
                    return;
                };
                match self.ports.open(stream, remote.as_ref()) {
                    Some((end, s)) => {
                        self.open.insert(stream, end, Some(local));
                        P::Channels::reply(reply, Ok(s));
                    }
                    None => {
                        // Nobody will use it: close it, and its dial's service goes too.
                        self.streams.close(now, stream);
                        self.release(node, now, local);
                        P::Channels::reply(reply, Err(DialFailure::NodeStopped));
                    }
                }
            }
            StreamEvent::Accepted {
                stream,
                service,
                remote,
            } => {
                let taken = match self.ports.open(stream, Some(&remote)) {
                    Some((end, s)) => {
                        self.open.insert(stream, end, None);
                        match self.listeners.get(&service) {
                            Some(l) => self.ports.offer(l, s),
                            None => false,
                        }
                    }
                    None => false,
                };
                if !taken {
                    // A full accept queue, or nobody accepting: refuse it.
                    warn!(
                        "refused a mesh stream from {remote} to service {service}: not accepted (listener full or gone)"
                    );
                    self.streams.close(now, stream);
                    self.open.remove(stream);
                }
            }
            StreamEvent::Closed { stream, error } if self.dials.contains_key(&stream) => {
                let Some((reply, local, remote)) = self.dials.remove(&stream) else {
                    return;
                };
                let why = error.map_or(DialFailure::Closed, DialFailure::Failed);
                match remote {
                    Some(to) if why.is_lasting() => warn!("mesh stream to {to} failed: {why}"),
                    Some(to) => info!("mesh stream to {to} failed: {why}"),
                    None => info!("mesh stream failed: {why}"),
                }
                self.release(node, now, local);
                P::Channels::reply(reply, Err(why));
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

    fn unbind(&mut self, node: &mut Node, now: Instant, gone: Option<Forgotten>) {
        if let Some(local) = gone.and_then(|g| g.local) {
            self.release(node, now, local);
        }
    }

    /// A dial's ephemeral service is done with.
    fn release(&mut self, node: &mut Node, now: Instant, local: ServiceName) {
        self.services.remove(&local);
        node.unlisten(now, local);
    }
}
