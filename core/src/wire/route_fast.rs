//! A fast path for routing updates written in the canonical form: the exact field order,
//! spacing and escaping that Go's `encoding/json` and [`RouteUpdate::encode`] produce.
//!
//! Every node reads every copy of every flooded update, so this is the hottest parser in a
//! mesh. [`RouteView::parse`] checks a whole body and reads it in place, without allocating:
//! most copies are dropped as already seen after that, and a fresh one can be forwarded by
//! patching `ForwardingNode` into the original bytes ([`RouteView::forward`]) when
//! re-encoding would give the same bytes anyway. The fast path accepts only a strict subset
//! of what the serde path accepts and yields the same value for it (checked by a
//! differential test); anything else (other key order or case, whitespace, escapes, nulls,
//! unknown keys, negative numbers) returns `None` and goes through serde as before.

use std::collections::BTreeMap;

use super::gojson::write_f64;
#[cfg(test)]
use super::gojson::write_str;
use super::route::RouteUpdate;
use super::{Encoded, MSG_ROUTE};

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// The canonical start of an update, up to the epoch's value: its NodeID and UpdateID.
    fn head(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        self.lit(b"{\"NodeID\":")?;
        let node_id = self.string()?;
        self.lit(b",\"UpdateID\":")?;
        let update_id = self.string()?;
        self.lit(b",\"UpdateEpoch\":")?;
        Some((node_id, update_id))
    }

    fn lit<const N: usize>(&mut self, s: &[u8; N]) -> Option<()> {
        let end = self.i.checked_add(N)?;
        let here: &[u8; N] = self.b.get(self.i..end)?.try_into().ok()?;
        (here == s).then(|| self.i = end)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string, its bytes up to the next quote. The caller has checked that the text is
    /// valid UTF-8 without backslashes or control characters.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.lit(b"\"")?;
        let rest = self.b.get(self.i..)?;
        let len = rest.iter().position(|&c| c == b'"')?;
        let s = rest.get(..len)?;
        self.i += len + 1;
        Some(s)
    }

    /// Digits `0` or `[1-9][0-9]*`, as a u64 (`None` on overflow).
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let (digits, n) = self.digits_value();
        if digits == 0 || (digits > 1 && self.b.get(start) == Some(&b'0')) {
            return None;
        }
        if digits < 20 {
            // Below 10^19 < 2^64: the value did not wrap.
            return Some(n);
        }
        let mut n: u64 = 0;
        for &c in self.b.get(start..self.i)? {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        }
        Some(n)
    }

    /// Digits, in one pass: how many, and their value (wrapped if 20 or more).
    fn digits_value(&mut self) -> (usize, u64) {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(d));
            self.i += 1;
        }
        (self.i - start, n)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// A non-negative JSON number, correctly rounded as serde_json's `float_roundtrip`
    /// parses it, and whether it is a plain integer below 10^15 (which Go writes back as the
    /// same text). Numbers that overflow or underflow are left to serde.
    fn float(&mut self) -> Option<(f64, bool)> {
        let start = self.i;
        let (int, n) = self.digits_value();
        if int == 0 || (int > 1 && self.b.get(start) == Some(&b'0')) {
            return None;
        }
        let plain = !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if plain && int <= 15 {
            // A plain integer below 10^15 < 2^53 is exact as a float, and Go writes an
            // integral float below 2^53 as its digits.
            return Some((n as f64, true));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        let text = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        let v: f64 = text.parse().ok()?;
        let nonzero_digit = text
            .bytes()
            .take_while(|c| !matches!(c, b'e' | b'E'))
            .any(|c| matches!(c, b'1'..=b'9'));
        (v.is_finite() && (v != 0.0 || !nonzero_digit)).then_some((v, false))
    }
}

/// `a < b` byte-wise, without a library call for these short names.
fn less(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// Whether Go's encoder writes `s` back as is (it escapes `<`, `>`, `&`, U+2028 and
/// U+2029; quotes, backslashes and control characters never reach here).
fn plain_str(b: &[u8]) -> bool {
    !b.iter().any(|&c| matches!(c, b'<' | b'>' | b'&'))
        && !b
            .windows(3)
            .any(|w| matches!(w, [0xe2, 0x80, 0xa8] | [0xe2, 0x80, 0xa9]))
}

/// A string of a parsed body (checked to be UTF-8).
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A routing update in canonical form, read in place from the received body (its strings
/// are bytes checked to be UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct RouteView<'a> {
    /// The originating node.
    pub node_id: &'a [u8],
    /// Flood de-duplication key.
    pub update_id: &'a [u8],
    /// The originator's process epoch.
    pub epoch: u64,
    /// The originator's update counter.
    pub sequence: u64,
    /// The node that put this copy on the current link.
    pub forwarding_node: &'a [u8],
    /// The epoch of a suspected duplicate instance of `node_id`, or 0.
    pub suspected_duplicate: u64,
    /// The body the view reads.
    body: &'a [u8],
    /// The inside of the `Connections` object (checked to be canonical pairs).
    connections: &'a [u8],
    /// Where the `ForwardingNode` string literal, quotes included, sits in `body`.
    fwd: (usize, usize),
    /// Decoding and re-encoding would give `body` again, ForwardingNode aside, as far as the
    /// strings and the key order go.
    stable: bool,
    /// Every cost is a plain integer, which re-encoding writes back as it is.
    plain_numbers: bool,
}

impl<'a> RouteView<'a> {
    /// Reads `body` (the message after its type byte) if it is a routing update in
    /// canonical form.
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        // One pass over the body: canonical strings have no escapes or control characters
        // (and there is nowhere else they could be), and the characters Go escapes tell
        // whether re-encoding could change a string.
        let (mut bad, mut html, mut high) = (0u8, 0u8, 0u8);
        for &c in body {
            bad |= u8::from(c < 0x20) | u8::from(c == b'\\');
            html |= u8::from(c == b'<') | u8::from(c == b'>') | u8::from(c == b'&');
            high |= c & 0x80;
        }
        if bad != 0 || (high != 0 && std::str::from_utf8(body).is_err()) {
            return None;
        }
        // Without `<`, `>`, `&` and non-ASCII bytes no string needs escaping.
        let plain = |s: &[u8]| (html | high) == 0 || plain_str(s);
        let mut p = Cursor { b: body, i: 0 };
        let (node_id, update_id) = p.head()?;
        let epoch = p.uint()?;
        p.lit(b",\"UpdateSequence\":")?;
        let sequence = p.uint()?;
        p.lit(b",\"Connections\":{")?;
        let mut stable = plain(node_id) && plain(update_id);
        let mut plain_numbers = true;
        let conn_start = p.i;
        let mut conn_end = p.i;
        if p.lit(b"}").is_none() {
            let mut prev: Option<&[u8]> = None;
            loop {
                let k = p.string()?;
                p.lit(b":")?;
                let (_, plain_number) = p.float()?;
                plain_numbers &= plain_number;
                // Re-encoding sorts the keys and keeps the last of duplicates.
                stable = stable && prev.is_none_or(|pk| less(pk, k)) && plain(k);
                prev = Some(k);
                conn_end = p.i;
                if p.lit(b"}").is_some() {
                    break;
                }
                p.lit(b",")?;
            }
        }
        p.lit(b",\"ForwardingNode\":")?;
        let fwd_start = p.i;
        let forwarding_node = p.string()?;
        let fwd_end = p.i;
        p.lit(b",\"SuspectedDuplicate\":")?;
        let suspected_duplicate = p.uint()?;
        p.lit(b"}")?;
        if p.i != body.len() {
            return None;
        }
        Some(Self {
            node_id,
            update_id,
            epoch,
            sequence,
            forwarding_node,
            suspected_duplicate,
            body,
            connections: body.get(conn_start..conn_end)?,
            fwd: (fwd_start, fwd_end),
            stable,
            plain_numbers,
        })
    }

    /// The connections as they appear on the wire, in order, duplicates included (the last
    /// of duplicates is the one that counts).
    pub fn connections(&self) -> Connections<'a> {
        Connections {
            p: Cursor {
                b: self.connections,
                i: 0,
            },
        }
    }

    /// The raw text of the connections, for cheap comparison.
    pub fn connections_raw(&self) -> &'a [u8] {
        self.connections
    }

    /// The cost listed for `node`, if any (the last one, as decoding keeps).
    pub fn connection(&self, node: &str) -> Option<f64> {
        self.connections()
            .filter(|(k, _)| *k == node.as_bytes())
            .last()
            .map(|(_, c)| c)
    }

    /// Whether Go writes every cost back as the text it arrived as.
    fn numbers_reencode_as_is(&self) -> bool {
        let mut p = Cursor {
            b: self.connections,
            i: 0,
        };
        let mut again = String::new();
        while p.i < p.b.len() {
            if p.i > 0 && p.lit(b",").is_none() {
                return false;
            }
            let start = match p.string().and_then(|_| p.lit(b":")) {
                Some(()) => p.i,
                None => return false,
            };
            let Some((v, _)) = p.float() else {
                return false;
            };
            again.clear();
            write_f64(&mut again, v);
            if p.b.get(start..p.i) != Some(again.as_bytes()) {
                return false;
            }
        }
        true
    }

    /// The owned update.
    pub fn to_update(self) -> RouteUpdate {
        RouteUpdate {
            node_id: text(self.node_id),
            update_id: text(self.update_id),
            epoch: self.epoch,
            sequence: self.sequence,
            connections: {
                // Go and serde keep the last of duplicate keys.
                let mut m = BTreeMap::new();
                for (k, v) in self.connections() {
                    m.insert(text(k), v);
                }
                m
            },
            forwarding_node: text(self.forwarding_node),
            suspected_duplicate: self.suspected_duplicate,
        }
    }

    /// The message to forward: this update with `ForwardingNode` set to `me`, exactly as
    /// decoding and re-encoding it would give (Go forwards that way), built by patching the
    /// original bytes where that gives the same result.
    #[cfg(test)]
    pub fn forward(&self, me: &str) -> Option<Encoded> {
        let mut quoted = String::with_capacity(me.len() + 2);
        write_str(&mut quoted, me);
        self.forward_as(me, &quoted, &mut bytes::BytesMut::new())
    }

    /// [`RouteView::forward`], given `me` also as Go writes it as a JSON string.
    pub fn forward_as(
        &self,
        me: &str,
        me_quoted: &str,
        arena: &mut bytes::BytesMut,
    ) -> Option<Encoded> {
        if !self.stable || !(self.plain_numbers || self.numbers_reencode_as_is()) {
            let mut u = self.to_update();
            u.forwarding_node = me.to_owned();
            return u.encode();
        }
        let head = self.body.get(..self.fwd.0)?;
        let tail = self.body.get(self.fwd.1..)?;
        Encoded::from_parts_in(arena, &[&[MSG_ROUTE], head, me_quoted.as_bytes(), tail])
    }
}

/// What decides whether a canonical routing update is a copy already handled: its origin,
/// its ID and who forwarded it, read from the two ends of the body without reading the
/// connections. Most copies of a flood are dropped on this alone.
#[derive(Debug, Clone, Copy)]
pub struct RouteHead<'a> {
    /// The originating node.
    pub node_id: &'a [u8],
    /// Flood de-duplication key.
    pub update_id: &'a [u8],
    /// The node that put this copy on the current link.
    pub forwarding_node: &'a [u8],
}

impl<'a> RouteHead<'a> {
    /// Reads the head and the tail of `body` (the message after its type byte), if they are
    /// in canonical form with strings free of escapes and control characters. The middle is
    /// not looked at: a copy that is then dropped as seen is never fully checked.
    pub fn peek(body: &'a [u8]) -> Option<Self> {
        const FWD: &[u8] = b",\"ForwardingNode\":\"";
        const DUP: &[u8] = b"\",\"SuspectedDuplicate\":";
        let mut p = Cursor { b: body, i: 0 };
        let (node_id, update_id) = p.head()?;
        let head_end = p.i;
        // From the end: `}`, digits, DUP, the forwarding node, FWD.
        let mut j = body.len().checked_sub(1)?;
        if body.get(j) != Some(&b'}') {
            return None;
        }
        let digits_end = j;
        while j > head_end && body.get(j - 1).is_some_and(u8::is_ascii_digit) {
            j -= 1;
        }
        if j == digits_end || j < head_end + DUP.len() {
            return None;
        }
        j -= DUP.len();
        if body.get(j..j + DUP.len())? != DUP {
            return None;
        }
        let fwd_end = j;
        while j > head_end && body.get(j - 1) != Some(&b'"') {
            j -= 1;
        }
        let forwarding_node = body.get(j..fwd_end)?;
        let fwd_at = j.checked_sub(FWD.len()).filter(|&a| a >= head_end)?;
        if body.get(fwd_at..j)? != FWD {
            return None;
        }
        // The keys matched literally; only the strings can hold escapes.
        let mut bad = 0u8;
        for s in [node_id, update_id, forwarding_node] {
            for &c in s {
                bad |= u8::from(c < 0x20) | u8::from(c == b'\\');
            }
        }
        (bad == 0).then_some(Self {
            node_id,
            update_id,
            forwarding_node,
        })
    }
}

/// The `(name, cost)` pairs of a [`RouteView`], in wire order.
pub struct Connections<'a> {
    p: Cursor<'a>,
}

impl<'a> Iterator for Connections<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.p.i >= self.p.b.len() {
            return None;
        }
        if self.p.i > 0 {
            self.p.lit(b",")?;
        }
        let k = self.p.string()?;
        self.p.lit(b":")?;
        let (v, _) = self.p.float()?;
        Some((k, v))
    }
}

/// Decodes `body` if it is a routing update in canonical form.
pub(super) fn decode_canonical(body: &[u8]) -> Option<RouteUpdate> {
    RouteView::parse(body).map(|v| v.to_update())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn same(a: &RouteUpdate, b: &RouteUpdate) -> bool {
        a.node_id == b.node_id
            && a.update_id == b.update_id
            && a.epoch == b.epoch
            && a.sequence == b.sequence
            && a.forwarding_node == b.forwarding_node
            && a.suspected_duplicate == b.suspected_duplicate
            && a.connections.len() == b.connections.len()
            && a.connections
                .iter()
                .zip(&b.connections)
                .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.to_bits() == v2.to_bits())
    }

    fn serde_path(body: &[u8]) -> Option<RouteUpdate> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let u = serde::Deserialize::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(u)
    }

    /// Whatever the fast path accepts, serde accepts with the same value; the view's
    /// lookups agree with the decoded map, and forwarding by patching gives the bytes that
    /// decoding and re-encoding give.
    fn agree(body: &[u8]) -> Result<(), TestCaseError> {
        // The head, where read, is what decoding gives.
        if let (Some(h), Some(slow)) = (RouteHead::peek(body), serde_path(body)) {
            prop_assert_eq!(h.node_id, slow.node_id.as_bytes());
            prop_assert_eq!(h.update_id, slow.update_id.as_bytes());
            prop_assert_eq!(h.forwarding_node, slow.forwarding_node.as_bytes());
        }
        if let Some(fast) = decode_canonical(body) {
            let slow = serde_path(body);
            prop_assert!(
                slow.as_ref().is_some_and(|s| same(s, &fast)),
                "{:?}: fast {fast:?}, serde {slow:?}",
                String::from_utf8_lossy(body)
            );
            let view = RouteView::parse(body).unwrap();
            for (k, v) in &fast.connections {
                prop_assert_eq!(view.connection(k).map(f64::to_bits), Some(v.to_bits()));
            }
            prop_assert_eq!(view.connection("\u{0}none"), None);
            for me in ["me", "a<b", "\u{2028}x", "q\"uote"] {
                let mut u = fast.clone();
                u.forwarding_node = me.to_owned();
                prop_assert_eq!(view.forward(me), u.encode());
            }
        } else {
            prop_assert!(RouteView::parse(body).is_none());
        }
        Ok(())
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9._-]{0,12}",
            "[a-z]{1,20}",
            "[a<>&\u{2028}\u{2029}]{1,3}",
            ".{0,6}", // anything, escapes and unicode included
        ]
    }

    fn cost() -> impl Strategy<Value = f64> {
        prop_oneof![
            (1u32..100).prop_map(f64::from),
            0.001f64..1000.0,
            any::<f64>().prop_filter("finite, positive", |f| f.is_finite() && *f > 0.0),
        ]
    }

    fn update() -> impl Strategy<Value = RouteUpdate> {
        (
            name(),
            name(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::btree_map(name(), cost(), 0..5),
            name(),
            prop_oneof![Just(0u64), any::<u64>()],
        )
            .prop_map(
                |(node_id, update_id, epoch, sequence, connections, fwd, dup)| RouteUpdate {
                    node_id,
                    update_id,
                    epoch,
                    sequence,
                    connections,
                    forwarding_node: fwd,
                    suspected_duplicate: dup,
                },
            )
    }

    proptest! {
        #[test]
        fn canonical_encodings_take_the_fast_path(u in update()) {
            let enc = u.encode().unwrap();
            let body = &enc.message()[1..];
            let needs_escape = |s: &str| s.chars().any(|c| {
                matches!(c, '"' | '\\' | '<' | '>' | '&' | '\u{0}'..='\u{1f}' | '\u{2028}' | '\u{2029}')
            });
            let plain = !needs_escape(&u.node_id)
                && !needs_escape(&u.update_id)
                && !needs_escape(&u.forwarding_node)
                && !u.connections.keys().any(|k| needs_escape(k));
            let fast = decode_canonical(body);
            prop_assert_eq!(fast.is_some(), plain);
            let head_plain = !needs_escape(&u.node_id)
                && !needs_escape(&u.update_id)
                && !needs_escape(&u.forwarding_node);
            prop_assert_eq!(RouteHead::peek(body).is_some(), head_plain);
            if let Some(f) = fast {
                prop_assert!(same(&f, &u));
            }
            agree(body)?;
        }

        #[test]
        fn mutated_encodings_agree_with_serde(
            u in update(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let enc = u.encode().unwrap();
            let mut body = enc.message()[1..].to_vec();
            for (at, byte, op) in edits {
                let i = at.index(body.len() + 1);
                match op {
                    0 if i < body.len() => body[i] = byte,
                    1 => body.insert(i, byte),
                    _ if i < body.len() => {
                        body.remove(i);
                    }
                    _ => {}
                }
            }
            agree(&body)?;
        }
    }

    #[test]
    fn forwarding_copes_with_forms_reencoding_changes() {
        let wrap = |node: &str, conns: &str| {
            format!(
                r#"{{"NodeID":"{node}","UpdateID":"b","UpdateEpoch":1,"UpdateSequence":2,"Connections":{{{conns}}},"ForwardingNode":"peer","SuspectedDuplicate":0}}"#
            )
        };
        for (node, conns, patched) in [
            ("a", r#""x":1,"y":2.5"#, true),
            ("a", "", true),
            ("a", r#""y":1,"x":2"#, false),
            ("a", r#""x":1,"x":2"#, false),
            ("a", r#""x":1.0"#, false),
            ("a", r#""x":1e0"#, false),
            ("a", r#""x":1000000000000000"#, true),
            ("a", r#""x":123456789012345678"#, false),
            ("a", r#""x":100000000000000"#, true),
            ("a", r#""x":0.5,"y":1e-7"#, true),
            ("a<", r#""x":1"#, false),
            ("a", r#""x&":1"#, false),
            ("a\u{2029}", r#""x":1"#, false),
        ] {
            let body = wrap(node, conns);
            let view = RouteView::parse(body.as_bytes()).unwrap();
            let takes_patch = view.stable && (view.plain_numbers || view.numbers_reencode_as_is());
            assert_eq!(takes_patch, patched, "{body}");
            agree(body.as_bytes()).unwrap();
        }
    }

    #[test]
    fn edge_numbers_agree() {
        let wrap = |n: &str| {
            format!(
                r#"{{"NodeID":"a","UpdateID":"b","UpdateEpoch":1,"UpdateSequence":2,"Connections":{{"x":{n}}},"ForwardingNode":"a","SuspectedDuplicate":0}}"#
            )
        };
        for n in [
            "0",
            "1",
            "1.5",
            "1e5",
            "1E+5",
            "1e-5",
            "0.0",
            "1e400",
            "1e-400",
            "0e0",
            "-1",
            "-0",
            "01",
            "1.",
            ".5",
            "1e",
            "18446744073709551616",
            "123456789012345678901234567890",
            "9007199254740993",
            "2.2250738585072011e-308",
            "4.9e-324",
            "1.7976931348623157e308",
        ] {
            agree(wrap(n).as_bytes()).unwrap();
        }
        for epoch in [
            "18446744073709551615",
            "18446744073709551616",
            "00",
            "1.0",
            "-1",
        ] {
            let body = format!(
                r#"{{"NodeID":"a","UpdateID":"b","UpdateEpoch":{epoch},"UpdateSequence":2,"Connections":{{}},"ForwardingNode":"a","SuspectedDuplicate":0}}"#
            );
            agree(body.as_bytes()).unwrap();
        }
        assert!(decode_canonical(wrap("2").as_bytes()).is_some());
    }
}
