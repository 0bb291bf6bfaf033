//! Counters a node keeps about what it did and what it dropped.

/// Plain counters; read them with [`Node::stats`](crate::Node::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages received on links.
    pub messages_in: u64,
    /// Messages queued for links.
    pub messages_out: u64,
    /// Bytes received on links.
    pub bytes_in: u64,
    /// Bytes queued for links.
    pub bytes_out: u64,
    /// Messages that did not decode.
    pub malformed: u64,
    /// Data messages dropped because a node hash was unknown.
    pub unknown_hash: u64,
    /// Data messages dropped for lack of a route.
    pub no_route: u64,
    /// Data messages that ran out of hops.
    pub expired: u64,
    /// Data messages a firewall rule dropped or rejected.
    pub firewalled: u64,
    /// Routing updates received.
    pub route_updates_in: u64,
    /// Routing updates ignored as already seen or stale.
    pub route_updates_stale: u64,
    /// Data messages forwarded for other nodes.
    pub forwarded: u64,
    /// Datagrams delivered to local services.
    pub delivered: u64,
    /// Messages refused because they would exceed the link's size limit.
    pub oversized: u64,
    /// Inputs ignored because they named an unknown or duplicate link.
    pub bad_link_inputs: u64,
    /// Sessions rejected by this node.
    pub rejects_sent: u64,
    /// Sessions whose handshake completed (connections established).
    pub connections_established: u64,
    /// Times the routing table was computed again.
    pub route_recomputations: u64,
    /// Recomputations that changed a route.
    pub route_changes: u64,
    /// Node names a link had no room left to teach (`Config::max_nodes_per_link`).
    pub names_refused: u64,
    /// Service advertisements a link had no room left to teach (`Config::max_ads_per_link`).
    pub ads_refused: u64,
    /// Nodes forgotten after no route reached them for `Config::forget_after`.
    pub nodes_forgotten: u64,
    /// Service advertisements forgotten (their node unreachable, or cancelled, that long).
    pub ads_forgotten: u64,
}
