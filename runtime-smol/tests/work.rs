//! Units of work on smol through core's lifecycle engine: real processes, unit directories,
//! cancel, release, and a node started again over the same directory.

use std::path::PathBuf;

use receptor_core::work::{
    STATE_CANCELED, STATE_FAILED, STATE_RUNNING, STATE_SUCCEEDED, WorkError,
};
use receptor_smol::work::Work;

/// A fresh directory, removed when dropped (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("receptor-smol-work-{tag}-{}", std::process::id()));
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

#[test]
fn command_units_run_cancel_release_and_survive_a_restart() {
    let tmp = TempDir::new("life");
    async_io::block_on(async {
        let work = Work::new(tmp.0.clone(), 1);
        work.register("cat", "cat", "");
        work.register("fail", "sh", "-c 'echo oops; exit 3'");
        work.register("sleep", "sleep", "30");

        // Payload in, output out.
        let id = work.submit("cat", b"hello from smol\n").await.unwrap();
        let done = work.wait(&id).await.unwrap();
        assert_eq!(
            (done.state, done.detail.as_str()),
            (STATE_SUCCEEDED, "exit status 0")
        );
        assert_eq!(done.stdout_size, 16);
        assert_eq!(work.results(&id).unwrap(), b"hello from smol\n");
        let on_disk = std::fs::read_to_string(tmp.0.join(&id).join("status")).unwrap();
        assert!(
            on_disk.starts_with("{\"State\":2,\"Detail\":\"exit status 0\""),
            "{on_disk}"
        );

        let failed = work.submit("fail", b"").await.unwrap();
        let st = work.wait(&failed).await.unwrap();
        assert_eq!(
            (st.state, st.detail.as_str()),
            (STATE_FAILED, "exit status 3")
        );
        assert_eq!(work.results(&failed).unwrap(), b"oops\n");

        // A running unit is cancelled (its process killed), then released (directory gone).
        let long = work.submit("sleep", b"").await.unwrap();
        assert_eq!(work.status(&long).unwrap().state, STATE_RUNNING);
        work.cancel(&long).await.unwrap();
        let st = work.status(&long).unwrap();
        assert_eq!((st.state, st.detail.as_str()), (STATE_CANCELED, "Canceled"));
        work.release(&long, false).await.unwrap();
        assert!(work.status(&long).is_none());
        assert!(!tmp.0.join(&long).exists());
        assert_eq!(
            work.release(&long, false).await,
            Err(WorkError::UnknownUnit(long.clone()))
        );
        work.release(&long, true).await.unwrap();
        assert_eq!(
            work.submit("nope", b"").await,
            Err(WorkError::Worker("unknown work type nope".into()))
        );

        // One still running when the node stops, one that never got its payload started.
        let running = work.submit("sleep", b"").await.unwrap();
        let pending = tmp.0.join("pending1");
        std::fs::create_dir(&pending).unwrap();
        std::fs::write(
            pending.join("status"),
            "{\"State\":0,\"Detail\":\"Waiting for Input Data\",\"StdoutSize\":0,\"WorkType\":\"cat\",\"ExtraData\":{\"Pid\":0,\"Params\":\"\"}}\n",
        )
        .unwrap();
        drop(work);

        // Started again over the same directory: Go's restart rules, through the engine.
        let again = Work::new(tmp.0.clone(), 2);
        again.register("cat", "cat", "");
        again.register("sleep", "sleep", "30");
        again.scan();
        let st = again.status(&id).unwrap();
        assert_eq!(
            (st.state, st.detail.as_str()),
            (STATE_SUCCEEDED, "exit status 0")
        );
        // "fail" is not registered any more: listed as it was, never started.
        assert_eq!(again.status(&failed).unwrap().detail, "exit status 3");
        let st = again.status("pending1").unwrap();
        assert_eq!(
            (st.state, st.detail.as_str()),
            (STATE_FAILED, "Pending at restart")
        );
        let st = again.status(&running).unwrap();
        assert_eq!(st.state, STATE_FAILED);
        assert_eq!(
            st.detail,
            "Failed to restart: its process ended with the previous run"
        );
        for unit in [&id, &failed, &running] {
            again.release(unit, true).await.unwrap();
        }
        again.release("pending1", false).await.unwrap();
        assert_eq!(std::fs::read_dir(&tmp.0).unwrap().count(), 0);
    });
}
