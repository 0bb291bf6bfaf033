//! Drives a [`receptor_core::Node`] over real sockets with smol's parts (async-io,
//! async-net, async-executor): TCP and UDP backends, and a [`NodeHandle`] for applications
//! (status, ping, traceroute, datagram services). The surface mirrors `receptor-tokio`.
//!
//! One task owns the node; per-link reader and writer tasks talk to it through bounded
//! channels, so a slow peer never blocks the node: frames for a link whose queue is full are
//! dropped, as a lossy link would.
//!
//! [`spawn_node`] runs the node on a global executor with one background thread (as
//! `smol::spawn` does); [`spawn_node_on`] runs it on an executor the application drives.
//!
//! Not here yet: TLS and WebSocket backends (use `receptor-tokio` for those).

mod apps;
pub mod backends;
mod driver;
mod handle;
mod link;

/// The executor and task types this crate spawns with and returns.
pub use async_executor::{Executor, Task};
pub use handle::{
    NodeGone, NodeHandle, SERVICE_QUEUE, ServiceEvent, Status, TraceEvent, spawn_node,
    spawn_node_on,
};
