//! Carrying out the engine's effects on this node: status writes, the unit's worker (start,
//! re-attach, cancel), removing unit directories (retried when the engine says so),
//! forgetting units. Core's [`Operation`] keeps the queue and feeds each outcome back.

use std::sync::Arc;
use std::time::Instant;

use receptor_core::work::{Effect, Operation, Outcome, WorkError};
use tracing::{debug, warn};

use super::{Unit, Workceptor, statusfile};

impl Workceptor {
    /// Carries out the engine's `effects` for `unit`, feeding each worker's answer back, and
    /// returns the answer to the control request.
    pub(super) async fn run(
        self: &Arc<Self>,
        unit: &Arc<Unit>,
        effects: Vec<Effect>,
    ) -> Result<bool, String> {
        let mut op = Operation::new(effects);
        while let Some(effect) = op.poll_effect() {
            let outcome = match effect {
                Effect::StartWorker { .. } => Outcome::Started(unit.worker.start(self, unit).await),
                Effect::CancelWorker { release, .. } => {
                    Outcome::Cancelled(unit.worker.cancel(self, unit, release).await)
                }
                Effect::RemoveDir { not_before, .. } => {
                    if let Some(at) = not_before {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    Outcome::Removed(match std::fs::remove_dir_all(&unit.dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            Err(statusfile::go_path_error("unlinkat", &unit.dir, &e))
                        }
                        _ => Ok(()),
                    })
                }
                other => self.apply(unit, other),
            };
            self.answer(&mut op, outcome);
        }
        op.into_reply().map_err(|e| e.to_string())
    }

    /// Carries out effects that need no waiting (status writes, re-attaching, forgetting).
    pub(super) fn apply_sync(self: &Arc<Self>, unit: &Arc<Unit>, effects: Vec<Effect>) {
        let mut op = Operation::new(effects);
        while let Some(effect) = op.poll_effect() {
            let outcome = self.apply(unit, effect);
            self.answer(&mut op, outcome);
        }
    }

    /// One effect that needs no waiting; how it went.
    fn apply(self: &Arc<Self>, unit: &Arc<Unit>, effect: Effect) -> Outcome {
        match effect {
            Effect::SetStatus {
                state,
                detail,
                stdout,
                ..
            } => unit.set_status(state, detail, stdout),
            Effect::ReattachWorker { .. } => {
                return Outcome::Reattached(unit.worker.reattach(self, unit));
            }
            Effect::Forget { .. } => self.forget_unit(unit),
            other => debug!("[{}] effect {other:?} needs the async driver", unit.id),
        }
        Outcome::Done
    }

    /// Feeds `outcome` back to the engine.
    fn answer(&self, op: &mut Operation, outcome: Outcome) {
        if let Err(e) = op.handle_outcome(&mut self.engine(), Instant::now(), outcome) {
            warn!("{e}");
        }
    }
}

/// The answer in effects that need no unit (a force-release of a unit that is gone).
pub(super) fn reply_of(effects: Vec<Effect>) -> Result<bool, String> {
    effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Reply(r) => Some(r.map_err(|e: WorkError| e.to_string())),
            _ => None,
        })
        .unwrap_or(Ok(false))
}
