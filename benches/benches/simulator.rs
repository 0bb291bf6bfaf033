//! Simulator throughput: a random mesh converging from a cold start, in events per second
//! (`steps`: every frame, timer and dial the simulator processes).

use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use receptor_tests::{LinkModel, Sim, Topology};

fn main() {
    divan::main();
}

/// The `simulate` binary's kind of mesh: degree 3, mixed stream and datagram links of
/// 5-20 ms, batched windows.
fn mesh(nodes: usize, threads: usize) -> Sim {
    let topo = Topology::random(nodes, 3.0, 1);
    let mut sim = Sim::new(1);
    sim.set_record_events(false);
    sim.set_batching(true);
    sim.set_threads(threads);
    topo.build(&mut sim, |e| {
        let model = if e % 2 == 0 {
            LinkModel::stream()
        } else {
            LinkModel::datagram()
        };
        model.latency(Duration::from_millis(5 + e as u64 % 16))
    });
    sim
}

fn converge(sim: &mut Sim) {
    sim.run_until_converged(Duration::from_secs(60))
        .expect("the mesh converges");
}

/// 200 nodes from cold to every routing table correct, on one thread and on two.
#[divan::bench(args = [1, 2], sample_count = 10, sample_size = 1)]
fn converge_200_nodes(bencher: Bencher<'_, '_>, threads: usize) {
    let mut probe = mesh(200, threads);
    converge(&mut probe);
    let steps = probe.stats().steps;
    bencher
        .counter(ItemsCount::new(steps))
        .with_inputs(|| mesh(200, threads))
        .bench_local_values(|mut sim| {
            converge(&mut sim);
            sim
        });
}
