//! What a backend is asked to do (netceptor.md §2): the listener and dialer specs of TCP,
//! UDP and WebSocket backends, the same for every runtime. The runtimes' backends take them
//! (the `backends` module of each runtime crate).
//!
//! TLS configs come from [`crate::tls`] (feature `tls`): `TlsServer::backend_config`,
//! `TlsClient::backend_config` (WebSocket: with ALPN `http/1.1`).

use std::sync::Arc;
use std::time::Duration;

use crate::LinkConfig;

/// How long a stream link the node closed (refusal, node shutdown) keeps reading, and
/// dropping, what the peer still sends after our side is shut down, until the peer closes
/// too. A socket closed with unread bytes sends a reset, and a reset makes the peer's kernel
/// throw away what we wrote last before its reader takes it: the close of a QUIC
/// connection, a refusal's reason. The peer then waited for its idle timeout instead.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A TCP or UDP listener.
#[derive(Clone)]
pub struct ListenSpec {
    /// Address to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    pub bind: String,
    /// Port; 0 picks a free one (the bound address is returned).
    pub port: u16,
    /// Link options for every session it accepts.
    pub link: Arc<LinkConfig>,
    /// TLS (TCP and WebSocket): a server config, e.g. from `TlsServer::backend_config(&[])`
    /// (WebSocket: `backend_config(&[ALPN_HTTP11])`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A TCP or UDP dialer.
#[derive(Clone)]
pub struct DialSpec {
    /// `host:port`.
    pub address: String,
    /// Dial again after a failure or a closed session.
    pub redial: bool,
    /// Link options.
    pub link: Arc<LinkConfig>,
    /// TLS (TCP only): a client config, e.g. from `TlsClient::backend_config(&[])`. The server
    /// certificate must be valid for the host part of `address`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A WebSocket listener.
#[derive(Clone)]
pub struct WsListenSpec {
    /// Where and how to listen (`tls` makes it wss).
    pub listen: ListenSpec,
    /// The upgrade path (default `/`, which matches every path, as Go's ServeMux).
    pub path: String,
}

/// A WebSocket dialer.
#[derive(Clone)]
pub struct WsDialSpec {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Dial again after a failure or a closed session.
    pub redial: bool,
    /// Link options.
    pub link: Arc<LinkConfig>,
    /// TLS for `wss://`: a client config, e.g. from `TlsClient::backend_config(&[ALPN_HTTP11])`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Extra header `Name:value`, split at the first colon.
    pub extra_header: Option<String>,
}
