//! Service advertisements: ours, periodically and on change; others', forwarded once
//! (netceptor.md §5.6).

use bytes::Bytes;

use tracing::debug;

use super::Node;
use crate::config::MAX_ADVERT_LEN;
use crate::id::{LinkId, NodeId, ServiceName};
use crate::services::Accepted;
use crate::wire::{Encoded, ServiceAdvert};

impl Node {
    /// An advertisement arrived from an established peer: keep it if newer, then pass the
    /// original bytes on to every other peer.
    pub(super) fn received_ad(&mut self, link: LinkId, ad: ServiceAdvert, raw: Bytes) {
        if ad.node_id == self.id.as_str() {
            // Our own advert came back around a loop.
            return;
        }
        // No node could send these: a name no service can bind, a node ID we refuse, or
        // more bytes than any real advertisement takes.
        if ServiceName::new(&ad.service).is_err()
            || NodeId::from_wire(&ad.node_id).is_err()
            || raw.len() > MAX_ADVERT_LEN
        {
            self.stats.malformed += 1;
            debug!(node = %self.id, %link, len = raw.len(), "invalid service advertisement dropped");
            return;
        }
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let room = l.learned_ads < self.config.max_ads_per_link;
        match self.services.accept(ad, Some(link), room) {
            Accepted::Stale => return,
            Accepted::Refused => {
                self.stats.ads_refused += 1;
                self.link_full(link, "service advertisements");
                return;
            }
            Accepted::Stored { new } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.learned_ads += u32::from(new);
                }
            }
        }
        if let Some(msg) = Encoded::from_message(&raw) {
            self.broadcast(&msg, Some(link));
        }
    }

    /// Our advertisement for a bound service, stamped now.
    fn own_ad(&self, service: ServiceName) -> Option<ServiceAdvert> {
        let adv = self.services.bound.get(&service)?.as_ref()?;
        Some(ServiceAdvert {
            node_id: self.id.as_str().to_owned(),
            service: service.to_string(),
            time: self.wall_nanos(),
            utc_offset: 0,
            conn_type: adv.conn_type,
            tags: Some(adv.tags.clone()),
            work_commands: adv.work_commands.clone(),
            cancel: false,
        })
    }

    /// Sends all our advertisements to every peer (every 60 s, and 5 s after a new one).
    pub(super) fn send_own_ads(&mut self) {
        let services: Vec<ServiceName> = self.services.bound.keys().copied().collect();
        for s in services {
            let Some(ad) = self.own_ad(s) else { continue };
            if let Some(msg) = ad.encode() {
                self.broadcast(&msg, None);
            }
            self.services.accept(ad, None, true);
        }
    }

    /// Withdraws an advertisement at once.
    pub(super) fn cancel_ad(&mut self, service: ServiceName) {
        let ad = ServiceAdvert {
            node_id: self.id.as_str().to_owned(),
            service: service.to_string(),
            time: self.wall_nanos(),
            utc_offset: 0,
            conn_type: 0,
            tags: None,
            work_commands: None,
            cancel: true,
        };
        if let Some(msg) = ad.encode() {
            self.broadcast(&msg, None);
        }
        self.services.accept(ad, None, true);
    }

    /// Gives a new neighbour every advertisement we hold, so it need not wait for the next
    /// periodic round.
    pub(super) fn push_ads(&mut self, link: LinkId) {
        let msgs: Vec<Encoded> = self
            .services
            .active()
            .filter_map(ServiceAdvert::encode)
            .collect();
        for msg in msgs {
            self.transmit(link, msg);
        }
    }
}
