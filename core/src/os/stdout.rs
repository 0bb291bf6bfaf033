//! A remote unit's `stdout` file on the submitting node: the other node's output is appended
//! to it as it arrives (the remote unit machine's `AppendOutput`), in both runtimes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Why output could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The file could not be opened (or created).
    #[error("could not open stdout file {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes could not be written.
    #[error("could not copy to stdout file {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The unit's `stdout` file, opened for appending (created with mode 0600) when first
/// needed and kept open.
#[derive(Debug)]
pub struct UnitStdout {
    path: PathBuf,
    file: Option<File>,
}

impl UnitStdout {
    /// The file at `path`, not opened yet.
    pub fn new(path: PathBuf) -> Self {
        Self { path, file: None }
    }

    /// Opens the file now (creating it), if it is not open: a results stream of a unit
    /// complete with no stdout file ends at once, so the file is made before any status is
    /// stored. On an error the next append tries again.
    pub fn create(&mut self) -> Result<&mut File, AppendError> {
        match self.file {
            Some(ref mut f) => Ok(f),
            None => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.path)
                    .map_err(|source| AppendError::Open {
                        path: self.path.display().to_string(),
                        source,
                    })?;
                Ok(self.file.insert(f))
            }
        }
    }

    /// Appends `data`, the output from byte `offset`. The bytes are written even when the
    /// file does not hold exactly `offset` bytes; then `Ok(Some(len))` says what it held.
    pub fn append(&mut self, offset: i64, data: &[u8]) -> Result<Option<u64>, AppendError> {
        let path = self.path.display().to_string();
        let f = self.create()?;
        let mismatch = f
            .metadata()
            .ok()
            .map(|m| m.len())
            .filter(|len| i64::try_from(*len).ok() != Some(offset));
        f.write_all(data)
            .map_err(|source| AppendError::Write { path, source })?;
        Ok(mismatch)
    }

    /// Closes the file (the unit's directory is going).
    pub fn close(&mut self) {
        self.file = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_says_when_the_offset_is_not_the_size() {
        let dir = std::env::temp_dir().join(format!("unit-stdout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stdout");
        let _ = std::fs::remove_file(&path);
        let mut out = UnitStdout::new(path.clone());
        out.create().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(out.append(0, b"first\n").unwrap(), None);
        assert_eq!(out.append(6, b"second\n").unwrap(), None);
        // Out of step: written all the same, and the size it had is reported.
        assert_eq!(out.append(0, b"x").unwrap(), Some(13));
        assert_eq!(std::fs::read(&path).unwrap(), b"first\nsecond\nx");
        out.close();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut gone = UnitStdout::new(dir.join("stdout"));
        assert!(matches!(
            gone.append(0, b"y"),
            Err(AppendError::Open { .. })
        ));
    }
}
