//! What a node reports to its applications: a mesh snapshot, traceroute hops and what
//! arrives on a bound service. Both runtimes hand these to applications as they are.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::wire::{ServiceAdvert, UnreachableNotice};
use crate::{Node, NodeId, PingResult, ServiceName};

/// What arrives on a bound service.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceEvent {
    /// A datagram.
    Datagram {
        /// Sender node.
        from_node: NodeId,
        /// Sender service.
        from_service: ServiceName,
        /// Payload.
        payload: Bytes,
    },
    /// Something this service sent could not be delivered.
    Unreachable {
        /// The node that reported it.
        reporter: NodeId,
        /// The notice.
        notice: UnreachableNotice,
    },
}

/// A snapshot of the node's mesh state, for `status`.
#[derive(Debug, Clone)]
pub struct MeshStatus {
    /// This node.
    pub node_id: NodeId,
    /// Direct neighbours and costs.
    pub connections: BTreeMap<NodeId, f64>,
    /// Destination -> first hop.
    pub routes: BTreeMap<NodeId, NodeId>,
    /// Destination -> cost of the least-cost path to it.
    pub path_costs: BTreeMap<NodeId, f64>,
    /// Every node's advertised connections.
    pub known_connection_costs: BTreeMap<NodeId, BTreeMap<NodeId, f64>>,
    /// Service advertisements in force, ours included.
    pub advertisements: Vec<ServiceAdvert>,
}

/// One traceroute hop, or the end.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceEvent {
    /// A hop (0 = this node).
    Hop(u8, PingResult),
    /// No more hops.
    Done,
}

impl Node {
    /// A snapshot of what this node knows of the mesh.
    pub fn mesh_status(&self) -> MeshStatus {
        MeshStatus {
            node_id: self.id().clone(),
            connections: self.connections(),
            routes: self.routes().clone(),
            path_costs: self.path_costs(),
            known_connection_costs: self.known_connection_costs(),
            advertisements: self.advertisements().cloned().collect(),
        }
    }
}
