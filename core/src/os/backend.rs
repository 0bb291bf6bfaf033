//! What a backend listens or dials with (netceptor.md §2): the specs both runtimes' `tcp_*`,
//! `udp_*` and `ws_*` functions take, so an application moves between them unchanged.

use std::sync::Arc;

use crate::LinkConfig;

/// A TCP, UDP or WebSocket listener's socket and session options.
#[derive(Clone)]
pub struct ListenSpec {
    /// Address to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    pub bind: String,
    /// Port; 0 picks a free one (the bound address is returned).
    pub port: u16,
    /// Link options for every session it accepts.
    pub link: Arc<LinkConfig>,
    /// TLS (TCP and WebSocket only), e.g. from `TlsServer::backend_config` (WebSocket:
    /// with ALPN `http/1.1`).
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
    /// TLS (TCP only), e.g. from `TlsClient::backend_config`: the server's certificate must be
    /// valid for the host part of `address`.
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
    /// TLS for `wss://`, e.g. from `TlsClient::backend_config` with ALPN `http/1.1`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Extra header `Name:value`, split at the first colon.
    pub extra_header: Option<String>,
}
