//! A fast path for decoding routing updates written in the canonical form: the exact field
//! order, spacing and escaping that Go's `encoding/json` and [`RouteUpdate::encode`] produce.
//!
//! Every node decodes every copy of every flooded update, so this is the hottest parser in a
//! mesh. The fast path accepts only a strict subset of what the serde path accepts and yields
//! the same value for it (checked by a differential test); anything else (other key order
//! or case, whitespace, escapes, nulls, unknown keys, negative numbers) returns `None` and
//! goes through serde as before.

use std::collections::BTreeMap;

use super::route::RouteUpdate;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        let end = self.i.checked_add(s.len())?;
        (self.b.get(self.i..end)? == s).then(|| self.i = end)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string without escapes or control characters, as valid UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let rest = self.b.get(self.i..)?;
        let len = rest.iter().position(|&c| c == b'"')?;
        let raw = rest.get(..len)?;
        if raw.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i += len + 1;
        std::str::from_utf8(raw).ok()
    }

    /// Digits `0` or `[1-9][0-9]*`, as a u64 (`None` on overflow).
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && self.b.get(start) == Some(&b'0');
        (digits > 0 && !leading_zero).then_some(n)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// A non-negative JSON number, correctly rounded as serde_json's `float_roundtrip`
    /// parses it. Numbers that overflow or underflow are left to serde.
    fn float(&mut self) -> Option<f64> {
        let start = self.i;
        let int = self.digits();
        if int == 0 || (int > 1 && self.b.get(start) == Some(&b'0')) {
            return None;
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
        (v.is_finite() && (v != 0.0 || !nonzero_digit)).then_some(v)
    }
}

/// Decodes `body` if it is a routing update in canonical form.
pub(super) fn decode_canonical(body: &[u8]) -> Option<RouteUpdate> {
    let mut p = Cursor { b: body, i: 0 };
    p.lit(b"{\"NodeID\":")?;
    let node_id = p.string()?;
    p.lit(b",\"UpdateID\":")?;
    let update_id = p.string()?;
    p.lit(b",\"UpdateEpoch\":")?;
    let epoch = p.uint()?;
    p.lit(b",\"UpdateSequence\":")?;
    let sequence = p.uint()?;
    p.lit(b",\"Connections\":{")?;
    let mut connections = BTreeMap::new();
    if p.lit(b"}").is_none() {
        loop {
            let k = p.string()?;
            p.lit(b":")?;
            let v = p.float()?;
            // Go and serde keep the last of duplicate keys.
            connections.insert(k.to_owned(), v);
            if p.lit(b"}").is_some() {
                break;
            }
            p.lit(b",")?;
        }
    }
    p.lit(b",\"ForwardingNode\":")?;
    let forwarding_node = p.string()?;
    p.lit(b",\"SuspectedDuplicate\":")?;
    let suspected_duplicate = p.uint()?;
    p.lit(b"}")?;
    if p.i != body.len() {
        return None;
    }
    Some(RouteUpdate {
        node_id: node_id.to_owned(),
        update_id: update_id.to_owned(),
        epoch,
        sequence,
        connections,
        forwarding_node: forwarding_node.to_owned(),
        suspected_duplicate,
    })
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

    /// Whatever the fast path accepts, serde accepts with the same value.
    fn agree(body: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = decode_canonical(body) {
            let slow = serde_path(body);
            prop_assert!(
                slow.as_ref().is_some_and(|s| same(s, &fast)),
                "{:?}: fast {fast:?}, serde {slow:?}",
                String::from_utf8_lossy(body)
            );
        }
        Ok(())
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9._-]{0,12}",
            "[a-z]{1,20}",
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
