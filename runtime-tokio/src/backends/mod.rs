//! Backends: the listeners and dialers that make links (netceptor.md §2).

mod tcp;
mod udp;
mod ws;

#[cfg(feature = "fuzzing")]
pub(crate) use receptor_core::ws::{check_upgrade, ws_config};

use std::future::Future;

use receptor_core::backoff::Redial;
use receptor_core::os::random_u64;

pub use tcp::{tcp_bind, tcp_dial, tcp_listen, tcp_serve};
pub use udp::{udp_bind, udp_dial, udp_listen, udp_serve};
pub use ws::{ws_dial, ws_listen, ws_serve};

pub use receptor_core::backend::{DialSpec, ListenSpec, WsDialSpec, WsListenSpec};

use crate::NodeHandle;

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
