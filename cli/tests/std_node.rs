//! The core driven with no async runtime (`core/examples/std_node.rs`: std::net and threads)
//! meshes with the tokio `receptor` both ways: one std node dials the tokio node, the tokio
//! node dials the other. The real receptorctl on the tokio node pings both, and each std node
//! routes to the other through the tokio node.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// Builds the example with the cargo running this test, into this test's target directory,
/// and returns its path.
fn std_node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/std_node-<hash>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "receptor-core",
            "--example",
            "std_node",
        ])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the std_node example failed: {}",
        stderr(&out)
    );
    profile_dir.join("examples").join("std_node")
}

fn start_std_node(dir: &TempDir, bin: &PathBuf, args: &[&str]) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    spawn_logged(dir, args[1], cmd)
}

#[test]
fn std_node_meshes_with_a_tokio_node_both_ways() {
    let bin = std_node_bin();
    let dir = TempDir::new("std-node");
    let (tokio_port, std_port) = (free_port(), free_port());
    let sock = dir.path("tokio.sock");

    let listening = start_std_node(
        &dir,
        &bin,
        &[
            "--id",
            "stdlisten",
            "--tcp-listen",
            &format!("127.0.0.1:{std_port}"),
        ],
    );
    let tokio = start_args(
        &dir,
        "tokio",
        &[
            "--node",
            "id=tokio",
            "--control-service",
            &format!("filename={}", sock.display()),
            "--tcp-listener",
            "bindaddr=127.0.0.1",
            &format!("port={tokio_port}"),
            "--tcp-peer",
            &format!("address=127.0.0.1:{std_port}"),
        ],
    );
    let dialing = start_std_node(
        &dir,
        &bin,
        &[
            "--id",
            "stddial",
            "--tcp-peer",
            &format!("127.0.0.1:{tokio_port}"),
        ],
    );
    wait_for_path(&sock, WAIT);

    let logs = || {
        format!(
            "\n--- tokio:\n{}\n--- stdlisten:\n{}\n--- stddial:\n{}",
            tokio.log_text(),
            listening.log_text(),
            dialing.log_text()
        )
    };
    let mut last = serde_json::Value::Null;
    let meshed = wait_until(WAIT, || {
        last = status_json(&sock);
        last["RoutingTable"]["stdlisten"] == "stdlisten"
            && last["RoutingTable"]["stddial"] == "stddial"
    });
    assert!(meshed, "routes: {}{}", last["RoutingTable"], logs());

    for node in ["stdlisten", "stddial"] {
        let o = receptorctl(&sock, &["ping", "--count", "1", node]);
        assert!(
            o.status.success() && stdout(&o).contains(&format!("Reply from {node}")),
            "ping {node}: {}{}{}",
            stdout(&o),
            stderr(&o),
            logs()
        );
    }

    // Each std node learned the other through the tokio node, and says so.
    let routed = wait_until(WAIT, || {
        listening.log_text().contains("stddial via tokio")
            && dialing.log_text().contains("stdlisten via tokio")
    });
    assert!(routed, "std nodes did not route via tokio{}", logs());
    assert!(
        dialing
            .log_text()
            .contains("connection established with tokio"),
        "{}",
        logs()
    );
}
