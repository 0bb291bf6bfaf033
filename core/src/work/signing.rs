//! When a node makes work-signing tokens, and how long they last (control-and-work.md §2.7).
//!
//! A remote unit with `signwork` sends a signed token with every command. Making one reads
//! the private key file and costs an RSA signature, so a unit reuses its token for a while:
//! [`SignatureRefresh`] says when a fresh one is due (after [`SIGN_REFRESH`], or half the
//! token lifetime if that is sooner, so a token in use always has at least half its life
//! left). [`token_expiry`] is the `exp` claim of a token made now, and
//! [`ttl_outlives_token`] the check behind Go's warning `json web token expires before ttl`.
//!
//! On the receiving side, [`signature_needed`] and [`signature_gate`] are Go's rule for which
//! commands carry a signature, and which of those are verified.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use receptor_core::work::signing::{DEFAULT_TOKEN_EXPIRATION, SignatureRefresh};
//!
//! let t0 = Instant::now();
//! let mut r = SignatureRefresh::default();
//! assert!(r.due(t0, DEFAULT_TOKEN_EXPIRATION));
//! r.signed(t0);
//! assert!(!r.due(t0 + Duration::from_secs(59), DEFAULT_TOKEN_EXPIRATION));
//! assert!(r.due(t0 + Duration::from_secs(60), DEFAULT_TOKEN_EXPIRATION));
//! ```

use std::time::{Duration, Instant};

/// Token lifetime when `work-signing` gives none (Go's default).
pub const DEFAULT_TOKEN_EXPIRATION: Duration = Duration::from_secs(5 * 60);

/// Longest use of one work-signing token before a fresh one is made.
pub const SIGN_REFRESH: Duration = Duration::from_secs(60);

/// When the token a unit uses was made, and so whether it needs a fresh one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureRefresh {
    signed_at: Option<Instant>,
}

impl SignatureRefresh {
    /// Whether a fresh token is due at `now` for tokens that last `lifetime`: when there is
    /// none yet, or the one in use was made [`SIGN_REFRESH`] or half of `lifetime` ago,
    /// whichever is sooner.
    pub fn due(&self, now: Instant, lifetime: Duration) -> bool {
        let refresh = SIGN_REFRESH.min(lifetime / 2);
        self.signed_at
            .is_none_or(|t| now.saturating_duration_since(t) >= refresh)
    }

    /// A fresh token was made at `now`.
    pub fn signed(&mut self, now: Instant) {
        self.signed_at = Some(now);
    }
}

/// The `exp` claim (Unix seconds) of a token made at `now_unix` (since the Unix epoch) that
/// lasts `lifetime`.
pub fn token_expiry(now_unix: Duration, lifetime: Duration) -> i64 {
    let exp = now_unix.saturating_add(lifetime).as_secs();
    i64::try_from(exp).unwrap_or(i64::MAX)
}

/// Whether a unit's `ttl` (nanoseconds) is longer than the tokens signing its work last (Go
/// warns `json web token expires before ttl`, and goes on).
pub fn ttl_outlives_token(ttl_nanos: i64, lifetime: Duration) -> bool {
    ttl_nanos > i64::try_from(lifetime.as_nanos()).unwrap_or(i64::MAX)
}

/// A work command carries a signature its unit's work type does not ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("work type did not expect a signature")]
pub struct UnexpectedSignature;

/// Whether commands for a unit of `work_type` must be signed: a `remote` unit when it was
/// submitted with `signwork`; any other when its work type is configured with
/// `verifysignature` (`type_verifies`, asked only then).
pub fn signature_needed(
    work_type: &str,
    sign_work: bool,
    type_verifies: impl FnOnce(&str) -> bool,
) -> bool {
    if work_type == "remote" {
        sign_work
    } else {
        type_verifies(work_type)
    }
}

/// Go's gate before a work command runs: a signature where none is `needed` is refused;
/// a needed one is verified (`Ok(true)`: the caller checks it against the node's key)
/// except on a local (unix socket) connection, which is trusted as it is.
pub fn signature_gate(
    needed: bool,
    signature: &str,
    conn_is_unix: bool,
) -> Result<bool, UnexpectedSignature> {
    if !needed && !signature.is_empty() {
        return Err(UnexpectedSignature);
    }
    Ok(needed && !conn_is_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn refresh_after_a_minute_or_half_the_lifetime() {
        let t0 = Instant::now();
        let mut r = SignatureRefresh::default();
        assert!(r.due(t0, DEFAULT_TOKEN_EXPIRATION));
        r.signed(t0);
        // A long lifetime: every 60 s.
        assert!(!r.due(t0, DEFAULT_TOKEN_EXPIRATION));
        assert!(!r.due(t0 + 59 * SEC, DEFAULT_TOKEN_EXPIRATION));
        assert!(r.due(t0 + 60 * SEC, DEFAULT_TOKEN_EXPIRATION));
        // A short one: at half of it.
        assert!(!r.due(t0 + 9 * SEC, 20 * SEC));
        assert!(r.due(t0 + 10 * SEC, 20 * SEC));
        // 120 s is the crossover.
        assert!(!r.due(t0 + 59 * SEC, 120 * SEC));
        assert!(r.due(t0 + 60 * SEC, 120 * SEC));
        // A zero lifetime signs every time.
        assert!(r.due(t0, Duration::ZERO));
        // A clock that went backwards is no reason to sign.
        r.signed(t0 + 5 * SEC);
        assert!(!r.due(t0, DEFAULT_TOKEN_EXPIRATION));
    }

    #[test]
    fn expiry_and_ttl() {
        assert_eq!(token_expiry(1000 * SEC, 300 * SEC), 1300);
        assert_eq!(token_expiry(Duration::from_millis(1999), SEC), 2);
        assert_eq!(token_expiry(Duration::MAX, SEC), i64::MAX);
        let five_min = 300_000_000_000;
        assert!(!ttl_outlives_token(five_min, DEFAULT_TOKEN_EXPIRATION));
        assert!(ttl_outlives_token(five_min + 1, DEFAULT_TOKEN_EXPIRATION));
        assert!(!ttl_outlives_token(i64::MAX, Duration::MAX));
    }

    #[test]
    fn which_commands_are_signed_and_verified() {
        let verifies = |t: &str| t == "secure";
        assert!(signature_needed("remote", true, verifies));
        assert!(!signature_needed("remote", false, |_: &str| true));
        assert!(signature_needed("secure", false, verifies));
        assert!(!signature_needed("echo", true, verifies));
        // Not needed: none is fine, any is refused (on any connection).
        assert_eq!(signature_gate(false, "", false), Ok(false));
        assert_eq!(signature_gate(false, "", true), Ok(false));
        assert_eq!(signature_gate(false, "tok", true), Err(UnexpectedSignature));
        assert_eq!(
            UnexpectedSignature.to_string(),
            "work type did not expect a signature"
        );
        // Needed: verified, except over the unix socket (even when missing).
        assert_eq!(signature_gate(true, "tok", false), Ok(true));
        assert_eq!(signature_gate(true, "", false), Ok(true));
        assert_eq!(signature_gate(true, "", true), Ok(false));
        assert_eq!(signature_gate(true, "tok", true), Ok(false));
    }
}
