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

/// The pause after a listener's accept fails (out of file descriptors and the like), so that
/// it backs off instead of spinning: 20 ms, doubling with each failure in a row up to
/// 10.24 s; an accepted connection starts it again.
#[derive(Debug, Clone, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    /// A connection was accepted.
    pub fn accepted(&mut self) {
        self.failures = 0;
    }

    /// An accept failed: how long to wait before the next.
    pub fn failed(&mut self) -> Duration {
        self.failures = (self.failures + 1).min(10);
        Duration::from_millis(10 << self.failures)
    }
}

/// A dialer's redial policy: after each attempt, logs how it ended and says whether to dial
/// again and after how long. The runtime owns the sockets, the timer and the randomness.
#[derive(Debug, Clone)]
pub struct Redial {
    what: String,
    redial: bool,
    backoff: Backoff,
}

impl Redial {
    /// The policy of a dialer to `what` (its address, for the log); `redial` false dials once.
    pub fn new(what: String, redial: bool) -> Self {
        Self {
            what,
            redial,
            backoff: Backoff::default(),
        }
    }

    /// An attempt ended: `Ok` when a session ran and ended (the backoff starts again), `Err`
    /// with why the dial failed. Returns the delay before the next attempt, or `None` when
    /// the dialer is done. `random` is any random u64 (see [`Backoff::next_delay`]).
    pub fn after_attempt(&mut self, result: Result<(), String>, random: u64) -> Option<Duration> {
        let what = &self.what;
        match result {
            Ok(()) => {
                self.backoff.reset();
                tracing::info!("connection to {what} closed");
            }
            Err(e) => tracing::warn!("connection to {what} failed: {e}"),
        }
        self.redial.then(|| self.backoff.next_delay(random))
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

    #[test]
    fn redial_backs_off_on_failures_and_starts_again_after_a_session() {
        let failed = || Err("refused".to_owned());
        let mut r = Redial::new("peer:1".into(), true);
        assert_eq!(r.after_attempt(failed(), 0), Some(Duration::from_secs(1)));
        assert_eq!(
            r.after_attempt(failed(), 0),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(r.after_attempt(Ok(()), 0), Some(Duration::from_secs(1)));
        assert_eq!(
            r.after_attempt(failed(), 0),
            Some(Duration::from_millis(1500))
        );
        let mut once = Redial::new("peer:1".into(), false);
        assert_eq!(once.after_attempt(failed(), 0), None);
        assert_eq!(once.after_attempt(Ok(()), 0), None);
    }

    #[test]
    fn accept_failures_double_the_pause_up_to_a_bound() {
        let mut b = AcceptBackoff::default();
        let ms: Vec<u128> = (0..12).map(|_| b.failed().as_millis()).collect();
        assert_eq!(
            ms,
            [
                20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 10240, 10240
            ]
        );
        b.accepted();
        assert_eq!(b.failed(), Duration::from_millis(20));
    }
}
