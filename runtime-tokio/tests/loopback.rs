//! Nodes in one process, linked over real loopback sockets: routes form, pings and
//! traceroutes work, on every backend kind.

use std::sync::Arc;
use std::time::Duration;

use receptor_core::{Config, LinkConfig, LinkKind, NodeId};
use receptor_tokio::backends::{
    DialSpec, ListenSpec, WsDialSpec, WsListenSpec, tcp_dial, tcp_listen, udp_dial, udp_listen,
    ws_dial, ws_listen,
};
use receptor_tokio::{NodeHandle, TraceEvent, spawn_node};

fn node(id: &str) -> NodeHandle {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    // The same seed everywhere: the core must still give each node its own random stream.
    let cfg = Config::new(NodeId::new(id).unwrap(), 1, wall);
    spawn_node(Arc::new(cfg)).unwrap()
}

fn link(kind: LinkKind) -> Arc<LinkConfig> {
    Arc::new(LinkConfig::new(kind))
}

fn listen(kind: LinkKind) -> ListenSpec {
    ListenSpec {
        bind: "127.0.0.1".into(),
        port: 0,
        link: link(kind),
        tls: None,
    }
}

fn dial(addr: std::net::SocketAddr, kind: LinkKind) -> DialSpec {
    DialSpec {
        address: addr.to_string(),
        redial: true,
        link: link(kind),
        tls: None,
    }
}

async fn wait_route(n: &NodeHandle, to: &str) {
    for _ in 0..200 {
        if n.status().await.unwrap().routes.contains_key(to) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never got a route to {to}", n.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_udp_ws_line_routes_pings_and_traces() {
    // a -tcp- b -udp- c -ws- d
    let (a, b, c, d) = (node("a"), node("b"), node("c"), node("d"));
    let (addr_b, _) = tcp_listen(&b, listen(LinkKind::Stream)).await.unwrap();
    tcp_dial(&a, dial(addr_b, LinkKind::Stream));
    let (addr_c, _) = udp_listen(&c, listen(LinkKind::Datagram)).await.unwrap();
    udp_dial(&b, dial(addr_c, LinkKind::Datagram));
    let (addr_d, _) = ws_listen(
        &d,
        WsListenSpec {
            listen: listen(LinkKind::Message),
            path: "/".into(),
        },
    )
    .await
    .unwrap();
    ws_dial(
        &c,
        WsDialSpec {
            url: format!("ws://{addr_d}/"),
            redial: true,
            link: link(LinkKind::Message),
            tls: None,
            extra_header: Some("X-Test: yes".into()),
        },
    );
    wait_route(&a, "d").await;
    wait_route(&d, "a").await;

    let r = a.ping("d").await.unwrap().unwrap();
    assert_eq!(r.error, None);
    assert_eq!(r.from.unwrap().as_str(), "d");

    let mut hops = Vec::new();
    let mut rx = a.traceroute("d").await.unwrap();
    while let Some(ev) = rx.recv().await {
        match ev {
            TraceEvent::Hop(h, r) => hops.push((h, r.from.map(|n| n.to_string()), r.error)),
            TraceEvent::Done => break,
        }
    }
    let names: Vec<_> = hops.iter().map(|(_, f, _)| f.clone().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c", "d"], "{hops:?}");
    assert!(hops.iter().all(|(_, _, e)| e.is_none()));

    let status = a.status().await.unwrap();
    assert_eq!(status.routes.get("c").map(|n| n.as_str()), Some("b"));
    assert_eq!(status.known_connection_costs.len(), 4);

    // One connection of each backend kind meets on b and c.
    let (mb, mc) = (b.metrics().await.unwrap(), c.metrics().await.unwrap());
    assert_eq!(
        (mb.node.connections.stream, mb.node.connections.datagram),
        (1, 1)
    );
    assert_eq!(
        (mc.node.connections.datagram, mc.node.connections.message),
        (1, 1)
    );
    assert_eq!((mb.node.known_nodes, mb.node.routes), (4, 3));
    assert!(mb.node.stats.route_recomputations >= 1);

    // Unknown node: an error, not a hang.
    assert!(a.ping("nobody").await.unwrap().is_err());
    for n in [a, b, c, d] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_listener_drops_only_that_connection() {
    use tokio::io::AsyncWriteExt;
    let (a, b) = (node("a"), node("b"));
    let (addr_b, _) = tcp_listen(&b, listen(LinkKind::Stream)).await.unwrap();
    tcp_dial(&a, dial(addr_b, LinkKind::Stream));
    wait_route(&a, "b").await;
    // A bogus length prefix and garbage, then random datagrams at a UDP listener.
    let mut s = tokio::net::TcpStream::connect(addr_b).await.unwrap();
    s.write_all(b"\xff\xff\x07garbage-garbage").await.unwrap();
    let mut s2 = tokio::net::TcpStream::connect(addr_b).await.unwrap();
    s2.write_all(b"\x05\x00\x09abcd").await.unwrap();
    let (addr_u, _) = udp_listen(&b, listen(LinkKind::Datagram)).await.unwrap();
    let u = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..50u8 {
        u.send_to(&[i, 1, 2, 3, i], addr_u).await.unwrap();
    }
    u.send_to(&[], addr_u).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The garbage connection with a valid-looking bad frame is closed by b.
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::AsyncReadExt;
        loop {
            match s2.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "b kept the garbage connection open");
    let r = a.ping("b").await.unwrap().unwrap();
    assert_eq!(r.error, None, "b still routes");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_message_over_the_largest_frame_is_refused() {
    use futures_util::{SinkExt, StreamExt};
    use receptor_core::wire::MAX_MESSAGE_LEN;
    use tokio_tungstenite::tungstenite::Message;

    let (a, b) = (node("a"), node("b"));
    let spec = WsListenSpec {
        listen: listen(LinkKind::Message),
        path: "/".into(),
    };
    let (addr_b, _) = ws_listen(&b, spec).await.unwrap();
    ws_dial(
        &a,
        WsDialSpec {
            url: format!("ws://{addr_b}/"),
            redial: true,
            link: link(LinkKind::Message),
            tls: None,
            extra_header: None,
        },
    );
    wait_route(&a, "b").await;

    let tcp = tokio::net::TcpStream::connect(addr_b).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr_b}/"), tcp)
        .await
        .unwrap();
    // A data message (lost before the handshake, as in Go) as large as a message can be:
    // accepted, and the session goes on (b answers a ping sent after it).
    let mut largest = vec![0u8; MAX_MESSAGE_LEN];
    largest[1] = 29;
    ws.send(Message::Binary(largest.into())).await.unwrap();
    ws.send(Message::Ping(b"after".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = ws.next().await {
            if let Ok(Message::Pong(p)) = m {
                return p.as_ref() == b"after";
            }
        }
        false
    })
    .await;
    assert_eq!(
        pong,
        Ok(true),
        "b dropped a session after a message of the largest size"
    );

    // One byte more: refused, and b closes the session.
    let _ = ws
        .send(Message::Binary(vec![0u8; MAX_MESSAGE_LEN + 1].into()))
        .await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "b kept a session that sent an oversized message"
    );

    // b is fine: its real link still carries pings.
    let r = a.ping("b").await.unwrap().unwrap();
    assert_eq!(r.error, None);
    a.shutdown().await;
    b.shutdown().await;
}
