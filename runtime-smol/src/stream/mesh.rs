//! [`MeshStream`]: the application's end of one mesh stream.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_channel::TrySendError;
use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncWrite};
use receptor_core::Addr;
use receptor_core::stream::StreamHandle;

use super::shared::Shared;
use super::{Mailbox, StreamCommand};
use crate::apps::Command;

/// Largest chunk one write hands over.
const WRITE_CHUNK: usize = 64 * 1024;

/// A command the node task's queue had no room for, and what the write reports once it is
/// handed over (0 for a shutdown).
struct Handing {
    send: Pin<Box<dyn Future<Output = bool> + Send>>,
    written: usize,
}

/// A byte stream to a service on a mesh node (QUIC underneath). The reading and writing
/// sides are independent: [`poll_close`](AsyncWrite::poll_close) finishes ours (the peer
/// reads EOF) and reading goes on. Dropping the stream closes it once what was written has
/// been acknowledged. While it lives it keeps the node running, as a
/// [`NodeHandle`](crate::NodeHandle) does.
pub struct MeshStream {
    id: StreamHandle,
    remote: Option<Addr>,
    mailbox: Mailbox,
    shared: Arc<Shared>,
    handing: Option<Handing>,
    /// `poll_close` handed the shutdown over: no more writes.
    write_closed: bool,
}

impl std::fmt::Debug for MeshStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshStream")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .finish()
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "mesh stream closed")
}

impl MeshStream {
    pub(super) fn new(
        id: StreamHandle,
        remote: Option<Addr>,
        mailbox: Mailbox,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            id,
            remote,
            mailbox,
            shared,
            handing: None,
            write_closed: false,
        }
    }

    /// The other end.
    pub fn remote(&self) -> Option<&Addr> {
        self.remote.as_ref()
    }

    /// Resolves once the peer has acknowledged everything this stream wrote, FIN included
    /// (so after [`close`](futures_lite::io::AsyncWriteExt::close): all of it arrived there),
    /// or fails once the writing side ended without that. Take it before splitting the
    /// stream; it lives on its own.
    pub fn acked(&self) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let shared = self.shared.clone();
        std::future::poll_fn(move |cx| shared.poll_acked(cx))
    }

    /// Hands a command to the node task; `written` is what the write reports once it is.
    fn hand_over(
        &mut self,
        cx: &mut Context<'_>,
        cmd: StreamCommand,
        written: usize,
    ) -> Poll<io::Result<usize>> {
        let commands = &self.mailbox.commands;
        match commands.try_send(Command::Stream(cmd)) {
            Ok(()) => Poll::Ready(Ok(written)),
            Err(TrySendError::Closed(_)) => Poll::Ready(Err(closed())),
            Err(TrySendError::Full(cmd)) => {
                let commands = commands.clone();
                let send = Box::pin(async move { commands.send(cmd).await.is_ok() });
                self.handing = Some(Handing { send, written });
                self.poll_handing(cx)
            }
        }
    }

    /// Waits until a command the queue had no room for is handed over.
    fn poll_handing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(h) = self.handing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        let sent = ready!(h.send.as_mut().poll(cx));
        let written = h.written;
        self.handing = None;
        Poll::Ready(if sent { Ok(written) } else { Err(closed()) })
    }
}

impl AsyncRead for MeshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let got = ready!(self.shared.poll_read(cx, buf))?;
        if got.resume {
            // The node task stopped reading because our queue was full: there is room now.
            self.mailbox.post(StreamCommand::Resume(self.id));
        }
        Poll::Ready(Ok(got.n))
    }
}

impl AsyncWrite for MeshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.write_closed {
            return Poll::Ready(Err(closed()));
        }
        // A write the queue had no room for: report it once handed over (the caller polls
        // again with the same bytes, which it then knows were taken).
        if this.handing.is_some() {
            return this.poll_handing(cx);
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(this.shared.poll_credit(cx, buf.len().min(WRITE_CHUNK)))?;
        let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
        this.hand_over(cx, StreamCommand::Write(this.id, data), n)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes handed over are QUIC's to deliver; only a hand-over in progress is waited for.
        ready!(self.poll_handing(cx))?;
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Writes handed over first, so the FIN comes after them.
        ready!(this.poll_handing(cx))?;
        if this.write_closed {
            return Poll::Ready(Ok(()));
        }
        this.write_closed = true;
        ready!(this.hand_over(cx, StreamCommand::Shutdown(this.id), 0))?;
        Poll::Ready(Ok(()))
    }
}

impl Drop for MeshStream {
    fn drop(&mut self) {
        // A write or shutdown still being handed over goes first: the same queue keeps them
        // in order.
        if let Some(h) = self.handing.take() {
            let id = self.id;
            let commands = self.mailbox.commands.clone();
            let done = async move {
                if h.send.await {
                    let _ = commands
                        .send(Command::Stream(StreamCommand::Drop(id)))
                        .await;
                }
            };
            self.mailbox.executor.spawn(done).detach();
            return;
        }
        self.mailbox.post(StreamCommand::Drop(self.id));
    }
}
