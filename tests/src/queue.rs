//! The event queue: a timing wheel over `(time, seq)` keys.
//!
//! Simulated time never goes back, so every key pushed is at least the last key popped: a
//! monotone priority queue. Events fall into slots of 2^16 ns (65 µs) by time; a ring of
//! slots covers the next 67 ms, which holds nearly every message in flight, and later events
//! (timers, mostly) wait in a binary heap until the ring reaches them. A slot is sorted when
//! it becomes current, so each event is moved about twice, where a heap or radix heap of a
//! few hundred thousand events moves it many times and misses the cache doing so. Keys are
//! unique (`seq` grows with every push), so the order is total and runs repeat exactly.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Slots this wide keep the slots being filled few enough to stay in the cache.
const SHIFT: u32 = 16;
const RING: u64 = 1 << 10;

/// An event waiting beyond the ring, ordered by key alone.
#[derive(Debug)]
struct Far<T>(u128, T);

impl<T> PartialEq for Far<T> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl<T> Eq for Far<T> {}
impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Far<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.cmp(&o.0)
    }
}

/// A monotone min-queue of `T` ordered by `(at, seq)`.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    /// `ring[s % RING]` holds the events of slot `s`, for `cur_slot < s < cur_slot + RING`,
    /// in chunks of [`CHUNK`].
    ring: Vec<Slot<T>>,
    in_ring: usize,
    cur_slot: u64,
    /// The events of the current slot (and any pushed since for an earlier slot, after a
    /// peek moved on), sorted by key, largest first: the next event is the last.
    cur: Vec<(u128, T)>,
    /// Events of slots `cur_slot + RING` and later.
    far: BinaryHeap<Reverse<Far<T>>>,
    /// The last key popped: nothing below it may be pushed.
    popped: u128,
    /// Empty chunks, for the next slot that fills. Slots come in chunks so that memory
    /// follows the events in flight: whole buffers per slot would each keep the size of
    /// the largest slot they ever held.
    spare: Vec<Vec<(u128, T)>>,
}

/// Events per chunk of a slot.
const CHUNK: usize = 256;

/// One slot of the ring: the chunk being filled, kept in the ring itself so that a push
/// follows one pointer, and the full ones.
#[derive(Debug)]
struct Slot<T> {
    open: Vec<(u128, T)>,
    full: Vec<Vec<(u128, T)>>,
}

pub(crate) fn key(at: u64, seq: u64) -> u128 {
    (u128::from(at) << 64) | u128::from(seq)
}

fn slot(k: u128) -> u64 {
    ((k >> 64) as u64) >> SHIFT
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            ring: (0..RING)
                .map(|_| Slot {
                    open: Vec::new(),
                    full: Vec::new(),
                })
                .collect(),
            in_ring: 0,
            cur_slot: 0,
            cur: Vec::new(),
            far: BinaryHeap::new(),
            popped: 0,
            spare: Vec::new(),
        }
    }

    /// Adds an event. `(at, seq)` must not be below the last popped key.
    pub(crate) fn push(&mut self, at: u64, seq: u64, ev: T) {
        let k = key(at, seq);
        assert!(k >= self.popped, "event scheduled in the past");
        let s = slot(k);
        if s <= self.cur_slot {
            let i = self.cur.partition_point(|(x, _)| *x > k);
            self.cur.insert(i, (k, ev));
        } else if s - self.cur_slot < RING {
            self.push_ring(s, (k, ev));
        } else {
            self.far.push(Reverse(Far(k, ev)));
        }
    }

    /// Adds an event to the ring's slot `s`.
    fn push_ring(&mut self, s: u64, e: (u128, T)) {
        let slot = &mut self.ring[(s % RING) as usize];
        if slot.open.len() == slot.open.capacity() {
            let fresh = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK));
            let full = std::mem::replace(&mut slot.open, fresh);
            if full.capacity() > 0 {
                slot.full.push(full);
            }
        }
        slot.open.push(e);
        self.in_ring += 1;
    }

    /// Moves the events of the ring's slot `s` to the end of `out`.
    fn take_slot(&mut self, s: u64, out: &mut Vec<(u128, T)>) {
        let slot = &mut self.ring[(s % RING) as usize];
        for mut chunk in slot.full.drain(..).chain([std::mem::take(&mut slot.open)]) {
            self.in_ring -= chunk.len();
            out.append(&mut chunk);
            if chunk.capacity() > 0 {
                self.spare.push(chunk);
            }
        }
    }

    /// Moves slot `s` into `cur` (empty when called), sorted so that the next event is last.
    fn make_current(&mut self, s: u64) {
        let mut cur = std::mem::take(&mut self.cur);
        self.take_slot(s, &mut cur);
        cur.sort_unstable_by_key(|e| Reverse(e.0));
        self.cur = cur;
    }

    /// Makes `cur` hold the next events, if there are any.
    fn refill(&mut self) {
        while self.cur.is_empty() {
            if self.in_ring == 0 {
                // Nothing within the ring: jump to the first far event.
                let Some(Reverse(Far(k, _))) = self.far.peek() else {
                    return;
                };
                self.cur_slot = slot(*k) - 1;
            }
            self.cur_slot += 1;
            self.pull_far();
            self.make_current(self.cur_slot);
        }
    }

    /// Brings the ring up to `cur_slot`: far events of slots it now covers move in.
    fn pull_far(&mut self) {
        while let Some(Reverse(Far(k, _))) = self.far.peek() {
            let s = slot(*k);
            if s >= self.cur_slot + RING {
                break;
            }
            let Some(Reverse(Far(k, ev))) = self.far.pop() else {
                break;
            };
            self.push_ring(s, (k, ev));
        }
    }

    /// Moves every event due before time `end` into `out`, in no particular order: a
    /// window of the simulation sorts them its own way, so slots that lie wholly before
    /// `end` are moved without being sorted.
    pub(crate) fn drain_before(&mut self, end: u64, out: &mut Vec<(u128, T)>) {
        let end_key = key(end, 0);
        loop {
            while self.cur.last().is_some_and(|(k, _)| *k < end_key) {
                if let Some(e) = self.cur.pop() {
                    self.popped = self.popped.max(e.0);
                    out.push(e);
                }
            }
            if !self.cur.is_empty() {
                return;
            }
            if self.in_ring == 0 {
                let Some(Reverse(Far(k, _))) = self.far.peek() else {
                    return;
                };
                if *k >= end_key {
                    return;
                }
                self.cur_slot = slot(*k) - 1;
            }
            let next = self.cur_slot + 1;
            if next << SHIFT >= end {
                return;
            }
            self.cur_slot = next;
            self.pull_far();
            if (next + 1) << SHIFT <= end {
                let from = out.len();
                self.take_slot(next, out);
                if let Some(m) = out.get(from..).and_then(|o| o.iter().map(|e| e.0).max()) {
                    self.popped = self.popped.max(m);
                }
            } else {
                self.make_current(next);
            }
        }
    }

    /// The key of the next event.
    pub(crate) fn peek_key(&mut self) -> Option<u128> {
        self.refill();
        self.cur.last().map(|(k, _)| *k)
    }

    /// Removes the event with the smallest key.
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        self.refill();
        let (k, ev) = self.cur.pop()?;
        self.popped = k;
        Some(((k >> 64) as u64, ev))
    }

    /// The time of the next event.
    #[cfg(test)]
    pub(crate) fn peek_at(&mut self) -> Option<u64> {
        self.refill();
        self.cur.last().map(|(k, _)| (k >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    use super::*;

    #[test]
    fn matches_a_binary_heap() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut q = EventQueue::new();
        let mut h = BinaryHeap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for round in 0..20_000 {
            for _ in 0..rng.next_u64() % 4 {
                seq += 1;
                // Mostly near-future events, some at the same instant, a few far away.
                let at = match rng.next_u64() % 10 {
                    0 => now,
                    1 => now + (rng.next_u64() % (1 << 40)),
                    _ => now + rng.next_u64() % 30_000_000,
                };
                q.push(at, seq, seq);
                h.push(Reverse((at, seq)));
            }
            // Peeking without popping, as `run_for` does at its end.
            if round % 7 == 0 {
                assert_eq!(q.peek_at(), h.peek().map(|Reverse((at, _))| *at));
                continue;
            }
            if round % 3 != 0 {
                assert_eq!(q.peek_at(), h.peek().map(|Reverse((at, _))| *at));
                let got = q.pop();
                let want = h.pop().map(|Reverse((at, s))| (at, s));
                assert_eq!(got, want);
                if let Some((at, _)) = got {
                    now = at;
                }
            }
        }
        while let Some(Reverse((at, s))) = h.pop() {
            assert_eq!(q.pop(), Some((at, s)));
        }
        assert_eq!(q.pop(), None);
    }

    /// Draining windows gives the same events as popping them one by one.
    #[test]
    fn windows_drain_what_pops_would_give() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut q = EventQueue::new();
        let mut h = BinaryHeap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        let mut out = Vec::new();
        for _ in 0..5_000 {
            for _ in 0..rng.next_u64() % 8 {
                seq += 1;
                let at = match rng.next_u64() % 10 {
                    0 => now,
                    1 => now + (rng.next_u64() % (1 << 36)),
                    _ => now + rng.next_u64() % 30_000_000,
                };
                q.push(at, seq, seq);
                h.push(Reverse((at, seq)));
            }
            let end = now + 1 + rng.next_u64() % 2_000_000;
            q.drain_before(end, &mut out);
            let mut want = Vec::new();
            while h.peek().is_some_and(|Reverse((at, _))| *at < end) {
                let Some(Reverse((at, s))) = h.pop() else {
                    break;
                };
                want.push((key(at, s), s));
            }
            out.sort_unstable();
            assert_eq!(out, want);
            out.clear();
            assert_eq!(q.peek_key(), h.peek().map(|Reverse((at, s))| key(*at, *s)));
            now = end;
        }
    }
}
