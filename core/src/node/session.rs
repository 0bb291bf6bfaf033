//! Backend sessions: handshake, checks on routing updates, flooding (netceptor.md §4, §5).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::debug;

use super::{CloseReason, Event, Node, Timer};
use crate::config::{DuplicatePolicy, LinkConfig};
use crate::id::{LinkId, NodeId};
use crate::link::{Link, LinkState};
use crate::routing::fastkey::{is_name, pack};
use crate::routing::{Applied, Source, Update};
use crate::wire::{Encoded, MSG_ROUTE, Message, RouteHead, RouteUpdate, RouteView, encode_reject};

/// A routing update as the session checks and floods it: decoded, or read in place.
pub(super) trait Received: Update {
    fn update_id(&self) -> &[u8];
    fn forwarding_node(&self) -> &[u8];
    /// The cost listed for `node`, if any.
    fn connection(&self, node: &str) -> Option<f64>;
    /// This update as `me` (`me_quoted` as a JSON string) forwards it.
    fn forward(&self, me: &str, me_quoted: &str, arena: &mut BytesMut) -> Option<Encoded>;
}

impl Received for RouteUpdate {
    fn update_id(&self) -> &[u8] {
        self.update_id.as_bytes()
    }
    fn forwarding_node(&self) -> &[u8] {
        self.forwarding_node.as_bytes()
    }
    fn connection(&self, node: &str) -> Option<f64> {
        self.connections.get(node).copied()
    }
    fn forward(&self, me: &str, _: &str, _: &mut BytesMut) -> Option<Encoded> {
        let mut u = self.clone();
        u.forwarding_node = me.to_owned();
        u.encode()
    }
}

impl Received for RouteView<'_> {
    fn update_id(&self) -> &[u8] {
        self.update_id
    }
    fn forwarding_node(&self) -> &[u8] {
        self.forwarding_node
    }
    fn connection(&self, node: &str) -> Option<f64> {
        RouteView::connection(self, node)
    }
    fn forward(&self, me: &str, me_quoted: &str, arena: &mut BytesMut) -> Option<Encoded> {
        self.forward_as(me, me_quoted, arena)
    }
}

impl Node {
    pub(super) fn link_up(&mut self, link: LinkId, config: Arc<LinkConfig>) {
        if self.links.contains_key(&link) {
            self.stats.bad_link_inputs += 1;
            return;
        }
        let mut l = Link::new(config, self.now, self.config.max_idle);
        if self.links.len() >= self.config.max_links {
            l.state = LinkState::Closing;
            self.links.insert(link, l);
            self.events.push_back(Event::CloseLink {
                link,
                reason: CloseReason::Protocol("too many links".to_owned()),
            });
            return;
        }
        self.links.insert(link, l);
        self.handshake_send(link);
        if let Some(t) = self.links.get(&link).and_then(Link::deadline) {
            self.link_deadline = Some(self.link_deadline.map_or(t, |d| d.min(t)));
        }
    }

    /// Sends the handshake update on `link` only: our current connections, not this peer.
    fn handshake_send(&mut self, link: LinkId) {
        let update = self.own_update(0);
        let Some(msg) = update.encode() else { return };
        let interval = self.config.handshake_interval;
        if let Some(LinkState::Handshake { sends, next_send }) =
            self.links.get_mut(&link).map(|l| &mut l.state)
        {
            *sends += 1;
            *next_send = self.now + interval;
        }
        self.transmit(link, msg);
    }

    pub(super) fn link_down(&mut self, link: LinkId) {
        if self.links.contains_key(&link) {
            self.drop_connection(link);
            self.links.remove(&link);
        } else {
            self.stats.bad_link_inputs += 1;
        }
    }

    /// Forgets the connection carried by `link`, if it was established.
    fn drop_connection(&mut self, link: LinkId) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let was = l.peer().cloned();
        l.state = LinkState::Closing;
        let Some(node) = was else { return };
        if self.peers.get(&node) == Some(&link) {
            self.peers.remove(&node);
            self.router.link_down(&node);
            self.forward.retain(|_, (_, l)| *l != link);
            self.forward_stale = true;
            self.request(Timer::Flood, self.config.change_delay);
            self.request(Timer::Recompute, self.config.change_delay);
        }
        self.events.push_back(Event::PeerDown { link, node });
    }

    /// Asks the runtime to close `link`, forgetting its connection now.
    pub(super) fn close_link(&mut self, link: LinkId, reason: CloseReason) {
        if self
            .links
            .get(&link)
            .is_none_or(|l| l.state == LinkState::Closing)
        {
            return;
        }
        debug!(node = %self.id, %link, ?reason, "closing link");
        self.drop_connection(link);
        self.events.push_back(Event::CloseLink { link, reason });
    }

    /// Refuses a peer whose certificate does not prove the node ID it announced: a reject
    /// that names the reason (so the peer's log can say it too), then close.
    fn refuse_identity(&mut self, link: LinkId, err: crate::identity::IdentityError) {
        tracing::warn!(node = %self.id, %link, "refusing peer: {err}");
        self.stats.rejects_sent += 1;
        self.transmit(link, crate::wire::encode_reject_with(&err.to_string()));
        self.close_link(link, CloseReason::Identity(err));
    }

    /// Sends a reject, then closes (Go races the two; the reject may not arrive).
    fn reject(&mut self, link: LinkId, why: &str) {
        debug!(node = %self.id, %link, why, "rejecting peer");
        self.stats.rejects_sent += 1;
        self.transmit(link, encode_reject());
        self.close_link(link, CloseReason::Rejected(why.to_owned()));
    }

    pub(super) fn handle_message(&mut self, link: LinkId, msg: Bytes) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        self.stats.messages_in += 1;
        // Any message, even one we cannot parse, proves the peer alive.
        l.idle_deadline = self.now + self.max_idle;
        let state = l.state;
        if msg.first() == Some(&crate::wire::MSG_REJECT) {
            if state != LinkState::Closing {
                let reason = crate::wire::reject_reason(msg.get(1..).unwrap_or_default());
                let peer = l
                    .remote
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), NodeId::to_string);
                match &reason {
                    Some(why) => tracing::warn!(
                        node = %self.id, %link, %peer,
                        "Received a rejection message from peer: {why:?}"
                    ),
                    None => tracing::warn!(
                        node = %self.id, %link, %peer,
                        "Received a rejection message from peer."
                    ),
                }
                self.close_link(link, CloseReason::PeerRejected(reason));
            }
            return;
        }
        // Fast paths for the bulk of traffic on an established session: data, and routing
        // updates in canonical form (read in place, most of them dropped as already seen).
        if state == LinkState::Established {
            match msg.first() {
                Some(&crate::wire::MSG_DATA) => {
                    match crate::wire::DataHeader::decode(&msg) {
                        Ok(header) => {
                            let payload = msg.slice(crate::wire::DATA_HEADER_LEN..);
                            self.received_data(link, header, payload);
                        }
                        Err(e) => {
                            self.stats.malformed += 1;
                            debug!(node = %self.id, %link, error = %e, "malformed message");
                        }
                    }
                    return;
                }
                Some(&MSG_ROUTE) => {
                    let body = msg.get(1..).unwrap_or_default();
                    if self.seen_copy(link, body) {
                        return;
                    }
                    if let Some(view) = RouteView::parse(body) {
                        self.established_update(link, &view);
                        return;
                    }
                }
                _ => {}
            }
        }
        let decoded = match Message::decode(msg) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                debug!(node = %self.id, %link, error = %e, "malformed message");
                // Before the handshake a peer that sends garbage is not speaking netceptor.
                if matches!(state, LinkState::Handshake { .. }) {
                    self.close_link(link, CloseReason::Protocol(e.to_string()));
                }
                return;
            }
        };
        match (state, decoded) {
            (LinkState::Closing, _) => {}
            // Handled above, before decoding, for its reason.
            (_, Message::Reject) => {}
            (LinkState::Handshake { .. }, Message::Route(ri)) => self.handshake_update(link, ri),
            (LinkState::Handshake { .. }, Message::Unknown(ty)) => {
                self.stats.malformed += 1;
                self.close_link(
                    link,
                    CloseReason::Protocol(format!("unknown message type {ty}")),
                );
            }
            // Data and adverts before the handshake completes are lost, as in Go.
            (LinkState::Handshake { .. }, _) => {}
            (LinkState::Established, Message::Route(ri)) => self.established_update(link, &ri),
            (LinkState::Established, Message::ServiceAd(ad, raw)) => {
                self.received_ad(link, ad, raw);
            }
            (LinkState::Established, Message::Data { header, payload }) => {
                self.received_data(link, header, payload);
            }
            (LinkState::Established, Message::Unknown(ty)) => {
                debug!(node = %self.id, %link, ty, "unknown message type ignored");
            }
        }
    }

    /// A copy of a flood already handled, told from the ends of the body alone: the
    /// checks `established_update` makes before its seen check pass, and the ID is seen.
    /// Counted as it would count it. (A copy whose middle is malformed is thus counted as
    /// seen, not malformed; it is dropped either way.)
    fn seen_copy(&mut self, link: LinkId, body: &[u8]) -> bool {
        let Some(h) = RouteHead::peek(body) else {
            return false;
        };
        let Some(l) = self.links.get(&link) else {
            return false;
        };
        let Some(remote) = l.remote.as_ref() else {
            return false;
        };
        // The peer's own updates (their connections are checked), ours, and anything that
        // would be rejected or ignored take the full path.
        if !is_name(h.forwarding_node, l.remote_key, remote)
            || is_name(h.node_id, l.remote_key, remote)
            || h.node_id.is_empty()
            || is_name(h.node_id, self.id_key, &self.id)
            || !self.seen.contains(h.update_id, self.now)
        {
            return false;
        }
        self.stats.route_updates_in += 1;
        self.stats.route_updates_stale += 1;
        true
    }

    /// The first routing update on a session names the peer (§4.2).
    fn handshake_update(&mut self, link: LinkId, ri: RouteUpdate) {
        let Ok(remote) = NodeId::from_wire(&ri.forwarding_node) else {
            self.reject(link, "invalid node ID");
            return;
        };
        if remote == self.id {
            self.reject(link, "it tried to connect using our own node ID");
            return;
        }
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let (bind, cert) = (l.config.bind_node_id, l.config.peer_cert.as_ref());
        if let Err(e) = crate::identity::check_peer(bind, cert, &remote) {
            self.refuse_identity(link, e);
            return;
        }
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if l.config
            .allowed_peers
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(&remote))
        {
            self.reject(link, "peer not in allowedpeers");
            return;
        }
        if let Some(&c) = l.config.node_cost.get(&remote) {
            l.cost = c;
        }
        let cost = l.cost;
        if self.peers.contains_key(&remote) {
            self.reject(link, "already connected");
            return;
        }
        if let Some(l) = self.links.get_mut(&link) {
            l.state = LinkState::Established;
            l.remote = Some(remote.clone());
            l.remote_key = pack(remote.as_str());
        }
        debug!(node = %self.id, %link, peer = %remote, cost, "connection established");
        self.stats.connections_established += 1;
        self.peers.insert(remote.clone(), link);
        self.forward_stale = true;
        self.register_name(&remote);
        self.router.link_up(&remote, cost);
        self.request(Timer::Flood, self.config.change_delay);
        self.request(Timer::Recompute, self.config.change_delay);
        self.events.push_back(Event::PeerUp { link, node: remote });
        // Go makes a new neighbour wait up to 60 s for adverts; we push what we know now.
        self.push_ads(link);
    }

    /// Checks on every update from an established peer (§4.3), then processing (§5.3).
    fn established_update(&mut self, link: LinkId, ri: &impl Received) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let Some(remote) = l.remote.as_ref() else {
            return;
        };
        if !is_name(ri.forwarding_node(), l.remote_key, remote) {
            self.reject(link, "remote node ID changed unexpectedly");
            return;
        }
        if is_name(ri.node_id(), l.remote_key, remote) {
            match ri.connection(self.id.as_str()) {
                None if l.remote_established => {
                    self.reject(link, "remote node no longer lists us");
                    return;
                }
                // A late copy of the peer's handshake: neither processed nor forwarded.
                None => return,
                Some(c) => {
                    l.remote_established = true;
                    if c != l.cost {
                        self.reject(link, "we disagree about the connection cost");
                        return;
                    }
                }
            }
        }
        self.stats.route_updates_in += 1;
        if ri.node_id().is_empty() {
            return;
        }
        if is_name(ri.node_id(), self.id_key, &self.id) {
            self.duplicate_check(link, ri.epoch(), ri.suspected_duplicate());
            return;
        }
        if ri.update_id().len() > crate::config::MAX_UPDATE_ID_LEN {
            self.stats.malformed += 1;
            return;
        }
        if !self.seen.insert(ri.update_id(), self.now) {
            self.stats.route_updates_stale += 1;
            return;
        }
        let room = self
            .config
            .max_nodes_per_link
            .saturating_sub(self.links.get(&link).map_or(0, |l| l.learned_nodes));
        let mut src = Source {
            link,
            room,
            added: 0,
            refused: 0,
        };
        let applied = self.router.apply_update(ri, &mut src);
        if src.added > 0
            && let Some(l) = self.links.get_mut(&link)
        {
            l.learned_nodes += src.added;
        }
        if src.refused > 0 {
            self.stats.names_refused += u64::from(src.refused);
            self.link_full(link, "node names");
        }
        match applied {
            // Not a valid node ID, or no room for a new one.
            None | Some(Applied::Refused) => return,
            Some(Applied::Stale) => {
                self.stats.route_updates_stale += 1;
                return;
            }
            Some(Applied::Fresh { new_node, changed }) => {
                if new_node {
                    let graph = self.router.graph();
                    if let Some(origin) = graph.find(ri.node_id()).and_then(|i| graph.name(i)) {
                        // As `register_name`, without a reference count round trip.
                        self.names
                            .entry(origin.hash())
                            .or_insert_with(|| origin.clone());
                    }
                    self.request(Timer::Flood, self.config.change_delay);
                }
                if changed {
                    self.request(Timer::Recompute, self.config.change_delay);
                }
            }
        }
        if let Some(msg) = ri.forward(self.id.as_str(), &self.id_quoted, &mut self.frame_arena) {
            self.broadcast(&msg, Some(link));
        }
    }

    /// An update carrying our own node ID (§5.4), received on `link`.
    fn duplicate_check(&mut self, link: LinkId, epoch: u64, suspected_duplicate: u64) {
        if epoch == self.epoch {
            return;
        }
        if suspected_duplicate == self.epoch {
            let peer = self
                .links
                .get(&link)
                .and_then(|l| l.remote.as_ref())
                .map_or_else(|| "?".to_owned(), NodeId::to_string);
            let claim = format!(
                "a routing update through {link} from {peer} says another instance of node {} \
                 is running (epoch {epoch})",
                self.id
            );
            match self.config.on_duplicate {
                DuplicatePolicy::Exit => {
                    let reason = format!("{claim}: shutting down this one");
                    tracing::error!(node = %self.id, %link, %peer, "{reason}");
                    self.stop(Some(reason));
                }
                DuplicatePolicy::RefuseLink => {
                    tracing::error!(
                        node = %self.id, %link, %peer,
                        "{claim}: refusing that link and running on (duplicate policy: refuse link)"
                    );
                    self.reject(link, "it forwarded a claim that this node is a duplicate");
                }
            }
            return;
        }
        if epoch > self.epoch {
            // The other instance started later: name it, and it will shut down.
            self.flood_own(epoch);
        }
    }

    /// Our own routing update, with a fresh UpdateID and sequence number.
    pub(super) fn own_update(&mut self, suspected_duplicate: u64) -> RouteUpdate {
        self.sequence += 1;
        let update_id = String::from_utf8_lossy(&self.random_name()).into_owned();
        RouteUpdate {
            node_id: self.id.as_str().to_owned(),
            update_id,
            epoch: self.epoch,
            sequence: self.sequence,
            connections: self
                .connections()
                .into_iter()
                .map(|(n, c)| (n.as_str().to_owned(), c))
                .collect(),
            forwarding_node: self.id.as_str().to_owned(),
            suspected_duplicate,
        }
    }

    /// Floods our own update to every established session.
    pub(super) fn flood_own(&mut self, suspected_duplicate: u64) {
        let update = self.own_update(suspected_duplicate);
        if let Some(msg) = update.encode() {
            self.broadcast(&msg, None);
        }
    }

    /// Handshake resends, handshake give-up and idle timeouts.
    pub(super) fn link_timers(&mut self) {
        let now = self.now;
        if self.link_deadline.is_none_or(|d| d > now) {
            // Nothing due (the bound is never later than the earliest link deadline).
            return;
        }
        let due: Vec<(LinkId, LinkState, bool)> = self
            .links
            .iter()
            .filter(|(_, l)| l.deadline().is_some_and(|d| d <= now))
            .map(|(id, l)| (*id, l.state, l.idle_deadline <= now))
            .collect();
        for (link, state, idle) in due {
            if idle {
                self.close_link(link, CloseReason::IdleTimeout);
                continue;
            }
            if let LinkState::Handshake { sends, next_send } = state {
                if next_send > now {
                    continue;
                }
                if sends >= self.config.handshake_attempts {
                    self.close_link(link, CloseReason::HandshakeTimeout);
                } else {
                    self.handshake_send(link);
                }
            }
        }
        self.link_deadline = self.links.values().filter_map(Link::deadline).min();
    }
}
