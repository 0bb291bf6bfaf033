//! Reading, writing and closing streams.

use std::time::Instant;

use bytes::Bytes;
use quinn_proto::{ReadError, VarInt, WriteError};

use super::{CLOSE_NORMAL, Read, State, StreamError, StreamHandle, Streams};

impl Streams {
    fn open_conn(&mut self, id: StreamHandle) -> Result<&mut super::Conn, StreamError> {
        let c = self.conns.get_mut(&id).ok_or(StreamError::Unknown)?;
        if c.app_closed {
            return Err(StreamError::Unknown);
        }
        if c.state != State::Open {
            return Err(StreamError::NotOpen);
        }
        Ok(c)
    }

    /// Writes as much of `data` as flow control allows now; `Ok(0)` means blocked (wait for
    /// [`StreamEvent::Writable`](super::StreamEvent::Writable)).
    pub fn write(
        &mut self,
        now: Instant,
        id: StreamHandle,
        data: &[u8],
    ) -> Result<usize, StreamError> {
        let c = self.open_conn(id)?;
        let s = c.stream.ok_or(StreamError::NotOpen)?;
        let r = c.conn.send_stream(s).write(data);
        let n = match r {
            Ok(n) => n,
            Err(WriteError::Blocked) => 0,
            Err(e) => return Err(StreamError::Failed(e.to_string())),
        };
        self.mark(now, id);
        Ok(n)
    }

    /// Like [`Streams::write`] without a copy: QUIC keeps the chunks themselves until they
    /// are acknowledged. Takes chunks from the front of `data` as flow control allows; a
    /// chunk taken whole is left empty, one taken in part keeps its rest. Returns the bytes
    /// taken; `Ok(0)` means blocked.
    pub fn write_chunks(
        &mut self,
        now: Instant,
        id: StreamHandle,
        data: &mut [Bytes],
    ) -> Result<usize, StreamError> {
        let c = self.open_conn(id)?;
        let s = c.stream.ok_or(StreamError::NotOpen)?;
        let n = match c.conn.send_stream(s).write_chunks(data) {
            Ok(w) => w.bytes,
            Err(WriteError::Blocked) => 0,
            Err(e) => return Err(StreamError::Failed(e.to_string())),
        };
        self.mark(now, id);
        Ok(n)
    }

    /// Reads what has arrived, up to `max` bytes.
    pub fn read(
        &mut self,
        now: Instant,
        id: StreamHandle,
        max: usize,
    ) -> Result<Read, StreamError> {
        if let Some((tail, fin)) = self.leftovers.get_mut(&id) {
            return Ok(match tail.pop_front() {
                Some(mut b) => {
                    if b.len() > max {
                        tail.push_front(b.split_off(max));
                    }
                    Read::Data(b)
                }
                None => {
                    let fin = *fin;
                    self.leftovers.remove(&id);
                    if fin {
                        Read::Eof
                    } else {
                        return Err(StreamError::Failed("connection closed".into()));
                    }
                }
            });
        }
        let c = self.open_conn(id)?;
        if let Some(mut first) = c.first.take() {
            if first.len() > max {
                c.first = Some(first.split_off(max));
            }
            return Ok(Read::Data(first));
        }
        let s = c.stream.ok_or(StreamError::NotOpen)?;
        let mut recv = c.conn.recv_stream(s);
        let mut chunks = recv
            .read(true)
            .map_err(|e| StreamError::Failed(e.to_string()))?;
        let r = chunks.next(max);
        // Finalizing hands flow-control credit back; the drive below sends it.
        let _ = chunks.finalize();
        let out = match r {
            Ok(Some(chunk)) => Read::Data(chunk.bytes),
            Ok(None) => Read::Eof,
            Err(ReadError::Blocked) => Read::Blocked,
            Err(ReadError::Reset(code)) => {
                return Err(StreamError::Failed(format!(
                    "stream reset by peer: code {code}"
                )));
            }
        };
        self.mark(now, id);
        Ok(out)
    }

    /// Finishes our sending side (FIN); the peer reads the end of the stream. Reading goes on.
    pub fn finish(&mut self, now: Instant, id: StreamHandle) -> Result<(), StreamError> {
        let c = self.open_conn(id)?;
        let s = c.stream.ok_or(StreamError::NotOpen)?;
        c.conn
            .send_stream(s)
            .finish()
            .map_err(|e| StreamError::Failed(e.to_string()))?;
        self.drive(now, id);
        Ok(())
    }

    /// Closes the connection normally at `at`, unless the peer closes it first: for a side
    /// that finished both directions but whose peer may still be reading (what QUIC has
    /// acknowledged is not yet read by the peer's application, and a close discards it).
    pub fn close_at(&mut self, id: StreamHandle, at: Instant) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.linger = Some(at);
        }
        self.reindex(id);
    }

    /// Closes the connection (application code 0, "normal close", as Go's `CloseConnection`).
    /// No further events come for it.
    pub fn close(&mut self, now: Instant, id: StreamHandle) {
        self.leftovers.remove(&id);
        if let Some(c) = self.conns.get_mut(&id) {
            c.app_closed = true;
            c.conn.close(
                now,
                VarInt::from_u32(CLOSE_NORMAL),
                Bytes::from_static(b"normal close"),
            );
        }
        self.drive(now, id);
    }

    /// Closes every connection, streams not yet accepted or opened included (the node is
    /// stopping). No further events come for any.
    pub fn close_all(&mut self, now: Instant) {
        let ids: Vec<StreamHandle> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(now, id);
        }
    }
}
