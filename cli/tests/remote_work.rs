//! Remote units of work end to end: A -tcp- B -tcp- C, work submitted on A runs on C, all
//! driven by the real receptorctl (and the raw control protocol where it says more).

mod support;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::certs::Ca;
use support::*;

/// C's work types.
const C_TYPES: &str = "
- work-command:
    worktype: echo
    command: cat
- work-command:
    worktype: seq
    command: seq
    params: 200000
- work-command:
    worktype: sh
    command: sh
    params: -c
    allowruntimeparams: true
";

/// Ten lines, one a second: `line 1` .. `line 10`.
const SLOW: &str = "'for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 1; done'";

fn slow_output() -> String {
    (1..=10).map(|i| format!("line {i}\n")).collect()
}

fn testdata(name: &str) -> String {
    format!(
        "{}/../core/src/work/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// One node of the mesh.
struct Node {
    name: &'static str,
    proc: Proc,
    yaml: String,
}

/// A -tcp- B -tcp- C, with the data directories under one temp dir.
struct Mesh {
    dir: TempDir,
    a: Node,
    b: Node,
    c: Node,
}

impl Mesh {
    /// `a_extra` and `c_extra` are added to A's and C's YAML.
    fn start(tag: &str, a_extra: &str, c_extra: &str) -> Self {
        Self::start_in(TempDir::new(tag), a_extra, c_extra, "")
    }

    /// As [`Mesh::start`] in `dir`, with `c_control` added to C's control service.
    fn start_in(dir: TempDir, a_extra: &str, c_extra: &str, c_control: &str) -> Self {
        let [a_yaml, b_yaml, c_yaml] = line_mesh_yaml(
            &dir,
            free_port(),
            a_extra,
            c_control,
            &format!("{C_TYPES}{c_extra}"),
        );
        let b = Node {
            name: "B",
            proc: start_yaml(&dir, "B", &b_yaml),
            yaml: b_yaml,
        };
        let a = Node {
            name: "A",
            proc: start_yaml(&dir, "A", &a_yaml),
            yaml: a_yaml,
        };
        let c = Node {
            name: "C",
            proc: start_yaml(&dir, "C", &c_yaml),
            yaml: c_yaml,
        };
        let m = Self { dir, a, b, c };
        for n in ["A", "B", "C"] {
            wait_for_path(&m.sock(n), Duration::from_secs(5));
        }
        m.wait_route("A", "C");
        m.wait_route("C", "A");
        m
    }

    fn sock(&self, n: &str) -> PathBuf {
        self.dir.path(&format!("{n}.sock"))
    }

    fn unit_dir(&self, node: &str, id: &str) -> PathBuf {
        self.dir.path("data").join(node).join(id)
    }

    fn wait_route(&self, from: &str, to: &str) {
        eventually(
            Duration::from_secs(15),
            &format!("{from} to have a route to {to}"),
            || status_json(&self.sock(from))["RoutingTable"][to].is_string(),
        );
    }

    /// Kills a node (SIGKILL) and starts it again with the same config.
    fn restart(&mut self, which: &str) {
        let dir = &self.dir;
        let node = match which {
            "A" => &mut self.a,
            "B" => &mut self.b,
            _ => &mut self.c,
        };
        node.proc.kill();
        let sock = dir.path(&format!("{}.sock", node.name));
        let _ = std::fs::remove_file(&sock);
        node.proc = start_yaml(dir, node.name, &node.yaml);
        wait_for_path(&sock, Duration::from_secs(5));
    }

    fn logs(&self) -> String {
        [&self.a, &self.b, &self.c]
            .iter()
            .map(|n| format!("==== {} ====\n{}", n.name, n.proc.log_text()))
            .collect()
    }
}

fn wait_status(
    m: &Mesh,
    node: &str,
    id: &str,
    what: &str,
    within: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let last = unit_status(&m.sock(node), id);
        if cond(&last) {
            return last;
        }
        if start.elapsed() > within {
            panic!(
                "timed out waiting for {what}; last status {last}\n{}",
                m.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn remote_id(st: &Value) -> String {
    st["ExtraData"]["RemoteUnitID"].as_str().unwrap().to_owned()
}

#[test]
fn submit_follow_list_cancel_release() {
    let m = Mesh::start("remote-basic", "", "");
    let a = m.sock("A");

    // Output arrives through the mesh; receptorctl adds a newline to a literal payload.
    let o = receptorctl(
        &a,
        &[
            "work",
            "submit",
            "--node",
            "C",
            "echo",
            "--payload-literal",
            "x",
            "-f",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), m.logs());
    assert_eq!(stdout(&o), "x\n");

    // 200000 lines byte for byte.
    let o = receptorctl(
        &a,
        &["work", "submit", "--node", "C", "seq", "--no-payload", "-f"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let want: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(o.stdout.len(), want.len());
    assert!(o.stdout == want.as_bytes(), "seq output differs");

    // A failing command: its output, then receptorctl's error and exit status 1.
    let o = receptorctl(
        &a,
        &[
            "work",
            "submit",
            "--node",
            "C",
            "sh",
            "--no-payload",
            "-f",
            "'echo out; echo err >&2; exit 3'",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\nerr\n");
    assert!(
        stderr(&o).contains("Remote unit failed: exit status 3"),
        "{}",
        stderr(&o)
    );

    // A running unit: Go's keys in status and list, the remote ExtraData in Go's order.
    let (id, result) = work_submit(&a, &["--node", "C", "sh", "--no-payload", "'sleep 30'"]);
    assert_eq!(result, "Job Started");
    let st = wait_status(
        &m,
        "A",
        &id,
        "remote unit running",
        Duration::from_secs(10),
        |s| s["State"] == 1,
    );
    assert_eq!(
        json_keys(&st),
        [
            "Detail",
            "ExtraData",
            "State",
            "StateName",
            "StdoutSize",
            "WorkType"
        ]
    );
    assert_eq!(st["WorkType"], "remote");
    assert_eq!(st["StateName"], "Running");
    assert!(st["Detail"].as_str().unwrap().starts_with("Running: PID "));
    let ed = &st["ExtraData"];
    assert_eq!(ed["RemoteNode"], "C");
    assert_eq!(ed["RemoteWorkType"], "sh");
    assert_eq!(ed["RemoteParams"]["params"], "'sleep 30'");
    assert_eq!(ed["RemoteStarted"], true);
    assert_eq!(ed["Expiration"], "0001-01-01T00:00:00Z");
    let rid = remote_id(&st);
    let raw_status = RawControl::new(&a).line(&format!("work status {id}"));
    assert!(
        raw_status.contains(
            "\"ExtraData\":{\"RemoteNode\":\"C\",\"RemoteWorkType\":\"sh\",\"RemoteParams\":{\"params\":\"'sleep 30'\"},\"RemoteUnitID\":"
        ),
        "{raw_status}"
    );
    let o = receptorctl(&a, &["work", "list"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[&id]["WorkType"], "remote");
    let o = receptorctl(&m.sock("C"), &["work", "list", "-q"]);
    assert!(stdout(&o).contains(&rid));

    // Cancel reaches C: both sides end up Canceled.
    let o = receptorctl(&a, &["work", "cancel", &id]);
    assert!(
        stdout(&o).contains(&format!("({id}, cancelled)")),
        "{}",
        stdout(&o)
    );
    let st = wait_status(
        &m,
        "C",
        &rid,
        "C's unit canceled",
        Duration::from_secs(15),
        |s| s["State"] == 4,
    );
    assert_eq!(st["Detail"], "Canceled");
    let st = wait_status(
        &m,
        "A",
        &id,
        "A's unit canceled",
        Duration::from_secs(10),
        |s| s["State"] == 4,
    );
    assert_eq!(st["ExtraData"]["LocalCancelled"], true);

    // Release reaches C: the unit is gone on both nodes.
    let o = receptorctl(&a, &["work", "release", &id]);
    assert!(
        stdout(&o).contains(&format!("({id}, released)")),
        "{}",
        stdout(&o)
    );
    assert!(!m.unit_dir("A", &id).exists());
    eventually(Duration::from_secs(5), "C's unit dir removed", || {
        !m.unit_dir("C", &rid).exists()
    });
    assert_eq!(
        RawControl::new(&m.sock("C")).line(&format!("work status {rid}")),
        format!("ERROR: unknown work unit {rid}\n")
    );
    // Releasing it again is Go's error; force-release of it succeeds quietly (Go issue #758).
    let o = receptorctl(&a, &["work", "release", &id]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("unknown work unit {id}")),
        "{}",
        stderr(&o)
    );
    let o = receptorctl(&a, &["work", "release", "--force", &id, "nosuchid"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A finished unit: release removes it on C too; force-release works as well.
    let (id, _) = work_submit(&a, &["--node", "C", "echo", "--payload-literal", "y"]);
    let st = wait_status(&m, "A", &id, "echo done", Duration::from_secs(10), |s| {
        s["State"] == 2
    });
    let rid = remote_id(&st);
    let o = receptorctl(&a, &["work", "release", "--force", &id]);
    assert!(
        stdout(&o).contains(&format!("({id}, released)")),
        "{}",
        stdout(&o)
    );
    assert!(!m.unit_dir("A", &id).exists());
    eventually(Duration::from_secs(5), "C's unit dir removed", || {
        !m.unit_dir("C", &rid).exists()
    });

    // Errors before anything is created.
    let mut raw = RawControl::new(&a);
    assert_eq!(
        raw.line(r#"{"command":"work","subcommand":"submit","node":"C","worktype":"echo","secret_x":"s"}"#),
        "ERROR: cannot send secrets over a non-TLS connection\n"
    );
    assert_eq!(
        raw.line(r#"{"command":"work","subcommand":"submit","node":"C","worktype":"echo","tlsclient":"nope"}"#),
        "ERROR: unknown TLS config nope\n"
    );
    assert_eq!(
        raw.line(
            r#"{"command":"work","subcommand":"submit","node":"C","worktype":"echo","ttl":"5x"}"#
        ),
        "ERROR: time: unknown unit \"x\" in duration \"5x\"\n"
    );

    // A node that does not exist: the unit waits (Job Submitted), its ttl makes it fail, and
    // it can be released without the node.
    let (id, result) = work_submit(
        &a,
        &["--node", "nowhere", "echo", "--no-payload", "--ttl", "2s"],
    );
    assert_eq!(result, "Job Submitted");
    let st = wait_status(&m, "A", &id, "expired", Duration::from_secs(10), |s| {
        s["State"] == 3
    });
    assert!(
        st["Detail"]
            .as_str()
            .unwrap()
            .starts_with("Work unit expired on "),
        "{st}"
    );
    let (id2, _) = work_submit(&a, &["--node", "nowhere", "echo", "--no-payload"]);
    assert_eq!(unit_status(&a, &id2)["State"], 0);
    let o = receptorctl(&a, &["work", "release", &id, &id2]);
    assert!(
        stdout(&o).contains(&format!("({id2}, released)")),
        "{}",
        stdout(&o)
    );
    assert!(!m.unit_dir("A", &id).exists() && !m.unit_dir("A", &id2).exists());
}

/// Runs the slow unit on C, restarts `which` while it runs, and checks A got every byte.
fn output_survives_restart(which: &str) {
    let mut m = Mesh::start(&format!("remote-restart-{which}"), "", "");
    let a = m.sock("A");
    let (id, _) = work_submit(&a, &["--node", "C", "sh", "--no-payload", SLOW]);
    // Some output is here before the restart.
    let unit = m.unit_dir("A", &id);
    eventually(Duration::from_secs(10), "first lines copied to A", || {
        std::fs::metadata(unit.join("stdout")).is_ok_and(|md| md.len() >= 14)
    });
    m.restart(which);
    let st = wait_status(
        &m,
        "A",
        &id,
        "unit succeeded",
        Duration::from_secs(40),
        |s| s["State"] == 2,
    );
    assert_eq!(st["Detail"], "exit status 0");
    let o = receptorctl(&a, &["work", "results", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), slow_output(), "{}", m.logs());
    assert_eq!(
        std::fs::read_to_string(unit.join("stdout")).unwrap(),
        slow_output()
    );
}

#[test]
fn output_survives_relay_restart() {
    output_survives_restart("B");
}

#[test]
fn output_survives_submitter_restart() {
    output_survives_restart("A");
}

#[test]
fn output_survives_executor_restart() {
    output_survives_restart("C");
}

#[test]
fn signed_work() {
    let a_extra = format!(
        "- work-signing:\n    privatekey: {}\n    tokenexpiration: 1m\n",
        testdata("sign_a_pkcs8.pem")
    );
    let c_extra = format!(
        "- work-verification:\n    publickey: {}\n- work-command:\n    worktype: secure\n    command: cat\n    verifysignature: true\n",
        testdata("sign_a_pub.pem")
    );
    let m = Mesh::start("remote-signed", &a_extra, &c_extra);
    let a = m.sock("A");
    // C advertises the type as secure.
    eventually(
        Duration::from_secs(15),
        "C's secure work type advertised",
        || {
            status_json(&a)["Advertisements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|ad| {
                    ad["NodeID"] == "C"
                        && ad["WorkCommands"].as_array().is_some_and(|w| {
                            w.iter()
                                .any(|t| t["WorkType"] == "secure" && t["Secure"] == true)
                        })
                })
        },
    );

    let o = receptorctl(
        &a,
        &[
            "work",
            "submit",
            "--node",
            "C",
            "secure",
            "--signwork",
            "--payload-literal",
            "signed",
            "-f",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), m.logs());
    assert_eq!(stdout(&o), "signed\n");

    // Unsigned: C refuses it, the submit on A fails.
    let o = receptorctl(
        &a,
        &[
            "work",
            "submit",
            "--node",
            "C",
            "secure",
            "--payload-literal",
            "x",
        ],
    );
    assert_eq!(o.status.code(), Some(101), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("could not verify signature: signature is empty"),
        "{}",
        stderr(&o)
    );
    // Signed for a type that does not verify: refused too.
    let o = receptorctl(
        &a,
        &[
            "work",
            "submit",
            "--node",
            "C",
            "echo",
            "--signwork",
            "--payload-literal",
            "x",
        ],
    );
    assert!(
        stderr(&o).contains("work type did not expect a signature"),
        "{}",
        stderr(&o)
    );
    // On C's own Unix socket no signature is needed.
    let o = receptorctl(
        &m.sock("C"),
        &[
            "work",
            "submit",
            "secure",
            "--payload-literal",
            "local",
            "-f",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "local\n");

    // A signed unit's cancel and release are signed too and reach C.
    let (id, _) = work_submit(
        &a,
        &[
            "--node",
            "C",
            "secure",
            "--signwork",
            "--payload-literal",
            "z",
        ],
    );
    let st = wait_status(
        &m,
        "A",
        &id,
        "signed unit done",
        Duration::from_secs(10),
        |s| s["State"] == 2,
    );
    assert_eq!(st["ExtraData"]["SignWork"], true);
    let rid = remote_id(&st);
    let o = receptorctl(&a, &["work", "release", &id]);
    assert!(
        stdout(&o).contains(&format!("({id}, released)")),
        "{}",
        stdout(&o)
    );
    eventually(Duration::from_secs(5), "C's unit dir removed", || {
        !m.unit_dir("C", &rid).exists()
    });
    // Over the mesh, a forged signature is refused.
    let mut raw = RawControl::new(&a);
    assert_eq!(raw.line("connect C control"), "Connecting\n");
    let mut greeting = String::new();
    raw.r.read_line(&mut greeting).unwrap();
    let forged = format!(
        "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJhdWQiOlsiQyJdfQ.{}",
        "eHh4".repeat(85)
    );
    assert_eq!(
        raw.line(&format!(
            r#"{{"command":"work","subcommand":"submit","node":"C","worktype":"secure","signature":"{forged}"}}"#
        )),
        "ERROR: could not verify signature: crypto/rsa: verification error\n"
    );
}

#[test]
fn unreachable_node_fails_the_unit() {
    let mut m = Mesh::start(
        "remote-unreachable",
        "- work-remote:\n    unreachabletimeout: 3s\n",
        "",
    );
    let a = m.sock("A");
    let (id, _) = work_submit(&a, &["--node", "C", "sh", "--no-payload", SLOW]);
    wait_status(&m, "A", &id, "running", Duration::from_secs(10), |s| {
        s["State"] == 1
    });
    m.c.proc.kill();
    let st = wait_status(&m, "A", &id, "unit failed", Duration::from_secs(30), |s| {
        s["State"] == 3
    });
    assert_eq!(st["Detail"], "Remote node C was unreachable for 3s");
    // Its results end with what arrived.
    let o = receptorctl(&a, &["work", "results", &id]);
    assert!(slow_output().starts_with(&stdout(&o)), "{}", stdout(&o));
}

#[test]
fn tls_to_the_executing_node() {
    let dir = TempDir::new("remote-tls");
    let ca = Ca::new("mesh CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let (c_crt, c_key) = ca.issue(&dir, "C", &["C"]);
    let (a_crt, a_key) = ca.issue(&dir, "A", &["A"]);
    let other_ca = Ca::new("another CA").write(&dir, "other.crt");
    let a_extra = format!(
        "- tls-client:\n    name: good\n    cert: {a_crt}\n    key: {a_key}\n    rootcas: {ca_file}\n\
         - tls-client:\n    name: wrong\n    cert: {a_crt}\n    key: {a_key}\n    rootcas: {other_ca}\n"
    );
    let c_extra = format!(
        "- tls-server:\n    name: srv\n    cert: {c_crt}\n    key: {c_key}\n    clientcas: {ca_file}\n"
    );
    let m = Mesh::start_in(dir, &a_extra, &c_extra, "    tls: srv\n");
    let a = m.sock("A");

    // With the right client certificate, and secrets allowed over TLS (hidden in replies).
    let o = receptorctl(
        &a,
        &[
            "work",
            "submit",
            "--node",
            "C",
            "echo",
            "--tls-client",
            "good",
            "-a",
            "secret_token=s3",
            "--payload-literal",
            "over tls",
            "-f",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), m.logs());
    assert_eq!(stdout(&o), "over tls\n");
    let o = receptorctl(&a, &["work", "list"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (id, st) = list.as_object().unwrap().iter().next().unwrap();
    assert_eq!(st["ExtraData"]["TLSClient"], "good");
    assert_eq!(st["ExtraData"]["RemoteParams"], serde_json::json!({}));
    let file = std::fs::read_to_string(m.unit_dir("A", id).join("status")).unwrap();
    assert!(file.contains("\"secret_token\":\"s3\""), "{file}");

    // C's certificate is not trusted: the handshake fails, the unit fails at once.
    let (id, result) = work_submit(
        &a,
        &[
            "--node",
            "C",
            "echo",
            "--tls-client",
            "wrong",
            "--payload-literal",
            "x",
        ],
    );
    assert_eq!(result, "Job Submitted");
    let st = wait_status(&m, "A", &id, "TLS failure", Duration::from_secs(20), |s| {
        s["State"] == 3
    });
    assert!(
        st["Detail"]
            .as_str()
            .unwrap()
            .starts_with("TLS error connecting to remote service: "),
        "{st}"
    );
    let o = receptorctl(&a, &["work", "release", &id]);
    assert!(
        stdout(&o).contains(&format!("({id}, released)")),
        "{}",
        stdout(&o)
    );
    assert!(!m.unit_dir("A", &id).exists());
}

#[test]
fn submit_while_the_node_is_down() {
    let mut m = Mesh::start("remote-down", "", "");
    let a = m.sock("A");
    m.c.proc.kill();
    eventually(Duration::from_secs(15), "A to lose its route to C", || {
        status_json(&a)["RoutingTable"]["C"].is_null()
    });
    let (id, result) = work_submit(&a, &["--node", "C", "echo", "--payload-literal", "later"]);
    assert_eq!(result, "Job Submitted");
    let st = unit_status(&a, &id);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(0), Some("Starting Worker"))
    );
    m.restart("C");
    let st = wait_status(
        &m,
        "A",
        &id,
        "unit succeeded",
        Duration::from_secs(30),
        |s| s["State"] == 2,
    );
    assert_eq!(st["StdoutSize"], 6);
    let o = receptorctl(&a, &["work", "results", &id]);
    assert_eq!(stdout(&o), "later\n");
}

/// A finished unit leaves its status session to C idle for the next command; after C
/// restarted that session is dead, and a release must still reach the new C (on a new
/// session) and not hang.
#[test]
fn release_after_the_executor_restarted() {
    let mut m = Mesh::start("remote-pool-restart", "", "");
    let a = m.sock("A");
    let (id, _) = work_submit(&a, &["--node", "C", "echo", "--payload-literal", "pooled"]);
    wait_status(
        &m,
        "A",
        &id,
        "unit succeeded",
        Duration::from_secs(20),
        |s| s["State"] == 2,
    );
    let unit = m.unit_dir("A", &id);
    eventually(Duration::from_secs(10), "output copied to A", || {
        std::fs::read(unit.join("stdout")).is_ok_and(|o| o == b"pooled\n")
    });
    let rid = remote_id(&unit_status(&a, &id));
    m.restart("C");
    m.wait_route("A", "C");
    m.wait_route("C", "A");
    let t = Instant::now();
    let o = receptorctl(&a, &["work", "release", &id]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), m.logs());
    assert!(
        stdout(&o).contains(&format!("({id}, released)")),
        "{}",
        stdout(&o)
    );
    // The dead session is given up after 2 s, not QUIC's 30 s idle timeout.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    eventually(Duration::from_secs(20), "the unit gone from C", || {
        !m.unit_dir("C", &rid).exists()
    });
    eventually(Duration::from_secs(20), "the unit gone from A", || {
        !unit.exists()
    });
}
