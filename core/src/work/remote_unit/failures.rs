//! Failed and lost connections: what gives up at once, what is retried and when.

use std::time::Instant;

use rand_core::RngCore;
use tracing::{info, warn};

use super::{ConnId, Purpose, RemoteOutput, RemotePhase, RemoteUnit, Stage};
use crate::control::go_duration_string;
use crate::stream::{DialFailure, StreamFailure};

/// Why a connection to the other node's control service failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The mesh stream could not be opened.
    #[error(transparent)]
    Dial(#[from] DialFailure),
    /// This node has no route to the other one (checked before dialing).
    #[error("no route to node")]
    NoRoute,
    /// The dial and greeting did not complete in time.
    #[error("timeout: handshake did not complete in time")]
    Timeout,
    /// The service greeted as another node, or not at all.
    #[error("while expecting node ID {expected}, got message: {got}")]
    Greeting {
        /// The unit's node.
        expected: String,
        /// The line read instead.
        got: String,
    },
    /// Anything else (a TLS config that cannot be used, this node stopping).
    #[error("{0}")]
    Other(String),
}

impl ConnectFailure {
    /// The TLS handshake failed: retrying will not help.
    pub fn is_tls(&self) -> bool {
        matches!(self.failure(), Some(StreamFailure::Tls { .. }))
    }

    /// A new attempt would fail the same way (TLS refused, a firewall rejecting the packets).
    pub fn is_lasting(&self) -> bool {
        matches!(self, Self::Dial(d) if d.is_lasting())
    }

    /// The stream failure underneath, if the dial got that far.
    pub fn failure(&self) -> Option<&StreamFailure> {
        match self {
            Self::Dial(d) => d.failure(),
            _ => None,
        }
    }
}

impl RemoteUnit {
    /// `id` ended or is given up: close it and carry on.
    pub(super) fn lost(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        if c.reused {
            self.redial_fresh(now, id);
            return;
        }
        let (purpose, stage) = (c.purpose, c.stage);
        self.close(id);
        match (self.phase, stage) {
            (_, Stage::Dialing | Stage::Greeting) => {
                let why = ConnectFailure::Other("EOF".into());
                self.connect_failed(purpose, &why, now);
            }
            (RemotePhase::Submit, Stage::AwaitStarted) => {
                // The other node has the whole payload: its unit may be running.
                info!(
                    "[{}] no answer after the payload from {}; following it",
                    self.tag(),
                    self.data.remote_node
                );
                self.started(now);
            }
            (RemotePhase::Submit, Stage::SendingPayload) => {
                // The unit exists there and may have its whole payload: ask before
                // submitting again.
                info!(
                    "[{}] submit to {} cut before the payload was acknowledged; asking about unit {}",
                    self.tag(),
                    self.data.remote_node,
                    self.data.remote_unit_id
                );
                self.unconfirmed.get_or_insert(now);
                self.poll_interval = self.config.poll_fast;
                self.answer(Ok(true));
                self.control_retry = Some(now + self.config.retry_first);
            }
            (RemotePhase::Submit, _) if self.unconfirmed.is_some() => {
                // The question about the unconfirmed unit was cut: ask again.
                self.answer(Ok(true));
                self.control_retry = Some(now + self.config.retry_first);
            }
            (RemotePhase::Submit, _) => {
                // Cut before the unit ID came: no payload went out, submitting again is safe.
                info!(
                    "[{}] submit to {} cut off; submitting again",
                    self.tag(),
                    self.data.remote_node
                );
                self.answer(Ok(true));
                self.control_retry = Some(now + self.config.retry_first);
            }
            (RemotePhase::Cancel { force: true, .. }, _) => {
                self.answer(Ok(false));
                self.forget();
            }
            (RemotePhase::Cancel { .. }, _) => {
                self.answer(Ok(true));
                self.control_retry = Some(now + self.config.retry_first);
            }
            (RemotePhase::Follow | RemotePhase::AwaitGone, _) if purpose == Purpose::Results => {
                // The other node ends the stream when the unit is complete: ask its state.
                self.results_wait_news = true;
                self.poll_now(now);
            }
            (RemotePhase::Follow | RemotePhase::AwaitGone, _) => {
                self.dial(Purpose::Control, now);
            }
            _ => {}
        }
    }

    /// A connection attempt failed: give up, or try again later.
    pub(super) fn connect_failed(&mut self, purpose: Purpose, why: &ConnectFailure, now: Instant) {
        let node = self.data.remote_node.clone();
        info!("Connection to {node} failed with error: {why}");
        let handshake_timeout = matches!(why.failure(), Some(StreamFailure::HandshakeTimeout(_)));
        let twice = if handshake_timeout {
            self.unanswered += 1;
            self.unanswered >= 2
        } else {
            self.unanswered = 0;
            false
        };
        // A cancel or release goes on trying (it is sent for an unconfirmed unit, too).
        let started = self.data.remote_started || matches!(self.phase, RemotePhase::Cancel { .. });
        if let RemotePhase::Cancel { force: true, .. } = self.phase {
            self.answer(Ok(false));
            self.forget();
            return;
        }
        let detail = if why.is_tls() {
            Some(format!("TLS error connecting to remote service: {why}"))
        } else if why.is_lasting() || twice {
            Some(format!("Cannot reach remote node {node}: {why}"))
        } else {
            None
        };
        if let Some(detail) = detail {
            if !started {
                warn!("[{}] {detail}", self.tag());
                self.answer(Ok(true));
                self.fail(detail, 0);
                return;
            }
            if why.is_tls() {
                self.out.push_back(RemoteOutput::SetDetail(detail));
            }
        }
        let since = *self.unreachable_since.get_or_insert(now);
        let limited = !matches!(
            self.phase,
            RemotePhase::Cancel { release: true, .. } | RemotePhase::AwaitGone
        );
        if limited
            && let Some(limit) = self.config.unreachable_timeout
            && now - since >= limit
        {
            self.answer(Ok(true));
            if !self.copied_all() {
                let detail = format!(
                    "Remote node {node} was unreachable for {}",
                    go_duration_string(limit)
                );
                warn!("[{}] {detail}", self.tag());
                self.fail(detail, self.local_size);
            } else {
                self.finish();
            }
            return;
        }
        self.answer(Ok(true));
        let at = now + self.backoff.next_delay(self.rng.next_u64());
        match purpose {
            Purpose::Control => self.control_retry = Some(at),
            Purpose::Results => self.results_retry = Some(at),
        }
    }
}
