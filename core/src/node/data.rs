//! The data plane: firewall, local delivery, forwarding, unreachable notices (netceptor.md §6).

use bytes::Bytes;
use tracing::{debug, trace};

use super::{Event, Node, SendError};
use crate::PACKET_TRACE;
use crate::config::LinkKind;
use crate::firewall::{FirewallAction, evaluate};
use crate::id::{Addr, LinkId, NodeId, ServiceName};
use crate::link::LinkState;
use crate::wire::{
    DATA_HEADER_LEN, DataHeader, MAX_MESSAGE_LEN, PROBLEM_EXPIRED, PROBLEM_FIREWALL,
    PROBLEM_SERVICE_UNKNOWN, UnreachableNotice,
};

/// Payloads at least this large go on a stream link as they are, behind a separately built
/// header ([`super::Transmit::tail`]), instead of being copied into one buffer with it: a
/// mesh stream's 64 KB QUIC packets, sent or forwarded. Smaller ones are copied: a tail
/// keeps the whole buffer it was read into (up to 256 KiB) alive until it is written. The
/// bound is a judgement, not a measurement: the forward bench copies a 1200-byte payload
/// (Go's packets) in about 600 ns, against about 95 ns for a 60 KB one sent as it is.
const SEND_AS_IS: usize = 4096;

/// A data message on its way through this node. Names are looked up from the header's
/// hashes only where needed (firewall, delivery, notices), which keeps forwarding cheap.
struct Datagram {
    header: DataHeader,
    payload: Bytes,
}

impl Node {
    /// Sends a datagram from a local service (bound or not) to `to_node:to_service`.
    ///
    /// `hops_to_live` defaults to the configured maximum (30). Problems met on the way come
    /// back as [`Event::Unreachable`] for `from_service`; only local ones are errors here.
    pub fn send(
        &mut self,
        now: std::time::Instant,
        from_service: ServiceName,
        to_node: &str,
        to_service: ServiceName,
        payload: Bytes,
        hops_to_live: Option<u8>,
    ) -> Result<(), SendError> {
        self.now = self.now.max(now);
        if self.shut_down {
            return Err(SendError::ShutDown);
        }
        let to = if to_node.eq_ignore_ascii_case("localhost") {
            self.id.clone()
        } else {
            NodeId::new(to_node)?
        };
        if DATA_HEADER_LEN + payload.len() > MAX_MESSAGE_LEN {
            return Err(SendError::TooLarge(DATA_HEADER_LEN + payload.len()));
        }
        // Go registers every name it sends to.
        self.register_name(&to);
        let header = DataHeader {
            hops_to_live: hops_to_live.unwrap_or(self.config.max_hops),
            from_node: self.id_hash,
            to_node: to.hash(),
            from_service,
            to_service,
        };
        trace!(target: PACKET_TRACE, "--- Sending data length {} from {}:{} to {}:{}",
            payload.len(), self.id, from_service.to_string_lossy(), to, to_service.to_string_lossy());
        self.route(Datagram { header, payload }, true)
    }

    /// A data message arrived on an established session, on `link`.
    pub(super) fn received_data(&mut self, link: LinkId, header: DataHeader, payload: Bytes) {
        // Go drops data whose node hashes it cannot name, even in transit.
        if !self.names.contains_key(&header.from_node) || !self.names.contains_key(&header.to_node)
        {
            self.stats.unknown_hash += 1;
            debug!(node = %self.id, "data message with unknown node hash dropped");
            return;
        }
        trace!(target: PACKET_TRACE, "--- Received data length {} from {}:{} to {}:{} via {}",
            payload.len(), self.name_of(header.from_node), header.from_service.to_string_lossy(),
            self.name_of(header.to_node), header.to_service.to_string_lossy(), self.peer_name(link));
        // Errors only concern local senders.
        let _ = self.route(Datagram { header, payload }, false);
    }

    /// The registered name of a node hash. Every hash that reaches the data path was checked
    /// (received) or registered (sent); the fallback only guards against a logic slip.
    fn name_of(&self, hash: u64) -> NodeId {
        self.names
            .get(&hash)
            .cloned()
            .unwrap_or_else(|| self.id.clone())
    }

    /// The node at the other end of `link`, for packet traces.
    fn peer_name(&self, link: LinkId) -> &str {
        self.links
            .get(&link)
            .and_then(|l| l.remote.as_ref())
            .map_or("", |r| r.as_str())
    }

    /// The path every data message takes, local or in transit (§6.2).
    fn route(&mut self, mut d: Datagram, local: bool) -> Result<(), SendError> {
        if !self.config.firewall.is_empty() {
            let (from, to) = (
                self.name_of(d.header.from_node),
                self.name_of(d.header.to_node),
            );
            let verdict = evaluate(
                &self.config.firewall,
                from.as_str(),
                to.as_str(),
                &d.header.from_service.to_string_lossy(),
                &d.header.to_service.to_string_lossy(),
            );
            match verdict {
                FirewallAction::Accept => {}
                FirewallAction::Drop => {
                    self.stats.firewalled += 1;
                    return Ok(());
                }
                FirewallAction::Reject => {
                    self.stats.firewalled += 1;
                    self.notify_unreachable(&d, PROBLEM_FIREWALL);
                    return Ok(());
                }
            }
        }
        if d.header.to_node == self.id_hash {
            return self.deliver(d);
        }
        if d.header.hops_to_live == 0 {
            self.stats.expired += 1;
            self.notify_unreachable(&d, PROBLEM_EXPIRED);
            return Ok(());
        }
        let next = self.forward.get(&d.header.to_node).and_then(|&(_, id)| {
            let l = self.links.get(&id)?;
            (l.state == LinkState::Established).then_some((id, l))
        });
        let Some((link, l)) = next else {
            self.stats.no_route += 1;
            let to = self.name_of(d.header.to_node);
            debug!(node = %self.id, %to, "no route to node");
            return if local {
                Err(SendError::NoRoute(to.to_string()))
            } else {
                Ok(())
            };
        };
        d.header.hops_to_live -= 1;
        trace!(target: PACKET_TRACE, "    Forwarding data length {} via {}",
            d.payload.len(), l.remote.as_ref().map_or("", |r| r.as_str()));
        let size = DATA_HEADER_LEN + d.payload.len();
        let framed = if l.config.kind == LinkKind::Stream && d.payload.len() >= SEND_AS_IS {
            d.header
                .stream_head_in(&mut self.frame_arena, d.payload.len())
                .map(|head| (head, d.payload))
        } else {
            d.header
                .encode(&d.payload)
                .and_then(|m| l.frame(m))
                .map(|frame| (frame, Bytes::new()))
        };
        let Some((frame, tail)) = framed else {
            self.stats.oversized += 1;
            return Err(SendError::TooLarge(size));
        };
        if !local {
            self.stats.forwarded += 1;
        }
        let t = super::Transmit { link, frame, tail };
        super::queue(&mut self.transmits, &mut self.stats, t);
        Ok(())
    }

    /// A data message for this node (§6.2 step 2).
    fn deliver(&mut self, d: Datagram) -> Result<(), SendError> {
        let svc = d.header.to_service;
        let from = self.name_of(d.header.from_node);
        if svc == ServiceName::PING {
            // Reply from `ping`, empty payload, full hops, whatever the request carried.
            let reply = Datagram {
                header: DataHeader {
                    hops_to_live: self.config.max_hops,
                    from_node: self.id_hash,
                    to_node: d.header.from_node,
                    from_service: ServiceName::PING,
                    to_service: d.header.from_service,
                },
                payload: Bytes::new(),
            };
            let _ = self.route(reply, true);
            return Ok(());
        }
        if svc == ServiceName::UNREACH {
            self.received_unreachable(&from, &d.payload);
            return Ok(());
        }
        if self.probe_answered(svc, &from) {
            return Ok(());
        }
        if self.services.bound.contains_key(&svc) {
            self.stats.delivered += 1;
            self.events.push_back(Event::Datagram {
                service: svc,
                from: Addr {
                    node: from,
                    service: d.header.from_service,
                },
                payload: d.payload,
            });
            return Ok(());
        }
        if d.header.from_node == self.id_hash {
            return Err(SendError::ServiceUnknown(svc.to_string()));
        }
        self.notify_unreachable(&d, PROBLEM_SERVICE_UNKNOWN);
        Ok(())
    }

    /// Tells the sender of `d` it could not be delivered, unless it is itself a notice.
    fn notify_unreachable(&mut self, d: &Datagram, problem: &str) {
        if d.header.from_service == ServiceName::UNREACH {
            return;
        }
        let notice = UnreachableNotice {
            from_node: self.name_of(d.header.from_node).as_str().to_owned(),
            to_node: self.name_of(d.header.to_node).as_str().to_owned(),
            from_service: d.header.from_service.to_string(),
            to_service: d.header.to_service.to_string(),
            problem: problem.to_owned(),
        };
        let msg = Datagram {
            header: DataHeader {
                hops_to_live: self.config.max_hops,
                from_node: self.id_hash,
                to_node: d.header.from_node,
                from_service: ServiceName::UNREACH,
                to_service: ServiceName::UNREACH,
            },
            payload: Bytes::from(notice.encode()),
        };
        let _ = self.route(msg, true);
    }

    /// A notice for this node: hand it to the local service that sent the failed message.
    fn received_unreachable(&mut self, reporter: &NodeId, payload: &[u8]) {
        let Ok(notice) = UnreachableNotice::decode(payload) else {
            self.stats.malformed += 1;
            return;
        };
        if notice.from_node != self.id.as_str() {
            return;
        }
        let Ok(service) = ServiceName::new(&notice.from_service) else {
            return;
        };
        if self.probe_failed(service, reporter, &notice.problem) {
            return;
        }
        if self.services.bound.contains_key(&service) {
            self.events.push_back(Event::Unreachable {
                service,
                reporter: reporter.clone(),
                notice,
            });
        }
    }
}
