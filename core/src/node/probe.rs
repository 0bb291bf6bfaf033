//! Ping and traceroute (netceptor.md §7).

use std::time::Instant;

use bytes::Bytes;

use super::{Event, Node, SendError};
use crate::id::{NodeId, ServiceName};
use crate::ping::{Pending, PingId, PingResult};
use crate::wire::PROBLEM_EXPIRED;

impl Node {
    /// Pings `target`: an empty datagram to its `ping` service. The outcome arrives as
    /// [`Event::Ping`] (a reply, an unreachable notice, or `timeout` after 10 s).
    pub fn ping(&mut self, now: Instant, target: &str) -> Result<PingId, SendError> {
        self.now = self.now.max(now);
        let id = self.pings.next_id();
        let hops = self.config.max_hops;
        self.probe(id, target, hops, None)?;
        Ok(id)
    }

    /// Traceroute to `target`: pings with hops-to-live 0, 1, 2, ... Each hop arrives as
    /// [`Event::TraceHop`], then [`Event::TraceDone`].
    pub fn traceroute(&mut self, now: Instant, target: &str) -> Result<PingId, SendError> {
        self.now = self.now.max(now);
        let id = self.pings.next_id();
        // Validate the target before starting, so a bad name is an error, not a hop.
        if !target.eq_ignore_ascii_case("localhost") {
            NodeId::new(target)?;
        }
        self.trace_step(id, target, 0);
        Ok(id)
    }

    fn trace_step(&mut self, id: PingId, target: &str, hop: u8) {
        if let Err(e) = self.probe(id, target, hop, Some(hop)) {
            // Go answers its own probe with an unreachable notice: this node reports it, with
            // the notice's bare reason.
            let error = match e {
                SendError::NoRoute(_) => "no route to node".to_owned(),
                other => other.to_string(),
            };
            let result = PingResult {
                from: Some(self.id.clone()),
                rtt: std::time::Duration::ZERO,
                error: Some(error),
            };
            self.events.push_back(Event::TraceHop { id, hop, result });
            self.events.push_back(Event::TraceDone { id });
        }
    }

    fn probe(
        &mut self,
        id: PingId,
        target: &str,
        hops: u8,
        trace_hop: Option<u8>,
    ) -> Result<(), SendError> {
        if self.shut_down {
            return Err(SendError::ShutDown);
        }
        let target = if target.eq_ignore_ascii_case("localhost") {
            self.id.clone()
        } else {
            NodeId::new(target)?
        };
        let service = self.ephemeral_service();
        self.pings.by_service.insert(
            service,
            Pending {
                id,
                target: target.clone(),
                started: self.now,
                deadline: self.now + self.config.ping_timeout,
                trace_hop,
            },
        );
        let sent = self.send(
            self.now,
            service,
            target.as_str(),
            ServiceName::PING,
            Bytes::new(),
            Some(hops),
        );
        if sent.is_err() {
            self.pings.by_service.remove(&service);
        }
        sent
    }

    /// A datagram on a probe's service: the target answered.
    pub(super) fn probe_answered(&mut self, service: ServiceName, from: &NodeId) -> bool {
        let Some(p) = self.pings.by_service.remove(&service) else {
            return false;
        };
        self.finish_probe(p, Some(from.clone()), None);
        true
    }

    /// An unreachable notice for a probe's service.
    pub(super) fn probe_failed(
        &mut self,
        service: ServiceName,
        reporter: &NodeId,
        problem: &str,
    ) -> bool {
        let Some(p) = self.pings.by_service.remove(&service) else {
            return false;
        };
        self.finish_probe(p, Some(reporter.clone()), Some(problem.to_owned()));
        true
    }

    pub(super) fn expire_probes(&mut self) {
        for (_, p) in self.pings.expired(self.now) {
            self.finish_probe(p, None, Some("timeout".to_owned()));
        }
    }

    fn finish_probe(&mut self, p: Pending, from: Option<NodeId>, error: Option<String>) {
        let rtt = self.now.saturating_duration_since(p.started);
        match p.trace_hop {
            None => {
                let result = PingResult { from, rtt, error };
                self.events.push_back(Event::Ping { id: p.id, result });
            }
            Some(hop) => {
                // `message expired` is how each hop shows itself: not an error, go on.
                let expired = error.as_deref() == Some(PROBLEM_EXPIRED);
                let error = if expired { None } else { error };
                let done = !expired || hop >= self.config.max_hops;
                let result = PingResult { from, rtt, error };
                self.events.push_back(Event::TraceHop {
                    id: p.id,
                    hop,
                    result,
                });
                if done {
                    self.events.push_back(Event::TraceDone { id: p.id });
                } else {
                    let target = p.target.to_string();
                    self.trace_step(p.id, &target, hop + 1);
                }
            }
        }
    }
}
