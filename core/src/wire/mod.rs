//! The netceptor wire format: framing, the four message types and their Go-exact encodings
//! (netceptor.md §2 and §3).

mod advert;
mod data;
mod frame;
mod gojson;
mod route;
mod route_fast;
mod time;
mod unreach;

use bytes::Bytes;

pub use advert::{ServiceAdvert, WorkCommand};
pub use data::{DATA_HEADER_LEN, DataHeader};
pub(crate) use frame::whole_frame;
pub use frame::{Deframer, Encoded, MAX_MESSAGE_LEN, MAX_UDP_MESSAGE_LEN};
pub(crate) use gojson::{shortest_digits, write_exponent, write_f64, write_fixed, write_str};
pub use route::RouteUpdate;
pub(crate) use route_fast::{RouteHead, RouteView};
pub use time::{
    UnixNanos, format_rfc3339_nano, format_rfc3339_nano_in, parse_rfc3339, parse_rfc3339_zoned,
};
pub use unreach::{PROBLEM_EXPIRED, PROBLEM_FIREWALL, PROBLEM_SERVICE_UNKNOWN, UnreachableNotice};

/// Type byte of a data message.
pub const MSG_DATA: u8 = 0;
/// Type byte of a routing update.
pub const MSG_ROUTE: u8 = 1;
/// Type byte of a service advertisement.
pub const MSG_SERVICE_AD: u8 = 2;
/// Type byte of a reject.
pub const MSG_REJECT: u8 = 3;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A zero-length message (Go would crash on it).
    #[error("empty message")]
    Empty,
    /// A data message shorter than its 36-byte header.
    #[error("data message of {0} bytes is shorter than its header")]
    ShortData(usize),
    /// The JSON body did not parse as Go would accept it.
    #[error("bad JSON: {0}")]
    Json(String),
}

impl DecodeError {
    fn json(e: serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

/// One decoded netceptor message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Type 0: a datagram for a (node, service), with its payload.
    Data {
        /// The binary header.
        header: DataHeader,
        /// The payload: a slice of the received buffer, not a copy.
        payload: Bytes,
    },
    /// Type 1: a routing update.
    Route(RouteUpdate),
    /// Type 2: a service advertisement, with the original message bytes for forwarding.
    ServiceAd(ServiceAdvert, Bytes),
    /// Type 3: the peer is closing the session.
    Reject,
    /// Any other type byte: ignored once established.
    Unknown(u8),
}

impl Message {
    /// Decodes one whole message (no framing prefix).
    pub fn decode(msg: Bytes) -> Result<Self, DecodeError> {
        let Some(&ty) = msg.first() else {
            return Err(DecodeError::Empty);
        };
        let body = msg.get(1..).unwrap_or_default();
        Ok(match ty {
            MSG_DATA => {
                let header = DataHeader::decode(&msg)?;
                Self::Data {
                    header,
                    payload: msg.slice(DATA_HEADER_LEN..),
                }
            }
            MSG_ROUTE => Self::Route(RouteUpdate::decode(body)?),
            MSG_SERVICE_AD => Self::ServiceAd(ServiceAdvert::decode(body)?, msg),
            // Receivers ignore the body of a reject.
            MSG_REJECT => Self::Reject,
            other => Self::Unknown(other),
        })
    }
}

/// The reject message, `03 5b 5d`.
pub fn encode_reject() -> Encoded {
    Encoded::reject()
}

/// A reject message that names its reason: `03` and the JSON list `["reason"]`. Go sends an
/// empty list and ignores the body of the rejects it receives, so this reaches a Go peer as a
/// plain reject. The reason is cut to [`MAX_REJECT_REASON`] bytes.
///
/// [`MAX_REJECT_REASON`]: crate::identity::MAX_REJECT_REASON
pub fn encode_reject_with(reason: &str) -> Encoded {
    let reason = truncate(reason, crate::identity::MAX_REJECT_REASON);
    let Ok(body) = serde_json::to_vec(&[reason]) else {
        return Encoded::reject();
    };
    let mut msg = Vec::with_capacity(body.len() + 1);
    msg.push(MSG_REJECT);
    msg.extend_from_slice(&body);
    Encoded::from_message(&msg).unwrap_or_else(Encoded::reject)
}

/// The reason a reject's body names, if it is a JSON list whose first entry is a non-empty
/// string; cut to [`MAX_REJECT_REASON`] bytes. Go's `[]` gives `None`.
///
/// [`MAX_REJECT_REASON`]: crate::identity::MAX_REJECT_REASON
pub fn reject_reason(body: &[u8]) -> Option<String> {
    let list: Vec<serde_json::Value> = serde_json::from_slice(body).ok()?;
    let first = list.first()?.as_str()?;
    let cut = truncate(first, crate::identity::MAX_REJECT_REASON);
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}
