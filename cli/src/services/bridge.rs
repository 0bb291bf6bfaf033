//! Copying both ways between two byte streams with half-close, like
//! `tokio::io::copy_bidirectional`, but a direction holds its 64 KiB buffer only while data is
//! moving: when its reader has nothing, the buffer goes back to a small per-thread pool. An
//! idle bridge then costs a few hundred bytes instead of two buffers, which is most of the
//! memory an open proxied stream would otherwise take.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Copy buffer per direction while data flows (Go's `NormalBufferSize`).
const BUFFER: usize = 64 * 1024;
/// Idle buffers kept per thread for the next direction that needs one.
const POOL: usize = 16;

thread_local! {
    static FREE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

fn take_buffer() -> Box<[u8]> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; BUFFER].into_boxed_slice())
}

fn give_back(buf: Box<[u8]>) {
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < POOL {
            f.push(buf);
        }
    });
}

/// One direction: what was read and not yet written, and how far it got.
#[derive(Default)]
struct Half {
    buf: Option<Box<[u8]>>,
    pos: usize,
    end: usize,
    eof: bool,
    done: bool,
    unflushed: bool,
    moved: u64,
}

impl Half {
    /// Moves bytes from `r` to `w` until `r` ends, then shuts `w` down; returns the count.
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(self.moved));
        }
        loop {
            if let Some(buf) = &self.buf {
                while self.pos < self.end {
                    let chunk = buf.get(self.pos..self.end).unwrap_or_default();
                    let n = ready!(Pin::new(&mut *w).poll_write(cx, chunk))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    self.pos += n;
                    self.moved += n as u64;
                    self.unflushed = true;
                }
            }
            if self.eof {
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(self.moved));
            }
            let mut buf = self.buf.take().unwrap_or_else(take_buffer);
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                Poll::Pending => {
                    give_back(buf);
                    // Nothing to read for now: make sure what was written goes out (TLS
                    // streams hold records until flushed).
                    if self.unflushed {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => {
                    give_back(buf);
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        self.eof = true;
                        give_back(buf);
                    } else {
                        (self.pos, self.end) = (0, n);
                        self.buf = Some(buf);
                    }
                }
            }
        }
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
    }
}

/// Copies `a` to `b` and `b` to `a` until both directions end. When one side's reader ends,
/// the other side's writer is shut down and the other direction goes on. Returns the bytes
/// moved each way; the first error ends both.
pub(super) async fn copy_both<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (mut ab, mut ba) = (Half::default(), Half::default());
    poll_fn(|cx| {
        let there = ab.poll(cx, a, b)?;
        let back = ba.poll(cx, b, a)?;
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn copies_both_ways_with_half_close_and_no_idle_buffers() {
        let (mut client, mut near) = duplex(1 << 16);
        let (mut far, mut server) = duplex(1 << 16);
        let bridge = tokio::spawn(async move { copy_both(&mut near, &mut far).await });
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
        server.write_all(b"reply").await.unwrap();
        server.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"reply");
        let (there, back) = bridge.await.unwrap().unwrap();
        assert_eq!((there, back), (300_000, 5));
    }

    #[tokio::test]
    async fn an_idle_bridge_holds_no_buffer() {
        FREE.with(|f| f.borrow_mut().clear());
        let (_client, mut near) = duplex(1024);
        let (mut far, _server) = duplex(1024);
        let mut both = std::pin::pin!(copy_both(&mut near, &mut far));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(both.as_mut().poll(&mut cx).is_pending());
        // Both directions looked for data with a buffer and gave it back.
        assert_eq!(FREE.with(|f| f.borrow().len()), 1);
    }
}
