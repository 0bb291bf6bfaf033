//! The core driven with no async runtime (`core/examples/std_node.rs`: std::net and threads)
//! meshes with the tokio `receptor` both ways: one std node dials the tokio node, the tokio
//! node dials the other. The real receptorctl on the tokio node pings both, and each std node
//! routes to the other through the tokio node; after the tokio node restarts, all of it again.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn std_node_bin() -> PathBuf {
    example_bin("receptor-core", "std_node")
}

fn start_std_node(dir: &TempDir, bin: &PathBuf, args: &[&str]) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    spawn_logged(dir, args[1], cmd)
}

/// Starts the tokio node: a TCP listener on `port`, a peer to the std node on `peer_port`.
fn start_tokio(dir: &TempDir, name: &str, sock: &Path, port: u16, peer_port: u16) -> Proc {
    start_args(
        dir,
        name,
        &[
            "--node",
            "id=tokio",
            "--control-service",
            &format!("filename={}", sock.display()),
            "--tcp-listener",
            "bindaddr=127.0.0.1",
            &format!("port={port}"),
            "--tcp-peer",
            &format!("address=127.0.0.1:{peer_port}"),
        ],
    )
}

/// Every process's log, for a failure message.
fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("\n--- {}:\n{}", p.name, p.log_text()))
        .collect()
}

/// The tokio node routes to both std nodes directly, receptorctl pings both, and each std
/// node routes to the other through the tokio node (`routes` lines of the current run: a
/// restart's appear after `after` bytes of the std node's log).
fn check_mesh(sock: &Path, tokio: &Proc, listening: &Proc, dialing: &Proc, after: [usize; 2]) {
    let procs = [tokio, listening, dialing];
    let mut last = serde_json::Value::Null;
    let meshed = wait_until(WAIT, || {
        // Not status_json: right after a restart the socket may not answer yet.
        let o = receptorctl(sock, &["status", "--json"]);
        last = serde_json::from_slice(&o.stdout).unwrap_or_default();
        last["RoutingTable"]["stdlisten"] == "stdlisten"
            && last["RoutingTable"]["stddial"] == "stddial"
    });
    assert!(meshed, "routes: {}{}", last["RoutingTable"], logs(&procs));

    for node in ["stdlisten", "stddial"] {
        let o = receptorctl(sock, &["ping", "--count", "1", node]);
        assert!(
            o.status.success() && stdout(&o).contains(&format!("Reply from {node}")),
            "ping {node}: {}{}{}",
            stdout(&o),
            stderr(&o),
            logs(&procs)
        );
    }

    let since = |p: &Proc, n: usize| p.log_text().get(n..).unwrap_or_default().to_owned();
    let routed = wait_until(WAIT, || {
        since(listening, after[0]).contains("stddial via tokio")
            && since(dialing, after[1]).contains("stdlisten via tokio")
    });
    assert!(routed, "std nodes did not route via tokio{}", logs(&procs));
    assert!(
        since(dialing, after[1]).contains("connection established with tokio"),
        "{}",
        logs(&procs)
    );
}

#[test]
fn std_node_meshes_with_a_tokio_node_both_ways() {
    let bin = std_node_bin();
    let dir = TempDir::new("std-node");
    let (tokio_port, std_port) = (free_port(), free_port());
    let sock = dir.path("tokio.sock");
    let listen_addr = format!("127.0.0.1:{std_port}");
    let listening = start_std_node(
        &dir,
        &bin,
        &["--id", "stdlisten", "--tcp-listen", &listen_addr],
    );
    let mut tokio = start_tokio(&dir, "tokio", &sock, tokio_port, std_port);
    let peer_addr = format!("127.0.0.1:{tokio_port}");
    let dialing = start_std_node(&dir, &bin, &["--id", "stddial", "--tcp-peer", &peer_addr]);
    wait_for_path(&sock, WAIT);
    check_mesh(&sock, &tokio, &listening, &dialing, [0, 0]);

    // Both std nodes see the tokio node go, and mesh with it again when it is back: the
    // dialer redials, the listener is dialed anew.
    tokio.kill();
    let gone = wait_until(WAIT, || {
        [&listening, &dialing]
            .iter()
            .all(|p| p.log_text().contains("connection to tokio lost"))
    });
    assert!(gone, "{}", logs(&[&tokio, &listening, &dialing]));
    let after = [listening.log_text().len(), dialing.log_text().len()];
    let tokio = start_tokio(&dir, "tokio-restarted", &sock, tokio_port, std_port);
    check_mesh(&sock, &tokio, &listening, &dialing, after);
}
