//! `tcp-listener` / `tcp-peer`, optionally with TLS (futures-rustls over async-net); 2-byte
//! length framing inside (done by the core).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_executor::Task;
use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use futures_rustls::{TlsAcceptor, TlsConnector};
use receptor_core::LinkConfig;
use receptor_core::tls::{HandshakeError, HandshakeSide, server_name_for_address, session_link};
use tracing::{debug, warn};

use super::{DialError, DialSpec, ListenSpec, redial_loop, timeout, until_stopped};
use crate::handle::NodeHandle;
use crate::link::run_stream;
use receptor_core::backoff::AcceptBackoff;
use receptor_core::config::bind_addr;
use receptor_core::os::sockopt::{prepare_link_socket, widen_backlog};

/// Go's TLS dial timeout, and the bound on an accepted session's handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(15);

/// Binds a TCP listener and accepts sessions until the node stops. Returns the bound address
/// and the accept loop's task (dropping it stops accepting; sessions already up go on).
pub async fn tcp_listen(
    node: &NodeHandle,
    spec: ListenSpec,
) -> std::io::Result<(SocketAddr, Task<()>)> {
    let listener = TcpListener::bind(bind_addr(&spec.bind, spec.port)).await?;
    widen_backlog(&listener);
    let local = listener.local_addr()?;
    let node = node.clone();
    let acceptor = spec.tls.clone().map(TlsAcceptor::from);
    let task = node.clone().spawn(async move {
        let mut pause = AcceptBackoff::default();
        while let Some(accepted) = until_stopped(&node, listener.accept()).await {
            let (sock, remote) = match accepted {
                Ok(x) => {
                    pause.accepted();
                    x
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("tcp accept on {local}: {e}");
                    Timer::after(pause.failed()).await;
                    continue;
                }
            };
            prepare_link_socket(&sock);
            let link = spec.link.clone();
            let n = node.clone();
            let acceptor = acceptor.clone();
            // Detached: a session outlives the accept loop, and ends when the node stops.
            node.spawn(async move {
                let peer = remote.to_string();
                match acceptor {
                    None => run_stream(&n, sock.clone(), sock, link, &peer).await,
                    // Boxed: the TLS state would otherwise enlarge every plain session's task.
                    Some(acc) => Box::pin(accept_tls(&n, acc, sock, link, &peer)).await,
                }
            })
            .detach();
        }
    });
    debug!("listening for TCP on {local}");
    Ok((local, task))
}

/// Runs the server side of a TLS handshake, then the session.
async fn accept_tls(
    node: &NodeHandle,
    acceptor: TlsAcceptor,
    sock: TcpStream,
    link: Arc<LinkConfig>,
    peer: &str,
) {
    let tls = match until_stopped(node, timeout(TLS_TIMEOUT, acceptor.accept(sock))).await {
        None => return,
        Some(Some(Ok(tls))) => tls,
        Some(Some(Err(e))) => {
            let e = HandshakeError::new(HandshakeSide::Server, e);
            warn!("with {peer}: {e}");
            return;
        }
        Some(None) => {
            warn!("TLS handshake with {peer} timed out");
            return;
        }
    };
    let link = session_link(&link, tls.get_ref().1.peer_certificates());
    let (rd, wr) = futures_lite::io::split(tls);
    run_stream(node, rd, wr, link, peer).await;
}

/// Dials a TCP peer, redialing per Go's backoff while `redial` is set. Dropping the returned
/// task stops dialing and ends the current session.
pub fn tcp_dial(node: &NodeHandle, spec: DialSpec) -> Task<()> {
    let what = spec.address.clone();
    let n = node.clone();
    node.spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = n.clone();
        let spec = spec.clone();
        async move { tcp_connect(&node, &spec).await.map_err(|e| e.to_string()) }
    }))
}

/// One dial of [`tcp_dial`] without the redial: connects (and runs the TLS handshake, if
/// `spec.tls`), then runs the session until it ends. `Err` when no session was made.
pub async fn tcp_connect(node: &NodeHandle, spec: &DialSpec) -> Result<(), DialError> {
    let sock = TcpStream::connect(spec.address.as_str())
        .await
        .map_err(DialError::Connect)?;
    prepare_link_socket(&sock);
    let Some(cfg) = &spec.tls else {
        run_stream(node, sock.clone(), sock, spec.link.clone(), &spec.address).await;
        return Ok(());
    };
    let name = server_name_for_address(&spec.address).map_err(|source| DialError::ServerName {
        address: spec.address.clone(),
        source,
    })?;
    let connect = TlsConnector::from(cfg.clone()).connect(name, sock);
    let tls = timeout(TLS_TIMEOUT, connect)
        .await
        .ok_or(DialError::HandshakeTimeout(TLS_TIMEOUT))?
        .map_err(|e| HandshakeError::new(HandshakeSide::Client, e))?;
    let link = session_link(&spec.link, tls.get_ref().1.peer_certificates());
    let (rd, wr) = futures_lite::io::split(tls);
    run_stream(node, rd, wr, link, &spec.address).await;
    Ok(())
}
