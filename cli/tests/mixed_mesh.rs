//! A mesh of both runtimes in separate processes: the tokio `receptor` in the middle, two smol
//! nodes (`runtime-smol/examples/node.rs`) joining it. The real receptorctl on one smol
//! node's control socket pings the other smol node through the tokio node, and traceroute
//! lists the three hops; `connect` reaches the other smol node's control service.
//!
//! The test lives here, beside the `receptor` binary it needs (`CARGO_BIN_EXE_receptor`); the
//! smol example is built by [`example_bin`] with the cargo running the test.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    let tcp_port = free_port();
    let hub = start_args(
        &dir,
        "hub",
        &[
            "--node",
            "id=hub",
            "--tcp-listener",
            "bindaddr=127.0.0.1",
            &format!("port={tcp_port}"),
        ],
    );
    let peer = format!("127.0.0.1:{tcp_port}");
    let s1_sock = dir.path("s1.sock");
    let s1 = start_smol(
        &dir,
        &smol,
        "s1",
        &["--tcp-peer", &peer, "--control", s1_sock.to_str().unwrap()],
    );
    let s2_sock = dir.path("s2.sock");
    let s2 = start_smol(
        &dir,
        &smol,
        "s2",
        &["--tcp-peer", &peer, "--control", s2_sock.to_str().unwrap()],
    );
    let procs = [&hub, &s1, &s2];

    wait_for_path(&s1_sock, WAIT);
    let routed = wait_until(WAIT, || {
        status_json(&s1_sock)["RoutingTable"]["s2"] == "hub"
    });
    assert!(routed, "s1 never routed to s2 via hub{}", logs(&procs));

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
