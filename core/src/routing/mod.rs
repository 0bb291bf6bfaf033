//! Routing: the link-state database, flood bookkeeping and the routing table (netceptor.md §5).

mod fastkey;
mod graph;
mod seen;
mod spf;

use std::collections::BTreeMap;

pub use graph::Graph;
pub(crate) use seen::SeenUpdates;

use crate::id::NodeId;
use crate::wire::RouteUpdate;

/// What processing a routing update from another node did (§5.3 steps 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Older than what we know: stop, and do not forward.
    Stale,
    /// Accepted; forward it.
    Fresh {
        /// The first update from this node.
        new_node: bool,
        /// Its connections differ from what we had, so routes need recomputing.
        changed: bool,
    },
}

/// The routing state of one node.
#[derive(Debug)]
pub struct Router {
    graph: Graph,
    me: graph::Ix,
    /// `known[ix] = (epoch, sequence)` of the newest update seen from that node.
    known: Vec<Option<(u64, u64)>>,
    table: BTreeMap<NodeId, NodeId>,
}

impl Router {
    /// A router for node `me`, which knows only itself.
    pub fn new(me: &NodeId) -> Self {
        let mut graph = Graph::default();
        let ix = graph.ix(me);
        Self {
            graph,
            me: ix,
            known: Vec::new(),
            table: BTreeMap::new(),
        }
    }

    /// The link-state database.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The routing table: destination -> first hop.
    pub fn table(&self) -> &BTreeMap<NodeId, NodeId> {
        &self.table
    }

    /// The (epoch, sequence) last accepted from `node`.
    pub fn known(&self, node: &str) -> Option<(u64, u64)> {
        let ix = self.graph.find(node)?;
        self.known.get(ix as usize).copied().flatten()
    }

    fn known_mut(&mut self, ix: graph::Ix) -> Option<&mut Option<(u64, u64)>> {
        let i = ix as usize;
        if self.known.len() <= i {
            self.known.resize(i + 1, None);
        }
        self.known.get_mut(i)
    }

    /// A link to `peer` was established: edges both ways with `cost`.
    pub fn link_up(&mut self, peer: &NodeId, cost: f64) {
        let p = self.graph.ix(peer);
        self.graph.set_edge(self.me, p, cost);
        self.graph.set_edge(p, self.me, cost);
    }

    /// The link to `peer` ended: drop the edges both ways.
    pub fn link_down(&mut self, peer: &NodeId) {
        if let Some(p) = self.graph.find(peer.as_str()) {
            self.graph.remove_edge(self.me, p);
            self.graph.remove_edge(p, self.me);
        }
    }

    /// Applies an update from another node (not this one), §5.3 steps 4 and 5.
    pub fn apply(&mut self, ri: &RouteUpdate, origin: &NodeId) -> Applied {
        let ix = self.graph.ix(origin);
        if ri.suspected_duplicate != 0 {
            // Another node named `origin`'s instance with this epoch as a duplicate: take the
            // new (epoch, sequence) so the surviving instance's updates are not stale.
            if let Some(slot) = self.known_mut(ix)
                && slot.is_some_and(|(e, _)| e == ri.suspected_duplicate)
            {
                *slot = Some((ri.epoch, ri.sequence));
            }
            return Applied::Fresh {
                new_node: false,
                changed: false,
            };
        }
        let prev = self.known_mut(ix).and_then(|s| *s);
        if let Some((e, s)) = prev
            && (ri.epoch < e || (ri.epoch == e && ri.sequence <= s))
        {
            return Applied::Stale;
        }
        if let Some(slot) = self.known_mut(ix) {
            *slot = Some((ri.epoch, ri.sequence));
        }
        let mut edges = BTreeMap::new();
        for (name, cost) in &ri.connections {
            // Known names need no `NodeId` (nor its allocation) to be looked up.
            let ix = match self.graph.find(name) {
                Some(ix) => ix,
                None => match NodeId::from_wire(name) {
                    Ok(id) => self.graph.ix(&id),
                    Err(_) => continue,
                },
            };
            edges.insert(ix, *cost);
        }
        let changed = if self.graph.replace_edges(ix, edges) {
            // A node that no longer lists X also loses the edge X -> node (except ours, which
            // our own link state decides).
            let stale: Vec<graph::Ix> = self
                .graph
                .listing(ix)
                .filter(|&x| {
                    x != self.me && !self.graph.edges(ix).is_some_and(|m| m.contains_key(&x))
                })
                .collect();
            for x in stale {
                self.graph.remove_edge(x, ix);
            }
            true
        } else {
            false
        };
        Applied::Fresh {
            new_node: prev.is_none(),
            changed,
        }
    }

    /// Recomputes the routing table; returns whether it changed.
    pub fn recompute(&mut self) -> bool {
        let hops = spf::first_hops(&self.graph, self.me);
        let mut table = BTreeMap::new();
        for (dest, hop) in hops.iter().enumerate() {
            let (Some(hop), Some(dest)) = (hop, self.graph.name(dest as graph::Ix)) else {
                continue;
            };
            if let Some(hop) = self.graph.name(*hop) {
                table.insert(dest.clone(), hop.clone());
            }
        }
        if table == self.table {
            return false;
        }
        self.table = table;
        true
    }
}
