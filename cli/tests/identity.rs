//! `bindnodeid` on TLS backends, between real processes: a peer whose CA-signed certificate
//! does not carry the node ID it announces is refused, and both logs say why; without the
//! option the node behaves as Go (accepted); Go-made certificates pass when their ID matches.

mod common;
mod support;

use std::path::Path;
use std::time::Duration;

use support::certs::Ca;
use support::*;

/// A node with a control socket, `log-level: debug`, and `extra` items.
fn node_yaml(dir: &TempDir, id: &str, extra: &str) -> String {
    let sock = dir.path(&format!("{id}.sock")).display().to_string();
    format!(
        "- node:\n    id: {id}\n- log-level: debug\n- control-service:\n    filename: {sock}\n{extra}"
    )
}

/// A `tls-server` named `srv` that requires client certificates from `ca`.
fn server_tls(crt: &str, key: &str, ca: &str, bind: bool) -> String {
    format!(
        "- tls-server:\n    name: srv\n    cert: {crt}\n    key: {key}\n    requireclientcert: true\n    \
         clientcas: {ca}\n    bindnodeid: {bind}\n"
    )
}

/// A `tls-client` named `cli`; the names check is skipped so that a node can run with a
/// certificate made for another node.
fn client_tls(crt: &str, key: &str, ca: &str, bind: bool) -> String {
    format!(
        "- tls-client:\n    name: cli\n    cert: {crt}\n    key: {key}\n    rootcas: {ca}\n    \
         skipreceptornamescheck: true\n    bindnodeid: {bind}\n"
    )
}

fn tcp_listener(port: u16) -> String {
    format!("- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n    tls: srv\n")
}

fn tcp_peer(port: u16) -> String {
    format!("- tcp-peer:\n    address: localhost:{port}\n    tls: cli\n")
}

fn connected(sock: &Path, peer: &str) -> bool {
    status_json(sock)["RoutingTable"][peer] == peer
}

fn wait_log(p: &Proc, text: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{} to log {text:?}", p.name),
        || p.log_text().contains(text),
    );
}

#[test]
fn bound_server_refuses_wrong_and_missing_node_ids_with_the_reason_in_both_logs() {
    let dir = TempDir::new("bind");
    let ca = Ca::new("mesh CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let (s_crt, s_key) = ca.issue(&dir, "S", &["S"]);
    let (m_crt, m_key) = ca.issue(&dir, "M", &["M"]);
    let (n_crt, n_key) = ca.issue(&dir, "nosan", &[]);
    let (a_crt, a_key) = ca.issue(&dir, "A", &["A"]);
    let port = free_port();
    let s = start_yaml(
        &dir,
        "S",
        &node_yaml(
            &dir,
            "S",
            &(server_tls(&s_crt, &s_key, &ca_file, true) + &tcp_listener(port)),
        ),
    );
    wait_for_path(&dir.path("S.sock"), Duration::from_secs(5));
    let peer = |id: &str, crt: &str, key: &str| {
        let items = client_tls(crt, key, &ca_file, false) + &tcp_peer(port);
        start_yaml(&dir, id, &node_yaml(&dir, id, &items))
    };
    // A certificate made for M, announcing B.
    let b = peer("B", &m_crt, &m_key);
    let mismatch =
        "node-ID mismatch: the peer announced node ID B but its certificate is for node ID M";
    wait_log(&s, mismatch);
    wait_log(&b, mismatch);
    // A certificate with no node-ID SAN at all.
    let c = peer("C", &n_crt, &n_key);
    let no_id = "no node ID in certificate: the peer announced node ID C";
    wait_log(&s, no_id);
    wait_log(&c, no_id);
    // A certificate for A, announcing A.
    let a = peer("A", &a_crt, &a_key);
    let s_sock = dir.path("S.sock");
    eventually(Duration::from_secs(10), "S to reach A", || {
        connected(&s_sock, "A")
    });
    let st = status_json(&s_sock);
    for refused in ["B", "C"] {
        assert!(st["RoutingTable"].get(refused).is_none(), "{st}");
    }
    // Never a generic TLS error for these refusals: the handshakes succeeded.
    for p in [&b, &c] {
        assert!(
            !p.log_text().contains("TLS handshake failed"),
            "{}",
            p.log_text()
        );
    }
    drop((a, b, c, s));
}

#[test]
fn without_the_option_a_certificate_for_another_node_is_accepted_as_in_go() {
    let dir = TempDir::new("nobind");
    let ca = Ca::new("mesh CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let (s_crt, s_key) = ca.issue(&dir, "S", &["S"]);
    let (m_crt, m_key) = ca.issue(&dir, "M", &["M"]);
    let (n_crt, n_key) = ca.issue(&dir, "nosan", &[]);
    let port = free_port();
    let server = server_tls(&s_crt, &s_key, &ca_file, false) + &tcp_listener(port);
    let s = start_yaml(&dir, "S", &node_yaml(&dir, "S", &server));
    wait_for_path(&dir.path("S.sock"), Duration::from_secs(5));
    let b_items = client_tls(&m_crt, &m_key, &ca_file, false) + &tcp_peer(port);
    let b = start_yaml(&dir, "B", &node_yaml(&dir, "B", &b_items));
    let c_items = client_tls(&n_crt, &n_key, &ca_file, false) + &tcp_peer(port);
    let c = start_yaml(&dir, "C", &node_yaml(&dir, "C", &c_items));
    let s_sock = dir.path("S.sock");
    eventually(Duration::from_secs(10), "S to accept B and C", || {
        connected(&s_sock, "B") && connected(&s_sock, "C")
    });
    drop((b, c, s));
}

/// The dialer binds too: over wss, a server whose certificate is for another node is refused,
/// and the server's log has the reason from the reject.
#[test]
fn bound_client_refuses_a_server_certificate_for_another_node_over_websocket() {
    let dir = TempDir::new("bindws");
    let ca = Ca::new("mesh CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let (x_crt, x_key) = ca.issue(&dir, "X", &["X"]);
    let (a_crt, a_key) = ca.issue(&dir, "A", &["A"]);
    let port = free_port();
    let server = format!(
        "- tls-server:\n    name: srv\n    cert: {x_crt}\n    key: {x_key}\n    skipreceptornamescheck: true\n\
         - ws-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n    tls: srv\n"
    );
    let s = start_yaml(&dir, "S", &node_yaml(&dir, "S", &server));
    wait_for_path(&dir.path("S.sock"), Duration::from_secs(5));
    let client = client_tls(&a_crt, &a_key, &ca_file, true)
        + &format!("- ws-peer:\n    address: wss://localhost:{port}/\n    tls: cli\n");
    let a = start_yaml(&dir, "A", &node_yaml(&dir, "A", &client));
    let why = "node-ID mismatch: the peer announced node ID S but its certificate is for node ID X";
    wait_log(&a, why);
    wait_log(&s, why);
    assert!(!connected(&dir.path("A.sock"), "S"));
    drop((a, s));
}

fn go_vector(name: &str) -> String {
    format!("{}/tests/vectors/certs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Certificates made by Go receptor's `cert-init` / `cert-makereq` / `cert-signreq`: under
/// `bindnodeid` a node whose ID the certificate carries is accepted (node1; n2 of the
/// two-ID certificate), and one that announces another ID with the same certificate is not.
#[test]
fn go_made_certificates_pass_the_binding_when_their_node_id_matches() {
    let dir = TempDir::new("bindgo");
    let go_ca = go_vector("ca.crt");
    let ours = Ca::new("server CA");
    let ours_file = ours.write(&dir, "ours.crt");
    let (s_crt, s_key) = ours.issue(&dir, "S", &["S"]);
    let port = free_port();
    let server = server_tls(&s_crt, &s_key, &go_ca, true) + &tcp_listener(port);
    let s = start_yaml(&dir, "S", &node_yaml(&dir, "S", &server));
    wait_for_path(&dir.path("S.sock"), Duration::from_secs(5));
    let peer = |id: &str, cert: &str| {
        let items = client_tls(
            &go_vector(&format!("{cert}.crt")),
            &go_vector(&format!("{cert}.key")),
            &ours_file,
            false,
        ) + &tcp_peer(port);
        start_yaml(&dir, id, &node_yaml(&dir, id, &items))
    };
    let node1 = peer("node1", "node1");
    let n2 = peer("n2", "multi");
    let n3 = peer("n3", "multi");
    let s_sock = dir.path("S.sock");
    eventually(Duration::from_secs(10), "S to accept node1 and n2", || {
        connected(&s_sock, "node1") && connected(&s_sock, "n2")
    });
    let why = "node-ID mismatch: the peer announced node ID n3 but its certificate is for node IDs n1, n2";
    wait_log(&s, why);
    wait_log(&n3, why);
    drop((node1, n2, n3, s));
}

#[test]
fn bindnodeid_without_certificates_to_bind_refuses_to_start() {
    let dir = TempDir::new("bindcfg");
    let ca = Ca::new("mesh CA");
    let (crt, key) = ca.issue(&dir, "X", &["X"]);
    let port = free_port();
    // A tls-server that asks for no client certificate.
    let mut p = start_yaml(
        &dir,
        "X",
        &format!(
            "- node:\n    id: X\n- tls-server:\n    name: srv\n    cert: {crt}\n    key: {key}\n    bindnodeid: true\n{}",
            tcp_listener(port)
        ),
    );
    assert!(!p.child.wait().unwrap().success());
    let log = p.log_text();
    assert!(log.contains("bindnodeid cannot work here"), "{log}");
    assert!(log.contains("requireclientcert or clientcas"), "{log}");
    // A tls-client that accepts any server certificate.
    let mut p = start_yaml(
        &dir,
        "Y",
        &format!(
            "- node:\n    id: X\n- tls-client:\n    name: cli\n    cert: {crt}\n    key: {key}\n    insecureskipverify: true\n    bindnodeid: true\n{}",
            tcp_peer(port)
        ),
    );
    assert!(!p.child.wait().unwrap().success());
    assert!(
        p.log_text().contains("insecureskipverify"),
        "{}",
        p.log_text()
    );
}

/// `bindnodeid` is read from version 1 and version 2 files and the command line; off by default.
#[test]
fn bindnodeid_in_every_config_form() {
    let v1 = "- node:\n    id: A\n- tls-server:\n    name: s\n    cert: c\n    key: k\n    bindnodeid: true\n\
              - tls-client:\n    name: c\n    cert: c\n    key: k\n    bindnodeid: true\n- tls-client:\n    name: d\n    cert: c\n    key: k\n";
    let c = common::ok_yaml(v1);
    assert!(c.tls_servers[0].bind_node_id);
    assert!(c.tls_clients[0].bind_node_id);
    assert!(!c.tls_clients[1].bind_node_id, "off by default, as Go");
    let v2 = "version: 2\nnode:\n  id: A\ntls-servers:\n  - name: s\n    cert: c\n    key: k\n    bindnodeid: true\n\
              tls-clients:\n  - name: c\n    cert: c\n    key: k\n    bindnodeid: true\n  - name: d\n    cert: c\n    key: k\n";
    let path = common::temp_yaml(v2);
    let c2 = common::ok_args(&["--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(c2.tls_servers, c.tls_servers);
    assert_eq!(c2.tls_clients, c.tls_clients);
    let c3 = common::ok_args(&[
        "--node",
        "id=A",
        "--tls-server",
        "name=s",
        "cert=c",
        "key=k",
        "bindnodeid=true",
    ]);
    assert!(c3.tls_servers[0].bind_node_id);
}
