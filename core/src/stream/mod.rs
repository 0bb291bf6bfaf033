//! Streams: QUIC over mesh datagrams, as Go receptor runs them (netceptor.md §8), sans-IO.
//!
//! [`Streams`] sits beside a [`Node`](crate::Node): the runtime binds the services (a listener
//! name, or an ephemeral name per dial) on the node, hands every datagram and unreachable
//! notice for those services to [`Streams::handle_datagram`] / [`Streams::handle_unreachable`],
//! and sends every [`OutDatagram`] with [`Node::send`](crate::Node::send). One QUIC connection
//! carries one bidirectional byte stream, opened by the dialer, whose first byte is `0x00`.

mod addr;
pub mod app;
mod config;
mod failure;
pub mod side;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ClientConfig, ConnectionHandle, DatagramEvent, EndpointConfig, ServerConfig, VarInt,
};
use tracing::debug;

pub use config::{
    ACCEPT_QUEUE, ACCEPT_TIMEOUT, ALPN, CLOSE_NORMAL, CLOSE_SETUP, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT,
    KEEP_ALIVE, KNOWN_PATH_TTL, MAX_PACKET, MAX_PACKET_OURS, QuicTlsError, STOP_READING,
    client_config, server_config, transport, transport_known_path,
};

use crate::id::{Addr, NodeId, ServiceName};
use crate::wire::{Problem, UnreachableNotice};
use addr::AddrMap;
pub use failure::{DialFailure, StreamFailure};

/// The QUIC implementation underneath, for building client and server configs.
pub use quinn_proto;

/// One application stream (one QUIC connection and its single bidirectional stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamHandle(pub u64);

/// Go's largest QUIC packet (quic-go's advertised `max_udp_payload_size`).
const MAX_PACKET_GO: u16 = 1452;

/// Makes the server TLS for a client node (`None` refuses it).
pub type PeerTls = Arc<dyn Fn(&NodeId) -> Option<Arc<ServerConfig>> + Send + Sync>;

/// How a listener picks its TLS for an incoming connection.
#[derive(Clone)]
pub enum ServerTls {
    /// The same config for every client.
    Fixed(Arc<ServerConfig>),
    /// A config made for the client's node ID (to require that node ID in its certificate).
    PerPeer(PeerTls),
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fixed(_) => "ServerTls::Fixed",
            Self::PerPeer(_) => "ServerTls::PerPeer",
        })
    }
}

/// A QUIC packet to send as a datagram from a local service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutDatagram {
    /// The local service it comes from.
    pub from: ServiceName,
    /// Where it goes.
    pub to: Addr,
    /// The packet.
    pub payload: Bytes,
}

/// What happened to streams.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// A dial completed: the stream is open for reading and writing.
    Connected {
        /// The stream.
        stream: StreamHandle,
    },
    /// A listener accepted a stream.
    Accepted {
        /// The stream.
        stream: StreamHandle,
        /// The listening service.
        service: ServiceName,
        /// The dialer.
        remote: Addr,
    },
    /// Data or the end of the stream can be read.
    Readable {
        /// The stream.
        stream: StreamHandle,
    },
    /// A write that was blocked may go on.
    Writable {
        /// The stream.
        stream: StreamHandle,
    },
    /// Everything we sent, FIN included, has been acknowledged: closing now loses nothing.
    Finished {
        /// The stream.
        stream: StreamHandle,
    },
    /// The connection ended (not by [`Streams::close`]); no further events for it.
    Closed {
        /// The stream.
        stream: StreamHandle,
        /// Why, when it was not a normal close.
        error: Option<StreamFailure>,
    },
    /// A listener's connection failed before it was accepted (TLS refused either way, no
    /// stream opened in time, a bad first byte): nothing reaches the application, but the
    /// node should say why.
    Refused {
        /// The listening service.
        service: ServiceName,
        /// The dialer.
        remote: Addr,
        /// Why.
        failure: StreamFailure,
    },
}

/// A stream operation that cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// No such stream (never existed, or closed).
    #[error("unknown stream")]
    Unknown,
    /// The stream is not open yet (handshake in progress).
    #[error("stream not open yet")]
    NotOpen,
    /// The peer reset or stopped the stream, or the connection failed.
    #[error("stream failed: {0}")]
    Failed(String),
}

/// Why a dial could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dial failed: {0}")]
pub struct DialError(pub String);

/// The result of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Some bytes.
    Data(Bytes),
    /// Nothing yet; wait for [`StreamEvent::Readable`].
    Blocked,
    /// The peer finished its side.
    Eof,
}

/// How a connection's packet size began, for [`Streams`]' record of known paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathStart {
    /// At 1200 bytes, searching upwards: reaching [`MAX_PACKET_OURS`] records the path.
    Probing,
    /// At [`MAX_PACKET_OURS`] on a recorded path: falling below forgets the path.
    Known,
    /// Nothing more to learn from it.
    Settled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// QUIC handshake in progress.
    Handshake,
    /// Client: our side of the handshake is done and the stream started, but the server has
    /// not confirmed it yet (HANDSHAKE_DONE). A server that refuses our certificate says so
    /// only now, so the application hears `Connected` after this.
    Confirming,
    /// Server: handshake done, waiting for the client's stream.
    AwaitStream,
    /// Server: stream open, waiting for its first byte.
    AwaitZero,
    /// Open for the application.
    Open,
}

struct Conn {
    service: ServiceName,
    /// Its endpoint's serial (see [`Endpoint::serial`]).
    endpoint: u64,
    handle: ConnectionHandle,
    conn: quinn_proto::Connection,
    remote: Addr,
    client: bool,
    state: State,
    stream: Option<quinn_proto::StreamId>,
    /// Server: the handshake and first-stream deadline.
    deadline: Option<Instant>,
    /// Bytes that came with the leading `0x00`.
    first: Option<Bytes>,
    /// Closed by the application: drain silently.
    app_closed: bool,
    /// Server: `Accepted` was emitted.
    announced: bool,
    /// Close (normally) at this instant: see [`Streams::close_at`].
    linger: Option<Instant>,
    /// Listed in [`Streams::dirty`].
    dirty: bool,
    /// Its entry in [`Streams::timers`]: the earliest of its QUIC timer, deadline and linger.
    timer: Option<Instant>,
    /// How its packet size began.
    path: PathStart,
}

/// What closed streams left to read, and whether each ends cleanly.
type Leftovers = BTreeMap<StreamHandle, (VecDeque<Bytes>, bool)>;

struct Endpoint {
    ep: quinn_proto::Endpoint,
    tls: Option<ServerTls>,
    /// Which endpoint this is: a service may get a new one (listening again, a dial's name
    /// picked again) while the old one's connections still drain, and quinn numbers each
    /// endpoint's connections from 0, so a connection remembers its endpoint by this.
    serial: u64,
}

/// The stream layer of one node.
pub struct Streams {
    endpoint_config: Arc<EndpointConfig>,
    endpoints: BTreeMap<ServiceName, Endpoint>,
    conns: BTreeMap<StreamHandle, Conn>,
    /// Data of connections that closed before the application read it all, and whether it
    /// ends cleanly (FIN, or a normal close); [`Streams::read`] hands it out, then the end.
    leftovers: Leftovers,
    /// Connections by their endpoint's serial and quinn's handle.
    by_handle: HashMap<(u64, ConnectionHandle), StreamHandle>,
    addrs: AddrMap,
    out: VecDeque<OutDatagram>,
    events: VecDeque<StreamEvent>,
    next: u64,
    seed: u64,
    buf: Vec<u8>,
    /// Connections that took input (packets, reads, writes) and have not been driven since:
    /// driving once after many inputs makes fuller packets and fewer of them.
    dirty: Vec<StreamHandle>,
    /// The latest instant an input was given at, for driving the dirty connections.
    now: Option<Instant>,
    /// Every connection's next timer, so that a timeout visits only the connections due and
    /// `poll_timeout` is not a walk over all of them (closed streams linger for up to the
    /// idle timeout, and a busy node asks after every input).
    timers: BTreeSet<(Instant, StreamHandle)>,
    /// Nodes whose path carried [`MAX_PACKET_OURS`], and when that was last seen: new
    /// connections with them start at that size (see [`transport_known_path`]).
    known_paths: BTreeMap<NodeId, Instant>,
    /// The transport settings for those connections, made once.
    known_transport: Arc<quinn_proto::TransportConfig>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("endpoints", &self.endpoints.len())
            .field("conns", &self.conns.len())
            .finish()
    }
}

impl Streams {
    /// A stream layer whose randomness (connection IDs, reset tokens) derives from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut reset_key = [0u8; 64];
        for (i, b) in reset_key.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 % 64) >> (i % 8)) as u8 ^ i as u8;
        }
        let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &reset_key);
        let mut endpoint_config = EndpointConfig::new(Arc::new(hmac));
        // Bounds what a peer may send us; Go sends at most 1200 whatever we say.
        let _ = endpoint_config.max_udp_payload_size(MAX_PACKET_OURS);
        Self {
            endpoint_config: Arc::new(endpoint_config),
            endpoints: BTreeMap::new(),
            conns: BTreeMap::new(),
            leftovers: BTreeMap::new(),
            by_handle: HashMap::new(),
            addrs: AddrMap::default(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next: 0,
            seed,
            buf: Vec::with_capacity(1500),
            dirty: Vec::new(),
            now: None,
            timers: BTreeSet::new(),
            known_paths: BTreeMap::new(),
            known_transport: transport_known_path(),
        }
    }

    fn endpoint_seed(&mut self) -> [u8; 32] {
        self.next += 1;
        let mut s = [0u8; 32];
        for (i, chunk) in s.chunks_mut(8).enumerate() {
            let v = self
                .seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(self.next.wrapping_mul(31).wrapping_add(i as u64));
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        s
    }

    fn new_endpoint(&mut self, tls: Option<ServerTls>) -> Endpoint {
        let seed = self.endpoint_seed();
        let fixed = match &tls {
            Some(ServerTls::Fixed(c)) => Some(c.clone()),
            // quinn takes no Initial without a server config; each accept supplies the real
            // one for the client's node, so any config the function makes will do here.
            Some(ServerTls::PerPeer(f)) => NodeId::new("initial").ok().and_then(|n| f(&n)),
            None => None,
        };
        let ep = quinn_proto::Endpoint::new(self.endpoint_config.clone(), fixed, true, Some(seed));
        // `endpoint_seed` just moved the counter, which never goes back: a serial of its own.
        Endpoint {
            ep,
            tls,
            serial: self.next,
        }
    }

    /// Accepts streams on `service` (already bound on the node).
    pub fn listen(&mut self, service: ServiceName, tls: ServerTls) {
        let e = self.new_endpoint(Some(tls));
        self.endpoints.insert(service, e);
    }

    /// Stops accepting on `service`; its open streams end.
    pub fn unlisten(&mut self, now: Instant, service: ServiceName) {
        let ids: Vec<StreamHandle> = self
            .conns
            .iter()
            .filter(|(_, c)| c.service == service)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close(now, id);
        }
        self.endpoints.remove(&service);
    }

    /// Dials `remote` from `local` (an ephemeral service bound on the node for this dial).
    pub fn dial(
        &mut self,
        now: Instant,
        local: ServiceName,
        remote: Addr,
        client: ClientConfig,
        server_name: &str,
    ) -> Result<StreamHandle, DialError> {
        let sock = self.addrs.hold(&remote);
        let known = self.path_known(now, &remote.node);
        let mut client = client;
        if known {
            client.transport_config(self.known_transport.clone());
        }
        let fresh = !self.endpoints.contains_key(&local);
        let e = self.new_endpoint(None);
        let ep = self.endpoints.entry(local).or_insert(e);
        let endpoint = ep.serial;
        let (handle, conn) = match ep.ep.connect(now, client, sock, server_name) {
            Ok(c) => c,
            Err(e) => {
                // A dialer's endpoint lives as long as its one connection: none came.
                if fresh {
                    self.endpoints.remove(&local);
                }
                self.addrs.release(&remote);
                return Err(DialError(e.to_string()));
            }
        };
        self.next += 1;
        let id = StreamHandle(self.next);
        self.by_handle.insert((endpoint, handle), id);
        self.conns.insert(
            id,
            Conn {
                service: local,
                endpoint,
                handle,
                conn,
                remote,
                client: true,
                state: State::Handshake,
                stream: None,
                deadline: Some(now + HANDSHAKE_TIMEOUT),
                first: None,
                app_closed: false,
                announced: false,
                linger: None,
                dirty: false,
                timer: None,
                path: if known {
                    PathStart::Known
                } else {
                    PathStart::Probing
                },
            },
        );
        self.drive(now, id);
        Ok(id)
    }

    /// A datagram arrived for a local stream service.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: ServiceName,
        from: Addr,
        payload: Bytes,
    ) {
        let Some(e) = self.endpoints.get_mut(&local) else {
            return;
        };
        // A peer with no connection here gets an address for this datagram only, unless it
        // makes one (`incoming` holds the address then).
        let (sock, made) = self.addrs.sock(&from);
        self.buf.clear();
        let ev = e.ep.handle(
            now,
            sock,
            None,
            None,
            BytesMut::from(payload),
            &mut self.buf,
        );
        match ev {
            Some(DatagramEvent::ConnectionEvent(h, ev)) => {
                if let Some(&id) = self.by_handle.get(&(e.serial, h))
                    && let Some(c) = self.conns.get_mut(&id)
                {
                    c.conn.handle_event(ev);
                    self.mark(now, id);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                self.incoming(now, local, from, incoming)
            }
            Some(DatagramEvent::Response(t)) => {
                let payload = Bytes::copy_from_slice(self.buf.get(..t.size).unwrap_or_default());
                self.out.push_back(OutDatagram {
                    from: local,
                    to: from,
                    payload,
                });
            }
            None => {}
        }
        if made {
            self.addrs.prune(sock);
        }
    }

    fn incoming(
        &mut self,
        now: Instant,
        local: ServiceName,
        from: Addr,
        incoming: quinn_proto::Incoming,
    ) {
        let Some(e) = self.endpoints.get_mut(&local) else {
            return;
        };
        let cfg = match &e.tls {
            Some(ServerTls::Fixed(c)) => Some(c.clone()),
            Some(ServerTls::PerPeer(f)) => f(&from.node),
            None => None,
        };
        let Some(cfg) = cfg else {
            e.ep.ignore(incoming);
            self.events.push_back(StreamEvent::Refused {
                service: local,
                remote: from,
                failure: StreamFailure::Tls {
                    by_peer: false,
                    reason: "no TLS config for the client's node ID".into(),
                },
            });
            return;
        };
        let known = self.path_known(now, &from.node);
        let cfg = if known {
            let mut c = (*cfg).clone();
            c.transport_config(self.known_transport.clone());
            Arc::new(c)
        } else {
            cfg
        };
        let Some(e) = self.endpoints.get_mut(&local) else {
            return;
        };
        self.buf.clear();
        match e.ep.accept(incoming, now, &mut self.buf, Some(cfg)) {
            Ok((handle, conn)) => {
                let endpoint = e.serial;
                self.addrs.hold(&from);
                self.next += 1;
                let id = StreamHandle(self.next);
                self.by_handle.insert((endpoint, handle), id);
                self.conns.insert(
                    id,
                    Conn {
                        service: local,
                        endpoint,
                        handle,
                        conn,
                        remote: from,
                        client: false,
                        state: State::Handshake,
                        stream: None,
                        deadline: Some(now + ACCEPT_TIMEOUT),
                        first: None,
                        app_closed: false,
                        announced: false,
                        linger: None,
                        dirty: false,
                        timer: None,
                        path: if known {
                            PathStart::Known
                        } else {
                            PathStart::Probing
                        },
                    },
                );
                self.drive(now, id);
            }
            Err(err) => {
                debug!(error = %err.cause, "refused incoming QUIC connection");
                self.events.push_back(StreamEvent::Refused {
                    service: local,
                    remote: from.clone(),
                    failure: StreamFailure::Transport(err.cause.to_string()),
                });
                if let Some(t) = err.response {
                    let payload =
                        Bytes::copy_from_slice(self.buf.get(..t.size).unwrap_or_default());
                    self.out.push_back(OutDatagram {
                        from: local,
                        to: from,
                        payload,
                    });
                }
            }
        }
    }

    /// An unreachable notice from `reporter` for a local stream service. One that names a
    /// peer's address ends its connections at once: `service unknown` as Go does (§8.6), and
    /// also `blocked by firewall` and `message expired`, after which no packet of the
    /// connection would get through either (Go waits for its timeouts then).
    ///
    /// Ended as any close of ours: the application hears why now, and quinn sends its close
    /// and drains the connection (three PTOs) before it is forgotten, so its endpoint lets go
    /// of it too, and a late packet of it meets the close rather than a new connection.
    /// Connections already closing drain as they were.
    pub fn handle_unreachable(
        &mut self,
        now: Instant,
        local: ServiceName,
        reporter: &NodeId,
        notice: &UnreachableNotice,
    ) {
        let problem = Problem::from_text(&notice.problem);
        if matches!(problem, Problem::Other(_)) {
            return;
        }
        let dead: Vec<StreamHandle> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.service == local
                    && !c.conn.is_closed()
                    && c.remote.node.as_str() == notice.to_node
                    && c.remote.service.to_string() == notice.to_service
            })
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            let failure = StreamFailure::Unreachable {
                reporter: reporter.clone(),
                problem: problem.clone(),
            };
            if let Some(c) = self.conns.get_mut(&id) {
                c.conn.close(
                    now,
                    VarInt::from_u32(CLOSE_SETUP),
                    Bytes::from(failure.to_string()),
                );
            }
            self.closed_here(id, Some(failure));
            self.drive(now, id);
        }
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive_dirty();
        let ids: Vec<StreamHandle> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in ids {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                c.conn.handle_timeout(now);
            }
            // Closes of ours: the application hears `Closed` (see `closed_here`).
            let mut closed = None;
            if c.linger.is_some_and(|d| d <= now) {
                c.linger = None;
                if !c.conn.is_closed() {
                    c.conn.close(
                        now,
                        VarInt::from_u32(CLOSE_NORMAL),
                        Bytes::from_static(b"normal close"),
                    );
                    closed = Some(None);
                }
            }
            if c.deadline.is_some_and(|d| d <= now) {
                c.deadline = None;
                if c.path == PathStart::Known {
                    // No answer at the larger size: whoever has that node ID now may not
                    // take it.
                    c.path = PathStart::Settled;
                    self.known_paths.remove(&c.remote.node);
                }
                let (reason, failure) = if c.client {
                    (
                        "handshake timeout",
                        StreamFailure::HandshakeTimeout(HANDSHAKE_TIMEOUT),
                    )
                } else {
                    ("Accept Timeout", StreamFailure::AcceptTimeout)
                };
                if !c.conn.is_closed() {
                    c.conn.close(
                        now,
                        VarInt::from_u32(CLOSE_SETUP),
                        Bytes::from_static(reason.as_bytes()),
                    );
                    closed = Some(Some(failure));
                }
            }
            if let Some(error) = closed {
                self.closed_here(id, error);
            }
            self.drive(now, id);
        }
    }

    /// Notes that `id` took input at `now`; it is driven before anything is polled.
    fn mark(&mut self, now: Instant, id: StreamHandle) {
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
        if let Some(c) = self.conns.get_mut(&id)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Drives the connections that took input since they were last driven.
    fn drive_dirty(&mut self) {
        let Some(now) = self.now else { return };
        while !self.dirty.is_empty() {
            for id in std::mem::take(&mut self.dirty) {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.dirty = false;
                    self.drive(now, id);
                }
            }
        }
    }

    /// When to call [`Streams::handle_timeout`] next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.drive_dirty();
        self.timers.first().map(|(t, _)| *t)
    }

    /// Files `id` under its next timer (after anything that may have moved it).
    fn reindex(&mut self, id: StreamHandle) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let next = [c.conn.poll_timeout(), c.deadline, c.linger]
            .into_iter()
            .flatten()
            .min();
        if next == c.timer {
            return;
        }
        if let Some(t) = c.timer {
            self.timers.remove(&(t, id));
        }
        if let Some(t) = next {
            self.timers.insert((t, id));
        }
        c.timer = next;
    }

    /// The next QUIC packet to send.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<OutDatagram> {
        if self.out.is_empty() {
            self.drive_dirty();
        }
        self.out.pop_front()
    }

    /// The next stream event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        if self.events.is_empty() {
            self.drive_dirty();
        }
        self.events.pop_front()
    }

    /// Whether `node`'s path carried [`MAX_PACKET_OURS`] within [`KNOWN_PATH_TTL`].
    fn path_known(&mut self, now: Instant, node: &NodeId) -> bool {
        match self.known_paths.get(node) {
            Some(&at) if now < at + KNOWN_PATH_TTL => true,
            Some(_) => {
                self.known_paths.remove(node);
                false
            }
            None => false,
        }
    }

    /// Learns from a connection's packet size: one that probed up to [`MAX_PACKET_OURS`]
    /// records its node's path; one that started there and fell back forgets it.
    fn note_path(&mut self, now: Instant, id: StreamHandle) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mtu = c.conn.current_mtu();
        match c.path {
            PathStart::Probing if mtu >= MAX_PACKET_OURS => {
                c.path = PathStart::Settled;
                self.known_paths.insert(c.remote.node.clone(), now);
            }
            PathStart::Known if mtu < MAX_PACKET_OURS => {
                c.path = PathStart::Settled;
                self.known_paths.remove(&c.remote.node);
            }
            _ => {}
        }
    }

    /// Whether the peer of `id` is one of our nodes, which keeps what arrived before a close
    /// readable (see `take_tail`): it sends packets larger than Go's largest (1452 bytes),
    /// which quinn does only to a peer advertising more. Go's quic-go discards unread data on
    /// a close; a peer of ours on a path that never carried more is not recognised.
    pub fn peer_keeps_unread(&self, id: StreamHandle) -> bool {
        self.conns
            .get(&id)
            .is_some_and(|c| !c.conn.is_handshaking() && c.conn.current_mtu() > MAX_PACKET_GO)
    }

    /// Whether any stream or listener exists on `service`.
    pub fn has_service(&self, service: ServiceName) -> bool {
        self.endpoints.contains_key(&service)
    }

    /// The peer of a stream.
    pub fn remote(&self, stream: StreamHandle) -> Option<&Addr> {
        self.conns.get(&stream).map(|c| &c.remote)
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether there are no live connections.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Connections the QUIC endpoints (listeners' and dials') still hold: never more than
    /// [`Streams::len`] (fewer for a listener's draining connections after `unlisten`), so a
    /// check that an endpoint lets go of every connection that ends.
    pub fn endpoint_connections(&self) -> usize {
        self.endpoints
            .values()
            .map(|e| e.ep.open_connections())
            .sum()
    }
}

mod drive;
mod io;
#[cfg(test)]
mod tests;
