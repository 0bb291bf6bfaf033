//! Sans-IO core of a Receptor mesh node, wire-compatible with Go receptor (netceptor).
//!
//! The [`Node`] is a pure state machine: it takes bytes received on backend links, commands and
//! the current time, and returns bytes to send, deliveries and timer deadlines. It never touches
//! a socket, a thread or a clock.
//!
//! # Driving a node
//!
//! `examples/std_node.rs` is a whole node driven this way with std::net sockets and threads,
//! no async runtime: `cargo run -p receptor-core --example std_node -- --help`.
//!
//! After any mutation (`handle_input` or a command), drain [`Node::poll_transmit`] and
//! [`Node::poll_event`] until both return `None`, then read [`Node::poll_timeout`] and wait
//! until that instant or the next input, whichever comes first.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use receptor_core::{Config, Input, Node, NodeId};
//!
//! let now = Instant::now();
//! let config = Config::new(NodeId::new("foo").unwrap(), 42, Duration::from_secs(1_700_000_000));
//! let mut node = Node::new(Arc::new(config), now).unwrap();
//! loop {
//!     while let Some(tx) = node.poll_transmit() {
//!         // write tx.frame, then tx.tail, on tx.link
//!         # let _ = tx;
//!     }
//!     while let Some(ev) = node.poll_event() {
//!         // act on ev
//!         # let _ = ev;
//!     }
//!     let _deadline = node.poll_timeout();
//!     // wait for a socket read or the deadline, then:
//!     node.handle_input(Instant::now(), Input::Timeout);
//! }
//! ```
// Unsafe only in the socket calls of feature `os`, which the sans-IO node never uses.
#![cfg_attr(not(feature = "os"), forbid(unsafe_code))]
#![cfg_attr(feature = "os", deny(unsafe_code))]
#![cfg_attr(test, allow(clippy::disallowed_methods))]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod backend;
pub mod backoff;
pub mod config;
pub mod control;
pub mod firewall;
pub mod id;
pub mod identity;
mod link;
mod node;
#[cfg(feature = "os")]
pub mod os;
mod ping;
pub mod routing;
mod services;
pub mod stats;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod udp;
pub mod wire;
pub mod work;
#[cfg(feature = "ws")]
pub mod ws;

/// The `tracing` target of packet traces (Go's `trace` entity): a TRACE event for each data
/// message this node sends, receives or forwards, worded as Go's. Off unless a subscriber
/// enables this target, and then only the enabled events look names up.
pub const PACKET_TRACE: &str = "receptor_packet_trace";

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use config::{Config, ConfigError, DuplicatePolicy, LinkConfig};
pub use id::{Addr, InvalidId, LinkId, NodeId, ServiceName};
pub use node::{
    Advertise, AppCommand, Apps, Channels, CloseReason, ConnectionCounts, Event, Input, LinkKind,
    ListenError, MeshStatus, Node, NodeMetrics, PingId, PingResult, SendError, ServiceEvent,
    TraceEvent, Transmit, Unanswered,
};
pub use stats::NodeStats;
