//! The set of routing-update IDs already handled, bounded in size and age.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// An update ID as a set key. IDs of up to 15 bytes (Go's are 8) are packed with their
/// length into a `u128`, so a lookup neither allocates nor follows a pointer; longer ones
/// are kept as strings. Distinct IDs always give distinct keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Short(u128),
    Long(Box<str>),
}

impl Key {
    fn new(id: &str) -> Self {
        let b = id.as_bytes();
        let mut w = [0u8; 16];
        match (w.get_mut(..b.len()), u8::try_from(b.len())) {
            (Some(dst), Ok(len)) if len < 16 => {
                dst.copy_from_slice(b);
                // The length goes in the last byte, which a short ID never reaches.
                if let Some(last) = w.last_mut() {
                    *last = len;
                }
                Self::Short(u128::from_le_bytes(w))
            }
            _ => Self::Long(id.into()),
        }
    }
}

/// FxHash-style word mixing with a SplitMix finaliser: update IDs are random already, and
/// set membership is all we ask of it (iteration order never matters here).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Update IDs seen recently (Go `seenUpdates`): copies of a flood are dropped by ID.
#[derive(Debug)]
pub(crate) struct SeenUpdates {
    ids: HashSet<Key, BuildHasherDefault<IdHasher>>,
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
