//! Work types on this node: the OS side of core's [`WorkType`]. Each registered type (by
//! name, as the configuration's `work-command` entities declare them, plus the built-in
//! `remote`) is one [`Worker`]; the workceptor drives core's [`Engine`](receptor_core::work::Engine)
//! and hands its worker effects (start, re-attach, cancel) to the unit's worker.
//! A new work type (Kubernetes pods) is one more implementation of this trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use receptor_core::control::{UnitStatus, WorkSubmit};
use receptor_core::work::{
    CancelOutcome, ExtraData, Restart, StatusRecord, WorkType, command_params,
};

use super::{RunnerSpec, Unit, Workceptor, command, remote};

/// A boxed future borrowing its arguments (the trait is used as `dyn Worker`).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a work type does on this node.
pub(crate) trait Worker: WorkType {
    /// The `ExtraData` a unit of this type starts from before its status file is read.
    fn blank_extra(&self) -> Option<ExtraData>;

    /// Whether another process (a supervisor) writes the status files of its units.
    fn shares_status(&self) -> bool {
        true
    }

    /// The status record of a new unit submitted with `req` (this validates the request).
    fn new_record(&self, w: &Workceptor, req: &WorkSubmit) -> Result<StatusRecord, String>;

    /// Starts the unit's work once its payload is in: `Ok(pending)` (`pending`: still being
    /// got going in the background).
    fn start<'a>(
        &'a self,
        w: &'a Arc<Workceptor>,
        unit: &'a Arc<Unit>,
    ) -> BoxFuture<'a, Result<bool, String>>;

    /// Follows a unit found on disk after a node restart again ([`Restart::Reattach`]).
    fn reattach(&self, w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<(), String>;

    /// Stops the unit's work; `release` is `Some(force)` when this is a release.
    fn cancel<'a>(
        &'a self,
        w: &'a Arc<Workceptor>,
        unit: &'a Arc<Unit>,
        release: Option<bool>,
    ) -> BoxFuture<'a, CancelOutcome>;

    /// The unit's status as `work status` / `work list` report it.
    fn reply_status(&self, rec: &StatusRecord) -> UnitStatus {
        rec.to_unit_status()
    }
}

/// A registered `work-command` type.
#[derive(Debug, Clone)]
pub struct CommandType {
    /// The command to run.
    pub command: String,
    /// Configured parameters, before any runtime ones.
    pub base_params: String,
    /// Whether submitters may add parameters.
    pub allow_runtime_params: bool,
    /// Whether submissions from non-Unix connections must be signed.
    pub verify_signature: bool,
}

/// `work-command` units: the command runs under a command-runner supervisor process.
#[derive(Debug)]
pub(crate) struct CommandWorker {
    pub(crate) ty: CommandType,
    pub(crate) runner: RunnerSpec,
}

impl WorkType for CommandWorker {
    fn verify_signature(&self) -> bool {
        self.ty.verify_signature
    }

    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_process(rec)
    }
}

impl Worker for CommandWorker {
    fn blank_extra(&self) -> Option<ExtraData> {
        Some(ExtraData::command(0, ""))
    }

    fn new_record(&self, _: &Workceptor, req: &WorkSubmit) -> Result<StatusRecord, String> {
        let params = command_params(
            &self.ty.base_params,
            self.ty.allow_runtime_params,
            &req.params,
        )
        .map_err(|e| e.to_string())?;
        Ok(StatusRecord::new(
            &req.work_type,
            Some(ExtraData::command(0, params)),
        ))
    }

    fn start<'a>(
        &'a self,
        w: &'a Arc<Workceptor>,
        unit: &'a Arc<Unit>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move { command::start(w, unit, &self.ty, &self.runner).map(|()| false) })
    }

    fn reattach(&self, w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<(), String> {
        command::reattach(w, unit);
        Ok(())
    }

    fn cancel<'a>(
        &'a self,
        _: &'a Arc<Workceptor>,
        unit: &'a Arc<Unit>,
        _: Option<bool>,
    ) -> BoxFuture<'a, CancelOutcome> {
        Box::pin(command::cancel(unit))
    }
}

/// `remote` units: the work runs on another node, driven over its control service.
#[derive(Debug)]
pub(crate) struct RemoteWorker;

impl WorkType for RemoteWorker {
    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_remote(rec)
    }
}

impl Worker for RemoteWorker {
    fn blank_extra(&self) -> Option<ExtraData> {
        Some(ExtraData::Remote(Default::default()))
    }

    /// Only this process writes a remote unit's files.
    fn shares_status(&self) -> bool {
        false
    }

    fn new_record(&self, w: &Workceptor, req: &WorkSubmit) -> Result<StatusRecord, String> {
        let red = remote::new_data(w, req)?;
        Ok(remote::new_record(red))
    }

    fn start<'a>(
        &'a self,
        w: &'a Arc<Workceptor>,
        unit: &'a Arc<Unit>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(remote::start(w, unit))
    }

    fn reattach(&self, w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<(), String> {
        remote::restart(w, unit)
    }

    fn cancel<'a>(
        &'a self,
        w: &'a Arc<Workceptor>,
        unit: &'a Arc<Unit>,
        release: Option<bool>,
    ) -> BoxFuture<'a, CancelOutcome> {
        Box::pin(async move {
            let force = release.unwrap_or(false);
            match remote::cancel_or_release(w, unit, release.is_some(), force).await {
                Ok(pending) => CancelOutcome::Handled { pending },
                Err(e) => CancelOutcome::Failed(e),
            }
        })
    }
}

/// Units found on disk whose work type is not registered: listed (with `ExtraData`
/// `"Unknown WorkType"`), never started or cancelled, deleted on release.
#[derive(Debug)]
pub(crate) struct UnknownWorker;

impl WorkType for UnknownWorker {
    fn on_restart(&self, _: &StatusRecord) -> Restart {
        Restart::Keep
    }
}

impl Worker for UnknownWorker {
    fn blank_extra(&self) -> Option<ExtraData> {
        None
    }

    fn new_record(&self, _: &Workceptor, req: &WorkSubmit) -> Result<StatusRecord, String> {
        Err(format!("unknown work type {}", req.work_type))
    }

    fn start<'a>(
        &'a self,
        _: &'a Arc<Workceptor>,
        _: &'a Arc<Unit>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async { Ok(false) })
    }

    fn reattach(&self, _: &Arc<Workceptor>, _: &Arc<Unit>) -> Result<(), String> {
        Ok(())
    }

    fn cancel<'a>(
        &'a self,
        _: &'a Arc<Workceptor>,
        _: &'a Arc<Unit>,
        _: Option<bool>,
    ) -> BoxFuture<'a, CancelOutcome> {
        Box::pin(async { CancelOutcome::NotRunning })
    }

    fn reply_status(&self, rec: &StatusRecord) -> UnitStatus {
        let mut u = rec.to_unit_status();
        u.extra_data = Some("\"Unknown WorkType\"".to_owned());
        u
    }
}
