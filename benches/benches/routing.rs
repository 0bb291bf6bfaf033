//! Route recompute over a 1000-node link-state database.

use std::collections::BTreeMap;

use divan::Bencher;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use receptor_core::NodeId;
use receptor_core::routing::Router;
use receptor_core::wire::RouteUpdate;

fn main() {
    divan::main();
}

/// A router for node n0 that knows a random connected 1000-node mesh of average degree ~4.
fn router(nodes: usize) -> Router {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    let mut adj: Vec<BTreeMap<String, f64>> = vec![BTreeMap::new(); nodes];
    let link = |a: usize, b: usize, adj: &mut Vec<BTreeMap<String, f64>>| {
        if a != b {
            adj[a].insert(names[b].clone(), 1.0);
            adj[b].insert(names[a].clone(), 1.0);
        }
    };
    for i in 1..nodes {
        let j = (rng.next_u32() as usize) % i;
        link(i, j, &mut adj);
    }
    for _ in 0..nodes {
        let (a, b) = (
            (rng.next_u32() as usize) % nodes,
            (rng.next_u32() as usize) % nodes,
        );
        link(a, b, &mut adj);
    }
    let me = NodeId::new(&names[0]).unwrap();
    let mut r = Router::new(&me);
    for peer in adj[0].keys() {
        r.link_up(&NodeId::new(peer).unwrap(), 1.0);
    }
    for (i, conns) in adj.iter().enumerate().skip(1) {
        let u = RouteUpdate {
            node_id: names[i].clone(),
            update_id: format!("u{i}"),
            epoch: 1,
            sequence: 1,
            connections: conns.clone(),
            forwarding_node: "x".into(),
            suspected_duplicate: 0,
        };
        r.apply(&u, &NodeId::new(&names[i]).unwrap());
    }
    r
}

#[divan::bench(args = [100, 1000])]
fn recompute_routes(bencher: Bencher<'_, '_>, nodes: usize) {
    let mut r = router(nodes);
    r.recompute();
    assert_eq!(r.table().len(), nodes - 1);
    bencher.bench_local(|| {
        divan::black_box(r.recompute());
    });
}
