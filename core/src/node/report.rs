//! What a node reports to its applications: a mesh snapshot, traceroute hops and what
//! arrives on a bound service. Both runtimes hand these to applications as they are.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::config::LinkKind;
use crate::stats::NodeStats;
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

/// Established connections by the kind of backend they run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Byte-stream backends (TCP, with or without TLS).
    pub stream: u64,
    /// Datagram backends (UDP).
    pub datagram: u64,
    /// Message backends (WebSocket).
    pub message: u64,
}

/// The numbers a metrics scrape reads from a node, taken at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeMetrics {
    /// The node's counters.
    pub stats: NodeStats,
    /// Established connections by backend kind.
    pub connections: ConnectionCounts,
    /// Nodes whose connections this node knows (itself included).
    pub known_nodes: u64,
    /// Destinations in the routing table.
    pub routes: u64,
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

    /// Counters and sizes for a metrics scrape; cheaper than [`Node::mesh_status`] (no
    /// names are copied).
    pub fn metrics(&self) -> NodeMetrics {
        let mut connections = ConnectionCounts::default();
        for link in self.peers.values().filter_map(|l| self.links.get(l)) {
            match link.config.kind {
                LinkKind::Stream => connections.stream += 1,
                LinkKind::Datagram => connections.datagram += 1,
                LinkKind::Message => connections.message += 1,
            }
        }
        NodeMetrics {
            stats: self.stats,
            connections,
            known_nodes: self.router.graph().known_count() as u64,
            routes: self.routes().len() as u64,
        }
    }
}
