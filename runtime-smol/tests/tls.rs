//! TLS on the smol TCP backend, with the core's configs: smol to smol with mutual
//! authentication and `bindnodeid`, smol to tokio both ways, and refusals (a server signed by
//! a CA the dialer does not trust; a client whose certificate lacks the node ID it announces).

use std::net::SocketAddr;
use std::sync::Arc;

use receptor_core::{LinkConfig, LinkKind};
use receptor_smol::backends::{DialError, DialSpec, ListenSpec, tcp_connect, tcp_dial, tcp_listen};
use receptor_smol::spawn_node;
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

fn listen_tls(tls: Arc<rustls::ServerConfig>, bind: bool) -> ListenSpec {
    ListenSpec {
        bind: "127.0.0.1".into(),
        port: 0,
        link: link(bind),
        tls: Some(tls),
    }
}

fn dial_tls(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, bind: bool) -> DialSpec {
    DialSpec {
        address: addr.to_string(),
        redial: true,
        link: link(bind),
        tls: Some(tls),
    }
}

/// Two smol nodes over TLS, each checking the other's certificate against the CA, and each
/// binding the node ID the other announces to its certificate.
#[test]
fn smol_to_smol_with_mutual_tls_and_bound_node_ids() {
    let pki = Pki::new();
    let server = pki.server("s1", true, &[]);
    let client = pki.client("s2", &["s2"], &pki.ca, &pki.ca_file, &[]);
    async_io::block_on(within(30, "smol TLS pair", async {
        let s1 = spawn_node(config_seeded("s1", 1)).unwrap();
        let s2 = spawn_node(config_seeded("s2", 2)).unwrap();
        let (addr, _listener) = tcp_listen(&s1, listen_tls(server, true)).await.unwrap();
        let _dialer = tcp_dial(&s2, dial_tls(addr, client, true));
        wait_route(&s2, "s1").await;
        wait_route(&s1, "s2").await;
        let r = s2.ping("s1").await.unwrap().unwrap();
        assert_eq!(r.error, None);
        assert_eq!(r.from.unwrap().as_str(), "s1");
        s1.shutdown().await;
        s2.shutdown().await;
    }));
}

/// A smol dialer refuses a server whose certificate comes from a CA it does not trust, with
/// a typed error that says so.
#[test]
fn untrusted_server_ca_is_refused_with_a_typed_error() {
    let pki = Pki::new();
    let server = pki.server("s1", false, &[]);
    let client = pki.client("s2", &["s2"], &pki.ca, &pki.other_file, &[]);
    async_io::block_on(within(30, "refused dial", async {
        let s1 = spawn_node(config_seeded("s1", 1)).unwrap();
        let s2 = spawn_node(config_seeded("s2", 2)).unwrap();
        let (addr, _listener) = tcp_listen(&s1, listen_tls(server, false)).await.unwrap();
        let err = tcp_connect(&s2, &dial_tls(addr, client, false))
            .await
            .unwrap_err();
        let DialError::Handshake(h) = &err else {
            panic!("expected a handshake error, got {err}");
        };
        assert!(
            matches!(
                h.tls(),
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("not signed by a CA this node trusts (rootcas)"),
            "{text}"
        );
        assert!(!s1.status().await.unwrap().routes.contains_key("s2"));
        s1.shutdown().await;
        s2.shutdown().await;
    }));
}

/// With `bindnodeid`, a client whose (valid) certificate is for another node ID than the one
/// it announces is refused: its session ends and no route to it forms.
#[test]
fn bound_listener_refuses_a_node_id_its_certificate_lacks() {
    let pki = Pki::new();
    let server = pki.server("s1", true, &[]);
    // s2 announces "s2" with a certificate for "m".
    let client = pki.client("s2", &["m"], &pki.ca, &pki.ca_file, &[]);
    async_io::block_on(within(30, "bound refusal", async {
        let s1 = spawn_node(config_seeded("s1", 1)).unwrap();
        let s2 = spawn_node(config_seeded("s2", 2)).unwrap();
        let (addr, _listener) = tcp_listen(&s1, listen_tls(server, true)).await.unwrap();
        // The session is made (the certificate is valid), then the node refuses it before
        // its handshake completes.
        let err = tcp_connect(&s2, &dial_tls(addr, client, false))
            .await
            .unwrap_err();
        assert!(matches!(err, DialError::NotEstablished), "{err}");
        assert!(!s1.status().await.unwrap().routes.contains_key("s2"));
        s1.shutdown().await;
        s2.shutdown().await;
    }));
}

/// smol and tokio nodes over TLS both ways: tokio t1 listens and smol s dials it; s listens
/// and tokio t2 dials it. Pings cross the mesh.
#[test]
fn smol_and_tokio_over_mutual_tls() {
    use receptor_tokio::backends as tb;
    let pki = Pki::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let t1 = receptor_tokio::spawn_node(config_seeded("t1", 1)).unwrap();
    let t2 = receptor_tokio::spawn_node(config_seeded("t2", 2)).unwrap();
    let s = spawn_node(config_seeded("s", 3)).unwrap();
    let t1_spec = ListenSpec {
        bind: "127.0.0.1".into(),
        port: 0,
        link: link(true),
        tls: Some(pki.server("t1", true, &[])),
    };
    let (t1_addr, _t1_listener) = rt.block_on(tb::tcp_listen(&t1, t1_spec)).unwrap();
    let s_client = pki.client("s", &["s"], &pki.ca, &pki.ca_file, &[]);
    let s_server = pki.server("s", true, &[]);
    async_io::block_on(within(30, "smol side", async {
        let dialer = tcp_dial(&s, dial_tls(t1_addr, s_client, true));
        let (s_addr, listener) = tcp_listen(&s, listen_tls(s_server, true)).await.unwrap();
        listener.detach();
        let t2_spec = DialSpec {
            address: s_addr.to_string(),
            redial: true,
            link: link(true),
            tls: Some(pki.client("t2", &["t2"], &pki.ca, &pki.ca_file, &[])),
        };
        // Spawned on `rt` (entered above).
        let _t2_dialer = tb::tcp_dial(&t2, t2_spec);
        wait_route(&s, "t1").await;
        wait_route(&s, "t2").await;
        // A node answers a ping along its own routes: the tokio nodes need theirs too (the
        // `rt` entered above runs their timers).
        tokio_wait_route(&t1, "s").await;
        tokio_wait_route(&t2, "s").await;
        for to in ["t1", "t2"] {
            let r = s.ping(to).await.unwrap().unwrap();
            assert_eq!(r.error, None, "s -> {to}");
        }
        dialer.detach();
    }));
    let r = rt.block_on(async {
        tokio_wait_route(&t1, "t2").await;
        tokio_wait_route(&t2, "t1").await;
        t1.ping("t2").await.unwrap().unwrap()
    });
    assert_eq!(r.error, None, "t1 -> t2 through s");
    async_io::block_on(s.shutdown());
    rt.block_on(t1.shutdown());
}
