//! Deterministic mesh simulator over receptor-core.
//!
//! A [`Sim`] runs many sans-IO [`receptor_core::Node`]s on one virtual clock. Links between
//! them follow a [`LinkModel`] (stream, datagram or message transport, latency, jitter,
//! loss), can be partitioned per direction and healed, and nodes can crash and restart.
//! Every random choice comes from the seed: each node's core gets a seed derived from it, and
//! what the network does to a node's frames (loss, jitter, duplicates) comes from that node's
//! own stream. Simultaneous events keep their scheduling order, so a seed replays a run
//! exactly, also when a batched window's nodes are split between threads;
//! [`Sim::trace_hash`] summarises everything transmitted.
//!
//! Each node is driven by the core's polling contract: after every input or command the
//! simulator drains `poll_transmit`, then `poll_event`, until both are empty, then schedules
//! `poll_timeout`. Invariants (well-formed frames, hops-to-live within bounds, bounded output
//! per input, no use of a link after its `LinkDown`) are checked as frames go by; a violation
//! panics with the seed.
//!
//! Nodes can also carry mesh streams (QUIC over mesh datagrams, the core's stream layer)
//! between small echo and sink applications: [`Sim::stream_listen`], [`Sim::stream_dial`],
//! [`Sim::stream`]. Such runs repeat in outcome and packet shape but not byte for byte
//! (TLS draws from the OS); runs without streams are unaffected (see `streams.rs`).
//! The test can also drive a stream's bytes itself ([`StreamApp::Raw`],
//! [`Sim::stream_dial_raw`]); that is how [`run_remote_units`] runs the core's remote-unit
//! machines against its control service across a faulty mesh (issue 13, item 3).
//!
//! ```
//! use std::time::Duration;
//! use receptor_tests::{LinkModel, Sim};
//!
//! let mut sim = Sim::new(1);
//! for n in ["a", "b", "c"] {
//!     sim.add_node(n);
//! }
//! sim.connect("a", "b", LinkModel::stream());
//! sim.connect("b", "c", LinkModel::datagram());
//! sim.run_until_converged(Duration::from_secs(10)).unwrap();
//! assert_eq!(sim.routes("a")["c"].as_str(), "b");
//! ```

#![warn(missing_docs)]

mod check;
mod control;
mod drive;
pub mod fuzz_replay;
mod link;
pub mod pair;
pub mod pki;
mod queue;
mod sim;
mod stream_app;
mod streams;
mod topology;
mod work_exec;
mod work_report;
mod work_sim;

pub use check::Wrong;
pub use link::{DirState, LinkModel};
pub use sim::{Recorded, Sim, SimStats, Stuck};
pub use streams::{
    SimStream, StreamApp, StreamEnd, StreamReport, StreamRole, StreamStats, fnv, fnv_start,
    pattern, stream_tls,
};
pub use topology::Topology;
pub use work_report::UnitsReport;
pub use work_sim::{remote_units_trace, run_remote_units};

/// The seed for a randomised test: `SIM_SEED` from the environment if set, else `default`.
/// Prints it, so a failing test's output says how to replay it.
///
/// # Panics
/// If `SIM_SEED` is set but not a number.
pub fn seed_from_env(default: u64) -> u64 {
    let seed = match std::env::var("SIM_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SIM_SEED={s:?} is not a number")),
        Err(_) => default,
    };
    eprintln!("simulation seed {seed} (replay with SIM_SEED={seed})");
    seed
}
