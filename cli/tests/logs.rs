//! What an operator reads in the log of real nodes: at Info, connections (with peer, backend
//! and address), routing-table changes and units' state changes; at Debug, the steps of one
//! remote unit on both nodes; with `trace`, Go's packet traces
//! (`TRACE <level> <date> <time> --- Sending data length ...`).

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// The lines of a log in Go's format, split into their prefix (`INFO`, `TRACE DEBUG`, ...)
/// and message; panics on a line in another format.
fn lines(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| !l.is_empty())
        .map(|l| split_line(l).unwrap_or_else(|| panic!("not Go's log format: {l:?}\n{log}")))
        .collect()
}

/// `PREFIX YYYY/MM/DD HH:MM:SS message`, PREFIX one level name or `TRACE` and one.
fn split_line(l: &str) -> Option<(String, String)> {
    const LEVELS: [&str; 4] = ["ERROR", "WARNING", "INFO", "DEBUG"];
    let (trace, l) = match l.strip_prefix("TRACE ") {
        Some(rest) => (true, rest),
        None => (false, l),
    };
    let mut parts = l.splitn(4, ' ');
    let (level, date, time) = (parts.next()?, parts.next()?, parts.next()?);
    let message = parts.next().unwrap_or_default();
    // Digits, with `sep` at `at`.
    let shape = |s: &str, sep: u8, at: [usize; 2]| {
        s.len() == at[1] + 3
            && s.bytes().enumerate().all(|(i, b)| {
                if at.contains(&i) {
                    b == sep
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    let ok = LEVELS.contains(&level) && shape(date, b'/', [4, 7]) && shape(time, b':', [2, 5]);
    let prefix = if trace {
        format!("TRACE {level}")
    } else {
        level.to_owned()
    };
    ok.then(|| (prefix, message.to_owned()))
}

fn has(log: &[(String, String)], prefix: &str, message: &str) -> bool {
    log.iter().any(|(p, m)| p == prefix && m == message)
}

fn has_start(log: &[(String, String)], prefix: &str, start: &str) -> bool {
    log.iter().any(|(p, m)| p == prefix && m.starts_with(start))
}

fn wait_route(sock: &Path, to: &str, via: &str) {
    eventually(WAIT, &format!("a route to {to}"), || {
        status_json(sock)["RoutingTable"][to] == via
    });
}

/// Two nodes at the default level, B with an `echo` work type; A peers with B.
fn two_nodes(dir: &TempDir, port: u16, level: &str) -> (Proc, Proc) {
    let head = |n: &str| {
        format!(
            "---\n- node:\n    id: {n}\n    datadir: {}\n{level}- control-service:\n    filename: {}\n",
            dir.path(&format!("{n}-data")).display(),
            dir.path(&format!("{n}.sock")).display()
        )
    };
    let b = start_yaml(
        dir,
        "B",
        &format!(
            "{}- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n\
             - work-command:\n    worktype: echo\n    command: echo\n    params: hi\n",
            head("B")
        ),
    );
    let a = start_yaml(
        dir,
        "A",
        &format!("{}- tcp-peer:\n    address: 127.0.0.1:{port}\n", head("A")),
    );
    for n in ["A", "B"] {
        wait_for_path(&dir.path(&format!("{n}.sock")), WAIT);
    }
    (a, b)
}

/// Runs `echo` on B from A, following it; returns A's and B's unit IDs.
fn remote_echo(a_sock: &Path) -> (String, String) {
    let (id, result) = work_submit(a_sock, &["--node", "B", "echo", "--no-payload"]);
    assert!(result.contains("Job Started"), "{result}");
    eventually(WAIT, "the unit to succeed", || {
        unit_status(a_sock, &id)["StateName"] == "Succeeded"
    });
    let o = receptorctl(a_sock, &["work", "results", &id]);
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    let remote = unit_status(a_sock, &id)["ExtraData"]["RemoteUnitID"]
        .as_str()
        .expect("RemoteUnitID")
        .to_owned();
    (id, remote)
}

#[test]
fn info_names_connections_routes_and_unit_states() {
    let dir = TempDir::new("logs-info");
    let port = free_port();
    let (mut a, mut b) = two_nodes(&dir, port, "");
    let (a_sock, b_sock) = (dir.path("A.sock"), dir.path("B.sock"));
    wait_route(&a_sock, "B", "B");
    wait_route(&b_sock, "A", "A");
    let (id, remote) = remote_echo(&a_sock);
    eventually(WAIT, "B to log its unit's end", || {
        b.log_text().contains(&format!("[{remote}] state "))
            && b.log_text().contains("-> Succeeded: exit status 0")
    });
    b.kill();
    eventually(WAIT, "A to log the lost connection", || {
        a.log_text().contains("B unreachable")
    });
    a.kill();
    let (a_log, b_log) = (lines(&a.log_text()), lines(&b.log_text()));
    let peer = format!("tcp 127.0.0.1:{port}");
    for (log, text) in [
        (&a_log, format!("Connection established with B ({peer})")),
        (&a_log, "Routing table changed: B via B".to_owned()),
        (&a_log, format!("Connection to B lost ({peer})")),
        (&a_log, "Routing table changed: B unreachable".to_owned()),
        (&b_log, format!("Listening on TCP 127.0.0.1:{port}")),
        (&b_log, "Routing table changed: A via A".to_owned()),
    ] {
        assert!(has(log, "INFO", &text), "no INFO {text:?} in {log:#?}");
    }
    // B sees A from A's ephemeral port.
    assert!(has_start(
        &b_log,
        "INFO",
        "Connection established with A (tcp 127.0.0.1:"
    ));
    // The unit on A (following B's) and on B (its command runner): its states, at Info.
    assert!(
        has(
            &a_log,
            "INFO",
            &format!("[{id}] started as unit {remote} on B")
        ),
        "{a_log:#?}"
    );
    assert!(
        a_log.iter().any(|(p, m)| p == "INFO"
            && m.starts_with(&format!("[{id}] state "))
            && m.ends_with(" -> Succeeded: exit status 0")),
        "{a_log:#?}"
    );
    assert!(
        has_start(&b_log, "INFO", &format!("[{remote}] state Pending -> ")),
        "{b_log:#?}"
    );
    // The default level is Info, as Go's: nothing at Debug, no packet traces.
    for log in [&a_log, &b_log] {
        assert!(
            log.iter()
                .all(|(p, _)| p != "DEBUG" && !p.starts_with("TRACE")),
            "{log:#?}"
        );
    }
}

#[test]
fn debug_follows_one_remote_unit_on_both_nodes() {
    let dir = TempDir::new("logs-debug");
    let port = free_port();
    let (mut a, mut b) = two_nodes(&dir, port, "- log-level: debug\n");
    let a_sock = dir.path("A.sock");
    wait_route(&a_sock, "B", "B");
    let (id, remote) = remote_echo(&a_sock);
    let o = receptorctl(&a_sock, &["work", "release", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    eventually(WAIT, "B to release its unit", || {
        RawControl::new(&dir.path("B.sock"))
            .json("work list")
            .get(&remote)
            .is_none()
    });
    a.kill();
    b.kill();
    let (a_log, b_log) = (lines(&a.log_text()), lines(&b.log_text()));
    for start in [
        format!("[{id}] submitted on the control service: work type echo, to run on B"),
        format!("[{id}] submitting work type echo to B"),
        format!("[{id}] B created unit {remote}; sending stdin"),
        format!("[{id}] status of {remote} on B: Succeeded (exit status 0)"),
        format!("[{id}] fetching results of {remote} from B at byte 0"),
        format!("[{id}] asking B to release unit {remote}"),
    ] {
        assert!(
            has_start(&a_log, "DEBUG", &start),
            "no DEBUG {start:?} on A: {a_log:#?}"
        );
    }
    for start in [
        format!("[{remote}] submitted on the control service: work type echo"),
        format!("[{remote}] results streamed from byte 0"),
    ] {
        assert!(
            has_start(&b_log, "DEBUG", &start),
            "no DEBUG {start:?} on B: {b_log:#?}"
        );
    }
    assert!(
        has_start(&b_log, "INFO", &format!("[{remote}] state Pending -> ")),
        "{b_log:#?}"
    );
}

#[test]
fn trace_prints_data_messages_as_go_does() {
    let dir = TempDir::new("logs-trace");
    let port = free_port();
    let sock = |n: &str| dir.path(&format!("{n}.sock"));
    let head = |n: &str, extra: &str| {
        format!(
            "---\n- node:\n    id: {n}\n{extra}- control-service:\n    filename: {}\n",
            sock(n).display()
        )
    };
    let peer = format!("- tcp-peer:\n    address: 127.0.0.1:{port}\n");
    // A traces at the default level, B (the middle) at Debug, C does not trace.
    let mut b = start_yaml(
        &dir,
        "B",
        &format!(
            "{}- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n",
            head("B", "- log-level: debug\n- trace\n")
        ),
    );
    let mut a = start_yaml(&dir, "A", &format!("{}{peer}", head("A", "- trace\n")));
    let mut c = start_yaml(&dir, "C", &format!("{}{peer}", head("C", "")));
    for n in ["A", "B", "C"] {
        wait_for_path(&sock(n), WAIT);
    }
    wait_route(&sock("A"), "C", "B");
    wait_route(&sock("C"), "A", "B");
    let o = receptorctl(&sock("A"), &["ping", "--count", "1", "C"]);
    assert!(
        stdout(&o).contains("Reply from C"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    for p in [&mut a, &mut b, &mut c] {
        p.kill();
    }
    let (a_log, b_log, c_log) = (
        lines(&a.log_text()),
        lines(&b.log_text()),
        lines(&c.log_text()),
    );
    // A's ping goes out from an ephemeral service to C:ping, through B; the reply comes back.
    let (_, sent) = a_log
        .iter()
        .find(|(p, m)| {
            p == "TRACE INFO"
                && m.starts_with("--- Sending data length 0 from A:")
                && m.ends_with(" to C:ping")
        })
        .unwrap_or_else(|| panic!("no Sending trace on A: {a_log:#?}"));
    let service = sent
        .strip_prefix("--- Sending data length 0 from A:")
        .and_then(|s| s.strip_suffix(" to C:ping"))
        .unwrap();
    assert!(
        has(&a_log, "TRACE INFO", "    Forwarding data length 0 via B"),
        "{a_log:#?}"
    );
    assert!(
        has(
            &a_log,
            "TRACE INFO",
            &format!("--- Received data length 0 from C:ping to A:{service} via B")
        ),
        "{a_log:#?}"
    );
    // B forwards both ways, and writes its traces with its own (Debug) level.
    for text in [
        format!("--- Received data length 0 from A:{service} to C:ping via A"),
        "    Forwarding data length 0 via C".to_owned(),
        format!("--- Received data length 0 from C:ping to A:{service} via C"),
        "    Forwarding data length 0 via A".to_owned(),
    ] {
        assert!(
            has(&b_log, "TRACE DEBUG", &text),
            "no {text:?} on B: {b_log:#?}"
        );
    }
    assert!(
        c_log.iter().all(|(p, _)| !p.starts_with("TRACE")),
        "{c_log:#?}"
    );
}
