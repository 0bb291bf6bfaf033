//! Local units of work (work-command) end to end: real receptor processes, real command-runner
//! supervisors, driven by the real receptorctl and by the raw control protocol.

mod support;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::*;

const TYPES: &str = "
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
- work-command:
    worktype: sleep
    command: sleep
    allowruntimeparams: true
- work-command:
    worktype: missing
    command: no-such-command-for-receptor-tests
";

/// A node `W` with the work types above, its socket and data directory.
struct Node {
    proc: Proc,
    sock: PathBuf,
    data: PathBuf,
    cfg: String,
}

fn start_node(dir: &TempDir, name: &str) -> Node {
    let sock = dir.path(&format!("{name}.sock"));
    let data = dir.path("data");
    let cfg = format!(
        "---\n- node:\n    id: W\n    datadir: {}\n- local-only\n- control-service:\n    filename: {}\n{TYPES}",
        data.display(),
        sock.display()
    );
    let proc = start_yaml(dir, name, &cfg);
    wait_for_path(&sock, Duration::from_secs(5));
    Node {
        proc,
        sock,
        data,
        cfg,
    }
}

impl Node {
    fn unit_dir(&self, id: &str) -> PathBuf {
        self.data.join("W").join(id)
    }

    /// Kills this receptor (SIGKILL: nothing gets cleaned up) and starts it again.
    fn restart(&mut self, dir: &TempDir, name: &str) {
        self.proc.kill();
        let _ = std::fs::remove_file(&self.sock);
        self.proc = start_yaml(dir, name, &self.cfg);
        wait_for_path(&self.sock, Duration::from_secs(5));
    }
}

/// `work submit` without following; returns the unit ID of a started job.
fn submit(sock: &Path, args: &[&str]) -> String {
    let (id, result) = work_submit(sock, args);
    assert!(result.contains("Job Started"), "{result}");
    id
}

/// A raw control connection to this file's node W.
fn control_w(sock: &Path) -> RawControl {
    let raw = RawControl::new(sock);
    assert_eq!(raw.greeting, "Receptor Control, node W\n");
    raw
}

/// `work status ID` on node W.
fn unit_status(sock: &Path, id: &str) -> Value {
    control_w(sock).json(&format!("work status {id}"))
}

fn wait_state(sock: &Path, id: &str, state: i64, what: &str) -> Value {
    let mut last = Value::Null;
    eventually(Duration::from_secs(20), what, || {
        last = unit_status(sock, id);
        last["State"] == state
    });
    last
}

#[test]
fn submit_and_follow() {
    let dir = TempDir::new("work-follow");
    let n = start_node(&dir, "W");
    // cat echoes the payload; receptorctl adds a newline to a literal payload.
    let o = receptorctl(
        &n.sock,
        &[
            "work",
            "submit",
            "echo",
            "--node",
            "localhost",
            "--payload-literal",
            "hello",
            "-f",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");

    // 200000 lines arrive byte for byte.
    let o = receptorctl(&n.sock, &["work", "submit", "seq", "--no-payload", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(o.stdout.len(), want.len());
    assert!(o.stdout == want.as_bytes(), "seq output differs");

    // A payload file is copied exactly into stdin (binary, larger than one read).
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let pfile = dir.path("payload.bin");
    std::fs::write(&pfile, &payload).unwrap();
    let id = submit(&n.sock, &["echo", "--payload", pfile.to_str().unwrap()]);
    wait_state(&n.sock, &id, 2, "echo of the payload file");
    assert_eq!(
        std::fs::read(n.unit_dir(&id).join("stdin")).unwrap(),
        payload
    );
    let o = receptorctl(&n.sock, &["work", "results", &id]);
    assert!(o.status.success());
    assert!(o.stdout == payload, "payload round trip differs");

    // Results from an offset (raw protocol, receptorctl's form).
    let mut raw = control_w(&n.sock);
    let header = raw.line(&format!("work results {id} 299990"));
    assert_eq!(header, format!("Streaming results for work unit {id}\n"));
    raw.w.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    raw.r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, payload[299_990..]);
}

#[test]
fn failures_and_runtime_params() {
    let dir = TempDir::new("work-fail");
    let n = start_node(&dir, "W");
    // A failing command: its output, then receptorctl's error and exit status 1.
    let o = receptorctl(
        &n.sock,
        &[
            "work",
            "submit",
            "sh",
            "--no-payload",
            "-f",
            "'echo out; echo err >&2; exit 3'",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "out\nerr\n");
    let err = stderr(&o);
    assert!(err.contains("Remote unit failed: exit status 3"), "{err}");

    // Killed by a signal: Go's ProcessState text.
    let id = submit(&n.sock, &["sh", "--no-payload", "'kill -9 $$'"]);
    let st = wait_state(&n.sock, &id, 3, "killed command fails");
    assert_eq!(st["Detail"], "signal: killed");

    // A command that cannot be found: Go's exec error as the detail.
    let id = submit(&n.sock, &["missing", "--no-payload"]);
    let st = wait_state(&n.sock, &id, 3, "missing command fails");
    assert_eq!(
        st["Detail"],
        "exec: \"no-such-command-for-receptor-tests\": executable file not found in $PATH"
    );
    // The runner writes Failed, then exits; the node clears ExtraData when it sees the exit
    // (as Go's), so a status read in between still has the runner's Pid.
    eventually(Duration::from_secs(20), "ExtraData cleared", || {
        unit_status(&n.sock, &id)["ExtraData"] == Value::Null
    });

    // Runtime params without allowruntimeparams: refused before any payload is asked for.
    let o = receptorctl(&n.sock, &["work", "submit", "echo", "--no-payload", "x"]);
    assert_eq!(o.status.code(), Some(101));
    let err = stderr(&o);
    assert!(
        err.contains("extra params provided but not allowed"),
        "{err}"
    );
    // Raw errors: unknown type, ttl, signature, unknown unit.
    let mut raw = control_w(&n.sock);
    assert_eq!(
        raw.line("work submit localhost nosuch"),
        "ERROR: unknown work type nosuch\n"
    );
    assert_eq!(
        raw.line(
            r#"{"command":"work","subcommand":"submit","node":"W","worktype":"echo","ttl":"5s"}"#
        ),
        "ERROR: ttl option is intended for remote work only\n"
    );
    assert_eq!(
        raw.line(r#"{"command":"work","subcommand":"submit","node":"W","worktype":"echo","signature":"x"}"#),
        "ERROR: work type did not expect a signature\n"
    );
    assert_eq!(
        raw.line("work status nosuch"),
        "ERROR: unknown work unit nosuch\n"
    );
    assert_eq!(
        raw.line("work cancel nosuch"),
        "ERROR: unknown work unit nosuch\n"
    );
    assert_eq!(
        raw.line("work results nosuch"),
        "ERROR: unknown work unit nosuch\n"
    );
    assert_eq!(
        raw.line("work list ../W"),
        "ERROR: unknown work unit ../W\n"
    );
}

#[test]
fn list_status_cancel_release() {
    let dir = TempDir::new("work-cancel");
    let n = start_node(&dir, "W");
    let id = submit(&n.sock, &["sleep", "--no-payload", "30"]);
    let st = wait_state(&n.sock, &id, 1, "sleep running");
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
    assert_eq!(st["StateName"], "Running");
    assert_eq!(st["WorkType"], "sleep");
    assert!(st["Detail"].as_str().unwrap().starts_with("Running: PID "));
    assert_eq!(json_keys(&st["ExtraData"]), ["Params", "Pid"]);
    assert_eq!(st["ExtraData"]["Params"], "30");
    let supervisor = st["ExtraData"]["Pid"].as_i64().unwrap();
    assert!(supervisor > 0);
    // The status file keeps Go's field order.
    let file = std::fs::read_to_string(n.unit_dir(&id).join("status")).unwrap();
    assert!(
        file.starts_with("{\"State\":1,\"Detail\":\"Running: PID "),
        "{file}"
    );
    assert!(
        file.contains(",\"WorkType\":\"sleep\",\"ExtraData\":{\"Pid\":"),
        "{file}"
    );

    // work list: every unit, Go's keys; receptorctl's -q prints the IDs.
    let o = receptorctl(&n.sock, &["work", "list"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json_keys(&list), std::slice::from_ref(&id));
    assert_eq!(
        json_keys(&list[&id]),
        [
            "Detail",
            "ExtraData",
            "State",
            "StateName",
            "StdoutSize",
            "WorkType"
        ]
    );
    let o = receptorctl(&n.sock, &["work", "list", "-q"]);
    assert_eq!(stdout(&o).trim(), id);

    // Cancel: the supervisor and its command go, the unit is Canceled.
    let o = receptorctl(&n.sock, &["work", "cancel", &id]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains(&format!("({id}, cancelled)")),
        "{}",
        stdout(&o)
    );
    let st = unit_status(&n.sock, &id);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(4), Some("Canceled"))
    );
    assert_eq!(st["StateName"], "Canceled");
    assert!(
        !Path::new(&format!("/proc/{supervisor}/cmdline")).exists()
            || std::fs::read(format!("/proc/{supervisor}/cmdline"))
                .unwrap()
                .is_empty()
    );
    // Cancelling again is fine.
    assert_eq!(
        control_w(&n.sock).line(&format!("work cancel {id}")),
        format!("{{\"cancelled\":\"{id}\"}}\n")
    );

    // A results stream on a Canceled unit never ends by itself (as in Go), but it ends when
    // its client goes away.
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", n.proc.child.id()))
            .unwrap()
            .count()
    };
    let before = fds();
    let mut raw = control_w(&n.sock);
    raw.line(&format!("work results {id}"));
    raw.w.shutdown(std::net::Shutdown::Write).unwrap();
    eventually(Duration::from_secs(5), "results session to start", || {
        fds() > before
    });
    drop(raw);
    eventually(Duration::from_secs(5), "results session to end", || {
        fds() <= before
    });

    // Release removes the directory and the unit. Releasing it again, or an unknown unit, is
    // Go's error; force-release of an unknown unit succeeds quietly (Go issue #758).
    assert!(n.unit_dir(&id).is_dir());
    let o = receptorctl(&n.sock, &["work", "release", &id]);
    assert!(o.status.success());
    assert!(stdout(&o).contains(&format!("({id}, released)")));
    assert!(!n.unit_dir(&id).exists());
    let o = receptorctl(&n.sock, &["work", "list"]);
    assert_eq!(stdout(&o).trim(), "{}");
    let mut raw = control_w(&n.sock);
    assert_eq!(
        raw.line(&format!("work release {id}")),
        format!("ERROR: unknown work unit {id}\n")
    );
    raw = control_w(&n.sock);
    assert_eq!(
        raw.line("work force-release gone"),
        "{\"released\":\"gone\"}\n"
    );
    // IDs that could never name a unit are refused as such, forced or not, and nothing
    // outside the data directory is touched.
    let outside = dir.path("A");
    std::fs::create_dir_all(&outside).unwrap();
    for bad in ["../A", "..", ".", "a/b"] {
        for op in ["release", "force-release"] {
            raw = control_w(&n.sock);
            let reply = raw.line(&format!("work {op} {bad}"));
            assert_eq!(
                reply,
                format!(
                    "ERROR: invalid work unit ID {bad:?}: a unit ID is one path component (not \
                     empty, . or .., no / or NUL)\n"
                ),
                "work {op} {bad}"
            );
        }
    }
    assert!(outside.is_dir());
    raw = control_w(&n.sock);

    // Release of a running unit cancels it first.
    let id2 = submit(&n.sock, &["sleep", "--no-payload", "30"]);
    wait_state(&n.sock, &id2, 1, "second sleep running");
    assert_eq!(
        raw.line(&format!("work release {id2}")),
        format!("{{\"released\":\"{id2}\"}}\n")
    );
    assert!(!n.unit_dir(&id2).exists());
}

#[test]
fn unit_survives_restart() {
    let dir = TempDir::new("work-restart");
    let mut n = start_node(&dir, "W");
    let id = submit(
        &n.sock,
        &[
            "sh",
            "--no-payload",
            "'for i in $(seq 1 30); do echo line $i; sleep 0.1; done'",
        ],
    );
    let st = wait_state(&n.sock, &id, 1, "unit running");
    let supervisor = st["ExtraData"]["Pid"].as_i64().unwrap();
    n.restart(&dir, "W");
    // The supervisor kept running; the unit is picked up again.
    let st = unit_status(&n.sock, &id);
    assert!(st["State"] == 1 || st["State"] == 2, "after restart: {st}");
    if st["State"] == 1 {
        assert_eq!(st["ExtraData"]["Pid"].as_i64(), Some(supervisor));
    }
    let o = receptorctl(&n.sock, &["work", "results", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    assert_eq!(stdout(&o), want);
    let st = wait_state(&n.sock, &id, 2, "unit finished");
    assert_eq!(st["Detail"], "exit status 0");
    assert_eq!(st["StdoutSize"].as_u64(), Some(want.len() as u64));
    eventually(Duration::from_secs(5), "ExtraData cleared", || {
        unit_status(&n.sock, &id)["ExtraData"].is_null()
    });

    // A unit that was still waiting for its payload when receptor died fails at restart.
    let mut raw = control_w(&n.sock);
    let created = raw
        .line(r#"{"command":"work","subcommand":"submit","node":"localhost","worktype":"echo"}"#);
    let pending = created
        .strip_prefix("Work unit created with ID ")
        .and_then(|r| r.strip_suffix(". Send stdin data and EOF.\n"))
        .unwrap()
        .to_owned();
    n.restart(&dir, "W");
    drop(raw);
    let st = unit_status(&n.sock, &pending);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(3), Some("Pending at restart"))
    );

    // A unit of a type this node does not offer is listed as unknown and can be released.
    let foreign = n.unit_dir("Foreign1");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(
        foreign.join("status"),
        "{\"State\":2,\"Detail\":\"done\",\"StdoutSize\":0,\"WorkType\":\"gone\",\"ExtraData\":null}\n",
    )
    .unwrap();
    n.restart(&dir, "W");
    let st = unit_status(&n.sock, "Foreign1");
    assert_eq!(st["ExtraData"], "Unknown WorkType");
    assert_eq!(
        (st["WorkType"].as_str(), st["StateName"].as_str()),
        (Some("gone"), Some("Succeeded"))
    );
    assert_eq!(
        control_w(&n.sock).line("work release Foreign1"),
        "{\"released\":\"Foreign1\"}\n"
    );
    assert!(!foreign.exists());

    // A cancel after a restart reaches the adopted supervisor.
    let id = submit(&n.sock, &["sleep", "--no-payload", "30"]);
    wait_state(&n.sock, &id, 1, "sleep running");
    n.restart(&dir, "W");
    let o = receptorctl(&n.sock, &["work", "cancel", &id]);
    assert!(o.status.success());
    let st = unit_status(&n.sock, &id);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(4), Some("Canceled"))
    );
}

#[test]
fn payload_streams_until_half_close() {
    let dir = TempDir::new("work-payload");
    let n = start_node(&dir, "W");
    let mut raw = control_w(&n.sock);
    // receptorctl's JSON form; payload bytes may follow the command line in the same write.
    raw.w
        .write_all(
            b"{\"command\": \"work\", \"subcommand\": \"submit\", \"node\": \"localhost\", \"worktype\": \"echo\"}\nfirst ",
        )
        .unwrap();
    let mut l = String::new();
    raw.r.read_line(&mut l).unwrap();
    let id = l
        .strip_prefix("Work unit created with ID ")
        .and_then(|r| r.strip_suffix(". Send stdin data and EOF.\n"))
        .unwrap()
        .to_owned();
    // Still waiting for input while the client keeps sending.
    std::thread::sleep(Duration::from_millis(300));
    let st = unit_status(&n.sock, &id);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(0), Some("Waiting for Input Data"))
    );
    raw.w.write_all(b"second").unwrap();
    raw.w.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    raw.r.read_to_string(&mut reply).unwrap();
    assert_eq!(
        reply,
        format!("{{\"result\":\"Job Started\",\"unitid\":\"{id}\"}}\n")
    );
    wait_state(&n.sock, &id, 2, "echo done");
    let o = receptorctl(&n.sock, &["work", "results", &id]);
    assert_eq!(stdout(&o), "first second");
}

/// The long-poll extension of the JSON `work status` (what our nodes send each other for
/// remote units): the reply waits for State or Detail to differ from the known ones, or for
/// `waitms`; the plain forms and a mismatch answer at once. Output and completion reach a
/// `work results` stream without Go's 250 ms polling.
#[test]
fn status_long_poll_and_prompt_results() {
    use std::time::Instant;
    let dir = TempDir::new("work-longpoll");
    let n = start_node(&dir, "W");
    let id = submit(&n.sock, &["sleep", "--no-payload", "2"]);
    let st = wait_state(&n.sock, &id, 1, "sleep running");
    let detail = st["Detail"].as_str().unwrap().to_owned();
    let ask = |state: i64, detail: &str, ms: u64| {
        let cmd = format!(
            "{{\"command\":\"work\",\"subcommand\":\"status\",\"unitid\":\"{id}\",\
             \"waitdetail\":{},\"waitms\":{ms},\"waitstate\":{state}}}",
            serde_json::to_string(detail).unwrap()
        );
        let t = Instant::now();
        let v = control_w(&n.sock).json(&cmd);
        (v, t.elapsed())
    };
    // Known state: held until waitms.
    let (v, took) = ask(1, &detail, 300);
    assert_eq!(v["State"], 1, "{v}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    // Another state known: at once.
    let (v, took) = ask(0, "Starting Worker", 10_000);
    assert_eq!(v["State"], 1, "{v}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Known state: answered when the unit completes, long before waitms.
    let (v, took) = ask(1, &detail, 20_000);
    assert_eq!(v["State"], 2, "{v}");
    assert_eq!(v["Detail"], "exit status 0", "{v}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Unknown units are errors, as without the extension.
    let l = control_w(&n.sock).line(
        "{\"command\":\"work\",\"subcommand\":\"status\",\"unitid\":\"nope\",\
         \"waitdetail\":\"\",\"waitms\":5000,\"waitstate\":0}",
    );
    assert_eq!(l, "ERROR: unknown work unit nope\n");

    // Short units followed with receptorctl and released as soon as their stream ends (the
    // release may meet a supervisor that has written its final state but not exited yet).
    let t = Instant::now();
    for i in 0..5 {
        let o = receptorctl(
            &n.sock,
            &[
                "work",
                "submit",
                "echo",
                "--node",
                "localhost",
                "--payload-literal",
                &format!("quick {i}"),
                "-f",
                "--rm",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!("quick {i}\n")),
            "{}",
            stdout(&o)
        );
    }
    eprintln!("5 followed echo units took {:?}", t.elapsed());
}

/// A unit's command-runner process group (the runner and its command), killed when dropped so
/// that a failing test leaves nothing running.
struct RunnerGroup(i32);

impl RunnerGroup {
    fn of(status: &Value) -> Self {
        let pid = status["ExtraData"]["Pid"].as_i64().unwrap();
        Self(i32::try_from(pid).unwrap())
    }

    fn kill(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for RunnerGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn killed_command_runner_fails_the_unit() {
    let dir = TempDir::new("work-runner-killed");
    let mut n = start_node(&dir, "W");

    // Killed while the node follows it: the unit fails at once, naming how it ended.
    let id = submit(&n.sock, &["sleep", "--no-payload", "30"]);
    let group = RunnerGroup::of(&wait_state(&n.sock, &id, 1, "sleep running"));
    group.kill();
    let st = wait_state(&n.sock, &id, 3, "unit failed");
    assert_eq!(
        st["Detail"],
        "Command runner exited unexpectedly (signal: killed)"
    );
    assert!(st["ExtraData"].is_null(), "{st}");

    // Killed while the node was down: found out when the node starts again.
    let id = submit(&n.sock, &["sleep", "--no-payload", "30"]);
    let group = RunnerGroup::of(&wait_state(&n.sock, &id, 1, "sleep running"));
    n.proc.kill();
    group.kill();
    n.restart(&dir, "W");
    let st = unit_status(&n.sock, &id);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (
            Some(3),
            Some("Command runner exited unexpectedly (unknown status)")
        )
    );
}
