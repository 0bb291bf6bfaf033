//! `reload` on a hub, through the real receptorctl: peers of an unchanged listener keep their
//! connection, a listener added by reload takes a new peer, a changed listener keeps its port,
//! and a refused reload (malformed file, non-reloadable change) leaves the node serving.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

/// Hub A's config: a control socket and the given listener ports (127.0.0.1), each with
/// `listener_extra` lines (indented as listener parameters).
fn hub_yaml(sock: &Path, ports: &[u16], listener_extra: &str) -> String {
    let mut y = format!(
        "---\n- node:\n    id: A\n- control-service:\n    filename: {}\n",
        sock.display()
    );
    for p in ports {
        y.push_str(&format!(
            "- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {p}\n{listener_extra}"
        ));
    }
    y
}

fn peer_yaml(id: &str, sock: &Path, port: u16) -> String {
    format!(
        "---\n- node:\n    id: {id}\n- control-service:\n    filename: {}\n- tcp-peer:\n    address: 127.0.0.1:{port}\n",
        sock.display()
    )
}

/// The node IDs in the `Connections` of a node's status.
fn connected(sock: &Path) -> Vec<String> {
    let s = status_json(sock);
    let mut v: Vec<String> = s["Connections"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["NodeID"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// How many times the node's log says a connection with `peer` was made.
fn established(p: &Proc, peer: &str) -> usize {
    p.log_text()
        .matches(&format!("Connection established with {peer} "))
        .count()
}

fn reload(sock: &Path) -> std::process::Output {
    receptorctl(sock, &["reload"])
}

#[test]
fn hub_reload_keeps_its_peers_and_takes_new_ones() {
    let dir = TempDir::new("hubreload");
    let (a_sock, b_sock, c_sock) = (dir.path("A.sock"), dir.path("B.sock"), dir.path("C.sock"));
    let (p1, p2) = (free_port(), free_port());
    let a_cfg = dir.path("A.yml");
    let a = start_yaml(&dir, "A", &hub_yaml(&a_sock, &[p1], ""));
    wait_for_path(&a_sock, Duration::from_secs(5));
    let _b = start_yaml(&dir, "B", &peer_yaml("B", &b_sock, p1));
    let within = Duration::from_secs(10);
    eventually(within, "B connected to A", || connected(&a_sock) == ["B"]);

    // An unchanged config: the listener and its session stay, B never reconnects.
    let o = reload(&a_sock);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Reload successful"), "{}", stdout(&o));
    assert_eq!(connected(&a_sock), ["B"]);
    assert_eq!(established(&a, "B"), 1, "{}", a.log_text());
    assert!(
        !a.log_text().contains("Connection to B lost"),
        "{}",
        a.log_text()
    );

    // A listener added by reload takes a new peer C; B stays.
    std::fs::write(&a_cfg, hub_yaml(&a_sock, &[p1, p2], "")).unwrap();
    let o = reload(&a_sock);
    assert!(stdout(&o).contains("Reload successful"), "{}", stderr(&o));
    let _c = start_yaml(&dir, "C", &peer_yaml("C", &c_sock, p2));
    eventually(within, "B and C connected to A", || {
        connected(&a_sock) == ["B", "C"]
    });
    assert_eq!(established(&a, "B"), 1, "{}", a.log_text());

    // A malformed file is refused (receptorctl exits 4), logged, and A serves both peers.
    std::fs::write(&a_cfg, "---\n- node:\n    id: A\n- tcp-listener: [\n").unwrap();
    let o = reload(&a_sock);
    assert_eq!(o.status.code(), Some(4), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("ERRORCODE 4"), "{}", stderr(&o));
    eventually(within, "the refusal in A's log", || {
        a.log_text().contains("WARNING") && a.log_text().contains("Reload not successful: ")
    });
    // A non-reloadable change is refused too (exit 3), with the item named in the log.
    let changed = hub_yaml(&a_sock, &[p1, p2], "").replace("id: A\n", "id: A\n    datadir: /x\n");
    std::fs::write(&a_cfg, changed).unwrap();
    let o = reload(&a_sock);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    eventually(within, "the non-reloadable item in A's log", || {
        a.log_text()
            .contains("Reload not successful: a non-reloadable config action 'node'")
    });
    assert_eq!(connected(&a_sock), ["B", "C"]);
    for peer in ["B", "C"] {
        let o = receptorctl(&a_sock, &["ping", "--count", "1", peer]);
        assert!(
            o.status.success(),
            "ping {peer}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
    assert_eq!(established(&a, "B"), 1, "{}", a.log_text());
    assert_eq!(established(&a, "C"), 1, "{}", a.log_text());

    // Listener options changed on the same port: the socket is handed to a new accept loop
    // (no EADDRINUSE), its peers reconnect once; the other listener is untouched.
    let p1_changed = format!(
        "- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {p1}\n    nodecost:\n      X: 3.0\n"
    );
    let yaml = hub_yaml(&a_sock, &[p2], "") + &p1_changed;
    std::fs::write(&a_cfg, yaml).unwrap();
    let o = reload(&a_sock);
    assert!(
        stdout(&o).contains("Reload successful"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    eventually(within, "B reconnected", || established(&a, "B") == 2);
    eventually(within, "B and C connected to A", || {
        connected(&a_sock) == ["B", "C"]
    });
    assert_eq!(established(&a, "C"), 1, "{}", a.log_text());
    assert!(
        !a.log_text().contains("Address already in use"),
        "{}",
        a.log_text()
    );
}
