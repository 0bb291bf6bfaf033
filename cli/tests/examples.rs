//! The README's example configurations (`examples/`), started as they are written, with only
//! their paths, ports and host names moved into the test's temp dir: a local node, a
//! three-node mesh with mutual TLS (certificates made by `examples/mesh-tls/make-certs.sh`),
//! and an ansible-runner work node.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn example(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `text` with each `(from, to)` replaced; every `from` must occur (else the example changed
/// and this test would no longer run it as written).
fn moved(text: &str, subst: &[(&str, String)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in subst {
        assert!(out.contains(from), "{from:?} is not in {text}");
        out = out.replace(from, to);
    }
    out
}

fn dir_str(dir: &TempDir, name: &str) -> String {
    dir.path(name).display().to_string()
}

/// `receptorctl ARGS` succeeds and prints `want`.
fn ctl_prints(sock: &std::path::Path, args: &[&str], want: &str) {
    let o = receptorctl(sock, args);
    let out = stdout(&o);
    assert!(
        o.status.success() && out.contains(want),
        "receptorctl {args:?}: {out}{}",
        stderr(&o)
    );
}

#[test]
fn local_node_runs_its_echo_unit() {
    let dir = TempDir::new("ex-local");
    let port = free_port();
    let cfg = moved(
        &example("local.yaml"),
        &[
            ("/tmp/receptor-local.sock", dir_str(&dir, "local.sock")),
            ("/tmp/receptor-local", dir_str(&dir, "data")),
            ("port: 2222", format!("port: {port}")),
        ],
    );
    let node = start_yaml(&dir, "local", &cfg);
    let sock = dir.path("local.sock");
    wait_for_path(&sock, WAIT);
    assert_eq!(status_json(&sock)["NodeID"], "local");
    ctl_prints(
        &sock,
        &["work", "submit", "echo", "--no-payload", "-f", "--rm"],
        "hello from the local node",
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(node);
}

#[test]
fn work_node_offers_ansible_runner() {
    let dir = TempDir::new("ex-work");
    let port = free_port();
    let cfg = moved(
        &example("work-node.yaml"),
        &[
            ("/var/lib/receptor", dir_str(&dir, "data")),
            ("/run/receptor/receptor.sock", dir_str(&dir, "work.sock")),
            // The example listens on every address; the test only on loopback.
            (
                "port: 27199",
                format!("port: {port}\n    bindaddr: 127.0.0.1"),
            ),
        ],
    );
    let _node = start_yaml(&dir, "work", &cfg);
    let sock = dir.path("work.sock");
    wait_for_path(&sock, WAIT);
    let st = status_json(&sock);
    assert_eq!(st["NodeID"], "execution");
    // Its own advertisement offers the work type AWX submits.
    eventually(
        WAIT,
        "the ansible-runner work type in the advertisement",
        || {
            status_json(&sock)["Advertisements"]
                .as_array()
                .is_some_and(|ads| {
                    ads.iter().any(|a| {
                        a["NodeID"] == "execution"
                            && a["WorkCommands"].as_array().is_some_and(|w| {
                                w.len() == 1 && w[0]["WorkType"] == "ansible-runner"
                            })
                    })
                })
        },
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the control socket's permissions");
}

#[test]
fn three_node_tls_mesh_runs_remote_work() {
    let dir = TempDir::new("ex-mesh");
    let tls = dir.path("tls");
    // The certificates, made as the README says, for a hop reached as `localhost`.
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/mesh-tls/make-certs.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(&tls)
        .arg("localhost")
        .env("RECEPTOR", receptor_bin())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-certs.sh: {}{}",
        stdout(&out),
        stderr(&out)
    );
    for f in [
        "ca.crt",
        "hop.crt",
        "hop.key",
        "controller.crt",
        "execution.key",
    ] {
        assert!(tls.join(f).is_file(), "make-certs.sh made no {f}");
    }
    let port = free_port();
    // The certificates' directory and one node's control socket, moved into `dir`.
    fn subst<'a>(tls: &std::path::Path, dir: &TempDir, sock: &'a str) -> Vec<(&'a str, String)> {
        vec![
            ("/etc/receptor/tls", tls.display().to_string()),
            (
                sock,
                dir_str(dir, sock.trim_start_matches("/run/receptor/")),
            ),
        ]
    }
    let mut hop = subst(&tls, &dir, "/run/receptor/hop.sock");
    hop.push((
        "port: 27199",
        format!("port: {port}\n    bindaddr: 127.0.0.1"),
    ));
    let spoke = |name: &str| {
        let sock = format!("/run/receptor/{name}.sock");
        let mut s = subst(&tls, &dir, &sock);
        s.push(("hop.example.org:27199", format!("localhost:{port}")));
        moved(&example(&format!("mesh-tls/{name}.yaml")), &s)
    };
    let _hop = start_yaml(&dir, "hop", &moved(&example("mesh-tls/hop.yaml"), &hop));
    let _controller = start_yaml(&dir, "controller", &spoke("controller"));
    let _execution = start_yaml(&dir, "execution", &spoke("execution"));
    let sock = dir.path("controller.sock");
    wait_for_path(&sock, WAIT);
    eventually(WAIT, "the controller to learn a route to execution", || {
        let st = status_json(&sock);
        st["RoutingTable"]["execution"] == "hop"
    });
    ctl_prints(
        &sock,
        &["ping", "--count", "1", "execution"],
        "Reply from execution",
    );
    ctl_prints(
        &sock,
        &[
            "work",
            "submit",
            "--node",
            "execution",
            "echo",
            "--no-payload",
            "-f",
            "--rm",
        ],
        "hello from the execution node",
    );
}
