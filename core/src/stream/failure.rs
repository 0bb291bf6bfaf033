//! Why a stream connection failed, typed, so that a dialer, a listener and their logs can say
//! what went wrong (and a caller can tell a lasting failure from one worth retrying).

use std::time::Duration;

use quinn_proto::{ConnectionError, TransportErrorCode, VarInt};

use crate::id::NodeId;
use crate::wire::Problem;

/// Why a stream connection ended other than by a normal close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamFailure {
    /// A node on the way sent an unreachable notice for the peer's address: the firewall of
    /// `reporter` rejected our packets, the service is not there, or they ran out of hops.
    #[error("{problem} (reported by node {reporter})")]
    Unreachable {
        /// The node that sent the notice.
        reporter: NodeId,
        /// What it said.
        problem: Problem,
    },
    /// Dial: no answer to the handshake in time. Nothing came back: the node is down, or a
    /// firewall on the way drops its packets.
    #[error(
        "handshake timeout: no answer within {}s (the node is down, or a firewall drops the packets)",
        .0.as_secs()
    )]
    HandshakeTimeout(Duration),
    /// Listener: the client opened no stream in time (Go's "Accept Timeout").
    #[error("Accept Timeout")]
    AcceptTimeout,
    /// The TLS handshake failed: `by_peer` when the other side refused it (its reason, as it
    /// sent it), else we refused the other side.
    #[error("TLS handshake {}: {reason}", if *by_peer { "refused by the peer" } else { "failed" })]
    Tls {
        /// The other side refused the handshake.
        by_peer: bool,
        /// The TLS layer's reason.
        reason: String,
    },
    /// The peer closed the connection with an application error (Go's setup errors are 500).
    #[error("closed by the peer: {reason} (code {code})")]
    Closed {
        /// Application error code.
        code: u64,
        /// The reason the peer gave.
        reason: String,
    },
    /// Nothing heard from the peer for the idle timeout.
    #[error("timeout: no recent network activity")]
    IdleTimeout,
    /// Any other QUIC failure.
    #[error("{0}")]
    Transport(String),
}

impl StreamFailure {
    /// Whether a new attempt would fail the same way (a firewall's reject, a TLS refusal);
    /// a missing service or a lost packet may be back soon.
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            Self::Tls { .. }
                | Self::Unreachable {
                    problem: Problem::Firewall,
                    ..
                }
        )
    }

    /// The failure a lost connection reports; `None` for a normal close (application code 0
    /// from either side).
    pub(super) fn from_lost(reason: &ConnectionError) -> Option<Self> {
        use ConnectionError as E;
        Some(match reason {
            E::ApplicationClosed(c) if c.error_code == VarInt::from_u32(super::CLOSE_NORMAL) => {
                return None;
            }
            E::LocallyClosed => return None,
            E::ApplicationClosed(c) => Self::Closed {
                code: c.error_code.into_inner(),
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            },
            E::TransportError(t) if is_crypto(t.code) => Self::Tls {
                by_peer: false,
                reason: t.reason.clone(),
            },
            E::ConnectionClosed(c) if is_crypto(c.error_code) => Self::Tls {
                by_peer: true,
                reason: if c.reason.is_empty() {
                    c.error_code.to_string()
                } else {
                    String::from_utf8_lossy(&c.reason).into_owned()
                },
            },
            E::TimedOut => Self::IdleTimeout,
            other => Self::Transport(other.to_string()),
        })
    }
}

/// Why a mesh stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialFailure {
    /// Nothing was sent: the address is invalid, or the dial could not start.
    #[error("{0}")]
    Invalid(String),
    /// The connection failed before the stream opened.
    #[error(transparent)]
    Failed(#[from] StreamFailure),
    /// The peer closed the connection normally before the stream opened.
    #[error("connection closed")]
    Closed,
    /// The node is not running any more.
    #[error("the node has stopped")]
    NodeStopped,
}

impl DialFailure {
    /// Whether a new attempt would fail the same way (see [`StreamFailure::is_lasting`]).
    pub fn is_lasting(&self) -> bool {
        match self {
            Self::Failed(f) => f.is_lasting(),
            Self::Invalid(_) => true,
            Self::Closed | Self::NodeStopped => false,
        }
    }

    /// The stream failure underneath, if the connection got that far.
    pub fn failure(&self) -> Option<&StreamFailure> {
        match self {
            Self::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// QUIC carries TLS alerts as transport codes 0x100-0x1ff.
fn is_crypto(code: TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lasting_failures() {
        let by = |problem| StreamFailure::Unreachable {
            reporter: NodeId::new("B").unwrap(),
            problem,
        };
        assert!(by(Problem::Firewall).is_lasting());
        assert!(!by(Problem::ServiceUnknown).is_lasting());
        assert!(!StreamFailure::HandshakeTimeout(Duration::from_secs(15)).is_lasting());
        assert_eq!(
            by(Problem::Firewall).to_string(),
            "blocked by firewall (reported by node B)"
        );
    }

    #[test]
    fn crypto_closes_are_tls_failures() {
        let t = quinn_proto::TransportError {
            code: TransportErrorCode::crypto(42),
            frame: None,
            reason: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(
            StreamFailure::from_lost(&ConnectionError::TransportError(t)),
            Some(StreamFailure::Tls {
                by_peer: false,
                reason: "invalid peer certificate: UnknownIssuer".into()
            })
        );
        assert_eq!(
            StreamFailure::from_lost(&ConnectionError::LocallyClosed),
            None
        );
    }
}
