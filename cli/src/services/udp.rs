//! `udp-server` (local UDP → mesh datagrams) and `udp-client` (mesh datagram service → UDP).
//!
//! As in Go, each UDP client address (server side) or each mesh sender (client side) gets a
//! session of its own: an ephemeral mesh service, or a UDP socket connected to `address`, so
//! replies find their way back. Go keeps sessions forever; ours end after
//! [`SESSION_IDLE`] without traffic either way (like a NAT mapping), so the table stays
//! bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use receptor_core::ServiceName;
use receptor_tokio::{NodeHandle, ServiceEvent};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::{CONN_DATAGRAM, advert, service_name};
use crate::config::{UdpClientCfg, UdpServerCfg};

/// A session with no datagram either way for this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(300);
/// How often idle sessions are looked for.
const SWEEP: Duration = Duration::from_secs(15);
/// Largest datagram read (Go's `NormalBufferSize`).
const DATAGRAM: usize = 65536;

/// Last activity of a session, in milliseconds since the service started.
#[derive(Clone)]
struct Clock {
    start: Instant,
    last: Arc<AtomicU64>,
}

impl Clock {
    fn new(start: Instant) -> Self {
        let c = Self {
            start,
            last: Arc::new(AtomicU64::new(0)),
        };
        c.touch();
        c
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// One session: its reply task and what it holds.
struct Session<T> {
    clock: Clock,
    task: JoinHandle<()>,
    /// The ephemeral service (server side) or connected socket (client side).
    held: T,
}

impl<T> Drop for Session<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a `udp-server`: datagrams arriving on `bindaddr:port` are sent to
/// `remotenode:remoteservice`, each client address from its own ephemeral mesh service, and
/// datagrams coming back to that service are returned to the client.
pub(super) async fn server(
    node: &NodeHandle,
    cfg: &UdpServerCfg,
) -> Result<JoinHandle<()>, String> {
    let to_service = service_name(&cfg.remote_service)?;
    let host = match cfg.bind_addr.as_str() {
        "" => "0.0.0.0",
        h => h,
    };
    let bind = tokio::net::lookup_host((host, cfg.port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("could not resolve address {host}:{}", cfg.port))?;
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("error listening on UDP: {e}"))?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    // Replies come from the node the service runs on; "localhost" means this node.
    let expect_node = if cfg.remote_node.eq_ignore_ascii_case("localhost") {
        node.id().to_string()
    } else {
        cfg.remote_node.clone()
    };
    info!(
        "Running UDP proxy server on {local} to {}:{}",
        cfg.remote_node, cfg.remote_service
    );
    let ctx = ServerCtx {
        node: node.clone(),
        sock: Arc::new(sock),
        to_node: cfg.remote_node.clone(),
        expect_node,
        to_service,
        start: Instant::now(),
    };
    Ok(tokio::spawn(ctx.run()))
}

struct ServerCtx {
    node: NodeHandle,
    sock: Arc<UdpSocket>,
    to_node: String,
    expect_node: String,
    to_service: ServiceName,
    start: Instant,
}

impl ServerCtx {
    async fn run(self) {
        let mut sessions: HashMap<SocketAddr, Session<ServiceName>> = HashMap::new();
        let mut buf = vec![0u8; DATAGRAM];
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    let (n, from) = match r {
                        Ok(r) => r,
                        Err(e) => {
                            error!("Error reading from UDP: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let service = match sessions.get(&from) {
                        Some(s) => {
                            s.clock.touch();
                            s.held
                        }
                        None => match self.open(from).await {
                            Some(s) => {
                                let name = s.held;
                                sessions.insert(from, s);
                                name
                            }
                            None => continue,
                        },
                    };
                    let payload = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                    let sent = self
                        .node
                        .send_to(service, &self.to_node, self.to_service, payload)
                        .await;
                    if let Err(e) = sent {
                        error!("Error sending packet on Receptor network: {e}");
                    }
                }
                _ = sweep.tick() => {
                    let idle: Vec<SocketAddr> = sessions
                        .iter()
                        .filter(|(_, s)| s.clock.idle() >= SESSION_IDLE)
                        .map(|(a, _)| *a)
                        .collect();
                    for a in idle {
                        if let Some(s) = sessions.remove(&a) {
                            debug!("udp-server: session for {a} idle, closing service {}", s.held);
                            self.node.unlisten(s.held).await;
                        }
                    }
                }
            }
        }
    }

    /// A new session for UDP client `from`: an ephemeral service and its reply task.
    async fn open(&self, from: SocketAddr) -> Option<Session<ServiceName>> {
        let (service, rx) = match self.node.listen(None, None).await {
            Ok(r) => r,
            Err(e) => {
                error!("Error listening on Receptor network: {e}");
                return None;
            }
        };
        debug!("Received new UDP connection from {from} (mesh service {service})");
        let clock = Clock::new(self.start);
        let task = tokio::spawn(server_replies(
            rx,
            self.sock.clone(),
            from,
            self.expect_node.clone(),
            self.to_service,
            clock.clone(),
        ));
        Some(Session {
            clock,
            task,
            held: service,
        })
    }
}

/// Returns datagrams from the remote service to the UDP client.
async fn server_replies(
    mut rx: mpsc::Receiver<ServiceEvent>,
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    expect_node: String,
    expect_service: ServiceName,
    clock: Clock,
) {
    while let Some(ev) = rx.recv().await {
        match ev {
            ServiceEvent::Datagram {
                from_node,
                from_service,
                payload,
            } => {
                if from_node.as_str() != expect_node || from_service != expect_service {
                    debug!("Received packet from unexpected source {from_node}:{from_service}");
                    continue;
                }
                clock.touch();
                if let Err(e) = sock.send_to(&payload, client).await {
                    error!("Error sending packet via UDP: {e}");
                }
            }
            ServiceEvent::Unreachable { reporter, notice } => {
                debug!(
                    "udp-server: {}:{} unreachable ({}), reported by {reporter}",
                    notice.to_node, notice.to_service, notice.problem
                );
            }
        }
    }
}

/// Starts a `udp-client`: the mesh service `service` (ad `{"type":"UDP Proxy","address":A}`,
/// ConnType 0) forwards each sender's datagrams to `address` from a UDP socket of its own, and
/// what comes back on that socket goes back to the sender.
pub(super) async fn client(
    node: &NodeHandle,
    cfg: &UdpClientCfg,
) -> Result<JoinHandle<()>, String> {
    let target = tokio::net::lookup_host(cfg.address.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("could not resolve UDP address {}", cfg.address))?;
    let ad = advert(
        CONN_DATAGRAM,
        &[("type", "UDP Proxy"), ("address", cfg.address.as_str())],
    );
    let (service, rx) = node
        .listen(Some(&cfg.service), Some(ad))
        .await
        .map_err(|e| format!("error listening on service {}: {e}", cfg.service))?;
    info!(
        "Running UDP proxy client on service {} to {}",
        cfg.service, cfg.address
    );
    let ctx = ClientCtx {
        node: node.clone(),
        service,
        target,
        start: Instant::now(),
    };
    Ok(tokio::spawn(ctx.run(rx)))
}

struct ClientCtx {
    node: NodeHandle,
    service: ServiceName,
    target: SocketAddr,
    start: Instant,
}

type SenderKey = (String, ServiceName);

impl ClientCtx {
    async fn run(self, mut rx: mpsc::Receiver<ServiceEvent>) {
        let mut sessions: BTreeMap<SenderKey, Session<Arc<UdpSocket>>> = BTreeMap::new();
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    None => break,
                    Some(ServiceEvent::Datagram { from_node, from_service, payload }) => {
                        let key = (from_node.to_string(), from_service);
                        let sock = match sessions.get(&key) {
                            Some(s) => {
                                s.clock.touch();
                                s.held.clone()
                            }
                            None => match self.open(&key).await {
                                Some(s) => {
                                    let sock = s.held.clone();
                                    sessions.insert(key, s);
                                    sock
                                }
                                None => continue,
                            },
                        };
                        if let Err(e) = sock.send(&payload).await {
                            error!("Error writing to UDP: {e}");
                        }
                    }
                    Some(ServiceEvent::Unreachable { reporter, notice }) => {
                        debug!(
                            "udp-client: {}:{} unreachable ({}), reported by {reporter}",
                            notice.to_node, notice.to_service, notice.problem
                        );
                    }
                },
                _ = sweep.tick() => {
                    sessions.retain(|(n, s), sess| {
                        let keep = sess.clock.idle() < SESSION_IDLE;
                        if !keep {
                            debug!("udp-client: session for {n}:{s} idle, closing");
                        }
                        keep
                    });
                }
            }
        }
    }

    /// A new session for mesh sender `key`: a UDP socket connected to the target.
    async fn open(&self, key: &SenderKey) -> Option<Session<Arc<UdpSocket>>> {
        let any: SocketAddr = if self.target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = match UdpSocket::bind(any).await {
            Ok(s) => s,
            Err(e) => {
                error!("Error connecting via UDP: {e}");
                return None;
            }
        };
        if let Err(e) = sock.connect(self.target).await {
            error!("Error connecting via UDP: {e}");
            return None;
        }
        debug!("Opened new UDP connection to {}:{}", key.0, key.1);
        let sock = Arc::new(sock);
        let clock = Clock::new(self.start);
        let task = tokio::spawn(client_replies(
            sock.clone(),
            self.node.clone(),
            self.service,
            key.clone(),
            clock.clone(),
        ));
        Some(Session {
            clock,
            task,
            held: sock,
        })
    }
}

/// Sends what the UDP target answers back to the mesh sender.
async fn client_replies(
    sock: Arc<UdpSocket>,
    node: NodeHandle,
    service: ServiceName,
    (to_node, to_service): SenderKey,
    clock: Clock,
) {
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            // An ICMP port-unreachable from the target: it may come up later.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                error!("Error reading from UDP: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        clock.touch();
        let payload = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
        if let Err(e) = node.send_to(service, &to_node, to_service, payload).await {
            error!("Error writing to the Receptor network: {e}");
        }
    }
}
