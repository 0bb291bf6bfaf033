//! Backend options and handshake rules: cost agreement, nodecost, allowedpeers, duplicate
//! sessions (netceptor.md §2.7, §4, §10.4).

mod common;

use std::collections::BTreeSet;

use common::{converge, secs};
use receptor_core::{CloseReason, Event, NodeId};
use receptor_tests::{LinkModel, Sim};

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn rejections(sim: &Sim, node: &str) -> Vec<String> {
    sim.events(node)
        .iter()
        .filter_map(|r| match &r.event {
            Event::CloseLink {
                reason: CloseReason::Rejected(why),
                ..
            } => Some(why.clone()),
            _ => None,
        })
        .collect()
}

fn pair(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    sim.add_node("A");
    sim.add_node("B");
    sim
}

#[test]
fn nodecost_mismatch_rejects_the_link() {
    // §10.4: A (cost 1) dials B, whose listener says nodecost {A: 2}.
    let mut sim = pair(51);
    let model = LinkModel::stream().listener_config(|c| {
        c.node_cost(id("A"), 2.0).unwrap();
    });
    sim.connect("A", "B", model);
    sim.run_for(secs(30));
    let why = [rejections(&sim, "A"), rejections(&sim, "B")].concat();
    assert!(!why.is_empty());
    assert!(
        why.iter()
            .all(|w| w == "we disagree about the connection cost"),
        "{why:?}"
    );
    // The dialer keeps trying every 5 s and is refused each time.
    assert!(sim.stats().dials >= 5, "{:?}", sim.stats());
    // The simulator's truth knows the link cannot work: the two are apart.
    assert_eq!(sim.partitions(), 2);
    let cut = sim.run_until(|s| s.converged(), secs(10));
    assert!(cut.is_ok(), "between redials they route to nobody");
}

#[test]
fn nodecost_agreement_sets_the_cost() {
    let mut sim = pair(52);
    let model = LinkModel::stream()
        .dialer_config(|c| {
            c.cost(2.0).unwrap();
        })
        .listener_config(|c| {
            c.node_cost(id("A"), 2.0).unwrap();
        });
    sim.connect("A", "B", model);
    converge(&mut sim, secs(5));
    sim.run_for(secs(30));
    assert!(rejections(&sim, "A").is_empty() && rejections(&sim, "B").is_empty());
    assert_eq!(sim.node("A").unwrap().connections()[&id("B")], 2.0);
    assert_eq!(sim.node("B").unwrap().connections()[&id("A")], 2.0);
}

#[test]
fn allowedpeers_admits_only_the_listed() {
    let mut sim = pair(53);
    sim.add_node("C");
    let only_c = LinkModel::stream().listener_config(|c| {
        c.allowed_peers = Some(BTreeSet::from([id("C")]));
    });
    sim.connect("A", "B", only_c.clone());
    sim.connect("C", "B", only_c);
    sim.run_for(secs(20));
    assert!(
        rejections(&sim, "B")
            .iter()
            .all(|w| w == "peer not in allowedpeers")
    );
    assert!(!rejections(&sim, "B").is_empty());
    assert!(sim.routes("C").contains_key("B"));
    assert!(!sim.routes("A").contains_key("B"));
    assert!(sim.converged());
}

#[test]
fn second_session_between_a_pair_is_refused() {
    let mut sim = pair(54);
    sim.connect("A", "B", LinkModel::stream());
    converge(&mut sim, secs(5));
    sim.connect("A", "B", LinkModel::datagram());
    sim.run_for(secs(30));
    let why = rejections(&sim, "B");
    assert!(
        !why.is_empty() && why.iter().all(|w| w == "already connected"),
        "{why:?}"
    );
    // The first session never went down.
    assert!(
        !sim.events("A")
            .iter()
            .any(|r| matches!(r.event, Event::PeerDown { .. }))
    );
    assert!(sim.converged());
}

#[test]
fn simultaneous_cross_dials_settle() {
    let mut sim = pair(55);
    sim.connect("A", "B", LinkModel::stream());
    sim.connect("B", "A", LinkModel::stream());
    converge(&mut sim, secs(60));
    sim.run_for(secs(60));
    assert!(sim.converged());
}

#[test]
fn connecting_to_itself_is_rejected() {
    let mut sim = pair(56);
    sim.connect("A", "A", LinkModel::stream().no_redial());
    sim.run_for(secs(2));
    let why = rejections(&sim, "A");
    assert!(
        why.iter()
            .any(|w| w == "it tried to connect using our own node ID")
    );
}

#[test]
fn handshake_with_one_way_loss_gives_up_then_recovers() {
    let mut sim = pair(57);
    sim.connect("A", "B", LinkModel::stream().latency(common::ms(5)));
    // B never hears A: A establishes on B's update, B keeps sending its handshake update
    // every second and gives up after 11.
    sim.partition_oneway("A", "B");
    sim.run_for(secs(12));
    let b_gave_up = sim.events("B").iter().any(|r| {
        matches!(
            r.event,
            Event::CloseLink {
                reason: CloseReason::HandshakeTimeout,
                ..
            }
        )
    });
    assert!(b_gave_up);
    assert!(
        sim.events("A")
            .iter()
            .any(|r| matches!(r.event, Event::PeerDown { .. })),
        "A saw the session end"
    );
    sim.heal("A", "B");
    converge(&mut sim, secs(30));
}
