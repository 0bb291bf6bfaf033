//! The local client's commands (start, resume, cancel, release) and the answer each owes
//! it; a cancel or release is sent until the other node hears it.

use std::time::Instant;

use tracing::warn;

use super::{ConnId, Purpose, RemoteOutput, RemotePhase, RemoteUnit};
use crate::control::{ErrorReply, Reply, ReplyDecodeError};
use crate::work::status::{STATE_FAILED, is_complete};

/// Why a unit the other node never ran cannot be resumed after a restart here.
pub(super) const NOT_STARTED: &str = "remote work had not previously started";

impl RemoteUnit {
    /// Go's `Start`: submits the unit. Answers `Ok(false)` once the other node started it,
    /// `Ok(true)` when the first attempt could not complete (it goes on in the background),
    /// or an error.
    pub fn start(&mut self, now: Instant) {
        self.answer_owed = true;
        if self.data.remote_started {
            self.answer(Err("unit was already started".into()));
            return;
        }
        if self.phase != RemotePhase::Idle {
            self.answer(Err("start or monitor process already running".into()));
            return;
        }
        self.phase = RemotePhase::Submit;
        self.dial(Purpose::Control, now);
    }

    /// Go's `Restart`: resumes a unit found on disk. Errors for a unit that had not started
    /// there (unless it is complete) and that the other node never created. One it created
    /// (its ID is saved) may have had its whole payload before the restart cut the submit:
    /// the other node is asked, as after a cut in the payload (`unconfirmed.rs`), and the
    /// unit is followed if it ran there, or fails as not started if it did not.
    pub fn resume(&mut self, now: Instant) -> Result<(), String> {
        if !self.data.remote_started {
            if is_complete(self.state) {
                self.phase = RemotePhase::Done;
                return Ok(());
            }
            if self.data.remote_unit_id.is_empty() {
                return Err(NOT_STARTED.into());
            }
            if !(self.data.local_released || self.data.local_cancelled) {
                self.phase = RemotePhase::Submit;
                self.unconfirmed = Some(now);
                self.payload_gone = true;
                self.poll_interval = self.config.poll_fast;
                self.dial(Purpose::Control, now);
                return Ok(());
            }
            // A cancel or release sent for an unconfirmed unit: sent again below.
        }
        if self.data.local_released || self.data.local_cancelled {
            self.phase = RemotePhase::Cancel {
                release: self.data.local_released,
                force: false,
            };
            self.dial(Purpose::Control, now);
        } else {
            self.follow(now);
        }
        Ok(())
    }

    /// Go's `Cancel` (`release` false) and `Release` / force-release. Answers `Ok(true)` when
    /// the other node could not be told at once (it is told later).
    pub fn cancel(&mut self, now: Instant, release: bool, force: bool) {
        self.answer_owed = true;
        self.data.local_cancelled = true;
        self.data.local_released |= release;
        self.out
            .push_back(RemoteOutput::SaveRemote(self.data.clone()));
        self.close_all();
        self.poll_at = None;
        self.control_retry = None;
        self.results_retry = None;
        // A unit whose payload is unconfirmed may run there: the other node is told too.
        if !self.data.remote_started && self.unconfirmed.take().is_none() {
            self.answer(Ok(false));
            if release {
                self.forget();
            } else {
                self.set_status(STATE_FAILED, "Locally Cancelled".into(), Some(0));
                self.phase = RemotePhase::Done;
            }
            return;
        }
        self.phase = RemotePhase::Cancel { release, force };
        self.backoff.reset();
        self.dial(Purpose::Control, now);
    }

    pub(super) fn cancel_reply(
        &mut self,
        now: Instant,
        id: ConnId,
        reply: Result<Reply, ReplyDecodeError>,
    ) {
        let RemotePhase::Cancel { release, force } = self.phase else {
            return;
        };
        // Answered: the session is free for what comes next.
        self.set_idle(id);
        match reply {
            Ok(Reply::Error(ErrorReply::UnknownUnit { .. })) if release => {
                // Released there already, or never known (Go #758).
                self.answer(Ok(false));
                self.forget();
            }
            Ok(Reply::WorkReleased { pending, .. }) if release => {
                self.answer(Ok(false));
                if pending && !force {
                    self.phase = RemotePhase::AwaitGone;
                    self.poll_interval = self.config.poll_fast;
                    self.poll_now(now);
                } else {
                    self.forget();
                }
            }
            Ok(Reply::WorkCancelled { .. }) if !release => {
                self.answer(Ok(false));
                self.phase = RemotePhase::Follow;
                self.poll_now(now);
                self.maybe_results(now);
            }
            other => {
                let e = match other {
                    Ok(Reply::Error(e)) => format!("error cancelling remote unit: {e}"),
                    Ok(r) => format!("unexpected reply: {}", r.encode().trim_end()),
                    Err(e) => e.to_string(),
                };
                warn!("[{}] {e}", self.tag());
                self.answer(Err(e));
                if force {
                    self.forget();
                } else {
                    // The unit is still there: keep following it.
                    self.close(id);
                    self.follow(now);
                }
            }
        }
    }

    pub(super) fn answer(&mut self, r: Result<bool, String>) {
        if std::mem::take(&mut self.answer_owed) {
            self.out.push_back(RemoteOutput::Answer(r));
        }
    }
}
