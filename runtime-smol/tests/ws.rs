//! WebSocket backends of the smol runtime: ws between smol and tokio nodes both ways, what a
//! dialer's upgrade request carries, a listener refusing another path, and wss with mutual
//! TLS and bound node IDs among smol and tokio nodes.

use std::net::SocketAddr;
use std::sync::Arc;

use async_net::TcpListener;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use receptor_core::{LinkConfig, LinkKind};
use receptor_smol::backends::{
    DialError, ListenSpec, WsDialSpec, WsListenSpec, ws_connect, ws_dial, ws_listen,
};
use receptor_smol::spawn_node;
use receptor_smol::tls::ALPN_HTTP11;
mod common;
use common::{config_seeded, tokio_wait_route, wait_route, within};
#[allow(dead_code)]
mod pki;
use pki::Pki;

fn link(bind: bool) -> Arc<LinkConfig> {
    let mut l = LinkConfig::new(LinkKind::Stream);
    l.bind_node_id = bind;
    Arc::new(l)
}

fn listen(path: &str, tls: Option<Arc<rustls::ServerConfig>>) -> WsListenSpec {
    let bind = tls.is_some();
    WsListenSpec {
        listen: ListenSpec {
            bind: "127.0.0.1".into(),
            port: 0,
            link: link(bind),
            tls,
        },
        path: path.into(),
    }
}

fn dial(url: String, tls: Option<Arc<rustls::ClientConfig>>, header: Option<&str>) -> WsDialSpec {
    WsDialSpec {
        url,
        redial: true,
        link: link(tls.is_some()),
        tls,
        extra_header: header.map(str::to_owned),
    }
}

/// tokio t1 listens on ws `/mesh` and smol s dials it (with an extra header); s listens on
/// ws `/` and tokio t2 dials it on another path. Pings cross the mesh both ways.
#[test]
fn smol_ws_and_tokio_ws_both_ways() {
    use receptor_tokio::backends as tb;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let t1 = receptor_tokio::spawn_node(config_seeded("t1", 1)).unwrap();
    let t2 = receptor_tokio::spawn_node(config_seeded("t2", 2)).unwrap();
    let s = spawn_node(config_seeded("s", 3)).unwrap();
    let t1_spec = WsListenSpec {
        listen: ListenSpec {
            bind: "127.0.0.1".into(),
            port: 0,
            link: link(false),
            tls: None,
        },
        path: "/mesh".into(),
    };
    let (t1_addr, _t1_listener) = rt.block_on(tb::ws_listen(&t1, t1_spec)).unwrap();
    async_io::block_on(within(30, "smol side", async {
        let url = format!("ws://{t1_addr}/mesh");
        let dialer = ws_dial(&s, dial(url, None, Some("X-Receptor: yes")));
        let (s_addr, listener) = ws_listen(&s, listen("/", None)).await.unwrap();
        listener.detach();
        dialer.detach();
        let t2_spec = WsDialSpec {
            url: format!("ws://{s_addr}/any/path"),
            redial: true,
            link: link(false),
            tls: None,
            extra_header: None,
        };
        // Spawned on `rt` (entered above).
        let _t2_dialer = tb::ws_dial(&t2, t2_spec);
        wait_route(&s, "t1").await;
        wait_route(&s, "t2").await;
        // A node answers a ping along its own routes: the tokio nodes need theirs too (the
        // `rt` entered above runs their timers).
        tokio_wait_route(&t1, "s").await;
        tokio_wait_route(&t2, "s").await;
        for to in ["t1", "t2"] {
            let r = s.ping(to).await.unwrap().unwrap();
            assert_eq!(r.error, None, "s -> {to}");
            assert_eq!(r.from.unwrap().as_str(), to);
        }
    }));
    let r = rt.block_on(async {
        tokio_wait_route(&t1, "t2").await;
        tokio_wait_route(&t2, "t1").await;
        t1.ping("t2").await.unwrap().unwrap()
    });
    assert_eq!(r.error, None, "t1 -> t2 through s");
    async_io::block_on(s.shutdown());
    rt.block_on(t1.shutdown());
    rt.block_on(t2.shutdown());
}

/// The upgrade request names the URL's path, an `Origin` of the URL's own authority, and the
/// extra header; a listener that answers with anything but an upgrade fails the dial with a
/// typed error.
#[test]
fn upgrade_request_carries_origin_and_extra_header() {
    async_io::block_on(within(30, "raw listener", async {
        let s = spawn_node(config_seeded("s", 1)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = async {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.unwrap();
                assert!(n > 0, "the dialer closed before its request ended");
                request.extend_from_slice(&buf[..n]);
            }
            sock.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(request).unwrap().to_ascii_lowercase()
        };
        let spec = dial(format!("ws://{addr}/mesh/x"), None, Some("X-Token: s3cret"));
        let (request, dialed) = futures_lite::future::zip(server, ws_connect(&s, &spec)).await;
        assert!(request.starts_with("get /mesh/x http/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nx-token: s3cret\r\n"), "{request}");
        let origin = format!("\r\norigin: http://{addr}\r\n");
        assert!(request.contains(&origin), "{request}");
        assert!(request.contains("\r\nupgrade: websocket\r\n"), "{request}");
        let err = dialed.unwrap_err();
        assert!(matches!(err, DialError::Upgrade(_)), "{err}");
        s.shutdown().await;
    }));
}

/// A listener on `/mesh` refuses an upgrade for another path (404), and a wss URL without a
/// TLS config is refused before any connection.
#[test]
fn listener_refuses_other_paths() {
    async_io::block_on(within(30, "wrong path", async {
        let s1 = spawn_node(config_seeded("s1", 1)).unwrap();
        let s2 = spawn_node(config_seeded("s2", 2)).unwrap();
        let (addr, _listener) = ws_listen(&s1, listen("/mesh", None)).await.unwrap();
        let err = ws_connect(&s2, &dial(format!("ws://{addr}/other"), None, None))
            .await
            .unwrap_err();
        let DialError::Upgrade(e) = &err else {
            panic!("expected a refused upgrade, got {err}");
        };
        let async_tungstenite::tungstenite::Error::Http(resp) = &**e else {
            panic!("expected an HTTP refusal, got {e}");
        };
        assert_eq!(resp.status(), 404);
        let err = ws_connect(&s2, &dial(format!("wss://{addr}/mesh"), None, None))
            .await
            .unwrap_err();
        assert!(matches!(err, DialError::NoTlsConfig), "{err}");
        s1.shutdown().await;
        s2.shutdown().await;
    }));
}

/// wss with mutual TLS and bound node IDs: smol s1 listens, smol s2 and tokio t dial it;
/// s2 reaches t through s1.
#[test]
fn wss_with_mutual_tls_among_smol_and_tokio() {
    use receptor_tokio::backends as tb;
    let pki = Pki::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let t = receptor_tokio::spawn_node(config_seeded("t", 1)).unwrap();
    let s1 = spawn_node(config_seeded("s1", 2)).unwrap();
    let s2 = spawn_node(config_seeded("s2", 3)).unwrap();
    let server = pki.server("s1", true, &[ALPN_HTTP11]);
    let s2_tls = pki.client("s2", &["s2"], &pki.ca, &pki.ca_file, &[ALPN_HTTP11]);
    let t_tls = pki.client("t", &["t"], &pki.ca, &pki.ca_file, &[ALPN_HTTP11]);
    async_io::block_on(within(30, "wss", async {
        let (addr, listener): (SocketAddr, _) =
            ws_listen(&s1, listen("/", Some(server))).await.unwrap();
        listener.detach();
        let url = format!("wss://{addr}/");
        ws_dial(&s2, dial(url.clone(), Some(s2_tls), None)).detach();
        let t_spec = WsDialSpec {
            url,
            redial: true,
            link: link(true),
            tls: Some(t_tls),
            extra_header: None,
        };
        // Spawned on `rt` (entered above).
        let _t_dialer = tb::ws_dial(&t, t_spec);
        wait_route(&s1, "s2").await;
        wait_route(&s1, "t").await;
        wait_route(&s2, "t").await;
        tokio_wait_route(&t, "s2").await;
        let r = s2.ping("t").await.unwrap().unwrap();
        assert_eq!(r.error, None);
        assert_eq!(r.from.unwrap().as_str(), "t");
        s1.shutdown().await;
        s2.shutdown().await;
    }));
    rt.block_on(t.shutdown());
}
