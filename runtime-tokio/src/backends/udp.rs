//! `udp-listener` / `udp-peer`: one netceptor message per datagram, no framing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::{DialSpec, ListenSpec, redial_loop};
use crate::NodeHandle;
use crate::link::{run_connected_udp, run_udp_session};
use receptor_core::config::bind_addr;
use receptor_core::udp::{SESSION_QUEUE, Sessions};

/// Binds a UDP listener: a session per remote address, created by its first datagram.
pub async fn udp_listen(
    node: &NodeHandle,
    spec: ListenSpec,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = udp_bind(&spec.bind, spec.port).await?;
    let local = socket.local_addr()?;
    Ok((local, udp_serve(node, socket, spec)))
}

/// Binds the socket of a UDP listener, to be served by [`udp_serve`]. It is shared so that
/// `reload` can hand it from one receive loop to the next without ever closing it.
pub async fn udp_bind(bind: &str, port: u16) -> std::io::Result<Arc<UdpSocket>> {
    Ok(Arc::new(UdpSocket::bind(bind_addr(bind, port)).await?))
}

/// Serves a bound UDP listener socket until the node stops. Aborting the returned task ends
/// the sessions it started too (their datagram queues close).
pub fn udp_serve(node: &NodeHandle, socket: Arc<UdpSocket>, spec: ListenSpec) -> JoinHandle<()> {
    let node = node.clone();
    let local = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    debug!("listening for UDP on {local}");
    tokio::spawn(async move {
        let mut sessions = Sessions::default();
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, remote)) = socket.recv_from(&mut buf).await else {
                // ICMP errors from earlier sends surface here on some systems: keep going.
                continue;
            };
            if node.inbound.is_closed() {
                return;
            }
            let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
            let running = |tx: &mpsc::Sender<Bytes>| !tx.is_closed();
            let send = |tx: &mpsc::Sender<Bytes>, d| drop(tx.try_send(d));
            let start = || mpsc::channel(SESSION_QUEUE);
            let Some(rx) = sessions.deliver(remote, data, running, send, start) else {
                continue;
            };
            tokio::spawn(run_udp_session(
                node.clone(),
                socket.clone(),
                remote,
                spec.link.clone(),
                rx,
            ));
        }
    })
}

/// Dials a UDP peer with a connected socket, redialing while `redial` is set.
pub fn udp_dial(node: &NodeHandle, spec: DialSpec) -> JoinHandle<()> {
    let node = node.clone();
    let what = spec.address.clone();
    tokio::spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = node.clone();
        let spec = spec.clone();
        async move {
            let remote = tokio::net::lookup_host(&spec.address)
                .await
                .map_err(|e| e.to_string())?
                .next()
                .ok_or_else(|| format!("no address for {}", spec.address))?;
            let bind = if remote.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
            socket.connect(remote).await.map_err(|e| e.to_string())?;
            run_connected_udp(&node, socket, spec.link.clone(), &spec.address).await;
            Ok(())
        }
    }))
}
