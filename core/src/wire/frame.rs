//! Stream-backend framing: each message is preceded by its length as a little-endian u16
//! (Go `pkg/framer`). Datagram backends carry one message per datagram and skip this.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest message any backend may carry: the u16 length prefix cannot say more.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// The size of the buffers [`Encoded::from_parts_in`] carves messages from.
pub(crate) const ARENA_CHUNK: usize = 8192;

/// The largest message a UDP backend may carry (Go `UDPMaxPacketLen`).
pub const MAX_UDP_MESSAGE_LEN: usize = 65507;

/// One encoded message, built once with room for the stream length prefix in front.
///
/// Stream links write [`Encoded::stream`] (prefix + message); datagram links write
/// [`Encoded::datagram`] (the message alone). Both are cheap slices of one buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded(Bytes);

impl Encoded {
    /// Starts a buffer for a message of about `capacity` bytes, prefix reserved.
    pub(crate) fn builder(capacity: usize) -> BytesMut {
        let mut b = BytesMut::with_capacity(capacity + 2);
        b.put_u16_le(0);
        b
    }

    /// Finishes a buffer made by [`Encoded::builder`]: writes the prefix.
    ///
    /// Returns `None` for an empty message or one over [`MAX_MESSAGE_LEN`]: Go crashes on the
    /// first and desynchronises on the second, so neither may be sent.
    pub(crate) fn finish(mut buf: BytesMut) -> Option<Self> {
        let len = buf.len().checked_sub(2)?;
        if len == 0 || len > MAX_MESSAGE_LEN {
            return None;
        }
        let prefix = (len as u16).to_le_bytes();
        buf.get_mut(..2)?.copy_from_slice(&prefix);
        Some(Self(buf.freeze()))
    }

    /// The message made of `parts` one after the other, built in place: a small one in a
    /// single allocation with its reference count (for routing updates, which are
    /// forwarded to every neighbour and read by each).
    pub(crate) fn from_parts(parts: &[&[u8]]) -> Option<Self> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 || len > MAX_MESSAGE_LEN {
            return None;
        }
        // The smallest size that holds it: what is copied and allocated, and what the
        // readers' caches fetch, is no larger than it needs to be.
        let framed = match len + 2 {
            n if n <= 62 => inline::<62>(parts, len),
            n if n <= 126 => inline::<126>(parts, len),
            n if n <= 190 => inline::<190>(parts, len),
            n if n <= 254 => inline::<254>(parts, len),
            _ => None,
        };
        if let Some(b) = framed {
            return Some(Self(b));
        }
        let mut b = Self::builder(len);
        for p in parts {
            b.extend_from_slice(p);
        }
        Self::finish(b)
    }

    /// Like [`Encoded::from_parts`], carved from `arena`: small messages share one buffer
    /// (a fresh one of [`ARENA_CHUNK`] bytes when it is full), so forwarding a routing
    /// update allocates nothing in the common case. A buffer lives until its last message
    /// is dropped; messages are short-lived, and larger ones get their own.
    pub(crate) fn from_parts_in(arena: &mut BytesMut, parts: &[&[u8]]) -> Option<Self> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 || len + 2 > ARENA_CHUNK / 8 {
            return Self::from_parts(parts);
        }
        Some(Self(carve(arena, len as u16, len + 2, |b| {
            for p in parts {
                b.extend_from_slice(p);
            }
        })))
    }

    /// The reject message, framed: `03 00 03 5b 5d`.
    pub(crate) fn reject() -> Self {
        Self(Bytes::from_static(&[3, 0, 3, b'[', b']']))
    }

    /// Wraps message bytes that were built elsewhere (e.g. a service advert forwarded as is).
    pub fn from_message(msg: &[u8]) -> Option<Self> {
        let mut b = Self::builder(msg.len());
        b.extend_from_slice(msg);
        Self::finish(b)
    }

    /// The framed bytes for a stream backend (TCP, TLS).
    pub fn stream(&self) -> Bytes {
        self.0.clone()
    }

    /// The bare message for a datagram backend (UDP, WebSocket).
    pub fn datagram(&self) -> Bytes {
        self.0.slice(2..)
    }

    /// Like [`Encoded::stream`], without a reference-count round trip.
    pub fn into_stream(self) -> Bytes {
        self.0
    }

    /// Like [`Encoded::datagram`], without a reference-count round trip.
    pub fn into_datagram(mut self) -> Bytes {
        self.0.advance(2);
        self.0
    }

    /// The bare message bytes.
    pub fn message(&self) -> &[u8] {
        self.0.get(2..).unwrap_or_default()
    }
}

/// A small message kept in one allocation with its reference count (`Bytes::from_owner`):
/// routing updates are flooded to every neighbour and read by each, and one allocation
/// instead of a buffer plus a shared header halves what a reader has to fetch.
struct Inline<const N: usize> {
    len: u16,
    buf: [u8; N],
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(..self.len as usize).unwrap_or_default()
    }
}

/// `parts` (`len` bytes in all) framed in an [`Inline`] of size `N`, if they fit.
fn inline<const N: usize>(parts: &[&[u8]], len: usize) -> Option<Bytes> {
    let mut small = Inline {
        len: u16::try_from(len + 2).ok()?,
        buf: [0; N],
    };
    small
        .buf
        .get_mut(..2)?
        .copy_from_slice(&(len as u16).to_le_bytes());
    let mut at = 2;
    for p in parts {
        small.buf.get_mut(at..at + p.len())?.copy_from_slice(p);
        at += p.len();
    }
    Some(Bytes::from_owner(small))
}

/// Splits a byte stream into messages. Bounded: it never holds more than one partial frame
/// (at most 65537 bytes).
#[derive(Debug, Default)]
pub struct Deframer {
    partial: BytesMut,
}

impl Deframer {
    /// A deframer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held back waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds received bytes; whole messages are appended to `out`, as slices of `data` where
    /// they arrived whole (no copy).
    pub fn push(&mut self, mut data: Bytes, out: &mut Vec<Bytes>) {
        if !self.partial.is_empty() {
            // Complete the pending header, then the pending body, from the new bytes.
            if self.partial.len() < 2 {
                let take = (2 - self.partial.len()).min(data.len());
                self.partial.extend_from_slice(&data.split_to(take));
                if self.partial.len() < 2 {
                    return;
                }
            }
            let want = 2 + frame_len(&self.partial);
            let take = (want - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data.split_to(take));
            if self.partial.len() < want {
                return;
            }
            let mut whole = std::mem::take(&mut self.partial).freeze();
            whole.advance(2);
            out.push(whole);
        }
        while data.len() >= 2 {
            let want = 2 + frame_len(&data);
            if data.len() < want {
                break;
            }
            let mut frame = data.split_to(want);
            frame.advance(2);
            out.push(frame);
        }
        if !data.is_empty() {
            self.partial.extend_from_slice(&data);
        }
    }
}

/// `size` bytes carved from `arena` (a fresh [`ARENA_CHUNK`]-byte buffer when it has less
/// room left): the little-endian length `prefix`, then what `fill` writes (`size - 2` bytes).
pub(crate) fn carve(
    arena: &mut BytesMut,
    prefix: u16,
    size: usize,
    fill: impl FnOnce(&mut BytesMut),
) -> Bytes {
    if arena.capacity() < size {
        *arena = BytesMut::with_capacity(ARENA_CHUNK);
    }
    arena.put_u16_le(prefix);
    fill(arena);
    arena.split().freeze()
}

/// The message `data` carries, if it is exactly one stream frame.
pub(crate) fn whole_frame(data: &[u8]) -> Option<&[u8]> {
    let msg = data.get(2..)?;
    (frame_len(data) == msg.len()).then_some(msg)
}

fn frame_len(b: &[u8]) -> usize {
    match b {
        [lo, hi, ..] => u16::from_le_bytes([*lo, *hi]) as usize,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_carved_from_an_arena_are_whole_and_independent() {
        let mut arena = BytesMut::new();
        let mut made = Vec::new();
        // Enough to fill several buffers, sizes up to past the carving limit.
        for i in 0..400usize {
            let body = vec![(i % 251) as u8; 1 + (i * 7) % (ARENA_CHUNK / 6)];
            let parts: [&[u8]; 3] = [&[1], &body, b"tail"];
            let carved = Encoded::from_parts_in(&mut arena, &parts).unwrap();
            assert_eq!(carved, Encoded::from_parts(&parts).unwrap(), "message {i}");
            made.push(carved);
        }
        // Dropping some leaves the others intact.
        made.retain(|m| m.message().len() % 2 == 0);
        for m in &made {
            assert_eq!(m.stream().len(), m.message().len() + 2);
            assert_eq!(frame_len(&m.stream()), m.message().len());
        }
        assert!(Encoded::from_parts_in(&mut arena, &[]).is_none());
    }

    fn frame(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_le_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn from_parts_matches_one_buffer() {
        for n in [
            1,
            10,
            60,
            61,
            124,
            125,
            188,
            189,
            252,
            253,
            300,
            MAX_MESSAGE_LEN,
        ] {
            let msg: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let (a, b) = msg.split_at(n / 3);
            let whole = Encoded::from_message(&msg).unwrap();
            assert_eq!(Encoded::from_parts(&[a, &[], b]).unwrap(), whole, "{n}");
            assert_eq!(whole.message(), &msg[..]);
            assert_eq!(&whole.stream()[2..], &msg[..]);
        }
        assert!(Encoded::from_parts(&[&[], &[]]).is_none());
        let big = vec![0u8; MAX_MESSAGE_LEN];
        assert!(Encoded::from_parts(&[&big, &[1]]).is_none());
    }

    #[test]
    fn encoded_refuses_empty_and_oversized() {
        assert!(Encoded::from_message(&[]).is_none());
        assert!(Encoded::from_message(&vec![1; MAX_MESSAGE_LEN + 1]).is_none());
        let e = Encoded::from_message(&vec![1; MAX_MESSAGE_LEN]).unwrap();
        assert_eq!(&e.stream()[..2], &[0xff, 0xff]);
        let e = Encoded::from_message(&[3, b'[', b']']).unwrap();
        assert_eq!(&e.stream()[..], &[3, 0, 3, b'[', b']']);
        assert_eq!(&e.datagram()[..], &[3, b'[', b']']);
    }

    proptest! {
        /// Any chunking of a framed stream yields the same messages.
        #[test]
        fn any_chunking(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
                        cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
            let wire = frame(&msgs);
            let mut points: Vec<usize> = cuts.iter().map(|c| if wire.is_empty() { 0 } else { c % wire.len() }).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            let mut d = Deframer::new();
            let mut out = Vec::new();
            for w in points.windows(2) {
                d.push(Bytes::copy_from_slice(&wire[w[0]..w[1]]), &mut out);
            }
            let got: Vec<Vec<u8>> = out.iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(d.buffered(), 0);
        }

        /// Arbitrary bytes never panic and never buffer more than one frame.
        #[test]
        fn garbage_is_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5000), 0..30)) {
            let mut d = Deframer::new();
            let mut out = Vec::new();
            for c in chunks {
                d.push(Bytes::from(c), &mut out);
                prop_assert!(d.buffered() <= MAX_MESSAGE_LEN + 2);
            }
        }
    }
}
