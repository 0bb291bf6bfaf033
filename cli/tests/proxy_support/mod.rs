//! Helpers for the proxy end-to-end tests: a line of real nodes A -tcp- B -tcp- C, local
//! servers to proxy to, and byte patterns both ends can check.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;

/// A line A - B - C; A and C have control sockets and the extra entities given.
pub struct Line {
    pub dir: TempDir,
    pub a: Proc,
    pub b: Proc,
    pub c: Proc,
    pub b_yaml: String,
}

/// One YAML list entry: `- name:` with `key: value` lines.
pub fn ent(name: &str, params: &[(&str, String)]) -> String {
    let mut s = format!("- {name}:\n");
    for (k, v) in params {
        s += &format!("    {k}: {v}\n");
    }
    s
}

pub fn line(tag: &str, a_extra: &str, c_extra: &str) -> Line {
    line_in(TempDir::new(tag), a_extra, c_extra)
}

/// [`line`] in a directory made beforehand (with certificates in it, say).
pub fn line_in(dir: TempDir, a_extra: &str, c_extra: &str) -> Line {
    let port = free_port();
    let b_yaml = format!(
        "- node:\n    id: B\n- log-level: debug\n- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n"
    );
    let b = start_yaml(&dir, "B", &b_yaml);
    let edge = |id: &str, extra: &str| {
        format!(
            "- node:\n    id: {id}\n- log-level: debug\n- control-service:\n    filename: {}\n\
             - tcp-peer:\n    address: 127.0.0.1:{port}\n{extra}",
            dir.path(&format!("{id}.sock")).display()
        )
    };
    let a = start_yaml(&dir, "A", &edge("A", a_extra));
    let c = start_yaml(&dir, "C", &edge("C", c_extra));
    for n in ["A", "C"] {
        wait_for_path(&dir.path(&format!("{n}.sock")), Duration::from_secs(10));
    }
    let l = Line {
        dir,
        a,
        b,
        c,
        b_yaml,
    };
    l.wait_route();
    l
}

impl Line {
    pub fn status(&self, node: &str) -> Option<serde_json::Value> {
        control_status(&self.dir.path(&format!("{node}.sock")))
    }

    pub fn wait_route(&self) {
        eventually(Duration::from_secs(30), "routes A <-> C", || {
            let ok =
                |n: &str, to: &str| self.status(n).is_some_and(|s| s["RoutingTable"][to] == "B");
            ok("A", "C") && ok("C", "A")
        });
    }

    /// C's advertisement of `service` as A sees it.
    pub fn ad(&self, service: &str) -> serde_json::Value {
        let mut found = serde_json::Value::Null;
        eventually(Duration::from_secs(20), "C's advertisement", || {
            let Some(s) = self.status("A") else {
                return false;
            };
            let ads = s["Advertisements"].as_array().cloned().unwrap_or_default();
            match ads
                .into_iter()
                .find(|a| a["NodeID"] == "C" && a["Service"] == service)
            {
                Some(a) => {
                    found = a;
                    true
                }
                None => false,
            }
        });
        found
    }

    /// Runs `f`; if it panics, panics again with the nodes' logs.
    pub fn check<T>(&self, f: impl FnOnce() -> T + std::panic::UnwindSafe) -> T {
        std::panic::catch_unwind(f).unwrap_or_else(|_| panic!("failed; logs:\n{}", self.logs()))
    }

    pub fn logs(&self) -> String {
        [&self.a, &self.b, &self.c]
            .iter()
            .map(|p| format!("--- {}\n{}", p.name, p.log_text()))
            .collect()
    }
}

/// `status` over a control socket, without receptorctl.
pub fn control_status(sock: &Path) -> Option<serde_json::Value> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    s.write_all(b"status\n").ok()?;
    line.clear();
    r.read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// A deterministic byte stream (xorshift64), so both ends can check every byte.
pub struct Pattern {
    state: u64,
    cur: [u8; 8],
    pos: usize,
}

impl Pattern {
    fn new(seed: u64) -> Self {
        Self {
            state: seed | 1,
            cur: [0; 8],
            pos: 8,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            if self.pos == 8 {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                self.cur = self.state.to_le_bytes();
                self.pos = 0;
            }
            *b = self.cur[self.pos];
            self.pos += 1;
        }
    }
}

/// Runs a server on 127.0.0.1 with one thread per connection.
pub fn serve<F>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + Clone + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || h(s));
        }
    });
    addr
}

/// Echoes until EOF, then half-closes; reports (bytes, ended cleanly) per connection.
pub fn echo_server() -> (SocketAddr, mpsc::Receiver<(u64, bool)>) {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |s| {
        let _ = tx.send(echo(s));
    });
    (addr, rx)
}

pub fn echo<S: Read + Write>(mut s: S) -> (u64, bool) {
    let mut buf = vec![0u8; 65536];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => {
                total += n as u64;
                if s.write_all(&buf[..n]).is_err() {
                    return (total, false);
                }
            }
            Err(_) => return (total, false),
        }
    }
}

/// Writes `len` pattern bytes (all of them if `len` is `None`: until an error) and
/// half-closes; returns what was written.
pub fn write_pattern(mut s: impl Write, seed: u64, len: Option<u64>) -> u64 {
    let mut p = Pattern::new(seed);
    let mut buf = vec![0u8; 65536];
    let mut sent = 0u64;
    while len.is_none_or(|l| sent < l) {
        let n = len.map_or(buf.len(), |l| (l - sent).min(buf.len() as u64) as usize);
        p.fill(&mut buf[..n]);
        if s.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    sent
}

/// Reads until EOF or error, checking every byte against the pattern; returns the count and
/// whether the stream ended with EOF (rather than an error).
pub fn read_pattern(
    mut s: impl Read,
    seed: u64,
    progress: Option<mpsc::Sender<u64>>,
) -> (u64, bool) {
    let mut p = Pattern::new(seed);
    let (mut got, mut expect) = (vec![0u8; 65536], vec![0u8; 65536]);
    let mut total = 0u64;
    loop {
        let n = match s.read(&mut got) {
            Ok(0) => return (total, true),
            Ok(n) => n,
            Err(_) => return (total, false),
        };
        p.fill(&mut expect[..n]);
        assert!(
            got[..n] == expect[..n],
            "corrupt bytes after offset {total}"
        );
        total += n as u64;
        if let Some(tx) = &progress {
            let _ = tx.send(total);
        }
    }
}

/// Sends `len` bytes through an echo at `addr` and checks they all come back.
pub fn echo_round_trip(addr: SocketAddr, len: u64, seed: u64) -> Duration {
    let start = Instant::now();
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let n = write_pattern(&w, seed, Some(len));
        let _ = w.shutdown(Shutdown::Write);
        n
    });
    let (got, eof) = read_pattern(&s, seed, None);
    assert_eq!(writer.join().unwrap(), len);
    assert!(eof && got == len, "got {got} of {len} bytes (eof {eof})");
    start.elapsed()
}

pub fn tcp_proxy_pair(port: u16, service: &str, target: SocketAddr) -> (String, String) {
    let a = ent(
        "tcp-server",
        &[
            ("port", port.to_string()),
            ("bindaddr", "127.0.0.1".into()),
            ("remotenode", "C".into()),
            ("remoteservice", service.into()),
        ],
    );
    let c = ent(
        "tcp-client",
        &[("service", service.into()), ("address", target.to_string())],
    );
    (a, c)
}
