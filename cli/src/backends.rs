//! The running backends (listeners and dialers), and how `reload` changes them in place.
//!
//! Go's `reload` stops every backend and starts the new set: every peer reconnects, and a
//! listener whose old socket is not closed yet fails to bind again. Here a reload applies the
//! difference: a backend whose configuration is unchanged keeps running (a listener its socket
//! and sessions, a dialer its session); a listener changed on the same address hands its bound
//! socket to a new accept loop; only what was removed or changed is stopped. Every new socket
//! is bound before anything stops, so a reload that cannot bind changes nothing.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use receptor_core::{LinkConfig, LinkKind, NodeId};
use receptor_tokio::NodeHandle;
use receptor_tokio::backends::{
    DialSpec, ListenSpec, WsDialSpec, WsListenSpec, tcp_bind, tcp_dial, tcp_serve, udp_bind,
    udp_dial, udp_serve, ws_dial, ws_serve,
};
use receptor_tokio::tls::ALPN_HTTP11;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::config::{Config, ListenerCfg, PeerCfg, WsListenerCfg, WsPeerCfg};
use crate::run::TlsConfigs;

/// One backend as configured. Two equal values are the same backend to `reload`.
#[derive(Clone, Debug, PartialEq)]
enum Backend {
    TcpListener(ListenerCfg),
    UdpListener(ListenerCfg),
    WsListener(WsListenerCfg),
    TcpPeer(PeerCfg),
    UdpPeer(PeerCfg),
    WsPeer(WsPeerCfg),
}

/// The transport a listener's socket speaks (a WebSocket listener's is TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
}

impl Backend {
    /// Every backend of `cfg`: listeners first, as Go starts them.
    fn all(cfg: &Config) -> Vec<Self> {
        let mut v = Vec::new();
        v.extend(cfg.tcp_listeners.iter().cloned().map(Self::TcpListener));
        v.extend(cfg.udp_listeners.iter().cloned().map(Self::UdpListener));
        v.extend(cfg.ws_listeners.iter().cloned().map(Self::WsListener));
        v.extend(cfg.tcp_peers.iter().cloned().map(Self::TcpPeer));
        v.extend(cfg.udp_peers.iter().cloned().map(Self::UdpPeer));
        v.extend(cfg.ws_peers.iter().cloned().map(Self::WsPeer));
        v
    }

    /// A listener's address options and socket transport.
    fn listener(&self) -> Option<(&ListenerCfg, Proto)> {
        match self {
            Self::TcpListener(l) => Some((l, Proto::Tcp)),
            Self::UdpListener(l) => Some((l, Proto::Udp)),
            Self::WsListener(w) => Some((&w.listener, Proto::Tcp)),
            _ => None,
        }
    }

    /// The word Go's listen errors use for this kind.
    fn transport(&self) -> &'static str {
        match self {
            Self::TcpListener(_) | Self::TcpPeer(_) => "TCP",
            Self::UdpListener(_) | Self::UdpPeer(_) => "UDP",
            Self::WsListener(_) | Self::WsPeer(_) => "WebSocket",
        }
    }

    /// For logs: the entity name and its address.
    fn describe(&self) -> String {
        match self {
            Self::TcpListener(l) => format!("tcp-listener {}:{}", l.bind_addr, l.port),
            Self::UdpListener(l) => format!("udp-listener {}:{}", l.bind_addr, l.port),
            Self::WsListener(w) => {
                format!("ws-listener {}:{}", w.listener.bind_addr, w.listener.port)
            }
            Self::TcpPeer(p) => format!("tcp-peer {}", p.address),
            Self::UdpPeer(p) => format!("udp-peer {}", p.address),
            Self::WsPeer(w) => format!("ws-peer {}", w.peer.address),
        }
    }

    /// Whether `other` is a listener on exactly this one's fixed address and transport, so its
    /// bound socket can serve this one.
    fn same_socket(&self, other: &Self) -> bool {
        match (self.listener(), other.listener()) {
            (Some((a, pa)), Some((b, pb))) => {
                pa == pb && a.port != 0 && a.port == b.port && a.bind_addr == b.bind_addr
            }
            _ => false,
        }
    }

    /// Whether `other` is a listener of the same transport on the same port (any address):
    /// binding this one may fail until `other` is closed.
    fn same_port(&self, other: &Self) -> bool {
        match (self.listener(), other.listener()) {
            (Some((a, pa)), Some((b, pb))) => pa == pb && a.port != 0 && a.port == b.port,
            _ => false,
        }
    }

    /// Everything this backend needs to run, checked before anything changes.
    fn spec(&self, tls: &TlsConfigs) -> Result<Spec, String> {
        let listen = |l: &ListenerCfg, kind, (tls, bind)| -> Result<ListenSpec, String> {
            Ok(ListenSpec {
                bind: l.bind_addr.clone(),
                port: l.port,
                link: link_config(kind, l.cost, &l.node_cost, &l.allowed_peers, bind)?,
                tls,
            })
        };
        let dial = |p: &PeerCfg, kind, (tls, bind)| -> Result<DialSpec, String> {
            Ok(DialSpec {
                address: p.address.clone(),
                redial: p.redial,
                link: link_config(kind, p.cost, &BTreeMap::new(), &p.allowed_peers, bind)?,
                tls,
            })
        };
        Ok(match self {
            Self::TcpListener(l) => {
                let t = server_tls(tls, &l.tls, &[])?;
                Spec::Listen(Listen::new(
                    listen(l, LinkKind::Stream, t)?,
                    Proto::Tcp,
                    None,
                ))
            }
            Self::UdpListener(l) => {
                let spec = listen(l, LinkKind::Datagram, (None, false))?;
                Spec::Listen(Listen::new(spec, Proto::Udp, None))
            }
            Self::WsListener(w) => {
                let t = server_tls(tls, &w.listener.tls, &[ALPN_HTTP11])?;
                let spec = listen(&w.listener, LinkKind::Message, t)?;
                Spec::Listen(Listen::new(spec, Proto::Tcp, Some(w.path.clone())))
            }
            Self::TcpPeer(p) => {
                let t = client_tls(tls, &p.tls, &[])?;
                Spec::Dial(Dial::Tcp(dial(p, LinkKind::Stream, t)?))
            }
            Self::UdpPeer(p) => Spec::Dial(Dial::Udp(dial(p, LinkKind::Datagram, (None, false))?)),
            Self::WsPeer(w) => {
                let t = client_tls(tls, &w.peer.tls, &[ALPN_HTTP11])?;
                let d = dial(&w.peer, LinkKind::Message, t)?;
                Spec::Dial(Dial::Ws(WsDialSpec {
                    url: d.address,
                    redial: d.redial,
                    link: d.link,
                    tls: d.tls,
                    extra_header: w.extra_header.clone(),
                }))
            }
        })
    }
}

/// What a backend runs with.
enum Spec {
    Listen(Listen),
    Dial(Dial),
}

/// A listener's options: where and how it listens, and what it speaks.
struct Listen {
    spec: ListenSpec,
    proto: Proto,
    /// `ws-listener`: the upgrade path.
    ws_path: Option<String>,
}

impl Listen {
    fn new(spec: ListenSpec, proto: Proto, ws_path: Option<String>) -> Self {
        Self {
            spec,
            proto,
            ws_path,
        }
    }

    async fn bind(&self) -> io::Result<Socket> {
        let (bind, port) = (&self.spec.bind, self.spec.port);
        Ok(match self.proto {
            Proto::Tcp => Socket::Tcp(tcp_bind(bind, port).await?),
            Proto::Udp => Socket::Udp(udp_bind(bind, port).await?),
        })
    }

    /// Serves `socket` (bound by [`Listen::bind`], or handed over from a listener of the same
    /// transport).
    fn serve(self, node: &NodeHandle, socket: Socket) -> JoinHandle<()> {
        match (socket, self.ws_path) {
            (Socket::Tcp(l), Some(path)) => ws_serve(
                node,
                l,
                WsListenSpec {
                    listen: self.spec,
                    path,
                },
            ),
            (Socket::Tcp(l), None) => tcp_serve(node, l, self.spec),
            (Socket::Udp(s), _) => udp_serve(node, s, self.spec),
        }
    }
}

/// A dialer's options.
enum Dial {
    Tcp(DialSpec),
    Udp(DialSpec),
    Ws(WsDialSpec),
}

impl Dial {
    fn start(self, node: &NodeHandle) -> JoinHandle<()> {
        match self {
            Self::Tcp(d) => tcp_dial(node, d),
            Self::Udp(d) => udp_dial(node, d),
            Self::Ws(d) => ws_dial(node, d),
        }
    }
}

/// A listener's bound socket; shared, so it can pass from one accept loop to the next.
#[derive(Clone)]
enum Socket {
    Tcp(Arc<TcpListener>),
    Udp(Arc<UdpSocket>),
}

impl Socket {
    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Udp(s) => s.local_addr().ok(),
        }
    }
}

/// A backend about to start: a dialer, or a listener with its socket (`None`: its port is held
/// by a listener being stopped on another address, so it is bound once that one has stopped).
enum Pending {
    Listen(Listen, Option<Socket>),
    Dial(Dial),
}

/// One running backend.
struct Running {
    what: Backend,
    task: JoinHandle<()>,
    /// A listener's socket (kept here so it can be handed over).
    socket: Option<Socket>,
}

/// What [`Backends::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Backends left running untouched.
    pub kept: usize,
    /// Backends stopped (removed or changed).
    pub stopped: usize,
    /// Backends started (new or changed).
    pub started: usize,
}

/// The running backends of a node.
#[derive(Default)]
pub struct Backends {
    running: Vec<Running>,
}

impl Backends {
    /// Makes the running backends those of `cfg`: unchanged ones keep running, changed or
    /// removed ones stop, new ones start. An error before anything changed (an unknown TLS
    /// config, a socket that cannot be bound) leaves everything as it was; the only error after
    /// changes is a port that was still held by a stopped listener on another address.
    pub async fn apply(
        &mut self,
        node: &NodeHandle,
        cfg: &Config,
        tls: &TlsConfigs,
    ) -> Result<Changes, String> {
        // Which running backends stay (a dialer that gave up counts as stopped, as after a
        // restart Go would dial it again), and what must start, with its spec checked.
        let mut keep = vec![false; self.running.len()];
        let mut todo = Vec::new();
        for b in Backend::all(cfg) {
            let same = self
                .running
                .iter()
                .enumerate()
                .position(|(i, r)| !keep[i] && r.what == b && !r.task.is_finished());
            match same {
                Some(i) => keep[i] = true,
                None => {
                    let spec = b.spec(tls)?;
                    todo.push((b, spec));
                }
            }
        }
        // Sockets for new listeners: handed over, or freshly bound before anything stops.
        let mut taken = keep.clone();
        let mut pending = Vec::with_capacity(todo.len());
        for (b, spec) in todo {
            let listen = match spec {
                Spec::Dial(d) => {
                    pending.push((b, Pending::Dial(d)));
                    continue;
                }
                Spec::Listen(l) => l,
            };
            let old = (0..self.running.len())
                .find(|&i| !taken[i] && b.same_socket(&self.running[i].what));
            if let Some(socket) = old.and_then(|i| {
                taken[i] = true;
                self.running[i].socket.clone()
            }) {
                pending.push((b, Pending::Listen(listen, Some(socket))));
                continue;
            }
            let socket = match listen.bind().await {
                Ok(s) => Some(s),
                Err(e)
                    if e.kind() == io::ErrorKind::AddrInUse
                        && (0..self.running.len())
                            .any(|i| !taken[i] && b.same_port(&self.running[i].what)) =>
                {
                    None
                }
                Err(e) => return Err(listen_error(&b, &e)),
            };
            pending.push((b, Pending::Listen(listen, socket)));
        }
        // From here on the change happens.
        let mut changes = Changes::default();
        let mut stopping = Vec::new();
        for (r, kept) in std::mem::take(&mut self.running).into_iter().zip(keep) {
            if kept {
                self.running.push(r);
            } else {
                r.task.abort();
                stopping.push(r);
            }
        }
        changes.kept = self.running.len();
        for r in stopping {
            // Wait until the task is gone: its sockets and sessions are closed then.
            let _ = r.task.await;
            debug!("stopped {}", r.what.describe());
            changes.stopped += 1;
        }
        let mut failed = None;
        for (b, p) in pending {
            let (task, socket) = match p {
                Pending::Dial(d) => {
                    debug!("started {}", b.describe());
                    (d.start(node), None)
                }
                Pending::Listen(l, socket) => {
                    let socket = match socket {
                        Some(s) => s,
                        None => match l.bind().await {
                            Ok(s) => s,
                            Err(e) => {
                                failed.get_or_insert(listen_error(&b, &e));
                                continue;
                            }
                        },
                    };
                    let addr = socket
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    match &l.ws_path {
                        Some(path) => info!("Listening on WebSocket {addr} path {path}"),
                        None => info!("Listening on {} {addr}", b.transport()),
                    }
                    (l.serve(node, socket.clone()), Some(socket))
                }
            };
            self.running.push(Running {
                what: b,
                task,
                socket,
            });
            changes.started += 1;
        }
        failed.map_or(Ok(changes), Err)
    }
}

/// Go's startup error for a listener that cannot bind.
fn listen_error(b: &Backend, e: &io::Error) -> String {
    format!("error listening on {}: {e}", b.transport())
}

fn link_config(
    kind: LinkKind,
    cost: f64,
    node_cost: &BTreeMap<String, f64>,
    allowed: &Option<Vec<String>>,
    bind_node_id: bool,
) -> Result<Arc<LinkConfig>, String> {
    let mut l = LinkConfig::new(kind);
    l.bind_node_id = bind_node_id;
    l.cost(cost).map_err(|e| e.to_string())?;
    for (n, c) in node_cost {
        let n = NodeId::new(n).map_err(|e| format!("nodecost: {e}"))?;
        l.node_cost(n, *c).map_err(|e| e.to_string())?;
    }
    if let Some(peers) = allowed {
        let set = peers
            .iter()
            .map(|p| NodeId::new(p).map_err(|e| format!("allowedpeers: {e}")))
            .collect::<Result<_, _>>()?;
        l.allowed_peers = Some(set);
    }
    Ok(Arc::new(l))
}

/// A backend's TLS: the rustls config, and whether it binds node IDs (`bindnodeid`).
type BackendTls<C> = (Option<Arc<C>>, bool);

fn server_tls(
    tls: &TlsConfigs,
    name: &Option<String>,
    alpn: &[&[u8]],
) -> Result<BackendTls<receptor_tokio::rustls::ServerConfig>, String> {
    let Some(name) = name else {
        return Ok((None, false));
    };
    let s = tls
        .servers
        .get(name)
        .ok_or_else(|| format!("unknown TLS config {name}"))?;
    let config = s.backend_config(alpn).map_err(|e| e.to_string())?;
    Ok((Some(config), s.bind_node_id()))
}

fn client_tls(
    tls: &TlsConfigs,
    name: &Option<String>,
    alpn: &[&[u8]],
) -> Result<BackendTls<receptor_tokio::rustls::ClientConfig>, String> {
    let Some(name) = name else {
        return Ok((None, false));
    };
    let c = tls
        .clients
        .get(name)
        .ok_or_else(|| format!("unknown TLS config {name}"))?;
    let config = c.backend_config(alpn).map_err(|e| e.to_string())?;
    Ok((Some(config), c.bind_node_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Parser;

    fn cfg(backends: &str) -> Config {
        let text = format!("---\n- node:\n    id: A\n{backends}");
        Parser::new().parse_yaml(&text).expect("test config")
    }

    fn listener(port: u16, extra: &str) -> String {
        format!("- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n{extra}")
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    fn tcp_socket(b: &Backends, i: usize) -> Arc<TcpListener> {
        match b.running.get(i).and_then(|r| r.socket.clone()) {
            Some(Socket::Tcp(l)) => l,
            _ => panic!("no TCP socket at {i}"),
        }
    }

    fn no_tls() -> TlsConfigs {
        TlsConfigs {
            servers: BTreeMap::new(),
            clients: BTreeMap::new(),
        }
    }

    async fn node() -> NodeHandle {
        let c = cfg("- local-only\n");
        let (node, _) = crate::run::start_node(&c).expect("node");
        node
    }

    #[tokio::test]
    async fn unchanged_backends_keep_running_and_changed_listeners_keep_their_socket() {
        let (node, tls) = (node().await, no_tls());
        let (p1, p2) = (free_port(), free_port());
        let peer = "- tcp-peer:\n    address: 127.0.0.1:9\n    redial: true\n";
        let first = cfg(&(listener(p1, "") + peer));
        let mut b = Backends::default();
        let c = b.apply(&node, &first, &tls).await.expect("start");
        assert_eq!((c.kept, c.stopped, c.started), (0, 0, 2));
        let socket = tcp_socket(&b, 0);

        let c = b.apply(&node, &first, &tls).await.expect("same");
        assert_eq!((c.kept, c.stopped, c.started), (2, 0, 0));
        assert!(Arc::ptr_eq(&socket, &tcp_socket(&b, 0)));

        // New options on the same address: the bound socket passes to the new loop.
        let changed = cfg(&(listener(p1, "    cost: 2.0\n") + peer + &listener(p2, "")));
        let c = b.apply(&node, &changed, &tls).await.expect("changed");
        assert_eq!((c.kept, c.stopped, c.started), (1, 1, 2));
        let handed = b
            .running
            .iter()
            .filter_map(|r| match &r.socket {
                Some(Socket::Tcp(l)) => Some(l.clone()),
                _ => None,
            })
            .find(|l| Arc::ptr_eq(l, &socket));
        assert!(handed.is_some(), "the socket on {p1} was not handed over");
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", p2))
                .await
                .is_ok()
        );

        // Removing everything stops everything; the ports are free again.
        let c = b
            .apply(&node, &cfg("- local-only\n"), &tls)
            .await
            .expect("empty");
        assert_eq!((c.kept, c.stopped, c.started), (0, 3, 0));
        drop((socket, handed));
        assert!(std::net::TcpListener::bind(("127.0.0.1", p1)).is_ok());
        assert!(std::net::TcpListener::bind(("127.0.0.1", p2)).is_ok());
    }

    #[tokio::test]
    async fn a_reload_that_cannot_start_changes_nothing() {
        let (node, tls) = (node().await, no_tls());
        let p1 = free_port();
        let mut b = Backends::default();
        b.apply(&node, &cfg(&listener(p1, "")), &tls)
            .await
            .expect("start");
        let socket = tcp_socket(&b, 0);
        // A port someone else holds: refused before anything stops.
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = held.local_addr().expect("addr").port();
        let next = cfg(&listener(taken, ""));
        let e = b.apply(&node, &next, &tls).await.expect_err("port held");
        assert!(e.starts_with("error listening on TCP: "), "{e}");
        assert_eq!(b.running.len(), 1);
        assert!(!b.running[0].task.is_finished());
        assert!(Arc::ptr_eq(&socket, &tcp_socket(&b, 0)));
    }
}
