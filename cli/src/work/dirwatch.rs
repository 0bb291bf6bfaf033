//! Change notification for unit directories: one inotify instance for the node, a watch per
//! unit directory. Any write to a unit's `status` or `stdout` (by its command-runner
//! supervisor, the command itself, or this process) wakes whoever waits on the unit
//! ([`Unit::touch`]): results streams, long-polled `work status`. Without inotify (not Linux,
//! or out of watches) waiters fall back to polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tracing::debug;

use super::{Unit, lock};

/// The node's watcher.
pub(super) struct DirWatch {
    #[cfg(target_os = "linux")]
    inner: linux::Inner,
    /// Units by watch descriptor.
    units: Mutex<HashMap<i32, Weak<Unit>>>,
}

impl std::fmt::Debug for DirWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatch").finish_non_exhaustive()
    }
}

impl DirWatch {
    /// A watcher with its reader thread, or `None` where there is none (not Linux, no
    /// inotify).
    pub(super) fn start() -> Option<Arc<Self>> {
        #[cfg(target_os = "linux")]
        {
            let inner = match linux::Inner::new() {
                Ok(i) => i,
                Err(e) => {
                    debug!("no inotify ({e}): unit changes are polled");
                    return None;
                }
            };
            let w = Arc::new(Self {
                inner,
                units: Mutex::new(HashMap::new()),
            });
            let reader = w.clone();
            let spawned = std::thread::Builder::new()
                .name("unit-watch".into())
                .spawn(move || linux::read_events(&reader));
            if let Err(e) = spawned {
                debug!("no inotify thread ({e}): unit changes are polled");
                return None;
            }
            Some(w)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// Watches `unit`'s directory; whether it is watched (else its waiters poll).
    pub(super) fn add(&self, unit: &Arc<Unit>) -> bool {
        #[cfg(target_os = "linux")]
        {
            match self.inner.add(&unit.dir) {
                Ok(wd) => {
                    lock(&self.units).insert(wd, Arc::downgrade(unit));
                    true
                }
                Err(e) => {
                    debug!("[{}] cannot watch {}: {e}", unit.id, unit.dir.display());
                    false
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = unit;
            false
        }
    }

    /// Something happened in the directory watched as `wd`; `gone` when the watch ended (the
    /// directory was deleted).
    /// `status`: the status file changed, so the unit's state is read (and a change logged).
    fn event(&self, wd: i32, gone: bool, status: bool) {
        let unit = {
            let mut units = lock(&self.units);
            if gone {
                units.remove(&wd)
            } else {
                units.get(&wd).cloned()
            }
        };
        if let Some(u) = unit.and_then(|w| w.upgrade()) {
            if status && !gone {
                u.refresh_from_watch();
            }
            u.touch();
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::path::Path;
    use std::sync::Arc;

    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

    use super::DirWatch;

    pub(super) struct Inner {
        fd: OwnedFd,
    }

    impl Inner {
        pub(super) fn new() -> std::io::Result<Self> {
            Ok(Self {
                fd: inotify::init(CreateFlags::CLOEXEC)?,
            })
        }

        /// Writes to and creation of files in `dir`, and its deletion.
        pub(super) fn add(&self, dir: &Path) -> std::io::Result<i32> {
            let flags = WatchFlags::MODIFY
                | WatchFlags::CLOSE_WRITE
                | WatchFlags::CREATE
                | WatchFlags::MOVED_TO
                | WatchFlags::DELETE
                | WatchFlags::DELETE_SELF
                | WatchFlags::ONLYDIR;
            Ok(inotify::add_watch(&self.fd, dir, flags)?)
        }
    }

    /// Reads events for as long as the process runs (a thread of its own: the reads block).
    pub(super) fn read_events(watch: &Arc<DirWatch>) {
        let mut buf = vec![MaybeUninit::<u8>::uninit(); 16 * 1024];
        let mut reader = inotify::Reader::new(&watch.inner.fd, &mut buf);
        // Several events in a row for one directory wake its unit once.
        let mut last = None;
        loop {
            if reader.is_buffer_empty() {
                last = None;
            }
            match reader.next() {
                Ok(ev) => {
                    let gone = ev.events().contains(ReadFlags::IGNORED);
                    // Only the files waiters care about: every status read writes
                    // `status.lock`, and waking on that would wake its readers again.
                    let name = ev.file_name().map(|n| n.to_bytes());
                    // A status record written whole: closed after a write in place, or
                    // renamed into place. Not the write itself (one write in place is a
                    // modification and, when it shrinks, a second one), nor its deletion by
                    // a release, where reading it would leave a lock file in the way.
                    let status = name == Some(b"status".as_slice())
                        && ev
                            .events()
                            .intersects(ReadFlags::CLOSE_WRITE | ReadFlags::MOVED_TO);
                    let relevant = status || name.is_none_or(|n| n == b"stdout");
                    if !relevant {
                        continue;
                    }
                    if gone || status || last != Some(ev.wd()) {
                        watch.event(ev.wd(), gone, status);
                    }
                    last = Some(ev.wd());
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    tracing::warn!("reading inotify events: {e}; unit changes are polled");
                    return;
                }
            }
        }
    }
}
