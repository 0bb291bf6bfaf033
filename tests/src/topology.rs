//! Topologies: node names plus undirected edges, and how to build them in a [`Sim`].

use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::link::LinkModel;
use crate::sim::Sim;

/// A set of named nodes and the links between them. Edge `(a, b)` means node `a` dials `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Node names, index = position.
    pub names: Vec<String>,
    /// Links as `(dialer, listener)` indexes into `names`.
    pub edges: Vec<(usize, usize)>,
}

/// `n0`, `n1`, ...: names that sort in creation order up to `n`.
fn names(n: usize) -> Vec<String> {
    let width = n.saturating_sub(1).to_string().len();
    (0..n).map(|i| format!("n{i:0width$}")).collect()
}

impl Topology {
    /// `n` nodes in a row: `n0 - n1 - ... - n(n-1)`.
    pub fn line(n: usize) -> Self {
        Self {
            names: names(n),
            edges: (1..n).map(|i| (i - 1, i)).collect(),
        }
    }

    /// A line closed into a ring (needs `n >= 3`).
    pub fn ring(n: usize) -> Self {
        let mut t = Self::line(n);
        if n >= 3 {
            t.edges.push((n - 1, 0));
        }
        t
    }

    /// A hub `n0` with `n - 1` spokes dialing it.
    pub fn star(n: usize) -> Self {
        Self {
            names: names(n),
            edges: (1..n).map(|i| (i, 0)).collect(),
        }
    }

    /// A `w × h` grid.
    pub fn grid(w: usize, h: usize) -> Self {
        let mut edges = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if x + 1 < w {
                    edges.push((i, i + 1));
                }
                if y + 1 < h {
                    edges.push((i, i + w));
                }
            }
        }
        Self {
            names: names(w * h),
            edges,
        }
    }

    /// A random connected mesh: a random spanning tree (each node dials a random earlier
    /// one), plus random extra edges until the average degree reaches `degree`. No node is
    /// joined to itself and no pair twice. Same `seed`, same mesh.
    pub fn random(n: usize, degree: f64, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut below = |k: usize| (rng.next_u64() % k as u64) as usize;
        let mut edges = Vec::new();
        let mut seen = BTreeSet::new();
        for i in 1..n {
            let j = below(i);
            edges.push(if below(2) == 0 { (i, j) } else { (j, i) });
            seen.insert((j, i));
        }
        let max_edges = n * n.saturating_sub(1) / 2;
        let want = ((n as f64 * degree / 2.0).round() as usize).min(max_edges);
        while edges.len() < want {
            let (a, b) = (below(n), below(n));
            if a == b || !seen.insert((a.min(b), a.max(b))) {
                continue;
            }
            edges.push((a, b));
        }
        Self {
            names: names(n),
            edges,
        }
    }

    /// Adds every node to `sim` and connects every edge, asking `model` for each link's
    /// model (given the edge's index).
    pub fn build(&self, sim: &mut Sim, mut model: impl FnMut(usize) -> LinkModel) {
        for name in &self.names {
            sim.add_node(name);
        }
        for (i, &(a, b)) in self.edges.iter().enumerate() {
            sim.connect(&self.names[a], &self.names[b], model(i));
        }
    }

    /// The name of node `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(t: &Topology) -> bool {
        let n = t.names.len();
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(u) = stack.pop() {
            for &(a, b) in &t.edges {
                for (x, y) in [(a, b), (b, a)] {
                    if x == u && !seen[y] {
                        seen[y] = true;
                        stack.push(y);
                    }
                }
            }
        }
        seen.iter().all(|&s| s)
    }

    #[test]
    fn random_mesh_is_connected_and_simple() {
        for seed in 0..20 {
            let t = Topology::random(50, 3.0, seed);
            assert!(connected(&t));
            assert_eq!(t.edges.len(), 75);
            let pairs: BTreeSet<_> = t.edges.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
            assert_eq!(pairs.len(), t.edges.len());
            assert!(t.edges.iter().all(|&(a, b)| a != b));
        }
        assert_eq!(Topology::random(30, 3.0, 7), Topology::random(30, 3.0, 7));
        assert_ne!(Topology::random(30, 3.0, 7), Topology::random(30, 3.0, 8));
    }

    #[test]
    fn shapes() {
        assert_eq!(Topology::line(3).edges, [(0, 1), (1, 2)]);
        assert_eq!(Topology::ring(3).edges.len(), 3);
        assert_eq!(Topology::star(4).edges, [(1, 0), (2, 0), (3, 0)]);
        assert_eq!(Topology::grid(3, 2).edges.len(), 7);
        assert_eq!(Topology::line(12).names[3], "n03");
    }
}
