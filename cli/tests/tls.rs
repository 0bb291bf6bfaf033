//! TLS backends between real processes: node-ID certificates accepted, a wrong CA refused,
//! and Go's startup check that a node's own certificate carries its node ID.

mod support;

use std::time::Duration;

use support::certs::Ca;
use support::*;

#[test]
fn tls_backend_with_node_id_certs_and_wrong_ca_refused() {
    let dir = TempDir::new("tls");
    let ca = Ca::new("mesh CA");
    let other = Ca::new("someone else's CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let other_file = other.write(&dir, "other.crt");
    let (b_crt, b_key) = ca.issue(&dir, "B", &["B"]);
    let (a_crt, a_key) = ca.issue(&dir, "A", &["A"]);
    let (c_crt, c_key) = other.issue(&dir, "C", &["C"]);
    let port = free_port();
    let sock = |n: &str| dir.path(&format!("{n}.sock")).display().to_string();
    let b = start_yaml(
        &dir,
        "B",
        &format!(
            "- node:\n    id: B\n- log-level: debug\n- control-service:\n    filename: {}\n\
         - tls-server:\n    name: srv\n    cert: {b_crt}\n    key: {b_key}\n    requireclientcert: true\n    clientcas: {ca_file}\n\
         - tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n    tls: srv\n",
            sock("B")
        ),
    );
    let a = start_yaml(
        &dir,
        "A",
        &format!(
            "- node:\n    id: A\n- log-level: debug\n- control-service:\n    filename: {}\n\
         - tls-client:\n    name: cli\n    cert: {a_crt}\n    key: {a_key}\n    rootcas: {ca_file}\n\
         - tcp-peer:\n    address: localhost:{port}\n    tls: cli\n",
            sock("A")
        ),
    );
    // C trusts the wrong CA (and B does not trust C's CA either).
    let c = start_yaml(
        &dir,
        "C",
        &format!(
            "- node:\n    id: C\n- log-level: debug\n- control-service:\n    filename: {}\n\
         - tls-client:\n    name: cli\n    cert: {c_crt}\n    key: {c_key}\n    rootcas: {other_file}\n\
         - tcp-peer:\n    address: localhost:{port}\n    tls: cli\n",
            sock("C")
        ),
    );
    for n in ["A", "B", "C"] {
        wait_for_path(&dir.path(&format!("{n}.sock")), Duration::from_secs(5));
    }
    let a_sock = dir.path("A.sock");
    eventually(Duration::from_secs(10), "A to reach B over TLS", || {
        status_json(&a_sock)["RoutingTable"]["B"] == "B"
    });
    let o = receptorctl(&a_sock, &["ping", "B", "--count", "1"]);
    assert!(stdout(&o).contains("Reply from B"), "{}", stdout(&o));
    std::thread::sleep(Duration::from_secs(2));
    let c_status = status_json(&dir.path("C.sock"));
    assert!(
        c_status["Connections"]
            .as_array()
            .is_none_or(|c| c.is_empty()),
        "C connected with an untrusted CA: {c_status}"
    );
    assert!(
        c.log_text().contains("TLS handshake failed"),
        "{}",
        c.log_text()
    );
    drop((a, b, c));
}

#[test]
fn own_certificate_without_node_id_refuses_to_start() {
    let dir = TempDir::new("tlsname");
    let ca = Ca::new("mesh CA");
    let (crt, key) = ca.issue(&dir, "wrong", &["someone-else"]);
    let port = free_port();
    let mut p = start_yaml(
        &dir,
        "X",
        &format!(
            "- node:\n    id: X\n- tls-server:\n    name: srv\n    cert: {crt}\n    key: {key}\n- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n    tls: srv\n"
        ),
    );
    let status = p.child.wait().unwrap();
    assert!(!status.success());
    let log = p.log_text();
    assert!(
        log.contains("nodeID=X not found in certificate name(s)"),
        "{log}"
    );
    // With skipreceptornamescheck the same certificate is accepted.
    let mut p = start_yaml(
        &dir,
        "Y",
        &format!(
            "- node:\n    id: X\n- tls-server:\n    name: srv\n    cert: {crt}\n    key: {key}\n    skipreceptornamescheck: true\n- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n    tls: srv\n"
        ),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(p.child.try_wait().unwrap().is_none(), "{}", p.log_text());
}
