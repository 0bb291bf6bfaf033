//! A submit cut after the other node created the unit but before it acknowledged the whole
//! payload: the payload may have arrived. Submitting again blindly could run the work twice
//! there (and leave the first unit there forever), so the unit's status decides:
//!
//! * unknown there: nothing ran; submit again;
//! * Failed reading its input: it never ran; release it there, then submit again;
//! * Pending: the other node has not noticed the cut yet (it does at the latest at its QUIC
//!   idle timeout); ask again, paced as status polls, for at most
//!   [`RemoteUnitConfig::unreachable_timeout`](super::RemoteUnitConfig) — a unit still
//!   Pending then is waiting for a start further on, so it had its payload: follow it;
//! * anything else: the payload arrived; follow the unit as started.
//!
//! A unit resumed after a restart here ([`RemoteUnit::resume`]) is checked the same way, but
//! its payload is gone: where the rules above submit again, it fails instead, as a unit not
//! started before the restart does (`Failed to restart`).

use std::time::Instant;

use tracing::{debug, info, warn};

use super::commands::NOT_STARTED;
use super::{ConnId, Purpose, RemoteUnit, Stage};
use crate::control::{ErrorReply, Reply, ReplyDecodeError};
use crate::work::STATE_PENDING;
use crate::work::remote::{status_command, unit_command};

impl RemoteUnit {
    /// Asks the status of the unconfirmed unit on the greeted control connection `id`.
    pub(super) fn send_check(&mut self, now: Instant, id: ConnId) {
        self.poll_at = None;
        debug!(
            "[{}] asking {} about unit {}",
            self.tag(),
            self.data.remote_node,
            self.data.remote_unit_id
        );
        let line = status_command(&self.data.remote_unit_id, None);
        let deadline = now + self.config.status_reply_timeout;
        self.send(id, line, Stage::AwaitCheck, Some(deadline));
    }

    /// Asks again now: on the idle control connection, or a new one.
    pub(super) fn check_now(&mut self, now: Instant) {
        let control = self
            .conns
            .iter()
            .find(|(_, c)| c.purpose == Purpose::Control)
            .map(|(id, c)| (*id, c.stage));
        match control {
            Some((id, Stage::Idle)) => self.send_check(now, id),
            Some(_) => {}
            None if self.control_retry.is_none() => self.dial(Purpose::Control, now),
            None => {}
        }
    }

    pub(super) fn check_reply(
        &mut self,
        now: Instant,
        id: ConnId,
        reply: Result<Reply, ReplyDecodeError>,
    ) {
        let unit = self.data.remote_unit_id.clone();
        let node = self.data.remote_node.clone();
        let st = match reply {
            Ok(Reply::WorkStatus(st)) => st,
            Ok(Reply::Error(ErrorReply::UnknownUnit { .. })) if self.payload_gone => {
                self.set_idle(id);
                self.restart_failed(&format!("unit {unit} unknown on {node}"));
                return;
            }
            Ok(Reply::Error(ErrorReply::UnknownUnit { .. })) => {
                info!(
                    "[{}] unit {unit} unknown on {node}: submitting again",
                    self.tag()
                );
                self.unconfirmed = None;
                self.send_submit(id);
                return;
            }
            other => {
                // Our nodes and Go's answer a status or unknown-unit: this one cannot be
                // trusted with the unit.
                let e = match other {
                    Ok(Reply::Error(e)) => format!("error from remote: {e}"),
                    Ok(r) => format!("unexpected reply: {}", r.encode().trim_end()),
                    Err(e) => e.to_string(),
                };
                warn!("[{}] status of unit {unit} on {node}: {e}", self.tag());
                self.unconfirmed = None;
                self.fail(format!("Error starting worker: {e}"), 0);
                return;
            }
        };
        if st.failed_reading_input() {
            info!(
                "[{}] unit {unit} on {node} never had its payload: releasing it",
                self.tag()
            );
            let line = unit_command("release", &unit, self.signature.as_deref());
            let deadline = now + self.config.status_reply_timeout;
            self.send(id, line, Stage::AwaitCheckRelease, Some(deadline));
            return;
        }
        let since = self.unconfirmed.unwrap_or(now);
        let waited_out = self
            .config
            .unreachable_timeout
            .is_some_and(|limit| now - since >= limit);
        if st.state == STATE_PENDING && !waited_out {
            // Not decided there yet: ask again after a pause that doubles up to `poll`.
            self.set_idle(id);
            self.poll_at = Some(now + self.poll_interval);
            self.poll_interval = (self.poll_interval * 2).min(self.config.poll);
            return;
        }
        info!(
            "[{}] unit {unit} on {node} had its payload ({}): following it",
            self.tag(),
            crate::control::state_name(st.state)
        );
        self.unconfirmed = None;
        self.poll_interval = self.config.poll_fast;
        self.close(id);
        self.started(now);
    }

    pub(super) fn check_release_reply(
        &mut self,
        id: ConnId,
        reply: Result<Reply, ReplyDecodeError>,
    ) {
        match reply {
            Ok(Reply::WorkReleased { .. } | Reply::Error(ErrorReply::UnknownUnit { .. })) => {}
            other => {
                // It never ran; submitting the work is what matters.
                warn!(
                    "[{}] could not release unit {} on {}: {other:?}",
                    self.tag(),
                    self.data.remote_unit_id,
                    self.data.remote_node
                );
            }
        }
        if self.payload_gone {
            self.set_idle(id);
            let why = format!(
                "unit {} on {} never had its payload",
                self.data.remote_unit_id, self.data.remote_node
            );
            self.restart_failed(&why);
            return;
        }
        self.unconfirmed = None;
        self.send_submit(id);
    }

    /// The unit resumed after a restart here never ran there, and its payload is gone: it
    /// fails as a unit not started before the restart does.
    fn restart_failed(&mut self, why: &str) {
        warn!(
            "[{}] {why}: cannot submit it again after a restart",
            self.tag()
        );
        self.unconfirmed = None;
        self.fail(format!("Failed to restart: {NOT_STARTED}"), 0);
    }
}
