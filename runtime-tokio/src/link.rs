//! Running one backend session: a reader task feeding the node and a writer task draining the
//! node's frames, so that neither direction can block the other.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use receptor_core::LinkConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::debug;

use crate::driver::{LINK_QUEUE, LinkTx, NodeHandle, ToNode};

const READ_CHUNK: usize = 64 * 1024;

/// Tells the node a link is gone when its reader ends, however it ends (also when its task
/// is aborted, e.g. by `reload` stopping a dialer mid-session).
struct DownGuard {
    node: NodeHandle,
    link: receptor_core::LinkId,
}

impl Drop for DownGuard {
    fn drop(&mut self) {
        let msg = ToNode::LinkDown { link: self.link };
        if let Err(mpsc::error::TrySendError::Full(msg)) = self.node.inbound.try_send(msg) {
            let inbound = self.node.inbound.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = inbound.send(msg).await;
                });
            }
        }
    }
}

/// Registers a new link with the node; returns its frame receiver and close signal.
async fn register(
    node: &NodeHandle,
    config: Arc<LinkConfig>,
    peer: &str,
) -> Option<(DownGuard, mpsc::Receiver<Bytes>, oneshot::Receiver<()>)> {
    let link = node.new_link();
    let (frames, frames_rx) = mpsc::channel(LINK_QUEUE);
    let (close, close_rx) = oneshot::channel();
    let up = ToNode::LinkUp {
        link,
        config,
        tx: LinkTx { frames, close },
        peer: peer.to_owned(),
    };
    node.inbound.send(up).await.ok()?;
    let guard = DownGuard {
        node: node.clone(),
        link,
    };
    Some((guard, frames_rx, close_rx))
}

/// Runs a byte-stream session (TCP, TLS) until either side ends it.
pub(crate) async fn run_stream<S>(node: &NodeHandle, stream: S, config: Arc<LinkConfig>, peer: &str)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some((guard, mut frames, mut close)) = register(node, config, peer).await else {
        return;
    };
    let link = guard.link;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(f) = frames.recv().await {
            if wr.write_all(&f).await.is_err() {
                break;
            }
            // Write whatever else is queued before flushing (TLS buffers records).
            while let Ok(f) = frames.try_recv() {
                if wr.write_all(&f).await.is_err() {
                    return;
                }
            }
            if wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let data = buf.split().freeze();
                    if node.inbound.send(ToNode::Received { link, data }).await.is_err() {
                        break;
                    }
                }
            },
            _ = &mut close => break,
        }
    }
    debug!(%link, %peer, "stream link ended");
    drop(guard);
    let _ = writer.await;
}

/// Runs a WebSocket session: one netceptor message per binary message.
pub(crate) async fn run_websocket<S>(
    node: &NodeHandle,
    ws: WebSocketStream<S>,
    config: Arc<LinkConfig>,
    peer: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some((guard, mut frames, mut close)) = register(node, config, peer).await else {
        return;
    };
    let link = guard.link;
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(f) = frames.recv().await {
            if sink.send(WsMessage::Binary(f)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    loop {
        tokio::select! {
            m = stream.next() => match m {
                // Go's session accepts text messages as data too.
                Some(Ok(WsMessage::Binary(data))) => {
                    if node.inbound.send(ToNode::Received { link, data }).await.is_err() {
                        break;
                    }
                }
                Some(Ok(WsMessage::Text(t))) => {
                    let data = Bytes::copy_from_slice(t.as_bytes());
                    if node.inbound.send(ToNode::Received { link, data }).await.is_err() {
                        break;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = &mut close => break,
        }
    }
    debug!(%link, %peer, "websocket link ended");
    drop(guard);
    let _ = writer.await;
}

/// Runs a connected-UDP session (udp-peer): one message per datagram.
pub(crate) async fn run_connected_udp(
    node: &NodeHandle,
    socket: UdpSocket,
    config: Arc<LinkConfig>,
    peer: &str,
) {
    let Some((guard, mut frames, mut close)) = register(node, config, peer).await else {
        return;
    };
    let link = guard.link;
    let socket = Arc::new(socket);
    let ws = socket.clone();
    let writer = tokio::spawn(async move {
        while let Some(f) = frames.recv().await {
            // A refused send (ICMP port unreachable) surfaces on the reader too.
            let _ = ws.send(&f).await;
        }
    });
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                    if node.inbound.send(ToNode::Received { link, data }).await.is_err() {
                        break;
                    }
                }
                // Port unreachable: the peer is gone; end the session so the dialer redials.
                Err(_) => break,
            },
            _ = &mut close => break,
        }
    }
    debug!(%link, %peer, "udp link ended");
    drop(guard);
    let _ = writer.await;
}

/// One session of a UDP listener: the listener's socket, a fixed remote address. Datagrams
/// from that address are handed in by the listener through `incoming`.
pub(crate) async fn run_udp_session(
    node: NodeHandle,
    socket: Arc<UdpSocket>,
    remote: std::net::SocketAddr,
    config: Arc<LinkConfig>,
    mut incoming: mpsc::Receiver<Bytes>,
) {
    let peer = remote.to_string();
    let Some((guard, mut frames, mut close)) = register(&node, config, &peer).await else {
        return;
    };
    let link = guard.link;
    let writer = tokio::spawn(async move {
        while let Some(f) = frames.recv().await {
            let _ = socket.send_to(&f, remote).await;
        }
    });
    loop {
        tokio::select! {
            m = incoming.recv() => match m {
                Some(data) => {
                    if node.inbound.send(ToNode::Received { link, data }).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = &mut close => break,
        }
    }
    drop(guard);
    let _ = writer.await;
}
