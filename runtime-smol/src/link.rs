//! Running one backend session: a reader feeding the node and a writer task draining the
//! node's frames, so that neither direction can block the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_channel::{Receiver, TrySendError};
use async_io::Timer;
use async_net::UdpSocket;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use bytes::{Bytes, BytesMut};
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use futures_lite::{StreamExt, future};
use receptor_core::backend::CLOSE_LINGER;
use receptor_core::tls::explain_session_error;
use receptor_core::{LinkConfig, LinkId, Transmit};
use tracing::{debug, warn};

use crate::driver::{LINK_QUEUE, LinkEntry, ToNode};
use crate::handle::NodeHandle;

/// Bytes read from a stream at most at once.
const READ_CHUNK: usize = 64 * 1024;
/// The first read buffer of a stream session: a connection that never sends (half-open, or
/// a peer that stalls before its handshake) holds this much instead of a zeroed
/// [`READ_CHUNK`]; the buffer grows to that once a read fills it.
const FIRST_READ_CHUNK: usize = 8 * 1024;
/// A fresh read buffer is allocated when less than this is left of the current one.
const MIN_READ: usize = 4096;
/// Frames are gathered up to this size before they are written to a stream.
const WRITE_BUFFER: usize = 64 * 1024;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65536;

/// A registered link, from the link tasks' side.
struct Session {
    link: LinkId,
    frames: Receiver<Transmit>,
    close: Receiver<()>,
    down: LinkDown,
    /// Set by the node task when the session completes its handshake (see [`LinkEntry`]).
    established: Arc<AtomicBool>,
}

/// Tells the node the session ended when dropped, so a link task that is cancelled (its
/// backend's `Task` dropped) still reports `LinkDown`, as the core requires.
struct LinkDown {
    link: LinkId,
    node: NodeHandle,
}

impl Drop for LinkDown {
    fn drop(&mut self) {
        let msg = ToNode::LinkDown { link: self.link };
        if let Err(TrySendError::Full(msg)) = self.node.inbound.try_send(msg) {
            let inbound = self.node.inbound.clone();
            let send = async move { drop(inbound.send(msg).await) };
            self.node.spawn(send).detach();
        }
    }
}

/// Registers a new link with the node; `None` if the node has stopped.
async fn register(node: &NodeHandle, config: Arc<LinkConfig>, peer: &str) -> Option<Session> {
    let link = node.new_link();
    let (frames, frames_rx) = async_channel::bounded(LINK_QUEUE);
    let (close, close_rx) = async_channel::bounded(1);
    let established = Arc::new(AtomicBool::new(false));
    let entry = LinkEntry {
        frames,
        close: Some(close),
        peer: peer.to_owned(),
        established: established.clone(),
    };
    let up = ToNode::LinkUp {
        link,
        config,
        entry,
    };
    node.inbound.send(up).await.ok()?;
    let down = LinkDown {
        link,
        node: node.clone(),
    };
    Some(Session {
        link,
        frames: frames_rx,
        close: close_rx,
        down,
        established,
    })
}

/// Waits for the node's close signal (sent, or its sender dropped). Raced first against
/// reads, so a peer that keeps sending cannot keep its session open.
async fn closed<T>(close: &Receiver<()>) -> Option<T> {
    let _ = close.recv().await;
    None
}

/// Runs a byte-stream session (TCP, TLS) until either side ends it. Returns whether it
/// completed its handshake (a dialer backs off further after a session that did not).
pub(crate) async fn run_stream<R, W>(
    node: &NodeHandle,
    mut rd: R,
    wr: W,
    config: Arc<LinkConfig>,
    peer: &str,
) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Some(s) = register(node, config, peer).await else {
        return false;
    };
    let writer = node.spawn(write_stream(wr, s.frames));
    // Reads land in one zeroed buffer; each chunk is split off its front and handed on
    // without a copy, and a new buffer is zeroed only once the old one is used up.
    let mut size = FIRST_READ_CHUNK;
    let mut buf = BytesMut::zeroed(size);
    let mut closed_here = false;
    loop {
        if buf.len() < MIN_READ {
            buf = BytesMut::zeroed(size);
        }
        let room = buf.len();
        let read = async { Some(rd.read(&mut buf).await) };
        let n = match future::or(closed(&s.close), read).await {
            Some(Ok(n)) if n > 0 => n,
            Some(Err(e)) => {
                // With TLS 1.3 a client learns only now that the server refused its certificate.
                if let Some(why) = explain_session_error(&e) {
                    warn!(link = %s.link, %peer, "TLS session failed: {why}");
                }
                break;
            }
            Some(Ok(_)) => break,
            None => {
                closed_here = true;
                break;
            }
        };
        if n == room {
            size = READ_CHUNK;
        }
        let data = buf.split_to(n).freeze();
        let msg = ToNode::Received { link: s.link, data };
        if node.inbound.send(msg).await.is_err() {
            break;
        }
    }
    debug!(link = %s.link, %peer, "stream link ended");
    let established = s.established.load(Ordering::Relaxed);
    drop(s.down);
    writer.await;
    if closed_here {
        linger(&mut rd).await;
    }
    established
}

/// Reads and drops what the peer still sends until it closes too, for at most
/// [`CLOSE_LINGER`], so that closing our socket does not reset what we wrote last.
async fn linger<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut sink = vec![0u8; 16 * 1024];
    let drain = async { while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {} };
    future::or(drain, async {
        Timer::after(CLOSE_LINGER).await;
    })
    .await;
}

/// Writes frames until the node drops the link, gathering whatever is queued into one write.
async fn write_stream<W: AsyncWrite + Unpin>(wr: W, frames: Receiver<Transmit>) {
    let mut wr = BufWriter::with_capacity(WRITE_BUFFER, wr);
    'frames: while let Ok(t) = frames.recv().await {
        if write_one(&mut wr, &t).await.is_err() {
            break;
        }
        while let Ok(t) = frames.try_recv() {
            if write_one(&mut wr, &t).await.is_err() {
                break 'frames;
            }
        }
        if wr.flush().await.is_err() {
            break;
        }
    }
    // Flushes and half-closes: the peer reads what we sent, then EOF.
    let _ = wr.close().await;
}

/// Writes one frame, its tail included.
async fn write_one<W: AsyncWrite + Unpin>(wr: &mut W, t: &Transmit) -> std::io::Result<()> {
    wr.write_all(&t.frame).await?;
    wr.write_all(&t.tail).await
}

/// Runs a WebSocket session (ws, wss): one netceptor message per binary message. Returns
/// whether it completed its handshake.
pub(crate) async fn run_websocket<S>(
    node: &NodeHandle,
    ws: WebSocketStream<S>,
    config: Arc<LinkConfig>,
    peer: &str,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(s) = register(node, config, peer).await else {
        return false;
    };
    let (mut sink, mut stream) = ws.split();
    let frames = s.frames;
    let writer = node.spawn(async move {
        while let Ok(t) = frames.recv().await {
            if sink.send(WsMessage::Binary(t.into_bytes())).await.is_err() {
                break;
            }
        }
        let _ = sink.close(None).await;
    });
    loop {
        let next = async { Some(stream.next().await) };
        let data = match future::or(closed(&s.close), next).await {
            Some(Some(Ok(WsMessage::Binary(data)))) => data,
            // Go's session accepts text messages as data too.
            Some(Some(Ok(WsMessage::Text(t)))) => Bytes::copy_from_slice(t.as_bytes()),
            Some(Some(Err(WsError::Io(e)))) => {
                if let Some(why) = explain_session_error(&e) {
                    warn!(link = %s.link, %peer, "TLS session failed: {why}");
                }
                break;
            }
            Some(Some(Ok(WsMessage::Close(_)) | Err(_)) | None) | None => break,
            Some(Some(Ok(_))) => continue,
        };
        let msg = ToNode::Received { link: s.link, data };
        if node.inbound.send(msg).await.is_err() {
            break;
        }
    }
    debug!(link = %s.link, %peer, "websocket link ended");
    let established = s.established.load(Ordering::Relaxed);
    drop(s.down);
    writer.await;
    established
}

/// Runs a connected-UDP session (udp-peer): one message per datagram.
pub(crate) async fn run_connected_udp(
    node: &NodeHandle,
    socket: UdpSocket,
    config: Arc<LinkConfig>,
    peer: &str,
) {
    let Some(s) = register(node, config, peer).await else {
        return;
    };
    let ws = socket.clone();
    let frames = s.frames;
    let writer = node.spawn(async move {
        while let Ok(t) = frames.recv().await {
            // A refused send (ICMP port unreachable) surfaces on the reader too.
            let _ = ws.send(&t.into_bytes()).await;
        }
    });
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let recv = async { Some(socket.recv(&mut buf).await) };
        let data = match future::or(closed(&s.close), recv).await {
            Some(Ok(n)) => Bytes::copy_from_slice(buf.get(..n).unwrap_or_default()),
            // Port unreachable: the peer is gone; end the session so the dialer redials.
            Some(Err(_)) | None => break,
        };
        let msg = ToNode::Received { link: s.link, data };
        if node.inbound.send(msg).await.is_err() {
            break;
        }
    }
    debug!(link = %s.link, %peer, "udp link ended");
    drop(s.down);
    writer.await;
}

/// One session of a UDP listener: the listener's socket, a fixed remote address. Datagrams
/// from that address are handed in by the listener through `incoming`.
pub(crate) async fn run_udp_session(
    node: NodeHandle,
    socket: UdpSocket,
    remote: SocketAddr,
    config: Arc<LinkConfig>,
    incoming: Receiver<Bytes>,
) {
    let peer = remote.to_string();
    let Some(s) = register(&node, config, &peer).await else {
        return;
    };
    let frames = s.frames;
    let writer = node.spawn(async move {
        while let Ok(t) = frames.recv().await {
            let _ = socket.send_to(&t.into_bytes(), remote).await;
        }
    });
    loop {
        let next = async { incoming.recv().await.ok() };
        let Some(data) = future::or(closed(&s.close), next).await else {
            break;
        };
        let msg = ToNode::Received { link: s.link, data };
        if node.inbound.send(msg).await.is_err() {
            break;
        }
    }
    debug!(link = %s.link, %peer, "udp session ended");
    drop(s.down);
    writer.await;
}
