//! Backends: the listeners and dialers that make links (netceptor.md §2): TCP (with or
//! without TLS), WebSocket (ws and wss) and UDP. The names and specs are `receptor-tokio`'s.
//!
//! TLS configs come from the core's [`receptor_core::tls`] (`TlsServer::backend_config`,
//! `TlsClient::backend_config`, re-exported as [`crate::tls`]), with the same node-ID rules as
//! the tokio runtime: a server with client CAs verifies the client's certificate, a client
//! verifies the server's name or IP and pins, and with `bindnodeid` the node ID a peer
//! announces must be in its verified certificate.
//!
//! Each function returns the backend's [`Task`](async_executor::Task). Unlike a tokio
//! `JoinHandle`, dropping a `Task` cancels it: keep it, or call `detach()` to let the backend
//! run until the node stops. Cancelling a backend ends its sessions cleanly (the node sees
//! the links go down).

mod accept;
mod tcp;
mod udp;
mod ws;

use std::future::Future;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use receptor_core::backoff::Redial;
use receptor_core::os::random_u64;

pub use tcp::{tcp_connect, tcp_dial, tcp_listen};
pub use udp::{udp_dial, udp_listen};
pub use ws::{ws_connect, ws_dial, ws_listen};

pub use receptor_core::backend::{DialSpec, ListenSpec, WsDialSpec, WsListenSpec};

use crate::handle::NodeHandle;

/// Why a dial made no session.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The connection could not be made.
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    /// The address's host cannot name a TLS server (neither an IP nor a DNS name).
    #[error("bad TLS server name in {address}: {source}")]
    ServerName {
        /// The address dialed.
        address: String,
        /// Why its host part is no server name.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// The TLS handshake failed; its text says which side refused what.
    #[error(transparent)]
    Handshake(#[from] receptor_core::tls::HandshakeError),
    /// A `ws://` / `wss://` URL or extra header that cannot be dialed.
    #[error(transparent)]
    Url(#[from] receptor_core::ws::WsUrlError),
    /// A `wss://` URL without a TLS config.
    #[error("wss:// needs a tls-client config")]
    NoTlsConfig,
    /// The WebSocket upgrade failed (refused by the listener, or not a WebSocket server).
    #[error("websocket upgrade failed: {0}")]
    Upgrade(#[source] Box<async_tungstenite::tungstenite::Error>),
    /// The session closed before its handshake completed: refused by either side (a
    /// reject, node-ID binding), or ended early. The redial backs off further, since the same
    /// peer would be refused again.
    #[error("the session closed before its handshake completed")]
    NotEstablished,
    /// The TLS handshake did not finish in time.
    #[error("TLS handshake timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// The node stopped during the dial.
    #[error("the node has stopped")]
    NodeGone,
}

/// Runs `f` until it ends or the node stops, whichever comes first (`None` then; checked
/// first, so a busy socket cannot keep a backend running).
pub(crate) async fn until_stopped<T>(node: &NodeHandle, f: impl Future<Output = T>) -> Option<T> {
    let stopped = async {
        node.stopped().await;
        None
    };
    future::or(stopped, async { Some(f.await) }).await
}

/// A dialer's verdict on a session that ran: one refused or abandoned before its handshake
/// completed counts as a failed dial.
pub(crate) fn session_result(established: bool) -> Result<(), DialError> {
    if established {
        Ok(())
    } else {
        Err(DialError::NotEstablished)
    }
}

/// Runs `f` for at most `limit` (`None` when it takes longer).
pub(crate) async fn timeout<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    let late = async {
        Timer::after(limit).await;
        None
    };
    future::or(async { Some(f.await) }, late).await
}

/// Dials until the node stops (a session or dial in progress is then cancelled): `attempt` returns `Ok` when a session ran and ended, `Err`
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
        let Some(result) = until_stopped(&node, attempt()).await else {
            return;
        };
        let Some(delay) = policy.after_attempt(result, random_u64()) else {
            return;
        };
        if until_stopped(&node, Timer::after(delay)).await.is_none() {
            return;
        }
    }
}
