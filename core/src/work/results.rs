//! When a `work results` stream ends (control-and-work.md §2.5), as a rule the runtime asks
//! while it copies a unit's stdout to the client, so every runtime ends streams alike.
//!
//! The runtime opens `<unit>/stdout`, sends what it holds from the start position, and waits
//! for the unit to change; [`ResultsFollow`] says when to stop:
//!
//! * while the file does not exist: at once when the unit was released; once the unit is
//!   complete (Succeeded or Failed) and either recorded no more than the start position or
//!   has been complete for more than [`STDOUT_MISSING_CHECKS`] checks
//!   ([`STDOUT_CHECK_EVERY`] apart) without the file appearing (a remote unit's status can
//!   say Succeeded before its first output has been copied here);
//! * at once for a negative start position (Go's seek error), once the file is open;
//! * once the unit is complete and everything it recorded (`StdoutSize`) has been sent;
//! * when the file has been found missing on more than [`STDOUT_MISSING_CHECKS`] checks in a
//!   row, one every [`STDOUT_CHECK_EVERY`] (the unit was released).
//!
//! A Canceled unit is not complete (as in Go): its stream waits for the client to leave.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use receptor_core::work::{ResultsEnd, ResultsFollow, ResultsNext, STATE_RUNNING, STATE_SUCCEEDED};
//!
//! let t0 = Instant::now();
//! let mut f = ResultsFollow::new(0);
//! assert_eq!(f.opened(t0), Ok(0));
//! assert_eq!(f.caught_up(t0, 5, STATE_RUNNING, 5), ResultsNext::Wait);
//! assert_eq!(f.caught_up(t0, 5, STATE_SUCCEEDED, 9), ResultsNext::Wait);
//! assert_eq!(f.caught_up(t0, 9, STATE_SUCCEEDED, 9), ResultsNext::End(ResultsEnd::Complete));
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use super::status::is_complete;

/// How often the stdout file is checked for (it vanishes when the unit is released).
pub const STDOUT_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Checks that may find the stdout file missing before the stream gives up.
pub const STDOUT_MISSING_CHECKS: u32 = 3;

/// Why a results stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultsEnd {
    /// The unit was released before its stdout existed.
    Released,
    /// The unit completed without producing stdout past the start position.
    NoOutput,
    /// The start position is negative: nothing can be read from it.
    NegativeStart,
    /// The unit completed and everything it recorded was sent.
    Complete,
    /// The stdout file went missing and stayed missing.
    StdoutGone,
}

impl fmt::Display for ResultsEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Released => "unit released",
            Self::NoOutput => "unit completed without producing any stdout",
            Self::NegativeStart => "negative start position",
            Self::Complete => "stdout complete",
            Self::StdoutGone => "exceeded retries for reading stdout",
        })
    }
}

/// What the runtime does after sending everything the stdout file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsNext {
    /// End the stream.
    End(ResultsEnd),
    /// See whether the stdout file still exists and report it with
    /// [`ResultsFollow::stdout_checked`].
    CheckStdout,
    /// Wait for the unit to change (or [`STDOUT_CHECK_EVERY`]), read again, and ask again.
    Wait,
}

/// Whether a unit's results are all sent: it is complete (Succeeded or Failed, not Canceled)
/// and `sent` bytes reach its recorded `StdoutSize`. The part of the rule a runtime without a
/// stdout file (the simulator) needs on its own.
pub fn all_sent(state: i64, sent: u64, stdout_size: i64) -> bool {
    is_complete(state) && i64::try_from(sent).unwrap_or(i64::MAX) >= stdout_size
}

/// One results stream's progress towards its end. See the module doc for the rule.
#[derive(Debug, Clone)]
pub struct ResultsFollow {
    start_pos: i64,
    /// Since when the unit has been complete while its stdout file is missing.
    complete_since: Option<Instant>,
    /// Checks in a row that found the open stdout file gone.
    missing: u32,
    /// The last check for the stdout file (or when it was opened).
    last_check: Option<Instant>,
}

impl ResultsFollow {
    /// A stream from `start_pos` (bytes into stdout; may be negative, as the client sent it).
    pub fn new(start_pos: i64) -> Self {
        Self {
            start_pos,
            complete_since: None,
            missing: 0,
            last_check: None,
        }
    }

    /// The stdout file does not exist yet. `None`: wait for the unit to change and try to
    /// open it again.
    pub fn no_stdout(
        &mut self,
        now: Instant,
        released: bool,
        state: i64,
        stdout_size: i64,
    ) -> Option<ResultsEnd> {
        if released {
            return Some(ResultsEnd::Released);
        }
        if !is_complete(state) {
            return None;
        }
        let since = *self.complete_since.get_or_insert(now);
        let patience = STDOUT_CHECK_EVERY * STDOUT_MISSING_CHECKS;
        (stdout_size <= self.start_pos || now.saturating_duration_since(since) > patience)
            .then_some(ResultsEnd::NoOutput)
    }

    /// The stdout file is open: the offset to read from.
    pub fn opened(&mut self, now: Instant) -> Result<u64, ResultsEnd> {
        self.last_check = Some(now);
        u64::try_from(self.start_pos).map_err(|_| ResultsEnd::NegativeStart)
    }

    /// Everything up to byte `sent` of stdout has been sent and the file holds no more; the
    /// unit's state and recorded `StdoutSize` are as given.
    pub fn caught_up(
        &mut self,
        now: Instant,
        sent: u64,
        state: i64,
        stdout_size: i64,
    ) -> ResultsNext {
        if all_sent(state, sent, stdout_size) {
            return ResultsNext::End(ResultsEnd::Complete);
        }
        let due = self
            .last_check
            .is_none_or(|t| now.saturating_duration_since(t) >= STDOUT_CHECK_EVERY);
        if due {
            self.last_check = Some(now);
            ResultsNext::CheckStdout
        } else {
            ResultsNext::Wait
        }
    }

    /// The answer to [`ResultsNext::CheckStdout`]. `None`: wait, as for [`ResultsNext::Wait`].
    pub fn stdout_checked(&mut self, exists: bool) -> Option<ResultsEnd> {
        if exists {
            self.missing = 0;
            return None;
        }
        self.missing += 1;
        (self.missing > STDOUT_MISSING_CHECKS).then_some(ResultsEnd::StdoutGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::{
        STATE_CANCELED, STATE_FAILED, STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED,
    };

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn complete_means_succeeded_or_failed_and_all_sent() {
        let t0 = Instant::now();
        for state in [STATE_SUCCEEDED, STATE_FAILED] {
            let mut f = ResultsFollow::new(0);
            assert_eq!(f.opened(t0), Ok(0));
            assert_eq!(f.caught_up(t0, 3, state, 4), ResultsNext::Wait);
            assert_eq!(
                f.caught_up(t0, 4, state, 4),
                ResultsNext::End(ResultsEnd::Complete)
            );
            // More sent than recorded (the file grew after the status write).
            assert_eq!(
                f.caught_up(t0, 5, state, 4),
                ResultsNext::End(ResultsEnd::Complete)
            );
        }
        // Canceled is not complete (as in Go), nor are Pending and Running.
        for state in [STATE_CANCELED, STATE_PENDING, STATE_RUNNING] {
            let mut f = ResultsFollow::new(0);
            assert_eq!(f.opened(t0), Ok(0));
            assert_eq!(f.caught_up(t0, 4, state, 4), ResultsNext::Wait);
        }
    }

    #[test]
    fn stdout_is_checked_every_second_and_given_up_after_three_misses() {
        let t0 = Instant::now();
        let mut f = ResultsFollow::new(0);
        assert_eq!(f.opened(t0), Ok(0));
        assert_eq!(
            f.caught_up(t0 + SEC / 2, 0, STATE_RUNNING, 0),
            ResultsNext::Wait
        );
        let mut t = t0;
        for _ in 0..3 {
            t += SEC;
            assert_eq!(
                f.caught_up(t, 0, STATE_RUNNING, 0),
                ResultsNext::CheckStdout
            );
            assert_eq!(f.caught_up(t, 0, STATE_RUNNING, 0), ResultsNext::Wait);
            assert_eq!(f.stdout_checked(false), None);
        }
        // Found again: the count starts over.
        t += SEC;
        assert_eq!(
            f.caught_up(t, 0, STATE_RUNNING, 0),
            ResultsNext::CheckStdout
        );
        assert_eq!(f.stdout_checked(true), None);
        for _ in 0..3 {
            assert_eq!(f.stdout_checked(false), None);
        }
        assert_eq!(f.stdout_checked(false), Some(ResultsEnd::StdoutGone));
    }

    #[test]
    fn missing_stdout_of_a_complete_unit() {
        let t0 = Instant::now();
        // Released: at once, whatever the state.
        let mut f = ResultsFollow::new(0);
        assert_eq!(
            f.no_stdout(t0, true, STATE_RUNNING, 0),
            Some(ResultsEnd::Released)
        );
        // Not complete (Canceled included): keep waiting, however long.
        for state in [STATE_PENDING, STATE_RUNNING, STATE_CANCELED] {
            let mut f = ResultsFollow::new(0);
            assert_eq!(f.no_stdout(t0, false, state, 0), None);
            assert_eq!(f.no_stdout(t0 + 100 * SEC, false, state, 10), None);
        }
        // Complete with nothing recorded past the start: at once.
        let mut f = ResultsFollow::new(5);
        assert_eq!(
            f.no_stdout(t0, false, STATE_SUCCEEDED, 5),
            Some(ResultsEnd::NoOutput)
        );
        // Complete with output recorded: wait up to 3 seconds for the file to appear.
        let mut f = ResultsFollow::new(0);
        assert_eq!(f.no_stdout(t0, false, STATE_FAILED, 6), None);
        assert_eq!(f.no_stdout(t0 + 3 * SEC, false, STATE_FAILED, 6), None);
        assert_eq!(
            f.no_stdout(t0 + 3 * SEC + SEC / 10, false, STATE_FAILED, 6),
            Some(ResultsEnd::NoOutput)
        );
        // The 3 seconds count from when it was first seen complete.
        let mut f = ResultsFollow::new(0);
        assert_eq!(f.no_stdout(t0, false, STATE_RUNNING, 6), None);
        assert_eq!(f.no_stdout(t0 + 10 * SEC, false, STATE_SUCCEEDED, 6), None);
        assert_eq!(
            f.no_stdout(t0 + 13 * SEC + SEC / 10, false, STATE_SUCCEEDED, 6),
            Some(ResultsEnd::NoOutput)
        );
    }

    #[test]
    fn negative_start_ends_once_open() {
        let t0 = Instant::now();
        let mut f = ResultsFollow::new(-1);
        assert_eq!(f.no_stdout(t0, false, STATE_RUNNING, 0), None);
        assert_eq!(f.opened(t0), Err(ResultsEnd::NegativeStart));
        assert_eq!(ResultsFollow::new(7).opened(t0), Ok(7));
    }
}
