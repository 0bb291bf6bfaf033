//! Least-cost routes from one node over the link-state graph (netceptor.md §5.5).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::graph::{Graph, Ix};

#[derive(PartialEq)]
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

/// For every destination reachable from `source`, the first hop (a direct neighbour) on a
/// least-cost path: `first_hop[dest]`, `None` where unreachable or for `source` itself.
///
/// Only nodes that are keys of the graph are destinations, and relaxation uses strict `<`,
/// as Go does.
pub(crate) fn first_hops(graph: &Graph, source: Ix) -> Vec<Option<Ix>> {
    let n = graph.len();
    let mut dist = vec![f64::INFINITY; n];
    let mut hop: Vec<Option<Ix>> = vec![None; n];
    let mut done = vec![false; n];
    let mut heap = BinaryHeap::with_capacity(n);
    if let Some(d) = dist.get_mut(source as usize) {
        *d = 0.0;
    }
    heap.push(Entry {
        dist: 0.0,
        node: source,
    });
    while let Some(Entry { dist: du, node: u }) = heap.pop() {
        let ui = u as usize;
        if done.get(ui).copied().unwrap_or(true) {
            continue;
        }
        if let Some(d) = done.get_mut(ui) {
            *d = true;
        }
        let Some(edges) = graph.edges(u) else {
            continue;
        };
        let via = hop.get(ui).copied().flatten();
        for (&v, &cost) in edges {
            // A node that only appears inside someone's connections is not a destination.
            if graph.edges(v).is_none() {
                continue;
            }
            let nd = du + cost;
            let vi = v as usize;
            if dist.get(vi).is_some_and(|&old| nd < old) {
                if let Some(d) = dist.get_mut(vi) {
                    *d = nd;
                }
                if let Some(h) = hop.get_mut(vi) {
                    *h = if u == source { Some(v) } else { via };
                }
                heap.push(Entry { dist: nd, node: v });
            }
        }
    }
    if let Some(h) = hop.get_mut(source as usize) {
        *h = None;
    }
    hop
}
