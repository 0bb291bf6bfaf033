//! The set of routing-update IDs already handled, bounded in size and age.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::fastkey::{FastBuild, pack};

/// An update ID as a set key: packed inline when short (Go's are 8 bytes), else a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Short(u128),
    Long(Box<str>),
}

impl Key {
    fn new(id: &str) -> Self {
        pack(id).map_or_else(|| Self::Long(id.into()), Self::Short)
    }
}

/// Update IDs seen recently (Go `seenUpdates`): copies of a flood are dropped by ID.
#[derive(Debug)]
pub(crate) struct SeenUpdates {
    ids: HashSet<Key, FastBuild>,
    order: VecDeque<(Instant, Key)>,
    ttl: Duration,
    cap: usize,
}

impl SeenUpdates {
    pub(crate) fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            ids: HashSet::default(),
            order: VecDeque::new(),
            ttl,
            cap: cap.max(1),
        }
    }

    /// Records `id`; returns `false` if it was already there.
    pub(crate) fn insert(&mut self, id: &str, now: Instant) -> bool {
        self.expire(now);
        let id = Key::new(id);
        if self.ids.contains(&id) {
            return false;
        }
        while self.ids.len() >= self.cap {
            match self.order.pop_front() {
                Some((_, old)) => {
                    self.ids.remove(&old);
                }
                None => break,
            }
        }
        self.ids.insert(id.clone());
        self.order.push_back((now, id));
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let t0 = Instant::now();
        let mut s = SeenUpdates::new(Duration::from_secs(10), 3);
        assert!(s.insert("a", t0));
        assert!(!s.insert("a", t0));
        assert!(s.insert("b", t0));
        assert!(s.insert("c", t0));
        assert!(s.insert("d", t0));
        assert_eq!(s.len(), 3);
        assert!(s.insert("a", t0), "oldest evicted at the cap");
        assert!(s.insert("e", t0 + Duration::from_secs(11)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn keys_tell_ids_apart() {
        let t0 = Instant::now();
        let mut s = SeenUpdates::new(Duration::from_secs(10), 100);
        let long = "an-update-id-longer-than-fifteen-bytes";
        for id in [
            "",
            "a",
            "a\0",
            "abcdefgh",
            "abcdefgh\0",
            "123456789012345",
            long,
        ] {
            assert!(s.insert(id, t0), "{id:?} is new");
        }
        for id in ["", "a", "abcdefgh", "123456789012345", long] {
            assert!(!s.insert(id, t0), "{id:?} was seen");
        }
        assert!(s.insert("an-update-id-longer-than-fifteen-bytez", t0));
        assert_eq!(Key::new("abcdefgh"), Key::new("abcdefgh"));
        assert_ne!(Key::new("a"), Key::new("a\0"));
    }
}
