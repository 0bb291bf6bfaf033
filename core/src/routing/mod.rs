//! Routing: the link-state database, flood bookkeeping and the routing table (netceptor.md §5).

pub(crate) mod fastkey;
mod graph;
mod pool;
mod seen;
mod spf;

use std::collections::BTreeMap;

pub use graph::Graph;
/// Index of a node name in a router's graph.
pub(crate) type NameIx = graph::Ix;
pub(crate) use seen::SeenUpdates;

use crate::id::NodeId;
use crate::wire::{RouteUpdate, RouteView};

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

/// What routing needs to read from an update, whether decoded ([`RouteUpdate`]) or read in
/// place from the received bytes ([`RouteView`]).
pub(crate) trait Update {
    /// The originating node.
    fn node_id(&self) -> &[u8];
    /// The originator's epoch.
    fn epoch(&self) -> u64;
    /// The originator's sequence number.
    fn sequence(&self) -> u64;
    /// The epoch of a suspected duplicate, or 0.
    fn suspected_duplicate(&self) -> u64;
    /// The connections; when a name comes twice the last one counts.
    fn for_each_connection(&self, f: impl FnMut(&[u8], f64));
    /// The wire text of the connections, if read in place: the same text gives the same
    /// connections.
    fn connections_text(&self) -> Option<&[u8]>;
}

impl Update for RouteUpdate {
    fn node_id(&self) -> &[u8] {
        self.node_id.as_bytes()
    }
    fn epoch(&self) -> u64 {
        self.epoch
    }
    fn sequence(&self) -> u64 {
        self.sequence
    }
    fn suspected_duplicate(&self) -> u64 {
        self.suspected_duplicate
    }
    fn for_each_connection(&self, mut f: impl FnMut(&[u8], f64)) {
        for (k, v) in &self.connections {
            f(k.as_bytes(), *v);
        }
    }
    fn connections_text(&self) -> Option<&[u8]> {
        None
    }
}

impl Update for RouteView<'_> {
    fn node_id(&self) -> &[u8] {
        self.node_id
    }
    fn epoch(&self) -> u64 {
        self.epoch
    }
    fn sequence(&self) -> u64 {
        self.sequence
    }
    fn suspected_duplicate(&self) -> u64 {
        self.suspected_duplicate
    }
    fn for_each_connection(&self, mut f: impl FnMut(&[u8], f64)) {
        for (k, v) in self.connections() {
            f(k, v);
        }
    }
    fn connections_text(&self) -> Option<&[u8]> {
        Some(self.connections_raw())
    }
}

/// The routing state of one node.
#[derive(Debug)]
pub struct Router {
    graph: Graph,
    me: graph::Ix,
    table: BTreeMap<NodeId, NodeId>,
    /// `hops[dest]`: the first hop of the current table, by index.
    hops: Vec<Option<graph::Ix>>,
    /// Destinations whose first hop the last `recompute` changed.
    changed: Vec<graph::Ix>,
    edges: Vec<(graph::Ix, f64)>,
    /// Scratch: who loses an edge.
    stale: Vec<graph::Ix>,
}

impl Router {
    /// A router for node `me`, which knows only itself.
    pub fn new(me: &NodeId) -> Self {
        let mut graph = Graph::default();
        let ix = graph.ix(me);
        Self {
            graph,
            me: ix,
            table: BTreeMap::new(),
            hops: Vec::new(),
            changed: Vec::new(),
            edges: Vec::new(),
            stale: Vec::new(),
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
        self.graph.known(self.graph.find(node.as_bytes())?)
    }

    /// A link to `peer` was established: edges both ways with `cost`.
    pub fn link_up(&mut self, peer: &NodeId, cost: f64) {
        let p = self.graph.ix(peer);
        self.graph.set_edge(self.me, p, cost);
        self.graph.set_edge(p, self.me, cost);
    }

    /// The link to `peer` ended: drop the edges both ways.
    pub fn link_down(&mut self, peer: &NodeId) {
        if let Some(p) = self.graph.find(peer.as_str().as_bytes()) {
            self.graph.remove_edge(self.me, p);
            self.graph.remove_edge(p, self.me);
        }
    }

    /// Applies an update from another node (not this one), §5.3 steps 4 and 5.
    pub fn apply(&mut self, ri: &RouteUpdate, origin: &NodeId) -> Applied {
        let ix = self.graph.ix(origin);
        self.apply_at(ri, ix)
    }

    /// Like [`Router::apply`], for the origin the update names; `None` (and nothing done)
    /// if that is not a valid node ID.
    pub(crate) fn apply_update(&mut self, u: &impl Update) -> Option<(Applied, &NodeId)> {
        let ix = self.graph.ix_str(u.node_id())?;
        let applied = self.apply_at(u, ix);
        Some((applied, self.graph.name(ix)?))
    }

    fn apply_at(&mut self, u: &impl Update, ix: graph::Ix) -> Applied {
        let (epoch, sequence) = (u.epoch(), u.sequence());
        if u.suspected_duplicate() != 0 {
            // Another node named `origin`'s instance with this epoch as a duplicate: take the
            // new (epoch, sequence) so the surviving instance's updates are not stale.
            if self
                .graph
                .known(ix)
                .is_some_and(|(e, _)| e == u.suspected_duplicate())
            {
                self.graph.set_known(ix, (epoch, sequence));
            }
            return Applied::Fresh {
                new_node: false,
                changed: false,
            };
        }
        let prev = self.graph.known(ix);
        if let Some((e, s)) = prev
            && (epoch < e || (epoch == e && sequence <= s))
        {
            return Applied::Stale;
        }
        self.graph.set_known(ix, (epoch, sequence));
        let text = u.connections_text();
        // The same wire text as last time: the same connections, nothing to look up.
        let changed = !text.is_some_and(|t| self.graph.read_from(ix, t)) && {
            let changed = self.replace_connections(u, ix);
            self.graph.set_read_from(ix, text);
            changed
        };
        Applied::Fresh {
            new_node: prev.is_none(),
            changed,
        }
    }

    /// Sets the edges out of `ix` to the update's connections; returns whether they changed.
    fn replace_connections(&mut self, u: &impl Update, ix: graph::Ix) -> bool {
        let mut edges = std::mem::take(&mut self.edges);
        edges.clear();
        u.for_each_connection(|name, cost| {
            // Names that are not valid node IDs are left out.
            if let Some(v) = self.graph.ix_str(name) {
                edges.push((v, cost));
            }
        });
        // By index; of a name listed twice the last counts (the sort is stable).
        edges.sort_by_key(|e| e.0);
        edges.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let changed = self.graph.replace_edges(ix, &edges);
        self.edges = edges;
        if changed {
            // A node that no longer lists X also loses the edge X -> node (except ours, which
            // our own link state decides).
            let mut stale = std::mem::take(&mut self.stale);
            stale.clear();
            stale.extend(self.graph.listing(ix).iter().copied().filter(|&x| {
                x != self.me
                    && self
                        .graph
                        .edges(ix)
                        .is_none_or(|m| m.binary_search_by_key(&x, |e| e.0).is_err())
            }));
            for &x in &stale {
                self.graph.remove_edge(x, ix);
            }
            self.stale = stale;
        }
        changed
    }

    /// Recomputes the routing table; returns whether it changed.
    pub fn recompute(&mut self) -> bool {
        spf::with_scratch(|scratch| {
            let hops = spf::first_hops(&self.graph, self.me, scratch);
            self.changed.clear();
            self.hops.resize(hops.len(), None);
            for (dest, (old, new)) in self.hops.iter_mut().zip(hops).enumerate() {
                if old == new {
                    continue;
                }
                *old = *new;
                let d = dest as graph::Ix;
                self.changed.push(d);
                let Some(name) = self.graph.name(d) else {
                    continue;
                };
                match new.and_then(|h| self.graph.name(h)) {
                    Some(hop) => {
                        self.table.insert(name.clone(), hop.clone());
                    }
                    None => {
                        self.table.remove(name);
                    }
                }
            }
        });
        !self.changed.is_empty()
    }

    /// The cost of the least-cost path to every reachable node (Go's `PathCost`), computed
    /// afresh: it is asked for rarely (`status`), so routing does not keep it.
    pub fn path_costs(&self) -> BTreeMap<NodeId, f64> {
        spf::with_scratch(|scratch| {
            spf::first_hops(&self.graph, self.me, scratch);
            scratch
                .reached()
                .filter_map(|(ix, cost)| Some((self.graph.name(ix)?.clone(), cost)))
                .collect()
        })
    }

    /// The destinations whose first hop the last [`Router::recompute`] changed.
    pub(crate) fn changed(&self) -> &[graph::Ix] {
        &self.changed
    }

    /// The first hop towards `dest`, by index.
    pub(crate) fn hop(&self, dest: graph::Ix) -> Option<graph::Ix> {
        self.hops.get(dest as usize).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// A stream of updates from a few origins about a few names, costs from a small set
    /// so that repeats (unchanged connections) are common.
    fn updates() -> impl Strategy<Value = Vec<RouteUpdate>> {
        let one = (
            0usize..4,
            0u64..3,
            0u64..6,
            // Up to ten names (more than a record keeps the indexes of), one of them
            // the empty name, which is not a valid node ID.
            prop::collection::btree_map(0usize..12, 1u32..3, 0..10),
            prop_oneof![4 => Just(0u64), 1 => 0u64..3],
        )
            .prop_map(|(o, epoch, sequence, conns, dup)| RouteUpdate {
                node_id: format!("n{o}"),
                update_id: String::new(),
                epoch,
                sequence,
                connections: conns
                    .into_iter()
                    .map(|(k, c)| {
                        let name = if k == 11 {
                            String::new()
                        } else {
                            format!("n{k}")
                        };
                        (name, f64::from(c))
                    })
                    .collect(),
                forwarding_node: "p".into(),
                suspected_duplicate: dup,
            });
        prop::collection::vec(one, 0..40)
    }

    #[test]
    fn path_costs_are_least_cost_sums() {
        // me -1- b -1- c, and me -5- c: c costs 2 through b; d is unreachable.
        let me = id("me");
        let mut r = Router::new(&me);
        r.link_up(&id("b"), 1.0);
        r.link_up(&id("c"), 5.0);
        let update = |node: &str, conns: &[(&str, f64)]| RouteUpdate {
            node_id: node.into(),
            update_id: String::new(),
            epoch: 1,
            sequence: 1,
            connections: conns.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect(),
            forwarding_node: node.into(),
            suspected_duplicate: 0,
        };
        r.apply(&update("b", &[("me", 1.0), ("c", 1.0)]), &id("b"));
        r.apply(&update("c", &[("me", 5.0), ("b", 1.0)]), &id("c"));
        r.apply(&update("d", &[]), &id("d"));
        r.recompute();
        let costs = r.path_costs();
        assert_eq!(costs.get(&id("b")), Some(&1.0));
        assert_eq!(costs.get(&id("c")), Some(&2.0));
        assert_eq!(costs.get(&id("d")), None);
        assert_eq!(costs.get(&me), None);
        assert_eq!(
            costs.keys().collect::<Vec<_>>(),
            r.table().keys().collect::<Vec<_>>()
        );
    }

    proptest! {
        /// Reading updates in place (with the unchanged-text shortcut) and decoding them
        /// give the same decisions and the same database.
        #[test]
        fn in_place_and_decoded_updates_agree(us in updates(), links in prop::collection::vec((0usize..6, any::<bool>()), 0..6)) {
            let me = id("n0");
            let (mut a, mut b) = (Router::new(&me), Router::new(&me));
            for (i, u) in us.iter().enumerate() {
                if let Some(&(peer, up)) = links.get(i % 7) {
                    let peer = id(&format!("n{}", peer + 1));
                    for r in [&mut a, &mut b] {
                        if up { r.link_up(&peer, 1.0) } else { r.link_down(&peer) }
                    }
                }
                if u.node_id == "n0" {
                    continue;
                }
                let enc = u.encode().unwrap();
                let view = RouteView::parse(&enc.message()[1..]).unwrap();
                let ra = a.apply_update(&view).map(|(x, n)| (x, n.clone()));
                let rb = b.apply(u, &id(&u.node_id));
                prop_assert_eq!(ra, Some((rb, id(&u.node_id))));
                prop_assert_eq!(a.graph().to_map(), b.graph().to_map());
                prop_assert_eq!(a.recompute(), b.recompute());
                prop_assert_eq!(a.table(), b.table());
            }
        }
    }
}
