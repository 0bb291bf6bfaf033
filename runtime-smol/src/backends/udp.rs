//! `udp-listener` / `udp-peer`: one netceptor message per datagram, no framing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use async_channel::Sender;
use async_executor::Task;
use async_net::UdpSocket;
use bytes::Bytes;
use tracing::debug;

use super::{DialSpec, ListenSpec, redial_loop, until_stopped};
use crate::handle::NodeHandle;
use crate::link::{run_connected_udp, run_udp_session};
use receptor_core::config::bind_addr;
use receptor_core::udp::{SESSION_QUEUE, Sessions};

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65536;

/// Binds a UDP listener: a session per remote address, created by its first datagram.
/// Returns the bound address and the receive loop's task (dropping it ends every session).
pub async fn udp_listen(
    node: &NodeHandle,
    spec: ListenSpec,
) -> std::io::Result<(SocketAddr, Task<()>)> {
    let socket = UdpSocket::bind(bind_addr(&spec.bind, spec.port)).await?;
    let local = socket.local_addr()?;
    let node = node.clone();
    let task = node.clone().spawn(async move {
        let mut sessions = Sessions::default();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while let Some(r) = until_stopped(&node, socket.recv_from(&mut buf)).await {
            // ICMP errors from earlier sends surface here on some systems: keep going.
            let Ok((n, remote)) = r else { continue };
            let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
            let running = |tx: &Sender<Bytes>| !tx.is_closed();
            let send = |tx: &Sender<Bytes>, d| drop(tx.try_send(d));
            let start = || async_channel::bounded(SESSION_QUEUE);
            let Some(rx) = sessions.deliver(remote, data, running, send, start) else {
                continue;
            };
            let session =
                run_udp_session(node.clone(), socket.clone(), remote, spec.link.clone(), rx);
            // Detached, but it ends with the listener: dropping `sessions` closes its input.
            node.spawn(session).detach();
        }
    });
    debug!("listening for UDP on {local}");
    Ok((local, task))
}

/// Dials a UDP peer with a connected socket, redialing while `redial` is set. Dropping the
/// returned task stops dialing and ends the current session.
pub fn udp_dial(node: &NodeHandle, spec: DialSpec) -> Task<()> {
    let what = spec.address.clone();
    let n = node.clone();
    node.spawn(redial_loop(node.clone(), what, spec.redial, move || {
        let node = n.clone();
        let spec = spec.clone();
        async move {
            let remote = async_net::resolve(spec.address.as_str())
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .next()
                .ok_or_else(|| format!("no address for {}", spec.address))?;
            let socket = UdpSocket::bind(local_for(remote))
                .await
                .map_err(|e| e.to_string())?;
            socket.connect(remote).await.map_err(|e| e.to_string())?;
            run_connected_udp(&node, socket, spec.link.clone(), &spec.address).await;
            Ok(())
        }
    }))
}

/// The local address a connected socket to `remote` binds: loopback for a loopback peer
/// (nothing else can answer it), otherwise any address of the same family.
fn local_for(remote: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match (remote.ip().is_loopback(), remote.is_ipv6()) {
        (true, _) => remote.ip(),
        (false, true) => Ipv6Addr::UNSPECIFIED.into(),
        (false, false) => Ipv4Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}
