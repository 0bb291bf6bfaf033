//! Drives a [`receptor_core::Node`] over real sockets with smol's parts (async-io,
//! async-net, async-executor): TCP, WebSocket (ws and wss) and UDP backends, TLS through
//! futures-rustls with the core's configs and node-ID rules ([`receptor_core::tls`],
//! re-exported as [`tls`]), and a [`NodeHandle`] for applications (status, ping, traceroute,
//! datagram services, [`NodeHandle::disconnect_all`], and mesh streams: [`MeshStream`] over
//! QUIC, with [`NodeHandle::dial`] and [`NodeHandle::listen_stream`]). The surface mirrors
//! `receptor-tokio`: the same backend names and specs (`tcp_listen`, `tcp_dial`,
//! `ws_listen`, `ws_dial`, `udp_listen`, `udp_dial`), plus `tcp_connect` / `ws_connect` for a
//! single dial that returns a typed [`backends::DialError`].
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
//! [`control::serve_control_unix`] serves the control protocol (`receptorctl`'s status, ping,
//! traceroute, connect, and with a [`work::Work`] the `work` commands) on a unix socket.
//!
//! [`work::Work`] runs units of work (command work types) through core's unit lifecycle
//! engine, as the `receptor` binary does under tokio.
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
//! tcp_dial(&node, DialSpec { address, redial: true, link, tls: None }).detach();
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
pub mod control;
mod driver;
mod handle;
mod link;
mod stream;
pub mod tls;
pub mod work;

/// The rustls the TLS configs of [`backends`] are built with.
pub use rustls;

/// The executor and task types this crate spawns with and returns.
pub use async_executor::{Executor, Task};
pub use handle::{NodeGone, NodeHandle, SERVICE_QUEUE, spawn_node, spawn_node_on};
pub use receptor_core::{MeshStatus, ServiceEvent, TraceEvent};
pub use stream::{MeshStream, StreamListener};
