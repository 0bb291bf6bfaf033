//! `ws-listener` / `ws-peer` (ws and wss): one netceptor message per binary WebSocket
//! message, through async-tungstenite over async-net (and futures-rustls for wss). The
//! upgrade checks, the dial request and the session limits are the core's
//! ([`receptor_core::ws`]), as runtime-tokio's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_executor::Task;
use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use async_tungstenite::tungstenite::handshake::server::{Request, Response};
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::{TlsAcceptor, TlsConnector};
use receptor_core::LinkConfig;
use receptor_core::backoff::AcceptBackoff;
use receptor_core::config::bind_addr;
use receptor_core::os::sockopt::{prepare_link_socket, widen_backlog};
use receptor_core::tls::{HandshakeError, HandshakeSide, server_name_for_host, session_link};
use receptor_core::ws::{check_upgrade, client_request, ws_config};
use tracing::{debug, warn};

use super::{DialError, WsDialSpec, WsListenSpec, redial_loop, timeout, until_stopped};
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
    let node = node.clone();
    let acceptor = spec.listen.tls.clone().map(TlsAcceptor::from);
    let spec = Arc::new(spec);
    let task = node.clone().spawn(async move {
        let mut pause = AcceptBackoff::default();
        while let Some(accepted) = until_stopped(&node, listener.accept()).await {
            let (sock, remote) = match accepted {
                Ok(x) => {
                    pause.accepted();
                    x
                }
                Err(e) => {
                    warn!("ws accept on {local}: {e}");
                    Timer::after(pause.failed()).await;
                    continue;
                }
            };
            prepare_link_socket(&sock);
            let n = node.clone();
            let spec = spec.clone();
            let acceptor = acceptor.clone();
            // Detached: a session outlives the accept loop, and ends when the node stops.
            node.spawn(async move {
                let peer = remote.to_string();
                let link = spec.listen.link.clone();
                match acceptor {
                    None => upgrade(&n, sock, &spec.path, link, &peer).await,
                    // Boxed: the TLS state would otherwise enlarge every plain session's task.
                    Some(acc) => Box::pin(accept_tls(&n, acc, sock, &spec, &peer)).await,
                }
            })
            .detach();
        }
    });
    debug!("listening for WebSocket on {local}");
    Ok((local, task))
}

/// The server side of a TLS handshake, then the upgrade.
async fn accept_tls(
    node: &NodeHandle,
    acceptor: TlsAcceptor,
    sock: TcpStream,
    spec: &WsListenSpec,
    peer: &str,
) {
    let tls = match until_stopped(node, timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock))).await {
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
    let link = session_link(&spec.listen.link, tls.get_ref().1.peer_certificates());
    upgrade(node, tls, &spec.path, link, peer).await;
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
        Some(Some(Ok(ws))) => run_websocket(node, ws, link, peer).await,
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
/// ends. `Err` when no session was made.
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
        run_websocket(node, ws, spec.link.clone(), &spec.url).await;
        return Ok(());
    };
    let name = server_name_for_host(&target.host).map_err(|source| DialError::ServerName {
        address: spec.url.clone(),
        source,
    })?;
    let tls = timeout(TLS_TIMEOUT, TlsConnector::from(cfg).connect(name, sock))
        .await
        .ok_or(DialError::HandshakeTimeout(TLS_TIMEOUT))?
        .map_err(|e| HandshakeError::new(HandshakeSide::Client, e))?;
    let link = session_link(&spec.link, tls.get_ref().1.peer_certificates());
    let (ws, _) = async_tungstenite::client_async_with_config(req, tls, Some(ws_config()))
        .await
        .map_err(|e| DialError::Upgrade(Box::new(e)))?;
    run_websocket(node, ws, link, &spec.url).await;
    Ok(())
}
