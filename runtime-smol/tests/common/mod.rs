//! Set-up shared by the smol integration tests: configs, link specs on 127.0.0.1, and waits
//! that fail the test instead of hanging it.

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
// Not every test binary meshes with tokio nodes.
#[allow(dead_code)]
pub async fn tokio_wait_route(n: &receptor_tokio::NodeHandle, to: &str) {
    for _ in 0..200 {
        if n.status().await.unwrap().routes.contains_key(to) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never got a route to {to}", n.id());
}
