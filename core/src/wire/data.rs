//! Data message header: 36 bytes, big-endian (netceptor.md §3.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::carve;
use super::{DecodeError, Encoded, MAX_MESSAGE_LEN, MSG_DATA};
use crate::id::ServiceName;

/// Length of the data message header, type byte included.
pub const DATA_HEADER_LEN: usize = 36;

/// The fixed header of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// Hops left before the message expires.
    pub hops_to_live: u8,
    /// Hash of the source node ID.
    pub from_node: u64,
    /// Hash of the destination node ID.
    pub to_node: u64,
    /// Source service.
    pub from_service: ServiceName,
    /// Destination service.
    pub to_service: ServiceName,
}

impl DataHeader {
    /// Reads the header; `msg` starts with the type byte.
    pub fn decode(msg: &[u8]) -> Result<Self, DecodeError> {
        let Some(h) = msg.get(..DATA_HEADER_LEN) else {
            return Err(DecodeError::ShortData(msg.len()));
        };
        let u64_at = |i: usize| -> u64 {
            let mut b = [0u8; 8];
            if let Some(s) = h.get(i..i + 8) {
                b.copy_from_slice(s);
            }
            u64::from_be_bytes(b)
        };
        let svc_at = |i: usize| -> ServiceName {
            let mut b = [0u8; 8];
            if let Some(s) = h.get(i..i + 8) {
                b.copy_from_slice(s);
            }
            ServiceName::from_wire(b)
        };
        Ok(Self {
            hops_to_live: h.get(1).copied().unwrap_or_default(),
            from_node: u64_at(4),
            to_node: u64_at(12),
            from_service: svc_at(20),
            to_service: svc_at(28),
        })
    }

    /// Encodes the header followed by `payload`. `None` if the message would exceed 65535 bytes.
    pub fn encode(&self, payload: &[u8]) -> Option<Encoded> {
        let mut b = Encoded::builder(DATA_HEADER_LEN + payload.len());
        self.put(&mut b);
        b.put_slice(payload);
        Encoded::finish(b)
    }

    /// The stream framing of a data message up to its payload: the length prefix, counting
    /// a payload of `payload_len` bytes that the caller sends right behind, then the header.
    /// Carved from `arena` as [`Encoded::from_parts_in`] carves small messages. `None` if
    /// the message would exceed 65535 bytes.
    pub(crate) fn stream_head_in(&self, arena: &mut BytesMut, payload_len: usize) -> Option<Bytes> {
        let len = DATA_HEADER_LEN + payload_len;
        if len > MAX_MESSAGE_LEN {
            return None;
        }
        Some(carve(arena, len as u16, DATA_HEADER_LEN + 2, |b| {
            self.put(b)
        }))
    }

    fn put(&self, b: &mut BytesMut) {
        b.put_u8(MSG_DATA);
        b.put_u8(self.hops_to_live);
        b.put_u16(0);
        b.put_u64(self.from_node);
        b.put_u64(self.to_node);
        b.put_slice(&self.from_service.wire_bytes());
        b.put_slice(&self.to_service.wire_bytes());
    }
}
