//! Nodes in one process, linked over real loopback sockets: routes form, pings, traceroutes
//! and datagrams work over TCP and UDP, among smol nodes and in a mesh mixing smol and tokio.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_io::Timer;
use bytes::Bytes;
use receptor_core::{Config, LinkKind, ServiceName};
use receptor_smol::backends::{DialSpec, tcp_dial, tcp_listen, udp_dial, udp_listen};
mod common;
use common::{
    config_seeded, dial_spec as dial, link, listen_spec as listen, tokio_wait_route, wait_route,
    within,
};

use receptor_smol::{Executor, NodeHandle, ServiceEvent, TraceEvent, spawn_node, spawn_node_on};

// The same seed everywhere: the core must still give each node its own random stream.
fn config(id: &str) -> Arc<Config> {
    config_seeded(id, 1)
}

async fn wait_no_route(n: &NodeHandle, to: &str) {
    for _ in 0..400 {
        if !n.status().await.unwrap().routes.contains_key(to) {
            return;
        }
        Timer::after(Duration::from_millis(25)).await;
    }
    panic!("{} kept its route to {to}", n.id());
}

/// The nodes a traceroute went through, checking that no hop failed.
async fn trace(rx: Receiver<TraceEvent>) -> Vec<String> {
    let mut names = Vec::new();
    while let Ok(ev) = rx.recv().await {
        match ev {
            TraceEvent::Hop(h, r) => {
                assert_eq!(r.error, None, "hop {h}");
                names.push(r.from.unwrap().to_string());
            }
            TraceEvent::Done => break,
        }
    }
    names
}

#[test]
fn smol_line_over_tcp_and_udp_routes_pings_traces_and_sends() {
    async_io::block_on(within(30, "smol line", async {
        // a -tcp- b -udp- c, on the crate's global executor.
        let (a, b, c) = (
            spawn_node(config("a")).unwrap(),
            spawn_node(config("b")).unwrap(),
            spawn_node(config("c")).unwrap(),
        );
        let (addr_b, _listen_b) = tcp_listen(&b, listen(LinkKind::Stream)).await.unwrap();
        tcp_dial(&a, dial(addr_b, LinkKind::Stream)).detach();
        let (addr_c, _listen_c) = udp_listen(&c, listen(LinkKind::Datagram)).await.unwrap();
        udp_dial(&b, dial(addr_c, LinkKind::Datagram)).detach();
        // Every node must have its routes: each forwards and answers along its own.
        for (n, to) in [(&a, "c"), (&b, "a"), (&b, "c"), (&c, "a")] {
            wait_route(n, to).await;
        }

        let r = a.ping("c").await.unwrap().unwrap();
        assert_eq!(r.error, None);
        assert_eq!(r.from.unwrap().as_str(), "c");
        let r = c.ping("a").await.unwrap().unwrap();
        assert_eq!(r.from.unwrap().as_str(), "a");
        assert_eq!(
            trace(a.traceroute("c").await.unwrap()).await,
            ["a", "b", "c"]
        );
        assert_eq!(
            trace(c.traceroute("a").await.unwrap()).await,
            ["c", "b", "a"]
        );

        let status = a.status().await.unwrap();
        assert_eq!(status.routes.get("c").map(|n| n.as_str()), Some("b"));
        assert_eq!(status.known_connection_costs.len(), 3);

        // Datagram services: a's ephemeral service to c's `echo`, and back.
        let (echo, echo_rx) = c.listen(Some("echo"), None).await.unwrap();
        let (mine, my_rx) = a.listen(None, None).await.unwrap();
        a.send_to(mine, "c", echo, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        let ServiceEvent::Datagram {
            from_node,
            from_service,
            payload,
        } = echo_rx.recv().await.unwrap()
        else {
            panic!("expected a datagram");
        };
        assert_eq!((from_node.as_str(), from_service), ("a", mine));
        assert_eq!(payload, "hello");
        c.send_to(echo, "a", mine, payload).await.unwrap();
        let got = my_rx.recv().await.unwrap();
        assert!(matches!(got, ServiceEvent::Datagram { payload, .. } if payload == "hello"));

        // Unknown node: an error, not a hang.
        assert!(a.ping("nobody").await.unwrap().is_err());
        for n in [&a, &b, &c] {
            n.shutdown().await;
            assert_eq!(n.stopped().await, None);
        }
        assert!(a.status().await.is_err());
    }));
}

#[test]
fn dropping_a_dialer_takes_its_link_down() {
    async_io::block_on(within(30, "dialer drop", async {
        let (a, b) = (
            spawn_node(config("a")).unwrap(),
            spawn_node(config("b")).unwrap(),
        );
        let (addr_b, _listen_b) = tcp_listen(&b, listen(LinkKind::Stream)).await.unwrap();
        let dialer = tcp_dial(&a, dial(addr_b, LinkKind::Stream));
        wait_route(&b, "a").await;
        // Cancelling the backend mid-session must still report the link down to the node.
        drop(dialer);
        wait_no_route(&a, "b").await;
        wait_no_route(&b, "a").await;
        a.shutdown().await;
        b.shutdown().await;
    }));
}

/// `disconnect_all` closes every link of a node that keeps running: a peer it dialed once is
/// gone for good, one that redials comes back.
#[test]
fn disconnect_all_closes_links_and_the_node_runs_on() {
    async_io::block_on(within(30, "disconnect all", async {
        let (a, b, c) = (
            spawn_node(config("a")).unwrap(),
            spawn_node(config("b")).unwrap(),
            spawn_node(config("c")).unwrap(),
        );
        let (addr_a, _listen_a) = tcp_listen(&a, listen(LinkKind::Stream)).await.unwrap();
        let (addr_b, _listen_b) = tcp_listen(&b, listen(LinkKind::Stream)).await.unwrap();
        let once = DialSpec {
            redial: false,
            ..dial(addr_b, LinkKind::Stream)
        };
        let _a_to_b = tcp_dial(&a, once);
        let _c_to_a = tcp_dial(&c, dial(addr_a, LinkKind::Stream));
        wait_route(&b, "c").await;
        wait_route(&c, "b").await;
        a.disconnect_all().await;
        wait_no_route(&b, "a").await;
        wait_no_route(&a, "b").await;
        assert!(!a.status().await.unwrap().connections.contains_key("b"));
        wait_route(&c, "a").await;
        let r = c.ping("a").await.unwrap().unwrap();
        assert_eq!(r.error, None, "c -> a after the redial");
        for n in [a, b, c] {
            n.shutdown().await;
        }
    }));
}

#[test]
fn garbage_on_listeners_drops_only_that_connection() {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    async_io::block_on(within(30, "garbage", async {
        let (a, b) = (
            spawn_node(config("a")).unwrap(),
            spawn_node(config("b")).unwrap(),
        );
        let (addr_b, _listen_b) = tcp_listen(&b, listen(LinkKind::Stream)).await.unwrap();
        let _dial_a = tcp_dial(&a, dial(addr_b, LinkKind::Stream));
        wait_route(&a, "b").await;
        wait_route(&b, "a").await;
        // A bogus length prefix and garbage; then a valid-looking frame of an unknown kind.
        let mut s = async_net::TcpStream::connect(addr_b).await.unwrap();
        s.write_all(b"\xff\xff\x07garbage-garbage").await.unwrap();
        let mut s2 = async_net::TcpStream::connect(addr_b).await.unwrap();
        s2.write_all(b"\x05\x00\x09abcd").await.unwrap();
        // Random datagrams, and an empty one, at a UDP listener.
        let (addr_u, _listen_u) = udp_listen(&b, listen(LinkKind::Datagram)).await.unwrap();
        let u = async_net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..50u8 {
            u.send_to(&[i, 1, 2, 3, i], addr_u).await.unwrap();
        }
        u.send_to(&[], addr_u).await.unwrap();
        // b closes the connection that sent the bad frame.
        let mut buf = [0u8; 512];
        within(5, "b closing the garbage connection", async {
            while let Ok(n) = s2.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        let r = a.ping("b").await.unwrap().unwrap();
        assert_eq!(r.error, None, "b still routes");
        a.shutdown().await;
        b.shutdown().await;
    }));
}

/// What each side of the mixed mesh tells the other.
struct Barrier {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Barrier {
    /// Says we got here and waits for the other side (or its failure, which drops its end).
    async fn meet(&self) {
        let _ = self.tx.send(()).await;
        let _ = self.rx.recv().await;
    }
}

fn barrier() -> (Barrier, Barrier) {
    let (tx1, rx1) = async_channel::bounded(1);
    let (tx2, rx2) = async_channel::bounded(1);
    (Barrier { tx: tx1, rx: rx2 }, Barrier { tx: tx2, rx: rx1 })
}

/// The tokio half of the mixed mesh: t1 dials s over TCP; t2 listens on UDP for s.
async fn tokio_side(s_tcp: Receiver<SocketAddr>, t2_udp: Sender<SocketAddr>, smol: Barrier) {
    use receptor_tokio::backends as tb;
    let node = |id: &str| receptor_tokio::spawn_node(config(id)).unwrap();
    let (t1, t2) = (node("t1"), node("t2"));
    let spec = tb::ListenSpec {
        bind: "127.0.0.1".into(),
        port: 0,
        link: link(LinkKind::Datagram),
        tls: None,
    };
    let (addr, _) = tb::udp_listen(&t2, spec).await.unwrap();
    t2_udp.send(addr).await.unwrap();
    let addr = s_tcp.recv().await.unwrap();
    let spec = DialSpec {
        address: addr.to_string(),
        redial: true,
        link: link(LinkKind::Stream),
        tls: None,
    };
    tb::tcp_dial(&t1, spec);

    tokio_wait_route(&t1, "t2").await;
    tokio_wait_route(&t2, "t1").await;
    // A node answers a ping along its own routes: start when every node has them.
    smol.meet().await;
    for (from, to) in [(&t1, "t2"), (&t2, "t1"), (&t1, "s"), (&t2, "s")] {
        let r = from.ping(to).await.unwrap().unwrap();
        assert_eq!(r.error, None, "{} -> {to}", from.id());
        assert_eq!(r.from.unwrap().as_str(), to);
    }
    for (from, to, path) in [
        (&t1, "t2", ["t1", "s", "t2"]),
        (&t2, "t1", ["t2", "s", "t1"]),
    ] {
        let mut rx = from.traceroute(to).await.unwrap();
        let mut names = Vec::new();
        while let Some(TraceEvent::Hop(h, r)) = rx.recv().await {
            assert_eq!(r.error, None, "hop {h}");
            names.push(r.from.unwrap().to_string());
        }
        assert_eq!(names, path);
    }
    // A datagram to the smol node's echo service comes back.
    let (mine, mut rx) = t1.listen(None, None).await.unwrap();
    let echo = ServiceName::new("echo").unwrap();
    t1.send_to(mine, "s", echo, Bytes::from_static(b"mixed"))
        .await
        .unwrap();
    let got = rx.recv().await.unwrap();
    let ServiceEvent::Datagram {
        from_node, payload, ..
    } = got
    else {
        panic!("expected the echo, got {got:?}");
    };
    assert_eq!((from_node.as_str(), &payload[..]), ("s", &b"mixed"[..]));

    smol.meet().await;
    for n in [t1, t2] {
        n.shutdown().await;
        assert_eq!(n.stopped().await, None);
    }
}

#[test]
fn mixed_mesh_of_tokio_and_smol_nodes() {
    // t1 -tcp- s -udp- t2: t1 (tokio) dials s's TCP listener; s dials t2's (tokio) UDP
    // listener. tokio runs in its own thread; s runs on an executor this thread drives.
    let (s_tcp_tx, s_tcp_rx) = async_channel::bounded(1);
    let (t2_udp_tx, t2_udp_rx) = async_channel::bounded(1);
    let (tokio, smol) = barrier();
    let tokio_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // The timeout must be made inside the runtime, which it registers with.
        let side = tokio_side(s_tcp_rx, t2_udp_tx, smol);
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), side).await })
            .expect("tokio side timed out");
    });

    let ex = Arc::new(Executor::new());
    async_io::block_on(ex.run(within(30, "smol side", async {
        let s = spawn_node_on(ex.clone(), config("s")).unwrap();
        let (addr, _listener) = tcp_listen(&s, listen(LinkKind::Stream)).await.unwrap();
        s_tcp_tx.send(addr).await.unwrap();
        let addr = t2_udp_rx.recv().await.unwrap();
        let _dialer = udp_dial(&s, dial(addr, LinkKind::Datagram));
        // Echo whatever reaches `echo`.
        let (echo, echo_rx) = s.listen(Some("echo"), None).await.unwrap();
        let echoer = s.clone();
        let _echo = ex.spawn(async move {
            while let Ok(ServiceEvent::Datagram {
                from_node,
                from_service,
                payload,
            }) = echo_rx.recv().await
            {
                let to = from_node.as_str();
                let _ = echoer.send_to(echo, to, from_service, payload).await;
            }
        });

        wait_route(&s, "t1").await;
        wait_route(&s, "t2").await;
        tokio.meet().await;
        for to in ["t1", "t2"] {
            let r = s.ping(to).await.unwrap().unwrap();
            assert_eq!(r.error, None, "s -> {to}");
            assert_eq!(r.from.unwrap().as_str(), to);
        }
        assert_eq!(trace(s.traceroute("t2").await.unwrap()).await, ["s", "t2"]);
        let status = s.status().await.unwrap();
        assert_eq!(status.connections.len(), 2);
        assert_eq!(status.known_connection_costs.len(), 3);

        tokio.meet().await;
        s.shutdown().await;
        assert_eq!(s.stopped().await, None);
    })));
    tokio_thread.join().expect("tokio side failed");
}
