//! Mesh streams across simulated meshes (QUIC over mesh datagrams, as Go receptor runs them):
//! bulk data arrives intact through loss, reordering, partitions and crashes on the path;
//! streams that cannot go on fail cleanly at both ends. Virtual time: the checks are on
//! correctness, not timing.

mod common;

use std::collections::VecDeque;

use common::{converge, ms, secs, sim_of};
use receptor_core::NodeId;
use receptor_core::firewall::FirewallRule;
use receptor_core::stream::{HANDSHAKE_TIMEOUT, StreamFailure};
use receptor_core::wire::Problem;
use receptor_tests::{
    LinkModel, Sim, SimStream, StreamApp, StreamEnd, Topology, fnv, fnv_start, pattern,
    seed_from_env,
};

/// Bulk size: 16 MiB optimised, 4 MiB in debug builds (each test stays within seconds).
const BIG: u64 = if cfg!(debug_assertions) {
    4 << 20
} else {
    16 << 20
};

/// FNV-1a of the first `len` bytes of the dialer's pattern: what must arrive.
fn expected(sim: &Sim, s: SimStream, len: u64) -> u64 {
    fnv(fnv_start(), &pattern(sim.stream(s).seed, 0, len as usize))
}

/// The echo of `s` is complete and intact at both ends, and both ends ended cleanly.
fn check_echo(sim: &Sim, s: SimStream, len: u64) {
    let want = expected(sim, s, len);
    let r = sim.stream(s);
    assert_eq!(r.mismatch_at, None, "{r}");
    assert_eq!((r.written, r.written_hash), (len, want), "{r}");
    assert!(r.read_intact(len, want), "{r}");
    let p = sim.stream(sim.stream_peer(s).expect("accepted"));
    assert!(p.read_intact(len, want), "{p}");
    assert_eq!((p.written, p.written_hash), (len, want), "{p}");
    assert!(ended_cleanly(sim, s), "{r}; {p}");
}

/// A sink received all of `s`'s bytes intact, and both ends ended cleanly.
fn check_sink(sim: &Sim, s: SimStream, len: u64) {
    let want = expected(sim, s, len);
    let r = sim.stream(s);
    assert_eq!((r.written, r.written_hash), (len, want), "{r}");
    assert!(r.read_intact(0, fnv_start()), "{r}");
    let p = sim.stream(sim.stream_peer(s).expect("accepted"));
    assert!(p.read_intact(len, want), "{p}");
    assert!(ended_cleanly(sim, s), "{r}; {p}");
}

/// Both ends of `s` read the other's FIN, saw no error, and ended with a normal close. The
/// close rule has the end that read the last FIN close at once and the other linger; the
/// lingerer hears the close, or, when the closer's CONNECTION_CLOSE was lost, its next
/// packet finds the closer's dial service unbound and the far node answers `service
/// unknown`. Either way nothing is lost by then: both FINs were read.
fn ended_cleanly(sim: &Sim, s: SimStream) -> bool {
    let p = sim.stream_peer(s).expect("accepted");
    [s, p].iter().all(|&x| {
        let r = sim.stream(x);
        let clean = match &r.end {
            Some(StreamEnd::Closed | StreamEnd::Lost(None)) => true,
            Some(StreamEnd::Lost(Some(StreamFailure::Unreachable { problem, .. }))) => {
                *problem == Problem::ServiceUnknown
            }
            _ => false,
        };
        r.eof && r.read_error.is_none() && r.write_error.is_none() && clean
    })
}

/// Once the streams are over, nothing is left (within the idle timeout: closing and
/// draining connections take a few probe timeouts): no QUIC connection on any node, in its
/// stream layer or its QUIC endpoints, and only the listeners' services still bound for the
/// stream layers.
fn check_quiet(sim: &mut Sim, listeners: &[(&str, usize)]) {
    let names: Vec<String> = sim.node_names().map(str::to_owned).collect();
    let want = |n: &str| {
        listeners
            .iter()
            .find(|(l, _)| *l == n)
            .map_or(0, |(_, k)| *k)
    };
    let quiet = |sim: &mut Sim| {
        names.iter().all(|n| {
            sim.stream_conns(n) == 0
                && sim.stream_endpoint_conns(n) == 0
                && sim.stream_services(n) == want(n)
        })
    };
    if sim.run_until(quiet, secs(40)).is_err() {
        for n in &names {
            assert_eq!(sim.stream_conns(n), 0, "{n} holds QUIC connections");
            assert_eq!(
                sim.stream_endpoint_conns(n),
                0,
                "{n}'s QUIC endpoints hold connections"
            );
            assert_eq!(sim.stream_services(n), want(n), "{n}: stream services left");
        }
    }
}

/// Runs until all of `streams` and their peers ended, or panics with their state.
fn finish(sim: &mut Sim, streams: &[SimStream], within: std::time::Duration) {
    if let Err(e) = sim.run_until_streams_end(streams, within) {
        panic!("{e}");
    }
}

/// Runs until the dialer `s` has read `n` bytes back.
fn until_read(sim: &mut Sim, s: SimStream, n: u64) {
    if let Err(e) = sim.run_until(|sim| sim.stream(s).read >= n, secs(600)) {
        panic!("{e}: {}", sim.stream(s));
    }
}

/// Hop distances between all nodes of `topo`, without the nodes in `without`.
fn distances(topo: &Topology, without: &[usize]) -> Vec<Vec<Option<usize>>> {
    let n = topo.names.len();
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in &topo.edges {
        if !without.contains(&a) && !without.contains(&b) {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    (0..n)
        .map(|s| {
            let mut d = vec![None; n];
            if without.contains(&s) {
                return d;
            }
            d[s] = Some(0);
            let mut q = VecDeque::from([s]);
            while let Some(u) = q.pop_front() {
                for &v in &adj[u] {
                    if d[v].is_none() {
                        d[v] = d[u].map(|x| x + 1);
                        q.push_back(v);
                    }
                }
            }
            d
        })
        .collect()
}

/// The two nodes farthest apart.
fn farthest(topo: &Topology) -> (usize, usize, usize) {
    let d = distances(topo, &[]);
    let mut best = (0, 0, 0);
    for (a, row) in d.iter().enumerate() {
        for (b, x) in row.iter().enumerate() {
            if let Some(x) = *x
                && x > best.2
            {
                best = (a, b, x);
            }
        }
    }
    best
}

// ---- (a) lossless ----

/// An echo one way and a sink the other way at the same time, over a 6-node line of
/// stream links (5 hops).
#[test]
fn bulk_both_ways_over_a_line() {
    let mut sim = sim_of(seed_from_env(101), &Topology::line(6), LinkModel::stream);
    converge(&mut sim, secs(10));
    sim.stream_listen("n5", "echo", StreamApp::Echo).unwrap();
    sim.stream_listen("n0", "sink", StreamApp::Sink).unwrap();
    let echo = sim.stream_echo("n0", "n5", "echo", BIG);
    let sink = sim.stream_echo("n5", "n0", "sink", BIG);
    finish(&mut sim, &[echo, sink], secs(120));
    check_echo(&sim, echo, BIG);
    check_sink(&sim, sink, BIG);
    assert_eq!(sim.stream_stats().send_errors, 0);
    check_quiet(&mut sim, &[("n0", 1), ("n5", 1)]);
}

/// The two nodes farthest apart in a random mesh of mixed links, with a 1452-byte path MTU
/// (Go's packet size) so the data takes many packets.
#[test]
fn bulk_across_a_random_mesh() {
    let seed = seed_from_env(102);
    let topo = Topology::random(16, 3.0, seed);
    let (a, b, hops) = farthest(&topo);
    assert!(hops >= 3, "mesh too small: {hops} hops");
    let mut sim = Sim::new(seed);
    topo.build(&mut sim, |e| {
        if e % 2 == 0 {
            LinkModel::datagram().latency(ms(2 + e as u64 % 5))
        } else {
            LinkModel::stream().latency(ms(2 + e as u64 % 5))
        }
    });
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(30));
    let (a, b) = (topo.name(a).to_owned(), topo.name(b).to_owned());
    sim.stream_listen(&b, "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo(&a, &b, "echo", BIG);
    finish(&mut sim, &[s], secs(600));
    check_echo(&sim, s, BIG);
    assert!(
        sim.stream_stats().too_big > 0,
        "path MTU discovery never probed"
    );
    check_quiet(&mut sim, &[(&b, 1)]);
}

/// The first connection between two of our nodes probes the path MTU (a probe is a
/// 65 KB packet, nearly all padding, that costs its receiver a millisecond); once its path
/// carried the largest size, further connections between the two start at that size: no
/// probe, and bulk data in large packets from the start. A path that cannot carry it (a
/// 1452-byte MTU, as to Go peers or through a small-MTU UDP hop) is never recorded: every
/// connection probes as before.
#[test]
fn later_connections_on_a_known_path_skip_the_mtu_probe() {
    const SMALL: u64 = 1000;
    let mut sim = sim_of(seed_from_env(103), &Topology::line(3), LinkModel::stream);
    converge(&mut sim, secs(10));
    sim.stream_listen("n2", "echo", StreamApp::Echo).unwrap();
    let large = |sim: &Sim| sim.stream_stats().large;
    let echo = |sim: &mut Sim, len: u64| {
        let s = sim.stream_echo("n0", "n2", "echo", len);
        finish(sim, &[s], secs(60));
        check_echo(sim, s, len);
    };
    // A small echo sends no large packet but the probes: one from each end.
    echo(&mut sim, SMALL);
    let probes = large(&sim);
    assert!(probes >= 2, "the first connection probed {probes} times");
    for _ in 0..3 {
        let before = large(&sim);
        echo(&mut sim, SMALL);
        assert_eq!(large(&sim), before, "a later connection probed again");
    }
    // Bulk on a later connection goes in large packets at once, both ways.
    let (sent, before) = (sim.stream_stats().sent, large(&sim));
    echo(&mut sim, 1 << 20);
    let packets = sim.stream_stats().sent - sent;
    assert!(
        large(&sim) - before >= 2 * 16,
        "{} large packets",
        large(&sim) - before
    );
    assert!(
        packets < 2 * (1 << 20) / 1452,
        "{packets} packets for 2 MiB"
    );

    // Through a 1452-byte path MTU the probes never succeed and nothing is recorded.
    let mut sim = sim_of(seed_from_env(104), &Topology::line(3), LinkModel::stream);
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    sim.stream_listen("n2", "echo", StreamApp::Echo).unwrap();
    for _ in 0..3 {
        let before = sim.stream_stats().too_big;
        echo(&mut sim, SMALL);
        assert!(
            sim.stream_stats().too_big > before,
            "a connection did not probe"
        );
    }
    check_quiet(&mut sim, &[("n2", 1)]);
}

// ---- (b) loss, jitter (reordering) and duplicates on datagram links ----

/// Datagram links with 5 % loss, jitter far above the packets' spacing (so they arrive
/// reordered) and 1 % duplicates.
fn lossy() -> LinkModel {
    LinkModel::datagram()
        .loss(0.05)
        .jitter(ms(10))
        .duplicate(0.01)
}

/// Bulk data each way at once (a sink at each end of a 6-node line, two connections)
/// through loss and reordering on every link. No path MTU limit here (see
/// `loss_with_a_path_mtu_black_hole`).
#[test]
fn bulk_through_loss_and_reordering_on_a_line() {
    let mut sim = sim_of(seed_from_env(103), &Topology::line(6), lossy);
    converge(&mut sim, secs(60));
    sim.stream_listen("n5", "sink", StreamApp::Sink).unwrap();
    sim.stream_listen("n0", "sink", StreamApp::Sink).unwrap();
    let lost = sim.stats().dropped_loss;
    let there = sim.stream_echo("n0", "n5", "sink", BIG);
    let back = sim.stream_echo("n5", "n0", "sink", BIG);
    finish(&mut sim, &[there, back], secs(3600));
    check_sink(&sim, there, BIG);
    check_sink(&sim, back, BIG);
    assert!(sim.stats().dropped_loss > lost + 10, "{:?}", sim.stats());
    check_quiet(&mut sim, &[("n0", 1), ("n5", 1)]);
}

/// The same faults on every link of a random mesh, bulk data between the two nodes
/// farthest apart, each way.
#[test]
fn bulk_through_loss_and_reordering_across_a_random_mesh() {
    let seed = seed_from_env(104);
    let topo = Topology::random(12, 3.0, seed);
    let (a, b, _) = farthest(&topo);
    let mut sim = sim_of(seed, &topo, || lossy().latency(ms(3)).jitter(ms(6)));
    converge(&mut sim, secs(60));
    let (a, b) = (topo.name(a).to_owned(), topo.name(b).to_owned());
    sim.stream_listen(&b, "sink", StreamApp::Sink).unwrap();
    sim.stream_listen(&a, "sink", StreamApp::Sink).unwrap();
    let there = sim.stream_echo(&a, &b, "sink", BIG);
    let back = sim.stream_echo(&b, &a, "sink", BIG);
    finish(&mut sim, &[there, back], secs(3600));
    check_sink(&sim, there, BIG);
    check_sink(&sim, back, BIG);
}

/// Bulk data each way through the same faults on a path that drops packets above 1452
/// bytes (as a UDP path that cannot fragment).
///
/// Can fail by idle timeout with quinn-proto 0.11 (seed 2 shows it). When nothing else may
/// be sent (the congestion window is full), quinn sends a path MTU probe (tens of kilobytes
/// here) without checking the window and counts it in flight; the path drops it, and once
/// a loss has shrunk the window to a few packets the probe alone fills it, so the sender
/// stalls until a probe timeout declares it lost. Stalled with data queued, the sender
/// also withholds ACKs (see `echo_through_loss_and_reordering_on_a_line`), so the
/// receiver's probes go unanswered and the receiver, hearing nothing for 30 s, times out.
/// With quinn-proto patched to send ACK-only packets when congestion-blocked, this passes.
#[test]
#[ignore = "quinn-proto: MTU probes fill a shrunken window, then ACKs are withheld"]
fn loss_with_a_path_mtu_black_hole() {
    let mut sim = sim_of(seed_from_env(2), &Topology::line(6), lossy);
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(60));
    sim.stream_listen("n5", "sink", StreamApp::Sink).unwrap();
    sim.stream_listen("n0", "sink", StreamApp::Sink).unwrap();
    let there = sim.stream_echo("n0", "n5", "sink", 16 << 20);
    let back = sim.stream_echo("n5", "n0", "sink", 16 << 20);
    finish(&mut sim, &[there, back], secs(3600));
    check_sink(&sim, there, 16 << 20);
    check_sink(&sim, back, 16 << 20);
}

/// Bulk data both ways on one connection (an echo) through the same faults.
///
/// Known to crawl and then fail by idle timeout with quinn-proto 0.11 (and its main branch
/// as of this writing): an endpoint that has stream data queued and a full congestion
/// window sends no packet at all, ACKs included (`poll_transmit` skips the whole space),
/// although RFC 9002 §7 exempts ACK-only packets from congestion control. When both ends
/// of an echo are window-limited and a few ACK-bearing packets are lost, neither
/// acknowledges the other until a probe timeout; the probes back off exponentially, and a
/// run of lost probes outlasts the 30 s idle timeout. One-way bulk data is unaffected (the
/// receiver has nothing queued). With quinn-proto patched to send an ACK-only packet when
/// congestion-blocked, this test passes.
#[test]
#[ignore = "quinn-proto withholds ACKs while congestion-blocked with data queued"]
fn echo_through_loss_and_reordering_on_a_line() {
    let mut sim = sim_of(seed_from_env(103), &Topology::line(6), lossy);
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(60));
    sim.stream_listen("n5", "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo("n0", "n5", "echo", BIG);
    finish(&mut sim, &[s], secs(3600));
    check_echo(&sim, s, BIG);
}

// ---- (c) a partition mid-transfer that heals before the idle timeout ----

/// The middle of a 6-node line is cut for 10 s while data flows; QUIC's retransmissions
/// resume after the heal, within the 30 s idle timeout, and everything arrives.
#[test]
fn partition_mid_transfer_heals_in_time() {
    let mut sim = sim_of(seed_from_env(105), &Topology::line(6), || {
        LinkModel::datagram().jitter(ms(2))
    });
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    sim.stream_listen("n5", "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo("n0", "n5", "echo", BIG);
    until_read(&mut sim, s, BIG / 4);
    sim.partition("n2", "n3");
    sim.run_for(secs(10));
    assert!(sim.stats().dropped_partition > 0);
    assert_eq!(sim.stream(s).end, None, "{}", sim.stream(s));
    assert!(sim.stream(s).read < BIG, "{}", sim.stream(s));
    sim.heal("n2", "n3");
    finish(&mut sim, &[s], secs(600));
    check_echo(&sim, s, BIG);
    check_quiet(&mut sim, &[("n5", 1)]);
}

/// The acceptor of a random mesh is cut off entirely for 12 s mid-transfer.
#[test]
fn isolated_acceptor_rejoins_in_time() {
    let seed = seed_from_env(106);
    let topo = Topology::random(12, 3.0, seed);
    let (a, b, _) = farthest(&topo);
    let mut sim = sim_of(seed, &topo, || LinkModel::datagram().jitter(ms(3)));
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    let (a, b) = (topo.name(a).to_owned(), topo.name(b).to_owned());
    sim.stream_listen(&b, "sink", StreamApp::Sink).unwrap();
    let s = sim.stream_dial(&a, &b, "sink");
    sim.stream_send(s, BIG);
    sim.stream_finish(s);
    if let Err(e) = sim.run_until(|sim| sim.stream(s).written >= BIG / 4, secs(600)) {
        panic!("{e}");
    }
    sim.isolate(&b);
    sim.run_for(secs(12));
    sim.heal_all();
    finish(&mut sim, &[s], secs(600));
    check_sink(&sim, s, BIG);
}

// ---- (d) a partition that outlasts the idle timeout ----

/// The line is cut for a minute: both ends' connections time out (30 s without a packet),
/// the applications see the stream fail (a read error, not an end of stream), nothing
/// hangs, and once healed nothing is left behind.
#[test]
fn long_partition_fails_both_ends_cleanly() {
    let mut sim = sim_of(seed_from_env(107), &Topology::line(6), LinkModel::datagram);
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    sim.stream_listen("n5", "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo("n0", "n5", "echo", BIG);
    until_read(&mut sim, s, BIG / 4);
    let cut = sim.now();
    sim.partition("n2", "n3");
    finish(&mut sim, &[s], secs(45));
    let p = sim.stream_peer(s).unwrap();
    for end in [s, p] {
        let r = sim.stream(end);
        assert!(r.failed(), "{r}");
        assert!(r.read_error.is_some(), "{r}");
        assert!(!r.eof, "{r}");
        assert!(
            r.end == Some(StreamEnd::Lost(Some(StreamFailure::IdleTimeout))),
            "{r}"
        );
        let after = r.ended_at.unwrap() - cut;
        assert!(after >= secs(25), "failed too soon: {r}");
    }
    assert!(sim.stream(s).read < BIG);
    sim.heal("n2", "n3");
    converge(&mut sim, secs(60));
    check_quiet(&mut sim, &[("n5", 1)]);
}

// ---- (e) a crash on the path ----

/// Two ways from n0 to n4: n1-n2-n3 (cost 4) and b1-b2 (cost 9). n2 crashes mid-transfer;
/// routing moves to the other way and the stream goes on over it.
#[test]
fn crash_on_the_path_reroutes_the_stream() {
    let mut sim = Sim::new(seed_from_env(108));
    for n in ["n0", "n1", "n2", "n3", "n4", "b1", "b2"] {
        sim.add_node(n);
    }
    let m = || LinkModel::datagram().jitter(ms(2));
    for (a, b) in [("n0", "n1"), ("n1", "n2"), ("n2", "n3"), ("n3", "n4")] {
        sim.connect(a, b, m());
    }
    for (a, b) in [("n0", "b1"), ("b1", "b2"), ("b2", "n4")] {
        sim.connect(a, b, m().cost(3.0));
    }
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    assert_eq!(sim.routes("n0")["n4"].as_str(), "n1");
    sim.stream_listen("n4", "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo("n0", "n4", "echo", BIG);
    until_read(&mut sim, s, BIG / 4);
    sim.crash("n2");
    finish(&mut sim, &[s], secs(600));
    check_echo(&sim, s, BIG);
    assert_eq!(sim.routes("n0")["n4"].as_str(), "b1");
    assert_eq!(sim.routes("n4")["n0"].as_str(), "b2");
    check_quiet(&mut sim, &[("n4", 1)]);
}

/// In a random mesh, the first node on the stream's route whose loss keeps the mesh
/// connected crashes mid-transfer.
#[test]
fn crash_on_a_random_mesh_path() {
    let seed = seed_from_env(109);
    let topo = Topology::random(14, 3.0, seed);
    let (a, b, _) = farthest(&topo);
    let mut sim = sim_of(seed, &topo, || LinkModel::datagram().jitter(ms(2)));
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    let (an, bn) = (topo.name(a).to_owned(), topo.name(b).to_owned());
    sim.stream_listen(&bn, "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo(&an, &bn, "echo", BIG);
    until_read(&mut sim, s, BIG / 4);
    // Walk the route a -> b and take the first hop whose loss leaves a and b connected.
    let ix = |name: &str| topo.names.iter().position(|n| n == name).unwrap();
    let mut at = an.clone();
    let victim = loop {
        let next = sim.routes(&at)[bn.as_str()].to_string();
        assert_ne!(
            next, bn,
            "no node on the path can go without splitting the mesh"
        );
        if distances(&topo, &[ix(&next)])[a][b].is_some() {
            break next;
        }
        at = next;
    };
    sim.crash(&victim);
    finish(&mut sim, &[s], secs(600));
    check_echo(&sim, s, BIG);
    check_quiet(&mut sim, &[(&bn, 1)]);
}

// ---- setup failures ----

/// How a stream ends when `node` answers that nothing listens on its service.
fn unknown_at(node: &str) -> StreamEnd {
    StreamEnd::Lost(Some(StreamFailure::Unreachable {
        reporter: NodeId::new(node).unwrap(),
        problem: Problem::ServiceUnknown,
    }))
}

/// A dial to a service nobody listens on fails at once: the far node's `service unknown`
/// ends the connection attempt, and the dial's service is unbound again.
#[test]
fn dial_to_an_unbound_service_fails_fast() {
    let mut sim = sim_of(seed_from_env(110), &Topology::line(4), LinkModel::stream);
    converge(&mut sim, secs(10));
    let s = sim.stream_echo("n0", "n3", "nobody", 1000);
    finish(&mut sim, &[s], secs(2));
    let r = sim.stream(s);
    assert_eq!(r.end, Some(unknown_at("n3")), "{r}");
    assert_eq!(r.opened_at, None);
    check_quiet(&mut sim, &[]);
}

/// A dial whose packets a firewall on the way rejects fails at once, naming that node and
/// the firewall (Go waits for its 15 s handshake timeout), and leaves nothing behind.
#[test]
fn dial_rejected_by_a_firewall_fails_at_once() {
    let mut sim = Sim::new(seed_from_env(116));
    sim.add_node("n0");
    sim.add_node_with("n1", |c| {
        let rule = [("action", "reject"), ("fromnode", "n0"), ("tonode", "n2")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        c.firewall = vec![FirewallRule::parse(&rule).unwrap()];
    });
    sim.add_node("n2");
    sim.connect("n0", "n1", LinkModel::stream());
    sim.connect("n1", "n2", LinkModel::stream());
    converge(&mut sim, secs(10));
    sim.stream_listen("n2", "echo", StreamApp::Echo).unwrap();
    let start = sim.now();
    let s = sim.stream_echo("n0", "n2", "echo", 1000);
    finish(&mut sim, &[s], secs(2));
    let r = sim.stream(s);
    assert_eq!(
        r.end,
        Some(StreamEnd::Lost(Some(StreamFailure::Unreachable {
            reporter: NodeId::new("n1").unwrap(),
            problem: Problem::Firewall,
        }))),
        "{r}"
    );
    assert!(r.ended_at.unwrap() - start < secs(1), "{r}");
    assert_eq!(r.opened_at, None);
    check_quiet(&mut sim, &[("n2", 1)]);
}

/// A dial whose handshake cannot get through (the path is cut) fails after the 15 s
/// handshake timeout instead of hanging, and leaves nothing behind.
#[test]
fn dial_across_a_partition_times_out() {
    let mut sim = sim_of(seed_from_env(113), &Topology::line(3), LinkModel::stream);
    converge(&mut sim, secs(10));
    sim.stream_listen("n2", "echo", StreamApp::Echo).unwrap();
    sim.partition("n1", "n2");
    let start = sim.now();
    let s = sim.stream_echo("n0", "n2", "echo", 1000);
    finish(&mut sim, &[s], secs(20));
    let r = sim.stream(s);
    assert_eq!(
        r.end,
        Some(StreamEnd::Lost(Some(StreamFailure::HandshakeTimeout(
            HANDSHAKE_TIMEOUT
        )))),
        "{r}"
    );
    assert!(r.ended_at.unwrap() - start >= secs(15), "{r}");
    assert_eq!(r.opened_at, None);
    sim.heal("n1", "n2");
    // The dialer's CONNECTION_CLOSE (an Initial packet) may still reach the listener after
    // the heal, which takes it for a new connection that then idles out (30 s).
    sim.run_for(secs(5));
    check_quiet(&mut sim, &[("n2", 1)]);
}

/// The acceptor's node crashes mid-transfer and comes back without the listener: the
/// dialer's next packets meet `service unknown` and its stream fails at once (before any
/// idle timeout); the crashed end is reported as such.
#[test]
fn acceptor_crash_and_restart_fails_the_stream() {
    let mut sim = sim_of(seed_from_env(114), &Topology::line(4), LinkModel::stream);
    sim.set_stream_mtu(Some(1452));
    converge(&mut sim, secs(10));
    sim.stream_listen("n3", "echo", StreamApp::Echo).unwrap();
    let s = sim.stream_echo("n0", "n3", "echo", BIG);
    until_read(&mut sim, s, BIG / 8);
    let p = sim.stream_peer(s).unwrap();
    sim.crash("n3");
    assert_eq!(sim.stream(p).end, Some(StreamEnd::Crashed));
    sim.run_for(secs(2));
    sim.restart("n3");
    let back = sim.now();
    finish(&mut sim, &[s], secs(25));
    let r = sim.stream(s);
    assert_eq!(r.end, Some(unknown_at("n3")), "{r}");
    assert!(r.read_error.is_some() && r.read < BIG, "{r}");
    assert!(r.ended_at.unwrap() - back < secs(25), "{r}");
    check_quiet(&mut sim, &[]);
}

// ---- determinism ----

/// Two runs with the same seed move the same packets at the same times (sizes, losses,
/// delays): stream runs repeat in outcome and shape. Their bytes differ (TLS key shares and
/// nonces come from the OS), so `trace_hash` is not compared.
#[test]
fn stream_runs_repeat_in_shape() {
    let run = || {
        let mut sim = sim_of(111, &Topology::line(4), || {
            LinkModel::datagram().loss(0.05).jitter(ms(5))
        });
        sim.set_stream_mtu(Some(1452));
        converge(&mut sim, secs(60));
        sim.stream_listen("n3", "echo", StreamApp::Echo).unwrap();
        let s = sim.stream_echo("n0", "n3", "echo", 256 << 10);
        finish(&mut sim, &[s], secs(600));
        check_echo(&sim, s, 256 << 10);
        let r = sim.stream(s).clone();
        (
            sim.stats(),
            sim.stream_stats(),
            sim.stream_shape_hash(),
            r.ended_at,
        )
    };
    let first = run();
    assert_eq!(first, run());
}

/// Stream support leaves runs without streams alone: the same routing-only run, with and
/// without a stream listener set up, transmits exactly the same frames.
#[test]
fn listeners_alone_leave_the_trace_alone() {
    let run = |listen: bool| {
        let mut sim = sim_of(112, &Topology::ring(5), || {
            LinkModel::datagram().loss(0.02).jitter(ms(3))
        });
        converge(&mut sim, secs(30));
        if listen {
            sim.stream_listen("n2", "echo", StreamApp::Echo).unwrap();
        }
        sim.run_for(secs(30));
        (sim.trace_hash(), sim.stats())
    };
    assert_eq!(run(false), run(true));
}
