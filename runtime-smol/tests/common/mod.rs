//! Set-up shared by the smol integration tests: configs, link specs on 127.0.0.1, waits
//! that fail the test instead of hanging it, temp dirs, and the real receptorctl.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_io::Timer;
use futures_lite::future;
use receptor_core::{Config, LinkConfig, LinkKind, NodeId};
use receptor_smol::NodeHandle;
use receptor_smol::backends::{DialSpec, ListenSpec};

/// A node config with `seed`; the wall clock is now.
pub fn config_seeded(id: &str, seed: u64) -> Arc<Config> {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    Arc::new(Config::new(NodeId::new(id).unwrap(), seed, wall))
}

/// Default link parameters of `kind`.
pub fn link(kind: LinkKind) -> Arc<LinkConfig> {
    Arc::new(LinkConfig::new(kind))
}

/// A listener on 127.0.0.1 with a free port.
pub fn listen_spec(kind: LinkKind) -> ListenSpec {
    ListenSpec {
        bind: "127.0.0.1".into(),
        port: 0,
        link: link(kind),
        tls: None,
    }
}

/// A redialing peer of `addr`.
pub fn dial_spec(addr: SocketAddr, kind: LinkKind) -> DialSpec {
    DialSpec {
        address: addr.to_string(),
        redial: true,
        link: link(kind),
        tls: None,
    }
}

/// Fails the test instead of hanging it.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    let timeout = async {
        Timer::after(Duration::from_secs(secs)).await;
        panic!("timed out: {what}");
    };
    future::or(f, timeout).await
}

/// Waits (up to 5 s) until `n` has a route to `to`.
pub async fn wait_route(n: &NodeHandle, to: &str) {
    for _ in 0..200 {
        if n.status().await.unwrap().routes.contains_key(to) {
            return;
        }
        Timer::after(Duration::from_millis(25)).await;
    }
    panic!("{} never got a route to {to}", n.id());
}

/// Waits (up to 5 s) on the tokio side until `n` has a route to `to`.
pub async fn tokio_wait_route(n: &receptor_tokio::NodeHandle, to: &str) {
    for _ in 0..200 {
        if n.status().await.unwrap().routes.contains_key(to) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never got a route to {to}", n.id());
}

/// A temp directory removed on drop (control sockets live there).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "receptor-smol-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the real `receptorctl` (`$RECEPTORCTL`, else the workspace's `.venv`) on a control
/// socket; returns whether it succeeded and its stdout and stderr.
pub fn receptorctl(sock: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let bin = std::env::var_os("RECEPTORCTL").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/receptorctl"),
        std::path::PathBuf::from,
    );
    assert!(
        bin.exists(),
        "receptorctl not found at {}: run `bash .ci/run` (it installs it) or set RECEPTORCTL",
        bin.display()
    );
    let o = std::process::Command::new(&bin)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.success(), text(&o.stdout), text(&o.stderr))
}

/// The `Unit ID: X` line of a submit without `--follow`.
pub fn unit_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Unit ID: "))
        .unwrap_or_else(|| panic!("no unit ID in {out:?}"))
        .trim()
        .to_owned()
}
