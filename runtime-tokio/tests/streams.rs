//! Mesh streams (QUIC over mesh datagrams) between nodes in one process over real sockets.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use receptor_core::firewall::FirewallRule;
use receptor_core::stream::{
    HANDSHAKE_TIMEOUT, ServerTls, StreamFailure, client_config, server_config,
};
use receptor_core::wire::Problem;
use receptor_core::{Config, LinkConfig, LinkKind, NodeId};
use receptor_tokio::backends::{DialSpec, ListenSpec, tcp_dial, tcp_listen, udp_dial, udp_listen};
use receptor_tokio::tls::insecure::{insecure_client_config, insecure_server_config};
use receptor_tokio::{DialFailure, MeshStream, NodeHandle, spawn_node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn node(id: &str) -> NodeHandle {
    node_with(id, Vec::new())
}

fn node_with(id: &str, firewall: Vec<FirewallRule>) -> NodeHandle {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let mut config = Config::new(NodeId::new(id).unwrap(), 7, wall);
    config.firewall = firewall;
    spawn_node(Arc::new(config)).unwrap()
}

/// A firewall rule from its YAML fields.
fn rule(fields: &[(&str, &str)]) -> FirewallRule {
    let map = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    FirewallRule::parse(&map).unwrap()
}

async fn line() -> (NodeHandle, NodeHandle, NodeHandle) {
    line_through(node("b")).await
}

/// a -tcp- `b` -tcp- c, once a and c have routes to each other.
async fn line_through(b: NodeHandle) -> (NodeHandle, NodeHandle, NodeHandle) {
    let (a, c) = (node("a"), node("c"));
    let link = Arc::new(LinkConfig::new(LinkKind::Stream));
    for (dialer, listener) in [(&a, &b), (&c, &b)] {
        let spec = ListenSpec {
            bind: "127.0.0.1".into(),
            port: 0,
            link: link.clone(),
            tls: None,
        };
        let (addr, _) = tcp_listen(listener, spec).await.unwrap();
        tcp_dial(
            dialer,
            DialSpec {
                address: addr.to_string(),
                redial: true,
                link: link.clone(),
                tls: None,
            },
        );
    }
    for _ in 0..200 {
        let sa = a.status().await.unwrap();
        let sc = c.status().await.unwrap();
        if sa.routes.contains_key("c") && sc.routes.contains_key("a") {
            return (a, b, c);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no routes");
}

fn insecure_server() -> ServerTls {
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    ServerTls::Fixed(server_config((*tls).clone()).unwrap())
}

async fn dial(from: &NodeHandle, to: &str, svc: &str) -> Result<MeshStream, DialFailure> {
    let tls = client_config((*insecure_client_config().unwrap()).clone()).unwrap();
    from.dial(to, svc, tls, from.id().as_str()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_two_hops_with_half_close() {
    let (a, _b, c) = line().await;
    let mut l = c
        .listen_stream("echo", insecure_server(), None)
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(mut s) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
                s.shutdown().await.unwrap();
            });
        }
    });
    let s = dial(&a, "c", "echo").await.unwrap();
    assert_eq!(s.remote().unwrap().node.as_str(), "c");
    let (mut rd, mut wr) = tokio::io::split(s);
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&data).await.unwrap();
        // Half-close: the echo still comes back after this.
        wr.shutdown().await.unwrap();
        wr
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let _wr = writer.await.unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "echoed bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_to_closed_service_fails_fast() {
    let (a, _b, _c) = line().await;
    let started = std::time::Instant::now();
    let r = dial(&a, "c", "nothere").await;
    assert!(r.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match r.unwrap_err() {
        DialFailure::Failed(StreamFailure::Unreachable { reporter, problem }) => {
            assert_eq!((reporter.as_str(), problem), ("c", Problem::ServiceUnknown));
        }
        other => panic!("{other:?}"),
    }
}

/// A firewall on the way that rejects the dialer's packets fails the dial at once, naming
/// the node whose firewall it was; the dial leaves nothing bound behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_rejected_by_a_firewall_fails_at_once() {
    let b = node_with(
        "b",
        vec![rule(&[
            ("action", "reject"),
            ("fromnode", "a"),
            ("tonode", "c"),
        ])],
    );
    let (a, _b, c) = line_through(b).await;
    let _l = c
        .listen_stream("echo", insecure_server(), None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = dial(&a, "c", "echo").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match &e {
        DialFailure::Failed(StreamFailure::Unreachable { reporter, problem }) => {
            assert_eq!((reporter.as_str(), problem), ("b", &Problem::Firewall));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_lasting());
    assert_eq!(e.to_string(), "blocked by firewall (reported by node b)");
}

/// A firewall that drops the packets: the dial fails when its handshake times out, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_dropped_by_a_firewall_times_out() {
    let b = node_with(
        "b",
        vec![rule(&[
            ("action", "drop"),
            ("fromnode", "a"),
            ("tonode", "c"),
        ])],
    );
    let (a, _b, c) = line_through(b).await;
    let _l = c
        .listen_stream("echo", insecure_server(), None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = dial(&a, "c", "echo").await.unwrap_err();
    let took = started.elapsed();
    assert!(took >= HANDSHAKE_TIMEOUT && took < HANDSHAKE_TIMEOUT + Duration::from_secs(5));
    assert_eq!(
        e,
        DialFailure::Failed(StreamFailure::HandshakeTimeout(HANDSHAKE_TIMEOUT))
    );
    assert!(!e.is_lasting());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_speaks_first() {
    let (a, _b, c) = line().await;
    let mut l = c
        .listen_stream("greet", insecure_server(), None)
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(mut s) = l.accept().await {
            s.write_all(b"hello from c\n").await.unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        }
    });
    let mut s = dial(&a, "c", "greet").await.unwrap();
    let mut buf = [0u8; 13];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello from c\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_api_echo_without_copies() {
    use bytes::Bytes;
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::task::Poll;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    let (a, _b, c) = line().await;
    let mut l = c
        .listen_stream("echob", insecure_server(), None)
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(mut s) = l.accept().await {
            tokio::spawn(async move {
                while let Some(mut chunk) = poll_fn(|cx| s.poll_read_bytes(cx)).await.unwrap() {
                    poll_fn(|cx| s.poll_write_bytes(cx, &mut chunk))
                        .await
                        .unwrap();
                    assert!(chunk.is_empty());
                }
                s.shutdown().await.unwrap();
            });
        }
    });
    let mut s = dial(&a, "c", "echob").await.unwrap();
    // More than the write credit in one call: it is handed over in chunks as credit returns.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 13 + i / 509) as u8)
        .collect();
    let mut send = Bytes::from(data.clone());
    let mut got = Vec::new();
    let (mut sending, mut shutting, mut first) = (true, false, true);
    // Write and read at once (the echo cannot hold all of it), by hand: both need `s`.
    let both = poll_fn(|cx| {
        loop {
            let mut progressed = false;
            if sending && let Poll::Ready(r) = s.poll_write_bytes(cx, &mut send) {
                r.unwrap();
                (sending, shutting, progressed) = (false, true, true);
            }
            if shutting && let Poll::Ready(r) = Pin::new(&mut s).poll_shutdown(cx) {
                r.unwrap();
                (shutting, progressed) = (false, true);
            }
            if first {
                // A small poll_read first: what it leaves comes first from poll_read_bytes.
                let mut small = [0u8; 100];
                let mut rb = ReadBuf::new(&mut small);
                if let Poll::Ready(r) = Pin::new(&mut s).poll_read(cx, &mut rb) {
                    r.unwrap();
                    got.extend_from_slice(rb.filled());
                    (first, progressed) = (false, true);
                }
            } else {
                match s.poll_read_bytes(cx) {
                    Poll::Ready(Ok(Some(c))) => {
                        got.extend_from_slice(&c);
                        progressed = true;
                    }
                    Poll::Ready(Ok(None)) => return Poll::Ready(()),
                    Poll::Ready(Err(e)) => panic!("{e}"),
                    Poll::Pending => {}
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), both)
        .await
        .unwrap();
    assert!(!sending && !shutting && send.is_empty());
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
}

/// `finish_acked` returns once the peer has acknowledged everything written, FIN included;
/// when the peer goes away first it fails, so a cut after a half-close is not taken for a
/// delivery. (Usually at once: a stopping node closes its streams before its links, as
/// `tests/tests/stream_side.rs` pins. But quinn withholds a close behind congestion control
/// when ack-eliciting frames are pending, so it may come only at the idle timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_acked_waits_for_the_peer_and_fails_without_it() {
    let (a, _b, c) = line().await;
    let mut l = c
        .listen_stream("sink", insecure_server(), None)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(mut s) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                let _ = s.read_to_end(&mut all).await;
                let _ = tx.send(all.len()).await;
            });
        }
    });
    let mut s = dial(&a, "c", "sink").await.unwrap();
    s.write_all(&vec![7u8; 300_000]).await.unwrap();
    s.finish_acked().await.unwrap();
    assert_eq!(rx.recv().await, Some(300_000));
    // A second half-close is harmless.
    s.shutdown().await.unwrap();

    // The peer stops (over UDP: a TCP link closed with unread data can be reset, and the
    // reset discards what it carried last).
    let (d, e) = (node("d"), node("e"));
    let link = Arc::new(LinkConfig::new(LinkKind::Datagram));
    let spec = ListenSpec {
        bind: "127.0.0.1".into(),
        port: 0,
        link: link.clone(),
        tls: None,
    };
    let (addr, _) = udp_listen(&e, spec).await.unwrap();
    let spec = DialSpec {
        address: addr.to_string(),
        redial: true,
        link,
        tls: None,
    };
    udp_dial(&d, spec);
    let mut l = e
        .listen_stream("sink", insecure_server(), None)
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(mut s) = l.accept().await {
            tokio::spawn(async move { while s.read(&mut [0u8; 1024]).await.unwrap_or(0) > 0 {} });
        }
    });
    let mut s = loop {
        match dial(&d, "e", "sink").await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    e.shutdown().await;
    e.stopped().await;
    let within = receptor_core::stream::IDLE_TIMEOUT + Duration::from_secs(10);
    let r = tokio::time::timeout(within, async {
        let _ = s.write_all(b"lost").await;
        s.finish_acked().await
    })
    .await
    .expect("finish_acked outlived the idle timeout");
    assert!(r.is_err(), "{r:?}");
}

/// A burst of dials larger than the old accept queue (64) completes in one wake-up of the
/// listening node, before its accepting task runs: every stream must still reach the
/// listener (they were closed after their handshake, and a burst of remote units saw EOF).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_dials_all_reach_a_busy_listener() {
    const N: usize = 100;
    let (a, _b, c) = line().await;
    let mut l = c
        .listen_stream("burst", insecure_server(), None)
        .await
        .unwrap();
    // Nobody accepts until every dial is through.
    let dials: Vec<_> = (0..N)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                let mut s = dial(&a, "c", "burst").await.unwrap();
                s.write_all(&(i as u32).to_be_bytes()).await.unwrap();
                s.shutdown().await.unwrap();
                s
            })
        })
        .collect();
    let mut dialed = Vec::new();
    for d in dials {
        dialed.push(d.await.unwrap());
    }
    let mut seen = [false; N];
    for _ in 0..N {
        let mut s = tokio::time::timeout(Duration::from_secs(20), l.accept())
            .await
            .expect("a stream was refused: fewer accepted than dialed")
            .unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        let i = u32::from_be_bytes(got.try_into().unwrap()) as usize;
        assert!(!seen[i], "stream {i} accepted twice");
        seen[i] = true;
    }
    drop(dialed);
}
