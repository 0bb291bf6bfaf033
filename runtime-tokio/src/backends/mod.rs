//! Backends: the listeners and dialers that make links (netceptor.md §2).

mod tcp;
mod udp;
mod ws;

#[cfg(feature = "fuzzing")]
pub(crate) use receptor_core::ws::{check_upgrade, ws_config};

use std::future::Future;
use std::sync::Arc;

use receptor_core::LinkConfig;
use receptor_core::backoff::Redial;
use receptor_core::os::random_u64;

pub use tcp::{tcp_bind, tcp_dial, tcp_listen, tcp_serve};
pub use udp::{udp_bind, udp_dial, udp_listen, udp_serve};
pub use ws::{ws_dial, ws_listen, ws_serve};

use crate::NodeHandle;

/// A TCP or UDP listener.
#[derive(Clone)]
pub struct ListenSpec {
    /// Address to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    pub bind: String,
    /// Port; 0 picks a free one (the bound address is returned).
    pub port: u16,
    /// Link options for every session it accepts.
    pub link: Arc<LinkConfig>,
    /// TLS (TCP and WebSocket only).
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
    /// TLS (TCP only).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A WebSocket listener.
#[derive(Clone)]
pub struct WsListenSpec {
    /// Where and how to listen.
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
    /// TLS for `wss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Extra header `Name:value`, split at the first colon.
    pub extra_header: Option<String>,
}

/// Dials until the node stops: `attempt` returns `Ok` when a session ran and ended, `Err`
/// when the dial failed. Go's backoff, reset after every successful dial.
pub(crate) async fn redial_loop<F, Fut>(
    node: NodeHandle,
    what: String,
    redial: bool,
    mut attempt: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut policy = Redial::new(what, redial);
    loop {
        if node.inbound.is_closed() {
            return;
        }
        let result = attempt().await;
        let Some(delay) = policy.after_attempt(result, random_u64()) else {
            return;
        };
        if node.inbound.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

pub(crate) use receptor_core::tls::session_link;

/// A dialer's verdict on a session that ran: one refused or abandoned before its handshake
/// completed counts as a failed dial, so the redial backs off instead of retrying every
/// second (a peer refused for its identity would be refused again).
pub(crate) fn session_result(established: bool) -> Result<(), String> {
    if established {
        Ok(())
    } else {
        Err("the session closed before its handshake completed".to_owned())
    }
}
