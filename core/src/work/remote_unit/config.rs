//! The unit's settings: its timings ([`RemoteUnitConfig`]), the signature put on its
//! commands, its `ttl`, and the label of its log lines.

use std::time::{Duration, Instant};

use super::{RemotePhase, RemoteUnit};
use crate::work::StatusRecord;
use crate::work::remote::expired_detail;

/// Timings of a remote unit; [`Default`] gives the runtime's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUnitConfig {
    /// First retry delay after a failed connection (grows ×1.5).
    pub retry_first: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How long a dial and the greeting may take together.
    pub connect_timeout: Duration,
    /// How long our nodes hold a status poll while nothing changes.
    pub status_wait: Duration,
    /// How long a status reply may take beyond [`Self::status_wait`] before the connection is
    /// given up as broken.
    pub status_reply_timeout: Duration,
    /// Longest pause between status polls to a node that answers at once (Go: 1 s).
    pub poll: Duration,
    /// Pause between status polls after a change; doubles up to [`Self::poll`].
    pub poll_fast: Duration,
    /// How long a results stream may stay silent while the other node reports more output.
    pub results_stall: Duration,
    /// Fail a unit whose node stayed unreachable this long (`None`: wait forever, as Go).
    pub unreachable_timeout: Option<Duration>,
    /// How long the first reply on a reused session may take (a session whose node
    /// restarted meanwhile never answers; QUIC would notice only after its idle timeout),
    /// beyond [`Self::status_wait`] for a status poll. Then a new connection is dialled.
    pub reused_reply_timeout: Duration,
    /// Seeds the backoff jitter.
    pub rng_seed: u64,
    /// Written in brackets before the unit's log lines: the local unit ID.
    pub label: String,
}

impl Default for RemoteUnitConfig {
    fn default() -> Self {
        Self {
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(25),
            status_wait: Duration::from_secs(1),
            status_reply_timeout: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            poll_fast: Duration::from_millis(250),
            results_stall: Duration::from_secs(5),
            unreachable_timeout: Some(Duration::from_secs(300)),
            reused_reply_timeout: Duration::from_secs(2),
            rng_seed: 0,
            label: String::new(),
        }
    }
}

impl RemoteUnit {
    /// The signature to put on commands (a fresh token when the unit signs its work).
    pub fn set_signature(&mut self, signature: Option<String>) {
        self.signature = signature;
    }

    /// The machine of a remote unit from its status record `rec` (its [`RemoteExtraData`],
    /// state and recorded output size), with `local_size` bytes of its output here. A record
    /// with an `expiration` (a `ttl`) gets its expiry: at the same point of the monotonic
    /// clock `now` as the expiration is past `wall` (the wall clock since the Unix epoch), at
    /// once if it is past already, with Go's detail.
    ///
    /// [`RemoteExtraData`]: crate::work::remote::RemoteExtraData
    pub fn from_record(
        rec: &StatusRecord,
        local_size: i64,
        config: RemoteUnitConfig,
        now: Instant,
        wall: Duration,
    ) -> Self {
        let data = rec.remote().cloned().unwrap_or_default();
        let expiration = data.expiration;
        let mut m = Self::new(data, rec.state, rec.stdout_size, local_size, config, now);
        if let Some(at) = expiration {
            let wall = i128::try_from(wall.as_nanos()).unwrap_or(i128::MAX);
            let left = u64::try_from(at.saturating_sub(wall).max(0)).unwrap_or(u64::MAX);
            // An expiration beyond what the clock can hold (it comes from a file) never comes.
            if let Some(deadline) = now.checked_add(Duration::from_nanos(left)) {
                m.set_expiry(deadline, expired_detail(at, 0));
            }
        }
        m
    }

    /// An unstarted unit fails at `at` with `detail` (its `ttl`), unless its payload is
    /// unconfirmed then: it fails once the other node says the unit never ran there.
    pub fn set_expiry(&mut self, at: Instant, detail: String) {
        self.expiry = Some((at, detail));
    }

    /// The `ttl` applies: not started there, and not possibly running there either.
    pub(super) fn expirable(&self) -> bool {
        !self.data.remote_started
            && self.unconfirmed.is_none()
            && matches!(self.phase, RemotePhase::Submit | RemotePhase::Idle)
    }

    /// The local unit ID, for log lines.
    pub(super) fn tag(&self) -> &str {
        &self.config.label
    }
}
