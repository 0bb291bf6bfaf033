//! What the [`Engine`](super::Engine) needs to know of a work type, and the answers a worker
//! gives it.
//!
//! A work type (Go's `WorkUnit` implementations: `work-command`, `remote`, Kubernetes) is
//! registered by name. Its pure rules live here behind [`WorkType`]; its effects (running a
//! process, talking to another node) belong to whoever drives the engine: the engine asks for
//! them with [`Effect`](super::Effect)s and the driver answers with the engine's `handle_*`
//! methods. The CLI's OS workers implement `WorkType` plus its effects; the simulator can
//! implement `WorkType` and play the effects itself.

use std::fmt;

use super::{STATE_PENDING, StatusRecord, is_complete};

/// The pure rules of one work type.
pub trait WorkType: fmt::Debug + Send + Sync {
    /// Whether submissions of this type must carry a valid signature (`verifysignature`,
    /// advertised as `Secure`).
    fn verify_signature(&self) -> bool {
        false
    }

    /// What becomes of a unit of this type that the node finds on disk when it starts again
    /// (Go's `Restart`), given its status record.
    fn on_restart(&self, rec: &StatusRecord) -> Restart;
}

/// What the engine does with a unit found on disk after a node restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// Leave it as it is (complete, or of an unknown type: listed, never started).
    Keep,
    /// It cannot go on: it becomes Failed with this detail.
    Fail(String),
    /// It may still be running: the worker follows it again
    /// ([`Effect::ReattachWorker`](super::Effect::ReattachWorker)).
    Reattach,
}

impl Restart {
    /// Go's rule for a unit that runs a local process (`work-command`): a complete unit stays,
    /// a Pending one never started and fails (`Pending at restart`), a Running one is followed
    /// again (its process may have outlived the node).
    pub fn for_process(rec: &StatusRecord) -> Self {
        if is_complete(rec.state) {
            Self::Keep
        } else if rec.state == STATE_PENDING {
            Self::Fail("Pending at restart".to_owned())
        } else {
            Self::Reattach
        }
    }

    /// Go's rule for a `remote` unit: one that the other node never got cannot be resumed
    /// (unless it already ended here), every other one is followed again (its monitor, or the
    /// cancel or release that had not reached the other node yet). Beyond Go, an unfinished
    /// unit the other node created (its ID is saved) is resumed too: its machine asks whether
    /// the work runs there ([`RemoteUnit::resume`](super::remote_unit::RemoteUnit::resume)).
    pub fn for_remote(rec: &StatusRecord) -> Self {
        let started = rec.remote().is_some_and(|r| r.remote_started);
        let created = rec.remote().is_some_and(|r| !r.remote_unit_id.is_empty());
        if started || (created && !is_complete(rec.state)) {
            Self::Reattach
        } else if is_complete(rec.state) {
            Self::Keep
        } else {
            Self::Fail("Failed to restart: remote work had not previously started".to_owned())
        }
    }
}

/// How a worker's cancel went ([`Engine::handle_cancel_result`](super::Engine::handle_cancel_result)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The work was stopped: the unit becomes Canceled.
    Stopped,
    /// Nothing was running (finished, never started, or gone): the unit stays as it is.
    NotRunning,
    /// The worker carries the request on by itself (a remote unit: the other node has to
    /// hear it); `pending` says it has not been heard yet. A release is then finished by the
    /// worker, which forgets the unit ([`Engine::forget`](super::Engine::forget)) when done.
    Handled {
        /// The other side has not heard yet (`cancel pending` / `release pending`).
        pending: bool,
    },
    /// The worker could not stop the work.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::{
        ExtraData, RemoteExtraData, STATE_CANCELED, STATE_FAILED, STATE_RUNNING, STATE_SUCCEEDED,
    };

    fn rec(state: i64, extra: Option<ExtraData>) -> StatusRecord {
        let mut r = StatusRecord::new("t", extra);
        r.state = state;
        r
    }

    #[test]
    fn process_restart_rules() {
        for done in [STATE_SUCCEEDED, STATE_FAILED] {
            assert_eq!(Restart::for_process(&rec(done, None)), Restart::Keep);
        }
        assert_eq!(
            Restart::for_process(&rec(STATE_PENDING, None)),
            Restart::Fail("Pending at restart".into())
        );
        assert_eq!(
            Restart::for_process(&rec(STATE_RUNNING, None)),
            Restart::Reattach
        );
        // Canceled is not complete in Go: its process is looked for again.
        assert_eq!(
            Restart::for_process(&rec(STATE_CANCELED, None)),
            Restart::Reattach
        );
    }

    #[test]
    fn remote_restart_rules() {
        let remote = |started| {
            Some(ExtraData::Remote(RemoteExtraData {
                remote_started: started,
                ..RemoteExtraData::default()
            }))
        };
        assert_eq!(
            Restart::for_remote(&rec(STATE_PENDING, remote(false))),
            Restart::Fail("Failed to restart: remote work had not previously started".into())
        );
        assert_eq!(
            Restart::for_remote(&rec(STATE_FAILED, remote(false))),
            Restart::Keep
        );
        // Created there but not confirmed: its machine asks the other node.
        let created = |state| {
            rec(
                state,
                Some(ExtraData::Remote(RemoteExtraData {
                    remote_unit_id: "abc".into(),
                    ..RemoteExtraData::default()
                })),
            )
        };
        assert_eq!(
            Restart::for_remote(&created(STATE_PENDING)),
            Restart::Reattach
        );
        assert_eq!(Restart::for_remote(&created(STATE_FAILED)), Restart::Keep);
        for state in [STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED] {
            assert_eq!(
                Restart::for_remote(&rec(state, remote(true))),
                Restart::Reattach
            );
        }
    }
}
