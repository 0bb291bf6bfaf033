//! Copying both ways between a local byte stream and a mesh stream with half-close, like
//! `tokio::io::copy_bidirectional`, but without copying through a bridge buffer: bytes read
//! from the local side go to the mesh stream as the very buffer they were read into, and the
//! chunks the mesh stream delivers are written to the local side as they are. A direction
//! holds a read buffer only while data is moving: when its reader has nothing, the buffer is
//! let go, so an idle bridge costs a few hundred bytes, which keeps an open proxied stream
//! small.

use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use receptor_tokio::MeshStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Read buffer of the local→mesh direction while data flows (Go's `NormalBufferSize`).
const BUFFER: usize = 256 * 1024;
/// Below this much room left in the read buffer, the next read gets a fresh one.
const MIN_READ: usize = 8 * 1024;
/// Smaller pieces are copied: on the way out, so that a small piece held by QUIC until it is
/// acknowledged does not hold a whole read buffer (credit counts bytes, not buffers); on the
/// way in, so that a peer's small packets (Go's are 1200 bytes) are written to the local side
/// a buffer at a time, not a system call each.
const COPY_BELOW: usize = 16 * 1024;

/// The mesh side of a bridge: chunks in and out without copies.
pub(super) trait Chunks {
    /// The next chunk read; `None` at the end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>>;
    /// Hands all of `data` over (it shrinks as it is taken).
    fn poll_send(&mut self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<io::Result<()>>;
    /// Finishes the writing side.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl Chunks for MeshStream {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        self.poll_read_bytes(cx)
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<io::Result<()>> {
        self.poll_write_bytes(cx, data)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self).poll_shutdown(cx)
    }
}

/// Local → mesh: what was read and not yet handed over.
#[derive(Default)]
struct Up {
    buf: BytesMut,
    pending: Bytes,
    eof: bool,
    done: bool,
    moved: u64,
}

impl Up {
    fn poll<R, M>(&mut self, cx: &mut Context<'_>, r: &mut R, m: &mut M) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + Unpin + ?Sized,
        M: Chunks + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(self.moved));
        }
        loop {
            ready!(m.poll_send(cx, &mut self.pending))?;
            if self.eof {
                ready!(m.poll_finish(cx))?;
                self.done = true;
                return Poll::Ready(Ok(self.moved));
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ {
                // The old buffer's bytes belong to the mesh stream now; this is a new one.
                self.buf = BytesMut::with_capacity(BUFFER);
            }
            // `read_buf` keeps no state of its own, so a fresh future per poll is fine.
            let read = pin!(r.read_buf(&mut self.buf)).poll(cx);
            match read {
                Poll::Pending => {
                    // Nothing to read for now: let the buffer go while idle.
                    self.buf = BytesMut::new();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => self.eof = true,
                Poll::Ready(Ok(n)) => {
                    self.moved += n as u64;
                    self.pending = if n < COPY_BELOW {
                        let small = Bytes::copy_from_slice(&self.buf);
                        self.buf.clear();
                        small
                    } else {
                        self.buf.split().freeze()
                    };
                }
            }
        }
    }
}

/// Mesh → local: the chunk being written and how far it got.
#[derive(Default)]
struct Down {
    chunk: Bytes,
    /// A chunk read while gathering small ones that did not fit; written after `chunk`.
    next: Bytes,
    eof: bool,
    done: bool,
    unflushed: bool,
    moved: u64,
}

impl Down {
    fn poll<M, W>(&mut self, cx: &mut Context<'_>, m: &mut M, w: &mut W) -> Poll<io::Result<u64>>
    where
        M: Chunks + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(self.moved));
        }
        loop {
            loop {
                while !self.chunk.is_empty() {
                    let n = ready!(Pin::new(&mut *w).poll_write(cx, &self.chunk))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    let _ = self.chunk.split_to(n.min(self.chunk.len()));
                    self.moved += n as u64;
                    self.unflushed = true;
                }
                if self.next.is_empty() {
                    break;
                }
                self.chunk = std::mem::take(&mut self.next);
            }
            if self.eof {
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(self.moved));
            }
            match m.poll_chunk(cx) {
                Poll::Pending => {
                    // Nothing to read for now: make sure what was written goes out (TLS
                    // streams hold records until flushed).
                    if self.unflushed {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(None)) => self.eof = true,
                Poll::Ready(Ok(Some(c))) if c.len() >= COPY_BELOW => self.chunk = c,
                Poll::Ready(Ok(Some(c))) => self.gather(cx, m, c)?,
            }
        }
    }

    /// Copies `first` and the small chunks ready after it into one buffer, up to [`BUFFER`];
    /// a chunk that does not fit waits in `next`.
    fn gather<M: Chunks + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        m: &mut M,
        first: Bytes,
    ) -> io::Result<()> {
        let mut buf = BytesMut::with_capacity(BUFFER);
        buf.extend_from_slice(&first);
        while buf.len() < BUFFER {
            match m.poll_chunk(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(None)) => {
                    self.eof = true;
                    break;
                }
                Poll::Ready(Ok(Some(c))) if buf.len() + c.len() <= BUFFER => {
                    buf.extend_from_slice(&c);
                }
                Poll::Ready(Ok(Some(c))) => {
                    self.next = c;
                    break;
                }
            }
        }
        self.chunk = buf.freeze();
        Ok(())
    }
}

/// Copies `local` to `mesh` and `mesh` to `local` until both directions end. When one side's
/// reader ends, the other side's writer is shut down and the other direction goes on. Returns
/// the bytes moved each way; the first error ends both.
pub(super) async fn copy_both<L, M>(local: &mut L, mesh: &mut M) -> io::Result<(u64, u64)>
where
    L: AsyncRead + AsyncWrite + Unpin + ?Sized,
    M: Chunks + ?Sized,
{
    let (mut up, mut down) = (Up::default(), Down::default());
    poll_fn(|cx| {
        let there = up.poll(cx, local, mesh)?;
        let back = down.poll(cx, mesh, local)?;
        let there = ready!(there);
        let back = ready!(back);
        Poll::Ready(Ok((there, back)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use tokio::io::{AsyncWriteExt, DuplexStream, ReadBuf, duplex};

    /// A duplex stream seen as chunks of at most the size given (copies, fine in a test).
    struct Chunked(DuplexStream, usize);

    impl Chunks for Chunked {
        fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
            let mut buf = vec![0u8; self.1];
            let mut rb = ReadBuf::new(&mut buf);
            ready!(Pin::new(&mut self.0).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            Poll::Ready(Ok((!got.is_empty()).then(|| Bytes::copy_from_slice(got))))
        }

        fn poll_send(&mut self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<io::Result<()>> {
            while !data.is_empty() {
                let n = ready!(Pin::new(&mut self.0).poll_write(cx, data))?;
                let _ = data.split_to(n);
            }
            Poll::Ready(Ok(()))
        }

        fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn copies_both_ways_with_half_close() {
        // Small chunks are gathered, large ones written as they are.
        for chunk in [1000, 40_000] {
            copies_both_ways(chunk).await;
        }
    }

    async fn copies_both_ways(chunk: usize) {
        let (mut client, mut near) = duplex(1 << 16);
        let (far, mut server) = duplex(1 << 16);
        let bridge = tokio::spawn(async move {
            let mut far = Chunked(far, chunk);
            copy_both(&mut near, &mut far).await
        });
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert!(got == data);
        // The client half-closed; the other direction still works.
        let reply: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        server.write_all(&reply).await.unwrap();
        server.shutdown().await.unwrap();
        assert!(writer.await.unwrap() == reply);
        let (there, back) = bridge.await.unwrap().unwrap();
        assert_eq!((there, back), (300_000, 200_000));
    }

    #[tokio::test]
    async fn an_idle_bridge_holds_no_buffer() {
        let (_client, mut near) = duplex(1024);
        let (far, _server) = duplex(1024);
        let mut far = Chunked(far, 1000);
        let mut up = Up::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(up.poll(&mut cx, &mut near, &mut far).is_pending());
        // It looked for data with a buffer and let it go.
        assert_eq!(up.buf.capacity(), 0);
        let mut both = std::pin::pin!(copy_both(&mut near, &mut far));
        assert!(both.as_mut().poll(&mut cx).is_pending());
    }
}
