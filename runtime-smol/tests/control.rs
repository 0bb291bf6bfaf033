//! The control service of a smol node, driven by the real `receptorctl` (status, ping,
//! traceroute) and by a raw client (`connect`), on a line a -tcp- b -tcp- c in one process.

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use receptor_core::LinkKind;
use receptor_core::stream::{ServerTls, server_config};
use receptor_smol::backends::{tcp_dial, tcp_listen};
use receptor_smol::control::{
    ControlError, ControlOptions, serve_control_mesh, serve_control_unix,
};
use receptor_smol::tls::insecure::insecure_server_config;
use receptor_smol::{NodeHandle, Task, spawn_node};

mod common;
use common::{TempDir, config_seeded, dial_spec, listen_spec, receptorctl, wait_route, within};

/// a -tcp- b -tcp- c (b listens), routed end to end; the backends' tasks are returned.
async fn line() -> (NodeHandle, NodeHandle, NodeHandle, Vec<Task<()>>) {
    let [a, b, c] = ["a", "b", "c"].map(|id| spawn_node(config_seeded(id, 11)).unwrap());
    let (addr_b, listen_b) = tcp_listen(&b, listen_spec(LinkKind::Stream)).await.unwrap();
    let tasks = vec![
        listen_b,
        tcp_dial(&a, dial_spec(addr_b, LinkKind::Stream)),
        tcp_dial(&c, dial_spec(addr_b, LinkKind::Stream)),
    ];
    wait_route(&a, "c").await;
    wait_route(&c, "a").await;
    (a, b, c, tasks)
}

#[test]
fn receptorctl_status_ping_traceroute_and_connect() {
    let dir = TempDir::new("ctl");
    let sock = dir.path("a.sock");
    let (a, _b, c, _tasks) = async_io::block_on(within(20, "mesh", line()));
    let options = ControlOptions {
        version: "0.0-test".into(),
        connect_tls: None,
        work: None,
    };
    let control = serve_control_unix(&a, &sock, options.clone()).unwrap();
    // A live socket is not taken over.
    assert!(matches!(
        serve_control_unix(&a, &sock, options),
        Err(ControlError::InUse(_))
    ));

    let (ok, out, err) = receptorctl(&sock, &["status", "--json"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"NodeID\": \"a\""), "{out}");
    assert!(out.contains("\"Version\": \"0.0-test\""), "{out}");
    assert!(out.contains("\"c\": \"b\""), "routing table: {out}");
    let (ok, out, err) = receptorctl(&sock, &["status"]);
    assert!(ok && out.contains("Node ID: a"), "{out}{err}");

    let (ok, out, err) = receptorctl(&sock, &["ping", "c", "--count", "2"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("Reply from c in").count(), 2, "{out}");
    let (_, out, err) = receptorctl(&sock, &["ping", "nosuchnode", "--count", "1"]);
    assert!(
        format!("{out}{err}").contains("no route to node"),
        "{out}{err}"
    );

    let (ok, out, err) = receptorctl(&sock, &["traceroute", "c"]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, hop) in lines.iter().zip(["0: a in ", "1: b in ", "2: c in "]) {
        assert!(line.starts_with(hop), "{out}");
    }

    // `connect` bridges the control connection to a mesh stream on c.
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    let server = ServerTls::Fixed(server_config((*tls).clone()).unwrap());
    let listener = async_io::block_on(c.listen_stream("shout", server, None)).unwrap();
    // Serves one stream, then ends with the test.
    std::thread::spawn(move || {
        async_io::block_on(async {
            if let Some(mut s) = listener.accept().await {
                let mut text = Vec::new();
                let _ = s.read_to_end(&mut text).await;
                let _ = s.write_all(&text.to_ascii_uppercase()).await;
                let _ = s.close().await;
            }
        })
    });
    let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"connect c shout \nhello over the mesh")
        .unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    raw.read_to_string(&mut got).unwrap();
    assert_eq!(
        got,
        "Receptor Control, node a\nConnecting\nHELLO OVER THE MESH"
    );

    // c's control service as a mesh service: `connect c control` reaches c's own session.
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    let server = ServerTls::Fixed(server_config((*tls).clone()).unwrap());
    let options = ControlOptions::default();
    let _mesh_control =
        async_io::block_on(serve_control_mesh(&c, "control", server, 1, options)).unwrap();
    let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"connect c control \nping a\n").unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    raw.read_to_string(&mut got).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert_eq!(
        lines[..3],
        [
            "Receptor Control, node a",
            "Connecting",
            "Receptor Control, node c"
        ]
    );
    assert!(lines[3].contains("\"From\":\"a\""), "{got}");
    // It is advertised as Go advertises its control services.
    let advertised = async {
        loop {
            let ads = a.status().await.unwrap().advertisements;
            if ads.iter().any(|ad| {
                let tags = ad.tags.as_ref();
                ad.node_id == "c"
                    && ad.service == "control"
                    && ad.conn_type == 1
                    && tags.and_then(|t| t.get("type")).map(String::as_str)
                        == Some("Control Service")
            }) {
                break;
            }
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
    };
    async_io::block_on(within(15, "c's control advert at a", advertised));

    // The service ends with its task, and takes its socket file along.
    drop(control);
    let gone = async {
        while sock.exists() {
            async_io::Timer::after(Duration::from_millis(20)).await;
        }
    };
    async_io::block_on(within(5, "socket file removal", gone));
}
