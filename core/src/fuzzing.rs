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

mod control;
mod remote_unit;
mod work;

pub use control::{control_session, go_duration};
pub use remote_unit::remote_unit;
pub use work::{jwt, remote_reply, work_status};

/// [`Input::Received`]'s bytes for `arbitrary`: a length-prefixed byte string.
pub(crate) fn arbitrary_bytes(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Bytes> {
    Ok(Bytes::from(<Vec<u8> as arbitrary::Arbitrary>::arbitrary(
        u,
    )?))
}

/// One of four link IDs, so that generated input sequences keep meeting the same links.
impl<'a> arbitrary::Arbitrary<'a> for LinkId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(u64::from(u.int_in_range(0u8..=3)?)))
    }
}

/// A link of any kind, with a valid cost (as the runtimes' config checks guarantee), some
/// per-peer costs and an optional allow list drawn from the harness's node names.
impl<'a> arbitrary::Arbitrary<'a> for LinkConfig {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let kind = *u.choose(&[LinkKind::Stream, LinkKind::Datagram, LinkKind::Message])?;
        let mut cfg = LinkConfig::new(kind);
        cfg.cost = f64::from(u.int_in_range(1u8..=255)?) / 2.0;
        for _ in 0..u.int_in_range(0u8..=2)? {
            let cost = f64::from(u.int_in_range(1u8..=255)?) / 2.0;
            if let Ok(id) = NodeId::new(u.choose(&NAMES)?) {
                cfg.node_cost.insert(id, cost);
            }
        }
        if u.arbitrary()? {
            let mut peers = std::collections::BTreeSet::new();
            for _ in 0..u.int_in_range(0u8..=2)? {
                if let Ok(id) = NodeId::new(u.choose(&NAMES)?) {
                    peers.insert(id);
                }
            }
            cfg.allowed_peers = Some(peers);
        }
        Ok(cfg)
    }
}

/// Node names the structured harnesses draw from, so that generated messages meet each other.
const NAMES: [&str; 6] = ["fuzz", "a", "b", "c", "d", "localhost"];

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

/// Turns fuzz bytes into structured choices.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }

    fn name(&mut self) -> String {
        NAMES[usize::from(self.byte().unwrap_or(0)) % NAMES.len()].to_owned()
    }
}

/// Hands `data` to `node`, warned of it first: [`Node::warm`] reads what it is given
/// loosely, and must not panic on anything.
fn received(node: &mut Node, now: Instant, link: LinkId, data: Bytes) {
    node.warm(std::iter::once((link, &data[..])));
    node.handle_input(now, Input::Received { link, data });
}

/// Feeds a whole node a sequence of inputs drawn from `data`: links coming and going, time
/// passing, raw bytes, well-formed routing updates, data messages and adverts built from
/// the fuzz bytes (so established sessions and forwarding are reached), and runs of
/// `arbitrary` [`Input`]s (any link kind and options, in any order), checking its bounds.
#[allow(clippy::disallowed_methods)] // the harness, not the core, picks the start instant
pub fn node_inputs(data: &[u8]) {
    use crate::id::{ServiceName, name_hash};
    use crate::wire::{DataHeader, ServiceAdvert};
    let start = Instant::now();
    let Ok(id) = NodeId::new("fuzz") else { return };
    let config = Config::new(id, 1, Duration::from_secs(1_700_000_000));
    let Ok(mut node) = Node::new(Arc::new(config), start) else {
        return;
    };
    let mut now = start;
    let mut c = Cursor(data);
    let mut update_id = 0u32;
    while let Some(op) = c.byte() {
        let link = LinkId(u64::from(op & 0x3));
        let frame = |msg: &[u8]| -> Bytes {
            let mut v = (msg.len() as u16).to_le_bytes().to_vec();
            v.extend_from_slice(msg);
            Bytes::from(v)
        };
        match op >> 4 {
            0 => {
                // Stream links only: the generated messages are framed.
                let cfg = LinkConfig::new(LinkKind::Stream);
                node.handle_input(
                    now,
                    Input::LinkUp {
                        link,
                        config: Arc::new(cfg),
                    },
                );
            }
            1 => node.handle_input(now, Input::LinkDown { link }),
            2 | 3 => {
                now += Duration::from_millis(u64::from(c.byte().unwrap_or(0)) * 100);
                node.handle_input(now, Input::Timeout);
            }
            4 | 5 => {
                let len = usize::from(c.byte().unwrap_or(0));
                let body = c.take(len).to_vec();
                received(&mut node, now, link, Bytes::from(body));
            }
            6..=9 => {
                update_id += 1;
                let origin = c.name();
                let fwd = if op & 0x8 != 0 {
                    origin.clone()
                } else {
                    c.name()
                };
                let mut connections = std::collections::BTreeMap::new();
                for _ in 0..(c.byte().unwrap_or(0) % 4) {
                    let cost = f64::from(c.byte().unwrap_or(1).max(1)) / 2.0;
                    connections.insert(c.name(), cost);
                }
                let r = RouteUpdate {
                    node_id: origin,
                    update_id: format!("u{update_id}"),
                    epoch: u64::from(c.byte().unwrap_or(1)),
                    sequence: u64::from(c.byte().unwrap_or(1)),
                    connections,
                    forwarding_node: fwd,
                    suspected_duplicate: if op & 0x1 != 0 { node.epoch() } else { 0 },
                };
                if let Some(e) = r.encode() {
                    received(&mut node, now, link, frame(e.message()));
                }
            }
            10..=12 => {
                let (from, to) = (c.name(), c.name());
                let svc =
                    ["ping", "unreach", "x", "control"][usize::from(c.byte().unwrap_or(0)) % 4];
                let h = DataHeader {
                    hops_to_live: c.byte().unwrap_or(0) % 32,
                    from_node: name_hash(&from),
                    to_node: name_hash(&to),
                    from_service: ServiceName::new("eph").unwrap_or_default(),
                    to_service: ServiceName::new(svc).unwrap_or_default(),
                };
                let len = usize::from(c.byte().unwrap_or(0));
                let payload = c.take(len).to_vec();
                if let Some(e) = h.encode(&payload) {
                    received(&mut node, now, link, frame(e.message()));
                }
            }
            13 => {
                let ad = ServiceAdvert {
                    node_id: c.name(),
                    service: c.name(),
                    time: i128::from(c.byte().unwrap_or(0)) * 1_000_000_000,
                    cancel: op & 1 != 0,
                    ..Default::default()
                };
                if let Some(e) = ad.encode() {
                    received(&mut node, now, link, frame(e.message()));
                }
            }
            14 => {
                let _ = node.ping(now, &c.name());
                let _ = node.traceroute(now, &c.name());
            }
            _ if op & 0x8 != 0 => {
                let len = usize::from(c.byte().unwrap_or(0));
                let mut u = arbitrary::Unstructured::new(c.take(len));
                while let Ok(input) = u.arbitrary::<Input>() {
                    if let Input::Received { link, data } = &input {
                        node.warm(std::iter::once((*link, &data[..])));
                    }
                    node.handle_input(now, input);
                    if u.is_empty() {
                        break;
                    }
                }
            }
            _ => {
                let svc = ServiceName::new("x").unwrap_or_default();
                let _ = node.send(now, svc, &c.name(), ServiceName::PING, Bytes::new(), None);
                let _ = node.listen(now, Some("x"), None);
            }
        }
        let mut n = 0usize;
        while let Some(t) = node.poll_transmit() {
            assert!(!t.frame.is_empty(), "empty frame");
            assert!(
                t.len() <= crate::wire::MAX_MESSAGE_LEN + 2,
                "oversized frame"
            );
            n += 1;
        }
        while node.poll_event().is_some() {
            n += 1;
        }
        assert!(n < 10_000, "unbounded output for one input");
    }
}
