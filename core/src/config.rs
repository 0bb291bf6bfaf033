//! Node and link configuration: identity, seed, tunables (Go defaults), per-backend options.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::firewall::FirewallRule;
use crate::id::NodeId;
use crate::identity::PeerCert;

/// A configuration value the core refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Link costs must be finite and greater than zero.
    #[error("cost must be greater than zero, got {0}")]
    BadCost(f64),
    /// The idle timeout cannot go below Go's 21 s.
    #[error("maxidleconnectiontimeout must be at least 21s, got {0:?}")]
    IdleTooShort(Duration),
    /// A firewall rule did not parse.
    #[error("firewall rule: {0}")]
    Firewall(String),
}

/// The kind of backend a link runs on: decides framing and size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// A byte stream (TCP, TLS): messages carry a 2-byte little-endian length prefix.
    Stream,
    /// One message per datagram, up to 65507 bytes (UDP).
    Datagram,
    /// One message per WebSocket binary message, up to 65535 bytes.
    Message,
}

/// Options of the backend a link belongs to (Go's per-backend parameters, netceptor.md §2.7).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// How messages are carried.
    pub kind: LinkKind,
    /// Cost of the link in routing; both ends must agree exactly.
    pub cost: f64,
    /// Per-peer cost overrides (listeners only, in Go).
    pub node_cost: BTreeMap<NodeId, f64>,
    /// If set, only these peers are accepted; others are rejected.
    pub allowed_peers: Option<BTreeSet<NodeId>>,
    /// `bindnodeid` on the backend's TLS config (not in Go): the peer must announce a node ID
    /// that its TLS certificate carries ([`crate::identity::check_peer`]).
    pub bind_node_id: bool,
    /// Per session: what the TLS handshake showed of the peer's certificate. The runtime sets
    /// it on the session's copy of the options when `bind_node_id` is on.
    pub peer_cert: Option<PeerCert>,
}

impl LinkConfig {
    /// A link of `kind` with cost 1.0, no overrides and any peer allowed.
    pub fn new(kind: LinkKind) -> Self {
        Self {
            kind,
            cost: 1.0,
            node_cost: BTreeMap::new(),
            allowed_peers: None,
            bind_node_id: false,
            peer_cert: None,
        }
    }

    /// Sets the link cost (must be > 0 and finite).
    pub fn cost(&mut self, cost: f64) -> Result<&mut Self, ConfigError> {
        check_cost(cost)?;
        self.cost = cost;
        Ok(self)
    }

    /// Sets a per-peer cost override (must be > 0 and finite).
    pub fn node_cost(&mut self, node: NodeId, cost: f64) -> Result<&mut Self, ConfigError> {
        check_cost(cost)?;
        self.node_cost.insert(node, cost);
        Ok(self)
    }
}

/// The accept-queue length the runtimes ask for on their listeners. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4), which is what Go's `net.Listen`
/// asks for; so this gives the same queue as Go on any system. The standard library (and so
/// both runtimes' socket crates) asks for 128: during a burst of 2000 connects, the rest wait on SYN
/// retries, a peer reconnecting among them included.
pub const LISTEN_BACKLOG: i32 = 65535;

/// The largest service advertisement accepted, in bytes as received. Go's largest are a
/// control service's (its work types) and an IP router's (one tag per route): a few hundred
/// bytes to a few KiB. Larger ones are dropped as malformed, so what a peer's allowance of
/// advertisements ([`Config::max_ads_per_link`]) can hold stays bounded.
pub const MAX_ADVERT_LEN: usize = 16 * 1024;

/// The longest routing-update ID accepted, in bytes. Go's are 8 characters; every ID is
/// remembered for an hour (`Config::seen_update_ttl`) to stop the flood's copies, so an
/// unbounded one would let a peer park up to 64 KiB per update in that memory. Updates with
/// a longer ID are dropped as malformed.
pub const MAX_UPDATE_ID_LEN: usize = 64;

/// `host:port` to bind a listener to, with an IPv6 host bracketed (`::1` gives `[::1]:port`).
pub fn bind_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Round trips up to this long make a short path for [`tcp_send_buffer`]: loopback, a LAN.
pub const SHORT_PATH_RTT: Duration = Duration::from_micros(500);
/// The send buffer a link's TCP connection asks for on a short path. Linux doubles it for its
/// own bookkeeping, so 1 MiB is queued at most: 16 full stream-link messages.
pub const SHORT_PATH_SEND_BUFFER: usize = 512 * 1024;

/// The kernel send buffer to ask for on a TCP connection that carries a link, from the round
/// trip the kernel measured for its handshake; `None` leaves the buffer to the kernel's
/// autotuning (also when there is no measurement: a zero round trip).
///
/// On a short path autotuning grows the send buffer to its maximum (4 MiB) at once, and a
/// node that writes faster than the next one reads queues megabytes on each hop. A QUIC
/// stream through the mesh then keeps its whole flow-control window (6 MiB) in those queues,
/// and every byte cools in memory between the hops that touch it. With the buffer bounded,
/// the stream bench (A -tcp- B -tcp- C on loopback, two cores) moved 14-18% more for 7-15%
/// less CPU per MiB, in alternated runs; 0.5 to 1 MiB queued did equally well, 1.5 and
/// 2 MiB bought little, 0.25 MiB or less did worse. Bounding only the unsent part
/// (TCP_NOTSENT_LOWAT) bought nothing: the queue that matters is in the receiver's buffer.
/// On a long path the buffer must hold a whole bandwidth-delay product, so it stays
/// autotuned: where the bound applies it still allows 1 MiB per 500 us, 2 GiB/s.
pub fn tcp_send_buffer(handshake_rtt: Duration) -> Option<usize> {
    (!handshake_rtt.is_zero() && handshake_rtt <= SHORT_PATH_RTT).then_some(SHORT_PATH_SEND_BUFFER)
}

fn check_cost(cost: f64) -> Result<(), ConfigError> {
    if cost.is_finite() && cost > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::BadCost(cost))
    }
}

/// What a node does when a routing update names it as the duplicate of another instance
/// with its node ID (netceptor.md §5.4): an update carrying our node ID, another epoch, and
/// `SuspectedDuplicate` equal to our epoch.
///
/// Nothing authenticates that claim: any peer can forge it for any node it can reach, so
/// under Go's rule (and our default) any peer can stop any node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// Shut the node down, as Go does: of two instances with one ID, the later stops.
    #[default]
    Exit,
    /// Keep running and reject the link the claim came through: a forged claim costs its
    /// sender that link, not our node. A real second instance is not stopped either; the
    /// links that carry its claims are refused, which cuts it off from this node.
    RefuseLink,
}

/// Everything a [`Node`](crate::Node) needs to start. Defaults are Go receptor's.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's ID.
    pub node_id: NodeId,
    /// Seed of the node's random numbers (update IDs, ephemeral services, jitter).
    pub rng_seed: u64,
    /// Unix time (since 1970) at the `now` given to `Node::new`; makes the epoch and ad times.
    pub wall_clock: Duration,
    /// Firewall rules, evaluated in order on every data message.
    pub firewall: Vec<FirewallRule>,
    /// A link that receives nothing for this long is closed (21 s, never less).
    pub max_idle: Duration,
    /// Period of this node's own routing update (10 s).
    pub route_update_interval: Duration,
    /// Period of this node's service advertisements (60 s).
    pub service_ad_interval: Duration,
    /// Hops-to-live given to new data messages (30).
    pub max_hops: u8,
    /// Interval between handshake routing updates on a new link (1 s).
    pub handshake_interval: Duration,
    /// Handshake updates sent before the link is given up (11).
    pub handshake_attempts: u32,
    /// Delay between a change and the flood / route recompute it asks for (100 ms).
    pub change_delay: Duration,
    /// How long a ping waits for its reply (10 s).
    pub ping_timeout: Duration,
    /// How long a seen update ID suppresses its copies (1 h).
    pub seen_update_ttl: Duration,
    /// Most update IDs remembered at once; the oldest go first.
    pub max_seen_updates: usize,
    /// Most links at once; further `LinkUp`s are closed at once.
    pub max_links: usize,
    /// Most node names one link may teach (routing-update origins and the names in their
    /// connections), 10 000. Beyond it, updates from further new nodes are dropped and not
    /// forwarded, new names in connections are left out, and `NodeStats::names_refused`
    /// counts them. Names forgotten (see `forget_after`) give their place back.
    pub max_nodes_per_link: u32,
    /// Most service advertisements one link may teach, 20 000 (two per node of the largest
    /// mesh above). Beyond it, advertisements for new (node, service) pairs are dropped and
    /// not forwarded (`NodeStats::ads_refused`); newer copies of those held still pass.
    pub max_ads_per_link: u32,
    /// How long a node no route reaches is remembered (2 min). After that its routing state
    /// and service advertisements are forgotten, and cancelled advertisements too; if it
    /// comes back it is learned again as a new node. Go never forgets, so whatever a departed
    /// peer taught it (every node and advertisement a misbehaving one invented) stays held.
    /// Checked every quarter of this time.
    pub forget_after: Duration,
    /// What to do when named as a duplicate of another instance: exit (Go's behaviour, the
    /// default) or refuse the link the claim came through.
    pub on_duplicate: DuplicatePolicy,
}

impl Config {
    /// A config with Go's defaults.
    pub fn new(node_id: NodeId, rng_seed: u64, wall_clock: Duration) -> Self {
        Self {
            node_id,
            rng_seed,
            wall_clock,
            firewall: Vec::new(),
            max_idle: Duration::from_secs(21),
            route_update_interval: Duration::from_secs(10),
            service_ad_interval: Duration::from_secs(60),
            max_hops: 30,
            handshake_interval: Duration::from_secs(1),
            handshake_attempts: 11,
            change_delay: Duration::from_millis(100),
            ping_timeout: Duration::from_secs(10),
            seen_update_ttl: Duration::from_secs(3600),
            max_seen_updates: 1 << 20,
            max_links: 65536,
            max_nodes_per_link: 10_000,
            max_ads_per_link: 20_000,
            forget_after: Duration::from_secs(120),
            on_duplicate: DuplicatePolicy::Exit,
        }
    }

    /// Sets the idle timeout; Go refuses values under 21 s.
    pub fn max_idle(&mut self, d: Duration) -> Result<&mut Self, ConfigError> {
        if d < Duration::from_secs(21) {
            return Err(ConfigError::IdleTooShort(d));
        }
        self.max_idle = d;
        Ok(self)
    }

    /// The seed of the stream layer's randomness ([`crate::stream::Streams::new`]): drawn
    /// from [`Config::rng_seed`] and the node ID, so it differs from the node's own stream of
    /// numbers and between nodes even when every node is given the same seed.
    pub fn stream_rng_seed(&self) -> u64 {
        self.rng_seed.rotate_left(17) ^ self.node_id.hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_bracket_ipv6_hosts_once() {
        assert_eq!(bind_addr("0.0.0.0", 7), "0.0.0.0:7");
        assert_eq!(bind_addr("localhost", 0), "localhost:0");
        assert_eq!(bind_addr("::1", 7), "[::1]:7");
        assert_eq!(bind_addr("[::1]", 7), "[::1]:7");
        assert_eq!(bind_addr("", 7), ":7");
    }

    #[test]
    fn stream_seeds_differ_between_nodes_with_one_seed() {
        let config = |id| Config::new(NodeId::new(id).unwrap(), 7, Duration::ZERO);
        let (a, b) = (config("a"), config("b"));
        assert_ne!(a.stream_rng_seed(), b.stream_rng_seed());
        // Not the node's own seed either (the node seeds with `rng_seed ^ hash`).
        assert_ne!(a.stream_rng_seed(), a.rng_seed ^ a.node_id.hash());
        assert_eq!(a.stream_rng_seed(), config("a").stream_rng_seed());
    }

    #[test]
    fn only_short_measured_paths_get_a_bounded_send_buffer() {
        // Loopback measures tens of microseconds; a LAN a few hundred.
        for us in [20, 32, 250, 500] {
            let rtt = Duration::from_micros(us);
            assert_eq!(
                tcp_send_buffer(rtt),
                Some(SHORT_PATH_SEND_BUFFER),
                "{rtt:?}"
            );
        }
        // No measurement, or a path long enough to need autotuning's bandwidth-delay product.
        for us in [0, 501, 2_000, 80_000] {
            let rtt = Duration::from_micros(us);
            assert_eq!(tcp_send_buffer(rtt), None, "{rtt:?}");
        }
    }
}
