//! The unit's connections: what each is for and where it stands, and how one is dialled,
//! written to, parked or closed.

use std::time::Instant;

use tracing::debug;

use super::{RemoteOutput, RemotePhase, RemoteUnit};

/// Names one connection of the unit, from [`RemoteOutput::Dial`] to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);
/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Submit, status polls, cancel, release.
    Control,
    /// One `work results` stream.
    Results,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Dialing,
    Greeting,
    AwaitCreated,
    SendingPayload,
    AwaitStarted,
    /// Between status polls (or parked while the unit is finished).
    Idle,
    AwaitStatus {
        sent: Instant,
    },
    /// Asked the status of a unit whose payload is unconfirmed.
    AwaitCheck,
    /// Asked to release a unit that could not read its payload.
    AwaitCheckRelease,
    AwaitCancel,
    AwaitStreaming,
    Streaming,
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) purpose: Purpose,
    pub(super) stage: Stage,
    pub(super) buf: Vec<u8>,
    pub(super) deadline: Option<Instant>,
    /// A parked session given to this unit: no reply read on it yet.
    pub(super) reused: bool,
}

impl RemoteUnit {
    pub(super) fn has(&self, purpose: Purpose) -> bool {
        self.conns.values().any(|c| c.purpose == purpose)
    }

    pub(super) fn dial(&mut self, purpose: Purpose, now: Instant) {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                purpose,
                stage: Stage::Dialing,
                buf: Vec::new(),
                deadline: Some(now + self.config.connect_timeout),
                reused: false,
            },
        );
        self.out.push_back(RemoteOutput::Dial(id));
    }

    pub(super) fn close(&mut self, id: ConnId) {
        if self.conns.remove(&id).is_some() {
            self.out.push_back(RemoteOutput::Close(id));
        }
    }

    /// Ends every connection: idle control sessions are parked for reuse, the rest closed.
    pub(super) fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let idle = self.conns.get(&id).is_some_and(|c| {
                c.purpose == Purpose::Control && c.stage == Stage::Idle && c.buf.is_empty()
            });
            if idle {
                self.conns.remove(&id);
                self.out.push_back(RemoteOutput::Park(id));
            } else {
                self.close(id);
            }
        }
    }

    /// `id` has nothing asked and nothing outstanding.
    pub(super) fn set_idle(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.stage = Stage::Idle;
            c.deadline = None;
        }
    }

    /// A reused session failed before its first reply: it was dead, dial a new one.
    pub(super) fn redial_fresh(&mut self, now: Instant, id: ConnId) {
        let Some(purpose) = self.conns.get(&id).map(|c| c.purpose) else {
            return;
        };
        debug!(
            "[{}] idle session to {} is dead",
            self.tag(),
            self.data.remote_node
        );
        self.close(id);
        if self.phase != RemotePhase::Done {
            self.dial(purpose, now);
        }
    }

    pub(super) fn send(
        &mut self,
        id: ConnId,
        line: String,
        stage: Stage,
        deadline: Option<Instant>,
    ) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.stage = stage;
            c.deadline = deadline;
            self.out.push_back(RemoteOutput::SendLine(id, line));
        }
    }
}
