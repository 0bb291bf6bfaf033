//! Least-cost routes from one node over the link-state graph (netceptor.md §5.5).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::graph::{Graph, Ix};

#[derive(Debug, PartialEq)]
struct Entry {
    dist: f64,
    node: Ix,
}

impl Eq for Entry {}

impl Ord for Entry {
    // Min-heap on distance; ties broken by index so runs are repeatable.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .dist
            .total_cmp(&self.dist)
            .then_with(|| other.node.cmp(&self.node))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Buffers kept between runs.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    dist: Vec<f64>,
    hop: Vec<Option<Ix>>,
    done: Vec<bool>,
    heap: BinaryHeap<Entry>,
}

impl Scratch {
    /// After [`first_hops`]: each destination it reached, with the cost of its least-cost path.
    pub(crate) fn reached(&self) -> impl Iterator<Item = (Ix, f64)> + '_ {
        self.hop
            .iter()
            .zip(&self.dist)
            .enumerate()
            .filter_map(|(i, (hop, &dist))| hop.map(|_| (i as Ix, dist)))
    }
}

thread_local! {
    /// One set of buffers per thread, shared by every router on it: where one process runs
    /// many nodes (the simulator), the buffers stay in the cache from one node's
    /// computation to the next instead of each node keeping its own.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's buffers.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        // Not reentrant in practice; a fresh set keeps it correct if it ever were.
        Err(_) => f(&mut Scratch::default()),
    })
}

/// For every destination reachable from `source`, the first hop (a direct neighbour) on a
/// least-cost path: `first_hop[dest]`, `None` where unreachable or for `source` itself.
///
/// Only nodes that are keys of the graph are destinations, and relaxation uses strict `<`,
/// as Go does.
pub(crate) fn first_hops<'s>(graph: &Graph, source: Ix, s: &'s mut Scratch) -> &'s [Option<Ix>] {
    let n = graph.len();
    s.dist.clear();
    s.dist.resize(n, f64::INFINITY);
    s.hop.clear();
    s.hop.resize(n, None);
    s.done.clear();
    s.done.resize(n, false);
    s.heap.clear();
    if let Some(d) = s.dist.get_mut(source as usize) {
        *d = 0.0;
    }
    s.heap.push(Entry {
        dist: 0.0,
        node: source,
    });
    while let Some(Entry { dist: du, node: u }) = s.heap.pop() {
        let ui = u as usize;
        if s.done.get(ui).copied().unwrap_or(true) {
            continue;
        }
        if let Some(d) = s.done.get_mut(ui) {
            *d = true;
        }
        let Some(edges) = graph.edges(u) else {
            continue;
        };
        let via = s.hop.get(ui).copied().flatten();
        for &(v, cost) in edges {
            // A node that only appears inside someone's connections is not a destination.
            if !graph.is_key(v) {
                continue;
            }
            let nd = du + cost;
            let vi = v as usize;
            if s.dist.get(vi).is_some_and(|&old| nd < old) {
                if let Some(d) = s.dist.get_mut(vi) {
                    *d = nd;
                }
                if let Some(h) = s.hop.get_mut(vi) {
                    *h = if u == source { Some(v) } else { via };
                }
                s.heap.push(Entry { dist: nd, node: v });
            }
        }
    }
    if let Some(h) = s.hop.get_mut(source as usize) {
        *h = None;
    }
    &s.hop
}
