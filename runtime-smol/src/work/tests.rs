//! Long-polled `work status` wakes on the unit's changes, not on a timer.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::future;
use receptor_core::control::StatusWait;
use receptor_core::work::{STATE_CANCELED, STATE_RUNNING, STATE_SUCCEEDED};

use super::Work;

/// A fresh directory, removed when dropped (also when the test fails).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "receptor-smol-statuswait-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A wait for news on what `work` says of `id` now, of at most `millis`.
fn wait_for_news(work: &Work, id: &str, millis: u64) -> StatusWait {
    let st = work.unit_status(id).unwrap();
    assert_eq!(st.state, STATE_RUNNING);
    StatusWait {
        state: st.state,
        detail: st.detail,
        millis,
    }
}

fn looks(work: &Work) -> u64 {
    work.status_wait_looks.swap(0, Ordering::Relaxed)
}

// The bounds on looks are loose: a timer-driven wait (every 20 ms) makes about 75 looks in an
// idle 1.5 s and some 15 before a 0.3 s child exits; a woken one makes one per change.

#[test]
fn an_idle_long_poll_looks_once_and_answers_at_its_deadline() {
    let tmp = TempDir::new("idle");
    let work = Work::new(tmp.0.clone(), 1);
    work.register("sleep", "sleep", "30");
    async_io::block_on(async {
        let id = work.submit("sleep", b"").await.unwrap();
        let wait = wait_for_news(&work, &id, 1500);
        let t0 = Instant::now();
        let st = work.unit_status_wait(&id, &wait).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(1500));
        assert_eq!((st.state, &st.detail), (wait.state, &wait.detail));
        let n = looks(&work);
        assert!(n <= 3, "{n} looks at an idle unit");
        work.cancel(&id).await.unwrap();
    });
}

#[test]
fn a_long_poll_answers_when_the_child_exits() {
    let tmp = TempDir::new("exit");
    // No node: nothing else reaps the child; the long-poll itself hears of its exit.
    let work = Work::new(tmp.0.clone(), 2);
    work.register("nap", "sleep", "0.3");
    async_io::block_on(async {
        let id = work.submit("nap", b"").await.unwrap();
        let wait = wait_for_news(&work, &id, 20_000);
        let t0 = Instant::now();
        let st = work.unit_status_wait(&id, &wait).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert_eq!(
            (st.state, st.detail.as_str()),
            (STATE_SUCCEEDED, "exit status 0")
        );
        let n = looks(&work);
        assert!(n <= 4, "{n} looks before one change");
    });
}

#[test]
fn a_long_poll_answers_when_the_unit_is_cancelled_or_released() {
    let tmp = TempDir::new("cancel");
    let work = Work::new(tmp.0.clone(), 3);
    work.register("sleep", "sleep", "30");
    async_io::block_on(async {
        let id = work.submit("sleep", b"").await.unwrap();
        let wait = wait_for_news(&work, &id, 20_000);
        let t0 = Instant::now();
        let cancel = async {
            async_io::Timer::after(Duration::from_millis(200)).await;
            work.cancel(&id).await.unwrap();
        };
        let (st, ()) = future::zip(work.unit_status_wait(&id, &wait), cancel).await;
        let st = st.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert_eq!(st.state, STATE_CANCELED);
        let n = looks(&work);
        assert!(n <= 4, "{n} looks before one change");

        // Canceled, it waits again; its release answers `unknown work unit`.
        let wait = StatusWait {
            state: st.state,
            detail: st.detail,
            millis: 20_000,
        };
        let release = async {
            async_io::Timer::after(Duration::from_millis(200)).await;
            work.release(&id, false).await.unwrap();
        };
        let (gone, ()) = future::zip(work.unit_status_wait(&id, &wait), release).await;
        assert!(gone.is_err(), "{gone:?}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    });
}

#[test]
fn a_results_stream_follows_a_child_to_its_exit() {
    let tmp = TempDir::new("results");
    // No node: the stream itself hears of the child's exit.
    let work = std::sync::Arc::new(Work::new(tmp.0.clone(), 4));
    work.register("two", "sh", "-c 'echo one; sleep 0.3; echo two'");
    async_io::block_on(async {
        let id = work.submit("two", b"").await.unwrap();
        let mut out = Vec::new();
        let t0 = Instant::now();
        work.results_stream(&id, 0).unwrap().run(&mut out).await;
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert_eq!(out, b"one\ntwo\n");
        assert_eq!(work.status(&id).unwrap().state, STATE_SUCCEEDED);
    });
}

#[test]
fn on_a_node_a_results_stream_wakes_on_writes_not_on_a_timer() {
    let tmp = TempDir::new("watched");
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let config = receptor_core::Config::new(receptor_core::NodeId::new("w").unwrap(), 5, wall);
    let node = crate::spawn_node(std::sync::Arc::new(config)).unwrap();
    let work = std::sync::Arc::new(Work::new(tmp.0.clone(), 5).with_node(node.clone(), None));
    work.register(
        "slow",
        "sh",
        "-c 'echo one; sleep 1; echo two; sleep 1; echo three'",
    );
    async_io::block_on(async {
        let id = work.submit("slow", b"").await.unwrap();
        let mut out = Vec::new();
        let t0 = Instant::now();
        work.results_stream(&id, 0).unwrap().run(&mut out).await;
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert_eq!(out, b"one\ntwo\nthree\n");
        // A 100 ms poll looks some 20 times in these 2 s; woken, a stream looks about once
        // per write and once per change of the record.
        let n = work.results_looks.load(Ordering::Relaxed);
        assert!(n <= 10, "{n} looks");
        node.shutdown().await;
    });
}
