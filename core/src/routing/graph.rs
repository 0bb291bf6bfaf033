//! The link-state database: every node's advertised connections (Go `knownConnectionCosts`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::fastkey::{FastBuild, pack};
use crate::id::NodeId;

/// Index of a node name in the graph; names are interned once and never forgotten (as in Go).
pub(crate) type Ix = u32;

/// Directed edges `u -> v` with costs, as each node advertises them, plus a reverse index so
/// that "who lists v" is cheap.
#[derive(Debug, Default)]
pub struct Graph {
    names: Vec<NodeId>,
    /// Names shorter than 16 bytes, packed (no pointer to follow on lookup).
    short: HashMap<u128, Ix, FastBuild>,
    /// Longer names.
    long: HashMap<Box<str>, Ix, FastBuild>,
    /// `None`: the node is not a key of the database (not a destination).
    out: Vec<Option<BTreeMap<Ix, f64>>>,
    incoming: Vec<BTreeSet<Ix>>,
}

impl Graph {
    /// Interns a name.
    pub(crate) fn ix(&mut self, node: &NodeId) -> Ix {
        if let Some(i) = self.find(node.as_str()) {
            return i;
        }
        let i = self.names.len() as Ix;
        self.names.push(node.clone());
        match pack(node.as_str()) {
            Some(k) => self.short.insert(k, i),
            None => self.long.insert(node.as_str().into(), i),
        };
        self.out.push(None);
        self.incoming.push(BTreeSet::new());
        i
    }

    /// Looks up a name without interning it.
    pub(crate) fn find(&self, node: &str) -> Option<Ix> {
        match pack(node) {
            Some(k) => self.short.get(&k).copied(),
            None => self.long.get(node).copied(),
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

    /// The edges out of `u`, if `u` is a key.
    pub(crate) fn edges(&self, u: Ix) -> Option<&BTreeMap<Ix, f64>> {
        self.out.get(u as usize).and_then(Option::as_ref)
    }

    /// Sets edge `u -> v`, making `u` a key.
    pub(crate) fn set_edge(&mut self, u: Ix, v: Ix, cost: f64) {
        if let Some(slot) = self.out.get_mut(u as usize) {
            slot.get_or_insert_with(BTreeMap::new).insert(v, cost);
        }
        if let Some(inc) = self.incoming.get_mut(v as usize) {
            inc.insert(u);
        }
    }

    /// Removes edge `u -> v`; `u` stays a key.
    pub(crate) fn remove_edge(&mut self, u: Ix, v: Ix) {
        if let Some(Some(m)) = self.out.get_mut(u as usize) {
            m.remove(&v);
        }
        if let Some(inc) = self.incoming.get_mut(v as usize) {
            inc.remove(&u);
        }
    }

    /// Replaces all edges out of `u`. Returns whether anything changed (a missing key differs
    /// from an empty map, as Go's deep equality says).
    pub(crate) fn replace_edges(&mut self, u: Ix, edges: BTreeMap<Ix, f64>) -> bool {
        let Some(slot) = self.out.get_mut(u as usize) else {
            return false;
        };
        if slot.as_ref() == Some(&edges) {
            return false;
        }
        let old = slot.replace(edges).unwrap_or_default();
        for v in old.keys() {
            if let Some(inc) = self.incoming.get_mut(*v as usize) {
                inc.remove(&u);
            }
        }
        let new_keys: Vec<Ix> = self
            .out
            .get(u as usize)
            .and_then(Option::as_ref)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for v in new_keys {
            if let Some(inc) = self.incoming.get_mut(v as usize) {
                inc.insert(u);
            }
        }
        true
    }

    /// The nodes that list `v` among their connections.
    pub(crate) fn listing(&self, v: Ix) -> impl Iterator<Item = Ix> + '_ {
        self.incoming.get(v as usize).into_iter().flatten().copied()
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
