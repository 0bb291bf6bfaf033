//! A unit's `status` file, read and written under an exclusive `flock` on `status.lock`
//! (control-and-work.md §2.1). The lock is shared with the command-runner supervisor, a
//! separate process, so every read and every read-modify-write takes it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use receptor_core::work::StatusRecord;

pub(crate) use receptor_core::os::go_error::{go_errno_text, go_path_error};

/// Takes the exclusive lock on `<dir>/status.lock` (created 0600); released when the returned
/// file is dropped.
fn lock(dir: &Path) -> Result<File, String> {
    lock_with(dir, true)
}

/// [`lock`], creating `status.lock` only if `create`. Go opens it truncating; the file is
/// always empty, and a truncate would change its times (an inode write) on every read of the
/// status, so it is not truncated here.
fn lock_with(dir: &Path, create: bool) -> Result<File, String> {
    let path = dir.join("status.lock");
    let f = OpenOptions::new()
        .create(create)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| go_path_error("open", &path, &e))?;
    f.lock().map_err(|e| go_path_error("flock", &path, &e))?;
    Ok(f)
}

fn read_all(f: &mut File, path: &Path) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    f.read_to_end(&mut data)
        .map_err(|e| go_path_error("read", path, &e))?;
    Ok(data)
}

/// Go's `StatusFileData.Load`: reads the file over `rec`. A missing or empty file is an error.
pub(crate) fn load(dir: &Path, rec: &mut StatusRecord) -> Result<(), String> {
    let _lock = lock(dir)?;
    let path = dir.join("status");
    let mut f = File::open(&path).map_err(|e| go_path_error("open", &path, &e))?;
    let data = read_all(&mut f, &path)?;
    rec.merge_json(&data).map_err(|e| e.to_string())
}

/// [`load`] that creates nothing: an error if the lock file is gone. For readers that are not
/// asked to read (the directory watcher), which must not put a file back into a directory
/// being removed by a release.
pub(crate) fn load_existing(dir: &Path, rec: &mut StatusRecord) -> Result<(), String> {
    let _lock = lock_with(dir, false)?;
    let path = dir.join("status");
    let mut f = File::open(&path).map_err(|e| go_path_error("open", &path, &e))?;
    let data = read_all(&mut f, &path)?;
    rec.merge_json(&data).map_err(|e| e.to_string())
}

/// Go's `UpdateFullStatus`: under the lock, reads the file over `rec` (when it is not empty),
/// applies `change`, and writes the record back. A file that cannot be decoded is left alone
/// and the error returned.
pub(crate) fn update(
    dir: &Path,
    rec: &mut StatusRecord,
    change: impl FnOnce(&mut StatusRecord),
) -> Result<(), String> {
    let _lock = lock(dir)?;
    let path = dir.join("status");
    let Some(mut f) = open_rw(&path)? else {
        change(rec);
        return replace(dir, &path, rec.to_json().as_bytes());
    };
    let data = read_all(&mut f, &path)?;
    if !data.is_empty() {
        rec.merge_json(&data).map_err(|e| e.to_string())?;
    }
    change(rec);
    write_over(dir, &f, &path, data.len(), rec)
}

/// Go's `Save`: writes `rec` over the file, without reading it.
pub(crate) fn save(dir: &Path, rec: &StatusRecord) -> Result<(), String> {
    let _lock = lock(dir)?;
    write_private(dir, rec)
}

/// Writes `rec` over the status file of a unit whose files no other process writes (a remote
/// unit), without the lock and without reading the file: this process's copy is the truth,
/// and its writes are serialised by the caller. Each write leaves a whole record, as
/// [`update`]'s do.
pub(crate) fn write_private(dir: &Path, rec: &StatusRecord) -> Result<(), String> {
    let path = dir.join("status");
    let Some(f) = open_rw(&path)? else {
        return replace(dir, &path, rec.to_json().as_bytes());
    };
    let old_len = f
        .metadata()
        .map_err(|e| go_path_error("stat", &path, &e))?
        .len();
    let old_len = usize::try_from(old_len).unwrap_or(usize::MAX);
    write_over(dir, &f, &path, old_len, rec)
}

/// `status` opened for reading and writing; `None` if there is none yet (the first record
/// is written to a new file renamed into place, so `status` is never seen empty).
fn open_rw(path: &Path) -> Result<Option<File>, String> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(go_path_error("open", path, &e)),
    }
}

/// Longest record written in place: one write of at most a page at offset 0 is never seen
/// half done, even by a process killed during it.
const IN_PLACE_MAX: usize = 4096;

/// Writes `rec` over the status file `f` (holding `old_len` bytes; the caller holds the lock).
///
/// Go truncates and rewrites the file, so a process killed between the two leaves it empty
/// and the unit cannot be restarted ("unexpected end of JSON input"). Here the record is
/// written in place in one write, padded with spaces to the old length (JSON allows trailing
/// whitespace), and only then is the file cut to the record: a kill at any point leaves the
/// old record or the new one. Writing in place creates no file: a new file for every status
/// write (written and renamed over `status`) made inode allocation the largest cost of a
/// unit on ext4. A record longer than [`IN_PLACE_MAX`] goes to a new file renamed over it.
fn write_over(
    dir: &Path,
    f: &File,
    path: &Path,
    old_len: usize,
    rec: &StatusRecord,
) -> Result<(), String> {
    use std::os::unix::fs::FileExt as _;
    let mut data = rec.to_json().into_bytes();
    let len = data.len();
    if len.max(old_len) > IN_PLACE_MAX {
        return replace(dir, path, &data);
    }
    data.resize(len.max(old_len), b' ');
    f.write_all_at(&data, 0)
        .map_err(|e| go_path_error("write", path, &e))?;
    if len < old_len {
        f.set_len(len as u64)
            .map_err(|e| go_path_error("truncate", path, &e))?;
    }
    Ok(())
}

/// Writes `data` to a new file and renames it over `path`, which then holds the old or the
/// new record whenever a process is killed. The caller holds the lock, so one temporary name
/// serves.
fn replace(dir: &Path, path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = dir.join("status.new");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| go_path_error("open", &tmp, &e))?;
    f.write_all(data)
        .map_err(|e| go_path_error("write", &tmp, &e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| go_path_error("rename", path, &e))
}

/// Size of `<dir>/stdout`, 0 when it does not exist (Go's `stdoutSize`).
pub(crate) fn stdout_size(dir: &Path) -> i64 {
    std::fs::metadata(dir.join("stdout")).map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use receptor_core::work::{ExtraData, STATE_RUNNING};

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("receptor-statusfile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn save_update_load() {
        let d = tmp("sul");
        let mut rec = StatusRecord::new("echo", Some(ExtraData::command(0, "x")));
        assert!(
            load(&d, &mut rec)
                .unwrap_err()
                .contains("no such file or directory")
        );
        save(&d, &rec).unwrap();
        // Another writer (the supervisor) changes the file; an update keeps its changes.
        std::fs::write(
            d.join("status"),
            "{\"State\":1,\"Detail\":\"Running: PID 5\",\"StdoutSize\":3}\n",
        )
        .unwrap();
        update(&d, &mut rec, |r| {
            if let Some(ExtraData::Command(c)) = &mut r.extra_data {
                c.pid = 77;
            }
        })
        .unwrap();
        let mut fresh = StatusRecord::new("", Some(ExtraData::command(0, "")));
        load(&d, &mut fresh).unwrap();
        assert_eq!(fresh.state, STATE_RUNNING);
        assert_eq!(fresh.detail, "Running: PID 5");
        assert_eq!(fresh.work_type, "echo");
        assert_eq!(fresh.command_pid(), Some(77));
        assert_eq!(fresh, rec);
        // A broken file is reported and left as it is.
        std::fs::write(d.join("status"), "{").unwrap();
        assert!(update(&d, &mut rec, |_| {}).is_err());
        assert_eq!(std::fs::read(d.join("status")).unwrap(), b"{");
        assert_eq!(stdout_size(&d), 0);
        std::fs::write(d.join("stdout"), "abc").unwrap();
        assert_eq!(stdout_size(&d), 3);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn writes_in_place_and_never_torn() {
        use std::os::unix::fs::MetadataExt as _;
        let d = tmp("inplace");
        let mut rec = StatusRecord::new("echo", Some(ExtraData::command(0, "x")));
        // The first record goes to a new file put into place whole.
        save(&d, &rec).unwrap();
        assert!(!d.join("status.new").exists());
        let first = std::fs::metadata(d.join("status")).unwrap().ino();
        // Later ones are written over it: longer, then shorter (cut to the record).
        update(&d, &mut rec, |r| {
            r.detail = "a much longer detail than before".into()
        })
        .unwrap();
        update(&d, &mut rec, |r| r.detail = "short".into()).unwrap();
        assert_eq!(std::fs::metadata(d.join("status")).unwrap().ino(), first);
        assert_eq!(
            std::fs::read(d.join("status")).unwrap(),
            rec.to_json().as_bytes()
        );
        // What a writer killed between its write and its cut leaves is the new record padded
        // with spaces, which reads as that record.
        let mut padded = rec.to_json().into_bytes();
        padded.resize(padded.len() + 40, b' ');
        std::fs::write(d.join("status"), &padded).unwrap();
        let mut fresh = StatusRecord::new("", Some(ExtraData::command(0, "")));
        load(&d, &mut fresh).unwrap();
        assert_eq!(fresh, rec);
        // A record too long for one page's write is put into place whole, and read back.
        let long = "x".repeat(2 * IN_PLACE_MAX);
        update(&d, &mut rec, |r| r.detail = long.clone()).unwrap();
        assert!(!d.join("status.new").exists());
        let mut fresh = StatusRecord::new("", None);
        load(&d, &mut fresh).unwrap();
        assert_eq!(fresh.detail, long);
        update(&d, &mut rec, |r| r.detail = "short again".into()).unwrap();
        assert_eq!(
            std::fs::read(d.join("status")).unwrap(),
            rec.to_json().as_bytes()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn errno_texts() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(go_errno_text(&e), "no such file or directory");
        assert_eq!(
            go_path_error(
                "open",
                Path::new("/x"),
                &std::io::Error::from_raw_os_error(13)
            ),
            "open /x: permission denied"
        );
    }
}
