//! The link-state database: every node's advertised connections (Go `knownConnectionCosts`).
//!
//! Laid out for a node among many: in a large mesh every node holds a graph of every node,
//! and a routing update touches one origin's entry, so lookups should cost as few cache
//! misses as possible. Names are interned to dense indexes by an open-addressing table of
//! `(index, tag)` slots; what an update needs about its origin (the name key, the newest
//! `(epoch, sequence)`, where the wire text of its connections is kept) sits in one small
//! record per index; edges are short sorted vectors.

use std::collections::BTreeMap;

use super::fastkey::{FastHasher, pack_bytes};
use super::pool::Pool;
use crate::id::NodeId;

/// Index of a node name in the graph. Names are interned once; they are forgotten only by
/// [`Graph::retain`], which gives the survivors new indexes.
pub(crate) type Ix = u32;

/// The high word of the key of a name of 16 bytes or more (never that of a packed name,
/// whose top byte is its length); the low word is the name's hash, and the bytes are
/// compared in `names`.
const LONG_HI: u64 = u64::MAX;
/// Wire text up to this long is kept inside a name's record.
const INLINE_TEXT: usize = 45;
/// `Meta::text_len` when there is no text, or when it is in `Graph::spans`.
const NO_TEXT: u8 = u8::MAX;
const SPILLED: u8 = u8::MAX - 1;

/// A slot of the name index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: [u64; 2],
    ix: Ix,
}

const FREE: Slot = Slot {
    key: [0; 2],
    ix: Ix::MAX,
};

/// Per-name data that routing updates read: one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Meta {
    /// `(epoch, sequence)` of the newest update accepted from this node, if any.
    known: (u64, u64),
    has_known: bool,
    /// The wire text of the connections the node's edges were read from, if they were read
    /// from wire text and not changed since: its length and bytes, or [`SPILLED`] and its
    /// place in `Graph::spans` (two little-endian u32s), or [`NO_TEXT`].
    text_len: u8,
    text: [u8; INLINE_TEXT + 1],
}

// One cache line: what an update reads about its origin comes with a single miss.
const _: () = assert!(size_of::<Meta>() == 64);

impl Meta {
    const NEW: Self = Self {
        known: (0, 0),
        has_known: false,
        text_len: NO_TEXT,
        text: [0; INLINE_TEXT + 1],
    };

    fn set_spilled(&mut self, at: u32, len: u32) {
        let mut w = [0u8; 8];
        w[..4].copy_from_slice(&at.to_le_bytes());
        w[4..].copy_from_slice(&len.to_le_bytes());
        if let Some(dst) = self.text.get_mut(..8) {
            dst.copy_from_slice(&w);
        }
        self.text_len = SPILLED;
    }

    fn spilled(&self) -> Option<(usize, usize)> {
        if self.text_len != SPILLED {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(self.text.get(i..i + 4)?);
            Some(u32::from_le_bytes(b) as usize)
        };
        Some((word(0)?, word(4)?))
    }
}

/// What [`Graph::retain`] keeps of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The name, its `(epoch, sequence)`, its edges and their wire text.
    Whole,
    /// The name only: no longer a key, nothing known about it.
    NameOnly,
    /// Nothing.
    Drop,
}

/// Directed edges `u -> v` with costs, as each node advertises them, plus a reverse index so
/// that "who lists v" is cheap.
#[derive(Debug, Default)]
pub struct Graph {
    names: Vec<NodeId>,
    meta: Vec<Meta>,
    /// Open addressing with linear probing on the name key; the length is a power of two
    /// and the table at most half full.
    slots: Vec<Slot>,
    /// The edges out of each node, sorted by index; only those of keys count.
    out: Pool<(Ix, f64)>,
    /// Whether a node is a key of the database (a destination).
    is_key: Vec<bool>,
    /// Who lists each node, sorted.
    incoming: Pool<Ix>,
    /// Wire text too long for a record (see `Meta::text`), with `garbage` bytes unused.
    spans: Vec<u8>,
    garbage: usize,
    scratch: Vec<Ix>,
}

fn key_of(name: &[u8]) -> [u64; 2] {
    use std::hash::Hasher as _;
    match pack_bytes(name) {
        Some(k) => [k as u64, (k >> 64) as u64],
        None => {
            let mut h = FastHasher::default();
            h.write(name);
            [h.finish(), LONG_HI]
        }
    }
}

fn home(key: [u64; 2], mask: usize) -> usize {
    let mut z = key[0] ^ key[1].rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as usize & mask
}

impl Graph {
    /// The slot where `name` is, or the free slot where it would go.
    fn probe(&self, name: &[u8], key: [u64; 2]) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = home(key, mask);
        loop {
            let slot = self.slots.get(i)?;
            if slot.ix == Ix::MAX {
                return Some(i);
            }
            if slot.key == key
                && (key[1] != LONG_HI
                    || self.names.get(slot.ix as usize)?.as_str().as_bytes() == name)
            {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Where the lookup of `name` starts (for [`Graph::touch_slot`]).
    pub(crate) fn home(&self, name: &[u8]) -> usize {
        home(key_of(name), self.slots.len().wrapping_sub(1))
    }

    /// Reads slot `i`, so that a lookup that starts there finds it in the cache.
    pub(crate) fn touch_slot(&self, i: usize) -> u64 {
        self.slots.get(i).map_or(0, |s| s.key[0] ^ u64::from(s.ix))
    }

    /// Looks up a name without interning it.
    pub(crate) fn find(&self, node: &[u8]) -> Option<Ix> {
        let slot = self.slots.get(self.probe(node, key_of(node))?)?;
        (slot.ix != Ix::MAX).then_some(slot.ix)
    }

    /// Interns a name.
    pub(crate) fn ix(&mut self, node: &NodeId) -> Ix {
        self.intern(node.as_str().as_bytes(), || node.clone())
    }

    /// Interns a name from the wire; `None` if it is not a valid node ID.
    pub(crate) fn ix_str(&mut self, node: &[u8]) -> Option<Ix> {
        if let Some(i) = self.find(node) {
            return Some(i);
        }
        let id = NodeId::from_wire(std::str::from_utf8(node).ok()?).ok()?;
        Some(self.intern(node, || id))
    }

    fn intern(&mut self, name: &[u8], id: impl FnOnce() -> NodeId) -> Ix {
        if self.slots.len() < 2 * (self.names.len() + 1) {
            self.grow();
        }
        let key = key_of(name);
        let Some(at) = self.probe(name, key) else {
            // Unreachable: the table always has free slots.
            return Ix::MAX;
        };
        let Some(slot) = self.slots.get_mut(at) else {
            return Ix::MAX;
        };
        if slot.ix != Ix::MAX {
            return slot.ix;
        }
        let i = self.names.len() as Ix;
        *slot = Slot { key, ix: i };
        self.names.push(id());
        self.meta.push(Meta::NEW);
        self.out.push_empty();
        self.is_key.push(false);
        self.incoming.push_empty();
        i
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![FREE; cap]);
        let mask = cap - 1;
        for slot in old.into_iter().filter(|s| s.ix != Ix::MAX) {
            let mut i = home(slot.key, mask);
            while self.slots.get(i).is_some_and(|s| s.ix != Ix::MAX) {
                i = (i + 1) & mask;
            }
            if let Some(s) = self.slots.get_mut(i) {
                *s = slot;
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
        self.meta
            .get(i as usize)
            .and_then(|m| m.has_known.then_some(m.known))
    }

    pub(crate) fn set_known(&mut self, i: Ix, known: (u64, u64)) {
        if let Some(m) = self.meta.get_mut(i as usize) {
            m.known = known;
            m.has_known = true;
        }
    }

    /// Whether the edges out of `u` were read from exactly this wire text (and not changed
    /// since), so that the same text again cannot change them.
    pub(crate) fn read_from(&self, u: Ix, text: &[u8]) -> bool {
        let Some(m) = self.meta.get(u as usize) else {
            return false;
        };
        match m.spilled() {
            Some((at, len)) => len == text.len() && self.spans.get(at..at + len) == Some(text),
            None => m.text_len != NO_TEXT && m.text.get(..m.text_len as usize) == Some(text),
        }
    }

    /// Records the wire text the edges out of `u` were just read from (`None`: not from
    /// wire text).
    pub(crate) fn set_read_from(&mut self, u: Ix, text: Option<&[u8]>) {
        self.forget_text(u);
        let Some(text) = text else { return };
        if text.len() <= INLINE_TEXT {
            if let Some(m) = self.meta.get_mut(u as usize)
                && let Some(dst) = m.text.get_mut(..text.len())
            {
                dst.copy_from_slice(text);
                m.text_len = text.len() as u8;
            }
            return;
        }
        if self.garbage > 4096 && self.garbage > self.spans.len() / 2 {
            self.compact_spans();
        }
        let (Ok(at), Ok(len)) = (u32::try_from(self.spans.len()), u32::try_from(text.len())) else {
            return;
        };
        self.spans.extend_from_slice(text);
        if let Some(m) = self.meta.get_mut(u as usize) {
            m.set_spilled(at, len);
        }
    }

    fn forget_text(&mut self, u: Ix) {
        if let Some(m) = self.meta.get_mut(u as usize) {
            if let Some((_, len)) = m.spilled() {
                self.garbage += len;
            }
            m.text_len = NO_TEXT;
        }
    }

    fn compact_spans(&mut self) {
        let mut spans = Vec::with_capacity(self.spans.len() - self.garbage);
        for m in &mut self.meta {
            let Some((a, l)) = m.spilled() else { continue };
            match (self.spans.get(a..a + l), u32::try_from(spans.len())) {
                (Some(text), Ok(new_at)) => {
                    spans.extend_from_slice(text);
                    m.set_spilled(new_at, l as u32);
                }
                _ => m.text_len = NO_TEXT,
            }
        }
        self.spans = spans;
        self.garbage = 0;
    }

    /// The edges out of `u`, if `u` is a key, sorted by index.
    pub(crate) fn edges(&self, u: Ix) -> Option<&[(Ix, f64)]> {
        self.is_key(u).then(|| self.out.get(u as usize))
    }

    /// Whether `u` is a key of the database.
    pub(crate) fn is_key(&self, u: Ix) -> bool {
        self.is_key.get(u as usize).copied().unwrap_or(false)
    }

    /// Sets edge `u -> v`, making `u` a key.
    pub(crate) fn set_edge(&mut self, u: Ix, v: Ix, cost: f64) {
        self.forget_text(u);
        if let Some(k) = self.is_key.get_mut(u as usize) {
            *k = true;
        }
        let (ui, vi) = (u as usize, v as usize);
        match self.out.get(ui).binary_search_by_key(&v, |e| e.0) {
            Ok(i) => {
                if let Some(e) = self.out.get_mut(ui).get_mut(i) {
                    e.1 = cost;
                }
            }
            Err(i) => self.out.insert(ui, i, (v, cost)),
        }
        if let Err(i) = self.incoming.get(vi).binary_search(&u) {
            self.incoming.insert(vi, i, u);
        }
    }

    /// Removes edge `u -> v`; `u` stays a key.
    pub(crate) fn remove_edge(&mut self, u: Ix, v: Ix) {
        self.forget_text(u);
        let (ui, vi) = (u as usize, v as usize);
        if self.is_key(u)
            && let Ok(i) = self.out.get(ui).binary_search_by_key(&v, |e| e.0)
        {
            self.out.remove(ui, i);
        }
        if let Ok(i) = self.incoming.get(vi).binary_search(&u) {
            self.incoming.remove(vi, i);
        }
    }

    /// Replaces all edges out of `u` with `edges` (sorted by index, no index twice). Returns
    /// whether anything changed (a missing key differs from an empty map, as Go's deep
    /// equality says).
    pub(crate) fn replace_edges(&mut self, u: Ix, edges: &[(Ix, f64)]) -> bool {
        let ui = u as usize;
        if ui >= self.is_key.len() || self.edges(u) == Some(edges) {
            return false;
        }
        // Not a key yet: no edges to compare with (any it had were cleared when it stopped
        // being one, which never happens: keys stay keys).
        let list: &[(Ix, f64)] = if self.is_key(u) {
            self.out.get(ui)
        } else {
            &[]
        };
        let mut list_ix = std::mem::take(&mut self.scratch);
        list_ix.clear();
        list_ix.extend(list.iter().map(|e| e.0));
        // Only the neighbours that come or go change their reverse index: a new list
        // mostly names the same ones.
        let (mut i, mut j) = (0, 0);
        loop {
            let old = list_ix.get(i).copied();
            let new = edges.get(j).map(|e| e.0);
            let (gone, came) = match (old, new) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => {
                    i += 1;
                    j += 1;
                    continue;
                }
                (Some(a), Some(b)) if a < b => (Some(a), None),
                (Some(a), None) => (Some(a), None),
                (_, b) => (None, b),
            };
            if let Some(v) = gone {
                i += 1;
                let vi = v as usize;
                if let Ok(k) = self.incoming.get(vi).binary_search(&u) {
                    self.incoming.remove(vi, k);
                }
            }
            if let Some(v) = came {
                j += 1;
                let vi = v as usize;
                if let Err(k) = self.incoming.get(vi).binary_search(&u) {
                    self.incoming.insert(vi, k, u);
                }
            }
        }
        self.scratch = list_ix;
        self.out.set(ui, edges);
        if let Some(k) = self.is_key.get_mut(ui) {
            *k = true;
        }
        true
    }

    /// The nodes that list `v` among their connections.
    pub(crate) fn listing(&self, v: Ix) -> &[Ix] {
        self.incoming.get(v as usize)
    }

    /// How many nodes have advertised their connections (the entries of [`Graph::to_map`]).
    pub fn known_count(&self) -> usize {
        (0..self.names.len())
            .filter(|&i| self.is_key(i as Ix))
            .count()
    }

    /// The wire text recorded by [`Graph::set_read_from`] for `u`, if any.
    fn text(&self, u: Ix) -> Option<&[u8]> {
        let m = self.meta.get(u as usize)?;
        match m.spilled() {
            Some((at, len)) => self.spans.get(at..at + len),
            None if m.text_len == NO_TEXT => None,
            None => m.text.get(..m.text_len as usize),
        }
    }

    /// Rebuilds the graph with the names `keep` does not drop, in their order, and returns
    /// where each old index went (`Ix::MAX`: dropped). Edges of a name kept whole must point
    /// at kept names only; edges to dropped ones are left out. O(names + edges): for the
    /// rare sweep that forgets nodes, not for the path of every update.
    pub(crate) fn retain(&mut self, keep: impl Fn(Ix) -> Keep) -> Vec<Ix> {
        let mut g = Self::default();
        let mut remap = vec![Ix::MAX; self.names.len()];
        for (i, name) in self.names.iter().enumerate() {
            if keep(i as Ix) != Keep::Drop
                && let Some(slot) = remap.get_mut(i)
            {
                *slot = g.intern(name.as_str().as_bytes(), || name.clone());
            }
        }
        let mut edges = Vec::new();
        for (old, &new) in remap.iter().enumerate() {
            let u = old as Ix;
            if new == Ix::MAX || keep(u) != Keep::Whole {
                continue;
            }
            if let Some(known) = self.known(u) {
                g.set_known(new, known);
            }
            if let Some(list) = self.edges(u) {
                // Indexes keep their order, so the list stays sorted.
                edges.clear();
                edges.extend(list.iter().filter_map(|&(v, c)| {
                    let v = *remap.get(v as usize)?;
                    (v != Ix::MAX).then_some((v, c))
                }));
                g.replace_edges(new, &edges);
                g.set_read_from(new, self.text(u));
            }
        }
        *self = g;
        remap
    }

    /// The whole database by name, for status output.
    pub fn to_map(&self) -> BTreeMap<NodeId, BTreeMap<NodeId, f64>> {
        let mut out = BTreeMap::new();
        for (i, name) in self.names.iter().enumerate() {
            let Some(edges) = self.edges(i as Ix) else {
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
            assert_eq!(g.find(n.as_bytes()), Some(i as Ix), "{n}");
            assert_eq!(g.ix_str(n.as_bytes()), Some(i as Ix));
            assert_eq!(g.name(i as Ix).map(NodeId::as_str), Some(n.as_str()));
        }
        assert_eq!(g.find(b"n500"), None);
        assert_eq!(g.find(long.as_bytes()), None);
        assert_eq!(g.ix_str(b""), None);
        assert_eq!(g.ix_str(b"a\0b"), None);
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
    fn retain_renumbers_and_strips() {
        let mut g = Graph::default();
        let [me, a, b, c, d] = ["me", "a", "b", "c", "d"].map(|n| g.ix(&id(n)));
        g.set_edge(me, a, 1.0);
        g.set_edge(a, me, 1.0);
        g.set_edge(a, b, 2.0);
        g.set_known(a, (1, 2));
        g.set_read_from(a, Some(b"{\"b\":2,\"me\":1}"));
        // b forgotten but listed by a: kept as a name; c a key forgotten; d a bare name.
        assert!(g.replace_edges(b, &[(c, 1.0)]));
        g.set_known(b, (3, 4));
        g.set_known(c, (5, 6));
        assert!(g.replace_edges(c, &[(b, 1.0), (d, 1.0)]));
        let remap = g.retain(|i| match i {
            i if i == b => Keep::NameOnly,
            i if i == c || i == d => Keep::Drop,
            _ => Keep::Whole,
        });
        assert_eq!(remap, vec![0, 1, 2, Ix::MAX, Ix::MAX]);
        assert_eq!(g.len(), 3);
        assert_eq!(g.find(b"c"), None);
        assert_eq!(g.find(b"d"), None);
        let (a, b) = (g.find(b"a").unwrap(), g.find(b"b").unwrap());
        assert_eq!(g.known(a), Some((1, 2)));
        assert_eq!(g.known(b), None);
        assert!(!g.is_key(b));
        assert_eq!(g.edges(a), Some(&[(0, 1.0), (b, 2.0)][..]));
        assert_eq!(g.listing(b), &[a]);
        assert_eq!(g.listing(0), &[a]);
        assert!(g.read_from(a, b"{\"b\":2,\"me\":1}"));
        let map = g.to_map();
        assert_eq!(map.len(), 2);
        assert!(!map.contains_key("b"));
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
        // Long text goes to the shared store; enough churn compacts it.
        let long = |i: u32| format!("{i:060}");
        for i in 0..10_000u32 {
            g.set_read_from(b, Some(long(i).as_bytes()));
            if i % 100 == 0 {
                g.set_read_from(a, Some(long(i + 1).as_bytes()));
            }
        }
        assert!(g.spans.len() < 10_000);
        assert!(g.read_from(b, long(9999).as_bytes()));
        assert!(g.read_from(a, long(9901).as_bytes()));
        assert!(!g.read_from(a, long(9902).as_bytes()));
        g.set_read_from(b, Some(b"short"));
        assert!(g.read_from(b, b"short"));
        assert!(!g.read_from(b, long(9999).as_bytes()));
        g.set_read_from(b, None);
        assert!(!g.read_from(b, b"short"));
        assert!(g.read_from(a, long(9901).as_bytes()));
    }
}
