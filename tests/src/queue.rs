//! The event queue: a radix heap over `(time, seq)` keys.
//!
//! Simulated time never goes back, so every key pushed is at least the last key popped: a
//! monotone priority queue. A radix heap exploits that: keys sit in buckets by the highest bit
//! in which they differ from the last popped key, and a pop only redistributes the first
//! non-empty bucket. Work is sequential `Vec` pushes and pops, which beats a binary heap of
//! a few hundred thousand events that no longer fits in cache. Keys are unique (`seq` grows
//! with every push), so the order is total and runs repeat exactly.

/// A monotone min-queue of `T` ordered by `(at, seq)`.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    /// `buckets[0]` holds keys equal to `last`; `buckets[i]` keys whose highest bit
    /// differing from `last` is bit `i - 1`.
    buckets: Vec<Vec<(u128, T)>>,
    /// The bucketing reference: the smallest key in the queue once `refill` ran.
    last: u128,
    /// The last key popped: nothing below it may be pushed.
    popped: u128,
    len: usize,
}

fn key(at: u64, seq: u64) -> u128 {
    (u128::from(at) << 64) | u128::from(seq)
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..129).map(|_| Vec::new()).collect(),
            last: 0,
            popped: 0,
            len: 0,
        }
    }

    fn bucket(&self, k: u128) -> usize {
        (128 - (k ^ self.last).leading_zeros()) as usize
    }

    /// Adds an event. `(at, seq)` must not be below the last popped key.
    pub(crate) fn push(&mut self, at: u64, seq: u64, ev: T) {
        let k = key(at, seq);
        assert!(k >= self.popped, "event scheduled in the past");
        if k < self.last {
            self.rebase(k);
        }
        let b = self.bucket(k);
        self.buckets[b].push((k, ev));
        self.len += 1;
    }

    /// A peek moved `last` up to the next event, and now an earlier one arrives (the clock
    /// stopped short of the next event, as `run_for` does). Every queued key is at least the
    /// old `last`, so bucketing them all again relative to `k` is valid.
    fn rebase(&mut self, k: u128) {
        self.last = k;
        let mut all = Vec::with_capacity(self.len);
        for b in &mut self.buckets {
            all.append(b);
        }
        for (key, ev) in all {
            let b = self.bucket(key);
            self.buckets[b].push((key, ev));
        }
    }

    /// Makes `buckets[0]` hold the smallest key, if there is any event.
    fn refill(&mut self) {
        if self.len == 0 || !self.buckets[0].is_empty() {
            return;
        }
        let Some(i) = self.buckets.iter().position(|b| !b.is_empty()) else {
            return;
        };
        let mut moved = std::mem::take(&mut self.buckets[i]);
        if let Some(min) = moved.iter().map(|(k, _)| *k).min() {
            self.last = min;
        }
        // Every key lands in a lower bucket, so bucket `i` stays empty meanwhile.
        for (k, ev) in moved.drain(..) {
            let b = self.bucket(k);
            self.buckets[b].push((k, ev));
        }
        self.buckets[i] = moved;
    }

    /// Removes the event with the smallest key.
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        self.refill();
        let (k, ev) = self.buckets[0].pop()?;
        self.popped = k;
        self.len -= 1;
        Some(((k >> 64) as u64, ev))
    }

    /// The time of the next event.
    pub(crate) fn peek_at(&mut self) -> Option<u64> {
        self.refill();
        self.buckets[0].last().map(|(k, _)| (k >> 64) as u64)
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
}
