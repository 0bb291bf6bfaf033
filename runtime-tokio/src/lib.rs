//! Drives a [`receptor_core::Node`] over real sockets with tokio: TCP, UDP and WebSocket
//! backends (TLS through rustls), and a [`NodeHandle`] for applications (status, ping,
//! traceroute, datagram services).
//!
//! One task owns the node; per-link reader and writer tasks talk to it through bounded
//! channels, so a slow peer never blocks the node.

pub mod backends;
mod driver;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handle;
mod link;
mod stream;
pub mod tls;

/// The rustls this crate builds its TLS configs with.
pub use rustls;

pub use driver::SERVICE_QUEUE;
pub use handle::{Metrics, NodeGone, NodeHandle, spawn_node};
pub use receptor_core::stream::DialFailure;
pub use receptor_core::{MeshStatus, ServiceEvent, TraceEvent};
pub use stream::{MeshStream, StreamListener};
