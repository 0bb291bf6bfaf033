//! Helpers for end-to-end tests that start real `receptor` processes and drive them with the
//! real `receptorctl` (installed into `.venv` by `.ci/run`).
//!
//! Everything binds to 127.0.0.1 or unix sockets in a temp dir; every process is killed when
//! its `Proc` drops, also when a test fails.

#![allow(dead_code)]

pub mod certs;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "receptor-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on 127.0.0.1 (also free for UDP in practice).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let u = std::net::UdpSocket::bind(("127.0.0.1", p));
    if u.is_err() {
        return free_port();
    }
    p
}

/// A running receptor process, killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn receptor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_receptor"))
}

/// Builds `package`'s example `name` with the cargo running this test, into this test's
/// target directory and profile, and returns its path. (A workspace `cargo test` has built it
/// already, and then this is quick; a narrower run, `-p receptor-cli`, has not.) Examples of
/// different packages must not share a name.
pub fn example_bin(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    // A test built with `fuzzing` (cli's only feature) comes from an `--all-features` run, in
    // CI `cargo test --workspace --all-features`: building the example with the same package
    // set and features finds every dependency built already (`-p` alone would resolve other
    // features for receptor-core and receptor-tokio, and build them again).
    let select: &[&str] = if cfg!(feature = "fuzzing") {
        &["--workspace", "--all-features"]
    } else {
        &["-p", package]
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet"])
        .args(select)
        .args(["--example", name])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the {name} example of {package} failed: {}",
        stderr(&out)
    );
    profile_dir.join("examples").join(name)
}

/// Starts `receptor -c <dir>/<name>.yml` with the given YAML, logging to `<name>.log`.
pub fn start_yaml(dir: &TempDir, name: &str, yaml: &str) -> Proc {
    let cfg = dir.path(&format!("{name}.yml"));
    std::fs::write(&cfg, yaml).unwrap();
    start_args(dir, name, &["-c", cfg.to_str().unwrap()])
}

/// Starts `receptor ARGS...`, logging to `<name>.log`.
pub fn start_args(dir: &TempDir, name: &str, args: &[&str]) -> Proc {
    start_args_env(dir, name, args, &[])
}

/// As [`start_yaml`], with extra environment variables (the units it runs inherit them).
pub fn start_yaml_env(dir: &TempDir, name: &str, yaml: &str, env: &[(&str, &str)]) -> Proc {
    let cfg = dir.path(&format!("{name}.yml"));
    std::fs::write(&cfg, yaml).unwrap();
    start_args_env(dir, name, &["-c", cfg.to_str().unwrap()], env)
}

/// As [`start_args`], with extra environment variables.
pub fn start_args_env(dir: &TempDir, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(receptor_bin());
    cmd.args(args).envs(env.iter().copied());
    spawn_logged(dir, name, cmd)
}

/// Starts `cmd` (a receptor, or something that execs one) with no stdin, logging to
/// `<name>.log`.
pub fn spawn_logged(dir: &TempDir, name: &str, mut cmd: Command) -> Proc {
    let log = dir.path(&format!("{name}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    Proc {
        child,
        name: name.to_owned(),
        log,
    }
}

/// Waits for a file (a control socket) to appear; a socket, until it takes a connection.
/// A socket file appears at `bind`, before its `listen`: a connect in between is refused, and
/// under load a test that connected as soon as the file was there sometimes was.
pub fn wait_for_path(p: &Path, within: Duration) {
    use std::os::unix::fs::FileTypeExt as _;
    let start = Instant::now();
    loop {
        let ready = match std::fs::metadata(p) {
            Ok(m) if m.file_type().is_socket() => {
                std::os::unix::net::UnixStream::connect(p).is_ok()
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if ready {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{} did not appear (or took no connection)",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The receptorctl executable: `$RECEPTORCTL`, else `.venv/bin/receptorctl` at the workspace
/// root (made by `.ci/run`).
pub fn receptorctl_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RECEPTORCTL") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/receptorctl");
    assert!(
        p.exists(),
        "receptorctl not found at {}: run `bash .ci/run` (it installs it) or set RECEPTORCTL",
        p.display()
    );
    p
}

/// Runs `receptorctl --socket SOCK ARGS...`.
pub fn receptorctl(sock: &Path, args: &[&str]) -> Output {
    Command::new(receptorctl_bin())
        .arg("--socket")
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `receptorctl status --json` and parses it.
pub fn status_json(sock: &Path) -> serde_json::Value {
    let o = receptorctl(sock, &["status", "--json"]);
    assert!(
        o.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("bad status JSON {e}: {}", stdout(&o)))
}

/// Polls `cond` until it holds or `within` passes.
pub fn eventually(within: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(within, cond), "timed out waiting for {what}");
}

/// Polls `cond` every 50 ms until it holds (true) or `within` passes (false), for callers
/// that fail with more to say (logs).
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() >= within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Configs of the line mesh A -tcp- B -tcp- C in `dir`: one data dir `dir/data`, control
/// sockets `dir/N.sock`, debug logs, B listening on `port`. `a_extra` ends A's config;
/// C's has `c_control` right after its control service and `c_extra` at the end.
pub fn line_mesh_yaml(
    dir: &TempDir,
    port: u16,
    a_extra: &str,
    c_control: &str,
    c_extra: &str,
) -> [String; 3] {
    let data = dir.path("data");
    let head = |n: &str| {
        format!(
            "---\n- node:\n    id: {n}\n    datadir: {}\n- log-level: debug\n- control-service:\n    filename: {}\n",
            data.display(),
            dir.path(&format!("{n}.sock")).display()
        )
    };
    let peer = format!("- tcp-peer:\n    address: 127.0.0.1:{port}\n");
    [
        format!("{}{peer}{a_extra}", head("A")),
        format!(
            "{}- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n",
            head("B")
        ),
        format!("{}{c_control}{peer}{c_extra}", head("C")),
    ]
}

/// The stderr of a finished command, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `receptorctl work submit ARGS` without following; returns the unit ID and the text of
/// its `Result:` line.
pub fn work_submit(sock: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["work", "submit"];
    all.extend_from_slice(args);
    let o = receptorctl(sock, &all);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {out:?}"))
            .to_owned()
    };
    (line("Unit ID: "), line("Result: "))
}

/// A raw control-service connection, its greeting read.
pub struct RawControl {
    /// The writing side.
    pub w: std::os::unix::net::UnixStream,
    /// The reading side.
    pub r: std::io::BufReader<std::os::unix::net::UnixStream>,
    /// The greeting line, newline included.
    pub greeting: String,
}

impl RawControl {
    /// Connects to a control socket and reads its greeting.
    pub fn new(sock: &Path) -> Self {
        use std::io::BufRead as _;
        let w = std::os::unix::net::UnixStream::connect(sock).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut r = std::io::BufReader::new(w.try_clone().unwrap());
        let mut greeting = String::new();
        r.read_line(&mut greeting).unwrap();
        assert!(
            greeting.starts_with("Receptor Control, node "),
            "{greeting:?}"
        );
        Self { w, r, greeting }
    }

    /// Sends one command line and reads one reply line.
    pub fn line(&mut self, cmd: &str) -> String {
        use std::io::{BufRead as _, Write as _};
        self.w.write_all(cmd.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }

    /// Sends one command line and parses the JSON reply line.
    pub fn json(&mut self, cmd: &str) -> serde_json::Value {
        let l = self.line(cmd);
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l:?}"))
    }
}

/// `work status ID` over a raw connection.
pub fn unit_status(sock: &Path, id: &str) -> serde_json::Value {
    RawControl::new(sock).json(&format!("work status {id}"))
}

/// The keys of a JSON object, in order.
pub fn json_keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}
