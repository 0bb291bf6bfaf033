//! Entry points for fuzz targets and their corpus replay tests (feature `fuzzing`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{Config, LinkConfig, LinkKind};
use crate::id::{LinkId, NodeId};
use crate::node::{Input, Node};
use crate::wire::{Deframer, Message, RouteUpdate};

/// Deframes arbitrary bytes split at arbitrary points; checks the buffer bound.
pub fn deframer(data: &[u8]) {
    let mut d = Deframer::new();
    let mut out = Vec::new();
    for chunk in data.chunks(97) {
        d.push(Bytes::copy_from_slice(chunk), &mut out);
        assert!(d.buffered() <= crate::wire::MAX_MESSAGE_LEN + 2);
    }
}

/// Decodes arbitrary bytes as one message; whatever decodes must re-encode and decode to
/// the same value.
pub fn message_decode(data: &[u8]) {
    match Message::decode(Bytes::copy_from_slice(data)) {
        Ok(Message::Route(r)) => {
            if let Some(enc) = r.encode() {
                let again = Message::decode(Bytes::copy_from_slice(enc.message()));
                assert!(matches!(again, Ok(Message::Route(ref r2)) if route_eq(r2, &r)));
            }
        }
        Ok(Message::ServiceAd(ad, _)) => {
            if let Some(enc) = ad.encode() {
                let again = Message::decode(Bytes::copy_from_slice(enc.message()));
                assert!(matches!(again, Ok(Message::ServiceAd(ref a2, _)) if *a2 == ad));
            }
        }
        Ok(Message::Data { header, payload }) => {
            if let Some(enc) = header.encode(&payload) {
                // The reserved bytes (2..4) are ignored on receipt and sent as zero.
                let mut want = data.to_vec();
                want[2] = 0;
                want[3] = 0;
                assert_eq!(enc.message(), &want[..]);
            }
        }
        _ => {}
    }
}

/// Route updates compare equal when NaN-free floats match bit for bit.
fn route_eq(a: &RouteUpdate, b: &RouteUpdate) -> bool {
    a.node_id == b.node_id
        && a.update_id == b.update_id
        && a.epoch == b.epoch
        && a.sequence == b.sequence
        && a.forwarding_node == b.forwarding_node
        && a.suspected_duplicate == b.suspected_duplicate
        && a.connections.len() == b.connections.len()
        && a.connections
            .iter()
            .zip(b.connections.iter())
            .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.to_bits() == v2.to_bits())
}

/// Parses arbitrary bytes as routing-update JSON.
pub fn route_update_json(data: &[u8]) {
    if let Ok(r) = RouteUpdate::decode(data)
        && let Some(enc) = r.encode()
    {
        let body = enc.message().get(1..).unwrap_or_default();
        let again = RouteUpdate::decode(body);
        assert!(matches!(again, Ok(ref r2) if route_eq(r2, &r)));
    }
}

/// Feeds a whole node a sequence of inputs drawn from `data`, checking its bounds.
#[allow(clippy::disallowed_methods)] // the harness, not the core, picks the start instant
pub fn node_inputs(data: &[u8]) {
    let start = Instant::now();
    let Ok(id) = NodeId::new("fuzz") else { return };
    let config = Config::new(id, 1, Duration::from_secs(1_700_000_000));
    let Ok(mut node) = Node::new(Arc::new(config), start) else {
        return;
    };
    let mut now = start;
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let link = LinkId(u64::from(op & 0x3));
        match op >> 5 {
            0 => {
                let kind = if op & 0x10 != 0 {
                    LinkKind::Stream
                } else {
                    LinkKind::Datagram
                };
                node.handle_input(
                    now,
                    Input::LinkUp {
                        link,
                        config: Arc::new(LinkConfig::new(kind)),
                    },
                );
            }
            1 => node.handle_input(now, Input::LinkDown { link }),
            2 => {
                now += Duration::from_millis(u64::from(op & 0x1f) * 700);
                node.handle_input(now, Input::Timeout);
            }
            _ => {
                let len = rest.first().copied().unwrap_or(0) as usize;
                let body = rest
                    .get(1..1 + len)
                    .unwrap_or(rest.get(1..).unwrap_or_default());
                rest = rest.get(1 + body.len()..).unwrap_or_default();
                node.handle_input(
                    now,
                    Input::Received {
                        link,
                        data: Bytes::copy_from_slice(body),
                    },
                );
            }
        }
        let mut n = 0usize;
        while node.poll_transmit().is_some() {
            n += 1;
        }
        while node.poll_event().is_some() {
            n += 1;
        }
        assert!(n < 10_000, "unbounded output for one input");
    }
}
