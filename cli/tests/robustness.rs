//! Garbage on a live node's listeners: the node keeps running and routing, and drops only the
//! offending connection.

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use support::*;

#[test]
fn garbage_and_bogus_frames_drop_only_that_connection() {
    let dir = TempDir::new("garbage");
    let (tcp, udp) = (free_port(), free_port());
    let sock = |n: &str| dir.path(&format!("{n}.sock"));
    let b = start_args(
        &dir,
        "B",
        &[
            "--node",
            "id=B",
            "--log-level",
            "debug",
            "--control-service",
            &format!("filename={}", sock("B").display()),
            "--tcp-listener",
            "bindaddr=127.0.0.1",
            &format!("port={tcp}"),
            "--udp-listener",
            "bindaddr=127.0.0.1",
            &format!("port={udp}"),
        ],
    );
    let a = start_args(
        &dir,
        "A",
        &[
            "--node",
            "id=A",
            "--control-service",
            &format!("filename={}", sock("A").display()),
            "--tcp-peer",
            &format!("address=127.0.0.1:{tcp}"),
        ],
    );
    wait_for_path(&sock("A"), Duration::from_secs(5));
    wait_for_path(&sock("B"), Duration::from_secs(5));
    eventually(Duration::from_secs(10), "A to route to B", || {
        status_json(&sock("A"))["RoutingTable"]["B"] == "B"
    });

    // A bogus length prefix (a frame that never completes), plain garbage, and a frame of an
    // unknown message type.
    let mut stuck = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    stuck.write_all(b"\xff\xff\x01{\"NodeID\"").unwrap();
    let mut garbage = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut unknown = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    unknown.write_all(b"\x04\x00\x09abc").unwrap();
    // Random datagrams, and an empty one, at the UDP listener.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x: u32 = 12345;
    for _ in 0..200 {
        let mut d = [0u8; 64];
        for b in d.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        u.send_to(&d[..(x as usize % 64)], ("127.0.0.1", udp))
            .unwrap();
    }

    // The garbage and unknown-type connections are closed by B.
    for (what, s) in [("garbage", &mut garbage), ("unknown type", &mut unknown)] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1024];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "B did not close the {what} connection");
    }
    // B still runs and routes; A still reaches it.
    let o = receptorctl(&sock("A"), &["ping", "B", "--count", "1"]);
    assert!(stdout(&o).contains("Reply from B"), "{}", stdout(&o));
    let st = status_json(&sock("B"));
    assert_eq!(st["RoutingTable"]["A"], "A");
    let log = b.log_text();
    assert!(log.contains("closing connection"), "{log}");
    drop(stuck);
    drop((a, b));
}
