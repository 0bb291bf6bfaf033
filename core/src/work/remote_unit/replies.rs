//! How the unit reads what the other node answers: the greeting, then the reply to what the
//! connection was opened for.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, error, info, warn};

use super::ConnectFailure;
use super::{ConnId, Purpose, RemoteOutput, RemotePhase, RemoteUnit, Seen, Stage};
use crate::control::{ErrorReply, Reply, ReplyDecodeError};
use crate::work::remote::{results_command, submit_command, unit_command};

impl RemoteUnit {
    /// The greeting came: the connection is up; ask what it is for.
    /// `fresh`: a new connection (proof the node is reachable), not a reused session.
    pub(super) fn greeted(&mut self, now: Instant, id: ConnId, purpose: Purpose, fresh: bool) {
        if fresh {
            self.unreachable_since = None;
            self.unanswered = 0;
            self.backoff.reset();
        }
        let sig = self.signature.clone();
        let sig = sig.as_deref();
        let d = &self.data;
        match (purpose, self.phase) {
            (Purpose::Control, RemotePhase::Submit) if self.unconfirmed.is_some() => {
                self.send_check(now, id);
            }
            (Purpose::Control, RemotePhase::Submit) => self.send_submit(id),
            (Purpose::Control, RemotePhase::Cancel { release, .. }) => {
                let sub = if release { "release" } else { "cancel" };
                debug!(
                    "[{}] asking {} to {sub} unit {}",
                    self.config.label, d.remote_node, d.remote_unit_id
                );
                let line = unit_command(sub, &d.remote_unit_id, sig);
                self.send(id, line, Stage::AwaitCancel, None);
            }
            (Purpose::Control, RemotePhase::Follow | RemotePhase::AwaitGone) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.stage = Stage::Idle;
                    c.deadline = None;
                }
                self.send_status(id, now);
            }
            (Purpose::Results, RemotePhase::Follow) => {
                debug!(
                    "[{}] fetching results of {} from {} at byte {}",
                    self.config.label, d.remote_unit_id, d.remote_node, self.local_size
                );
                let line = results_command(&d.remote_unit_id, self.local_size, sig);
                self.send(id, line, Stage::AwaitStreaming, None);
            }
            _ => self.close(id),
        }
    }

    /// `work submit` on the greeted control connection `id`.
    pub(super) fn send_submit(&mut self, id: ConnId) {
        let d = &self.data;
        debug!(
            "[{}] submitting work type {} to {}",
            self.config.label, d.remote_work_type, d.remote_node
        );
        let line = submit_command(
            &d.remote_params,
            &d.remote_node,
            &d.remote_work_type,
            &d.tls_client,
            self.signature.as_deref(),
        );
        self.send(id, line, Stage::AwaitCreated, None);
    }

    pub(super) fn line(&mut self, now: Instant, id: ConnId, line: &str) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if std::mem::take(&mut c.reused) {
            // It answers: an ordinary connection from here on.
            c.deadline = None;
        }
        let (purpose, stage) = (c.purpose, c.stage);
        let reply = Reply::decode(line);
        match stage {
            Stage::Greeting => match reply {
                Ok(Reply::Greeting { node_id }) if node_id == self.data.remote_node => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.deadline = None;
                    }
                    self.greeted(now, id, purpose, true);
                }
                _ => {
                    self.close(id);
                    let why = ConnectFailure::Greeting {
                        expected: self.data.remote_node.clone(),
                        got: line.trim_end_matches('\n').to_owned(),
                    };
                    self.connect_failed(purpose, &why, now);
                }
            },
            Stage::AwaitCreated => match reply {
                Ok(Reply::WorkUnitCreated { unit_id }) => {
                    debug!(
                        "[{}] {} created unit {unit_id}; sending stdin",
                        self.tag(),
                        self.data.remote_node
                    );
                    self.data.remote_unit_id = unit_id;
                    self.out
                        .push_back(RemoteOutput::SaveRemote(self.data.clone()));
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.stage = Stage::SendingPayload;
                    }
                    self.out.push_back(RemoteOutput::SendPayload(id));
                }
                _ => self.submit_refused(format!(
                    "could not parse response: {}",
                    line.trim_end_matches('\n')
                )),
            },
            // The other node answers only after reading the end of the payload, so a reply
            // that comes before the runtime saw its half-close acknowledged (the other node
            // may close at once, before its acknowledgement goes out) tells the same.
            Stage::SendingPayload | Stage::AwaitStarted => {
                if let Ok(Reply::Error(e)) = reply {
                    self.submit_refused(format!("error from remote: {e}"));
                } else {
                    self.close(id);
                    self.started(now);
                }
            }
            Stage::AwaitStatus { sent } => self.status_reply(now, id, sent, reply),
            Stage::AwaitCheck => self.check_reply(now, id, reply),
            Stage::AwaitCheckRelease => self.check_release_reply(id, reply),
            Stage::AwaitCancel => self.cancel_reply(now, id, reply),
            Stage::AwaitStreaming => {
                if let Ok(Reply::WorkResults { .. }) = reply {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.stage = Stage::Streaming;
                    }
                    self.last_output = now;
                    self.stall_deadline();
                } else {
                    warn!(
                        "[{}] remote node {} did not stream results: {}",
                        self.tag(),
                        self.data.remote_node,
                        line.trim_end()
                    );
                    // Perhaps the unit is gone there: the status poll finds out. Asked again
                    // after that and a pause, so a refusing node is not asked in a loop.
                    self.close(id);
                    self.results_wait_news = true;
                    self.results_retry = Some(now + self.config.poll);
                    self.poll_now(now);
                }
            }
            _ => debug!(
                "[{}] unexpected line from {}: {}",
                self.tag(),
                self.data.remote_node,
                line.trim_end()
            ),
        }
    }

    /// The other node refused the unit, or answered nonsense: retrying will not mend it.
    pub(super) fn submit_refused(&mut self, e: String) {
        error!("[{}] Error running action function: {e}", self.tag());
        self.answer(Err(e.clone()));
        self.fail(format!("Error starting worker: {e}"), 0);
    }

    pub(super) fn started(&mut self, now: Instant) {
        info!(
            "[{}] started as unit {} on {}",
            self.tag(),
            self.data.remote_unit_id,
            self.data.remote_node
        );
        self.data.remote_started = true;
        self.out
            .push_back(RemoteOutput::SaveRemote(self.data.clone()));
        self.answer(Ok(false));
        self.follow(now);
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

    pub(super) fn append(&mut self, now: Instant, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let offset = self.local_size;
        self.local_size += i64::try_from(data.len()).unwrap_or(i64::MAX);
        self.last_output = now;
        self.out
            .push_back(RemoteOutput::AppendOutput { offset, data });
        if self.copied_all() {
            self.finish();
        } else {
            self.stall_deadline();
        }
    }

    /// The results stream is watched for a stall while more output exists there.
    pub(super) fn stall_deadline(&mut self) {
        let deadline = self
            .more_output_there()
            .then_some(self.last_output + self.config.results_stall);
        let results = self
            .conns
            .values_mut()
            .find(|c| c.purpose == Purpose::Results && c.stage == Stage::Streaming);
        if let Some(c) = results {
            c.deadline = deadline;
        }
    }
}
