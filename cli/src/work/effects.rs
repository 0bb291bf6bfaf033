//! Carrying out the engine's effects on this node: status writes, the unit's worker (start,
//! re-attach, cancel), removing unit directories (retried when the engine says so),
//! forgetting units.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use receptor_core::work::{Effect, WorkError};
use tracing::debug;

use super::{Unit, Workceptor, statusfile};

impl Workceptor {
    /// Carries out the engine's `effects` for `unit`, feeding each worker's answer back, and
    /// returns the answer to the control request.
    pub(super) async fn run(
        self: &Arc<Self>,
        unit: &Arc<Unit>,
        effects: Vec<Effect>,
    ) -> Result<bool, String> {
        let mut queue = VecDeque::from(effects);
        let mut reply = Ok(false);
        while let Some(effect) = queue.pop_front() {
            let more = match effect {
                Effect::StartWorker { unit: id } => {
                    let r = unit.worker.start(self, unit).await;
                    self.engine().handle_start_result(&id, r)
                }
                Effect::CancelWorker { unit: id, release } => {
                    let outcome = unit.worker.cancel(self, unit, release).await;
                    self.engine().handle_cancel_result(&id, release, outcome)
                }
                Effect::RemoveDir {
                    unit: id,
                    force,
                    tries_left,
                    not_before,
                } => {
                    if let Some(at) = not_before {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    let r = match std::fs::remove_dir_all(&unit.dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            Err(statusfile::go_path_error("unlinkat", &unit.dir, &e))
                        }
                        _ => Ok(()),
                    };
                    self.engine()
                        .handle_remove_result(Instant::now(), &id, force, tries_left, r)
                }
                Effect::Reply(r) => {
                    reply = r.map_err(|e| e.to_string());
                    Vec::new()
                }
                other => self.apply(unit, other),
            };
            queue.extend(more);
        }
        reply
    }

    /// Carries out effects that need no waiting (status writes, re-attaching, forgetting).
    pub(super) fn apply_sync(self: &Arc<Self>, unit: &Arc<Unit>, effects: Vec<Effect>) {
        let mut queue = VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            queue.extend(self.apply(unit, effect));
        }
    }

    /// One effect that needs no waiting; what the engine says next.
    fn apply(self: &Arc<Self>, unit: &Arc<Unit>, effect: Effect) -> Vec<Effect> {
        match effect {
            Effect::SetStatus {
                state,
                detail,
                stdout,
                ..
            } => unit.set_status(state, detail, stdout),
            Effect::ReattachWorker { unit: id } => {
                let r = unit.worker.reattach(self, unit);
                return self.engine().handle_reattach_result(&id, r);
            }
            Effect::Forget { .. } => self.forget_unit(unit),
            other => debug!("[{}] effect {other:?} needs the async driver", unit.id),
        }
        Vec::new()
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
