//! A mesh of both runtimes in separate processes: the tokio `receptor` in the middle with
//! mutual TLS on tcp and wss, two smol nodes (`runtime-smol/examples/node.rs`) joining it, one
//! over tcp+TLS and one over wss, with certificates from one test CA that carry node IDs. The real receptorctl on one smol
//! node's control socket pings the other smol node through the tokio node, and traceroute
//! lists the three hops; `connect` reaches the other smol node's control service.
//!
//! The test lives here, beside the `receptor` binary it needs (`CARGO_BIN_EXE_receptor`); the
//! smol example is built by [`example_bin`] with the cargo running the test.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::certs::Ca;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// Starts a smol example node `id` with these flags, logging to `<id>.log`.
fn start_smol(dir: &TempDir, bin: &Path, id: &str, flags: &[&str]) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(["--id", id, "--bind", "127.0.0.1"]).args(flags);
    spawn_logged(dir, id, cmd)
}

/// Every process's log, for a failure message.
fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("\n--- {}:\n{}", p.name, p.log_text()))
        .collect()
}

#[test]
fn smol_nodes_reach_each_other_through_a_tokio_node() {
    let smol = example_bin("receptor-smol", "node");
    let dir = TempDir::new("mixed");
    let ca = Ca::new("mixed mesh CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let (hub_crt, hub_key) = ca.issue(&dir, "hub", &["hub"]);
    let (tcp_port, ws_port) = (free_port(), free_port());
    // Mutual TLS on tcp and wss; each side's node ID bound to its certificate.
    let hub = start_yaml(
        &dir,
        "hub",
        &format!(
            "- node:\n    id: hub\n- log-level: debug\n\
             - tls-server:\n    name: srv\n    cert: {hub_crt}\n    key: {hub_key}\n    \
             requireclientcert: true\n    clientcas: {ca_file}\n    bindnodeid: true\n\
             - tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {tcp_port}\n    tls: srv\n\
             - ws-listener:\n    bindaddr: 127.0.0.1\n    port: {ws_port}\n    tls: srv\n"
        ),
    );
    let smol_node = |id: &str, peer: [&str; 2]| {
        let (crt, key) = ca.issue(&dir, id, &[id]);
        let sock = dir.path(&format!("{id}.sock"));
        let mut flags = vec![peer[0], peer[1], "--tls-cert", &crt, "--tls-key", &key];
        flags.extend(["--tls-ca", &ca_file, "--control", sock.to_str().unwrap()]);
        (start_smol(&dir, &smol, id, &flags), sock)
    };
    let tcp_peer = format!("127.0.0.1:{tcp_port}");
    let (s1, s1_sock) = smol_node("s1", ["--tcp-peer", &tcp_peer]);
    let wss_peer = format!("wss://localhost:{ws_port}/");
    let (s2, _) = smol_node("s2", ["--ws-peer", &wss_peer]);
    let procs = [&hub, &s1, &s2];

    wait_for_path(&s1_sock, WAIT);
    let routed = wait_until(WAIT, || {
        status_json(&s1_sock)["RoutingTable"]["s2"] == "hub"
    });
    assert!(routed, "s1 never routed to s2 via hub{}", logs(&procs));
    // The hub saw both smol nodes over TLS, one of them over WebSocket.
    let hub_log = hub.log_text();
    assert!(
        hub_log.contains("Connection established with s1"),
        "{hub_log}"
    );
    assert!(
        hub_log.contains("Connection established with s2"),
        "{hub_log}"
    );

    let o = receptorctl(&s1_sock, &["ping", "s2", "--count", "1"]);
    let out = stdout(&o);
    assert!(
        o.status.success() && out.contains("Reply from s2 in"),
        "{out}{}{}",
        stderr(&o),
        logs(&procs)
    );

    let o = receptorctl(&s1_sock, &["traceroute", "s2"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}{}", stderr(&o), logs(&procs));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, hop) in lines.iter().zip(["0: s1 in ", "1: hub in ", "2: s2 in "]) {
        assert!(line.starts_with(hop), "{out}");
    }

    // `connect`: s1's control session bridged to s2's control service over a mesh stream.
    let advertised = wait_until(WAIT, || {
        let ads = status_json(&s1_sock)["Advertisements"].clone();
        let ads = ads.as_array().cloned().unwrap_or_default();
        ads.iter()
            .any(|a| a["NodeID"] == "s2" && a["Service"] == "control" && a["ConnType"] == 1)
    });
    assert!(
        advertised,
        "s2's control service never advertised{}",
        logs(&procs)
    );
    let got = connect_raw(&s1_sock, "connect s2 control \nstatus\n");
    assert!(
        got.starts_with("Receptor Control, node s1\nConnecting\nReceptor Control, node s2\n"),
        "{got}{}",
        logs(&procs)
    );
    assert!(got.contains("\"NodeID\":\"s2\""), "{got}");
}

/// Sends `text` on a raw control connection, ends the client's side and reads to the end.
fn connect_raw(sock: &Path, text: &str) -> String {
    use std::io::{Read, Write};
    let mut raw = std::os::unix::net::UnixStream::connect(sock).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.write_all(text.as_bytes()).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    let _ = raw.read_to_string(&mut got);
    got
}
