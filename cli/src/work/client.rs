//! How this node opens mesh streams to another node's `control` service for remote units.
//! What goes over them is the core's business ([`receptor_core::work::remote_unit`]).

use std::sync::Arc;

use receptor_core::work::remote_unit::ConnectFailure;
use receptor_tokio::{DialFailure, MeshStream, NodeHandle};

use crate::run::TlsConfigs;
use crate::streamtls::client_for;

/// How this node reaches others: the node and its TLS configs.
#[derive(Clone)]
pub struct Mesh {
    /// The node.
    pub node: NodeHandle,
    /// TLS configs by name (`tlsclient` of a remote unit).
    pub tls: Arc<TlsConfigs>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("node", &self.node.id())
            .finish()
    }
}

impl Mesh {
    /// Dials `control` on `node` (TLS with config `tls_client` when not empty). A node
    /// without a route is refused at once instead of waiting for the QUIC handshake to time
    /// out. The greeting is left to the reader.
    pub async fn open(&self, node: &str, tls_client: &str) -> Result<MeshStream, ConnectFailure> {
        let me = self.node.id().as_str();
        let (cfg, sni) =
            client_for(&self.tls, Some(tls_client), node, me).map_err(ConnectFailure::Other)?;
        if node != me {
            let st = self
                .node
                .status()
                .await
                .map_err(|_| ConnectFailure::Dial(DialFailure::NodeStopped))?;
            if !st.routes.iter().any(|(dest, _)| dest.as_str() == node) {
                return Err(ConnectFailure::NoRoute);
            }
        }
        Ok(self.node.dial(node, "control", cfg, &sni).await?)
    }
}
