//! Proxy services with TLS between real processes on a line A -tcp- B -tcp- C: mesh TLS
//! (ConnType 2) with node-ID certificates, TLS on a `tcp-server`'s local listener, TLS from a
//! `tcp-client` to its target, and the insecure mode refusing a real certificate.

mod proxy_support;
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use proxy_support::*;
use support::*;

/// A test CA issuing node certificates with the Receptor node-ID SAN (as `cert-signreq`).
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, "proxy test CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A certificate for `localhost` / 127.0.0.1 and the node IDs given: (cert DER, key DER,
    /// cert file, key file).
    fn issue(&self, dir: &TempDir, name: &str, node_ids: &[&str]) -> (Vec<u8>, Vec<u8>, String) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, SanType};
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth];
        p.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress([127, 0, 0, 1].into()),
        ];
        for id in node_ids {
            let oid = vec![1, 3, 6, 1, 4, 1, 2312, 19, 1];
            p.subject_alt_names
                .push(SanType::OtherName((oid, (*id).into())));
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        std::fs::write(dir.path(&format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
        let stem = dir.path(name).display().to_string();
        (cert.der().to_vec(), key.serialize_der(), stem)
    }
}

fn tls_provider() -> Arc<receptor_tokio::rustls::crypto::CryptoProvider> {
    Arc::new(receptor_tokio::rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS echo server on 127.0.0.1 with the given certificate.
fn tls_echo_server(cert: Vec<u8>, key: Vec<u8>) -> SocketAddr {
    use receptor_tokio::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use receptor_tokio::rustls::{ServerConfig, ServerConnection, StreamOwned};
    let config = ServerConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let config = Arc::new(config);
    serve(move |s| {
        let conn = ServerConnection::new(config.clone()).unwrap();
        let mut tls = StreamOwned::new(conn, s);
        let _ = echo(&mut tls);
        tls.conn.send_close_notify();
        let _ = tls.flush();
    })
}

/// Echoes `data` over TLS to `localhost` at `port` (trusting `ca`), half-closing with
/// close_notify after writing.
fn tls_echo_round_trip(port: u16, ca: &[u8], data: &[u8]) -> Vec<u8> {
    use receptor_tokio::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
    let mut roots = RootCertStore::empty();
    roots.add(ca.to_vec().into()).unwrap();
    let config = ClientConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    tls.write_all(data).unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let mut got = Vec::new();
    match tls.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("TLS read: {e}"),
    }
    got
}

#[test]
fn tcp_proxies_with_tls_on_every_side() {
    let dir = TempDir::new("pxtls");
    let ca = Ca::new();
    let ca_file = dir.path("ca.crt");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let ca_file = ca_file.display().to_string();
    let (_, _, a) = ca.issue(&dir, "A", &["A"]);
    let (_, _, c) = ca.issue(&dir, "C", &["C"]);
    let (srv_der, srv_key, _) = ca.issue(&dir, "target", &[]);
    let (echo_addr, _) = echo_server();
    let tls_target = tls_echo_server(srv_der, srv_key);
    let [p1, p2, p3, p4] = [free_port(), free_port(), free_port(), free_port()];
    let server = |port: u16, service: &str, more: &[(&str, String)]| {
        let mut params = vec![
            ("port", port.to_string()),
            ("bindaddr", "127.0.0.1".to_owned()),
            ("remotenode", "C".to_owned()),
            ("remoteservice", service.to_owned()),
        ];
        params.extend(more.iter().cloned());
        ent("tcp-server", &params)
    };
    let a_yaml = ent(
        "tls-client",
        &[
            ("name", "meshcli".into()),
            ("cert", format!("{a}.crt")),
            ("key", format!("{a}.key")),
            ("rootcas", ca_file.clone()),
        ],
    ) + &ent(
        "tls-server",
        &[
            ("name", "local".into()),
            ("cert", format!("{a}.crt")),
            ("key", format!("{a}.key")),
        ],
    ) + &server(p1, "secho", &[("tlsclient", "meshcli".into())])
        + &server(p2, "secho", &[])
        + &server(
            p3,
            "secho",
            &[
                ("tlsserver", "local".into()),
                ("tlsclient", "meshcli".into()),
            ],
        )
        + &server(p4, "techo", &[]);
    let c_yaml = ent(
        "tls-server",
        &[
            ("name", "meshsrv".into()),
            ("cert", format!("{c}.crt")),
            ("key", format!("{c}.key")),
            ("clientcas", ca_file.clone()),
        ],
    ) + &ent(
        "tls-client",
        &[
            ("name", "outcli".into()),
            ("cert", format!("{c}.crt")),
            ("key", format!("{c}.key")),
            ("rootcas", ca_file),
        ],
    ) + &ent(
        "tcp-client",
        &[
            ("service", "secho".into()),
            ("address", echo_addr.to_string()),
            ("tlsserver", "meshsrv".into()),
        ],
    ) + &ent(
        "tcp-client",
        &[
            ("service", "techo".into()),
            ("address", format!("localhost:{}", tls_target.port())),
            ("tlsclient", "outcli".into()),
        ],
    );
    let l = line_in(dir, &a_yaml, &c_yaml);
    let ad = l.ad("secho");
    assert_eq!(ad["ConnType"], 2, "{ad}");
    assert_eq!(l.ad("techo")["ConnType"], 1);

    // Mesh TLS with node-ID certificates both ways.
    l.check(|| echo_round_trip(([127, 0, 0, 1], p1).into(), 1 << 20, 11));
    // Without a tls-client the dial fails (the insecure mode refuses a real certificate)
    // and the TCP client is cut off.
    let mut s = TcpStream::connect(("127.0.0.1", p2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(b"never echoed");
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    let timed_out =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    assert!(
        matches!(&r, Ok(0)) || r.as_ref().is_err_and(|e| !timed_out(e)),
        "{r:?}\n{}",
        l.logs()
    );
    // TLS on the local listener, then mesh TLS.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let ca_der = ca.cert.der().to_vec();
    assert!(tls_echo_round_trip(p3, &ca_der, &data) == data);
    // TLS from the far tcp-client to its target (host name checked against "localhost").
    l.check(|| echo_round_trip(([127, 0, 0, 1], p4).into(), 1 << 20, 12));
    assert!(l.logs().contains("Error connecting on Receptor network"));
}

#[test]
fn mesh_tls_requiring_client_certs_binds_them_to_the_dialing_node() {
    let dir = TempDir::new("pxtlsreq");
    let ca = Ca::new();
    let ca_file = dir.path("ca.crt");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let ca_file = ca_file.display().to_string();
    let (_, _, a) = ca.issue(&dir, "A", &["A"]);
    let (_, _, z) = ca.issue(&dir, "Z", &["Z"]);
    let (_, _, c) = ca.issue(&dir, "C", &["C"]);
    let (echo_addr, _) = echo_server();
    let (good, bad) = (free_port(), free_port());
    let client = |name: &str, stem: &str| {
        ent(
            "tls-client",
            &[
                ("name", name.into()),
                ("cert", format!("{stem}.crt")),
                ("key", format!("{stem}.key")),
                ("rootcas", ca_file.clone()),
                ("skipreceptornamescheck", "true".into()),
            ],
        )
    };
    let server = |port: u16, tls: &str| {
        ent(
            "tcp-server",
            &[
                ("port", port.to_string()),
                ("bindaddr", "127.0.0.1".into()),
                ("remotenode", "C".into()),
                ("remoteservice", "secho".into()),
                ("tlsclient", tls.into()),
            ],
        )
    };
    // A presents its own certificate on one port, one for node Z on the other.
    let a_yaml =
        client("mine", &a) + &client("other", &z) + &server(good, "mine") + &server(bad, "other");
    let c_yaml = ent(
        "tls-server",
        &[
            ("name", "meshsrv".into()),
            ("cert", format!("{c}.crt")),
            ("key", format!("{c}.key")),
            ("requireclientcert", "true".into()),
            ("clientcas", ca_file.clone()),
        ],
    ) + &ent(
        "tcp-client",
        &[
            ("service", "secho".into()),
            ("address", echo_addr.to_string()),
            ("tlsserver", "meshsrv".into()),
        ],
    );
    let l = line_in(dir, &a_yaml, &c_yaml);
    assert_eq!(l.ad("secho")["ConnType"], 2);
    l.check(|| echo_round_trip(([127, 0, 0, 1], good).into(), 1 << 20, 13));
    let mut s = TcpStream::connect(("127.0.0.1", bad)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    let timed_out =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    assert!(
        matches!(&r, Ok(0)) || r.as_ref().is_err_and(|e| !timed_out(e)),
        "{r:?}\n{}",
        l.logs()
    );
}
