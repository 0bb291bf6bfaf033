//! `ws-listener` / `ws-peer`: one netceptor message per binary WebSocket message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use receptor_core::LinkConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, warn};

use receptor_core::wire::MAX_MESSAGE_LEN;

use super::{WsDialSpec, WsListenSpec, redial_loop, session_link, session_result, tcp_bind};
use crate::NodeHandle;
use crate::link::run_websocket;
use crate::tls::{HandshakeSide, explain_handshake_error, server_name_for_host};
use receptor_core::os::sockopt::prepare_link_socket;

/// Go's `ReadHeaderTimeout` (and a bound on the TLS handshake).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Read buffer of a WebSocket session. tungstenite allocates it up front and zero-fills it
/// on the first read (its default, 128 KiB, is 250 MiB across 2000 idle sessions); a larger
/// message still arrives whole, in more reads.
const WS_READ_BUF: usize = 16 * 1024;

/// tungstenite's settings for every session, accepted or dialed: one netceptor message per
/// WebSocket message, so nothing larger than [`MAX_MESSAGE_LEN`] (what a stream frame's
/// length prefix can say, and what every sender keeps to) is valid. A larger message or
/// frame is refused as soon as its header says so, and the session closed, instead of being
/// buffered (tungstenite's defaults: 64 MiB messages of 16 MiB frames).
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUF)
        .max_message_size(Some(MAX_MESSAGE_LEN))
        .max_frame_size(Some(MAX_MESSAGE_LEN))
}

/// Go ServeMux matching: `/` matches everything, `/x/` matches the subtree, `/x` exactly.
fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern.ends_with('/') {
        path.starts_with(pattern)
    } else {
        path == pattern
    }
}

/// gorilla's default origin check: an `Origin` header, if present, must name the request host.
fn origin_ok(req: &Request) -> bool {
    let Some(origin) = req.headers().get("origin") else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    let origin_host = origin_host.split('/').next().unwrap_or_default();
    origin_host.eq_ignore_ascii_case(host)
}

/// The listener's checks of an upgrade request for `path` (tungstenite's handshake callback).
// The callback's signature is tungstenite's; its error type is what it is.
#[allow(clippy::result_large_err)]
pub(crate) fn check_upgrade(
    path: &str,
    req: &Request,
    resp: Response,
) -> Result<Response, ErrorResponse> {
    if !path_matches(path, req.uri().path()) {
        return Err(refuse(StatusCode::NOT_FOUND));
    }
    if !origin_ok(req) {
        return Err(refuse(StatusCode::FORBIDDEN));
    }
    Ok(resp)
}

fn refuse(status: StatusCode) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(status.canonical_reason().unwrap_or("").to_owned()));
    *r.status_mut() = status;
    r
}

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

/// Splits `ws[s]://host[:port]/...` into (secure, host, port).
fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let (secure, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(format!("unsupported URL {url}: want ws:// or wss://"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let default = if secure { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse() {
            Ok(p) => (h, p),
            Err(_) if authority.starts_with('[') && authority.ends_with(']') => {
                (authority, default)
            }
            Err(_) => return Err(format!("bad port in {url}")),
        },
        _ => (authority, default),
    };
    if host.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok((secure, host.to_owned(), port))
}

/// Dials a WebSocket peer, redialing while `redial` is set.
pub fn ws_dial(node: &NodeHandle, spec: WsDialSpec) -> JoinHandle<()> {
    let node = node.clone();
    let what = spec.url.clone();
    tokio::spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = node.clone();
        let spec = spec.clone();
        async move {
            let (secure, host, port) = parse_url(&spec.url)?;
            let mut req = spec
                .url
                .as_str()
                .into_client_request()
                .map_err(|e| e.to_string())?;
            let scheme = if secure { "https" } else { "http" };
            let origin = format!(
                "{scheme}://{}",
                req.uri().authority().map_or("", |a| a.as_str())
            );
            if let Ok(v) = HeaderValue::from_str(&origin) {
                req.headers_mut().insert("origin", v);
            }
            if let Some((name, value)) =
                spec.extra_header.as_deref().and_then(|h| h.split_once(':'))
            {
                let name =
                    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| e.to_string())?;
                let value = HeaderValue::from_str(value.trim()).map_err(|e| e.to_string())?;
                req.headers_mut().insert(name, value);
            }
            let sock =
                TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
                    .await
                    .map_err(|e| e.to_string())?;
            prepare_link_socket(&sock);
            let established = if secure {
                let cfg = spec.tls.clone().ok_or("wss:// needs a tls-client config")?;
                let name = server_name_for_host(&host).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servemux_paths() {
        assert!(path_matches("/", "/anything"));
        assert!(path_matches("/ws/", "/ws/x"));
        assert!(!path_matches("/ws", "/ws/x"));
        assert!(path_matches("/ws", "/ws"));
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("ws://h:1/x").unwrap(), (false, "h".into(), 1));
        assert_eq!(parse_url("wss://h/").unwrap(), (true, "h".into(), 443));
        assert_eq!(
            parse_url("ws://[::1]:9/").unwrap(),
            (false, "[::1]".into(), 9)
        );
        assert!(parse_url("http://h").is_err());
    }
}
