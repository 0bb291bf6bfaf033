//! The WebSocket backends' rules (`ws-listener` / `ws-peer`, netceptor.md §2), for every
//! runtime (feature `ws`): which upgrade requests a listener accepts (Go's ServeMux paths and
//! gorilla's origin check), the request a dialer sends (its URL, `Origin`, the extra header),
//! and the session settings (one netceptor message per WebSocket message). The runtimes run
//! tungstenite's handshake over their own sockets with these.

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request as ClientRequest;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tungstenite::protocol::WebSocketConfig;

use crate::wire::MAX_MESSAGE_LEN;

/// The tungstenite this module's types come from (the runtimes' WebSocket crates use it).
pub use tungstenite;

/// Read buffer of a WebSocket session. tungstenite allocates it up front and zero-fills it
/// on the first read (its default, 128 KiB, is 250 MiB across 2000 idle sessions); a larger
/// message still arrives whole, in more reads.
const WS_READ_BUF: usize = 16 * 1024;

/// tungstenite's settings for every session, accepted or dialed: one netceptor message per
/// WebSocket message, so nothing larger than [`MAX_MESSAGE_LEN`] (what a stream frame's
/// length prefix can say, and what every sender keeps to) is valid. A larger message or
/// frame is refused as soon as its header says so, and the session closed, instead of being
/// buffered (tungstenite's defaults: 64 MiB messages of 16 MiB frames).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUF)
        .max_message_size(Some(MAX_MESSAGE_LEN))
        .max_frame_size(Some(MAX_MESSAGE_LEN))
}

/// Go ServeMux matching: `/` matches everything, `/x/` matches the subtree, `/x` exactly.
pub fn path_matches(pattern: &str, path: &str) -> bool {
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

/// A listener's checks of an upgrade request for `path` (tungstenite's handshake callback):
/// 404 for another path, 403 for a foreign origin.
// The callback's signature is tungstenite's; its error type is what it is.
#[allow(clippy::result_large_err)]
pub fn check_upgrade(path: &str, req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
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

/// Where a `ws://` / `wss://` URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsTarget {
    /// `wss://`: TLS under the WebSocket.
    pub secure: bool,
    /// The host as written (an IPv6 literal keeps its brackets).
    pub host: String,
    /// The port, 80 or 443 when the URL has none.
    pub port: u16,
}

impl WsTarget {
    /// The host without the brackets of an IPv6 literal: what to connect to and to check the
    /// server's certificate against.
    pub fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Why a `ws-peer` cannot be dialed as configured.
#[derive(Debug, thiserror::Error)]
pub enum WsUrlError {
    /// Neither `ws://` nor `wss://`.
    #[error("unsupported URL {0}: want ws:// or wss://")]
    Scheme(String),
    /// The port is not a number.
    #[error("bad port in {0}")]
    Port(String),
    /// No host.
    #[error("no host in {0}")]
    NoHost(String),
    /// tungstenite refused the URL as a request.
    #[error("bad WebSocket URL {url}: {source}")]
    Request {
        /// The URL.
        url: String,
        /// tungstenite's reason.
        #[source]
        source: Box<tungstenite::Error>,
    },
    /// The extra header is not `Name:value` with a valid name and value.
    #[error("bad extra header {0:?}: want Name:value")]
    Header(String),
}

/// Splits `ws[s]://host[:port]/...` into its target.
pub fn parse_url(url: &str) -> Result<WsTarget, WsUrlError> {
    let (secure, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(WsUrlError::Scheme(url.to_owned()));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let default = if secure { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse() {
            Ok(p) => (h, p),
            Err(_) if authority.starts_with('[') && authority.ends_with(']') => {
                (authority, default)
            }
            Err(_) => return Err(WsUrlError::Port(url.to_owned())),
        },
        _ => (authority, default),
    };
    if host.is_empty() {
        return Err(WsUrlError::NoHost(url.to_owned()));
    }
    Ok(WsTarget {
        secure,
        host: host.to_owned(),
        port,
    })
}

/// A dialer's upgrade request for `url`: an `Origin` naming the URL's own authority (what
/// gorilla's check wants) and `extra_header` (`Name:value`, split at the first colon, both
/// trimmed), as Go's ws-peer sends them.
pub fn client_request(
    url: &str,
    extra_header: Option<&str>,
) -> Result<(WsTarget, ClientRequest), WsUrlError> {
    let target = parse_url(url)?;
    let mut req = url
        .into_client_request()
        .map_err(|source| WsUrlError::Request {
            url: url.to_owned(),
            source: Box::new(source),
        })?;
    let scheme = if target.secure { "https" } else { "http" };
    let origin = format!(
        "{scheme}://{}",
        req.uri().authority().map_or("", |a| a.as_str())
    );
    if let Ok(v) = HeaderValue::from_str(&origin) {
        req.headers_mut().insert("origin", v);
    }
    if let Some(header) = extra_header {
        let bad = || WsUrlError::Header(header.to_owned());
        let (name, value) = header.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        req.headers_mut().insert(name, value);
    }
    Ok((target, req))
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
        let t = |secure, host: &str, port| WsTarget {
            secure,
            host: host.into(),
            port,
        };
        assert_eq!(parse_url("ws://h:1/x").unwrap(), t(false, "h", 1));
        assert_eq!(parse_url("wss://h/").unwrap(), t(true, "h", 443));
        let v6 = parse_url("ws://[::1]:9/").unwrap();
        assert_eq!(v6, t(false, "[::1]", 9));
        assert_eq!(v6.bare_host(), "::1");
        assert_eq!(parse_url("ws://[::1]/").unwrap(), t(false, "[::1]", 80));
        assert!(matches!(parse_url("http://h"), Err(WsUrlError::Scheme(_))));
        assert!(matches!(parse_url("ws://h:x/"), Err(WsUrlError::Port(_))));
        assert!(matches!(parse_url("ws:///p"), Err(WsUrlError::NoHost(_))));
    }

    #[test]
    fn requests_carry_origin_and_the_extra_header() {
        let (target, req) =
            client_request("wss://example.com:8443/mesh", Some("X-Token: abc ")).unwrap();
        assert!(target.secure);
        let h = req.headers();
        assert_eq!(h["origin"], "https://example.com:8443");
        assert_eq!(h["x-token"], "abc");
        assert_eq!(req.uri().path(), "/mesh");
        let (_, plain) = client_request("ws://h:1/", None).unwrap();
        assert_eq!(plain.headers()["origin"], "http://h:1");
        for bad in ["no colon", "bad name:v", "X:bad\nvalue"] {
            assert!(
                matches!(
                    client_request("ws://h/", Some(bad)),
                    Err(WsUrlError::Header(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn upgrade_checks() {
        let req = |path: &str, origin: Option<&str>| {
            let mut b = Request::builder().uri(path).header("host", "h:1");
            if let Some(o) = origin {
                b = b.header("origin", o);
            }
            b.body(()).unwrap()
        };
        let ok = |pattern, r: &Request| check_upgrade(pattern, r, Response::default()).is_ok();
        assert!(ok("/", &req("/x", None)));
        assert!(ok("/", &req("/x", Some("http://h:1"))));
        let status = |pattern, r: &Request| {
            check_upgrade(pattern, r, Response::default())
                .unwrap_err()
                .status()
        };
        assert_eq!(status("/ws", &req("/x", None)), StatusCode::NOT_FOUND);
        assert_eq!(
            status("/", &req("/x", Some("http://evil:1"))),
            StatusCode::FORBIDDEN
        );
    }
}
