//! Issue: a 4-node mesh from Go-format YAML files, driven by the real receptorctl.
//! A -tcp- B -ws- C and B -udp- D.

mod support;

use std::time::{Duration, Instant};

use support::*;

struct Mesh {
    dir: TempDir,
    a: Proc,
    b: Proc,
    c: Proc,
    d: Proc,
    b_yaml: String,
}

fn mesh() -> Mesh {
    let dir = TempDir::new("mesh");
    let (tcp, ws, udp) = (free_port(), free_port(), free_port());
    let sock = |n: &str| dir.path(&format!("{n}.sock")).display().to_string();
    let a_yaml = format!(
        "---\n- node:\n    id: A\n- log-level: debug\n- control-service:\n    filename: {}\n- tcp-peer:\n    address: 127.0.0.1:{tcp}\n",
        sock("A")
    );
    let b_yaml = format!(
        "---\n- node:\n    id: B\n- log-level: debug\n- control-service:\n    filename: {}\n- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {tcp}\n- ws-listener:\n    bindaddr: 127.0.0.1\n    port: {ws}\n- udp-listener:\n    bindaddr: 127.0.0.1\n    port: {udp}\n",
        sock("B")
    );
    let c_yaml = format!(
        "---\n- node:\n    id: C\n- log-level: debug\n- control-service:\n    filename: {}\n- ws-peer:\n    address: ws://127.0.0.1:{ws}/\n",
        sock("C")
    );
    let d_yaml = format!(
        "---\n- node:\n    id: D\n- control-service:\n    filename: {}\n- udp-peer:\n    address: 127.0.0.1:{udp}\n",
        sock("D")
    );
    let b = start_yaml(&dir, "B", &b_yaml);
    let a = start_yaml(&dir, "A", &a_yaml);
    let c = start_yaml(&dir, "C", &c_yaml);
    let d = start_yaml(&dir, "D", &d_yaml);
    for n in ["A", "B", "C", "D"] {
        wait_for_path(&dir.path(&format!("{n}.sock")), Duration::from_secs(5));
    }
    Mesh {
        dir,
        a,
        b,
        c,
        d,
        b_yaml,
    }
}

fn a_sock(m: &Mesh) -> std::path::PathBuf {
    m.dir.path("A.sock")
}

fn wait_converged(m: &Mesh) {
    eventually(
        Duration::from_secs(10),
        "A's routing table to list B, C, D via B",
        || {
            let s = status_json(&a_sock(m));
            let rt = &s["RoutingTable"];
            ["B", "C", "D"].iter().all(|n| rt[n] == "B")
                && s["KnownConnectionCosts"]
                    .as_object()
                    .is_some_and(|k| k.len() == 4)
        },
    );
}

#[test]
fn four_node_mesh_status_ping_traceroute_and_restart() {
    let mut m = mesh();
    wait_converged(&m);
    let s = status_json(&a_sock(&m));
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Advertisements",
            "Connections",
            "KnownConnectionCosts",
            "NodeID",
            "RoutingTable",
            "SystemCPUCount",
            "SystemMemoryMiB",
            "Version"
        ]
    );
    assert_eq!(s["NodeID"], "A");
    let kcc = s["KnownConnectionCosts"].as_object().unwrap();
    for n in ["A", "B", "C", "D"] {
        assert!(kcc.contains_key(n), "{n} missing from {kcc:?}");
    }
    assert_eq!(kcc["B"]["C"], 1.0);
    assert_eq!(s["Connections"][0]["NodeID"], "B");

    // Human-readable status works too (receptorctl formats it).
    let o = receptorctl(&a_sock(&m), &["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Node ID: A"), "{}", stdout(&o));

    let o = receptorctl(&a_sock(&m), &["ping", "D", "--count", "2"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).matches("Reply from D in").count(),
        2,
        "{}",
        stdout(&o)
    );

    let o = receptorctl(&a_sock(&m), &["traceroute", "C"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("0: A in "), "{out}");
    assert!(lines[1].starts_with("1: B in "), "{out}");
    assert!(lines[2].starts_with("2: C in "), "{out}");

    // Remote control over a mesh stream: `connect C control` answers as node C.
    let out = connect_stdin(&a_sock(&m), "C", "status\n", "\"NodeID\":\"C\"");
    assert!(out.contains("Receptor Control, node C"), "{out}");
    assert!(out.contains("\"NodeID\":\"C\""), "{out}");
    // Every node advertises its control service (ConnType 1: stream, insecure TLS).
    eventually(
        Duration::from_secs(15),
        "control adverts from all nodes",
        || {
            let s = status_json(&a_sock(&m));
            let ads = s["Advertisements"].as_array().cloned().unwrap_or_default();
            ["A", "B", "C", "D"].iter().all(|n| {
                ads.iter()
                    .any(|a| a["NodeID"] == *n && a["Service"] == "control" && a["ConnType"] == 1)
            })
        },
    );

    let o = receptorctl(&a_sock(&m), &["ping", "nosuchnode", "--count", "1"]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(text.contains("no route to node"), "{text}");

    // Restart B: A reaches C again within 3 s.
    m.b.kill();
    let sock_b = m.dir.path("B.sock");
    let _ = std::fs::remove_file(&sock_b);
    let restarted = Instant::now();
    m.b = start_yaml(&m.dir, "B", &m.b_yaml);
    let mut healed = None;
    while restarted.elapsed() < Duration::from_secs(10) {
        if ping_within(&a_sock(&m), "C", Duration::from_millis(1500)) {
            healed = Some(restarted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let healed = healed.unwrap_or_else(|| {
        panic!(
            "A never reached C again\n==== A ====\n{}\n==== B ====\n{}\n==== C ====\n{}",
            m.a.log_text(),
            m.b.log_text(),
            m.c.log_text()
        )
    });
    eprintln!("healed after B restart in {healed:?}");
    assert!(healed < Duration::from_secs(3), "healing took {healed:?}");
    let _ = (&m.c, &m.d);
}

/// Runs `receptorctl connect NODE control` on a pseudo-terminal (it insists on one), types
/// `input`, and returns what it printed once `until` appears (or after 20 s).
fn connect_stdin(sock: &std::path::Path, node: &str, input: &str, until: &str) -> String {
    let script = r#"
import os, pty, select, sys, time
ctl, sock, node, text, until = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ctl, [ctl, "--socket", sock, "connect", node, "control"])
out = b""
sent = False
deadline = time.time() + 20
while time.time() < deadline and until.encode() not in out:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            out += os.read(fd, 65536)
        except OSError:
            break
    if not sent and b"Receptor Control" in out:
        os.write(fd, text.encode())
        sent = True
os.kill(pid, 9)
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
"#;
    let python = receptorctl_bin().with_file_name("python3");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(receptorctl_bin())
        .arg(sock)
        .arg(node)
        .arg(input)
        .arg(until)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `ping NODE` on the control socket answers success within `within`. A ping waits
/// 10 s for its reply (as Go's does), so one sent while the far end has no route back yet
/// would hold a whole retry loop; this gives up on it instead.
fn ping_within(sock: &std::path::Path, node: &str, within: Duration) -> bool {
    use std::io::{BufRead as _, Write as _};
    let mut c = RawControl::new(sock);
    c.w.set_read_timeout(Some(within)).unwrap();
    c.w.write_all(format!("ping {node}\n").as_bytes()).unwrap();
    let mut line = String::new();
    c.r.read_line(&mut line).is_ok() && line.contains("\"Success\":true")
}
