//! `tcp-server` (local TCP listener → mesh stream) and `tcp-client` (mesh service → outbound
//! TCP), with Go's TLS options on both sides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use receptor_tokio::rustls::pki_types::ServerName;
use receptor_tokio::tls::server_name_for_host;
use receptor_tokio::{MeshStream, NodeHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, error, info};

use super::{Abort, CONN_TLS, MeshDialer, advert, bridge, server_for, split_host_port};
use crate::config::{TcpClientCfg, TcpServerCfg};
use crate::run::TlsConfigs;

/// How long a TLS client of `tcp-server` may take over its handshake (Go sets no limit; this
/// only frees connections that never finish).
const TLS_HANDSHAKE: Duration = Duration::from_secs(30);

/// Starts a `tcp-server`: each accepted connection (TLS-wrapped with `tlsserver`) is dialled
/// as a stream to `remotenode:remoteservice` (mesh TLS from `tlsclient`) and bridged.
pub(super) async fn server(
    node: &NodeHandle,
    cfg: &TcpServerCfg,
    tls: &TlsConfigs,
) -> Result<JoinHandle<()>, String> {
    let dialer = Arc::new(MeshDialer::new(
        node,
        tls,
        cfg.tls_client.as_deref(),
        &cfg.remote_node,
        &cfg.remote_service,
    )?);
    let acceptor = match cfg.tls_server.as_deref().filter(|n| !n.is_empty()) {
        None => None,
        Some(n) => {
            let s = tls
                .servers
                .get(n)
                .ok_or_else(|| format!("unknown TLS config {n}"))?;
            Some(TlsAcceptor::from(
                s.backend_config(&[]).map_err(|e| e.to_string())?,
            ))
        }
    };
    // Go joins host and port; an empty host means every address.
    let host = match cfg.bind_addr.as_str() {
        "" => "0.0.0.0",
        h => h,
    };
    let listener = TcpListener::bind((host, cfg.port))
        .await
        .map_err(|e| format!("error listening on TCP: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    info!(
        "Running TCP proxy server on {local}{} to {}:{}",
        if acceptor.is_some() { " (TLS)" } else { "" },
        cfg.remote_node,
        cfg.remote_service
    );
    Ok(tokio::spawn(async move {
        loop {
            let (sock, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Go stops the service here; a transient error (EMFILE) should not.
                    error!("Error accepting TCP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            debug!("tcp-server {local}: connection from {peer}");
            tokio::spawn(inbound(sock, peer, acceptor.clone(), dialer.clone()));
        }
    }))
}

async fn inbound(
    sock: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    dialer: Arc<MeshDialer>,
) {
    let _ = sock.set_nodelay(true);
    match acceptor {
        None => to_mesh(sock, peer, &dialer).await,
        Some(acc) => match tokio::time::timeout(TLS_HANDSHAKE, acc.accept(sock)).await {
            Ok(Ok(s)) => to_mesh(s, peer, &dialer).await,
            Ok(Err(e)) => debug!("tcp-server: TLS handshake with {peer}: {e}"),
            Err(_) => debug!("tcp-server: TLS handshake with {peer} timed out"),
        },
    }
}

async fn to_mesh<L>(local: L, peer: SocketAddr, dialer: &MeshDialer)
where
    L: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Abort,
{
    match dialer.dial().await {
        Ok(mesh) => {
            let what = format!(
                "tcp {peer} -> {}:{}",
                dialer.remote_node, dialer.remote_service
            );
            debug!("{what}: connected");
            let _ = bridge(local, mesh, &what).await;
        }
        Err(e) => {
            error!("Error connecting on Receptor network: {e}");
            local.abort();
        }
    }
}

/// TLS for the outbound TCP connection of a `tcp-client`.
#[derive(Clone)]
struct Outbound {
    address: Arc<str>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// Starts a `tcp-client`: a mesh service (ad `{"type":"TCP Proxy","address":A}`, ConnType 1,
/// or 2 with `tlsserver`) whose streams are bridged to new TCP connections to `address`
/// (TLS with `tlsclient`, checking the address's host name as Go does).
pub(super) async fn client(
    node: &NodeHandle,
    cfg: &TcpClientCfg,
    tls: &Arc<TlsConfigs>,
) -> Result<JoinHandle<()>, String> {
    let (server_tls, conn_type) = server_for(tls, cfg.tls_server.as_deref())?;
    let (host, _) = split_host_port(&cfg.address)?;
    let client_tls = match cfg.tls_client.as_deref().filter(|n| !n.is_empty()) {
        None => None,
        Some(n) => {
            let c = tls
                .clients
                .get(n)
                .ok_or_else(|| format!("unknown TLS config {n}"))?;
            let config = c.backend_config(&[]).map_err(|e| e.to_string())?;
            let name =
                server_name_for_host(host).map_err(|e| format!("address {}: {e}", cfg.address))?;
            Some((TlsConnector::from(config), name))
        }
    };
    let ad = advert(
        conn_type,
        &[("type", "TCP Proxy"), ("address", cfg.address.as_str())],
    );
    let mut listener = node
        .listen_stream(&cfg.service, server_tls, Some(ad))
        .await
        .map_err(|e| format!("error listening on Receptor network: {e}"))?;
    info!(
        "Running TCP proxy client on service {}{} to {}",
        cfg.service,
        if conn_type == CONN_TLS { " (TLS)" } else { "" },
        cfg.address
    );
    let out = Outbound {
        address: Arc::from(cfg.address.as_str()),
        tls: client_tls,
    };
    Ok(tokio::spawn(async move {
        while let Some(mesh) = listener.accept().await {
            tokio::spawn(outbound(mesh, out.clone()));
        }
    }))
}

async fn outbound(mesh: MeshStream, out: Outbound) {
    let from = mesh
        .remote()
        .map_or_else(|| "?".to_owned(), ToString::to_string);
    let what = format!("{from} -> tcp {}", out.address);
    debug!("{what}: stream accepted");
    let sock = match TcpStream::connect(&*out.address).await {
        Ok(s) => s,
        Err(e) => {
            error!("Error connecting via TCP: {e}");
            return;
        }
    };
    let _ = sock.set_nodelay(true);
    match out.tls {
        None => {
            let _ = bridge(sock, mesh, &what).await;
        }
        Some((connector, name)) => match connector.connect(name, sock).await {
            Ok(s) => {
                let _ = bridge(s, mesh, &what).await;
            }
            Err(e) => error!("Error connecting via TCP: {e}"),
        },
    }
}
