//! Forgetting what no route reaches (`Config::forget_after`), and learning it again: nodes
//! cut off for longer than the forget time vanish from every other node's database and
//! advertisements, and come back correctly, whether they kept running (same epoch, later
//! sequence numbers) or restarted (a new epoch), over lossy links.

mod common;

use common::{converge, ms, secs};
use receptor_core::{Advertise, NodeId};
use receptor_tests::{LinkModel, Sim, Topology, seed_from_env};

fn knows(sim: &Sim, at: &str, node: &str) -> bool {
    let n = sim.node(at).unwrap();
    n.known_connection_costs().contains_key(node) || n.advertisements().any(|a| a.node_id == node)
}

fn advertised(sim: &Sim, at: &str, node: &str) -> bool {
    sim.node(at)
        .unwrap()
        .advertisements()
        .any(|a| a.node_id == node && a.service == "svc")
}

#[test]
fn cut_off_nodes_are_forgotten_then_learned_again() {
    let seed = seed_from_env(31);
    let topo = Topology::grid(4, 3);
    let mut sim = Sim::new(seed);
    let forget = secs(60);
    for name in &topo.names {
        sim.add_node_with(name, |c| c.forget_after = forget);
    }
    // Half the links lose 5 % of their datagrams; the others are streams with jitter.
    for (i, &(a, b)) in topo.edges.iter().enumerate() {
        let model = if i % 2 == 0 {
            LinkModel::datagram().latency(ms(3)).loss(0.05)
        } else {
            LinkModel::stream().latency(ms(3)).jitter(ms(2))
        };
        sim.connect(&topo.names[a], &topo.names[b], model);
    }
    for name in &topo.names {
        sim.listen_advertised(name, "svc", Some(Advertise::default()))
            .unwrap();
    }
    converge(&mut sim, secs(30));
    sim.run_for(secs(10));
    for name in &topo.names {
        assert!(advertised(&sim, "n00", name), "{name}");
    }
    // n11 (a corner) is cut off and keeps running; n05 (inside) crashes while cut off.
    sim.isolate("n11");
    sim.isolate("n05");
    sim.run_for(secs(5));
    sim.crash("n05");
    converge(&mut sim, secs(60));
    // Until the forget time has passed since their routes went, they are remembered.
    assert!(knows(&sim, "n00", "n11"));
    assert!(knows(&sim, "n00", "n05"));
    sim.run_for(forget + forget / 4 + secs(5));
    for other in topo
        .names
        .iter()
        .filter(|n| !["n11", "n05"].contains(&n.as_str()))
    {
        assert!(!knows(&sim, other, "n11"), "{other} still knows n11");
        assert!(!knows(&sim, other, "n05"), "{other} still knows n05");
        assert!(knows(&sim, other, "n00"));
    }
    // n11 has forgotten everyone else, and their advertisements.
    assert_eq!(sim.node("n11").unwrap().known_connection_costs().len(), 1);
    assert_eq!(sim.node("n11").unwrap().advertisements().count(), 1);
    // Both come back: n11 with the epoch it had and its sequence numbers run on, n05 with
    // a new epoch. Every table converges, and the advertisements return.
    sim.heal_all();
    sim.restart("n05");
    sim.listen_advertised("n05", "svc", Some(Advertise::default()))
        .unwrap();
    converge(&mut sim, secs(90));
    assert_eq!(sim.routes("n00").len(), topo.names.len() - 1);
    assert_eq!(sim.routes("n11").len(), topo.names.len() - 1);
    // Advertisements go out every 60 s, and to each new neighbour at once.
    sim.run_for(secs(65));
    for at in &topo.names {
        for name in &topo.names {
            assert!(
                advertised(&sim, at, name),
                "{at} lacks {name}'s advertisement"
            );
        }
    }
    // Data flows again (a ping may be lost on the lossy links: a few tries).
    let n11 = NodeId::new("n11").unwrap();
    let answered = (0..5).any(|_| {
        let ping = sim.ping("n00", n11.as_str()).unwrap();
        let r = sim.wait_ping("n00", ping).unwrap();
        r.error.is_none() && r.from.as_ref() == Some(&n11)
    });
    assert!(answered);
}
