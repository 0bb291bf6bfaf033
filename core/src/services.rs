//! Local services (bound names) and the advertisements known from the mesh (netceptor.md §5.6).

use std::collections::BTreeMap;

use crate::id::ServiceName;
use crate::wire::{ServiceAdvert, WorkCommand};

/// How a listening service is advertised to the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Advertise {
    /// 0 datagram, 1 stream (insecure certificate), 2 stream with user TLS.
    pub conn_type: u8,
    /// Free-form tags, e.g. `{"type": "Control Service"}`.
    pub tags: BTreeMap<String, String>,
    /// Work types offered (control service only), or `None`.
    pub work_commands: Option<Vec<WorkCommand>>,
}

/// Bound services and known advertisements.
#[derive(Debug, Default)]
pub(crate) struct Services {
    pub(crate) bound: BTreeMap<ServiceName, Option<Advertise>>,
    /// Newest advertisement per (node, service), ours included.
    pub(crate) ads: BTreeMap<(String, String), ServiceAdvert>,
}

impl Services {
    /// Stores a received advertisement if it is newer than the one held (strictly later `Time`).
    /// Returns whether it was accepted, and so must be forwarded.
    pub(crate) fn accept(&mut self, ad: ServiceAdvert) -> bool {
        let key = (ad.node_id.clone(), ad.service.clone());
        if self.ads.get(&key).is_some_and(|old| ad.time <= old.time) {
            return false;
        }
        // A cancel stays as a tombstone (Go deletes the entry), so that older copies still
        // in flight are recognised as stale instead of bringing the ad back.
        self.ads.insert(key, ad);
        true
    }

    /// The advertisements currently in force (cancelled ones left out).
    pub(crate) fn active(&self) -> impl Iterator<Item = &ServiceAdvert> {
        self.ads.values().filter(|a| !a.cancel)
    }
}
