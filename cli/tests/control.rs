//! Control commands through the real receptorctl: version, reload (Go's semantics), and the
//! raw protocol on a TCP control listener.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

fn yaml(sock: &str, listen_port: u16, extra: &str) -> String {
    format!(
        "---\n- node:\n    id: R\n- control-service:\n    filename: {sock}\n- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {listen_port}\n{extra}"
    )
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn version_and_reload() {
    let dir = TempDir::new("reload");
    let sock = dir.path("R.sock");
    let s = sock.display().to_string();
    let (p1, p2) = (free_port(), free_port());
    let cfg = dir.path("R.yml");
    let r = start_yaml(&dir, "R", &yaml(&s, p1, ""));
    wait_for_path(&sock, Duration::from_secs(5));

    let o = receptorctl(&sock, &["version"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("receptorctl") && out.contains("receptor "),
        "{out}"
    );
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");

    // A backend change reloads: the old listener goes, the new one comes.
    eventually(Duration::from_secs(5), "first listener", || listening(p1));
    std::fs::write(&cfg, yaml(&s, p2, "")).unwrap();
    let o = receptorctl(&sock, &["reload"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Reload successful"));
    eventually(Duration::from_secs(5), "new listener", || listening(p2));
    eventually(Duration::from_secs(5), "old listener gone", || {
        !listening(p1)
    });

    // A non-reloadable change is refused with ERRORCODE 3 (receptorctl exits 3).
    std::fs::write(&cfg, yaml(&s, p2, "- log-level: debug\n")).unwrap();
    let o = receptorctl(&sock, &["reload"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("a non-reloadable config action 'log-level' was modified or added"),
        "{err}"
    );
    // An invalid firewall regex is refused too, and the node keeps running. (The node item
    // cannot change on reload; the parse that re-reads the file refuses the regex as well.)
    let bad_rule = "- node:\n    id: R\n    firewallrules:\n      - action: reject\n        fromnode: /unterminated\n";
    let text = yaml(&s, p2, "").replace("- node:\n    id: R\n", bad_rule);
    std::fs::write(&cfg, text).unwrap();
    let o = receptorctl(&sock, &["reload"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(listening(p2));
    // A broken file: ERRORCODE 4.
    std::fs::write(&cfg, "- node: [").unwrap();
    let o = receptorctl(&sock, &["reload"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    drop(r);
}

#[test]
fn raw_protocol_on_tcp_control_listener() {
    let dir = TempDir::new("ctltcp");
    let port = free_port();
    let r = start_args(
        &dir,
        "T",
        &[
            "--node",
            "id=T",
            "--local-only",
            "--control-service",
            &format!("tcplisten=127.0.0.1:{port}"),
        ],
    );
    let mut conn = None;
    eventually(Duration::from_secs(5), "control TCP listener", || {
        conn = TcpStream::connect(("127.0.0.1", port)).ok();
        conn.is_some()
    });
    let mut c = conn.unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line, "Receptor Control, node T\n");
    // Plain and JSON commands, an unknown command, the JSON double-error quirk.
    c.write_all(
        b"ping T\r\n{\"command\":\"status\",\"requested_fields\":[\"NodeID\"]}\nbogus\n{oops\n",
    )
    .unwrap();
    let mut lines = Vec::new();
    for _ in 0..5 {
        let mut l = String::new();
        rd.read_line(&mut l).unwrap();
        lines.push(l);
    }
    assert!(
        lines[0].starts_with("{\"From\":\"T\",\"Success\":true,\"Time\":"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "{\"NodeID\":\"T\"}\n");
    assert_eq!(lines[2], "ERROR: Unknown command\n");
    assert!(lines[3].starts_with("ERROR: "), "{lines:?}");
    assert_eq!(lines[4], "ERROR: Unknown command\n");
    // A partial line at EOF still runs.
    c.write_all(b"status").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut l = String::new();
    rd.read_line(&mut l).unwrap();
    assert!(l.starts_with("{\"Advertisements\":"), "{l}");
    drop(r);
}
