//! `tcp-listener` / `tcp-peer`: 2-byte length framing inside (done by the core). No TLS yet.

use std::net::SocketAddr;

use async_executor::Task;
use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use super::{DialSpec, ListenSpec, redial_loop, until_stopped};
use crate::handle::NodeHandle;
use crate::link::run_stream;
use receptor_core::backoff::AcceptBackoff;
use receptor_core::config::bind_addr;
use receptor_core::os::sockopt::{prepare_link_socket, widen_backlog};

/// Binds a TCP listener and accepts sessions until the node stops. Returns the bound address
/// and the accept loop's task (dropping it stops accepting; sessions already up go on).
pub async fn tcp_listen(
    node: &NodeHandle,
    spec: ListenSpec,
) -> std::io::Result<(SocketAddr, Task<()>)> {
    let listener = TcpListener::bind(bind_addr(&spec.bind, spec.port)).await?;
    widen_backlog(&listener);
    let local = listener.local_addr()?;
    let node = node.clone();
    let task = node.clone().spawn(async move {
        let mut pause = AcceptBackoff::default();
        while let Some(accepted) = until_stopped(&node, listener.accept()).await {
            let (sock, remote) = match accepted {
                Ok(x) => {
                    pause.accepted();
                    x
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("tcp accept on {local}: {e}");
                    Timer::after(pause.failed()).await;
                    continue;
                }
            };
            prepare_link_socket(&sock);
            let link = spec.link.clone();
            let n = node.clone();
            // Detached: a session outlives the accept loop, and ends when the node stops.
            node.spawn(async move {
                let peer = remote.to_string();
                run_stream(&n, sock.clone(), sock, link, &peer).await;
            })
            .detach();
        }
    });
    debug!("listening for TCP on {local}");
    Ok((local, task))
}

/// Dials a TCP peer, redialing per Go's backoff while `redial` is set. Dropping the returned
/// task stops dialing and ends the current session.
pub fn tcp_dial(node: &NodeHandle, spec: DialSpec) -> Task<()> {
    let what = spec.address.clone();
    let n = node.clone();
    node.spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = n.clone();
        let spec = spec.clone();
        async move {
            let sock = TcpStream::connect(spec.address.as_str())
                .await
                .map_err(|e| e.to_string())?;
            prepare_link_socket(&sock);
            run_stream(&node, sock.clone(), sock, spec.link.clone(), &spec.address).await;
            Ok(())
        }
    }))
}
