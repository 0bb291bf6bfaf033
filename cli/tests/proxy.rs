//! Proxy services between real processes on a line A -tcp- B -tcp- C: `tcp-server` on A to a
//! `tcp-client` on C in front of a local TCP server, half-close both ways, B killed in the
//! middle of a transfer, UDP and Unix-socket proxies, and their advertisements.
//!
//! The big transfer moves 256 MiB each way (`RECEPTOR_PROXY_MIB=N` for another size).

mod proxy_support;
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proxy_support::*;
use support::*;

#[test]
fn tcp_proxy_moves_big_stream_both_ways_alongside_small_ones() {
    let (echo_addr, _ends) = echo_server();
    let port = free_port();
    let (a, c) = tcp_proxy_pair(port, "echo", echo_addr);
    let l = line("pxbig", &a, &c);
    let ad = l.ad("echo");
    assert_eq!(ad["ConnType"], 1, "{ad}");
    assert_eq!(ad["Tags"]["type"], "TCP Proxy");
    assert_eq!(ad["Tags"]["address"], echo_addr.to_string());
    let proxy: SocketAddr = ([127, 0, 0, 1], port).into();
    echo_round_trip(proxy, 1024, 1);

    // 256 MiB takes 5-15 s with the debug binary; RECEPTOR_PROXY_MIB=N for a quicker run.
    let big: u64 = std::env::var("RECEPTOR_PROXY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let small: Vec<_> = (0..8)
        .map(|i| std::thread::spawn(move || echo_round_trip(proxy, 2 << 20, 100 + i)))
        .collect();
    let took = echo_round_trip(proxy, big << 20, 7);
    for s in small {
        s.join().unwrap();
    }
    eprintln!(
        "{big} MiB each way through A-B-C: {took:?} ({:.1} MiB/s each way)",
        big as f64 / took.as_secs_f64()
    );
    assert!(!l.logs().contains("ERROR"), "{}", l.logs());
}

#[test]
fn tcp_proxy_half_close_both_ways() {
    // Replies after the client half-closes.
    let count = serve(|mut s| {
        let mut n = 0u64;
        let mut buf = [0u8; 4096];
        while let Ok(k @ 1..) = s.read(&mut buf) {
            n += k as u64;
        }
        let _ = s.write_all(format!("got {n}\n").as_bytes());
    });
    // Half-closes first, then keeps reading and reports what it read.
    let (tx, rx) = mpsc::channel();
    let greet = serve(move |mut s| {
        let _ = s.write_all(b"hello\n");
        let _ = s.shutdown(Shutdown::Write);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let _ = tx.send(buf.len());
    });
    let (p1, p2) = (free_port(), free_port());
    let (a1, c1) = tcp_proxy_pair(p1, "count", count);
    let (a2, c2) = tcp_proxy_pair(p2, "greet", greet);
    let l = line("pxhalf", &(a1 + &a2), &(c1 + &c2));
    l.ad("greet");

    let mut s = TcpStream::connect(("127.0.0.1", p1)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&vec![7u8; 100_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "got 100000\n");

    let mut s = TcpStream::connect(("127.0.0.1", p2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut hello = String::new();
    s.read_to_string(&mut hello).unwrap();
    assert_eq!(hello, "hello\n");
    // Our side is still open for writing after the far end finished.
    s.write_all(&vec![1u8; 50_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let n = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(n, 50_000, "{}", l.logs());
}

#[test]
fn tcp_proxy_stream_fails_cleanly_when_the_middle_node_dies() {
    let (echo_addr, ends) = echo_server();
    let port = free_port();
    let (a, c) = tcp_proxy_pair(port, "echo", echo_addr);
    let mut l = line("pxkill", &a, &c);
    l.ad("echo");
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(90))).unwrap();
    let w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || write_pattern(&w, 3, None));
    let (ptx, prx) = mpsc::channel();
    let reader = std::thread::spawn(move || read_pattern(&s, 3, Some(ptx)));
    // Kill B once the stream is moving.
    while prx.recv_timeout(Duration::from_secs(30)).unwrap() < 2 << 20 {}
    l.b.kill();
    let killed = Instant::now();
    let (got, _eof) = reader.join().unwrap();
    let client_end = killed.elapsed();
    writer.join().unwrap();
    let (far, _clean) = ends.recv_timeout(Duration::from_secs(60)).unwrap();
    let far_end = killed.elapsed();
    eprintln!("after killing B: client ended in {client_end:?}, far end in {far_end:?}");
    assert!(got >= 2 << 20 && far > 0);
    assert!(
        client_end < Duration::from_secs(36),
        "client hung {client_end:?}"
    );
    assert!(
        far_end < Duration::from_secs(36),
        "far end hung {far_end:?}"
    );

    // B returns (same port): a new stream works.
    l.b = start_yaml(&l.dir, "B", &l.b_yaml);
    l.wait_route();
    let proxy: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tries = 0;
    loop {
        let ok = std::panic::catch_unwind(|| echo_round_trip(proxy, 1 << 20, 9));
        tries += 1;
        if ok.is_ok() {
            break;
        }
        assert!(tries < 5, "{}", l.logs());
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn udp_and_unix_socket_proxies_round_trip() {
    // UDP echo on the far side.
    let uecho = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uecho_addr = uecho.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = uecho.recv_from(&mut buf) {
            let _ = uecho.send_to(&buf[..n], from);
        }
    });
    // Unix-socket echo on the far side.
    let dir = TempDir::new("pxunixsrv");
    let target = dir.path("target.sock");
    let ul = UnixListener::bind(&target).unwrap();
    std::thread::spawn(move || {
        for s in ul.incoming().flatten() {
            std::thread::spawn(move || {
                let (_, _) = echo(&s);
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    let uport = free_port();
    let front = dir.path("front.sock");
    let a = ent(
        "udp-server",
        &[
            ("port", uport.to_string()),
            ("bindaddr", "127.0.0.1".into()),
            ("remotenode", "C".into()),
            ("remoteservice", "uecho".into()),
        ],
    ) + &ent(
        "unix-socket-server",
        &[
            ("filename", front.display().to_string()),
            ("permissions", "0660".into()),
            ("remotenode", "C".into()),
            ("remoteservice", "xecho".into()),
        ],
    );
    let c = ent(
        "udp-client",
        &[
            ("service", "uecho".into()),
            ("address", uecho_addr.to_string()),
        ],
    ) + &ent(
        "unix-socket-client",
        &[
            ("service", "xecho".into()),
            ("filename", target.display().to_string()),
        ],
    );
    let l = line("pxudp", &a, &c);
    let ad = l.ad("uecho");
    assert_eq!(ad["ConnType"], 0, "{ad}");
    assert_eq!(ad["Tags"]["type"], "UDP Proxy");
    assert_eq!(ad["Tags"]["address"], uecho_addr.to_string());
    let ad = l.ad("xecho");
    assert_eq!(ad["ConnType"], 1, "{ad}");
    assert_eq!(ad["Tags"]["type"], "Unix Proxy");
    assert_eq!(ad["Tags"]["filename"], target.display().to_string());

    // Two UDP clients, each with its own session, get their own replies.
    let clients: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .collect();
    for round in 0..5 {
        for (i, s) in clients.iter().enumerate() {
            let msg = format!("client {i} round {round}");
            let mut answered = false;
            for _ in 0..20 {
                s.send_to(msg.as_bytes(), ("127.0.0.1", uport)).unwrap();
                let mut buf = [0u8; 1500];
                match s.recv(&mut buf) {
                    Ok(n) => {
                        assert_eq!(&buf[..n], msg.as_bytes());
                        answered = true;
                        break;
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(answered, "no UDP reply to {msg}\n{}", l.logs());
        }
    }

    // Unix socket: a file with the configured mode, bytes intact both ways, half-close.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&front).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let s = UnixStream::connect(&front).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let n = write_pattern(&w, 5, Some(4 << 20));
        w.shutdown(Shutdown::Write).unwrap();
        n
    });
    let (got, eof) = read_pattern(&s, 5, None);
    assert_eq!(writer.join().unwrap(), 4 << 20);
    assert!(eof && got == 4 << 20, "got {got} (eof {eof})\n{}", l.logs());
}

#[test]
fn proxy_setup_errors_stop_the_node_at_startup() {
    let dir = TempDir::new("pxerr");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--tcp-server",
                &format!("port={port}"),
                "bindaddr=127.0.0.1",
                "remotenode=x",
                "remoteservice=y",
            ],
            "Error: error listening on TCP: ",
        ),
        (
            &[
                "--tcp-server",
                "port=0",
                "remotenode=x",
                "remoteservice=y",
                "tlsclient=nope",
            ],
            "Error: unknown TLS config nope",
        ),
        (
            &["--tcp-client", "service=s", "address=no-port-here"],
            "Error: address no-port-here: missing port in address",
        ),
        (
            &["--udp-client", "service=control", "address=127.0.0.1:9"],
            "Error: error listening on service control: ",
        ),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let mut args = vec!["--node", "id=n", "--local-only", "--control-service"];
        args.extend_from_slice(extra);
        let mut p = start_args(&dir, &format!("n{i}"), &args);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = p.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "still running: {:?}",
                extra
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success());
        assert!(
            p.log_text().contains(want),
            "{want:?} not in:\n{}",
            p.log_text()
        );
    }
}
