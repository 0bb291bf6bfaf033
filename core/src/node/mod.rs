//! The node: one mesh participant, driven by inputs and polled for outputs.

mod adverts;
mod apps;
mod bounds;
mod data;
mod probe;
mod report;
mod session;
mod warm;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

pub use crate::config::LinkKind;
use crate::config::{Config, ConfigError, LinkConfig};
use crate::id::{Addr, InvalidId, LinkId, NodeId, ServiceName};
use crate::link::Link;
use crate::ping::Pings;
pub use crate::ping::{PingId, PingResult};
use crate::routing::{Router, SeenUpdates};
pub use crate::services::Advertise;
use crate::services::Services;
use crate::stats::NodeStats;
use crate::wire::{Encoded, ServiceAdvert, UnixNanos, UnreachableNotice};
pub use apps::{AppCommand, Apps, Channels, Unanswered};
pub use report::{ConnectionCounts, MeshStatus, NodeMetrics, ServiceEvent, TraceEvent};

/// Something the network or the runtime did to the node.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Input {
    /// A backend session opened (dialed or accepted). The node starts its handshake on it.
    LinkUp {
        /// The runtime's ID for the session; never reused.
        link: LinkId,
        /// The options of the backend it belongs to.
        config: Arc<LinkConfig>,
    },
    /// Bytes arrived on a session: any chunk of the stream for stream links, exactly one
    /// message for datagram and message links.
    Received {
        /// The session.
        link: LinkId,
        /// The bytes.
        #[cfg_attr(feature = "fuzzing", arbitrary(with = crate::fuzzing::arbitrary_bytes))]
        data: Bytes,
    },
    /// The session ended (closed by the peer, an IO error, or after `Event::CloseLink`).
    LinkDown {
        /// The session.
        link: LinkId,
    },
    /// Time passed: run whatever timers are due. Harmless when none is.
    Timeout,
}

/// Bytes to write on a link, already framed for its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The session to write on.
    pub link: LinkId,
    /// The bytes, as they go on the wire; [`Transmit::tail`] follows them.
    pub frame: Bytes,
    /// Bytes that go on the wire right after `frame`, in the same frame: the payload of a
    /// large data message on a stream link, which stays the buffer it came in rather than
    /// being copied behind its header. Empty otherwise; datagram links always get one
    /// buffer (`frame`), as a datagram must be.
    pub tail: Bytes,
}

impl Transmit {
    /// A frame in one buffer.
    pub(crate) fn whole(link: LinkId, frame: Bytes) -> Self {
        Self {
            link,
            frame,
            tail: Bytes::new(),
        }
    }

    /// Bytes on the wire, `frame` and `tail` together.
    pub fn len(&self) -> usize {
        self.frame.len() + self.tail.len()
    }

    /// Whether there is nothing to write (never the case for a queued transmit).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame in one buffer: `frame` itself, or a copy of `frame` and `tail` together.
    pub fn into_bytes(self) -> Bytes {
        if self.tail.is_empty() {
            return self.frame;
        }
        let mut b = bytes::BytesMut::with_capacity(self.len());
        b.extend_from_slice(&self.frame);
        b.extend_from_slice(&self.tail);
        b.freeze()
    }
}

/// Queues `t` for [`Node::poll_transmit`], counting it as sent. (A free function: callers
/// hold other parts of the node borrowed while they queue.)
fn queue(transmits: &mut VecDeque<Transmit>, stats: &mut NodeStats, t: Transmit) {
    stats.messages_out += 1;
    stats.bytes_out += t.len() as u64;
    transmits.push_back(t);
}

/// Why the node wants a session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// We rejected the peer (a reject message was queued first).
    Rejected(String),
    /// The peer sent a reject, with the reason it gave (ours give one for identity refusals;
    /// Go's never do).
    PeerRejected(Option<String>),
    /// We refused the peer under node-ID binding (`bindnodeid`); a reject naming the reason
    /// was queued first.
    Identity(crate::identity::IdentityError),
    /// The peer never completed the handshake.
    HandshakeTimeout,
    /// Nothing arrived within the idle timeout.
    IdleTimeout,
    /// The peer sent bytes that are not the protocol.
    Protocol(String),
    /// The node is shutting down.
    Shutdown,
}

impl CloseReason {
    /// Whether either side refused the peer (a reject, or node-ID binding): its dialer should
    /// count the session as never established and back off, since the same peer would be
    /// refused again.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Rejected(_) | Self::PeerRejected(_) | Self::Identity(_)
        )
    }
}

/// Something the node tells its runtime or application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A datagram for a bound service.
    Datagram {
        /// The local service it is for.
        service: ServiceName,
        /// Who sent it.
        from: Addr,
        /// The payload.
        payload: Bytes,
    },
    /// A message a bound service sent could not be delivered.
    Unreachable {
        /// The local service that sent the failed message.
        service: ServiceName,
        /// The node that reported the problem.
        reporter: NodeId,
        /// The notice.
        notice: UnreachableNotice,
    },
    /// Close this session: write the transmits already polled for it, then close it and
    /// feed `Input::LinkDown`.
    CloseLink {
        /// The session.
        link: LinkId,
        /// Why.
        reason: CloseReason,
    },
    /// A session completed its handshake with `node`.
    PeerUp {
        /// The session.
        link: LinkId,
        /// The neighbour.
        node: NodeId,
    },
    /// An established session ended.
    PeerDown {
        /// The session.
        link: LinkId,
        /// The neighbour.
        node: NodeId,
    },
    /// The routing table changed.
    RoutesChanged,
    /// A ping finished.
    Ping {
        /// The ping.
        id: PingId,
        /// Its outcome.
        result: PingResult,
    },
    /// One hop of a traceroute finished (hops count from 0, the origin itself).
    TraceHop {
        /// The traceroute.
        id: PingId,
        /// The hop number.
        hop: u8,
        /// Who answered and when.
        result: PingResult,
    },
    /// A traceroute has no more hops.
    TraceDone {
        /// The traceroute.
        id: PingId,
    },
    /// Another instance with our node ID named us the duplicate: the node has stopped.
    Shutdown {
        /// Why.
        reason: String,
    },
}

/// Why a local send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The destination node ID is not valid.
    #[error("invalid node ID: {0}")]
    InvalidNode(#[from] InvalidId),
    /// No route to the node.
    #[error("no route to node {0}")]
    NoRoute(String),
    /// The destination is this node and nothing listens on the service.
    #[error("service unknown: {0}")]
    ServiceUnknown(String),
    /// The message would exceed 65535 bytes.
    #[error("message too large: {0} bytes")]
    TooLarge(usize),
    /// The node has shut down.
    #[error("node is shut down")]
    ShutDown,
}

/// Why a service could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Not a valid service name.
    #[error("invalid service name: {0}")]
    Invalid(#[from] InvalidId),
    /// `ping` and `unreach` are reserved.
    #[error("service {0} is reserved")]
    Reserved(ServiceName),
    /// Something already listens there.
    #[error("service {0} is already in use")]
    InUse(ServiceName),
}

#[derive(Clone, Copy)]
enum Timer {
    RouteUpdate = 0,
    Flood = 1,
    Recompute = 2,
    ServiceAds = 3,
    Forget = 4,
}
const TIMERS: usize = 5;

/// Hashes a u64 that already is a hash (node name hashes) by passing it through.
#[derive(Default)]
struct PassHasher(u64);

impl Hasher for PassHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashIndex<V> = HashMap<u64, V, BuildHasherDefault<PassHasher>>;

/// A Receptor mesh node as a sans-IO state machine.
///
/// Methods come in four groups (as in quinn-proto):
/// - getters (`&self`): [`Node::id`], [`Node::routes`], [`Node::connections`], ...;
/// - input: [`Node::handle_input`], which never fails: bad bytes are counted and dropped;
/// - commands: [`Node::send`], [`Node::listen`], [`Node::unlisten`], [`Node::ping`],
///   [`Node::traceroute`], [`Node::close`]: they fail only for local reasons;
/// - outputs: after every input or command, drain [`Node::poll_transmit`] and
///   [`Node::poll_event`] until `None`, then wait until [`Node::poll_timeout`].
#[derive(Debug)]
pub struct Node {
    config: Arc<Config>,
    id: NodeId,
    /// `id` packed, if short enough: compared with every routing update's origin.
    id_key: Option<u128>,
    id_hash: u64,
    /// `id` as a JSON string, for forwarding routing updates.
    id_quoted: Box<str>,
    /// `config.max_idle`, read on every message without following the `Arc`.
    max_idle: Duration,
    rng: ChaCha8Rng,
    epoch: u64,
    sequence: u64,
    start: Instant,
    now: Instant,
    links: BTreeMap<LinkId, Link>,
    /// Established connections: neighbour -> session.
    peers: BTreeMap<NodeId, LinkId>,
    /// Name hash -> name; the first name registered for a hash wins.
    names: HashIndex<NodeId>,
    router: Router,
    seen: SeenUpdates,
    /// Destination hash -> (destination, session of the first hop), kept in step with the
    /// routing table.
    forward: HashIndex<(crate::routing::NameIx, LinkId)>,
    /// The peers changed since `forward` was last rebuilt in full.
    forward_stale: bool,
    /// Two destinations in `forward` share a hash: rebuild it in full every time.
    forward_collided: bool,
    services: Services,
    pings: Pings,
    timers: [Option<Instant>; TIMERS],
    /// No later than the earliest deadline of any link: exact after `link_timers`, then
    /// lowered for each new link. Deadlines otherwise only move later (every message
    /// pushes the idle deadline out), so `poll_timeout` need not visit every link after
    /// every input; at worst it asks for one early, harmless timeout.
    link_deadline: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: NodeStats,
    shut_down: bool,
    scratch: Vec<Bytes>,
    /// Where forwarded routing updates are built ([`Encoded::from_parts_in`]).
    frame_arena: bytes::BytesMut,
}

impl Node {
    /// Starts a node at `now`. It has no links until the runtime reports some.
    pub fn new(config: Arc<Config>, now: Instant) -> Result<Self, ConfigError> {
        // Mix the node ID into the seed: nodes given the same seed must still draw different
        // update IDs, or they would suppress each other's floods as already seen.
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed ^ config.node_id.hash());
        // Go: unix_seconds * 2^24 + random 24 bits. We put the fraction of the second in the
        // upper 16 of those bits, so a restart within the same second still gets a larger
        // epoch (Go never forgets an epoch), and keep 8 random bits to tell apart two
        // instances started at the same instant.
        let secs = config.wall_clock.as_secs();
        let frac = (u64::from(config.wall_clock.subsec_nanos()) << 16) / 1_000_000_000;
        let epoch = (secs << 24) | (frac << 8) | (rng.next_u32() as u64 & 0xff);
        let id = config.node_id.clone();
        let mut names = HashIndex::default();
        names.insert(id.hash(), id.clone());
        let mut node = Self {
            id_hash: id.hash(),
            id_key: crate::routing::fastkey::pack(id.as_str()),
            max_idle: config.max_idle,
            id_quoted: {
                let mut q = String::new();
                crate::wire::write_str(&mut q, id.as_str());
                q.into()
            },
            router: Router::new(&id),
            seen: SeenUpdates::new(config.seen_update_ttl, config.max_seen_updates),
            id,
            rng,
            epoch,
            sequence: 0,
            start: now,
            now,
            links: BTreeMap::new(),
            peers: BTreeMap::new(),
            names,
            forward: HashIndex::default(),
            forward_stale: false,
            forward_collided: false,
            services: Services::default(),
            pings: Pings::default(),
            timers: [None; TIMERS],
            link_deadline: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            shut_down: false,
            scratch: Vec::new(),
            frame_arena: bytes::BytesMut::new(),
            config,
        };
        let first = now + node.jittered(node.config.route_update_interval);
        node.set_timer(Timer::RouteUpdate, first);
        node.set_timer(Timer::Forget, now + node.sweep_interval());
        Ok(node)
    }

    // ---- getters ----

    /// This node's ID.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// This process's routing epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The routing table: destination -> first hop.
    pub fn routes(&self) -> &BTreeMap<NodeId, NodeId> {
        self.router.table()
    }

    /// Destination -> cost of the least-cost path to it (every node in [`Node::routes`]).
    pub fn path_costs(&self) -> BTreeMap<NodeId, f64> {
        self.router.path_costs()
    }

    /// Established neighbours with their link costs.
    pub fn connections(&self) -> BTreeMap<NodeId, f64> {
        self.peers
            .iter()
            .filter_map(|(n, l)| Some((n.clone(), self.links.get(l)?.cost)))
            .collect()
    }

    /// Every node's advertised connections, as this node knows them.
    pub fn known_connection_costs(&self) -> BTreeMap<NodeId, BTreeMap<NodeId, f64>> {
        self.router.graph().to_map()
    }

    /// The service advertisements in force, this node's own included.
    pub fn advertisements(&self) -> impl Iterator<Item = &ServiceAdvert> {
        self.services.active()
    }

    /// The neighbour on an established session.
    pub fn link_peer(&self, link: LinkId) -> Option<&NodeId> {
        self.links.get(&link).and_then(Link::peer)
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Whether the node stopped (duplicate node ID, or [`Node::close`]).
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// The node's idea of wall-clock time at `now`, in nanoseconds since 1970.
    fn wall_nanos(&self) -> UnixNanos {
        let since = self.now.saturating_duration_since(self.start);
        (self.config.wall_clock + since).as_nanos() as UnixNanos
    }

    // ---- input ----

    /// Feeds one input. Never fails: malformed input is counted in [`NodeStats`] and
    /// dropped, and a peer that breaks the protocol gets its session closed.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = self.now.max(now);
        if self.shut_down {
            if let Input::LinkDown { link } = input {
                self.links.remove(&link);
            }
            return;
        }
        match input {
            Input::LinkUp { link, config } => self.link_up(link, config),
            Input::Received { link, data } => self.received(link, data),
            Input::LinkDown { link } => self.link_down(link),
            Input::Timeout => self.run_timers(),
        }
    }

    fn received(&mut self, link: LinkId, data: Bytes) {
        let Some(l) = self.links.get_mut(&link) else {
            self.stats.bad_link_inputs += 1;
            return;
        };
        self.stats.bytes_in += data.len() as u64;
        let mut msgs = std::mem::take(&mut self.scratch);
        match &mut l.deframer {
            Some(d) => d.push(data, &mut msgs),
            None => msgs.push(data),
        }
        for msg in msgs.drain(..) {
            self.handle_message(link, msg);
        }
        self.scratch = msgs;
    }

    fn run_timers(&mut self) {
        let now = self.now;
        if self.take_timer(Timer::Flood) {
            self.flood_own(0);
        }
        if self.take_timer(Timer::RouteUpdate) {
            if !self.peers.is_empty() {
                self.flood_own(0);
            }
            let next = now + self.jittered(self.config.route_update_interval);
            self.set_timer(Timer::RouteUpdate, next);
        }
        if self.take_timer(Timer::Recompute) {
            self.recompute();
        }
        if self.take_timer(Timer::ServiceAds) {
            self.send_own_ads();
            let next = now + self.config.service_ad_interval;
            self.set_timer(Timer::ServiceAds, next);
        }
        if self.take_timer(Timer::Forget) {
            self.forget();
            let next = now + self.sweep_interval();
            self.set_timer(Timer::Forget, next);
        }
        self.link_timers();
        self.expire_probes();
    }

    // ---- outputs ----

    /// The next bytes to write on a link. Poll first, until `None`.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event. Poll after the transmits, until `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to feed `Input::Timeout` next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        // Called after every input: a plain loop, no iterator chain.
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t
                && next.is_none_or(|n| t < n)
            {
                next = Some(t);
            }
        };
        for &t in &self.timers {
            consider(t);
        }
        consider(self.link_deadline);
        consider(self.pings.deadline());
        next
    }

    // ---- helpers shared by the submodules ----

    fn set_timer(&mut self, t: Timer, at: Instant) {
        if let Some(slot) = self.timers.get_mut(t as usize) {
            *slot = Some(at);
        }
    }

    /// Arms a timer unless it is already due sooner.
    fn request(&mut self, t: Timer, delay: Duration) {
        let at = self.now + delay;
        if let Some(slot) = self.timers.get_mut(t as usize)
            && slot.is_none_or(|cur| cur > at)
        {
            *slot = Some(at);
        }
    }

    /// Clears a due timer and says whether it was due.
    fn take_timer(&mut self, t: Timer) -> bool {
        match self.timers.get_mut(t as usize) {
            Some(slot) if slot.is_some_and(|at| at <= self.now) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// `d` shortened by up to 10 %, so nodes do not fire in lockstep yet stay inside Go's
    /// idle timeout (two missed periods).
    fn jittered(&mut self, d: Duration) -> Duration {
        let tenth = d / 10;
        let nanos = tenth.as_nanos() as u64;
        let cut = if nanos == 0 {
            0
        } else {
            self.rng.next_u64() % nanos
        };
        d - Duration::from_nanos(cut)
    }

    /// Eight characters from `[0-9a-zA-Z]`, as Go's `randstr`.
    fn random_name(&mut self) -> [u8; 8] {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut out = [0u8; 8];
        for b in &mut out {
            let i = (self.rng.next_u32() % ALPHABET.len() as u32) as usize;
            *b = ALPHABET.get(i).copied().unwrap_or(b'0');
        }
        out
    }

    /// Queues `msg` on `link` if the backend can carry it.
    fn transmit(&mut self, link: LinkId, msg: Encoded) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        match l.frame(msg) {
            Some(frame) => queue(
                &mut self.transmits,
                &mut self.stats,
                Transmit::whole(link, frame),
            ),
            None => self.stats.oversized += 1,
        }
    }

    /// Queues `msg` on every established session except `except`.
    fn broadcast(&mut self, msg: &Encoded, except: Option<LinkId>) {
        for &link in self.peers.values() {
            if Some(link) == except {
                continue;
            }
            let Some(l) = self.links.get(&link) else {
                continue;
            };
            match l.frame(msg.clone()) {
                Some(frame) => queue(
                    &mut self.transmits,
                    &mut self.stats,
                    Transmit::whole(link, frame),
                ),
                None => self.stats.oversized += 1,
            }
        }
    }

    /// Registers a name under its hash unless the hash is taken (Go: first wins).
    fn register_name(&mut self, node: &NodeId) {
        self.names
            .entry(node.hash())
            .or_insert_with(|| node.clone());
    }

    fn recompute(&mut self) {
        let changed = self.router.recompute();
        self.stats.route_recomputations += 1;
        self.stats.route_changes += u64::from(changed);
        if self.forward_stale || self.forward_collided {
            self.rebuild_forward();
        } else if changed {
            self.update_forward();
        }
        if changed {
            self.events.push_back(Event::RoutesChanged);
        }
    }

    /// Rebuilds the forwarding index from the routing table. Where two destinations share
    /// a hash, the later by name wins.
    fn rebuild_forward(&mut self) {
        self.forward_stale = false;
        self.forward.clear();
        let graph = self.router.graph();
        for (dest, hop) in self.router.table() {
            let (Some(&link), Some(d)) =
                (self.peers.get(hop), graph.find(dest.as_str().as_bytes()))
            else {
                continue;
            };
            if let Some((old, _)) = self.forward.insert(dest.hash(), (d, link))
                && old != d
            {
                self.forward_collided = true;
            }
        }
    }

    /// Brings the forwarding index in step with the destinations whose first hop changed.
    fn update_forward(&mut self) {
        let graph = self.router.graph();
        for &d in self.router.changed() {
            let Some(dest) = graph.name(d) else { continue };
            let h = dest.hash();
            let link = self
                .router
                .hop(d)
                .and_then(|hop| graph.name(hop))
                .and_then(|hop| self.peers.get(hop));
            let held = self.forward.get(&h).map(|&(e, _)| e);
            if held.is_some_and(|e| e != d) {
                // Another destination with the same hash: only a full rebuild gets the
                // order right.
                self.forward_collided = true;
                break;
            }
            match link {
                Some(&link) => {
                    self.forward.insert(h, (d, link));
                }
                None => {
                    self.forward.remove(&h);
                }
            }
        }
        if self.forward_collided {
            self.rebuild_forward();
        }
    }

    /// Binds `service`, or an ephemeral name when `None`, optionally advertising it.
    pub fn listen(
        &mut self,
        now: Instant,
        service: Option<&str>,
        advertise: Option<Advertise>,
    ) -> Result<ServiceName, ListenError> {
        self.now = self.now.max(now);
        let name = match service {
            Some(s) => {
                let name = ServiceName::new(s)?;
                if name.is_reserved() {
                    return Err(ListenError::Reserved(name));
                }
                if self.service_in_use(name) {
                    return Err(ListenError::InUse(name));
                }
                name
            }
            None => self.ephemeral_service(),
        };
        if advertise.is_some() {
            // Go advertises a new listener within 5 s.
            self.request(Timer::ServiceAds, Duration::from_secs(5));
        }
        self.services.bound.insert(name, advertise);
        Ok(name)
    }

    /// Unbinds a service; an advertised one is withdrawn from the mesh at once.
    pub fn unlisten(&mut self, now: Instant, service: ServiceName) {
        self.now = self.now.max(now);
        if let Some(Some(_)) = self.services.bound.remove(&service) {
            self.cancel_ad(service);
        }
    }

    fn service_in_use(&self, s: ServiceName) -> bool {
        s.is_reserved()
            || self.services.bound.contains_key(&s)
            || self.pings.by_service.contains_key(&s)
    }

    fn ephemeral_service(&mut self) -> ServiceName {
        loop {
            let s = ServiceName::from_wire(self.random_name());
            if !self.service_in_use(s) {
                return s;
            }
        }
    }

    /// Closes every session but keeps the node running (Go's `reload` drops all backends
    /// before starting them again).
    pub fn disconnect_all(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.close_link(link, CloseReason::Shutdown);
        }
    }

    /// Stops the node: every session is closed.
    pub fn close(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.stop(None);
    }

    fn stop(&mut self, reason: Option<String>) {
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.close_link(link, CloseReason::Shutdown);
        }
        if let Some(reason) = reason {
            self.events.push_back(Event::Shutdown { reason });
        }
        self.shut_down = true;
    }
}

#[cfg(test)]
mod tests;
