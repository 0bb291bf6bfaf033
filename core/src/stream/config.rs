//! QUIC settings that interoperate with Go receptor's quic-go (netceptor.md §8.2).

use std::sync::Arc;
use std::time::Duration;

use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{ClientConfig, ServerConfig, TransportConfig, VarInt};

/// ALPN of every netceptor stream.
pub const ALPN: &[u8] = b"netceptor";
/// The packet size every connection starts with: Go sends 1200 and accepts up to 1452.
pub const MAX_PACKET: u16 = 1200;
/// The largest QUIC packet we accept and probe for. Go advertises 1452 and quinn never sends
/// a peer more than it advertises, so only two of our nodes use larger packets, found by path
/// MTU discovery (which backs off from a path that cannot carry them, e.g. one through a UDP
/// backend). It fits a mesh message on every backend (UDP carries 65507 bytes).
///
/// Framed for a stream link (2-byte length, 36-byte data header) such a packet is 65483
/// bytes: exactly one TCP segment on Linux loopback (MTU 65536, with timestamps), so every
/// segment between two nodes carries one whole message. At 65471 every message straddled
/// two segments, and the stream bench (A -tcp- B -tcp- C) moved 15-18% less for 15% more
/// CPU per MiB (alternated runs).
pub const MAX_PACKET_OURS: u16 = 65_445;
/// The smallest step of the path MTU search. A probe is a packet of the probed size, nearly all
/// PADDING, and quinn parses padding a byte at a time (a 65 KB probe costs its receiver about
/// a millisecond). With quinn's default step (20 bytes) the search sent a dozen probes on
/// every new connection, and every control-service session a remote unit opens is one: that
/// was four fifths of the CPU of a remote unit of work. With this step, more than half the
/// distance from 1200 to the largest size, the search probes the largest size alone and
/// stops; a path that cannot carry it stays at 1200. (A middle probe of 33 KB bought
/// nothing: every mesh backend carries a whole 65 KB message or none.) Go peers advertise
/// 1452, less than a step above 1200, so connections to them probe nothing.
pub const MTU_SEARCH_STEP: u16 = 32 * 1024;
/// Idle timeout, as Go's `MaxIdleTimeout`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive on both roles: a Go server never pings, so quiet streams need ours.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Go's `HandshakeIdleTimeout`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server waits for the client's first stream (Go: 60 s, then error 500).
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Streams a runtime queues on a listener before further ones are refused: a listen backlog.
/// The node task completes every handshake that arrives in one wake-up before the accepting
/// task can run, and a burst of dials (200 remote units submitted at once dial the control
/// service 200 times) completed more than 64 at once: the rest were closed after their
/// handshake, and their dialers saw EOF and retried seconds later.
pub const ACCEPT_QUEUE: usize = 1024;
/// Application error code for a normal close.
pub const CLOSE_NORMAL: u32 = 0;
/// Application error code for setup failures (accept timeout, bad first byte), as Go's for
/// every close that is not normal; also ours for a peer an unreachable notice named.
pub const CLOSE_SETUP: u32 = 500;
/// STOP_SENDING code when a reader gives up.
pub const STOP_READING: u32 = 499;

/// Why a TLS config cannot carry QUIC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TLS config unusable for QUIC: {0}")]
pub struct QuicTlsError(pub String);

/// How long a node whose path carried [`MAX_PACKET_OURS`] is trusted to carry it again:
/// connections to it meanwhile start at that size and send no probe. quinn searches again
/// after the same interval.
pub const KNOWN_PATH_TTL: Duration = Duration::from_secs(60);

/// The transport settings for every netceptor QUIC connection.
pub fn transport() -> Arc<TransportConfig> {
    Arc::new(settings())
}

/// The transport settings of a connection to a node of ours whose path carried
/// [`MAX_PACKET_OURS`] within [`KNOWN_PATH_TTL`] (a connection that probed, reached it, and
/// told [`Streams`](super::Streams)): it starts at that size instead of at 1200 bytes
/// and probes nothing. Every new connection probed, and a probe is a packet of that size
/// almost all PADDING, which quinn parses a byte at a time: about 1 ms of its receiver's CPU,
/// twice per connection, and a remote unit of work opens three or four control sessions.
/// quinn never sends more than the peer advertises (Go: 1452), and a black hole (large
/// packets lost) drops it to 1200 as on any connection.
pub fn transport_known_path() -> Arc<TransportConfig> {
    let mut t = settings();
    t.initial_mtu(MAX_PACKET_OURS);
    // quinn's initial window (14 720 bytes) is less than one such packet; once a probe
    // succeeds quinn raises it to two packets, as here.
    let mut cubic = quinn_proto::congestion::CubicConfig::default();
    cubic.initial_window(2 * u64::from(MAX_PACKET_OURS));
    t.congestion_controller_factory(Arc::new(cubic));
    Arc::new(t)
}

fn settings() -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(
        VarInt::from_u32(IDLE_TIMEOUT.as_millis() as u32).into(),
    ))
    .keep_alive_interval(Some(KEEP_ALIVE))
    .initial_mtu(MAX_PACKET)
    .min_mtu(MAX_PACKET)
    .mtu_discovery_config(Some({
        let mut m = quinn_proto::MtuDiscoveryConfig::default();
        m.upper_bound(MAX_PACKET_OURS)
            .minimum_change(MTU_SEARCH_STEP)
            .interval(Duration::from_secs(60))
            .black_hole_cooldown(Duration::from_secs(10));
        m
    }))
    .max_concurrent_bidi_streams(VarInt::from_u32(100))
    .max_concurrent_uni_streams(VarInt::from_u32(100))
    .datagram_receive_buffer_size(None)
    // Loopback and LAN meshes have tiny RTTs; larger windows keep bulk streams moving.
    .stream_receive_window(VarInt::from_u32(6 * 1024 * 1024))
    .receive_window(VarInt::from_u32(15 * 1024 * 1024))
    .send_window(15 * 1024 * 1024);
    t
}

/// A server config from a rustls config (TLS 1.3; ALPN is forced to `netceptor`).
pub fn server_config(tls: rustls::ServerConfig) -> Result<Arc<ServerConfig>, QuicTlsError> {
    let mut tls = tls;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    // No session tickets: no client of a mesh stream resumes (Go's sets no session cache,
    // ours none either), so each ticket was work and bytes for nothing on every connection.
    tls.send_tls13_tickets = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| QuicTlsError(e.to_string()))?;
    let mut c = ServerConfig::with_crypto(Arc::new(crypto));
    c.transport_config(transport());
    // Go disables active migration: a live connection never changes its (node, service).
    c.migration(false);
    Ok(Arc::new(c))
}

/// A client config from a rustls config (TLS 1.3; ALPN is forced to `netceptor`).
pub fn client_config(tls: rustls::ClientConfig) -> Result<ClientConfig, QuicTlsError> {
    let mut tls = tls;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    // As Go's client: no resumption, so tickets a server sends are not kept either.
    tls.resumption = rustls::client::Resumption::disabled();
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| QuicTlsError(e.to_string()))?;
    let mut c = ClientConfig::new(Arc::new(crypto));
    c.transport_config(transport());
    // A config may serve many dials: keep no server's address-validation tokens to present
    // to the next (quinn's default store would, keyed by a server name that Go sets to the
    // dialer's own node ID, so to every node alike).
    c.token_store(Arc::new(quinn_proto::NoneTokenStore));
    Ok(c)
}
