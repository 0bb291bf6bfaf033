//! The local unit lifecycle (Go's workceptor and `BaseWorkUnit`), sans-IO.
//!
//! [`Engine`] keeps the node's unit table and decides every transition: a new unit waits for
//! its payload, starts, runs, is cancelled or released (its directory removed, retried as Go
//! does), fails when its worker ends without a final state, and is picked up again after a
//! node restart by the rules of its [`WorkType`]. What the node must do about it comes out as
//! [`Effect`]s (write the status, start / re-attach / cancel the worker, remove the directory,
//! forget the unit, answer the control request); the driver does them and reports back
//! through the `handle_*` methods. No clock, no files, no processes: time is passed in, and
//! the same engine runs under either runtime or the simulator.
//!
//! A `ttl` is Go's for remote units only: the remote unit's own machine
//! ([`RemoteUnit`](super::remote_unit::RemoteUnit)) keeps it, as it knows when the other node
//! got the work and stops trying then.
//!
//! Methods, in quinn's groups: getters (`&self`); commands from the control service
//! ([`Engine::create`], [`Engine::start`], [`Engine::cancel`], [`Engine::release`], ...) and
//! `handle_*` for what the driver saw, each returning the effects to do next, in order. The
//! driver carries them out one by one and feeds each answer back; an [`Effect::Reply`] is the
//! answer to the control request.
//!
//! An operation that spans several effects carries its own state in them (a release's
//! `force` and remaining tries travel in [`Effect::RemoveDir`], with the time of the next try),
//! so concurrent operations on one unit never mix up their continuations, and the engine has
//! no timers of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use tracing::{error, warn};

use super::is_safe_unit_id;
use super::status::input_error_detail;
use super::worker::{CancelOutcome, Restart, WorkType};
use super::{
    STATE_CANCELED, STATE_FAILED, STATE_PENDING, STATE_RUNNING, StatusRecord, generate_unit_id,
};

/// How often a release tries to remove a unit's directory (Go: 3).
pub const REMOVE_TRIES: u8 = 3;
/// Pause between two tries (Go: 1 s).
pub const REMOVE_RETRY: Duration = Duration::from_secs(1);

/// Why the engine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// No unit has this ID (Go's wording, which clients show).
    #[error("unknown work unit {0}")]
    UnknownUnit(String),
    /// The ID cannot name a unit directory.
    #[error(
        "invalid work unit ID {0:?}: a unit ID is one path component (not empty, . or .., no / or NUL)"
    )]
    InvalidId(String),
    /// A unit with this ID exists already.
    #[error("work unit {0} already exists")]
    Duplicate(String),
    /// The worker failed; its own words.
    #[error("{0}")]
    Worker(String),
    /// The unit's directory could not be removed.
    #[error("{0}")]
    Remove(String),
}

/// Which `StdoutSize` a status write records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutSize {
    /// 0 (nothing ran yet).
    Zero,
    /// Leave the recorded size.
    Keep,
    /// The size of the unit's stdout now (the driver measures it).
    Current,
}

/// Something the driver must do for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write State and Detail (and StdoutSize as `stdout` says) to the unit's status file.
    SetStatus {
        /// The unit.
        unit: String,
        /// The new state (`STATE_*`).
        state: i64,
        /// The new detail.
        detail: String,
        /// What becomes of StdoutSize.
        stdout: StdoutSize,
    },
    /// Start the unit's worker (its payload is in); answer with
    /// [`Engine::handle_start_result`].
    StartWorker {
        /// The unit.
        unit: String,
    },
    /// Follow a unit found on disk after a restart again (its process, its remote node);
    /// answer with [`Engine::handle_reattach_result`].
    ReattachWorker {
        /// The unit.
        unit: String,
    },
    /// Stop the unit's work; answer with [`Engine::handle_cancel_result`], passing
    /// `release` back.
    CancelWorker {
        /// The unit.
        unit: String,
        /// `Some(force)` when the cancel is the first step of a release.
        release: Option<bool>,
    },
    /// Remove the unit's directory, not before `not_before`; answer with
    /// [`Engine::handle_remove_result`], passing `force` and `tries_left` back.
    RemoveDir {
        /// The unit.
        unit: String,
        /// A forced release: a failure does not matter.
        force: bool,
        /// Tries left after this one.
        tries_left: u8,
        /// When to try (`None`: now).
        not_before: Option<Instant>,
    },
    /// The unit is gone: drop its handle and wake everyone waiting on it.
    Forget {
        /// The unit.
        unit: String,
    },
    /// The control request that led here is answered: `Ok(pending)` (the other node has
    /// not heard yet) or the error.
    Reply(Result<bool, WorkError>),
}

#[derive(Debug)]
struct Entry<T> {
    handle: T,
    work_type: String,
    state: i64,
}

/// The unit table and its lifecycle; `T` is the driver's handle for a unit.
#[derive(Debug)]
pub struct Engine<T> {
    units: BTreeMap<String, Entry<T>>,
    last_now: Option<Instant>,
}

impl<T> Default for Engine<T> {
    fn default() -> Self {
        Self {
            units: BTreeMap::new(),
            last_now: None,
        }
    }
}

impl<T> Engine<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    // Getters.

    /// The handle of unit `id`.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.units.get(id).map(|e| &e.handle)
    }

    /// Every unit, by ID.
    pub fn units(&self) -> impl Iterator<Item = (&str, &T)> {
        self.units.iter().map(|(id, e)| (id.as_str(), &e.handle))
    }

    /// How many units there are.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The state of unit `id` as last set or seen.
    pub fn state(&self, id: &str) -> Option<i64> {
        self.units.get(id).map(|e| e.state)
    }

    /// The work type of unit `id`.
    pub fn work_type(&self, id: &str) -> Option<&str> {
        self.units.get(id).map(|e| e.work_type.as_str())
    }

    /// A fresh unit ID from `rng`, not naming a known unit nor anything `taken` reports
    /// (a directory left on disk).
    pub fn new_unit_id<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        mut taken: impl FnMut(&str) -> bool,
    ) -> String {
        loop {
            let id = generate_unit_id(rng);
            if !self.units.contains_key(&id) && !taken(&id) {
                return id;
            }
        }
    }

    // Commands.

    /// `work submit`: a new unit of `work_type` (its directory and record made by the
    /// driver) waits for its payload.
    pub fn create(
        &mut self,
        id: &str,
        handle: T,
        work_type: &str,
    ) -> Result<Vec<Effect>, WorkError> {
        if !is_safe_unit_id(id) {
            return Err(WorkError::InvalidId(id.to_owned()));
        }
        if self.units.contains_key(id) {
            return Err(WorkError::Duplicate(id.to_owned()));
        }
        self.units.insert(
            id.to_owned(),
            Entry {
                handle,
                work_type: work_type.to_owned(),
                state: STATE_PENDING,
            },
        );
        Ok(vec![set(
            id,
            STATE_PENDING,
            "Waiting for Input Data",
            StdoutSize::Zero,
        )])
    }

    /// A unit found on disk when the node starts (or when a lookup misses the table): `rec`
    /// is its status record, or why it could not be read; `work_type` its registered type
    /// (`None`: unknown, listed but never started). Go's `Restart`.
    pub fn handle_found(
        &mut self,
        id: &str,
        handle: T,
        rec: Result<&StatusRecord, String>,
        work_type: Option<&dyn WorkType>,
    ) -> Vec<Effect> {
        if !is_safe_unit_id(id) || self.units.contains_key(id) {
            return Vec::new();
        }
        let (name, state) = match &rec {
            Ok(r) => (r.work_type.clone(), r.state),
            Err(_) => (String::new(), STATE_FAILED),
        };
        self.units.insert(
            id.to_owned(),
            Entry {
                handle,
                work_type: name,
                state,
            },
        );
        let plan = match (rec, work_type) {
            (Err(e), _) => {
                warn!("Failed to restart worker {id}: {e}");
                Restart::Fail(format!("Failed to restart: {e}"))
            }
            (Ok(_), None) => Restart::Keep,
            (Ok(r), Some(t)) => t.on_restart(r),
        };
        match plan {
            Restart::Keep => Vec::new(),
            Restart::Fail(detail) => {
                self.set_state(id, STATE_FAILED);
                vec![set(id, STATE_FAILED, detail, StdoutSize::Current)]
            }
            Restart::Reattach => vec![Effect::ReattachWorker {
                unit: id.to_owned(),
            }],
        }
    }

    /// The payload of `work submit` could not be read: the unit fails.
    pub fn payload_failed(&mut self, id: &str, err: &str) -> Vec<Effect> {
        self.set_state(id, STATE_FAILED);
        vec![set(
            id,
            STATE_FAILED,
            input_error_detail(err),
            StdoutSize::Zero,
        )]
    }

    /// `work submit`, once the payload is in: the worker starts.
    pub fn start(&mut self, id: &str) -> Result<Vec<Effect>, WorkError> {
        if !self.units.contains_key(id) {
            return Err(WorkError::UnknownUnit(id.to_owned()));
        }
        Ok(vec![
            set(id, STATE_PENDING, "Starting Worker", StdoutSize::Zero),
            Effect::StartWorker {
                unit: id.to_owned(),
            },
        ])
    }

    /// `work cancel`.
    pub fn cancel(&mut self, id: &str) -> Result<Vec<Effect>, WorkError> {
        if !self.units.contains_key(id) {
            return Err(WorkError::UnknownUnit(id.to_owned()));
        }
        Ok(vec![Effect::CancelWorker {
            unit: id.to_owned(),
            release: None,
        }])
    }

    /// `work release` / `work force-release`: the work is cancelled, then the directory
    /// removed and the unit forgotten. An unknown unit is an error for `release` and quietly
    /// done for `force-release` (Go issue #758: cleanup can be repeated).
    pub fn release(&mut self, id: &str, force: bool) -> Result<Vec<Effect>, WorkError> {
        if !is_safe_unit_id(id) {
            return Err(WorkError::InvalidId(id.to_owned()));
        }
        if !self.units.contains_key(id) {
            return if force {
                Ok(vec![Effect::Reply(Ok(false))])
            } else {
                Err(WorkError::UnknownUnit(id.to_owned()))
            };
        }
        Ok(vec![Effect::CancelWorker {
            unit: id.to_owned(),
            release: Some(force),
        }])
    }

    /// The unit is gone (its directory removed): it leaves the table.
    pub fn forget(&mut self, id: &str) -> Option<T> {
        self.units.remove(id).map(|e| e.handle)
    }

    // Inputs.

    /// How [`Effect::StartWorker`] went: `Ok(pending)` (`pending`: the worker is still
    /// getting it going, as a remote unit whose node was not reached yet), or the error.
    pub fn handle_start_result(&mut self, id: &str, result: Result<bool, String>) -> Vec<Effect> {
        match result {
            Ok(pending) => vec![Effect::Reply(Ok(pending))],
            Err(err) => {
                self.set_state(id, STATE_FAILED);
                vec![
                    set(
                        id,
                        STATE_FAILED,
                        format!("Error starting worker: {err}"),
                        StdoutSize::Zero,
                    ),
                    Effect::Reply(Err(WorkError::Worker(err))),
                ]
            }
        }
    }

    /// How [`Effect::ReattachWorker`] went.
    pub fn handle_reattach_result(&mut self, id: &str, result: Result<(), String>) -> Vec<Effect> {
        match result {
            Ok(()) => Vec::new(),
            Err(err) => {
                warn!("Failed to restart worker {id}: {err}");
                self.set_state(id, STATE_FAILED);
                vec![set(
                    id,
                    STATE_FAILED,
                    format!("Failed to restart: {err}"),
                    StdoutSize::Current,
                )]
            }
        }
    }

    /// The worker's work ended without recording a final state (a command runner killed from
    /// outside, or one that ended while the node was down): a unit the fresh `state` shows
    /// still Pending or Running fails with `detail` (Go leaves it Running for good); any other
    /// stays as it is.
    pub fn handle_worker_gone(&mut self, id: &str, state: i64, detail: String) -> Vec<Effect> {
        self.set_state(id, state);
        if state != STATE_PENDING && state != STATE_RUNNING {
            return Vec::new();
        }
        self.set_state(id, STATE_FAILED);
        vec![set(id, STATE_FAILED, detail, StdoutSize::Current)]
    }

    /// The unit's state as the driver read it (the worker writes it too).
    pub fn handle_status(&mut self, id: &str, state: i64) {
        self.set_state(id, state);
    }

    /// How [`Effect::CancelWorker`] went; `release` as it was in the effect.
    pub fn handle_cancel_result(
        &mut self,
        id: &str,
        release: Option<bool>,
        outcome: CancelOutcome,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        match outcome {
            CancelOutcome::Handled { pending } => {
                out.push(Effect::Reply(Ok(pending)));
                return out;
            }
            CancelOutcome::Stopped => {
                self.set_state(id, STATE_CANCELED);
                out.push(set(id, STATE_CANCELED, "Canceled", StdoutSize::Keep));
            }
            CancelOutcome::NotRunning => {}
            CancelOutcome::Failed(err) => {
                if release != Some(true) {
                    out.push(Effect::Reply(Err(WorkError::Worker(err))));
                    return out;
                }
            }
        }
        match release {
            None => out.push(Effect::Reply(Ok(false))),
            Some(force) => out.push(Effect::RemoveDir {
                unit: id.to_owned(),
                force,
                tries_left: REMOVE_TRIES - 1,
                not_before: None,
            }),
        }
        out
    }

    /// How [`Effect::RemoveDir`] went (a directory already gone counts as removed); `force`
    /// and `tries_left` as they were in the effect. Go's `Release`: three tries a second
    /// apart, a forced release ignores failures.
    pub fn handle_remove_result(
        &mut self,
        now: Instant,
        id: &str,
        force: bool,
        tries_left: u8,
        result: Result<(), String>,
    ) -> Vec<Effect> {
        let now = self.clamp(now);
        match result {
            Ok(()) => {}
            Err(_) if force => {}
            Err(err) if tries_left == 0 => {
                error!("Error removing directory for {id}. No more retries left.");
                return vec![Effect::Reply(Err(WorkError::Remove(err)))];
            }
            Err(_) => {
                warn!("Error removing directory for {id}. Retrying {tries_left} more times.");
                return vec![Effect::RemoveDir {
                    unit: id.to_owned(),
                    force,
                    tries_left: tries_left - 1,
                    not_before: Some(now + REMOVE_RETRY),
                }];
            }
        }
        self.units.remove(id);
        vec![
            Effect::Forget {
                unit: id.to_owned(),
            },
            Effect::Reply(Ok(false)),
        ]
    }

    fn set_state(&mut self, id: &str, state: i64) {
        if let Some(e) = self.units.get_mut(id) {
            e.state = state;
        }
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |l| l.max(now));
        self.last_now = Some(now);
        now
    }
}

fn set(id: &str, state: i64, detail: impl Into<String>, stdout: StdoutSize) -> Effect {
    Effect::SetStatus {
        unit: id.to_owned(),
        state,
        detail: detail.into(),
        stdout,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
