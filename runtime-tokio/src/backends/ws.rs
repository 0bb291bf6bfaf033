//! `ws-listener` / `ws-peer`: one netceptor message per binary WebSocket message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use receptor_core::LinkConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tracing::{debug, warn};

use receptor_core::ws::{check_upgrade, client_request, ws_config};

use super::{WsDialSpec, WsListenSpec, redial_loop, session_link, session_result, tcp_bind};
use crate::NodeHandle;
use crate::link::run_websocket;
use crate::tls::{HandshakeSide, explain_handshake_error, server_name_for_host};
use receptor_core::os::sockopt::prepare_link_socket;

/// Go's `ReadHeaderTimeout` (and a bound on the TLS handshake).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds a WebSocket listener; returns the bound address.
pub async fn ws_listen(
    node: &NodeHandle,
    spec: WsListenSpec,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tcp_bind(&spec.listen.bind, spec.listen.port).await?;
    let local = listener.local_addr()?;
    Ok((local, ws_serve(node, listener, spec)))
}

/// Accepts WebSocket sessions on a listener bound by [`tcp_bind`] until the node stops.
/// Aborting the returned task ends the sessions it accepted too.
pub fn ws_serve(
    node: &NodeHandle,
    listener: Arc<TcpListener>,
    spec: WsListenSpec,
) -> JoinHandle<()> {
    let node = node.clone();
    if let Ok(local) = listener.local_addr() {
        debug!("listening for WebSocket on {local}");
    }
    tokio::spawn(async move {
        let acceptor = spec.listen.tls.clone().map(TlsAcceptor::from);
        let mut sessions = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                // Finished sessions are reaped as they end (see `tcp_serve`).
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            };
            let Ok((sock, remote)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if node.inbound.is_closed() {
                return;
            }
            prepare_link_socket(&sock);
            let node = node.clone();
            let spec = spec.clone();
            let acceptor = acceptor.clone();
            sessions.spawn(async move {
                let peer = remote.to_string();
                match acceptor {
                    None => {
                        let link = spec.listen.link.clone();
                        upgrade(&node, sock, &spec, link, &peer).await;
                    }
                    // Boxed, as in `tcp_serve`: plain sessions do not carry the TLS state.
                    Some(acc) => {
                        Box::pin(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(sock)).await {
                                Ok(Ok(tls)) => {
                                    let chain = tls.get_ref().1.peer_certificates();
                                    let link = session_link(&spec.listen.link, chain);
                                    upgrade(&node, tls, &spec, link, &peer).await;
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

async fn upgrade<S>(
    node: &NodeHandle,
    stream: S,
    spec: &WsListenSpec,
    link: Arc<LinkConfig>,
    peer: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let path = spec.path.clone();
    // The handshake callback's signature is tungstenite's; its error type is what it is.
    #[allow(clippy::result_large_err)]
    let check = move |req: &Request, resp: Response| check_upgrade(&path, req, resp);
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config()));
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => {
            run_websocket(node, ws, link, peer).await;
        }
        Ok(Err(e)) => debug!("websocket upgrade from {peer} refused: {e}"),
        Err(_) => debug!("websocket upgrade from {peer} timed out"),
    }
}

/// Dials a WebSocket peer, redialing while `redial` is set.
pub fn ws_dial(node: &NodeHandle, spec: WsDialSpec) -> JoinHandle<()> {
    let node = node.clone();
    let what = spec.url.clone();
    tokio::spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = node.clone();
        let spec = spec.clone();
        async move {
            let (target, req) = client_request(&spec.url, spec.extra_header.as_deref())
                .map_err(|e| e.to_string())?;
            let sock = TcpStream::connect((target.bare_host(), target.port))
                .await
                .map_err(|e| e.to_string())?;
            prepare_link_socket(&sock);
            let established = if target.secure {
                let cfg = spec.tls.clone().ok_or("wss:// needs a tls-client config")?;
                let name = server_name_for_host(&target.host).map_err(|e| e.to_string())?;
                let tls = TlsConnector::from(cfg)
                    .connect(name, sock)
                    .await
                    .map_err(|e| {
                        let why = explain_handshake_error(&e, HandshakeSide::Client);
                        format!("TLS handshake failed: {why}")
                    })?;
                let link = session_link(&spec.link, tls.get_ref().1.peer_certificates());
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(req, tls, Some(ws_config()))
                        .await
                        .map_err(|e| e.to_string())?;
                run_websocket(&node, ws, link, &spec.url).await
            } else {
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(req, sock, Some(ws_config()))
                        .await
                        .map_err(|e| e.to_string())?;
                run_websocket(&node, ws, spec.link.clone(), &spec.url).await
            };
            session_result(established)
        }
    }))
}
