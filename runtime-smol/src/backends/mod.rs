//! Backends: the listeners and dialers that make links (netceptor.md §2). TCP and UDP only;
//! TLS and WebSocket live in `receptor-tokio` for now.
//!
//! Each function returns the backend's [`Task`](async_executor::Task). Unlike a tokio
//! `JoinHandle`, dropping a `Task` cancels it: keep it, or call `detach()` to let the backend
//! run until the node stops. Cancelling a backend ends its sessions cleanly (the node sees
//! the links go down).

mod tcp;
mod udp;

use std::future::Future;
use std::sync::Arc;

use async_io::Timer;
use futures_lite::future;
use receptor_core::LinkConfig;
use receptor_core::backoff::Redial;
use receptor_core::os::random_u64;

pub use tcp::{tcp_dial, tcp_listen};
pub use udp::{udp_dial, udp_listen};

use crate::handle::NodeHandle;

/// A TCP or UDP listener.
#[derive(Clone)]
pub struct ListenSpec {
    /// Address to bind, e.g. `0.0.0.0` or `127.0.0.1`.
    pub bind: String,
    /// Port; 0 picks a free one (the bound address is returned).
    pub port: u16,
    /// Link options for every session it accepts.
    pub link: Arc<LinkConfig>,
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
