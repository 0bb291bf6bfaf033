//! Carrying out one engine command: the "take an effect, do it, feed the outcome back"
//! loop every driver of an [`Engine`] needs, with everything but the doing in here.
//!
//! An engine command (`start`, `cancel`, `release`, ...) returns [`Effect`]s; some need an
//! answer (start, re-attach, cancel the worker; remove the directory), which makes the engine
//! return more effects, until the [`Effect::Reply`] that answers the control request. An
//! [`Operation`] holds that queue: the driver takes the next effect with
//! [`Operation::poll_effect`], does it, and reports how it went with
//! [`Operation::handle_outcome`]; which engine input that is, with which of the effect's
//! parameters (a release's `force` and remaining tries), is decided here. Replies never come
//! out: [`Operation::into_reply`] gives the request's answer at the end.
//!
//! ```
//! use std::time::Instant;
//! use receptor_core::work::{Effect, Engine, Operation, Outcome};
//!
//! let mut engine = Engine::new();
//! engine.create("u1", (), "echo").unwrap();
//! let mut op = Operation::new(engine.start("u1").unwrap());
//! while let Some(effect) = op.poll_effect() {
//!     let outcome = match effect {
//!         Effect::StartWorker { .. } => Outcome::Started(Ok(false)), // spawned it
//!         _ => Outcome::Done,                                        // wrote the status
//!     };
//!     op.handle_outcome(&mut engine, Instant::now(), outcome).unwrap();
//! }
//! assert_eq!(op.into_reply(), Ok(false));
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use super::engine::{Effect, Engine, WorkError};
use super::worker::CancelOutcome;

/// How an effect went, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An effect that needs no answer was done ([`Effect::SetStatus`], [`Effect::Forget`]).
    Done,
    /// [`Effect::StartWorker`]: `Ok(pending)` or the error.
    Started(Result<bool, String>),
    /// [`Effect::ReattachWorker`].
    Reattached(Result<(), String>),
    /// [`Effect::CancelWorker`].
    Cancelled(CancelOutcome),
    /// [`Effect::RemoveDir`] (a directory already gone counts as removed).
    Removed(Result<(), String>),
}

/// [`Operation::handle_outcome`] got an outcome that does not answer the effect out (a
/// driver bug); the operation goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outcome {outcome:?} does not answer {effect:?}")]
pub struct UnexpectedOutcome {
    /// The effect waiting for its answer, if any.
    pub effect: Option<Effect>,
    /// The outcome given.
    pub outcome: Outcome,
}

/// The effects of one engine command being carried out, in order, down to its reply.
#[derive(Debug)]
pub struct Operation {
    queue: VecDeque<Effect>,
    /// The effect out whose answer is awaited.
    waiting: Option<Effect>,
    reply: Result<bool, WorkError>,
}

impl Operation {
    /// The operation of an engine command's `effects`. Its reply is `Ok(false)` unless an
    /// [`Effect::Reply`] says otherwise.
    pub fn new(effects: Vec<Effect>) -> Self {
        Self {
            queue: effects.into(),
            waiting: None,
            reply: Ok(false),
        }
    }

    /// The next effect to carry out (never an [`Effect::Reply`]: it is kept as the answer);
    /// `None` when all are done. Every effect is answered with
    /// [`handle_outcome`](Self::handle_outcome) before the next poll ([`Outcome::Done`] for
    /// those that need no answer).
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        if let Some(unanswered) = self.waiting.take() {
            tracing::warn!("work effect left unanswered: {unanswered:?}");
        }
        while let Some(effect) = self.queue.pop_front() {
            match effect {
                Effect::Reply(r) => self.reply = r,
                Effect::StartWorker { .. }
                | Effect::ReattachWorker { .. }
                | Effect::CancelWorker { .. }
                | Effect::RemoveDir { .. } => {
                    self.waiting = Some(effect.clone());
                    return Some(effect);
                }
                Effect::SetStatus { .. } | Effect::Forget { .. } => return Some(effect),
            }
        }
        None
    }

    /// How the last effect out went: feeds it to `engine` (at `now`), whose next effects
    /// join the queue.
    pub fn handle_outcome<T>(
        &mut self,
        engine: &mut Engine<T>,
        now: Instant,
        outcome: Outcome,
    ) -> Result<(), UnexpectedOutcome> {
        let more = match (self.waiting.take(), outcome) {
            (None, Outcome::Done) => return Ok(()),
            (Some(Effect::StartWorker { unit }), Outcome::Started(r)) => {
                engine.handle_start_result(&unit, r)
            }
            (Some(Effect::ReattachWorker { unit }), Outcome::Reattached(r)) => {
                engine.handle_reattach_result(&unit, r)
            }
            (Some(Effect::CancelWorker { unit, release }), Outcome::Cancelled(o)) => {
                engine.handle_cancel_result(&unit, release, o)
            }
            (
                Some(Effect::RemoveDir {
                    unit,
                    force,
                    tries_left,
                    ..
                }),
                Outcome::Removed(r),
            ) => engine.handle_remove_result(now, &unit, force, tries_left, r),
            (effect, outcome) => return Err(UnexpectedOutcome { effect, outcome }),
        };
        self.queue.extend(more);
        Ok(())
    }

    /// Whether every effect has been taken and answered.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.waiting.is_none()
    }

    /// The answer to the control request: `Ok(pending)` or the error. Read it once
    /// [`poll_effect`](Self::poll_effect) has returned `None`.
    pub fn into_reply(self) -> Result<bool, WorkError> {
        self.reply
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::work::engine::REMOVE_RETRY;
    use crate::work::{STATE_CANCELED, STATE_FAILED, StdoutSize};

    /// Runs `op` to its end, answering each effect with `answer`; the effects seen.
    fn drive(
        op: &mut Operation,
        engine: &mut Engine<u8>,
        now: Instant,
        mut answer: impl FnMut(&Effect) -> Outcome,
    ) -> Vec<Effect> {
        let mut seen = Vec::new();
        while let Some(effect) = op.poll_effect() {
            let outcome = answer(&effect);
            op.handle_outcome(engine, now, outcome).unwrap();
            seen.push(effect);
        }
        assert!(op.is_done());
        seen
    }

    fn engine() -> Engine<u8> {
        let mut e = Engine::new();
        e.create("u", 1, "t").unwrap();
        e
    }

    #[test]
    fn a_failed_start_fails_the_unit_and_the_request() {
        let mut e = engine();
        let mut op = Operation::new(e.start("u").unwrap());
        let seen = drive(&mut op, &mut e, Instant::now(), |eff| match eff {
            Effect::StartWorker { .. } => Outcome::Started(Err("no such file".into())),
            _ => Outcome::Done,
        });
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(matches!(
            seen.last(),
            Some(Effect::SetStatus { state: STATE_FAILED, detail, .. })
                if detail == "Error starting worker: no such file"
        ));
        assert_eq!(e.state("u"), Some(STATE_FAILED));
        assert_eq!(
            op.into_reply(),
            Err(WorkError::Worker("no such file".into()))
        );
    }

    #[test]
    fn a_release_retries_removal_with_its_own_tries_then_forgets() {
        let mut e = engine();
        let now = Instant::now();
        let mut op = Operation::new(e.release("u", false).unwrap());
        let mut removals = Vec::new();
        let seen = drive(&mut op, &mut e, now, |eff| match eff {
            Effect::CancelWorker { release, .. } => {
                assert_eq!(*release, Some(false));
                Outcome::Cancelled(CancelOutcome::Stopped)
            }
            Effect::RemoveDir { not_before, .. } => {
                removals.push(*not_before);
                if removals.len() < 2 {
                    Outcome::Removed(Err("busy".into()))
                } else {
                    Outcome::Removed(Ok(()))
                }
            }
            _ => Outcome::Done,
        });
        assert_eq!(removals, [None, Some(now + REMOVE_RETRY)]);
        assert!(seen.contains(&Effect::SetStatus {
            unit: "u".into(),
            state: STATE_CANCELED,
            detail: "Canceled".into(),
            stdout: StdoutSize::Keep,
        }));
        assert_eq!(seen.last(), Some(&Effect::Forget { unit: "u".into() }));
        assert!(e.get("u").is_none());
        assert_eq!(op.into_reply(), Ok(false));
    }

    #[test]
    fn removal_gives_up_after_its_tries() {
        let mut e = engine();
        let mut op = Operation::new(e.release("u", false).unwrap());
        let mut now = Instant::now();
        while let Some(effect) = op.poll_effect() {
            let outcome = match effect {
                Effect::CancelWorker { .. } => Outcome::Cancelled(CancelOutcome::NotRunning),
                Effect::RemoveDir { .. } => Outcome::Removed(Err("busy".into())),
                _ => Outcome::Done,
            };
            now += Duration::from_secs(1);
            op.handle_outcome(&mut e, now, outcome).unwrap();
        }
        assert_eq!(op.into_reply(), Err(WorkError::Remove("busy".into())));
        assert!(e.get("u").is_some());
    }

    #[test]
    fn a_wrong_outcome_is_refused_and_the_operation_goes_on() {
        let mut e = engine();
        let mut op = Operation::new(e.cancel("u").unwrap());
        let effect = op.poll_effect();
        assert!(matches!(effect, Some(Effect::CancelWorker { .. })));
        let err = op
            .handle_outcome(&mut e, Instant::now(), Outcome::Started(Ok(false)))
            .unwrap_err();
        assert_eq!(err.effect, effect);
        assert_eq!(op.poll_effect(), None);
        // A status write needs no answer; `Done` with nothing out is fine.
        assert_eq!(
            op.handle_outcome(&mut e, Instant::now(), Outcome::Done),
            Ok(())
        );
    }
}
