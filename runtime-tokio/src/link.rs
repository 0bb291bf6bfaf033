//! Running one backend session: a reader task feeding the node and a writer task draining the
//! node's frames, so that neither direction can block the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use receptor_core::backend::CLOSE_LINGER;
use receptor_core::wire::MAX_MESSAGE_LEN;
use receptor_core::{LinkConfig, Transmit};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::{debug, warn};

use crate::NodeHandle;
use crate::driver::{LINK_QUEUE, LinkTx, ToNode};

/// Read buffer of a busy byte-stream link: a large read takes many frames in one system call.
const READ_BUF: usize = 256 * 1024;
/// Read buffer of a byte-stream link until a read fills it, and always before its handshake
/// completes: all a connection holds then is this buffer and at most one message (a largest
/// one does not fit in it), however fast its peer sends.
const READ_BUF_SMALL: usize = 64 * 1024;
/// Frames one gathered write takes at most (well under the system's IOV_MAX of 1024).
const WRITE_BATCH: usize = 64;

/// Tells the node a link is gone when its reader ends, however it ends (also when its task
/// is aborted, e.g. by `reload` stopping a dialer mid-session).
struct DownGuard {
    node: NodeHandle,
    link: receptor_core::LinkId,
    /// Set by the node task when the session completes its handshake; cleared when either
    /// side refuses the session.
    established: Arc<AtomicBool>,
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
/// `backend` (`tcp`, `ws`, `udp`) and `peer` (its address) name the link in the node's logs.
async fn register(
    node: &NodeHandle,
    config: Arc<LinkConfig>,
    backend: &str,
    peer: &str,
) -> Option<(DownGuard, mpsc::Receiver<Transmit>, oneshot::Receiver<()>)> {
    let link = node.new_link();
    let (frames, frames_rx) = mpsc::channel(LINK_QUEUE);
    let (close, close_rx) = oneshot::channel();
    let established = Arc::new(AtomicBool::new(false));
    let up = ToNode::LinkUp {
        link,
        config,
        tx: LinkTx {
            frames,
            close,
            established: established.clone(),
        },
        peer: format!("{backend} {peer}"),
    };
    node.inbound.send(up).await.ok()?;
    let guard = DownGuard {
        node: node.clone(),
        link,
        established,
    };
    Some((guard, frames_rx, close_rx))
}

/// Runs a byte-stream session (TCP, TLS) until either side ends it. Returns whether it
/// completed its handshake (a dialer backs off further after a session that did not).
pub(crate) async fn run_stream<S>(
    node: &NodeHandle,
    stream: S,
    config: Arc<LinkConfig>,
    peer: &str,
) -> bool
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some((guard, mut frames, mut close)) = register(node, config, "tcp", peer).await else {
        return false;
    };
    let link = guard.link;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        let mut batch = VecDeque::with_capacity(WRITE_BATCH);
        let mut take = Vec::with_capacity(WRITE_BATCH);
        // Everything queued goes out in one gathered write: one system call, and one wake-up
        // of the peer, for many frames.
        while frames.recv_many(&mut take, WRITE_BATCH).await > 0 {
            for t in take.drain(..) {
                batch.push_back(t.frame);
                if !t.tail.is_empty() {
                    batch.push_back(t.tail);
                }
            }
            if write_frames(&mut wr, &mut batch).await.is_err() {
                break;
            }
            // TLS buffers records: push them out once nothing more is queued.
            if frames.is_empty() && wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    // A quiet link keeps a small buffer (idle RSS); one whose reads fill it gets a large one.
    let mut size = READ_BUF_SMALL;
    let mut buf = BytesMut::with_capacity(size);
    let mut closed_here = false;
    loop {
        // Room for the rest of a frame begun in the last read, and for a large read: the
        // partial frame stays in place when the buffer has room, and only the partial frame
        // is copied when a new buffer is needed.
        let room = frames_room(&buf).max(size / 4);
        if buf.capacity() - buf.len() < room {
            buf.reserve(room.max(size));
        }
        let spare = buf.capacity() - buf.len();
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => break,
                Err(e) => {
                    if let Some(why) = crate::tls::explain_session_error(&e) {
                        warn!(%link, %peer, "TLS session failed: {why}");
                    }
                    break;
                }
                Ok(n) => {
                    if n == spare && guard.established.load(Ordering::Relaxed) {
                        size = READ_BUF;
                    }
                    // Whole frames only: the node's deframer then never has to copy a frame
                    // that straddles two reads.
                    let whole = whole_frames(&buf);
                    if whole == 0 {
                        continue;
                    }
                    let data = buf.split_to(whole).freeze();
                    if node.inbound.send(ToNode::Received { link, data }).await.is_err() {
                        break;
                    }
                    // Let the node task take the frames (it copies or forwards them) before
                    // the next read: the buffer is then ours alone again and is reused in
                    // place instead of a new one being allocated for every read.
                    tokio::task::yield_now().await;
                }
            },
            _ = &mut close => {
                closed_here = true;
                break;
            }
        }
    }
    debug!(%link, %peer, "stream link ended");
    let established = guard.established.load(Ordering::Relaxed);
    drop(guard);
    let _ = writer.await;
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
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

/// Writes every frame of `batch` with gathered writes, emptying it.
async fn write_frames<W>(wr: &mut W, batch: &mut VecDeque<Bytes>) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    while !batch.is_empty() {
        let n = {
            let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
            let mut k = 0;
            for (s, f) in slices.iter_mut().zip(batch.iter()) {
                *s = IoSlice::new(f);
                k += 1;
            }
            wr.write_vectored(slices.get(..k).unwrap_or_default())
                .await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut left = n;
        while left > 0 {
            let Some(f) = batch.front_mut() else { break };
            if f.len() <= left {
                left -= f.len();
                batch.pop_front();
            } else {
                f.advance(left);
                left = 0;
            }
        }
    }
    Ok(())
}

/// Length of the longest prefix of `buf` made of whole frames (2-byte little-endian length,
/// then the message).
fn whole_frames(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&[lo, hi]) = buf.get(at..at + 2) {
        let end = at + 2 + u16::from_le_bytes([lo, hi]) as usize;
        if end > buf.len() {
            break;
        }
        at = end;
    }
    at
}

/// Bytes still missing from the frame that `buf` (whole frames, then a partial one) ends with.
fn frames_room(buf: &[u8]) -> usize {
    let rest = buf.get(whole_frames(buf)..).unwrap_or_default();
    match rest {
        [lo, hi, ..] => (2 + u16::from_le_bytes([*lo, *hi]) as usize).saturating_sub(rest.len()),
        _ => 2 + MAX_MESSAGE_LEN,
    }
}

/// Runs a WebSocket session: one netceptor message per binary message. Returns whether it
/// completed its handshake.
pub(crate) async fn run_websocket<S>(
    node: &NodeHandle,
    ws: WebSocketStream<S>,
    config: Arc<LinkConfig>,
    peer: &str,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some((guard, mut frames, mut close)) = register(node, config, "ws", peer).await else {
        return false;
    };
    let link = guard.link;
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(t) = frames.recv().await {
            if sink.send(WsMessage::Binary(t.into_bytes())).await.is_err() {
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
                Some(Err(WsError::Io(e))) => {
                    if let Some(why) = crate::tls::explain_session_error(&e) {
                        warn!(%link, %peer, "TLS session failed: {why}");
                    }
                    break;
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = &mut close => break,
        }
    }
    debug!(%link, %peer, "websocket link ended");
    let established = guard.established.load(Ordering::Relaxed);
    drop(guard);
    let _ = writer.await;
    established
}

/// Runs a connected-UDP session (udp-peer): one message per datagram.
pub(crate) async fn run_connected_udp(
    node: &NodeHandle,
    socket: UdpSocket,
    config: Arc<LinkConfig>,
    peer: &str,
) {
    let Some((guard, mut frames, mut close)) = register(node, config, "udp", peer).await else {
        return;
    };
    let link = guard.link;
    let socket = Arc::new(socket);
    let ws = socket.clone();
    let writer = tokio::spawn(async move {
        while let Some(t) = frames.recv().await {
            // A refused send (ICMP port unreachable) surfaces on the reader too.
            let _ = ws.send(&t.into_bytes()).await;
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
    let Some((guard, mut frames, mut close)) = register(&node, config, "udp", &peer).await else {
        return;
    };
    let link = guard.link;
    let writer = tokio::spawn(async move {
        while let Some(t) = frames.recv().await {
            let _ = socket.send_to(&t.into_bytes(), remote).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_le_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn whole_frames_stop_before_a_partial_one() {
        let wire = framed(&[b"abc", b"", b"hello"]);
        assert_eq!(whole_frames(&wire), wire.len());
        assert_eq!(frames_room(&wire), 2 + MAX_MESSAGE_LEN);
        // Cut inside the last frame's body, then inside its length prefix.
        assert_eq!(whole_frames(&wire[..wire.len() - 2]), 7);
        assert_eq!(frames_room(&wire[..wire.len() - 2]), 2);
        assert_eq!(whole_frames(&wire[..8]), 7);
        assert_eq!(frames_room(&wire[..8]), 2 + MAX_MESSAGE_LEN);
        assert_eq!(whole_frames(&[]), 0);
    }

    #[tokio::test]
    async fn gathered_writes_survive_partial_writes() {
        // A small pipe forces short writes that end inside frames.
        let (mut wr, mut rd) = tokio::io::duplex(1000);
        let frames: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i as usize * 37) % 700]))
            .collect();
        let want: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.map(|_| got)
        });
        let mut batch: VecDeque<Bytes> = frames.into_iter().collect();
        write_frames(&mut wr, &mut batch).await.unwrap();
        assert!(batch.is_empty());
        drop(wr);
        assert_eq!(reader.await.unwrap().unwrap(), want);
    }
}
