//! The directory that holds a node's unit directories (`<datadir>/<node>`).
//!
//! Its subdirectories, one per unit of work, have nothing to do with one another, and they come
//! and go all the time. Left to itself, ext2/3/4 puts a new directory, and then the files in it,
//! in the block group of its parent, so all of a node's units share one group. On ext4 without
//! a journal, every new inode is then searched for past every inode of the group deleted in the
//! last twelve hours (the allocator skips recently deleted inodes, reading each one's inode
//! block to tell), and a node that has run many units pays more and more for each new one: on
//! the benchmark machine, making one unit's directory and four files took about 1.4 ms of
//! system CPU, and 0.09 ms once the directories were spread.
//!
//! The `T` attribute (`FS_TOPDIR_FL`, `chattr +T`) is the filesystem's own hint for this: the
//! subdirectories of a directory marked so are unrelated hierarchies, and the Orlov allocator
//! spreads them over the block groups with the most room. Other filesystems do not know the
//! attribute; there it is left alone.

use std::io;
use std::path::Path;

/// Creates `dir` with its parents (0700) if it is not there, and marks it so that the
/// filesystem spreads its subdirectories ([`spread_subdirectories`]; a filesystem that cannot
/// is no error). Errors are the creation's.
pub fn prepare(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let _ = spread_subdirectories(dir);
    Ok(())
}

/// Sets the `T` attribute (`FS_TOPDIR_FL`) on directory `dir`, keeping its other attributes.
/// Fails where the filesystem has no such attributes (`ENOTTY`, `EOPNOTSUPP`) or the caller
/// may not set them.
#[cfg(target_os = "linux")]
pub fn spread_subdirectories(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let f = std::fs::File::open(dir)?;
    // The kernel reads and writes an int here, whatever the request's encoded size says.
    let mut flags: libc::c_int = 0;
    // SAFETY: `f` is an open descriptor for the call's duration, and `flags` is a valid int
    // the kernel writes the attributes to.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: as above; the kernel reads the int.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// No such attribute outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn spread_subdirectories(_dir: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd as _;

    fn flags(dir: &Path) -> libc::c_int {
        let f = std::fs::File::open(dir).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: as in `spread_subdirectories`.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        assert_eq!(rc, 0);
        flags
    }

    #[test]
    fn prepares_the_directory_and_marks_it_where_the_filesystem_can() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = std::env::temp_dir().join(format!("unit-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("data").join("node");
        prepare(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        match spread_subdirectories(&dir) {
            Ok(()) => {
                assert_ne!(flags(&dir) & 0x0002_0000, 0, "T attribute not set");
                // Again is fine, and other attributes stay.
                spread_subdirectories(&dir).unwrap();
            }
            // tmpfs and others: no attributes at all.
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL)
                ),
                "{e}"
            ),
        }
        // A missing directory is an error.
        assert!(spread_subdirectories(&base.join("missing")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
