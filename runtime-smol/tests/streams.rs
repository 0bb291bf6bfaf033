//! Mesh streams (QUIC over mesh datagrams) between smol nodes in one process over real
//! loopback sockets, and between a smol node and a tokio node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_io::Timer;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use receptor_core::stream::{DialFailure, ServerTls, StreamFailure, client_config, server_config};
use receptor_core::wire::Problem;
use receptor_core::{Config, LinkKind};
use receptor_smol::backends::{tcp_dial, tcp_listen, udp_dial, udp_listen};
mod common;
use common::{config_seeded, dial_spec, listen_spec, wait_route, within};

use receptor_smol::{Executor, MeshStream, NodeHandle, StreamListener, Task, spawn_node};
use receptor_tokio::tls::insecure::{insecure_client_config, insecure_server_config};

fn config(id: &str) -> Arc<Config> {
    config_seeded(id, 7)
}

/// a -tcp- b -udp- c, routed every way; the backends' tasks are returned to be kept.
async fn line() -> (NodeHandle, NodeHandle, NodeHandle, Vec<Task<()>>) {
    let (a, b, c) = (
        spawn_node(config("a")).unwrap(),
        spawn_node(config("b")).unwrap(),
        spawn_node(config("c")).unwrap(),
    );
    let (addr_b, listen_b) = tcp_listen(&b, listen_spec(LinkKind::Stream)).await.unwrap();
    let dial_a = tcp_dial(&a, dial_spec(addr_b, LinkKind::Stream));
    let (addr_c, listen_c) = udp_listen(&c, listen_spec(LinkKind::Datagram))
        .await
        .unwrap();
    let dial_b = udp_dial(&b, dial_spec(addr_c, LinkKind::Datagram));
    for (n, to) in [(&a, "c"), (&b, "a"), (&b, "c"), (&c, "a")] {
        wait_route(n, to).await;
    }
    (a, b, c, vec![listen_b, dial_a, listen_c, dial_b])
}

fn insecure_server() -> ServerTls {
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    ServerTls::Fixed(server_config((*tls).clone()).unwrap())
}

async fn dial(from: &NodeHandle, to: &str, svc: &str) -> Result<MeshStream, DialFailure> {
    let tls = client_config((*insecure_client_config().unwrap()).clone()).unwrap();
    from.dial(to, svc, tls, from.id().as_str()).await
}

/// Echoes every accepted stream until its EOF, then half-closes it.
fn echo_server(ex: &Arc<Executor<'static>>, l: StreamListener) -> Task<()> {
    let ex2 = ex.clone();
    ex.spawn(async move {
        while let Some(s) = l.accept().await {
            ex2.spawn(echo(s)).detach();
        }
    })
}

async fn echo(mut s: MeshStream) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await.unwrap();
    }
    s.close().await.unwrap();
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Writes `data`, half-closes, and reads back everything until EOF.
async fn round_trip(s: MeshStream, data: Vec<u8>) -> Vec<u8> {
    let (mut rd, mut wr) = futures_lite::io::split(s);
    let writer = async move {
        wr.write_all(&data).await.unwrap();
        // Half-close: the echo still comes back after this.
        wr.close().await.unwrap();
        wr
    };
    let reader = async move {
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        got
    };
    let (_wr, got) = future::zip(writer, reader).await;
    got
}

fn run<T>(secs: u64, what: &str, f: impl FnOnce(Arc<Executor<'static>>) -> T) -> T::Output
where
    T: Future,
{
    let ex = Arc::new(Executor::new());
    async_io::block_on(ex.run(within(secs, what, f(ex.clone()))))
}

#[test]
fn echo_8_mib_over_two_hops_with_half_close() {
    run(120, "echo", |ex| async move {
        let (a, _b, c, _links) = line().await;
        let l = c
            .listen_stream("echo", insecure_server(), None)
            .await
            .unwrap();
        assert_eq!(l.service().to_string(), "echo");
        let _server = echo_server(&ex, l);
        let s = dial(&a, "c", "echo").await.unwrap();
        assert_eq!(s.remote().unwrap().node.as_str(), "c");
        let data = pattern(8 * 1024 * 1024);
        let acked = s.acked();
        let got = round_trip(s, data.clone()).await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echoed bytes differ");
        // Everything written, FIN included, was acknowledged by c.
        within(5, "acknowledgement", acked).await.unwrap();
    });
}

#[test]
fn server_speaks_first() {
    run(30, "greeting", |ex| async move {
        let (a, _b, c, _links) = line().await;
        let l = c
            .listen_stream("greet", insecure_server(), None)
            .await
            .unwrap();
        let (end_tx, end_rx) = async_channel::bounded(1);
        let _server = ex.spawn(async move {
            while let Some(mut s) = l.accept().await {
                s.write_all(b"hello from c\n").await.unwrap();
                let mut sink = Vec::new();
                let r = s.read_to_end(&mut sink).await.map_err(|e| e.to_string());
                let _ = end_tx.send(r).await;
            }
        });
        let mut s = dial(&a, "c", "greet").await.unwrap();
        let mut buf = [0u8; 13];
        within(5, "the greeting", s.read_exact(&mut buf))
            .await
            .unwrap();
        assert_eq!(&buf, b"hello from c\n");
        // Dropping the client's stream ends it: the server reads a clean EOF.
        drop(s);
        let end = within(5, "the server's EOF", end_rx.recv()).await.unwrap();
        assert_eq!(end, Ok(0));
    });
}

#[test]
fn dial_to_unbound_service_fails_fast() {
    run(30, "unbound dial", |_ex| async move {
        let (a, _b, _c, _links) = line().await;
        let started = Instant::now();
        let err = dial(&a, "c", "nothere").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        match err {
            DialFailure::Failed(StreamFailure::Unreachable { reporter, problem }) => {
                assert_eq!((reporter.as_str(), problem), ("c", Problem::ServiceUnknown));
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn stopping_a_node_ends_its_streams_at_once() {
    run(30, "node stop", |ex| async move {
        let (a, _b, c, _links) = line().await;
        let l = c
            .listen_stream("hold", insecure_server(), None)
            .await
            .unwrap();
        let (end_tx, end_rx) = async_channel::bounded(1);
        let _server = ex.spawn(async move {
            let mut s = l.accept().await.unwrap();
            s.write_all(b"up").await.unwrap();
            let mut sink = Vec::new();
            let r = s.read_to_end(&mut sink).await.map_err(|e| e.to_string());
            let _ = end_tx.send(r).await;
        });
        let mut s = dial(&a, "c", "hold").await.unwrap();
        let acked = s.acked();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).await.unwrap();
        let started = Instant::now();
        c.shutdown().await;
        // The node's own stream fails rather than hangs.
        let end = within(5, "c's own stream", end_rx.recv()).await.unwrap();
        assert_eq!(end, Err("the node has stopped".to_owned()));
        // The peer is told at once, not at its 30 s idle timeout: EOF (a normal close).
        let n = within(5, "a's stream", s.read(&mut buf)).await.unwrap();
        assert_eq!(n, 0);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(s.write_all(b"more").await.is_err());
        // Never half-closed, never acknowledged: the wait for it fails rather than hangs.
        assert!(within(5, "acked", acked).await.is_err());
    });
}

#[test]
fn slow_reader_slows_the_writer() {
    const TOTAL: usize = 16 * 1024 * 1024;
    run(120, "back-pressure", |ex| async move {
        let (a, _b, c, _links) = line().await;
        let l = c
            .listen_stream("sink", insecure_server(), None)
            .await
            .unwrap();
        let (go_tx, go_rx) = async_channel::bounded::<()>(1);
        // Accepts one stream and reads nothing until told to.
        let server = ex.spawn(async move {
            let mut s = l.accept().await.unwrap();
            let _ = go_rx.recv().await;
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let s = dial(&a, "c", "sink").await.unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let counter = written.clone();
        let writer = ex.spawn(async move {
            let mut s = s;
            let data = pattern(TOTAL);
            for chunk in data.chunks(64 * 1024) {
                s.write_all(chunk).await.unwrap();
                counter.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            s.close().await.unwrap();
            s
        });
        // The writer stalls: nothing buffers without bound between it and the idle reader.
        let mut last = usize::MAX;
        loop {
            Timer::after(Duration::from_millis(500)).await;
            let now = written.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        // QUIC's 6 MiB stream window, 1 MiB of write credit, the reader's 256 KiB queue;
        // then slack.
        assert!(
            last < 10 * 1024 * 1024,
            "the writer got {last} bytes past an idle reader"
        );
        assert!(last > 0);
        // The reader wakes up: everything arrives, intact.
        go_tx.send(()).await.unwrap();
        let got = server.await;
        let _s = writer.await;
        assert_eq!(got.len(), TOTAL);
        assert!(got == pattern(TOTAL), "bytes differ");
    });
}

/// The tokio half of the mixed test: t dials s's TCP listener, echoes `echo-t`, and dials
/// `echo-s` on s.
async fn tokio_side(
    s_tcp: async_channel::Receiver<SocketAddr>,
    ready: async_channel::Sender<()>,
    finished: async_channel::Sender<()>,
    done: async_channel::Receiver<()>,
) {
    use receptor_tokio::backends as tb;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = receptor_tokio::spawn_node(config("t")).unwrap();
    let l = t
        .listen_stream("echo-t", insecure_server(), None)
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut l = l;
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
    let addr = s_tcp.recv().await.unwrap();
    // The specs are the core's, the same for both runtimes.
    tb::tcp_dial(&t, dial_spec(addr, LinkKind::Stream));
    for _ in 0..200 {
        if t.status().await.unwrap().routes.contains_key("s") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    ready.send(()).await.unwrap();

    // tokio dials smol.
    let tls = client_config((*insecure_client_config().unwrap()).clone()).unwrap();
    let s = t.dial("s", "echo-s", tls, "t").await.unwrap();
    assert_eq!(s.remote().unwrap().node.as_str(), "s");
    let (mut rd, mut wr) = tokio::io::split(s);
    let data = pattern(2 * 1024 * 1024);
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&data).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut got = Vec::new();
    rd.read_to_end(&mut got).await.unwrap();
    let _wr = writer.await.unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "smol echoed bytes differ");

    // Stay up until the smol side has dialled us too.
    finished.send(()).await.unwrap();
    let _ = done.recv().await;
    t.shutdown().await;
}

#[test]
fn streams_between_tokio_and_smol_nodes() {
    // t (tokio) -tcp- s (smol): each dials the other's echo service.
    let (s_tcp_tx, s_tcp_rx) = async_channel::bounded(1);
    let (ready_tx, ready_rx) = async_channel::bounded(1);
    let (finished_tx, finished_rx) = async_channel::bounded(1);
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    let tokio_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let side = tokio_side(s_tcp_rx, ready_tx, finished_tx, done_rx);
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), side).await })
            .expect("tokio side timed out");
    });

    run(60, "smol side", |ex| async move {
        let s = spawn_node(config("s")).unwrap();
        let (addr, _listener) = tcp_listen(&s, listen_spec(LinkKind::Stream)).await.unwrap();
        let l = s
            .listen_stream("echo-s", insecure_server(), None)
            .await
            .unwrap();
        let _server = echo_server(&ex, l);
        s_tcp_tx.send(addr).await.unwrap();
        wait_route(&s, "t").await;
        // The tokio side dials us once it has its route; we dial it meanwhile.
        let _ = ready_rx.recv().await;
        let st = dial(&s, "t", "echo-t").await.unwrap();
        assert_eq!(st.remote().unwrap().node.as_str(), "t");
        let data = pattern(2 * 1024 * 1024);
        let got = round_trip(st, data.clone()).await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "tokio echoed bytes differ");
        // The tokio side's own round trip through our echo service is done too.
        finished_rx.recv().await.unwrap();
        drop(done_tx);
        s.shutdown().await;
    });
    tokio_thread.join().expect("tokio side failed");
}

/// A burst of dials completes many handshakes in one wake-up of the listening node, before
/// its accepting task runs: every stream must still reach the listener (with a queue of 64
/// they were closed after their handshake, and a burst of remote units saw EOF).
#[test]
fn a_burst_of_dials_all_reach_a_busy_listener() {
    const N: usize = 100;
    run(60, "burst", |ex| async move {
        let (a, _b, c, _links) = line().await;
        let l = c
            .listen_stream("burst", insecure_server(), None)
            .await
            .unwrap();
        // Nobody accepts until every dial is through.
        let dials: Vec<_> = (0..N)
            .map(|i| {
                let a = a.clone();
                ex.spawn(async move {
                    let mut s = dial(&a, "c", "burst").await.unwrap();
                    s.write_all(&(i as u32).to_be_bytes()).await.unwrap();
                    s.close().await.unwrap();
                    s
                })
            })
            .collect();
        let mut dialed = Vec::new();
        for d in dials {
            dialed.push(d.await);
        }
        let mut seen = [false; N];
        for _ in 0..N {
            let mut s = within(
                20,
                "a stream refused: fewer accepted than dialed",
                l.accept(),
            )
            .await
            .unwrap();
            let mut got = Vec::new();
            within(20, "its bytes", s.read_to_end(&mut got))
                .await
                .unwrap();
            let i = u32::from_be_bytes(got.try_into().unwrap()) as usize;
            assert!(!seen[i], "stream {i} accepted twice");
            seen[i] = true;
        }
        drop(dialed);
    });
}
