//! Local services (bound names) and the advertisements known from the mesh (netceptor.md §5.6).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::id::{LinkId, ServiceName};
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

/// An advertisement held, with where it came from.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) ad: ServiceAdvert,
    /// The link that first brought this (node, service); `None` for our own.
    via: Option<LinkId>,
    /// Since when the advertisement has been cancelled or its node unreachable, as seen by
    /// the last sweep.
    gone: Option<Instant>,
}

/// What [`Services::accept`] did with an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Stored (`new`: a (node, service) not held before): forward it.
    Stored {
        /// Whether it was a pair not held before, now counted against its link.
        new: bool,
    },
    /// Not newer than the one held: drop it.
    Stale,
    /// A new (node, service) from a link without room for more: drop it.
    Refused,
}

/// Bound services and known advertisements.
#[derive(Debug, Default)]
pub(crate) struct Services {
    pub(crate) bound: BTreeMap<ServiceName, Option<Advertise>>,
    /// Newest advertisement per (node, service), ours included.
    ads: BTreeMap<(String, String), Held>,
}

impl Services {
    /// Stores a received advertisement if it is newer than the one held (strictly later
    /// `Time`). A (node, service) not held yet is taken only if `room` (its link may teach
    /// more); it is then counted against `via`.
    pub(crate) fn accept(
        &mut self,
        ad: ServiceAdvert,
        via: Option<LinkId>,
        room: bool,
    ) -> Accepted {
        let key = (ad.node_id.clone(), ad.service.clone());
        match self.ads.get_mut(&key) {
            Some(old) if ad.time <= old.ad.time => Accepted::Stale,
            // A cancel stays as a tombstone (Go deletes the entry), so that older copies still
            // in flight are recognised as stale instead of bringing the ad back.
            Some(old) => {
                old.ad = ad;
                Accepted::Stored { new: false }
            }
            None if !room => Accepted::Refused,
            None => {
                self.ads.insert(
                    key,
                    Held {
                        ad,
                        via,
                        gone: None,
                    },
                );
                Accepted::Stored { new: true }
            }
        }
    }

    /// The advertisements currently in force (cancelled ones left out).
    pub(crate) fn active(&self) -> impl Iterator<Item = &ServiceAdvert> {
        self.ads.values().map(|h| &h.ad).filter(|a| !a.cancel)
    }

    /// Forgets the advertisements of nodes that `reachable` has said no to, and cancelled
    /// ones, for `after` (marked at the first sweep that sees them so). Our own (`me`) stay.
    /// Returns the links that taught the forgotten ones.
    pub(crate) fn sweep(
        &mut self,
        now: Instant,
        after: Duration,
        me: &str,
        reachable: impl Fn(&str) -> bool,
    ) -> Vec<Option<LinkId>> {
        let mut freed = Vec::new();
        self.ads.retain(|(node, _), h| {
            if node == me {
                return true;
            }
            if !h.ad.cancel && reachable(node) {
                h.gone = None;
                return true;
            }
            let since = *h.gone.get_or_insert(now);
            if now.saturating_duration_since(since) < after {
                return true;
            }
            freed.push(h.via);
            false
        });
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(node: &str, service: &str, time: i128, cancel: bool) -> ServiceAdvert {
        ServiceAdvert {
            node_id: node.into(),
            service: service.into(),
            time,
            cancel,
            ..Default::default()
        }
    }

    #[test]
    fn room_newer_copies_and_forgetting() {
        let mut s = Services::default();
        let l = Some(LinkId(1));
        assert_eq!(
            s.accept(ad("a", "x", 1, false), l, true),
            Accepted::Stored { new: true }
        );
        assert_eq!(s.accept(ad("a", "x", 1, false), l, true), Accepted::Stale);
        // A newer copy of a held one needs no room; a new pair does.
        assert_eq!(
            s.accept(ad("a", "x", 2, false), l, false),
            Accepted::Stored { new: false }
        );
        assert_eq!(
            s.accept(ad("a", "y", 1, false), l, false),
            Accepted::Refused
        );
        assert_eq!(
            s.accept(ad("b", "x", 1, true), l, true),
            Accepted::Stored { new: true }
        );
        assert_eq!(
            s.accept(ad("me", "c", 1, false), None, true),
            Accepted::Stored { new: true }
        );
        assert_eq!(s.active().count(), 2);
        let t0 = Instant::now();
        let after = Duration::from_secs(10);
        let up = |n: &str| n == "a";
        // First sight marks; the mark must last `after`.
        assert!(s.sweep(t0, after, "me", up).is_empty());
        assert!(s.sweep(t0 + after / 2, after, "me", up).is_empty());
        assert_eq!(s.sweep(t0 + after, after, "me", up), vec![l]);
        // a goes away, comes back before `after`, goes again: the time starts over.
        let none = |_: &str| false;
        let t1 = t0 + after * 2;
        assert!(s.sweep(t1, after, "me", none).is_empty());
        assert!(s.sweep(t1 + after / 2, after, "me", up).is_empty());
        assert!(s.sweep(t1 + after, after, "me", none).is_empty());
        assert_eq!(s.sweep(t1 + after * 2, after, "me", none), vec![l]);
        // Ours stays.
        assert_eq!(
            s.active().map(|a| a.node_id.as_str()).collect::<Vec<_>>(),
            ["me"]
        );
        // Forgotten: the pair is new again.
        assert_eq!(
            s.accept(ad("a", "x", 1, false), l, true),
            Accepted::Stored { new: true }
        );
    }
}
