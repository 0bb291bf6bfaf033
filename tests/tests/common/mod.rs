//! Helpers shared by the scenario tests.
#![allow(dead_code)]

use std::time::Duration;

use receptor_tests::{LinkModel, Sim, Topology};

/// Builds `topo` in a new simulation with every link made by `model`.
pub fn sim_of(seed: u64, topo: &Topology, model: impl Fn() -> LinkModel) -> Sim {
    let mut sim = Sim::new(seed);
    topo.build(&mut sim, |_| model());
    sim
}

/// Runs until converged or panics with what is wrong (and the seed).
pub fn converge(sim: &mut Sim, within: Duration) {
    if let Err(e) = sim.run_until_converged(within) {
        panic!("{e}");
    }
}

/// Seconds.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Milliseconds.
pub fn ms(s: u64) -> Duration {
    Duration::from_millis(s)
}
