//! `tcp-listener` / `tcp-peer`, optionally with TLS (futures-rustls over async-net); 2-byte
//! length framing inside (done by the core).

use std::net::SocketAddr;
use std::time::Duration;

use async_executor::Task;
use async_net::{TcpListener, TcpStream};
use futures_rustls::TlsAcceptor;
use receptor_core::config::bind_addr;
use receptor_core::os::sockopt::{prepare_link_socket, widen_backlog};
use receptor_core::tls::{server_name_for_address, session_link};
use tracing::debug;

use super::accept::{accept_loop, tls_accept, tls_connect};
use super::{DialError, DialSpec, ListenSpec, redial_loop, session_result};
use crate::handle::NodeHandle;
use crate::link::run_stream;

/// Go's TLS dial timeout, and the bound on an accepted session's handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(15);

/// Binds a TCP listener and accepts sessions until the node stops. Returns the bound address
/// and the accept loop's task (dropping it stops accepting; sessions already up go on).
pub async fn tcp_listen(
    node: &NodeHandle,
    spec: ListenSpec,
) -> std::io::Result<(SocketAddr, Task<()>)> {
    let listener = TcpListener::bind(bind_addr(&spec.bind, spec.port)).await?;
    widen_backlog(&listener);
    let local = listener.local_addr()?;
    let acceptor = spec.tls.clone().map(TlsAcceptor::from);
    let task = accept_loop(node, listener, local, move |node, sock, peer| {
        let link = spec.link.clone();
        let acceptor = acceptor.clone();
        async move {
            match acceptor {
                None => {
                    run_stream(&node, sock.clone(), sock, link, &peer).await;
                }
                // Boxed: the TLS state would otherwise enlarge every plain session's task.
                Some(acc) => {
                    Box::pin(async {
                        let Some(tls) = tls_accept(&node, acc, sock, TLS_TIMEOUT, &peer).await
                        else {
                            return;
                        };
                        let link = session_link(&link, tls.get_ref().1.peer_certificates());
                        let (rd, wr) = futures_lite::io::split(tls);
                        run_stream(&node, rd, wr, link, &peer).await;
                    })
                    .await
                }
            }
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
        async move { tcp_connect(&node, &spec).await.map_err(|e| e.to_string()) }
    }))
}

/// One dial of [`tcp_dial`] without the redial: connects (and runs the TLS handshake, if
/// `spec.tls`), then runs the session until it ends. `Err` when no session was made, or it
/// ended before its handshake completed ([`DialError::NotEstablished`]).
pub async fn tcp_connect(node: &NodeHandle, spec: &DialSpec) -> Result<(), DialError> {
    let sock = TcpStream::connect(spec.address.as_str())
        .await
        .map_err(DialError::Connect)?;
    prepare_link_socket(&sock);
    let Some(cfg) = &spec.tls else {
        let established = run_stream(node, sock.clone(), sock, spec.link.clone(), &spec.address);
        return session_result(established.await);
    };
    let name = server_name_for_address(&spec.address).map_err(|source| DialError::ServerName {
        address: spec.address.clone(),
        source,
    })?;
    let tls = tls_connect(cfg.clone(), name, sock, TLS_TIMEOUT).await?;
    let link = session_link(&spec.link, tls.get_ref().1.peer_certificates());
    let (rd, wr) = futures_lite::io::split(tls);
    session_result(run_stream(node, rd, wr, link, &spec.address).await)
}
