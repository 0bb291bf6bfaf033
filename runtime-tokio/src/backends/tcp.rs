//! `tcp-listener` / `tcp-peer`, optionally with TLS; 2-byte length framing inside.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, warn};

use super::{DialSpec, ListenSpec, redial_loop, session_link, session_result};
use crate::NodeHandle;
use crate::link::run_stream;
use crate::tls::{HandshakeSide, explain_handshake_error, server_name_for_address};
use receptor_core::backoff::AcceptBackoff;
use receptor_core::config::bind_addr;
use receptor_core::os::sockopt::{prepare_link_socket, widen_backlog};

/// Go's TLS dial timeout.
const TLS_TIMEOUT: Duration = Duration::from_secs(15);

/// Binds a TCP listener and accepts sessions until the node stops. Returns the bound address.
pub async fn tcp_listen(
    node: &NodeHandle,
    spec: ListenSpec,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tcp_bind(&spec.bind, spec.port).await?;
    let local = listener.local_addr()?;
    Ok((local, tcp_serve(node, listener, spec)))
}

/// Binds the socket of a TCP or WebSocket listener, to be served by [`tcp_serve`] or
/// [`ws_serve`](super::ws_serve). It is shared so that `reload` can hand it from one accept
/// loop to the next (new link options) without ever closing it.
pub async fn tcp_bind(bind: &str, port: u16) -> std::io::Result<Arc<TcpListener>> {
    let listener = TcpListener::bind(bind_addr(bind, port)).await?;
    widen_backlog(&listener);
    Ok(Arc::new(listener))
}

/// Accepts sessions on a bound listener until the node stops. Aborting the returned task ends
/// the sessions it accepted too; the socket stays bound while another clone of it lives.
pub fn tcp_serve(
    node: &NodeHandle,
    listener: Arc<TcpListener>,
    spec: ListenSpec,
) -> JoinHandle<()> {
    let node = node.clone();
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    debug!("listening for TCP on {local}");
    tokio::spawn(async move {
        let acceptor = spec.tls.clone().map(TlsAcceptor::from);
        let mut sessions = JoinSet::new();
        let mut pause = AcceptBackoff::default();
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                // A finished session's task keeps its memory (its future's state: buffers,
                // TLS) until it is joined: reap each as it ends, not at the next accept.
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            };
            let (sock, remote) = match accepted {
                Ok(x) => {
                    pause.accepted();
                    x
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("tcp accept on {local}: {e}");
                    tokio::time::sleep(pause.failed()).await;
                    continue;
                }
            };
            if node.inbound.is_closed() {
                return;
            }
            prepare_link_socket(&sock);
            let node = node.clone();
            let link = spec.link.clone();
            let acceptor = acceptor.clone();
            sessions.spawn(async move {
                let peer = remote.to_string();
                match acceptor {
                    None => {
                        run_stream(&node, sock, link, &peer).await;
                    }
                    // Boxed: a task is as large as its largest state, and the TLS one (the
                    // handshake, then a TLS session) would double what every plain
                    // connection holds, silent ones included.
                    Some(acc) => {
                        Box::pin(async move {
                            match tokio::time::timeout(TLS_TIMEOUT, acc.accept(sock)).await {
                                Ok(Ok(tls)) => {
                                    let link =
                                        session_link(&link, tls.get_ref().1.peer_certificates());
                                    run_stream(&node, tls, link, &peer).await;
                                }
                                Ok(Err(e)) => {
                                    let why = explain_handshake_error(&e, HandshakeSide::Server);
                                    warn!("TLS handshake with {peer} failed: {why}");
                                }
                                Err(_) => warn!("TLS handshake with {peer} timed out"),
                            }
                        })
                        .await
                    }
                }
            });
        }
    })
}

/// Dials a TCP peer, redialing per Go's backoff while `redial` is set.
pub fn tcp_dial(node: &NodeHandle, spec: DialSpec) -> JoinHandle<()> {
    let node = node.clone();
    let what = spec.address.clone();
    tokio::spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = node.clone();
        let spec = spec.clone();
        async move {
            let sock = TcpStream::connect(&spec.address)
                .await
                .map_err(|e| e.to_string())?;
            prepare_link_socket(&sock);
            let established = match &spec.tls {
                None => run_stream(&node, sock, spec.link.clone(), &spec.address).await,
                Some(cfg) => {
                    let name = server_name_for_address(&spec.address)
                        .map_err(|e| format!("bad TLS server name: {e}"))?;
                    let conn = TlsConnector::from(cfg.clone());
                    let tls = tokio::time::timeout(TLS_TIMEOUT, conn.connect(name, sock))
                        .await
                        .map_err(|_| "TLS handshake timed out".to_owned())?
                        .map_err(|e| {
                            let why = explain_handshake_error(&e, HandshakeSide::Client);
                            format!("TLS handshake failed: {why}")
                        })?;
                    let link = session_link(&spec.link, tls.get_ref().1.peer_certificates());
                    run_stream(&node, tls, link, &spec.address).await
                }
            };
            session_result(established)
        }
    }))
}
