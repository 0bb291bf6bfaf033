//! Drives a [`receptor_core::Node`] over real sockets with smol's parts (async-io,
//! async-net, async-executor): TCP and UDP backends, and a [`NodeHandle`] for applications
//! (status, ping, traceroute, datagram services, and mesh streams: [`MeshStream`] over
//! QUIC, with [`NodeHandle::dial`] and [`NodeHandle::listen_stream`]). The surface mirrors
//! `receptor-tokio`.
//!
//! One task owns the node; per-link reader and writer tasks talk to it through bounded
//! channels, so a slow peer never blocks the node: frames for a link whose queue is full are
//! dropped, as a lossy link would.
//!
//! [`spawn_node`] runs the node on a global executor with one background thread (as
//! `smol::spawn` does); [`spawn_node_on`] runs it on an executor the application drives.
//!
//! Backends return their [`Task`]: dropping it cancels the backend (tokio's `JoinHandle`
//! detaches instead), so keep it or call `detach()`.
//!
//! [`work::Work`] runs units of work (command work types) through core's unit lifecycle
//! engine, as the `receptor` binary does under tokio.
//!
//! Not here yet: TLS and WebSocket backends (use `receptor-tokio` for those).
//!
//! ```no_run
//! use std::sync::Arc;
//! use receptor_core::{Config, LinkConfig, LinkKind, NodeId};
//! use receptor_smol::backends::{DialSpec, tcp_dial};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
//! let config = Config::new(NodeId::new("foo")?, 42, wall);
//! let node = receptor_smol::spawn_node(Arc::new(config))?;
//! let link = Arc::new(LinkConfig::new(LinkKind::Stream));
//! let address = "127.0.0.1:2222".to_owned();
//! tcp_dial(&node, DialSpec { address, redial: true, link }).detach();
//! async_io::block_on(async {
//!     let reply = node.ping("bar").await?;
//!     println!("{reply:?}");
//!     node.shutdown().await;
//!     Ok(())
//! })
//! # }
//! ```

mod apps;
pub mod backends;
mod driver;
mod handle;
mod link;
mod stream;
pub mod work;

/// The executor and task types this crate spawns with and returns.
pub use async_executor::{Executor, Task};
pub use handle::{NodeGone, NodeHandle, SERVICE_QUEUE, spawn_node, spawn_node_on};
pub use receptor_core::{MeshStatus, ServiceEvent, TraceEvent};
pub use stream::{MeshStream, StreamListener};
