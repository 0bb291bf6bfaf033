//! The unit's output: what is here (the local size) against what the other node reports,
//! a results stream asked from the local size whenever output may still come, what streams
//! in appended at its offset, and a stream watched for a stall.

use std::time::Instant;

use bytes::Bytes;

use super::{Purpose, RemoteOutput, RemotePhase, RemoteUnit, Stage};

impl RemoteUnit {
    pub(super) fn remote_size(&self) -> i64 {
        self.remote_size
    }

    pub(super) fn copied_all(&self) -> bool {
        self.finished() && self.local_size >= self.remote_size()
    }

    pub(super) fn more_output_there(&self) -> bool {
        self.remote_size() > self.local_size
    }

    /// Opens a results stream if output may still come and none is open or waiting.
    pub(super) fn maybe_results(&mut self, now: Instant) {
        let wanted = self.phase == RemotePhase::Follow
            && !self.has(Purpose::Results)
            && self.results_retry.is_none()
            && !self.results_wait_news
            && (!self.finished() || self.more_output_there());
        if wanted {
            self.dial(Purpose::Results, now);
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
