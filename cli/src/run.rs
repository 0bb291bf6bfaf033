//! Starting a node from a parsed configuration: the mesh node, its TLS configs, backends and
//! control services, then waiting for a signal or a fatal condition.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use receptor_core::{LinkConfig, LinkKind, NodeId};
use receptor_tokio::backends::{
    DialSpec, ListenSpec, WsDialSpec, WsListenSpec, tcp_dial, tcp_listen, udp_dial, udp_listen,
    ws_dial, ws_listen,
};
use receptor_tokio::tls::{ALPN_HTTP11, TlsClient, TlsClientParams, TlsServer, TlsServerParams};
use receptor_tokio::{NodeHandle, spawn_node};
use tracing::info;

use crate::config::{Config, ListenerCfg, PeerCfg};

/// TLS configs by name, loaded once at startup.
pub struct TlsConfigs {
    /// `tls-server` entries.
    pub servers: BTreeMap<String, TlsServer>,
    /// `tls-client` entries.
    pub clients: BTreeMap<String, TlsClient>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_tls(cfg: &Config) -> Result<TlsConfigs, String> {
    let id = &cfg.node.id;
    let mut servers = BTreeMap::new();
    for s in &cfg.tls_servers {
        let params = TlsServerParams {
            name: s.name.clone(),
            cert: s.cert.clone().into(),
            key: s.key.clone().into(),
            require_client_cert: s.require_client_cert,
            client_cas: s.client_cas.clone().map(Into::into),
            pinned_client_cert: s.pinned_client_cert.iter().map(|f| hex(f)).collect(),
            skip_receptor_names_check: s.skip_receptor_names_check,
            min_tls13: s.min_tls13,
        };
        let loaded = TlsServer::load(&params, id).map_err(|e| e.to_string())?;
        servers.insert(s.name.clone(), loaded);
    }
    let mut clients = BTreeMap::new();
    for c in &cfg.tls_clients {
        let params = TlsClientParams {
            name: c.name.clone(),
            cert: c.cert.clone().map(Into::into),
            key: c.key.clone().map(Into::into),
            root_cas: c.root_cas.clone().map(Into::into),
            insecure_skip_verify: c.insecure_skip_verify,
            pinned_server_cert: c.pinned_server_cert.iter().map(|f| hex(f)).collect(),
            skip_receptor_names_check: c.skip_receptor_names_check,
            min_tls13: c.min_tls13,
        };
        let loaded = TlsClient::load(&params, id).map_err(|e| e.to_string())?;
        clients.insert(c.name.clone(), loaded);
    }
    Ok(TlsConfigs { servers, clients })
}

fn core_config(cfg: &Config) -> Result<receptor_core::Config, String> {
    let id = NodeId::new(&cfg.node.id).map_err(|e| e.to_string())?;
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut c = receptor_core::Config::new(id, seed, wall);
    if let Some(d) = cfg.node.max_idle_connection_timeout {
        c.max_idle(d.max(Duration::from_secs(21)))
            .map_err(|e| e.to_string())?;
    }
    for rule in &cfg.node.firewall_rules {
        c.firewall.push(rule.to_core().map_err(|e| e.to_string())?);
    }
    Ok(c)
}

fn link_config(
    kind: LinkKind,
    cost: f64,
    node_cost: &BTreeMap<String, f64>,
    allowed: &Option<Vec<String>>,
) -> Result<Arc<LinkConfig>, String> {
    let mut l = LinkConfig::new(kind);
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

fn server_tls(
    tls: &TlsConfigs,
    name: &Option<String>,
    alpn: &[&[u8]],
) -> Result<Option<Arc<receptor_tokio::rustls::ServerConfig>>, String> {
    let Some(name) = name else { return Ok(None) };
    let s = tls
        .servers
        .get(name)
        .ok_or_else(|| format!("unknown TLS config {name}"))?;
    s.backend_config(alpn).map(Some).map_err(|e| e.to_string())
}

fn client_tls(
    tls: &TlsConfigs,
    name: &Option<String>,
    alpn: &[&[u8]],
) -> Result<Option<Arc<receptor_tokio::rustls::ClientConfig>>, String> {
    let Some(name) = name else { return Ok(None) };
    let c = tls
        .clients
        .get(name)
        .ok_or_else(|| format!("unknown TLS config {name}"))?;
    c.backend_config(alpn).map(Some).map_err(|e| e.to_string())
}

fn listen_spec(
    l: &ListenerCfg,
    kind: LinkKind,
    tls: Option<Arc<receptor_tokio::rustls::ServerConfig>>,
) -> Result<ListenSpec, String> {
    Ok(ListenSpec {
        bind: l.bind_addr.clone(),
        port: l.port,
        link: link_config(kind, l.cost, &l.node_cost, &l.allowed_peers)?,
        tls,
    })
}

fn dial_spec(
    p: &PeerCfg,
    kind: LinkKind,
    tls: Option<Arc<receptor_tokio::rustls::ClientConfig>>,
) -> Result<DialSpec, String> {
    Ok(DialSpec {
        address: p.address.clone(),
        redial: p.redial,
        link: link_config(kind, p.cost, &BTreeMap::new(), &p.allowed_peers)?,
        tls,
    })
}

/// The running backends (listeners and dialers); `reload` stops and restarts them.
#[derive(Default)]
pub struct Backends {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Backends {
    /// Stops every listener and dialer. Sessions they started are closed by the node
    /// (`NodeHandle::disconnect_all`).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// Starts the node (no backends yet). Returns the node handle and the TLS configs.
pub fn start_node(cfg: &Config) -> Result<(NodeHandle, Arc<TlsConfigs>), String> {
    let tls = Arc::new(load_tls(cfg)?);
    let node = spawn_node(Arc::new(core_config(cfg)?)).map_err(|e| e.to_string())?;
    Ok((node, tls))
}

/// Starts the backends of `cfg` on `node`. A listener that cannot bind is an error.
pub async fn start_backends(
    node: &NodeHandle,
    cfg: &Config,
    tls: &TlsConfigs,
) -> Result<Backends, String> {
    let mut b = Backends::default();
    let fail = |what: &str, e: std::io::Error| format!("error listening on {what}: {e}");
    for l in &cfg.tcp_listeners {
        let spec = listen_spec(l, LinkKind::Stream, server_tls(tls, &l.tls, &[])?)?;
        let (addr, t) = tcp_listen(node, spec).await.map_err(|e| fail("TCP", e))?;
        b.tasks.push(t);
        info!("Listening on TCP {addr}");
    }
    for l in &cfg.udp_listeners {
        let (addr, t) = udp_listen(node, listen_spec(l, LinkKind::Datagram, None)?)
            .await
            .map_err(|e| fail("UDP", e))?;
        b.tasks.push(t);
        info!("Listening on UDP {addr}");
    }
    for w in &cfg.ws_listeners {
        let tls_cfg = server_tls(tls, &w.listener.tls, &[ALPN_HTTP11])?;
        let spec = WsListenSpec {
            listen: listen_spec(&w.listener, LinkKind::Message, tls_cfg)?,
            path: w.path.clone(),
        };
        let (addr, t) = ws_listen(node, spec)
            .await
            .map_err(|e| fail("WebSocket", e))?;
        b.tasks.push(t);
        info!("Listening on WebSocket {addr} path {}", w.path);
    }
    for p in &cfg.tcp_peers {
        let spec = dial_spec(p, LinkKind::Stream, client_tls(tls, &p.tls, &[])?)?;
        b.tasks.push(tcp_dial(node, spec));
    }
    for p in &cfg.udp_peers {
        b.tasks
            .push(udp_dial(node, dial_spec(p, LinkKind::Datagram, None)?));
    }
    for w in &cfg.ws_peers {
        let p = &w.peer;
        let tls_cfg = client_tls(tls, &p.tls, &[ALPN_HTTP11])?;
        b.tasks.push(ws_dial(
            node,
            WsDialSpec {
                url: p.address.clone(),
                redial: p.redial,
                link: link_config(
                    LinkKind::Message,
                    p.cost,
                    &BTreeMap::new(),
                    &p.allowed_peers,
                )?,
                tls: tls_cfg,
                extra_header: w.extra_header.clone(),
            },
        ));
    }
    Ok(b)
}
