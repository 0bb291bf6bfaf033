//! Ping and traceroute in flight (netceptor.md §7): each waits on an ephemeral service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::id::{NodeId, ServiceName};

/// Identifies one ping or traceroute started by [`Node::ping`](crate::Node::ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PingId(pub u64);

/// The outcome of one ping, or of one traceroute hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    /// The node that answered, or reported the problem.
    pub from: Option<NodeId>,
    /// Time from send to answer, measured at the origin.
    pub rtt: Duration,
    /// `None` on success (and for traceroute's `message expired` hops); otherwise the
    /// problem (`service unknown`, `timeout`, ...).
    pub error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) id: PingId,
    pub(crate) target: NodeId,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    /// For a traceroute: the hops-to-live of this probe.
    pub(crate) trace_hop: Option<u8>,
}

/// Pings waiting for an answer, by the ephemeral service they listen on.
#[derive(Debug, Default)]
pub(crate) struct Pings {
    pub(crate) by_service: BTreeMap<ServiceName, Pending>,
    next_id: u64,
}

impl Pings {
    pub(crate) fn next_id(&mut self) -> PingId {
        self.next_id += 1;
        PingId(self.next_id)
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.by_service.values().map(|p| p.deadline).min()
    }

    /// Removes and returns the pings whose time is up.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<(ServiceName, Pending)> {
        let due: Vec<ServiceName> = self
            .by_service
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(s, _)| *s)
            .collect();
        due.into_iter()
            .filter_map(|s| self.by_service.remove(&s).map(|p| (s, p)))
            .collect()
    }
}
