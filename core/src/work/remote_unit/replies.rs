//! How the unit reads what the other node answers: the greeting, then the reply to what the
//! connection was opened for. A submit's replies are read here; a status poll's in
//! `follow.rs`, a cancel's or release's in `commands.rs`, a check's in `unconfirmed.rs`.

use std::time::Instant;

use tracing::{debug, error, info, warn};

use super::ConnectFailure;
use super::{ConnId, Purpose, RemoteOutput, RemotePhase, RemoteUnit, Stage};
use crate::control::Reply;
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
}
