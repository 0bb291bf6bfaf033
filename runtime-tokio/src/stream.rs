//! Mesh streams on tokio: [`MeshStream`] (AsyncRead + AsyncWrite) over the core's QUIC layer,
//! with back-pressure end to end: a writer waits for credit that the node task returns only
//! when QUIC has taken the bytes, and the node task reads from QUIC only while the reader's
//! queue has room, so a slow reader slows the writer and no buffer grows without bound.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use receptor_core::stream::app::AppEnd;
use receptor_core::stream::side::{self, StreamPorts};
use receptor_core::stream::{ACCEPT_QUEUE, DialFailure, ServerTls, StreamHandle};
use receptor_core::{Addr, Advertise, ServiceName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::NodeHandle;
use crate::driver::{Command, TokioChannels};

/// Bytes a writer may have queued in the node task beyond what QUIC has taken.
const WRITE_CREDIT: usize = 1 << 20;
/// Largest chunk one write hands over.
const WRITE_CHUNK: usize = 64 * 1024;
/// Chunks queued for a reader before the node task stops reading from QUIC.
const READ_QUEUE: usize = 32;

/// What handles and streams ask of the node task's stream side.
pub(crate) type StreamCommand = side::StreamCommand<TokioPorts>;

type Chunk = Result<Bytes, String>;

/// Whether everything a stream wrote, FIN included, was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    Waiting,
    Acked,
    Failed,
}

/// How the node task reaches one [`MeshStream`]: its read queue, pause flag, credit and
/// acknowledgement.
pub(crate) struct TokioEnd {
    to_app: mpsc::Sender<Chunk>,
    paused: Arc<AtomicBool>,
    credit: Arc<Semaphore>,
    ack: watch::Sender<Ack>,
}

impl AppEnd for TokioEnd {
    fn room(&mut self) -> bool {
        if self.to_app.capacity() > 0 {
            return true;
        }
        self.paused.store(true, Ordering::Release);
        false
    }

    fn push(&mut self, data: Bytes) {
        let _ = self.to_app.try_send(Ok(data));
    }

    fn end(&mut self, error: Option<String>) {
        if let Some(e) = error {
            let _ = self.to_app.try_send(Err(e));
        }
        // Dropping the sender is the reader's end of stream (after what is queued).
        let (dead, _) = mpsc::channel(1);
        self.to_app = dead;
    }

    fn add_credit(&mut self, n: usize) {
        self.credit.add_permits(n);
    }

    fn fail_writes(&mut self, _why: &str) {
        self.credit.close();
        self.settle(Ack::Failed);
    }

    fn acked(&mut self) {
        self.settle(Ack::Acked);
    }
}

impl TokioEnd {
    /// The first outcome of the writing side wins.
    fn settle(&self, to: Ack) {
        self.ack.send_if_modified(|a| {
            let fresh = *a == Ack::Waiting;
            if fresh {
                *a = to;
            }
            fresh
        });
    }
}

/// tokio's side of the core's stream glue: bounded channels to streams and listeners.
pub(crate) struct TokioPorts {
    /// Weak, so the node task still ends when every handle to it is gone.
    commands: mpsc::WeakSender<Command>,
}

impl TokioPorts {
    pub(crate) fn new(commands: mpsc::WeakSender<Command>) -> Self {
        Self { commands }
    }
}

impl StreamPorts for TokioPorts {
    type Channels = TokioChannels;
    type End = TokioEnd;
    type Stream = MeshStream;
    type Accept = mpsc::Sender<MeshStream>;

    fn open(&mut self, id: StreamHandle, remote: Option<&Addr>) -> Option<(TokioEnd, MeshStream)> {
        let commands = self.commands.upgrade()?;
        let (to_app, rx) = mpsc::channel(READ_QUEUE);
        let paused = Arc::new(AtomicBool::new(false));
        let credit = Arc::new(Semaphore::new(WRITE_CREDIT));
        let (ack, ack_rx) = watch::channel(Ack::Waiting);
        let end = TokioEnd {
            to_app,
            paused: paused.clone(),
            credit: credit.clone(),
            ack,
        };
        let stream = MeshStream {
            id,
            remote: remote.cloned(),
            commands,
            rx,
            read_buf: Bytes::new(),
            paused,
            credit,
            ack: ack_rx,
            writing: None,
            shutting: None,
            shut: false,
        };
        Some((end, stream))
    }

    fn offer(&mut self, accept: &Self::Accept, stream: MeshStream) -> bool {
        accept.try_send(stream).is_ok()
    }
}

/// The stream half of the node task: the core's glue with tokio's ports.
pub(crate) type StreamSide = side::StreamSide<TokioPorts>;

type Pending = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A byte stream to a service on a mesh node (QUIC underneath). Reading side and writing side
/// are independent: `shutdown` finishes ours (the peer reads EOF) and reading goes on.
pub struct MeshStream {
    id: StreamHandle,
    remote: Option<Addr>,
    commands: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Chunk>,
    read_buf: Bytes,
    paused: Arc<AtomicBool>,
    credit: Arc<Semaphore>,
    ack: watch::Receiver<Ack>,
    writing: Option<(Pending, usize)>,
    shutting: Option<Pending>,
    /// The shutdown was handed to the node task.
    shut: bool,
}

impl std::fmt::Debug for MeshStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshStream")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .finish()
    }
}

impl MeshStream {
    /// The other end.
    pub fn remote(&self) -> Option<&Addr> {
        self.remote.as_ref()
    }

    /// The next chunk the stream delivers, without copying it: `Ok(None)` at the end of the
    /// stream. Bytes a `poll_read` left over come first. Same back-pressure as `poll_read`:
    /// the node task reads from QUIC only while this stream's queue has room.
    pub fn poll_read_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        if !self.read_buf.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.read_buf))));
        }
        let chunk = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(Ok(None)),
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, e)));
            }
            Poll::Ready(Some(Ok(b))) => b,
        };
        self.resume_if_paused();
        Poll::Ready(Ok(Some(chunk)))
    }

    /// Hands `data` to the stream without copying it, in chunks of at most 64 KiB, each once
    /// write credit allows (the same credit as `poll_write`). `data` shrinks as chunks are
    /// taken; `Ready(Ok)` once it is empty and every chunk has been handed over. A chunk
    /// taken stays taken when this returns `Pending`: call again (with what is left) until
    /// it is ready.
    pub fn poll_write_bytes(
        &mut self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.writing.is_none() {
                if data.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let chunk = data.split_to(data.len().min(WRITE_CHUNK));
                self.start_write(chunk);
            }
            let Some((fut, _)) = self.writing.as_mut() else {
                return Poll::Ready(Err(closed()));
            };
            let r = std::task::ready!(fut.as_mut().poll(cx));
            self.writing = None;
            r?;
        }
    }

    /// Queues the write of `data` (at most [`WRITE_CHUNK`]): credit first, then the command.
    fn start_write(&mut self, data: Bytes) {
        let n = data.len();
        let (credit, commands, id) = (self.credit.clone(), self.commands.clone(), self.id);
        let fut: Pending = Box::pin(async move {
            let permit: OwnedSemaphorePermit = credit
                .acquire_many_owned(n as u32)
                .await
                .map_err(|_| closed())?;
            permit.forget();
            commands
                .send(Command::Stream(StreamCommand::Write(id, data)))
                .await
                .map_err(|_| closed())
        });
        self.writing = Some((fut, n));
    }

    /// Finishes the writing side, as `shutdown` does, then waits until the peer has
    /// acknowledged everything written, FIN included: only then has the whole payload
    /// arrived at the peer's node. Fails when the stream failed or closed first (a cut link,
    /// the peer gone), so a cut after the half-close is not mistaken for a delivery.
    /// Reading goes on meanwhile, on another task if need be (`tokio::io::split`).
    pub async fn finish_acked(&mut self) -> io::Result<()> {
        let acked = self.acked();
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_shutdown(cx)).await?;
        acked.await
    }

    /// The wait of [`Self::finish_acked`] on its own, for a stream split into halves: made
    /// before the split, awaited after the writing half's `shutdown`. Resolves once the peer
    /// has acknowledged everything written, FIN included; fails when the stream failed or
    /// closed first.
    pub fn acked(&self) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let mut ack = self.ack.clone();
        async move {
            match ack.wait_for(|a| *a != Ack::Waiting).await.map(|a| *a) {
                Ok(Ack::Acked) => Ok(()),
                _ => Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "mesh stream ended before the peer acknowledged everything written",
                )),
            }
        }
    }

    /// The node task stopped reading because our queue was full: there is room now.
    fn resume_if_paused(&self) {
        if self.paused.swap(false, Ordering::AcqRel) {
            let _ = self
                .commands
                .try_send(Command::Stream(StreamCommand::Resume(self.id)));
        }
    }
}

impl AsyncRead for MeshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read_buf.is_empty() {
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, e)));
                }
                Poll::Ready(Some(Ok(b))) => this.read_buf = b,
            }
            this.resume_if_paused();
        }
        let n = this.read_buf.len().min(buf.remaining());
        buf.put_slice(&this.read_buf.split_to(n));
        Poll::Ready(Ok(()))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "mesh stream closed")
}

impl AsyncWrite for MeshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.writing.is_none() {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let n = buf.len().min(WRITE_CHUNK);
            this.start_write(Bytes::copy_from_slice(buf.get(..n).unwrap_or_default()));
        }
        let Some((fut, n)) = this.writing.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        let n = *n;
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.writing = None;
                Poll::Ready(r.map(|()| n))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes handed over are QUIC's to deliver; there is nothing to flush here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.shut {
            return Poll::Ready(Ok(()));
        }
        if this.shutting.is_none() {
            let (commands, id) = (this.commands.clone(), this.id);
            this.shutting = Some(Box::pin(async move {
                commands
                    .send(Command::Stream(StreamCommand::Shutdown(id)))
                    .await
                    .map_err(|_| closed())
            }));
        }
        let r = match this.shutting.as_mut() {
            Some(f) => std::task::ready!(f.as_mut().poll(cx)),
            None => Ok(()),
        };
        // A finished future must not be polled again: a second shutdown is done at once.
        this.shutting = None;
        this.shut = r.is_ok();
        Poll::Ready(r)
    }
}

impl Drop for MeshStream {
    fn drop(&mut self) {
        let cmd = Command::Stream(StreamCommand::Drop(self.id));
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.commands.try_send(cmd) {
            let commands = self.commands.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = commands.send(cmd).await;
                });
            }
        }
    }
}

/// Streams accepted on a listening mesh service.
#[derive(Debug)]
pub struct StreamListener {
    service: ServiceName,
    rx: mpsc::Receiver<MeshStream>,
}

impl StreamListener {
    /// The service listened on.
    pub fn service(&self) -> ServiceName {
        self.service
    }

    /// The next accepted stream; `None` once the node stops.
    pub async fn accept(&mut self) -> Option<MeshStream> {
        self.rx.recv().await
    }
}

impl NodeHandle {
    /// Opens a stream to `service` on `node`, with the QUIC client TLS given (the insecure
    /// config for ConnType 1 services, a user config for ConnType 2).
    pub async fn dial(
        &self,
        node: &str,
        service: &str,
        tls: receptor_core::stream::quinn_proto::ClientConfig,
        server_name: &str,
    ) -> Result<MeshStream, DialFailure> {
        let (reply, rx) = oneshot::channel();
        let cmd = StreamCommand::dial(node, service, tls, server_name, reply);
        self.commands
            .send(Command::Stream(cmd))
            .await
            .map_err(|_| DialFailure::NodeStopped)?;
        rx.await.map_err(|_| DialFailure::NodeStopped)?
    }

    /// Listens for streams on `service`, optionally advertising it.
    pub async fn listen_stream(
        &self,
        service: &str,
        tls: ServerTls,
        advertise: Option<Advertise>,
    ) -> Result<StreamListener, String> {
        let (reply, rx) = oneshot::channel();
        let (accept, accepted) = mpsc::channel(ACCEPT_QUEUE);
        let cmd = StreamCommand::listen(service, tls, advertise, accept, reply);
        let gone = "the node has stopped";
        let sent = self.commands.send(Command::Stream(cmd)).await;
        sent.map_err(|_| gone.to_owned())?;
        let bound = rx.await.map_err(|_| gone.to_owned())?;
        let service = bound.map_err(|e| e.to_string())?;
        Ok(StreamListener {
            service,
            rx: accepted,
        })
    }
}
