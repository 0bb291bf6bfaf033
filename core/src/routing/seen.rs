//! The set of routing-update IDs already handled, bounded in size and age.
//!
//! Every copy of every flooded update is looked up here, and in a large mesh the set of
//! each node is far from the cache, so a lookup should touch one cache line: IDs shorter
//! than 16 bytes (Go's are 8) are packed into `u128`s kept in an open-addressing table.
//! Longer IDs go to an ordinary hash set.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::fastkey::{FastBuild, pack_bytes};

/// An empty slot; never a packed string (whose last byte is its length, below 16).
const EMPTY: u128 = u128::MAX;
/// Stands in the insertion order for an ID too long to pack; never a packed string either.
const LONG: u128 = u128::MAX - 1;

fn home(key: u128, mask: usize) -> usize {
    let mut z = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as usize & mask
}

/// Update IDs seen recently (Go `seenUpdates`): copies of a flood are dropped by ID.
#[derive(Debug)]
pub(crate) struct SeenUpdates {
    /// Packed IDs, linear probing, at most half full; length a power of two (or zero).
    slots: Vec<u128>,
    packed: usize,
    long: HashSet<Box<[u8]>, FastBuild>,
    /// Insertion order, for expiry and eviction: nanoseconds since `base`, and the packed
    /// ID or [`LONG`] (then the ID is the front of `long_order`).
    order: VecDeque<(u64, u128)>,
    long_order: VecDeque<Box<[u8]>>,
    base: Option<Instant>,
    /// When the oldest ID was inserted (as in `order`), kept here so that the common case,
    /// nothing to expire, reads no more than this struct.
    oldest: u64,
    ttl: Duration,
    cap: usize,
}

impl SeenUpdates {
    pub(crate) fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            slots: Vec::new(),
            packed: 0,
            long: HashSet::default(),
            order: VecDeque::new(),
            long_order: VecDeque::new(),
            base: None,
            oldest: 0,
            ttl,
            cap: cap.max(1),
        }
    }

    fn len(&self) -> usize {
        self.packed + self.long.len()
    }

    /// Records `id`; returns `false` if it was already there.
    pub(crate) fn insert(&mut self, id: &[u8], now: Instant) -> bool {
        let base = *self.base.get_or_insert(now);
        let at = now.saturating_duration_since(base).as_nanos() as u64;
        self.expire(at);
        let key = pack_bytes(id);
        let known = match key {
            Some(k) => self.find(k).is_some(),
            None => self.long.contains(id),
        };
        if known {
            return false;
        }
        while self.len() >= self.cap {
            if !self.evict_oldest() {
                break;
            }
        }
        if self.order.is_empty() {
            self.oldest = at;
        }
        match key {
            Some(k) => {
                self.add(k);
                self.order.push_back((at, k));
            }
            None => {
                self.long.insert(id.into());
                self.long_order.push_back(id.into());
                self.order.push_back((at, LONG));
            }
        }
        true
    }

    /// Whether `id` is there (after forgetting what expired by `now`, as `insert` would).
    pub(crate) fn contains(&mut self, id: &[u8], now: Instant) -> bool {
        let Some(base) = self.base else {
            return false;
        };
        self.expire(now.saturating_duration_since(base).as_nanos() as u64);
        match pack_bytes(id) {
            Some(k) => self.find(k).is_some(),
            None => self.long.contains(id),
        }
    }

    /// Where the lookup of `id` starts (for [`SeenUpdates::touch`]).
    pub(crate) fn home(&self, id: &[u8]) -> usize {
        match pack_bytes(id) {
            Some(k) => home(k, self.slots.len().wrapping_sub(1)),
            None => 0,
        }
    }

    /// Reads slot `i`, so that a lookup that starts there finds it in the cache.
    pub(crate) fn touch(&self, i: usize) -> u64 {
        self.slots.get(i).map_or(0, |&k| k as u64)
    }

    fn expire(&mut self, now: u64) {
        let ttl = self.ttl.as_nanos().min(u128::from(u64::MAX)) as u64;
        if self.order.is_empty() || now.saturating_sub(self.oldest) < ttl {
            return;
        }
        while self
            .order
            .front()
            .is_some_and(|&(at, _)| now.saturating_sub(at) >= ttl)
        {
            self.evict_oldest();
        }
    }

    /// Forgets the oldest ID; `false` if there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, key)) = self.order.pop_front() else {
            return false;
        };
        self.oldest = self.order.front().map_or(0, |&(at, _)| at);
        if key == LONG {
            if let Some(id) = self.long_order.pop_front() {
                self.long.remove(&id);
            }
        } else {
            self.remove(key);
        }
        true
    }

    fn find(&self, key: u128) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = home(key, mask);
        loop {
            match *self.slots.get(i)? {
                EMPTY => return None,
                k if k == key => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn add(&mut self, key: u128) {
        if 2 * (self.packed + 1) > self.slots.len() {
            let cap = (self.slots.len() * 2).max(64);
            let old = std::mem::replace(&mut self.slots, vec![EMPTY; cap]);
            for k in old.into_iter().filter(|&k| k != EMPTY) {
                self.place(k);
            }
        }
        self.place(key);
        self.packed += 1;
    }

    fn place(&mut self, key: u128) {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = home(key, mask);
        while let Some(slot) = self.slots.get_mut(i) {
            if *slot == EMPTY {
                *slot = key;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Deletes `key`, shifting later entries of its probe run back (no tombstones).
    fn remove(&mut self, key: u128) {
        let Some(mut hole) = self.find(key) else {
            return;
        };
        self.packed -= 1;
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots.get(j).copied().unwrap_or(EMPTY);
            if k == EMPTY {
                break;
            }
            let h = home(k, mask);
            // Entry `j` may fill the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                if let Some(s) = self.slots.get_mut(hole) {
                    *s = k;
                }
                hole = j;
            }
        }
        if let Some(s) = self.slots.get_mut(hole) {
            *s = EMPTY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let t0 = Instant::now();
        let mut s = SeenUpdates::new(Duration::from_secs(10), 3);
        assert!(s.insert("a".as_bytes(), t0));
        assert!(!s.insert("a".as_bytes(), t0));
        assert!(s.insert("b".as_bytes(), t0));
        assert!(s.insert("c".as_bytes(), t0));
        assert!(s.insert("d".as_bytes(), t0));
        assert_eq!(s.len(), 3);
        assert!(s.insert("a".as_bytes(), t0), "oldest evicted at the cap");
        assert!(s.insert("e".as_bytes(), t0 + Duration::from_secs(11)));
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
            assert!(s.insert(id.as_bytes(), t0), "{id:?} is new");
        }
        for id in ["", "a", "abcdefgh", "123456789012345", long] {
            assert!(!s.insert(id.as_bytes(), t0), "{id:?} was seen");
        }
        assert!(s.insert("an-update-id-longer-than-fifteen-bytez".as_bytes(), t0));
    }

    /// Against a plain model: random inserts, expiry and eviction at the cap, short and
    /// long IDs mixed.
    #[test]
    fn matches_a_model() {
        use std::collections::BTreeMap;
        let t0 = Instant::now();
        let (ttl, cap) = (Duration::from_secs(50), 300);
        let mut s = SeenUpdates::new(ttl, cap);
        let mut model: BTreeMap<String, u64> = BTreeMap::new();
        let mut order: VecDeque<String> = VecDeque::new();
        let mut x = 12345u64;
        let mut t = 0u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += (x >> 60) % 3;
            let n = (x >> 20) % 700;
            let id = if matches!(n % 5, 0) {
                format!("a-long-update-identifier-{n}")
            } else {
                format!("{n}")
            };
            while let Some(front) = order.front() {
                if t - model[front] < ttl.as_secs() {
                    break;
                }
                model.remove(front);
                order.pop_front();
            }
            let want = !model.contains_key(&id);
            if want {
                if model.len() >= cap {
                    let old = order.pop_front().unwrap();
                    model.remove(&old);
                }
                model.insert(id.clone(), t);
                order.push_back(id.clone());
            }
            assert_eq!(
                s.insert(id.as_bytes(), t0 + Duration::from_secs(t)),
                want,
                "{id} at {t}"
            );
            assert_eq!(s.len(), model.len());
        }
    }
}
