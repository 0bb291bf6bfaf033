//! Go receptor's proxy services over mesh streams and datagrams (control-and-work.md §3.4):
//! `tcp-server` / `tcp-client`, `udp-server` / `udp-client`, `unix-socket-server` /
//! `unix-socket-client`; `command-service`, a command on a pty per stream; and `ip-router`,
//! IP over mesh datagrams through a tun interface (Linux).
//!
//! Streams are bridged with half-close: when one side's reader ends, the other side's write
//! direction is shut down and the remaining direction is copied until it ends too (Go closes
//! both at once). A bridge that fails resets a TCP peer instead, so a broken transfer never
//! looks like a complete one.

mod bridge;
mod command;
#[cfg(target_os = "linux")]
mod iprouter;
mod pty;
mod tcp;
mod udp;
mod unix;

use std::io;
use std::sync::Arc;

use receptor_core::stream::quinn_proto::ClientConfig;
use receptor_core::{Advertise, ServiceName};
use receptor_tokio::{DialFailure, MeshStream, NodeHandle};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::run::TlsConfigs;
use crate::streamtls::{CONN_TLS, client_for, server_for};

/// ConnType of a datagram service.
const CONN_DATAGRAM: u8 = 0;

/// Starts every proxy service of `cfg` on `node`. A listener that cannot bind, an unknown TLS
/// config name or a bad address is a startup error, as in Go. The returned tasks run the
/// accept loops; aborting one stops its service (bridges already running go on).
pub async fn start_services(
    node: &NodeHandle,
    cfg: &Config,
    tls: &Arc<TlsConfigs>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut tasks = Vec::new();
    for s in &cfg.tcp_servers {
        tasks.push(tcp::server(node, s, tls).await?);
    }
    for c in &cfg.tcp_clients {
        tasks.push(tcp::client(node, c, tls).await?);
    }
    for s in &cfg.udp_servers {
        tasks.push(udp::server(node, s).await?);
    }
    for c in &cfg.udp_clients {
        tasks.push(udp::client(node, c).await?);
    }
    for s in &cfg.unix_socket_servers {
        tasks.push(unix::server(node, s, tls).await?);
    }
    for c in &cfg.unix_socket_clients {
        tasks.push(unix::client(node, c, tls).await?);
    }
    for c in &cfg.command_services {
        tasks.push(command::service(node, c, tls).await?);
    }
    for r in &cfg.ip_routers {
        #[cfg(target_os = "linux")]
        tasks.push(iprouter::service(node, r).await?);
        #[cfg(not(target_os = "linux"))]
        return Err(format!(
            "ip-router {}: tun devices need Linux",
            r.network_name
        ));
    }
    Ok(tasks)
}

/// How to dial one mesh service: the QUIC client config and the server name to give it.
#[derive(Clone)]
struct MeshDialer {
    node: NodeHandle,
    remote_node: String,
    remote_service: String,
    tls: ClientConfig,
    server_name: String,
}

impl MeshDialer {
    /// Go's `GetClientTLSConfig(name, remotenode, receptor)`: no name dials the insecure mode
    /// (ConnType 1 services); a `tls-client` requires the remote node ID in the server
    /// certificate (`localhost` means this node, as for `connect`).
    fn new(
        node: &NodeHandle,
        tls: &TlsConfigs,
        tls_name: Option<&str>,
        remote_node: &str,
        remote_service: &str,
    ) -> Result<Self, String> {
        let me = node.id().as_str();
        let target = if remote_node.eq_ignore_ascii_case("localhost") {
            me
        } else {
            remote_node
        };
        let (quic, server_name) = client_for(tls, tls_name, target, me)?;
        Ok(Self {
            node: node.clone(),
            remote_node: target.to_owned(),
            remote_service: remote_service.to_owned(),
            tls: quic,
            server_name,
        })
    }

    async fn dial(&self) -> Result<MeshStream, DialFailure> {
        self.node
            .dial(
                &self.remote_node,
                &self.remote_service,
                self.tls.clone(),
                &self.server_name,
            )
            .await
    }
}

/// A service advertisement with Go's tag set for a proxy.
fn advert(conn_type: u8, tags: &[(&str, &str)]) -> Advertise {
    Advertise {
        conn_type,
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        work_commands: None,
    }
}

/// A service name for sending datagrams to (checked once, at startup).
fn service_name(name: &str) -> Result<ServiceName, String> {
    ServiceName::new(name).map_err(|e| format!("invalid service name {name}: {e}"))
}

/// A local endpoint that can be torn down abruptly when a bridge fails.
trait Abort {
    /// Makes the peer see an error rather than a clean end (TCP: RST on close).
    fn abort(&self) {}
}

impl Abort for tokio::net::TcpStream {
    fn abort(&self) {
        // SO_LINGER 0 makes close() send RST at once; it never blocks with a zero timeout.
        #[allow(deprecated)]
        let _ = self.set_linger(Some(std::time::Duration::ZERO));
    }
}

impl Abort for tokio::net::UnixStream {}

impl<S: Abort> Abort for tokio_rustls::server::TlsStream<S> {
    fn abort(&self) {
        self.get_ref().0.abort();
    }
}

impl<S: Abort> Abort for tokio_rustls::client::TlsStream<S> {
    fn abort(&self) {
        self.get_ref().0.abort();
    }
}

/// Bridges a local connection and a mesh stream until both directions end, half-closing
/// each side as the other's reader ends. Returns the bytes moved (local→mesh, mesh→local).
/// On failure the local side is aborted; the mesh stream is dropped (its peer sees the end
/// of the stream: there is no stream reset in the mesh API).
async fn bridge<L>(mut local: L, mut mesh: MeshStream, what: &str) -> io::Result<(u64, u64)>
where
    L: AsyncRead + AsyncWrite + Unpin + Abort,
{
    let r = bridge::copy_both(&mut local, &mut mesh).await;
    match &r {
        Ok((up, down)) => tracing::debug!("{what}: done, {up} bytes out, {down} bytes back"),
        Err(e) => {
            tracing::debug!("{what}: bridge failed: {e}");
            local.abort();
        }
    }
    r
}

/// Splits `host:port` as Go's `net.SplitHostPort` (the host may be `[v6]`).
fn split_host_port(addr: &str) -> Result<(&str, &str), String> {
    let missing = || format!("address {addr}: missing port in address");
    let too_many = || format!("address {addr}: too many colons in address");
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {addr}: missing ']' in address"))?;
        let port = after.strip_prefix(':').ok_or_else(missing)?;
        if port.contains(':') {
            return Err(too_many());
        }
        return Ok((host, port));
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(missing)?;
    if host.contains(':') {
        return Err(too_many());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn host_port_split_like_go() {
        assert_eq!(split_host_port("a.example:80"), Ok(("a.example", "80")));
        assert_eq!(split_host_port("[::1]:5"), Ok(("::1", "5")));
        assert_eq!(split_host_port(":9"), Ok(("", "9")));
        assert_eq!(
            split_host_port("host"),
            Err("address host: missing port in address".into())
        );
        assert_eq!(
            split_host_port("::1:5"),
            Err("address ::1:5: too many colons in address".into())
        );
    }
}
