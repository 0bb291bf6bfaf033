//! Redial backoff for dialing backends: ×1.5 per failed attempt up to 20 s, reset after a
//! successful dial, as Go's. Go starts at 5 s, so a restarted peer is back only 5 s later at
//! best (10.5 s measured); we start at 1 s. Up to 10 % jitter keeps the many peers of a
//! restarted node from redialing in lockstep.

use std::time::Duration;

/// The delay before the next dial attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(20))
    }
}

impl Backoff {
    /// A backoff starting at `first` and growing ×1.5 up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            first,
            max,
        }
    }

    /// The delay before the next attempt, growing the one after. `random` is any random u64
    /// (it picks the jitter), so the caller owns the randomness.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let base = self.next;
        self.next = (self.next.mul_f64(1.5)).min(self.max);
        let tenth = (base / 10).as_nanos() as u64;
        let jitter = if tenth == 0 { 0 } else { random % tenth };
        base - Duration::from_nanos(jitter)
    }

    /// A dial succeeded: start again from the first delay.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sequence_without_jitter() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(20));
        let seq: Vec<f64> = (0..6).map(|_| b.next_delay(0).as_secs_f64()).collect();
        assert_eq!(seq, vec![5.0, 7.5, 11.25, 16.875, 20.0, 20.0]);
        b.reset();
        assert_eq!(b.next_delay(0), Duration::from_secs(5));
        let d = b.next_delay(u64::MAX);
        assert!(d <= Duration::from_millis(7500) && d > Duration::from_millis(6750));
        let mut ours = Backoff::default();
        assert_eq!(ours.next_delay(0), Duration::from_secs(1));
        assert_eq!(ours.next_delay(0), Duration::from_millis(1500));
    }
}
