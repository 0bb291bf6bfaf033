//! How the unit's State is set here, and how the machine ends: failed, finished (every
//! connection closed or parked, no timer left), or forgotten (released).

use super::{RemoteOutput, RemotePhase, RemoteUnit};
use crate::work::status::STATE_FAILED;

impl RemoteUnit {
    pub(super) fn set_status(&mut self, state: i64, detail: String, stdout_size: Option<i64>) {
        self.state = state;
        self.out.push_back(RemoteOutput::SetStatus {
            state,
            detail,
            stdout_size,
        });
    }

    pub(super) fn fail(&mut self, detail: String, size: i64) {
        self.set_status(STATE_FAILED, detail, Some(size));
        self.finish();
    }

    pub(super) fn finish(&mut self) {
        self.close_all();
        self.phase = RemotePhase::Done;
        self.poll_at = None;
        self.control_retry = None;
        self.results_retry = None;
    }

    pub(super) fn forget(&mut self) {
        self.finish();
        self.out.push_back(RemoteOutput::Forget);
    }
}
