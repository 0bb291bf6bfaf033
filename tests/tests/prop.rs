//! Property: any small connected mesh, after any schedule of partitions, crashes and
//! restarts, converges to correct routing tables once everything is healed.

use std::time::Duration;

use proptest::prelude::*;
use receptor_tests::{LinkModel, Sim, Topology};

#[derive(Debug, Clone)]
enum Fault {
    Partition(usize, usize),
    OneWay(usize, usize),
    Isolate(usize),
    Crash(usize),
    Restart(usize),
    Heal(usize, usize),
}

fn fault(n: usize) -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0..n, 0..n).prop_map(|(a, b)| Fault::Partition(a, b)),
        (0..n, 0..n).prop_map(|(a, b)| Fault::OneWay(a, b)),
        (0..n).prop_map(Fault::Isolate),
        (0..n).prop_map(Fault::Crash),
        (0..n).prop_map(Fault::Restart),
        (0..n, 0..n).prop_map(|(a, b)| Fault::Heal(a, b)),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, f64, u64, u8, Vec<(Fault, u64)>)> {
    (2usize..=12).prop_flat_map(|n| {
        (
            Just(n),
            1.0f64..4.0,
            any::<u64>(),
            any::<u8>(),
            prop::collection::vec((fault(n), 0u64..30_000), 0..6),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn converges_after_heal((n, degree, seed, mix, faults) in scenario()) {
        let topo = Topology::random(n, degree, seed);
        let mut sim = Sim::new(seed);
        topo.build(&mut sim, |e| {
            let ms = Duration::from_millis(1 + (seed >> (e % 32)) % 20);
            match (usize::from(mix) >> (e % 8)) & 3 {
                0 => LinkModel::datagram().latency(ms).jitter(ms),
                1 => LinkModel::message().latency(ms),
                2 => LinkModel::stream().latency(ms).split_frames(),
                _ => LinkModel::stream().latency(ms),
            }
        });
        sim.run_for(Duration::from_secs(2));
        let name = |i: usize| topo.name(i).to_owned();
        for (f, wait_ms) in &faults {
            match *f {
                Fault::Partition(a, b) => sim.partition(&name(a), &name(b)),
                Fault::OneWay(a, b) => sim.partition_oneway(&name(a), &name(b)),
                Fault::Isolate(a) => sim.isolate(&name(a)),
                Fault::Crash(a) => sim.crash(&name(a)),
                Fault::Restart(a) => sim.restart(&name(a)),
                Fault::Heal(a, b) => sim.heal(&name(a), &name(b)),
            }
            sim.run_for(Duration::from_millis(*wait_ms));
        }
        sim.heal_all();
        for i in 0..n {
            if sim.node(&name(i)).is_none() {
                sim.restart(&name(i));
            }
        }
        // Idle sessions time out (21 s), redials back off (up to 20 s), the handshake and
        // the floods follow.
        let res = sim.run_until_converged(Duration::from_secs(90));
        prop_assert!(res.is_ok(), "{}", res.unwrap_err());
        prop_assert_eq!(sim.partitions(), 1);
    }
}

/// Hop distances from `s` over the topology's edges.
fn bfs(topo: &Topology, s: usize) -> Vec<usize> {
    let n = topo.names.len();
    let mut d = vec![usize::MAX; n];
    d[s] = 0;
    let mut q = std::collections::VecDeque::from([s]);
    while let Some(u) = q.pop_front() {
        for &(a, b) in &topo.edges {
            for (x, y) in [(a, b), (b, a)] {
                if x == u && d[y] == usize::MAX {
                    d[y] = d[u] + 1;
                    q.push_back(y);
                }
            }
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn traceroute_follows_a_shortest_path(
        n in 2usize..=12,
        degree in 1.0f64..4.0,
        seed in any::<u64>(),
        pair in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
    ) {
        let topo = Topology::random(n, degree, seed);
        let mut sim = Sim::new(seed);
        topo.build(&mut sim, |e| {
            LinkModel::datagram().latency(Duration::from_millis(1 + e as u64 % 9))
        });
        prop_assert!(sim.run_until_converged(Duration::from_secs(10)).is_ok());
        let (a, b) = (pair.0.index(n), pair.1.index(n));
        let id = sim.traceroute(topo.name(a), topo.name(b)).unwrap();
        let hops = sim.wait_trace(topo.name(a), id, Duration::from_secs(60)).unwrap();
        let dist = bfs(&topo, a);
        prop_assert_eq!(hops.len(), dist[b] + 1);
        let names: Vec<String> = hops
            .iter()
            .map(|(_, r)| r.from.as_ref().map(ToString::to_string).unwrap_or_default())
            .collect();
        prop_assert_eq!(&names[0], topo.name(a));
        prop_assert_eq!(names.last().unwrap(), topo.name(b));
        for (k, name) in names.iter().enumerate() {
            let i = topo.names.iter().position(|x| x == name).unwrap();
            prop_assert_eq!(dist[i], k, "hop {} is {} hops away", k, dist[i]);
        }
        prop_assert!(hops.iter().all(|(_, r)| r.error.is_none()));
    }
}
