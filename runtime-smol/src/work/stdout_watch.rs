//! Wakes a command unit's results streams when its child writes to its stdout file: one
//! inotify instance per node (instances are few per user, watches are many), a watch per
//! running child's stdout, read by a task on the node's executor through the reactor. The
//! child writes the file itself, so nothing else in this process hears of it. Where there is
//! no watcher (no node to run the task, out of instances), streams poll the file.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_executor::Task;
use async_io::Async;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::unit::{Unit, lock};
use crate::NodeHandle;

/// The node's watcher of its children's stdout files.
#[derive(Debug)]
pub(super) struct StdoutWatch {
    fd: Async<OwnedFd>,
    /// Units by watch descriptor.
    units: Mutex<HashMap<i32, Weak<Unit>>>,
    /// Whether its events are still read.
    alive: AtomicBool,
}

/// One unit's stdout watched, until dropped (its child ended).
#[derive(Debug)]
pub(super) struct Watched {
    watch: Arc<StdoutWatch>,
    wd: i32,
}

impl StdoutWatch {
    /// A watcher and the task on `node` that reads its events (dropping it stops them);
    /// `None` where there is none.
    pub(super) fn start(node: &NodeHandle) -> Option<(Arc<Self>, Task<()>)> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| tracing::debug!("no inotify ({e}): running units' stdout is polled"))
            .ok()?;
        let watch = Arc::new(Self {
            fd: Async::new(fd).ok()?,
            units: Mutex::default(),
            alive: AtomicBool::new(true),
        });
        let reader = node.spawn(read_events(watch.clone()));
        Some((watch, reader))
    }

    /// Watches writes to `unit`'s stdout (`None`: they cannot be watched).
    pub(super) fn watch(self: &Arc<Self>, unit: &Arc<Unit>) -> Option<Watched> {
        let wd = inotify::add_watch(self.fd.get_ref(), unit.stdout_path(), WatchFlags::MODIFY)
            .map_err(|e| tracing::debug!("watching {}: {e}", unit.dir.display()))
            .ok()?;
        lock(&self.units).insert(wd, Arc::downgrade(unit));
        Some(Watched {
            watch: self.clone(),
            wd,
        })
    }

    /// Its events are no longer read: streams poll again (woken now to start).
    fn stopped(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.wake(None);
    }

    /// Wakes the results streams of the unit watched as `wd` (every unit's: `None`).
    fn wake(&self, wd: Option<i32>) {
        let units: Vec<Arc<Unit>> = match wd {
            Some(wd) => lock(&self.units)
                .get(&wd)
                .and_then(Weak::upgrade)
                .into_iter()
                .collect(),
            None => lock(&self.units)
                .values()
                .filter_map(Weak::upgrade)
                .collect(),
        };
        for unit in units {
            unit.notify_output();
        }
    }
}

impl Watched {
    /// Whether writes to the file wake its streams (the watcher's events are still read).
    pub(super) fn live(&self) -> bool {
        self.watch.alive.load(Ordering::Relaxed)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        lock(&self.watch.units).remove(&self.wd);
        // Gone already when the file was (a released unit): nothing to undo then.
        let _ = inotify::remove_watch(self.watch.fd.get_ref(), self.wd);
    }
}

/// Reads events while the node runs; each batch wakes each unit written to once.
async fn read_events(watch: Arc<StdoutWatch>) {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 4096];
    loop {
        if let Err(e) = watch.fd.readable().await {
            watch.stopped();
            return tracing::warn!("waiting for inotify events: {e}; stdout is polled");
        }
        let mut woken = Vec::new();
        let mut all = false;
        let mut reader = inotify::Reader::new(watch.fd.get_ref(), &mut buf);
        loop {
            match reader.next() {
                Ok(ev) if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) => all = true,
                Ok(ev) => {
                    if !woken.contains(&ev.wd()) {
                        woken.push(ev.wd());
                    }
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(e) => {
                    watch.stopped();
                    return tracing::warn!("reading inotify events: {e}; stdout is polled");
                }
            }
        }
        if all {
            watch.wake(None);
        } else {
            for wd in woken {
                watch.wake(Some(wd));
            }
        }
    }
}
