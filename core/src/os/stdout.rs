//! A unit's `stdout` file, in both runtimes: on the submitting node of a remote unit the other
//! node's output is appended to it as it arrives (the remote unit machine's `AppendOutput`,
//! [`UnitStdout`]); `work results` reads it from an offset as it grows ([`StdoutReader`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::work::ReadSize;

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

/// Reads a unit's `stdout` file from an offset, in chunks that grow as core's
/// [`ReadSize::results`] rule says, into a buffer sized to what there is to read.
#[derive(Debug)]
pub struct StdoutReader {
    file: File,
    pos: u64,
    size: ReadSize,
    buf: Vec<u8>,
}

impl StdoutReader {
    /// Reads `file` from byte `pos`.
    pub fn new(file: File, pos: u64) -> Self {
        Self {
            file,
            pos,
            size: ReadSize::results(),
            buf: Vec::new(),
        }
    }

    /// Where the next read starts.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The next chunk of what the file holds beyond the offset, `None` when there is nothing
    /// more now.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<&[u8]>> {
        use std::os::unix::fs::FileExt as _;
        let len = self.file.metadata()?.len();
        let max = self.size.get();
        let want = usize::try_from(len.saturating_sub(self.pos)).map_or(max, |a| a.min(max));
        if want == 0 {
            return Ok(None);
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let space = self.buf.get_mut(..want).unwrap_or_default();
        let n = self.file.read_at(space, self.pos)?;
        if n == 0 {
            return Ok(None);
        }
        self.pos += n as u64;
        self.size.read(n);
        Ok(self.buf.get(..n))
    }

    /// Frees the buffer (before a wait: a stream that waits long holds no memory).
    pub fn release_buffer(&mut self) {
        self.buf = Vec::new();
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

    #[test]
    fn reads_what_there_is_from_the_offset_as_the_file_grows() {
        let dir = std::env::temp_dir().join(format!("unit-stdout-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stdout");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut r = StdoutReader::new(File::open(&path).unwrap(), 4);
        assert_eq!(r.next_chunk().unwrap(), Some(&b"456789"[..]));
        assert_eq!(r.next_chunk().unwrap(), None);
        assert_eq!(r.pos(), 10);
        r.release_buffer();
        // More output: read from where it stopped, in chunks no larger than the read size.
        let more = vec![b'x'; 100_000];
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&more)
            .unwrap();
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            sizes.push(c.len());
            got.extend_from_slice(c);
        }
        assert_eq!(got, more);
        // 16 KiB first, then larger reads as each one fills.
        assert_eq!(sizes.first(), Some(&crate::work::FIRST_READ), "{sizes:?}");
        assert!(sizes.len() > 1 && sizes.get(1) > sizes.first(), "{sizes:?}");
        // An offset past the end reads nothing.
        let mut past = StdoutReader::new(File::open(&path).unwrap(), 1 << 30);
        assert_eq!(past.next_chunk().unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
