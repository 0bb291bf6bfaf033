//! `command-service` end to end: `receptorctl connect` from node B to a command service on
//! node A gives an interactive bash on a terminal; with `tls`, the stream is TLS; closing the
//! connection hangs the terminal up, and A reaps what it started.

mod support;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::certs::Ca;
use support::*;

/// A runs `shell` (plain) and `tshell` (TLS) command services; B peers with A and has the
/// control socket the tests use.
struct Pair {
    dir: TempDir,
    a: Proc,
    _b: Proc,
}

fn pair() -> Pair {
    let dir = TempDir::new("cmdsvc");
    let ca = Ca::new("cmdsvc CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let (a_crt, a_key) = ca.issue(&dir, "A", &["A"]);
    let (b_crt, b_key) = ca.issue(&dir, "B", &["B"]);
    let port = free_port();
    let bash = "bash --norc --noprofile";
    let a_yaml = format!(
        "---\n- node:\n    id: A\n- log-level: debug\n\
         - tls-server:\n    name: srv\n    cert: {a_crt}\n    key: {a_key}\n    requireclientcert: true\n    clientcas: {ca_file}\n\
         - tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n\
         - command-service:\n    service: shell\n    command: {bash}\n\
         - command-service:\n    service: tshell\n    command: {bash}\n    tls: srv\n"
    );
    let b_yaml = format!(
        "---\n- node:\n    id: B\n- control-service:\n    filename: {}\n\
         - tls-client:\n    name: cli\n    cert: {b_crt}\n    key: {b_key}\n    rootcas: {ca_file}\n\
         - tcp-peer:\n    address: 127.0.0.1:{port}\n",
        dir.path("B.sock").display()
    );
    let a = start_yaml(&dir, "A", &a_yaml);
    let b = start_yaml(&dir, "B", &b_yaml);
    let sock = dir.path("B.sock");
    wait_for_path(&sock, Duration::from_secs(5));
    eventually(Duration::from_secs(10), "A's services known to B", || {
        let s = status_json(&sock);
        s["Advertisements"].as_array().is_some_and(|ads| {
            ads.iter()
                .filter(|ad| ad["NodeID"] == "A" && ad["Tags"]["type"] == "Command Service")
                .count()
                == 2
        })
    });
    Pair { dir, a, _b: b }
}

/// The PIDs of the live (not zombie) children of `pid`, and of its zombie children.
fn children(pid: u32) -> (Vec<u32>, Vec<u32>) {
    let (mut live, mut zombies) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let child: u32 = head.split(' ').next().unwrap_or("0").parse().unwrap_or(0);
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            if fields.first() == Some(&"Z") {
                zombies.push(child);
            } else {
                live.push(child);
            }
        }
    }
    (live, zombies)
}

/// A pseudo-terminal for receptorctl's stdin and stdout (`connect` needs a terminal), and
/// what it printed, collected by a thread.
struct Terminal {
    master: std::fs::File,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn new() -> (Self, OwnedFd) {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let master = std::fs::File::from(master);
        let out = Arc::new(Mutex::new(Vec::new()));
        let (mut rd, sink) = (master.try_clone().unwrap(), out.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(n) = rd.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (Self { master, out }, slave)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\n").unwrap();
    }
}

#[test]
fn receptorctl_connect_gives_an_interactive_bash() {
    let p = pair();
    let (mut term, slave) = Terminal::new();
    let mut ctl = Command::new(receptorctl_bin())
        .arg("--socket")
        .arg(p.dir.path("B.sock"))
        .args(["connect", "A", "shell"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let within = Duration::from_secs(20);
    // bash's prompt, then arithmetic only bash does, and the name of its terminal.
    eventually(within, "bash's prompt", || {
        term.text().contains("$ ") || term.text().contains("# ")
    });
    term.type_line("echo $((6*7))-from-$0");
    eventually(within, "the answer", || {
        term.text().contains("42-from-bash")
    });
    term.type_line("tty");
    eventually(within, "a terminal", || term.text().contains("/dev/pts/"));
    term.type_line("exit");
    let mut status = None;
    eventually(within, "receptorctl to finish", || {
        status = ctl.try_wait().unwrap();
        status.is_some()
    });
    let mut err = String::new();
    let _ = ctl.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.unwrap().success(), "{err}\n{}", term.text());
    eventually(within, "A to reap bash", || {
        children(p.a.child.id()) == (vec![], vec![])
    });
}

#[test]
fn closing_a_tls_session_hangs_the_terminal_up() {
    let p = pair();
    let mut c = RawControl::new(&p.dir.path("B.sock"));
    assert_eq!(c.line("connect A tshell cli"), "Connecting\n");
    c.w.write_all(b"echo $((6*7))-tls\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains("42-tls") {
        let n = c.r.read(&mut buf).unwrap();
        assert!(n > 0, "the session ended early: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // A command that would run for days, holding the terminal: the hangup must end it.
    c.w.write_all(b"exec sleep 7654321\n").unwrap();
    let a = p.a.child.id();
    eventually(Duration::from_secs(20), "sleep to run on A", || {
        children(a).0.iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("7654321"))
        })
    });
    drop(c);
    eventually(
        Duration::from_secs(20),
        "the hung-up sleep to be gone and reaped",
        || children(a) == (vec![], vec![]),
    );
    let log = p.a.log_text();
    assert!(
        log.contains("Running command service {tshell bash --norc --noprofile srv}"),
        "{log}"
    );
}
