//! AWX's use of receptor end to end, with ansible-runner and ansible-core from PyPI:
//!
//! ```text
//! ansible-runner transmit DIR -p play.yml | receptorctl --socket A.sock work submit --node C \
//!     ansible-runner --payload - -f | ansible-runner process DIR
//! ```
//!
//! through A -tcp- B -tcp- C, where C offers `work-command: worktype=ansible-runner
//! command=ansible-runner params=worker`. The playbook runs on C with a local connection; the
//! payload (the zipped project) is a few MiB, one event is a JSON line of several hundred KiB,
//! and the artifacts come back zipped at the end of the output.
//!
//! ansible-runner is found in the directory `$ANSIBLE_RUNNER` (a venv's `bin`; `.ci/run` sets
//! it, and then a missing tool fails the test), else in `.venv/bin` at the workspace root;
//! without either the test prints why and passes.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The playbook: a debug task, a command, and a command with a big output (one JSON line of
/// several hundred KiB in the event stream).
const PLAYBOOK: &str = r#"- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: say hello
      debug:
        msg: "hello through receptor"
    - name: run a command
      command: echo ran-on-worker
    - name: a big output
      command: seq 1 30000
"#;

/// How long the whole pipeline may take.
const DEADLINE: Duration = Duration::from_secs(180);

/// The directory holding `ansible-runner`, or `None` to skip.
fn runner_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ANSIBLE_RUNNER") {
        let dir = PathBuf::from(dir);
        for tool in ["ansible-runner", "ansible-playbook"] {
            assert!(
                dir.join(tool).is_file(),
                "ANSIBLE_RUNNER={} has no {tool}: `.ci/run` installs ansible-runner and \
                 ansible-core into .venv",
                dir.display()
            );
        }
        return Some(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin");
    let found = ["ansible-runner", "ansible-playbook"]
        .iter()
        .all(|t| dir.join(t).is_file());
    if !found {
        eprintln!(
            "SKIPPED: ansible-runner not found in {} and ANSIBLE_RUNNER not set \
             (`.ci/run` installs it)",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

/// Processes of the pipeline, killed (and reaped) when dropped, also when the test fails.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Removes ANSI colour sequences.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn read_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn playbook_through_two_hops() {
    let Some(bin) = runner_dir() else { return };
    let dir = TempDir::new("ansible-runner");
    let home = dir.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env: Vec<(&str, &str)> = vec![
        ("PATH", &path),
        ("HOME", home.to_str().unwrap()),
        ("ANSIBLE_NOCOLOR", "1"),
        ("ANSIBLE_FORCE_COLOR", "0"),
    ];

    // The mesh; C runs ansible-runner's worker.
    let [a_yaml, b_yaml, c_yaml] = line_mesh_yaml(
        &dir,
        free_port(),
        "",
        "",
        "- work-command:\n    worktype: ansible-runner\n    command: ansible-runner\n    params: worker\n",
    );
    let nodes = [
        start_yaml(&dir, "B", &b_yaml),
        start_yaml(&dir, "A", &a_yaml),
        start_yaml_env(&dir, "C", &c_yaml, &env),
    ];
    let logs = || {
        nodes
            .iter()
            .map(|n| format!("==== {} ====\n{}", n.name, n.log_text()))
            .collect::<String>()
    };
    let a = dir.path("A.sock");
    for n in ["A", "B", "C"] {
        wait_for_path(&dir.path(&format!("{n}.sock")), Duration::from_secs(5));
    }
    eventually(Duration::from_secs(15), "a route from A to C", || {
        status_json(&a)["RoutingTable"]["C"].is_string()
    });
    eventually(Duration::from_secs(15), "a route from C to A", || {
        status_json(&dir.path("C.sock"))["RoutingTable"]["A"].is_string()
    });

    // The project: transmit packs it, process unpacks the results into another directory.
    let project = dir.path("project");
    std::fs::create_dir_all(project.join("project")).unwrap();
    std::fs::write(project.join("project/play.yml"), PLAYBOOK).unwrap();
    // A payload of some size: 2 MiB that do not compress, sent base64 in the zipped project.
    let noise: Vec<u8> = (0..2u32 << 20)
        .map(|i| {
            let mut x = i.wrapping_mul(0x9E37_79B1);
            x ^= x >> 15;
            x = x.wrapping_mul(0x85EB_CA77);
            x ^= x >> 13;
            x = x.wrapping_mul(0xC2B2_AE35);
            x ^= x >> 16;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(project.join("project/noise.bin"), &noise).unwrap();
    let out_dir = dir.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();

    let tool = |name: &str| {
        let mut c = Command::new(bin.join(name));
        c.envs(env.iter().copied()).current_dir(&dir.0);
        c
    };
    let mut kids = Kids(Vec::new());
    let mut transmit = tool("ansible-runner")
        .args(["transmit", project.to_str().unwrap(), "-p", "play.yml"])
        .args(["--ident", "e2e"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path("transmit.err")).unwrap())
        .spawn()
        .unwrap();
    let payload = transmit.stdout.take().unwrap();
    kids.0.push(transmit);
    let mut submit = Command::new(receptorctl_bin())
        .arg("--socket")
        .arg(&a)
        .args([
            "work",
            "submit",
            "--node",
            "C",
            "ansible-runner",
            "--payload",
            "-",
            "-f",
        ])
        .stdin(Stdio::from(payload))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path("submit.err")).unwrap())
        .spawn()
        .unwrap();
    let results = submit.stdout.take().unwrap();
    kids.0.push(submit);
    let process = tool("ansible-runner")
        .args(["process", out_dir.to_str().unwrap(), "--ident", "e2e"])
        .stdin(Stdio::from(results))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path("process.err")).unwrap())
        .spawn()
        .unwrap();
    kids.0.push(process);

    // Collect what `process` prints while waiting for all three to end.
    let mut shown = kids.0[2].stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = shown.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let mut codes = [None, None, None];
    while codes.iter().any(Option::is_none) {
        for (i, c) in kids.0.iter_mut().enumerate() {
            if codes[i].is_none() {
                codes[i] = c.try_wait().unwrap().map(|s| s.code());
            }
        }
        if start.elapsed() > DEADLINE {
            drop(kids);
            panic!(
                "the pipeline did not finish in {DEADLINE:?} (exited: {codes:?})\n\
                 transmit: {}\nsubmit: {}\nprocess: {}\n{}",
                read_text(&dir.path("transmit.err")),
                read_text(&dir.path("submit.err")),
                read_text(&dir.path("process.err")),
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let shown = plain(&reader.join().unwrap());
    let why = || {
        format!(
            "exit codes (transmit, submit, process): {codes:?}\nprocess output:\n{shown}\n\
             transmit: {}\nsubmit: {}\nprocess: {}\n{}",
            read_text(&dir.path("transmit.err")),
            read_text(&dir.path("submit.err")),
            read_text(&dir.path("process.err")),
            logs()
        )
    };
    assert_eq!(codes, [Some(Some(0)); 3], "{}", why());

    // The play recap, as `process` shows it from the worker's events.
    let recap = shown
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("ok="))
        .unwrap_or_else(|| panic!("no recap\n{}", why()));
    assert!(recap.contains("ok=3"), "{recap}\n{}", why());
    assert!(recap.contains("failed=0"), "{recap}\n{}", why());
    assert!(recap.contains("unreachable=0"), "{recap}\n{}", why());
    assert!(shown.contains("hello through receptor"), "{}", why());

    // The artifacts came back through the zipped stream: status, rc and every event, the
    // big command output whole.
    let artifacts = out_dir.join("artifacts/e2e");
    assert_eq!(read_text(&artifacts.join("status")).trim(), "successful");
    assert_eq!(read_text(&artifacts.join("rc")).trim(), "0");
    let events: Vec<String> = std::fs::read_dir(artifacts.join("job_events"))
        .unwrap()
        .map(|e| read_text(&e.unwrap().path()))
        .collect();
    assert!(
        events.iter().any(|e| e.contains("ran-on-worker")),
        "no event with the command's output"
    );
    let seq = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .find_map(|e| {
            let out = e["event_data"]["res"]["stdout"].as_str()?;
            out.starts_with("1\n2\n").then(|| out.to_owned())
        })
        .expect("the big command's event");
    let want: Vec<String> = (1..=30000).map(|i| i.to_string()).collect();
    assert_eq!(seq, want.join("\n"));

    // The unit on A ended as it should.
    let o = receptorctl(&a, &["work", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let units = list.as_object().unwrap();
    assert_eq!(units.len(), 1, "{list}");
    let (_, st) = units.iter().next().unwrap();
    assert_eq!(st["State"], 2, "{st}");
    assert_eq!(st["Detail"], "exit status 0", "{st}");
}
