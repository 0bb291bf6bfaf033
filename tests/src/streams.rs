//! Mesh streams in the simulator: the core's QUIC stream layer ([`Streams`]) beside a node,
//! with small applications at both ends.
//!
//! A node gets a stream layer on first use ([`Sim::stream_listen`], [`Sim::stream_dial`]).
//! It is joined to the node by the same glue as in the runtimes (the core's
//! [`StreamSide`](receptor_core::stream::side::StreamSide), with the simulator's ports in
//! `stream_app.rs`): the layer owns some node services (listeners, and one ephemeral
//! service per dial); datagrams and unreachable notices for those go to the layer instead of
//! the node's event record, and every QUIC packet it emits is sent with `Node::send`. The
//! layer runs as its own simulated actor: its inputs wait in an inbox and are handled in a
//! separate step at the same virtual instant (never inside the node's own drain), and its
//! `poll_timeout` gets its own timer.
//!
//! The applications: a listener is an [`StreamApp::Echo`] (sends everything back, finishes
//! when the dialer has finished and all is echoed) or a [`StreamApp::Sink`] (reads and
//! hashes everything, finishes when the dialer has). A dialer writes a deterministic byte
//! pattern ([`Sim::stream_send`]), then its FIN ([`Sim::stream_finish`]), and checks that an
//! echo brings back exactly that pattern. Both move data with the runtimes' back-pressure: a
//! writer hands over only what its credit allows, credit that comes back as QUIC takes the
//! bytes; an echo stops reading while its buffer is full. The glue closes them as it closes
//! the runtimes' streams: only the side that reads the last FIN closes at once, the other
//! lingers until the peer closes (or the idle timeout).
//!
//! TLS: the insecure mesh-stream mode of the runtimes ([`receptor_core::tls::insecure`]: a
//! self-signed certificate with a known CommonName, accepted by that name), with one
//! certificate per simulation made from an Ed25519 key derived from its seed. Ed25519
//! signatures are deterministic and of fixed size, so handshakes have the same sizes every run.
//!
//! Determinism: the simulator stays seeded and ordered, and quinn's endpoint RNG and the TLS
//! certificate derive from the seed, but rustls draws key shares and nonces from the OS, and
//! quinn draws connection IDs and token keys from it too. Stream runs are therefore
//! repeatable in outcome and in shape (every packet's size and time, and so every loss and
//! delay drawn, [`Sim::stats`] and [`Sim::stream_shape_hash`]) but not byte for byte: their
//! [`Sim::trace_hash`] differs between runs. Runs without streams are untouched by all this.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use receptor_core::stream::quinn_proto::{ClientConfig, ServerConfig};
use receptor_core::stream::side::StreamSide;
use receptor_core::stream::{
    DialFailure, ServerTls, StreamFailure, StreamHandle, client_config, server_config,
};
use receptor_core::tls::insecure::{
    insecure_cert_for_key, insecure_client_config, insecure_server_config_with,
};
use receptor_core::wire::UnreachableNotice;
use receptor_core::{Addr, Event, ListenError, Node, NodeId, ServiceName};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::check::{TraceHash, mix64};
use crate::sim::{Sim, SimEvent, Stuck};
use crate::stream_app::{self, Entry, RawIo, SimPorts, lock};

/// The server name every simulated dial presents (the insecure mode ignores it).
const SERVER_NAME: &str = "receptor-sim";

/// The QUIC configs of one simulation.
struct SimTls {
    server: Arc<ServerConfig>,
    client: ClientConfig,
}

impl fmt::Debug for SimTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimTls")
    }
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
fn ed25519_pkcs8(seed: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

impl SimTls {
    /// Configs for the simulation seeded with `seed`: the insecure mode's, with a certificate
    /// whose key comes from the seed, dated from a fixed instant (the mode ignores dates).
    ///
    /// # Panics
    /// If rustls or rcgen refuse what is built here (a bug, not a runtime condition).
    fn new(seed: u64) -> Self {
        let mut key_seed = [0u8; 32];
        for (i, chunk) in key_seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&mix64(seed ^ mix64(0x7715 + i as u64)).to_le_bytes());
        }
        let pkcs8 = PrivatePkcs8KeyDer::from(ed25519_pkcs8(key_seed));
        let dated = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cert = insecure_cert_for_key(dated, &pkcs8).expect("insecure-mode certificate");
        let server = insecure_server_config_with(cert, PrivateKeyDer::Pkcs8(pkcs8))
            .expect("insecure server config");
        let mut server = rustls::ServerConfig::clone(&server);
        // No session tickets and no resumption: every handshake is a full one, the same every run.
        server.send_tls13_tickets = 0;
        let client = insecure_client_config().expect("insecure client config");
        let mut client = rustls::ClientConfig::clone(&client);
        client.resumption = rustls::client::Resumption::disabled();
        Self {
            server: server_config(server).expect("QUIC server config"),
            client: client_config(client).expect("QUIC client config"),
        }
    }
}

/// The QUIC server and client configs the simulator's streams use with seed `seed`, for
/// tests that drive [`receptor_core::stream::Streams`] by hand.
pub fn stream_tls(seed: u64) -> (Arc<ServerConfig>, ClientConfig) {
    let t = SimTls::new(seed);
    (t.server, t.client)
}

/// What an echo holds before it stops reading (back-pressure towards the dialer).
const ECHO_CAP: usize = 256 * 1024;
/// Timer token of a wake-up for the inbox (timer tokens start at 1).
const WAKE: u64 = 0;

/// A stream in the simulation, at either end (dialer or acceptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimStream(usize);

/// What a listener does with the streams it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamApp {
    /// Writes back everything it reads; finishes once the dialer finished and all is echoed.
    Echo,
    /// Reads and hashes everything; finishes once the dialer finished.
    Sink,
    /// Nothing here: the test reads ([`Sim::stream_read`]), writes ([`Sim::stream_write`]),
    /// finishes and drops each accepted stream itself ([`Sim::stream_total`] finds them).
    Raw,
}

/// Which end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRole {
    /// The end that dialed: writes the pattern, checks what comes back against it.
    Dialer,
    /// The end a listener accepted, running its application.
    Acceptor(StreamApp),
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// This end closed the connection, both directions being done.
    Closed,
    /// The connection ended without this end closing it: the peer closed it normally
    /// (`None`), or it failed (idle timeout, refused, reset...).
    Lost(Option<StreamFailure>),
    /// The dial could not start at all.
    NotStarted(String),
    /// The node crashed.
    Crashed,
}

/// Everything one end of a stream did, for the checks.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// The node this end runs on.
    pub node: NodeId,
    /// Dialer or acceptor.
    pub role: StreamRole,
    /// This end's service (a dial's ephemeral one, or the listener's).
    pub local: ServiceName,
    /// The other end's address (for a dialer, where it dialed).
    pub remote: Addr,
    /// The other end of the stream, once the acceptor has it.
    pub peer: Option<SimStream>,
    /// When the stream opened (virtual time since the start).
    pub opened_at: Option<Duration>,
    /// When it ended.
    pub ended_at: Option<Duration>,
    /// Dialer: the seed of the pattern it writes (see [`pattern`]).
    pub seed: u64,
    /// Bytes the application asked to write (dialer: pattern bytes queued).
    pub queued: u64,
    /// Bytes QUIC took.
    pub written: u64,
    /// FNV-1a of the bytes written.
    pub written_hash: u64,
    /// Bytes read.
    pub read: u64,
    /// FNV-1a of the bytes read.
    pub read_hash: u64,
    /// Dialer: the first offset at which what came back differs from what it sent.
    pub mismatch_at: Option<u64>,
    /// Our FIN was handed to QUIC.
    pub fin_sent: bool,
    /// Everything we wrote, FIN included, was acknowledged.
    pub fin_acked: bool,
    /// The peer's FIN was read.
    pub eof: bool,
    /// A read failed (the connection failed before the end of the stream).
    pub read_error: Option<String>,
    /// A write failed.
    pub write_error: Option<String>,
    /// How it ended, once it has.
    pub end: Option<StreamEnd>,
}

impl StreamReport {
    /// Read the peer's FIN after exactly `len` bytes whose hash is `hash`, with no error.
    pub fn read_intact(&self, len: u64, hash: u64) -> bool {
        self.eof && self.read_error.is_none() && self.read == len && self.read_hash == hash
    }

    /// Ended with a failure seen by the application: a failed read or write, or a lost
    /// connection with an error.
    pub fn failed(&self) -> bool {
        self.read_error.is_some()
            || self.write_error.is_some()
            || matches!(
                self.end,
                Some(StreamEnd::Lost(Some(_)) | StreamEnd::NotStarted(_))
            )
    }
}

impl fmt::Display for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({:?}) <-> {}: queued {} written {} read {} fin_sent {} fin_acked {} eof {}",
            self.node,
            self.local,
            self.role,
            self.remote,
            self.queued,
            self.written,
            self.read,
            self.fin_sent,
            self.fin_acked,
            self.eof
        )?;
        if let Some(m) = self.mismatch_at {
            write!(f, " MISMATCH at {m}")?;
        }
        if let Some(e) = &self.read_error {
            write!(f, " read error {e:?}")?;
        }
        if let Some(e) = &self.write_error {
            write!(f, " write error {e:?}")?;
        }
        match &self.end {
            Some(end) => write!(
                f,
                " ended {end:?} at {:?}",
                self.ended_at.unwrap_or_default()
            ),
            None => write!(f, " open"),
        }
    }
}

/// Counters of the stream layers over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// QUIC packets handed to `Node::send`.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Packets `Node::send` refused (no route, mostly): QUIC's to recover.
    pub send_errors: u64,
    /// Packets that reached a stream layer.
    pub received: u64,
    /// Unreachable notices that reached a stream layer.
    pub unreachable: u64,
    /// Packets dropped for exceeding the path MTU set with [`Sim::set_stream_mtu`].
    pub too_big: u64,
    /// Packets larger than Go's largest (1452 bytes): path MTU probes, and the packets of
    /// connections between our nodes once their path is known to carry more.
    pub large: u64,
}

/// The FNV-1a hash of `data`, continuing from `h` (start with [`fnv_start`]).
pub fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The FNV-1a starting value.
pub fn fnv_start() -> u64 {
    0xcbf2_9ce4_8422_2325
}

/// `len` bytes of the pattern with seed `seed`, from `offset` on. Byte `i` of a pattern is a
/// function of the seed and `i` alone, so any chunk can be made or checked on its own.
pub fn pattern(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let end = offset + len as u64;
    let mut i = offset;
    while i < end {
        let word = mix64(seed ^ (i / 8)).to_le_bytes();
        let from = (i % 8) as usize;
        let take = ((end - i) as usize).min(8 - from);
        out.extend_from_slice(&word[from..from + take]);
        i += take as u64;
    }
    out
}

/// What reached a stream layer through its node.
enum Inbound {
    Datagram {
        service: ServiceName,
        from: Addr,
        payload: Bytes,
    },
    Unreachable {
        service: ServiceName,
        reporter: NodeId,
        notice: UnreachableNotice,
    },
}

/// The stream layer of one running node.
struct Layer {
    side: StreamSide<SimPorts>,
    /// The stream ends on this node, this incarnation.
    entries: Vec<usize>,
    inbox: VecDeque<Inbound>,
    wake_pending: bool,
    /// Virtual time of the scheduled timer, and its token.
    timer: Option<u64>,
    timer_token: u64,
    /// Timeouts handled at one instant in a row, to catch a timer that never clears.
    spin: (u64, u32),
}

/// Every stream layer and stream of a simulation.
#[derive(Default)]
pub(crate) struct StreamWorld {
    layers: BTreeMap<u32, Layer>,
    entries: Vec<Entry>,
    tls: Option<SimTls>,
    next_token: u64,
    stats: StreamStats,
    shape: TraceHash,
    mtu: Option<usize>,
}

impl StreamWorld {
    /// Hook for `drive.rs`: a node event for a service of the node's stream layer goes to
    /// that layer (and is not recorded), and `wake` is set to the layer's wake-up if it
    /// needs one now; anything else comes back.
    pub(crate) fn intercept(
        &mut self,
        n: u32,
        ev: Event,
        wake: &mut Option<SimEvent>,
    ) -> Option<Event> {
        if self.layers.is_empty() {
            return Some(ev);
        }
        let service = match &ev {
            Event::Datagram { service, .. } | Event::Unreachable { service, .. } => *service,
            _ => return Some(ev),
        };
        let Some(l) = self.layers.get_mut(&n) else {
            return Some(ev);
        };
        if !l.side.owns(service) {
            return Some(ev);
        }
        match ev {
            Event::Datagram {
                service,
                from,
                payload,
            } => l.inbox.push_back(Inbound::Datagram {
                service,
                from,
                payload,
            }),
            Event::Unreachable {
                service,
                reporter,
                notice,
            } => l.inbox.push_back(Inbound::Unreachable {
                service,
                reporter,
                notice,
            }),
            other => return Some(other),
        }
        if !l.wake_pending {
            l.wake_pending = true;
            *wake = Some(SimEvent::Streams {
                node: n,
                token: WAKE,
            });
        }
        None
    }

    /// Whether no node has a stream layer.
    pub(crate) fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Handles the layer's inbox, due timers and events, and runs its applications.
    fn run(&mut self, n: u32, node: &mut Node, now: Instant, at: Duration, name: &NodeId) {
        let Some(l) = self.layers.get_mut(&n) else {
            return;
        };
        while let Some(input) = l.inbox.pop_front() {
            let ev = match input {
                Inbound::Datagram {
                    service,
                    from,
                    payload,
                } => {
                    self.stats.received += 1;
                    self.shape.u64(at.as_nanos() as u64);
                    self.shape.u64(u64::from(n));
                    self.shape.u64(payload.len() as u64);
                    Event::Datagram {
                        service,
                        from,
                        payload,
                    }
                }
                Inbound::Unreachable {
                    service,
                    reporter,
                    notice,
                } => {
                    self.stats.unreachable += 1;
                    Event::Unreachable {
                        service,
                        reporter,
                        notice,
                    }
                }
            };
            let _ = l.side.handle_node_event(now, ev);
        }
        l.side.handle_streams_timeout(now);
        loop {
            let mut moved = l.side.pump_events(node, now);
            for ((app, service), opened) in std::mem::take(&mut l.side.ports_mut().accepted) {
                moved = true;
                let ix = self.entries.len();
                let Some(remote) = opened.remote else {
                    continue;
                };
                // The dialer of this stream: its node and ephemeral service, not yet paired.
                let peer = self.entries.iter().rposition(|d| {
                    d.report.role == StreamRole::Dialer
                        && d.report.peer.is_none()
                        && d.report.node == remote.node
                        && d.report.local == remote.service
                });
                if let Some(p) = peer {
                    self.entries[p].report.peer = Some(SimStream(ix));
                }
                let node = name.clone();
                let mut r = report(node, StreamRole::Acceptor(app), service, remote);
                r.peer = peer.map(SimStream);
                r.opened_at = Some(at);
                if app == StreamApp::Echo {
                    lock(&opened.shared).cap = Some(ECHO_CAP);
                }
                let mut e = Entry::new(r, n, opened.handle);
                e.shared = Some(opened.shared);
                if app == StreamApp::Raw {
                    e.raw = Some(RawIo::default());
                }
                self.entries.push(e);
                l.entries.push(ix);
            }
            for &ix in &l.entries {
                moved |= stream_app::service(&mut l.side, node, &mut self.entries[ix], now, at);
            }
            if !moved {
                return;
            }
        }
    }
}

impl fmt::Debug for StreamWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWorld")
            .field("layers", &self.layers.len())
            .field("streams", &self.entries.len())
            .finish_non_exhaustive()
    }
}

fn report(node: NodeId, role: StreamRole, local: ServiceName, remote: Addr) -> StreamReport {
    StreamReport {
        node,
        role,
        local,
        remote,
        peer: None,
        opened_at: None,
        ended_at: None,
        seed: 0,
        queued: 0,
        written: 0,
        written_hash: fnv_start(),
        read: 0,
        read_hash: fnv_start(),
        mismatch_at: None,
        fin_sent: false,
        fin_acked: false,
        eof: false,
        read_error: None,
        write_error: None,
        end: None,
    }
}

// ---- the simulator's side ----

impl Sim {
    /// Hook for the event loop: the stream layer's wake-up or timer.
    pub(crate) fn on_streams(&mut self, n: u32, token: u64) {
        let now = self.now;
        let Some(l) = self.stream_world.layers.get_mut(&n) else {
            return;
        };
        if token == WAKE {
            l.wake_pending = false;
        } else {
            if token != l.timer_token {
                return;
            }
            l.timer = None;
            l.spin = if l.spin.0 == now {
                (now, l.spin.1 + 1)
            } else {
                (now, 1)
            };
            if l.spin.1 > 10_000 {
                let name = self.nodes[n as usize].name.clone();
                self.violation(&format!(
                    "stream layer of {name} asks for timeouts without end"
                ));
            }
        }
        self.stream_step(n);
    }

    /// Hook for `crash`: the node's stream layer dies with it.
    pub(crate) fn stream_crash(&mut self, n: u32) {
        if self.stream_world.layers.remove(&n).is_none() {
            return;
        }
        let at = self.now();
        for e in &mut self.stream_world.entries {
            if e.node == n {
                e.end(StreamEnd::Crashed, at);
            }
        }
    }

    /// Runs node `n`'s stream layer now and sends what it has to send.
    fn stream_step(&mut self, n: u32) {
        let (now, at) = (self.instant(), self.now());
        let sn = &mut self.nodes[n as usize];
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        self.stream_world.run(n, node, now, at, &sn.name);
        // Every stream the application holds open is still known to the core, or the core
        // told the application it ended.
        let w = &self.stream_world;
        if let Some(l) = w.layers.get(&n)
            && let Some(e) = l.entries.iter().map(|&ix| &w.entries[ix]).find(|e| {
                e.shared.is_some()
                    && e.report.end.is_none()
                    && l.side.streams().remote(e.handle).is_none()
            })
        {
            self.violation(&format!(
                "the stream layer of {} dropped {:?} without a Closed event: {}",
                self.nodes[n as usize].name, e.handle, e.report
            ));
        }
        self.stream_flush(n);
    }

    /// Sends the layer's packets through its node and schedules the layer's timer.
    fn stream_flush(&mut self, n: u32) {
        let now = self.instant();
        let Some(l) = self.stream_world.layers.get_mut(&n) else {
            return;
        };
        let mut out = Vec::new();
        while let Some(d) = l.side.poll_datagram() {
            out.push(d);
        }
        let timer = l
            .side
            .poll_streams_timeout()
            .map(|t| self.vtime(t).max(self.now));
        for (i, d) in out.into_iter().enumerate() {
            let w = &mut self.stream_world;
            w.stats.sent += 1;
            w.stats.sent_bytes += d.payload.len() as u64;
            if d.payload.len() > 1452 {
                w.stats.large += 1;
            }
            w.shape.u64(self.now);
            w.shape.u64(u64::from(n));
            w.shape.u64(d.payload.len() as u64);
            if w.mtu.is_some_and(|m| d.payload.len() > m) {
                w.stats.too_big += 1;
                continue;
            }
            let sent = self.nodes[n as usize].node.as_mut().map(|node| {
                node.send(
                    now,
                    d.from,
                    d.to.node.as_str(),
                    d.to.service,
                    d.payload,
                    None,
                )
            });
            if !matches!(sent, Some(Ok(()))) {
                self.stream_world.stats.send_errors += 1;
            }
            // Keep each drain of the node's output small.
            if i % 32 == 31 {
                self.feed(n, None);
            }
        }
        self.feed(n, None);
        let Some(l) = self.stream_world.layers.get_mut(&n) else {
            return;
        };
        if timer != l.timer {
            l.timer = timer;
            if let Some(t) = timer {
                self.stream_world.next_token += 1;
                let token = self.stream_world.next_token;
                l.timer_token = token;
                self.schedule(t, SimEvent::Streams { node: n, token });
            }
        }
    }

    /// The node's stream layer, made on first use; and the node.
    fn layer(&mut self, n: u32) -> (&mut Layer, &mut Node) {
        let seed = mix64(self.seed ^ mix64(0x5743 ^ (u64::from(n) << 32)))
            ^ u64::from(self.nodes[n as usize].incarnation);
        let l = self.stream_world.layers.entry(n).or_insert_with(|| Layer {
            side: StreamSide::new(seed, SimPorts::default()),
            entries: Vec::new(),
            inbox: VecDeque::new(),
            wake_pending: false,
            timer: None,
            timer_token: 0,
            spin: (0, 0),
        });
        let node = self.nodes[n as usize]
            .node
            .as_mut()
            .unwrap_or_else(|| unreachable!("a running node"));
        (l, node)
    }

    fn tls(&mut self) -> &SimTls {
        let seed = self.seed;
        self.stream_world
            .tls
            .get_or_insert_with(|| SimTls::new(seed))
    }

    fn running(&self, node: &str) -> u32 {
        let n = self.ix(node);
        assert!(self.is_alive(node), "node {node} is not running");
        n
    }

    // ---- the public API ----

    /// Listens for streams on `service` at `node` (not advertised), answering each with
    /// `app`.
    ///
    /// # Panics
    /// If the node is not running.
    pub fn stream_listen(
        &mut self,
        node: &str,
        service: &str,
        app: StreamApp,
    ) -> Result<ServiceName, ListenError> {
        let n = self.running(node);
        let now = self.instant();
        let tls = ServerTls::Fixed(self.tls().server.clone());
        let accept = (app, ServiceName::new(service)?);
        let (l, nd) = self.layer(n);
        let name = l.side.listen(nd, now, service, tls, None, accept)?;
        self.feed(n, None);
        Ok(name)
    }

    /// Dials `service` on node `to` from `node` (an ephemeral service is bound for it). The
    /// stream opens when the handshake completes; data queued before then waits.
    ///
    /// # Panics
    /// If the node is not running or a name is not valid.
    pub fn stream_dial(&mut self, node: &str, to: &str, service: &str) -> SimStream {
        self.dial_stream(node, to, service, false)
    }

    /// Dials as [`Sim::stream_dial`] a stream the test drives itself, as a [`StreamApp::Raw`]
    /// listener's: [`Sim::stream_write`], [`Sim::stream_read`], [`Sim::stream_finish`],
    /// [`Sim::stream_drop`]; a failed dial says why in [`Sim::stream_dial_failure`].
    ///
    /// # Panics
    /// If the node is not running or a name is not valid.
    pub fn stream_dial_raw(&mut self, node: &str, to: &str, service: &str) -> SimStream {
        self.dial_stream(node, to, service, true)
    }

    fn dial_stream(&mut self, node: &str, to: &str, service: &str, raw: bool) -> SimStream {
        let n = self.running(node);
        let now = self.instant();
        let remote = Addr {
            node: NodeId::new(to).unwrap_or_else(|e| panic!("{to:?}: {e}")),
            service: ServiceName::new(service).unwrap_or_else(|e| panic!("{service:?}: {e}")),
        };
        let client = self.tls().client.clone();
        let ix = self.stream_world.entries.len();
        let seed = mix64(self.seed ^ mix64(0xd1a1 + ix as u64));
        let name = self.nodes[n as usize].name.clone();
        let (l, nd) = self.layer(n);
        let (tx, rx) = mpsc::channel();
        let dialed = l.side.dial(nd, now, to, service, client, SERVER_NAME, tx);
        let (handle, local) = dialed.unwrap_or((StreamHandle(u64::MAX), ServiceName::default()));
        l.entries.push(ix);
        let mut report = report(name, StreamRole::Dialer, local, remote);
        report.seed = seed;
        let mut e = Entry::new(report, n, handle);
        e.dial = Some(rx);
        if raw {
            e.raw = Some(RawIo::default());
        }
        self.stream_world.entries.push(e);
        self.stream_step(n);
        SimStream(ix)
    }

    /// Queues `len` more bytes of the dialer's pattern to write.
    ///
    /// # Panics
    /// If `s` is not a dialer, or its FIN is already asked for.
    pub fn stream_send(&mut self, s: SimStream, len: u64) {
        let e = &mut self.stream_world.entries[s.0];
        assert_eq!(e.report.role, StreamRole::Dialer, "only a dialer sends");
        assert!(!e.fin_wanted, "stream already finished");
        e.report.queued += len;
        let n = e.node;
        self.stream_service(n);
    }

    /// Queues bytes for a raw stream to write (as its credit allows).
    ///
    /// # Panics
    /// If `s` is not a raw stream.
    pub fn stream_write(&mut self, s: SimStream, data: Bytes) {
        let e = &mut self.stream_world.entries[s.0];
        let raw = e
            .raw
            .as_mut()
            .expect("only a raw stream is written by the test");
        if data.is_empty() || e.fin_wanted || e.report.end.is_some() {
            return;
        }
        raw.outbox.push_back(data);
        let n = e.node;
        self.stream_service(n);
    }

    /// Takes what a raw stream read so far. Whether reading is over is in its report
    /// (`eof`, `read_error`, `end`).
    pub fn stream_read(&mut self, s: SimStream) -> Vec<Bytes> {
        let e = &mut self.stream_world.entries[s.0];
        e.raw
            .as_mut()
            .map_or_else(Vec::new, |r| r.inbox.drain(..).collect())
    }

    /// Why a raw stream's dial failed, once it has.
    pub fn stream_dial_failure(&self, s: SimStream) -> Option<&DialFailure> {
        self.stream_world.entries[s.0]
            .raw
            .as_ref()
            .and_then(|r| r.dial_failure.as_ref())
    }

    /// The test lets go of a raw stream: the glue closes it (at once if still dialing,
    /// once it opens). Its report ends as `Closed` unless it had ended already.
    pub fn stream_drop(&mut self, s: SimStream) {
        let at = self.now();
        let now = self.instant();
        let e = &mut self.stream_world.entries[s.0];
        let n = e.node;
        if e.report.end.is_some() {
            return;
        }
        let Some(raw) = e.raw.as_mut() else {
            return;
        };
        if e.shared.is_none() {
            raw.drop_wanted = true;
            return;
        }
        e.shared = None;
        e.end(StreamEnd::Closed, at);
        let handle = e.handle;
        if let Some(l) = self.stream_world.layers.get_mut(&n)
            && let Some(node) = self.nodes[n as usize].node.as_mut()
        {
            l.side.dropped(node, now, handle);
            self.stream_step(n);
        }
    }

    /// How many stream ends the simulation has made so far: streams are numbered in
    /// creation order, so the ones made since an earlier count are the new ones.
    pub fn stream_total(&self) -> usize {
        self.stream_world.entries.len()
    }

    /// The `i`-th stream end made (see [`Sim::stream_total`]).
    pub fn stream_at(&self, i: usize) -> SimStream {
        assert!(i < self.stream_world.entries.len(), "no stream {i}");
        SimStream(i)
    }

    /// Finishes the dialer's side once everything queued is written.
    pub fn stream_finish(&mut self, s: SimStream) {
        let e = &mut self.stream_world.entries[s.0];
        e.fin_wanted = true;
        let n = e.node;
        self.stream_service(n);
    }

    fn stream_service(&mut self, n: u32) {
        if self.stream_world.layers.contains_key(&n) && self.nodes[n as usize].node.is_some() {
            self.stream_step(n);
        }
    }

    /// Dials an echo and sends it `len` bytes, then the FIN.
    pub fn stream_echo(&mut self, node: &str, to: &str, service: &str, len: u64) -> SimStream {
        let s = self.stream_dial(node, to, service);
        self.stream_send(s, len);
        self.stream_finish(s);
        s
    }

    /// What one end of a stream did so far.
    pub fn stream(&self, s: SimStream) -> &StreamReport {
        &self.stream_world.entries[s.0].report
    }

    /// The other end of a stream, once the listener accepted it.
    pub fn stream_peer(&self, s: SimStream) -> Option<SimStream> {
        self.stream(s).peer
    }

    /// Every stream end on `node`, in creation order.
    pub fn streams_on(&self, node: &str) -> Vec<SimStream> {
        let n = self.ix(node);
        let w = &self.stream_world;
        (0..w.entries.len())
            .filter(|&i| w.entries[i].node == n)
            .map(SimStream)
            .collect()
    }

    /// QUIC connections the node's stream layer still holds (lingering and draining ones
    /// included).
    pub fn stream_conns(&self, node: &str) -> usize {
        let n = self.ix(node);
        self.stream_world
            .layers
            .get(&n)
            .map_or(0, |l| l.side.streams().len())
    }

    /// QUIC connections the node's QUIC endpoints still hold (see
    /// [`receptor_core::stream::Streams::endpoint_connections`]).
    pub fn stream_endpoint_conns(&self, node: &str) -> usize {
        let n = self.ix(node);
        self.stream_world
            .layers
            .get(&n)
            .map_or(0, |l| l.side.streams().endpoint_connections())
    }

    /// Services of the node's stream layer still bound on the node (listeners, and dials'
    /// services until their connection is fully gone).
    pub fn stream_services(&self, node: &str) -> usize {
        let n = self.ix(node);
        self.stream_world
            .layers
            .get(&n)
            .map_or(0, |l| l.side.services())
    }

    /// Drops every QUIC packet larger than `mtu` bytes (`None`: no limit, the default), as
    /// a path that cannot carry them: path MTU discovery then settles below it, and bulk
    /// data takes many more, smaller packets. Quinn starts at 1200 bytes and probes up to
    /// 65445 between our nodes, which the simulated links otherwise all carry.
    pub fn set_stream_mtu(&mut self, mtu: Option<usize>) {
        self.stream_world.mtu = mtu;
    }

    /// Counters of all stream layers.
    pub fn stream_stats(&self) -> StreamStats {
        self.stream_world.stats
    }

    /// A hash of the size, time and node of every QUIC packet sent and received: equal for
    /// two runs with the same seed and calls (unlike [`Sim::trace_hash`] once streams run).
    pub fn stream_shape_hash(&self) -> u64 {
        self.stream_world.shape.finish()
    }

    /// Runs until every stream in `streams`, and its peer once known, has ended (at most
    /// `within`). The error describes each.
    pub fn run_until_streams_end(
        &mut self,
        streams: &[SimStream],
        within: Duration,
    ) -> Result<(), Stuck> {
        let all_ended = |sim: &mut Self| {
            streams.iter().all(|&s| {
                let r = sim.stream(s);
                r.end.is_some() && r.peer.is_none_or(|p| sim.stream(p).end.is_some())
            })
        };
        self.run_until(all_ended, within).map_err(|mut e| {
            for &s in streams {
                e.detail.push_str(&format!("; {}", self.stream(s)));
                if let Some(p) = self.stream_peer(s) {
                    e.detail.push_str(&format!("; peer {}", self.stream(p)));
                }
            }
            e
        })
    }
}
