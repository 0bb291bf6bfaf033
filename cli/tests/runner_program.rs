//! The `receptor-command-runner` program: it supervises a unit as `receptor --command-runner`
//! does (same arguments, status file, exit status, signals), and a node starts it from its own
//! directory when it is there, else runs itself with `--command-runner`.

mod support;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

fn small_runner() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_receptor-command-runner"))
}

/// A unit directory with an empty `stdin`, as a node makes one.
fn unit_dir(dir: &TempDir, name: &str) -> PathBuf {
    let d = dir.path(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("stdin"), "").unwrap();
    d
}

/// The arguments a node gives a supervisor.
fn runner_args(level: &str, command: &str, params: &str, unit: &Path) -> Vec<String> {
    [
        "--node",
        "id=worker",
        "--log-level",
        level,
        "--command-runner",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        format!("command={command}"),
        format!("params={params}"),
        format!("unitdir={}", unit.display()),
    ])
    .collect()
}

fn run_runner(program: &Path, command: &str, params: &str, unit: &Path) -> Output {
    Command::new(program)
        .args(runner_args("error", command, params, unit))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn status_file(unit: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(unit.join("status")).unwrap()).unwrap()
}

#[test]
fn runs_a_unit_as_receptor_command_runner_does() {
    let dir = TempDir::new("runner-same");
    let cases = [
        ("sh", "-c 'echo out; echo err >&2; exit 3'"),
        ("sh", "-c 'kill -TERM $$'"),
        ("seq", "3"),
        ("no-such-command-for-receptor-tests", ""),
        ("sh", "-c 'unterminated"),
    ];
    for (i, (command, params)) in cases.iter().enumerate() {
        let big = unit_dir(&dir, &format!("big{i}"));
        let small = unit_dir(&dir, &format!("small{i}"));
        let by_receptor = run_runner(&receptor_bin(), command, params, &big);
        let by_small = run_runner(&small_runner(), command, params, &small);
        let what = format!("{command} {params}");
        assert_eq!(by_small.status.code(), by_receptor.status.code(), "{what}");
        assert_eq!(stdout(&by_small), stdout(&by_receptor), "{what}");
        assert_eq!(status_file(&small), status_file(&big), "{what}");
        assert_eq!(
            std::fs::read(small.join("stdout")).ok(),
            std::fs::read(big.join("stdout")).ok(),
            "{what}"
        );
    }
    // The figures themselves, so that two equally wrong programs fail too.
    let small = dir.path("small0");
    assert_eq!(std::fs::read(small.join("stdout")).unwrap(), b"out\nerr\n");
    let st = status_file(&small);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(3), Some("exit status 3"))
    );
    assert_eq!(st["StdoutSize"].as_i64(), Some(8));
    assert_eq!(
        status_file(&dir.path("small1"))["Detail"],
        "signal: terminated"
    );
    assert_eq!(status_file(&dir.path("small2"))["Detail"], "exit status 0");
    let missing = status_file(&dir.path("small3"));
    assert_eq!(
        missing["Detail"],
        "exec: \"no-such-command-for-receptor-tests\": executable file not found in $PATH"
    );
    let o = run_runner(&small_runner(), "true", "", &dir.path("small2"));
    assert_eq!(o.status.code(), Some(0));
    let o = run_runner(&small_runner(), "sh", "-c 'exit 3'", &dir.path("small2"));
    assert_eq!(o.status.code(), Some(3));
    let o = run_runner(
        &small_runner(),
        "no-such-command-for-receptor-tests",
        "",
        &small,
    );
    assert_eq!(o.status.code(), Some(255));
}

#[test]
fn a_bad_command_line_is_refused() {
    let o = Command::new(small_runner())
        .args(["--node", "id=worker", "--command-runner", "command=true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "Error: error in --command-runner: required parameters missing: params, unitdir\n"
    );
    let o = Command::new(small_runner())
        .args(["--tcp-listener", "port=1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "Error: command error: unknown config type tcp-listener\n"
    );
}

/// A supervisor process group, killed when dropped so that a failing test leaves nothing
/// running.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn sigterm_kills_the_command_and_fails_the_unit() {
    let dir = TempDir::new("runner-term");
    let unit = unit_dir(&dir, "u");
    let mut child = Command::new(small_runner())
        .args(runner_args("error", "sleep", "30", &unit))
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(i32::try_from(child.id()).unwrap());
    eventually(Duration::from_secs(10), "sleep running", || {
        std::fs::read(unit.join("status"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|st| st["State"] == 1)
    });
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(255));
    let st = status_file(&unit);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(3), Some("Killed"))
    );
}

/// `receptor` (and what else `files` names, from the build) in `<dir>/bin`: hard links where
/// the file system allows, copies elsewhere.
fn install(dir: &TempDir, files: &[(&Path, &str)]) -> PathBuf {
    let bin = dir.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (from, name) in files {
        let to = bin.join(name);
        if std::fs::hard_link(from, &to).is_err() {
            std::fs::copy(from, &to).unwrap();
        }
    }
    bin
}

/// A node `W` run from `bin/receptor` with `sleep` and `echo` (cat) work types.
fn start_node(dir: &TempDir, bin: &Path) -> (Proc, PathBuf) {
    let sock = dir.path("W.sock");
    let cfg = dir.path("W.yml");
    std::fs::write(
        &cfg,
        format!(
            "---\n- node:\n    id: W\n    datadir: {}\n- local-only\n- control-service:\n    filename: {}\n\
             - work-command:\n    worktype: sleep\n    command: sleep\n    params: 30\n\
             - work-command:\n    worktype: echo\n    command: cat\n",
            dir.path("data").display(),
            sock.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(bin.join("receptor"));
    cmd.arg("-c").arg(&cfg);
    let node = spawn_logged(dir, "W", cmd);
    wait_for_path(&sock, Duration::from_secs(10));
    (node, sock)
}

/// Starts a `sleep` unit on the node and returns the program its supervisor runs (from
/// `/proc`) and its arguments; then cancels it.
fn supervisor_of_a_unit(sock: &Path) -> (PathBuf, Vec<String>) {
    let (id, result) = work_submit(sock, &["sleep", "--no-payload"]);
    assert!(result.contains("Job Started"), "{result}");
    let mut st = Value::Null;
    eventually(Duration::from_secs(20), "sleep running", || {
        st = unit_status(sock, &id);
        st["State"] == 1
    });
    let pid = st["ExtraData"]["Pid"].as_i64().unwrap();
    let _group = Group(i32::try_from(pid).unwrap());
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // The supervisor takes a cancel as receptor's does: the unit is Canceled.
    let o = receptorctl(sock, &["work", "cancel", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = unit_status(sock, &id);
    assert_eq!(
        (st["State"].as_i64(), st["Detail"].as_str()),
        (Some(4), Some("Canceled"))
    );
    (exe, args)
}

/// A unit's output comes back through whichever supervisor ran it.
fn echo_round_trip(sock: &Path) {
    let o = receptorctl(
        sock,
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
}

#[test]
fn a_node_starts_the_small_runner_beside_it() {
    let dir = TempDir::new("runner-beside");
    let bin = install(
        &dir,
        &[
            (&receptor_bin(), "receptor"),
            (&small_runner(), "receptor-command-runner"),
        ],
    );
    let (_node, sock) = start_node(&dir, &bin);
    let (exe, args) = supervisor_of_a_unit(&sock);
    assert_eq!(exe, bin.join("receptor-command-runner"));
    let unit = args
        .last()
        .unwrap()
        .strip_prefix("unitdir=")
        .unwrap()
        .to_owned();
    assert_eq!(args, runner_args("info", "sleep", "30", Path::new(&unit)));
    assert!(
        unit.starts_with(dir.path("data").to_str().unwrap()),
        "{unit}"
    );
    echo_round_trip(&sock);
}

#[test]
fn without_the_small_runner_a_node_runs_itself() {
    let dir = TempDir::new("runner-fallback");
    let bin = install(&dir, &[(&receptor_bin(), "receptor")]);
    // Not executable: not used (starting it would fail every unit).
    let placeholder = bin.join("receptor-command-runner");
    std::fs::write(&placeholder, "#!/bin/sh\nexit 99\n").unwrap();
    let (_node, sock) = start_node(&dir, &bin);
    let (exe, args) = supervisor_of_a_unit(&sock);
    assert_eq!(exe, bin.join("receptor"));
    assert_eq!(args.get(4).map(String::as_str), Some("--command-runner"));
    echo_round_trip(&sock);
    // Absent: the same. Installed while the node runs: its next unit uses it.
    std::fs::remove_file(&placeholder).unwrap();
    assert_eq!(supervisor_of_a_unit(&sock).0, bin.join("receptor"));
    if std::fs::hard_link(small_runner(), &placeholder).is_err() {
        std::fs::copy(small_runner(), &placeholder).unwrap();
    }
    assert_eq!(supervisor_of_a_unit(&sock).0, placeholder);
}

/// The status file's record, if it is there and whole.
fn status_now(unit: &Path) -> Option<Value> {
    std::fs::read(unit.join("status"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

#[test]
fn the_status_is_rewritten_when_the_output_grows_and_not_while_it_is_quiet() {
    let dir = TempDir::new("runner-ticks");
    let unit = unit_dir(&dir, "u");
    let mut child = Command::new(small_runner())
        .args(runner_args(
            "error",
            "sh",
            "-c 'echo a; sleep 3; echo bb; sleep 30'",
            &unit,
        ))
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(i32::try_from(child.id()).unwrap());
    let reported = |size: i64| {
        status_now(&unit).is_some_and(|st| st["State"] == 1 && st["StdoutSize"] == size)
    };
    eventually(Duration::from_secs(10), "a reported", || reported(2));
    // Quiet: no write for a second (Go writes four times).
    let modified = || {
        std::fs::metadata(unit.join("status"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = modified();
    std::thread::sleep(Duration::from_secs(1));
    let out = std::fs::read(unit.join("stdout")).unwrap();
    if out == b"a\n" {
        assert_eq!(
            modified(),
            before,
            "rewritten while the output did not change"
        );
    }
    // Grown: reported while the command runs on.
    eventually(Duration::from_secs(10), "bb reported", || reported(5));
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(255));
    assert_eq!(status_file(&unit)["Detail"], "Killed");
}
