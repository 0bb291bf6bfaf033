//! `ws-listener` / `ws-peer` (ws and wss): one netceptor message per binary WebSocket
//! message, through async-tungstenite over async-net (and futures-rustls for wss). The
//! upgrade checks, the dial request and the session limits are the core's
//! ([`receptor_core::ws`]), as runtime-tokio's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_executor::Task;
use async_net::{TcpListener, TcpStream};
use async_tungstenite::tungstenite::handshake::server::{Request, Response};
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use receptor_core::LinkConfig;
use receptor_core::config::bind_addr;
use receptor_core::os::sockopt::{prepare_link_socket, widen_backlog};
use receptor_core::tls::{server_name_for_host, session_link};
use receptor_core::ws::{check_upgrade, client_request, ws_config};
use tracing::debug;

use super::accept::{accept_loop, tls_accept, tls_connect};
use super::{
    DialError, WsDialSpec, WsListenSpec, redial_loop, session_result, timeout, until_stopped,
};
use crate::handle::NodeHandle;
use crate::link::run_websocket;

/// Go's `ReadHeaderTimeout` (and a bound on an accepted session's TLS handshake).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Go's TLS dial timeout.
const TLS_TIMEOUT: Duration = Duration::from_secs(15);

/// Binds a WebSocket listener (TLS when `spec.listen.tls`) and accepts sessions until the
/// node stops. Returns the bound address and the accept loop's task (dropping it stops
/// accepting; sessions already up go on).
pub async fn ws_listen(
    node: &NodeHandle,
    spec: WsListenSpec,
) -> std::io::Result<(SocketAddr, Task<()>)> {
    let listener = TcpListener::bind(bind_addr(&spec.listen.bind, spec.listen.port)).await?;
    widen_backlog(&listener);
    let local = listener.local_addr()?;
    let acceptor = spec.listen.tls.clone().map(TlsAcceptor::from);
    let spec = Arc::new(spec);
    let task = accept_loop(node, listener, local, move |node, sock, peer| {
        let spec = spec.clone();
        let acceptor = acceptor.clone();
        async move {
            let link = spec.listen.link.clone();
            match acceptor {
                None => upgrade(&node, sock, &spec.path, link, &peer).await,
                // Boxed: the TLS state would otherwise enlarge every plain session's task.
                Some(acc) => {
                    Box::pin(async {
                        let limit = HANDSHAKE_TIMEOUT;
                        let Some(tls) = tls_accept(&node, acc, sock, limit, &peer).await else {
                            return;
                        };
                        let link = session_link(&link, tls.get_ref().1.peer_certificates());
                        upgrade(&node, tls, &spec.path, link, &peer).await;
                    })
                    .await
                }
            }
        }
    });
    debug!("listening for WebSocket on {local}");
    Ok((local, task))
}

/// The listener's side of the upgrade (path and origin checked), then the session.
async fn upgrade<S>(node: &NodeHandle, stream: S, path: &str, link: Arc<LinkConfig>, peer: &str)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The handshake callback's signature is tungstenite's; its error type is what it is.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| check_upgrade(path, req, resp);
    let handshake =
        async_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config()));
    match until_stopped(node, timeout(HANDSHAKE_TIMEOUT, handshake)).await {
        None => {}
        Some(Some(Ok(ws))) => {
            run_websocket(node, ws, link, peer).await;
        }
        Some(Some(Err(e))) => debug!("websocket upgrade from {peer} refused: {e}"),
        Some(None) => debug!("websocket upgrade from {peer} timed out"),
    }
}

/// Dials a WebSocket peer (`ws://` or `wss://`), redialing per Go's backoff while `redial` is
/// set. Dropping the returned task stops dialing and ends the current session.
pub fn ws_dial(node: &NodeHandle, spec: WsDialSpec) -> Task<()> {
    let what = spec.url.clone();
    let n = node.clone();
    node.spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = n.clone();
        let spec = spec.clone();
        async move { ws_connect(&node, &spec).await.map_err(|e| e.to_string()) }
    }))
}

/// One dial of [`ws_dial`] without the redial: connects, runs the TLS handshake for
/// `wss://`, upgrades (with the `Origin` and extra header), then runs the session until it
/// ends. `Err` when no session was made, or it ended before its handshake completed.
pub async fn ws_connect(node: &NodeHandle, spec: &WsDialSpec) -> Result<(), DialError> {
    let (target, req) = client_request(&spec.url, spec.extra_header.as_deref())?;
    let tls = match (target.secure, &spec.tls) {
        (false, _) => None,
        (true, Some(cfg)) => Some(cfg.clone()),
        (true, None) => return Err(DialError::NoTlsConfig),
    };
    let sock = TcpStream::connect((target.bare_host(), target.port))
        .await
        .map_err(DialError::Connect)?;
    prepare_link_socket(&sock);
    let Some(cfg) = tls else {
        let (ws, _) = async_tungstenite::client_async_with_config(req, sock, Some(ws_config()))
            .await
            .map_err(|e| DialError::Upgrade(Box::new(e)))?;
        return session_result(run_websocket(node, ws, spec.link.clone(), &spec.url).await);
    };
    let name = server_name_for_host(&target.host).map_err(|source| DialError::ServerName {
        address: spec.url.clone(),
        source,
    })?;
    let tls = tls_connect(cfg, name, sock, TLS_TIMEOUT).await?;
    let link = session_link(&spec.link, tls.get_ref().1.peer_certificates());
    let (ws, _) = async_tungstenite::client_async_with_config(req, tls, Some(ws_config()))
        .await
        .map_err(|e| DialError::Upgrade(Box::new(e)))?;
    session_result(run_websocket(node, ws, link, &spec.url).await)
}
