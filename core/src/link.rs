//! One backend session: its handshake state, deframer and timers (netceptor.md §4).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::config::{LinkConfig, LinkKind};
use crate::id::NodeId;
use crate::wire::{Deframer, Encoded, MAX_MESSAGE_LEN, MAX_UDP_MESSAGE_LEN};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Sending our update every second until the peer's first update arrives.
    Handshake { sends: u32, next_send: Instant },
    /// The peer is known and in our connections.
    Established,
    /// We asked the runtime to close it; waiting for `LinkDown`.
    Closing,
}

/// A backend session to one neighbour.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) config: Arc<LinkConfig>,
    pub(crate) deframer: Option<Deframer>,
    pub(crate) state: LinkState,
    /// Learned from the first routing update (its `ForwardingNode`).
    pub(crate) remote: Option<NodeId>,
    /// `remote` packed, if short enough: compared with every update's ForwardingNode.
    pub(crate) remote_key: Option<u128>,
    /// The peer's own update has listed us.
    pub(crate) remote_established: bool,
    /// The agreed cost (backend cost, or the nodecost override for this peer).
    pub(crate) cost: f64,
    pub(crate) idle_deadline: Instant,
    /// Node names learned through this link and still held (`Config::max_nodes_per_link`).
    pub(crate) learned_nodes: u32,
    /// Advertisements learned through this link and still held (`Config::max_ads_per_link`).
    pub(crate) learned_ads: u32,
    /// A bound was reached on this link and logged; logged once per link.
    pub(crate) warned_full: bool,
}

impl Link {
    pub(crate) fn new(config: Arc<LinkConfig>, now: Instant, idle: std::time::Duration) -> Self {
        let deframer = (config.kind == LinkKind::Stream).then(Deframer::new);
        let cost = config.cost;
        Self {
            config,
            deframer,
            state: LinkState::Handshake {
                sends: 0,
                next_send: now,
            },
            remote: None,
            remote_key: None,
            remote_established: false,
            cost,
            idle_deadline: now + idle,
            learned_nodes: 0,
            learned_ads: 0,
            warned_full: false,
        }
    }

    /// The bytes to write for `msg` on this link, or `None` if it is too big for the backend.
    pub(crate) fn frame(&self, msg: Encoded) -> Option<Bytes> {
        let len = msg.message().len();
        match self.config.kind {
            LinkKind::Stream => Some(msg.into_stream()),
            LinkKind::Datagram if len <= MAX_UDP_MESSAGE_LEN => Some(msg.into_datagram()),
            LinkKind::Message if len <= MAX_MESSAGE_LEN => Some(msg.into_datagram()),
            LinkKind::Datagram | LinkKind::Message => None,
        }
    }

    /// The established peer, if any.
    pub(crate) fn peer(&self) -> Option<&NodeId> {
        match self.state {
            LinkState::Established => self.remote.as_ref(),
            _ => None,
        }
    }

    /// The earliest instant this link needs a timeout.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.state {
            LinkState::Handshake { next_send, .. } => Some(next_send.min(self.idle_deadline)),
            LinkState::Established => Some(self.idle_deadline),
            LinkState::Closing => None,
        }
    }
}
