//! What a backend is asked to do (netceptor.md §2): the listener and dialer specs of TCP,
//! UDP and WebSocket backends, the same for every runtime. The runtimes' backends take them
//! (`receptor_tokio::backends`, `receptor_smol::backends`).
//!
//! TLS configs come from [`crate::tls`] (feature `tls`): `TlsServer::backend_config`,
//! `TlsClient::backend_config` (WebSocket: with ALPN `http/1.1`).

use std::sync::Arc;

use crate::LinkConfig;

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
