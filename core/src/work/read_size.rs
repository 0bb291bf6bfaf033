//! How much a runtime reads at a time from a remote unit's connection or a unit's stdout file,
//! in both runtimes: small first, doubling after each read that fills it, up to a cap. A
//! buffer of the cap for each connection or stream's whole life costs memory for nothing
//! when outputs are small: at 64 KiB from the start, 200 remote units of 100 KiB outputs
//! made 20 MiB of the submitting node's peak RSS; 200 results streams at 256 KiB held 50 MiB.
//!
//! ```
//! use receptor_core::work::{REMOTE_READ_MAX, ReadSize};
//!
//! let mut r = ReadSize::remote();
//! assert_eq!(r.get(), 16 * 1024);
//! r.read(100); // not full: stays
//! assert_eq!(r.get(), 16 * 1024);
//! r.read(16 * 1024);
//! r.read(32 * 1024);
//! r.read(64 * 1024);
//! assert_eq!(r.get(), REMOTE_READ_MAX);
//! ```

/// The first read size.
pub const FIRST_READ: usize = 16 * 1024;
/// The largest read from a remote unit's connection.
pub const REMOTE_READ_MAX: usize = 64 * 1024;
/// The largest read from a unit's stdout file for `work results`.
pub const RESULTS_READ_MAX: usize = 256 * 1024;

/// The size of the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSize {
    size: usize,
    max: usize,
}

impl ReadSize {
    /// Starts at `first` (at least 1), grows up to `max` (at least the start).
    pub fn new(first: usize, max: usize) -> Self {
        let size = first.max(1);
        Self {
            size,
            max: max.max(size),
        }
    }

    /// A remote unit's connection: [`FIRST_READ`] up to [`REMOTE_READ_MAX`].
    pub fn remote() -> Self {
        Self::new(FIRST_READ, REMOTE_READ_MAX)
    }

    /// A results stream: [`FIRST_READ`] up to [`RESULTS_READ_MAX`].
    pub fn results() -> Self {
        Self::new(FIRST_READ, RESULTS_READ_MAX)
    }

    /// How much to read next.
    pub fn get(&self) -> usize {
        self.size
    }

    /// A read gave `n` bytes: one that filled the read size doubles it (up to the cap).
    pub fn read(&mut self, n: usize) {
        if n >= self.size {
            self.size = self.size.saturating_mul(2).min(self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_after_full_reads_up_to_the_cap() {
        let mut r = ReadSize::results();
        let mut seen = vec![r.get()];
        for _ in 0..6 {
            r.read(r.get());
            seen.push(r.get());
        }
        assert_eq!(
            seen,
            [16, 32, 64, 128, 256, 256, 256].map(|k| k * 1024).to_vec()
        );
        // Short reads keep the size; a read larger than asked (a roomy buffer) counts as full.
        let mut r = ReadSize::remote();
        r.read(FIRST_READ - 1);
        assert_eq!(r.get(), FIRST_READ);
        r.read(FIRST_READ + 5);
        assert_eq!(r.get(), 2 * FIRST_READ);
        // Odd limits stay sane.
        let mut r = ReadSize::new(0, 0);
        assert_eq!(r.get(), 1);
        r.read(usize::MAX);
        assert_eq!(r.get(), 1);
        let mut r = ReadSize::new(usize::MAX, usize::MAX);
        r.read(usize::MAX);
        assert_eq!(r.get(), usize::MAX);
    }
}
