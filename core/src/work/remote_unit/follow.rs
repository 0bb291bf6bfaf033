//! Following a started unit: status polls on the control connection (long-polled on our
//! nodes, paced for Go's), each reply stored here and compared with the last.

use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{ConnId, Purpose, RemotePhase, RemoteUnit, Stage};
use crate::control::{ErrorReply, Reply, ReplyDecodeError};
use crate::work::remote::status_command;
use crate::work::status::{STATE_CANCELED, is_complete};

/// The last status read from the other node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) state: i64,
    pub(super) detail: String,
    pub(super) size: i64,
}

impl RemoteUnit {
    /// The unit will not change any more there.
    pub(super) fn finished(&self) -> bool {
        is_complete(self.state) || (self.state == STATE_CANCELED && self.data.local_cancelled)
    }

    pub(super) fn follow(&mut self, now: Instant) {
        self.phase = RemotePhase::Follow;
        if self.copied_all() {
            self.finish();
            return;
        }
        if !self.has(Purpose::Control) && self.control_retry.is_none() {
            self.dial(Purpose::Control, now);
        }
        self.maybe_results(now);
    }

    /// Sends a status poll now on the control connection, or dials one.
    pub(super) fn poll_now(&mut self, now: Instant) {
        if self.phase == RemotePhase::Submit && self.unconfirmed.is_some() {
            self.check_now(now);
            return;
        }
        if !matches!(self.phase, RemotePhase::Follow | RemotePhase::AwaitGone) {
            return;
        }
        let idle = self
            .conns
            .iter()
            .find(|(_, c)| c.purpose == Purpose::Control)
            .map(|(id, c)| (*id, c.stage));
        match idle {
            Some((id, Stage::Idle)) => self.send_status(id, now),
            Some(_) => {}
            None if self.control_retry.is_none() => self.dial(Purpose::Control, now),
            None => {}
        }
    }

    /// The next poll on `id`: at once, or after `pause`.
    pub(super) fn poll_later(&mut self, now: Instant, id: ConnId, pause: Duration) {
        if pause.is_zero() {
            self.send_status(id, now);
        } else {
            self.poll_at = Some(now + pause);
        }
    }

    pub(super) fn send_status(&mut self, id: ConnId, now: Instant) {
        self.poll_at = None;
        let millis = u64::try_from(self.config.status_wait.as_millis()).unwrap_or(u64::MAX);
        let line = {
            let wait = self
                .seen
                .as_ref()
                .filter(|_| self.phase == RemotePhase::Follow)
                .map(|s| (s.state, s.detail.as_str(), millis));
            status_command(&self.data.remote_unit_id, wait)
        };
        let deadline = now + self.config.status_reply_timeout + self.config.status_wait;
        self.send(id, line, Stage::AwaitStatus { sent: now }, Some(deadline));
    }

    pub(super) fn status_reply(
        &mut self,
        now: Instant,
        id: ConnId,
        sent: Instant,
        reply: Result<Reply, ReplyDecodeError>,
    ) {
        let st = match reply {
            Ok(Reply::WorkStatus(st)) => st,
            Ok(Reply::Error(ErrorReply::UnknownUnit { .. })) => {
                self.set_idle(id);
                if self.phase == RemotePhase::AwaitGone {
                    self.forget();
                } else {
                    debug!(
                        "[{}] work unit {} on node {} is gone",
                        self.tag(),
                        self.data.remote_unit_id,
                        self.data.remote_node
                    );
                    self.fail("Remote work unit is gone".into(), self.local_size);
                }
                return;
            }
            other => {
                // As Go: a status that cannot be read ends the following.
                warn!(
                    "[{}] status of {} unreadable: {other:?}",
                    self.tag(),
                    self.data.remote_unit_id
                );
                self.finish();
                return;
            }
        };
        if let Some(c) = self.conns.get_mut(&id) {
            c.stage = Stage::Idle;
            c.deadline = None;
        }
        let new = Seen {
            state: st.state,
            detail: st.detail,
            size: st.stdout_size,
        };
        let state_changed = self
            .seen
            .as_ref()
            .is_none_or(|s| s.state != new.state || s.detail != new.detail);
        let pause = if state_changed {
            Duration::ZERO
        } else {
            self.poll_interval.saturating_sub(now - sent)
        };
        self.poll_interval = if state_changed {
            self.config.poll_fast
        } else {
            (self.poll_interval * 2).min(self.config.poll)
        };
        if self.phase == RemotePhase::AwaitGone {
            self.seen = Some(new);
            self.poll_later(now, id, pause);
            return;
        }
        if self.seen.as_ref() != Some(&new) {
            debug!(
                "[{}] status of {} on {}: {} ({}), {} bytes of stdout",
                self.tag(),
                self.data.remote_unit_id,
                self.data.remote_node,
                crate::control::state_name(new.state),
                new.detail,
                new.size
            );
            self.set_status(new.state, new.detail.clone(), Some(new.size));
        }
        self.remote_size = new.size;
        self.seen = Some(new);
        self.results_wait_news = false;
        if self.copied_all() {
            self.finish();
            return;
        }
        // A finished unit parks its poll until a results stream ends.
        if !self.finished() {
            self.poll_later(now, id, pause);
        }
        self.maybe_results(now);
        self.stall_deadline();
    }
}
