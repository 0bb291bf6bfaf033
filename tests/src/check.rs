//! Outcome checks: the true shortest paths of the simulated topology, and whether each
//! node's routing table matches them.
//!
//! A table is *correct* when it names exactly the other live nodes of the node's partition,
//! each through a direct neighbour on a least-cost path (netceptor.md §5.5: ties may go
//! either way). Distances come from the simulator's own link list, computed once per
//! topology; only nodes that reported `Event::RoutesChanged` since the last check are
//! re-checked, so a 1000-node mesh stays cheap.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use receptor_core::NodeId;

/// Why a routing table is not (yet) correct.
#[derive(Debug, Clone, PartialEq)]
pub enum Wrong {
    /// It has a different number of destinations than the node's partition has peers.
    Count {
        /// Destinations in the table.
        have: usize,
        /// Other live nodes in the partition.
        want: usize,
    },
    /// It routes to a node that is dead, unknown or in another partition.
    Dest(NodeId),
    /// Its first hop towards `dest` is not a neighbour on a least-cost path.
    Hop {
        /// The destination.
        dest: NodeId,
        /// The first hop in the table.
        hop: NodeId,
    },
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count { have, want } => write!(f, "{have} destinations, want {want}"),
            Self::Dest(d) => write!(f, "route to {d}, which is not in its partition"),
            Self::Hop { dest, hop } => write!(f, "route to {dest} via {hop}: not a shortest path"),
        }
    }
}

/// The true topology: live nodes, healthy viable links, partitions and distances.
#[derive(Debug)]
pub(crate) struct Truth {
    adj: Vec<Vec<(u32, f64)>>,
    comp: Vec<u32>,
    comp_size: Vec<u32>,
    by_name: HashMap<NodeId, u32, BuildHasherDefault<NameHasher>>,
    /// Live nodes by name, in the order of a routing table.
    sorted: Vec<(NodeId, u32)>,
    /// The name of each live node, by index.
    names: Vec<Option<NodeId>>,
    rows: Vec<Option<Box<[f64]>>>,
    /// The common cost when every edge has the same one: plain BFS then.
    unit: Option<f64>,
}

impl Truth {
    /// `ids[i]` is `Some` for live nodes; `edges` are undirected `(a, b, cost)`.
    pub(crate) fn new(ids: &[Option<&NodeId>], edges: &[(u32, u32, f64)]) -> Self {
        let n = ids.len();
        let mut adj: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for &(a, b, c) in edges {
            // Two links between one pair: only one session can be established; the cheaper
            // one is the best the pair can do.
            for (u, v) in [(a, b), (b, a)] {
                let list = &mut adj[u as usize];
                match list.iter_mut().find(|(w, _)| *w == v) {
                    Some(e) => e.1 = e.1.min(c),
                    None => list.push((v, c)),
                }
            }
        }
        let mut unit = edges.first().map(|e| e.2);
        if edges.iter().any(|e| Some(e.2) != unit) {
            unit = None;
        }
        let mut comp = vec![u32::MAX; n];
        let mut comp_size = Vec::new();
        let mut queue = VecDeque::new();
        for s in 0..n {
            if ids[s].is_none() || comp[s] != u32::MAX {
                continue;
            }
            let c = comp_size.len() as u32;
            comp[s] = c;
            let mut size = 0;
            queue.push_back(s as u32);
            while let Some(u) = queue.pop_front() {
                size += 1;
                for &(v, _) in &adj[u as usize] {
                    if comp[v as usize] == u32::MAX {
                        comp[v as usize] = c;
                        queue.push_back(v);
                    }
                }
            }
            comp_size.push(size);
        }
        let mut sorted: Vec<(NodeId, u32)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some(((*id)?.clone(), i as u32)))
            .collect();
        sorted.sort();
        let by_name = sorted.iter().cloned().collect();
        let names = ids.iter().map(|id| id.cloned()).collect();
        Self {
            adj,
            comp,
            comp_size,
            by_name,
            sorted,
            names,
            rows: vec![None; n],
            unit,
        }
    }

    /// Distances from `s` to every node (`INFINITY` if unreachable).
    fn row(&mut self, s: u32) -> &[f64] {
        let s = s as usize;
        if self.rows[s].is_none() {
            let row = match self.unit {
                Some(w) => self.bfs(s, w),
                None => self.dijkstra(s),
            };
            self.rows[s] = Some(row);
        }
        self.rows[s].as_deref().unwrap_or_default()
    }

    fn bfs(&self, s: usize, w: f64) -> Box<[f64]> {
        let mut hops = vec![u32::MAX; self.adj.len()];
        let mut queue = VecDeque::from([s as u32]);
        hops[s] = 0;
        while let Some(u) = queue.pop_front() {
            for &(v, _) in &self.adj[u as usize] {
                if hops[v as usize] == u32::MAX {
                    hops[v as usize] = hops[u as usize] + 1;
                    queue.push_back(v);
                }
            }
        }
        hops.iter()
            .map(|&h| {
                if h == u32::MAX {
                    f64::INFINITY
                } else {
                    f64::from(h) * w
                }
            })
            .collect()
    }

    fn dijkstra(&self, s: usize) -> Box<[f64]> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        #[derive(PartialEq)]
        struct D(f64);
        impl Eq for D {}
        impl PartialOrd for D {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for D {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.0.total_cmp(&o.0)
            }
        }
        let mut dist = vec![f64::INFINITY; self.adj.len()];
        dist[s] = 0.0;
        let mut heap = BinaryHeap::from([Reverse((D(0.0), s as u32))]);
        while let Some(Reverse((D(d), u))) = heap.pop() {
            if d > dist[u as usize] {
                continue;
            }
            for &(v, c) in &self.adj[u as usize] {
                let nd = d + c;
                if nd < dist[v as usize] {
                    dist[v as usize] = nd;
                    heap.push(Reverse((D(nd), v)));
                }
            }
        }
        dist.into_boxed_slice()
    }

    /// The live node a name belongs to.
    pub(crate) fn index(&self, id: &NodeId) -> Option<u32> {
        self.by_name.get(id).copied()
    }

    /// The other live nodes in `s`'s partition.
    pub(crate) fn peers_in_partition(&self, s: u32) -> usize {
        let c = self.comp[s as usize];
        self.comp_size
            .get(c as usize)
            .map_or(0, |&n| n as usize - 1)
    }

    /// Number of partitions among live nodes.
    pub(crate) fn partitions(&self) -> usize {
        self.comp_size.len()
    }

    /// Checks the routing table of live node `s`.
    pub(crate) fn check(&mut self, s: u32, routes: &BTreeMap<NodeId, NodeId>) -> Result<(), Wrong> {
        let want = self.peers_in_partition(s);
        if routes.len() != want {
            return Err(Wrong::Count {
                have: routes.len(),
                want,
            });
        }
        if self.check_in_order(s, routes) {
            return Ok(());
        }
        self.find_wrong(s, routes)
    }

    /// Whether the table is correct, read alongside the live nodes in name order (a table
    /// is sorted the same way): no name lookups. `false` leaves the why to `find_wrong`.
    fn check_in_order(&mut self, s: u32, routes: &BTreeMap<NodeId, NodeId>) -> bool {
        let su = s as usize;
        self.row(s);
        for i in 0..self.adj[su].len() {
            let v = self.adj[su][i].0;
            self.row(v);
        }
        let c = self.comp[su];
        let mut expected = self
            .sorted
            .iter()
            .filter(|(_, t)| *t != s && self.comp[*t as usize] == c);
        let mut last_hop: Option<(&NodeId, u32, f64)> = None;
        let best = self.rows[su].as_deref().unwrap_or_default();
        for (dest, hop) in routes {
            let Some((name, t)) = expected.next() else {
                return false;
            };
            if name != dest {
                return false;
            }
            let (h, w) = match last_hop {
                Some((n, h, w)) if n == hop => (h, w),
                _ => {
                    let Some(&(h, w)) = self.adj[su]
                        .iter()
                        .find(|(v, _)| self.name(*v) == Some(hop))
                    else {
                        return false;
                    };
                    last_hop = Some((hop, h, w));
                    (h, w)
                }
            };
            let t = *t as usize;
            let via = w + self.rows[h as usize]
                .as_deref()
                .map_or(f64::INFINITY, |r| r[t]);
            if not_shortest(via, best[t]) {
                return false;
            }
        }
        true
    }

    /// The name of live node `v`.
    fn name(&self, v: u32) -> Option<&NodeId> {
        self.names.get(v as usize)?.as_ref()
    }

    /// What is wrong with a table of the right size that `check_in_order` refused.
    fn find_wrong(&mut self, s: u32, routes: &BTreeMap<NodeId, NodeId>) -> Result<(), Wrong> {
        let c = self.comp[s as usize];
        for (dest, hop) in routes {
            let t = match self.index(dest) {
                Some(t) if t != s && self.comp[t as usize] == c => t,
                _ => return Err(Wrong::Dest(dest.clone())),
            };
            let bad_hop = || Wrong::Hop {
                dest: dest.clone(),
                hop: hop.clone(),
            };
            let Some(h) = self.index(hop) else {
                return Err(bad_hop());
            };
            let Some(&(_, w)) = self.adj[s as usize].iter().find(|(v, _)| *v == h) else {
                return Err(bad_hop());
            };
            let via = w + self.row(h)[t as usize];
            if not_shortest(via, self.row(s)[t as usize]) {
                return Err(bad_hop());
            }
        }
        Ok(())
    }
}

/// Whether a path of cost `via` differs from the shortest, `best`, by more than rounding.
fn not_shortest(via: f64, best: f64) -> bool {
    (via - best).abs() > 1e-9 * best.max(1.0)
}

/// FxHash-style hashing for node names: the checker looks up every destination and hop of
/// every changed table, and SipHash made that a visible share of a large run.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            self.0 = (self.0.rotate_left(5) ^ le_word(chunk)).wrapping_mul(TraceHash::K);
        }
    }
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
}

/// Tracks which nodes have correct tables, re-checking only those that changed.
#[derive(Debug, Default)]
pub(crate) struct Convergence {
    pub(crate) truth: Option<Truth>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    wrong: Vec<bool>,
    wrong_count: usize,
}

impl Convergence {
    /// The topology changed: distances must be recomputed and every node re-checked.
    pub(crate) fn invalidate(&mut self) {
        self.truth = None;
    }

    /// Node `n` reported new routes.
    pub(crate) fn mark(&mut self, n: u32) {
        let i = n as usize;
        if self.is_dirty.len() <= i {
            self.is_dirty.resize(i + 1, false);
        }
        if !self.is_dirty[i] {
            self.is_dirty[i] = true;
            self.dirty.push(n);
        }
    }

    /// Whether the topology changed since the truth was built.
    pub(crate) fn needs_truth(&self) -> bool {
        self.truth.is_none()
    }

    /// Installs the truth for a new topology over `n` nodes: every node is re-checked.
    pub(crate) fn set_truth(&mut self, truth: Truth, n: usize) {
        self.truth = Some(truth);
        self.wrong = vec![false; n];
        self.wrong_count = 0;
        self.is_dirty = vec![false; n];
        self.dirty.clear();
        for i in 0..n as u32 {
            self.mark(i);
        }
    }

    /// Re-checks the dirty nodes and says whether every live node is correct.
    /// `routes(n)` is `None` for a node that is not alive.
    pub(crate) fn update<'a>(
        &mut self,
        routes: impl Fn(u32) -> Option<&'a BTreeMap<NodeId, NodeId>>,
    ) -> bool {
        let Some(truth) = self.truth.as_mut() else {
            return false;
        };
        for s in self.dirty.drain(..) {
            let i = s as usize;
            self.is_dirty[i] = false;
            let ok = routes(s).is_none_or(|r| truth.check(s, r).is_ok());
            if self.wrong[i] == ok {
                self.wrong[i] = !ok;
                if ok {
                    self.wrong_count -= 1;
                } else {
                    self.wrong_count += 1;
                }
            }
        }
        self.wrong_count == 0
    }
}

/// A fast, fixed, platform-independent hash of everything the nodes transmit (FxHash-style
/// word mixing with a final avalanche), so runs can be compared by one number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    pub(crate) fn u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(Self::K);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        // Four independent lanes over 32-byte blocks, so the multiplications overlap: every
        // transmitted frame goes through here. (Shorter input, such as the node names the
        // node seeds come from, hashes word by word as it always did.)
        if b.len() < 32 {
            return self.words(b);
        }
        let mut lanes = [self.0, !self.0, self.0 ^ Self::K, self.0.rotate_left(32)];
        let mut blocks = b.chunks_exact(32);
        for block in &mut blocks {
            for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                *lane = (lane.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(Self::K);
            }
        }
        for lane in lanes {
            self.u64(lane);
        }
        self.words(blocks.remainder());
    }

    fn words(&mut self, b: &[u8]) {
        let mut words = b.chunks_exact(8);
        for c in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.u64(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            self.u64(le_word(rest));
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        mix64(self.0)
    }
}

/// Up to eight bytes as a zero-padded little-endian word, built in registers (copying a
/// short tail into a buffer calls `memcpy`, and loading the buffer back then stalls on
/// the narrow stores: that was most of the time spent hashing frames).
fn le_word(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .rev()
        .fold(0, |w, &x| w << 8 | u64::from(x))
}

/// SplitMix64's finaliser: spreads every input bit over the output.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn square_with_a_diagonal() {
        // a - b - c - d - a, plus a - c costing 3: two equal paths a->c (2 == via b or d).
        let names: Vec<NodeId> = ["a", "b", "c", "d"].into_iter().map(id).collect();
        let ids: Vec<Option<&NodeId>> = names.iter().map(Some).collect();
        let edges = [
            (0, 1, 1.0),
            (1, 2, 1.0),
            (2, 3, 1.0),
            (3, 0, 1.0),
            (0, 2, 3.0),
        ];
        let mut t = Truth::new(&ids, &edges);
        let table = |rows: &[(&str, &str)]| -> BTreeMap<NodeId, NodeId> {
            rows.iter().map(|(d, h)| (id(d), id(h))).collect()
        };
        assert_eq!(
            t.check(0, &table(&[("b", "b"), ("c", "d"), ("d", "d")])),
            Ok(())
        );
        assert_eq!(
            t.check(0, &table(&[("b", "b"), ("c", "b"), ("d", "d")])),
            Ok(())
        );
        assert!(matches!(
            t.check(0, &table(&[("b", "b"), ("c", "c"), ("d", "d")])),
            Err(Wrong::Hop { .. })
        ));
        assert!(matches!(
            t.check(0, &table(&[("b", "b")])),
            Err(Wrong::Count { have: 1, want: 3 })
        ));
        // The right size, but a stranger instead of d; a hop that is no neighbour.
        assert_eq!(
            t.check(0, &table(&[("b", "b"), ("c", "d"), ("x", "d")])),
            Err(Wrong::Dest(id("x")))
        );
        assert!(matches!(
            t.check(1, &table(&[("a", "a"), ("c", "c"), ("d", "d")])),
            Err(Wrong::Hop { .. })
        ));
        assert_eq!(
            t.check(1, &table(&[("a", "a"), ("c", "c"), ("d", "a")])),
            Ok(())
        );
    }

    #[test]
    fn partitions_and_dead_nodes() {
        let names: Vec<NodeId> = ["a", "b", "c"].into_iter().map(id).collect();
        let ids = [Some(&names[0]), Some(&names[1]), None];
        let mut t = Truth::new(&ids, &[(0, 1, 1.0)]);
        assert_eq!(t.partitions(), 1);
        let only_b: BTreeMap<NodeId, NodeId> = [(id("b"), id("b"))].into();
        assert_eq!(t.check(0, &only_b), Ok(()));
        let with_c: BTreeMap<NodeId, NodeId> = [(id("b"), id("b")), (id("c"), id("b"))].into();
        assert!(t.check(0, &with_c).is_err());
    }

    #[test]
    fn trace_hash_is_stable() {
        let mut h = TraceHash::default();
        h.bytes(b"hello, mesh");
        h.u64(7);
        assert_eq!(h.finish(), {
            let mut h2 = TraceHash::default();
            h2.bytes(b"hello, mesh");
            h2.u64(7);
            h2.finish()
        });
        let mut h3 = TraceHash::default();
        h3.bytes(b"hello, mesi");
        h3.u64(7);
        assert_ne!(h.finish(), h3.finish());
    }
}
