//! The data plane over simulated meshes: delivery, hop limits, traceroute, ping, firewall
//! and unreachable notices (netceptor.md §6, §7).

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{converge, ms, secs, sim_of};
use receptor_core::firewall::FirewallRule;
use receptor_core::{SendError, ServiceName};
use receptor_tests::{LinkModel, Sim, Topology};

fn line(n: usize, seed: u64) -> Sim {
    let mut sim = sim_of(seed, &Topology::line(n), LinkModel::stream);
    converge(&mut sim, secs(30));
    sim
}

fn rule(kv: &[(&str, &str)]) -> FirewallRule {
    let map: BTreeMap<String, String> = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FirewallRule::parse(&map).unwrap()
}

#[test]
fn datagram_crosses_the_mesh() {
    let mut sim = line(6, 41);
    sim.listen("n5", "echo").unwrap();
    sim.send("n0", "me", "n5", "echo", Bytes::from_static(b"hello"))
        .unwrap();
    sim.run_for(secs(1));
    let got = sim.datagrams("n5", "echo");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.to_string(), "n0:me");
    assert_eq!(&got[0].1[..], b"hello");
    assert_eq!(sim.node("n2").unwrap().stats().forwarded, 1);
}

#[test]
fn hop_limit_on_a_long_line() {
    // 32 nodes: n00 .. n31. The origin sends with 30 hops to live and decrements first, so
    // the node 30 hops away receives 0 and still takes delivery; one more hop expires.
    let mut sim = line(32, 42);
    sim.listen("n00", "me").unwrap();
    sim.listen("n30", "svc").unwrap();
    sim.listen("n31", "svc").unwrap();
    sim.send("n00", "me", "n30", "svc", "near").unwrap();
    sim.send("n00", "me", "n31", "svc", "far").unwrap();
    sim.run_for(secs(2));
    assert_eq!(sim.datagrams("n30", "svc").len(), 1, "30 hops arrive");
    assert!(sim.datagrams("n31", "svc").is_empty(), "31 hops expire");
    let notices = sim.unreachables("n00");
    assert_eq!(notices.len(), 1);
    let (service, reporter, notice) = &notices[0];
    assert_eq!(service.as_bytes(), b"me");
    assert_eq!(reporter.as_str(), "n30");
    assert_eq!(notice.problem, "message expired");
    assert_eq!(notice.to_node, "n31");
    // A smaller hop limit expires sooner.
    sim.send_with_hops("n00", "me", "n30", "svc", "x", Some(3))
        .unwrap();
    sim.run_for(secs(2));
    let (_, reporter, _) = &sim.unreachables("n00")[1];
    assert_eq!(reporter.as_str(), "n03");
}

#[test]
fn traceroute_over_ten_nodes() {
    let mut sim = line(10, 43);
    let id = sim.traceroute("n0", "n9").unwrap();
    let hops = sim.wait_trace("n0", id, secs(30)).unwrap();
    let got: Vec<(u8, String)> = hops
        .iter()
        .map(|(h, r)| (*h, r.from.as_ref().unwrap().to_string()))
        .collect();
    let want: Vec<(u8, String)> = (0..10).map(|i| (i as u8, format!("n{i}"))).collect();
    assert_eq!(got, want, "hop 0 is the origin itself");
    assert!(hops.iter().all(|(_, r)| r.error.is_none()));
    // Round trips grow with distance (5 ms per link each way).
    assert_eq!(hops[9].1.rtt, ms(90));
}

#[test]
fn ping_over_many_hops() {
    let mut sim = line(25, 44);
    let id = sim.ping("n00", "n24").unwrap();
    let res = sim.wait_ping("n00", id).unwrap();
    assert_eq!(res.error, None);
    assert_eq!(res.from.unwrap().as_str(), "n24");
    assert_eq!(res.rtt, ms(2 * 24 * 5));
    let id = sim.ping("n24", "localhost").unwrap();
    assert_eq!(sim.wait_ping("n24", id).unwrap().rtt, ms(0));
}

#[test]
fn ping_to_an_unknown_node_fails() {
    let mut sim = line(3, 45);
    assert!(matches!(
        sim.ping("n0", "nosuch"),
        Err(SendError::NoRoute(_))
    ));
    // A traceroute's hop 0 expires at the origin before any route lookup (§6.2), so it
    // shows the origin; hop 1 reports the failure and ends it.
    let id = sim.traceroute("n0", "nosuch").unwrap();
    let hops = sim.wait_trace("n0", id, secs(1)).unwrap();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0].1.from.as_ref().unwrap().as_str(), "n0");
    assert!(hops[1].1.error.as_deref().unwrap().contains("no route"));
}

#[test]
fn ping_to_a_crashed_node_times_out_or_fails() {
    let mut sim = line(3, 46);
    // Stop n2 from hearing anything, so n0 still has a route while n2 is gone.
    sim.partition("n1", "n2");
    let id = sim.ping("n0", "n2").unwrap();
    let res = sim.wait_ping("n0", id).unwrap();
    assert_eq!(res.error.as_deref(), Some("timeout"));
    assert_eq!(res.rtt, secs(10));
}

#[test]
fn unbound_service_is_reported() {
    let mut sim = line(3, 47);
    sim.listen("n0", "me").unwrap();
    sim.send("n0", "me", "n2", "nosvc", "x").unwrap();
    sim.run_for(secs(1));
    let notices = sim.unreachables("n0");
    assert_eq!(notices.len(), 1);
    let (service, reporter, notice) = &notices[0];
    assert_eq!(*service, ServiceName::new("me").unwrap());
    assert_eq!(reporter.as_str(), "n2");
    assert_eq!(notice.problem, "service unknown");
    assert_eq!(notice.to_service, "nosvc");
    // Locally the same mistake is an error at once.
    assert!(matches!(
        sim.send("n0", "me", "n0", "nosvc", "x"),
        Err(SendError::ServiceUnknown(_))
    ));
}

#[test]
fn firewall_reject_tells_the_sender_drop_does_not() {
    let mut sim = Sim::new(48);
    sim.add_node("a");
    sim.add_node_with("b", |c| {
        c.firewall = vec![
            rule(&[
                ("action", "reject"),
                ("fromnode", "a"),
                ("toservice", "secret"),
            ]),
            rule(&[("action", "drop"), ("toservice", "/hid.*/")]),
        ];
    });
    sim.add_node("c");
    sim.connect("a", "b", LinkModel::stream());
    sim.connect("b", "c", LinkModel::stream());
    converge(&mut sim, secs(5));
    for svc in ["secret", "hidden", "open"] {
        sim.listen("c", svc).unwrap();
    }
    sim.listen("a", "me").unwrap();
    for svc in ["secret", "hidden", "open"] {
        sim.send("a", "me", "c", svc, "x").unwrap();
    }
    sim.run_for(secs(1));
    assert!(sim.datagrams("c", "secret").is_empty());
    assert!(sim.datagrams("c", "hidden").is_empty());
    assert_eq!(sim.datagrams("c", "open").len(), 1);
    let notices = sim.unreachables("a");
    assert_eq!(notices.len(), 1, "only the reject is reported: {notices:?}");
    assert_eq!(notices[0].1.as_str(), "b");
    assert_eq!(notices[0].2.problem, "blocked by firewall");
    assert_eq!(notices[0].2.to_service, "secret");
    assert_eq!(sim.node("b").unwrap().stats().firewalled, 2);
}

#[test]
fn data_over_lossless_datagram_mesh_arrives_in_full() {
    let topo = Topology::random(40, 3.0, 49);
    let mut sim = sim_of(49, &topo, || LinkModel::datagram().jitter(ms(5)));
    converge(&mut sim, secs(10));
    sim.listen("n39", "sink").unwrap();
    for i in 0..39 {
        let from = topo.name(i).to_owned();
        sim.send(&from, "src", "n39", "sink", format!("{i}"))
            .unwrap();
    }
    sim.run_for(secs(1));
    assert_eq!(sim.datagrams("n39", "sink").len(), 39);
}
