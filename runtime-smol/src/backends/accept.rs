//! What the TCP and WebSocket backends share around their sessions: the accept loop, and
//! the TLS handshake on either side.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_executor::Task;
use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use futures_rustls::{TlsAcceptor, TlsConnector, client, server};
use receptor_core::backoff::AcceptBackoff;
use receptor_core::os::sockopt::prepare_link_socket;
use receptor_core::tls::{HandshakeError, HandshakeSide};
use rustls::pki_types::ServerName;
use tracing::warn;

use super::{DialError, timeout, until_stopped};
use crate::handle::NodeHandle;

/// Accepts connections on `listener` until the node stops, running `session` for each as a
/// detached task (a session outlives the accept loop, and ends when the node stops).
/// Dropping the returned task stops accepting.
pub(super) fn accept_loop<F, Fut>(
    node: &NodeHandle,
    listener: TcpListener,
    local: SocketAddr,
    session: F,
) -> Task<()>
where
    F: Fn(NodeHandle, TcpStream, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let node = node.clone();
    node.clone().spawn(async move {
        let mut pause = AcceptBackoff::default();
        while let Some(accepted) = until_stopped(&node, listener.accept()).await {
            let (sock, remote) = match accepted {
                Ok(x) => {
                    pause.accepted();
                    x
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("accept on {local}: {e}");
                    Timer::after(pause.failed()).await;
                    continue;
                }
            };
            prepare_link_socket(&sock);
            node.spawn(session(node.clone(), sock, remote.to_string()))
                .detach();
        }
    })
}

/// The server side of a TLS handshake, bounded by `limit`; `None` (logged with its cause)
/// when it fails, times out, or the node stops.
pub(super) async fn tls_accept(
    node: &NodeHandle,
    acceptor: TlsAcceptor,
    sock: TcpStream,
    limit: Duration,
    peer: &str,
) -> Option<server::TlsStream<TcpStream>> {
    match until_stopped(node, timeout(limit, acceptor.accept(sock))).await? {
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => {
            let e = HandshakeError::new(HandshakeSide::Server, e);
            warn!("with {peer}: {e}");
            None
        }
        None => {
            warn!("TLS handshake with {peer} timed out");
            None
        }
    }
}

/// The client side of a TLS handshake with `name`, bounded by `limit`.
pub(super) async fn tls_connect(
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    sock: TcpStream,
    limit: Duration,
) -> Result<client::TlsStream<TcpStream>, DialError> {
    let connect = TlsConnector::from(config).connect(name, sock);
    let tls = timeout(limit, connect)
        .await
        .ok_or(DialError::HandshakeTimeout(limit))?
        .map_err(|e| HandshakeError::new(HandshakeSide::Client, e))?;
    Ok(tls)
}
