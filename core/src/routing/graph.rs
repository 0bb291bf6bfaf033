//! The link-state database: every node's advertised connections (Go `knownConnectionCosts`).
//!
//! Laid out for a node among many: in a large mesh every node holds a graph of every node,
//! and a routing update touches one origin's entry, so lookups should cost as few cache
//! misses as possible. Names are interned to dense indexes by an open-addressing table of
//! `(index, tag)` slots; what an update needs about its origin (the name key, the newest
//! `(epoch, sequence)`, where the wire text of its connections is kept) sits in one small
//! record per index; edges are short sorted vectors.

use std::collections::BTreeMap;

use super::fastkey::{FastHasher, pack};
use crate::id::NodeId;

/// Index of a node name in the graph; names are interned once and never forgotten (as in Go).
pub(crate) type Ix = u32;

/// The key of a name of 16 bytes or more: its bytes are compared in `names` instead.
const LONG: [u64; 2] = [u64::MAX; 2];
/// An empty slot.
const FREE: (Ix, u32) = (Ix::MAX, 0);

/// Per-name data that routing updates read.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// The name packed (see `fastkey::pack`), or [`LONG`].
    key: [u64; 2],
    /// `(epoch, sequence)` of the newest update accepted from this node.
    known: Option<(u64, u64)>,
    /// Where in `Graph::spans` the wire text of the connections its edges were read from is,
    /// if they were read from wire text and not changed since.
    span: Option<(u32, u32)>,
}

/// Directed edges `u -> v` with costs, as each node advertises them, plus a reverse index so
/// that "who lists v" is cheap.
#[derive(Debug, Default)]
pub struct Graph {
    names: Vec<NodeId>,
    meta: Vec<Meta>,
    /// Open addressing with linear probing: `(index, tag)`, the tag being the high half of
    /// the name's hash. Its length is a power of two, at most half full.
    slots: Vec<(Ix, u32)>,
    /// `None`: the node is not a key of the database (not a destination). Sorted by index.
    out: Vec<Option<Vec<(Ix, f64)>>>,
    /// Who lists each node, sorted.
    incoming: Vec<Vec<Ix>>,
    /// Wire text of connections (see `Meta::span`), with `garbage` bytes no longer used.
    spans: Vec<u8>,
    garbage: usize,
}

fn key_of(name: &str) -> [u64; 2] {
    match pack(name) {
        Some(k) => [k as u64, (k >> 64) as u64],
        None => LONG,
    }
}

fn hash_of(name: &str, key: [u64; 2]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = FastHasher::default();
    if key == LONG {
        h.write(name.as_bytes());
    } else {
        h.write_u64(key[0]);
        h.write_u64(key[1]);
    }
    h.finish()
}

impl Graph {
    /// The slot where `name` is, or the free slot where it would go.
    fn probe(&self, name: &str, key: [u64; 2], hash: u64) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let tag = (hash >> 32) as u32;
        let mut i = hash as usize & mask;
        loop {
            let (ix, t) = *self.slots.get(i)?;
            if ix == Ix::MAX {
                return Some(i);
            }
            if t == tag {
                let m = self.meta.get(ix as usize)?;
                let same = if key == LONG {
                    m.key == LONG && self.names.get(ix as usize)?.as_str() == name
                } else {
                    m.key == key
                };
                if same {
                    return Some(i);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Looks up a name without interning it.
    pub(crate) fn find(&self, node: &str) -> Option<Ix> {
        let key = key_of(node);
        let slot = self.probe(node, key, hash_of(node, key))?;
        let (ix, _) = *self.slots.get(slot)?;
        (ix != Ix::MAX).then_some(ix)
    }

    /// Interns a name.
    pub(crate) fn ix(&mut self, node: &NodeId) -> Ix {
        self.intern(node.as_str(), || node.clone())
    }

    /// Interns a name from the wire; `None` if it is not a valid node ID.
    pub(crate) fn ix_str(&mut self, node: &str) -> Option<Ix> {
        if let Some(i) = self.find(node) {
            return Some(i);
        }
        let id = NodeId::from_wire(node).ok()?;
        Some(self.intern(node, || id))
    }

    fn intern(&mut self, name: &str, id: impl FnOnce() -> NodeId) -> Ix {
        if self.slots.len() < 2 * (self.names.len() + 1) {
            self.grow();
        }
        let key = key_of(name);
        let hash = hash_of(name, key);
        let Some(slot) = self.probe(name, key, hash) else {
            // Unreachable: the table always has free slots.
            return Ix::MAX;
        };
        if let Some(&(ix, _)) = self.slots.get(slot)
            && ix != Ix::MAX
        {
            return ix;
        }
        let i = self.names.len() as Ix;
        if let Some(s) = self.slots.get_mut(slot) {
            *s = (i, (hash >> 32) as u32);
        }
        self.names.push(id());
        self.meta.push(Meta {
            key,
            known: None,
            span: None,
        });
        self.out.push(None);
        self.incoming.push(Vec::new());
        i
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        self.slots = vec![FREE; cap];
        let mask = cap - 1;
        for (i, (name, m)) in self.names.iter().zip(&self.meta).enumerate() {
            let hash = hash_of(name.as_str(), m.key);
            let mut s = hash as usize & mask;
            while self.slots.get(s).is_some_and(|&(ix, _)| ix != Ix::MAX) {
                s = (s + 1) & mask;
            }
            if let Some(slot) = self.slots.get_mut(s) {
                *slot = (i as Ix, (hash >> 32) as u32);
            }
        }
    }

    /// The name of an index.
    pub(crate) fn name(&self, i: Ix) -> Option<&NodeId> {
        self.names.get(i as usize)
    }

    /// Number of interned names.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The `(epoch, sequence)` last accepted from `i`.
    pub(crate) fn known(&self, i: Ix) -> Option<(u64, u64)> {
        self.meta.get(i as usize).and_then(|m| m.known)
    }

    pub(crate) fn set_known(&mut self, i: Ix, known: (u64, u64)) {
        if let Some(m) = self.meta.get_mut(i as usize) {
            m.known = Some(known);
        }
    }

    /// Whether the edges out of `u` were read from exactly this wire text (and not changed
    /// since), so that the same text again cannot change them.
    pub(crate) fn read_from(&self, u: Ix, text: &[u8]) -> bool {
        let Some((at, len)) = self.meta.get(u as usize).and_then(|m| m.span) else {
            return false;
        };
        let (at, len) = (at as usize, len as usize);
        len == text.len() && self.spans.get(at..at + len) == Some(text)
    }

    /// Records the wire text the edges out of `u` were just read from (`None`: not from
    /// wire text).
    pub(crate) fn set_read_from(&mut self, u: Ix, text: Option<&[u8]>) {
        self.forget_text(u);
        let Some(text) = text else { return };
        if self.garbage > 4096 && self.garbage > self.spans.len() / 2 {
            self.compact_spans();
        }
        let (Ok(at), Ok(len)) = (u32::try_from(self.spans.len()), u32::try_from(text.len())) else {
            return;
        };
        self.spans.extend_from_slice(text);
        if let Some(m) = self.meta.get_mut(u as usize) {
            m.span = Some((at, len));
        }
    }

    fn forget_text(&mut self, u: Ix) {
        if let Some(m) = self.meta.get_mut(u as usize)
            && let Some((_, len)) = m.span.take()
        {
            self.garbage += len as usize;
        }
    }

    fn compact_spans(&mut self) {
        let mut spans = Vec::with_capacity(self.spans.len() - self.garbage);
        for m in &mut self.meta {
            let Some((at, len)) = m.span else { continue };
            let (a, l) = (at as usize, len as usize);
            match (self.spans.get(a..a + l), u32::try_from(spans.len())) {
                (Some(text), Ok(new_at)) => {
                    spans.extend_from_slice(text);
                    m.span = Some((new_at, len));
                }
                _ => m.span = None,
            }
        }
        self.spans = spans;
        self.garbage = 0;
    }

    /// The edges out of `u`, if `u` is a key, sorted by index.
    pub(crate) fn edges(&self, u: Ix) -> Option<&[(Ix, f64)]> {
        self.out.get(u as usize).and_then(Option::as_deref)
    }

    /// Whether `u` is a key of the database.
    pub(crate) fn is_key(&self, u: Ix) -> bool {
        self.out.get(u as usize).is_some_and(Option::is_some)
    }

    /// Sets edge `u -> v`, making `u` a key.
    pub(crate) fn set_edge(&mut self, u: Ix, v: Ix, cost: f64) {
        self.forget_text(u);
        if let Some(slot) = self.out.get_mut(u as usize) {
            let m = slot.get_or_insert_with(Vec::new);
            match m.binary_search_by_key(&v, |e| e.0) {
                Ok(i) => {
                    if let Some(e) = m.get_mut(i) {
                        e.1 = cost;
                    }
                }
                Err(i) => m.insert(i, (v, cost)),
            }
        }
        if let Some(inc) = self.incoming.get_mut(v as usize)
            && let Err(i) = inc.binary_search(&u)
        {
            inc.insert(i, u);
        }
    }

    /// Removes edge `u -> v`; `u` stays a key.
    pub(crate) fn remove_edge(&mut self, u: Ix, v: Ix) {
        self.forget_text(u);
        if let Some(Some(m)) = self.out.get_mut(u as usize)
            && let Ok(i) = m.binary_search_by_key(&v, |e| e.0)
        {
            m.remove(i);
        }
        if let Some(inc) = self.incoming.get_mut(v as usize)
            && let Ok(i) = inc.binary_search(&u)
        {
            inc.remove(i);
        }
    }

    /// Replaces all edges out of `u` with `edges` (sorted by index, no index twice). Returns
    /// whether anything changed (a missing key differs from an empty map, as Go's deep
    /// equality says).
    pub(crate) fn replace_edges(&mut self, u: Ix, edges: &[(Ix, f64)]) -> bool {
        let Some(slot) = self.out.get_mut(u as usize) else {
            return false;
        };
        if slot.as_deref() == Some(edges) {
            return false;
        }
        let mut list = slot.take().unwrap_or_default();
        for (v, _) in &list {
            if let Some(inc) = self.incoming.get_mut(*v as usize)
                && let Ok(i) = inc.binary_search(&u)
            {
                inc.remove(i);
            }
        }
        for (v, _) in edges {
            if let Some(inc) = self.incoming.get_mut(*v as usize)
                && let Err(i) = inc.binary_search(&u)
            {
                inc.insert(i, u);
            }
        }
        list.clear();
        list.extend_from_slice(edges);
        if let Some(slot) = self.out.get_mut(u as usize) {
            *slot = Some(list);
        }
        true
    }

    /// The nodes that list `v` among their connections.
    pub(crate) fn listing(&self, v: Ix) -> &[Ix] {
        self.incoming.get(v as usize).map_or(&[], Vec::as_slice)
    }

    /// The whole database by name, for status output.
    pub fn to_map(&self) -> BTreeMap<NodeId, BTreeMap<NodeId, f64>> {
        let mut out = BTreeMap::new();
        for (i, edges) in self.out.iter().enumerate() {
            let (Some(edges), Some(name)) = (edges, self.names.get(i)) else {
                continue;
            };
            let m = edges
                .iter()
                .filter_map(|(v, c)| Some((self.names.get(*v as usize)?.clone(), *c)))
                .collect();
            out.insert(name.clone(), m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn interning_is_stable_across_growth() {
        let mut g = Graph::default();
        let long = "a-node-name-well-over-sixteen-bytes";
        let names: Vec<String> = (0..500)
            .map(|i| {
                if i % 7 == 0 {
                    format!("{long}-{i}")
                } else {
                    format!("n{i}")
                }
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(g.ix(&id(n)), i as Ix);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(g.find(n), Some(i as Ix), "{n}");
            assert_eq!(g.ix_str(n), Some(i as Ix));
            assert_eq!(g.name(i as Ix).map(NodeId::as_str), Some(n.as_str()));
        }
        assert_eq!(g.find("n500"), None);
        assert_eq!(g.find(long), None);
        assert_eq!(g.ix_str(""), None);
        assert_eq!(g.ix_str("a\0b"), None);
        assert_eq!(g.len(), 500);
    }

    #[test]
    fn edges_and_reverse_index() {
        let mut g = Graph::default();
        let [a, b, c] = ["a", "b", "c"].map(|n| g.ix(&id(n)));
        g.set_edge(a, b, 1.0);
        g.set_edge(a, c, 2.0);
        g.set_edge(a, b, 3.0);
        assert_eq!(g.edges(a), Some(&[(b, 3.0), (c, 2.0)][..]));
        assert_eq!(g.listing(b), &[a]);
        assert!(!g.is_key(b));
        assert!(g.replace_edges(b, &[(a, 1.0)]));
        assert!(!g.replace_edges(b, &[(a, 1.0)]));
        assert!(g.replace_edges(a, &[(c, 2.0)]));
        assert_eq!(g.listing(b), &[] as &[Ix]);
        assert_eq!(g.listing(c), &[a]);
        g.remove_edge(a, c);
        assert_eq!(g.edges(a), Some(&[][..]));
        assert!(g.is_key(a));
        assert_eq!(g.listing(c), &[] as &[Ix]);
    }

    #[test]
    fn wire_text_is_remembered_until_the_edges_change() {
        let mut g = Graph::default();
        let [a, b] = ["a", "b"].map(|n| g.ix(&id(n)));
        assert!(!g.read_from(a, b"x"));
        g.set_read_from(a, Some(b"x"));
        g.set_read_from(b, Some(b"yy"));
        assert!(g.read_from(a, b"x"));
        assert!(!g.read_from(a, b"xx"));
        g.set_edge(a, b, 1.0);
        assert!(!g.read_from(a, b"x"));
        assert!(g.read_from(b, b"yy"));
        // Enough churn to compact the text store.
        for i in 0..10_000u32 {
            g.set_read_from(b, Some(i.to_string().as_bytes()));
        }
        assert!(g.spans.len() < 10_000);
        assert!(g.read_from(b, b"9999"));
        g.set_read_from(b, None);
        assert!(!g.read_from(b, b"9999"));
    }
}
