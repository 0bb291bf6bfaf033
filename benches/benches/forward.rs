//! Forwarding one data message through a transit node: decode, route, re-encode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use divan::Bencher;
use receptor_core::id::name_hash;
use receptor_core::wire::{DataHeader, RouteUpdate};
use receptor_core::{Config, Input, LinkConfig, LinkId, LinkKind, Node, NodeId, ServiceName};

fn main() {
    divan::main();
}

/// A node `mid` with established stream links to `a` (link 1) and `b` (link 2), routes known.
fn transit_node() -> (Node, Instant) {
    let t0 = Instant::now();
    let cfg = Config::new(
        NodeId::new("mid").unwrap(),
        1,
        Duration::from_secs(1_760_000_000),
    );
    let mut n = Node::new(Arc::new(cfg), t0).unwrap();
    for (link, peer) in [(1, "a"), (2, "b")] {
        let link = LinkId(link);
        let config = Arc::new(LinkConfig::new(LinkKind::Stream));
        n.handle_input(t0, Input::LinkUp { link, config });
        let hello = RouteUpdate {
            node_id: peer.into(),
            update_id: format!("hello-{peer}"),
            epoch: 1,
            sequence: 1,
            forwarding_node: peer.into(),
            ..Default::default()
        };
        n.handle_input(
            t0,
            Input::Received {
                link,
                data: hello.encode().unwrap().stream(),
            },
        );
    }
    let t1 = t0 + Duration::from_millis(200);
    n.handle_input(t1, Input::Timeout);
    while n.poll_transmit().is_some() {}
    while n.poll_event().is_some() {}
    assert_eq!(n.routes().len(), 2);
    (n, t1)
}

fn data_frame(payload: usize) -> Bytes {
    let h = DataHeader {
        hops_to_live: 29,
        from_node: name_hash("a"),
        to_node: name_hash("b"),
        from_service: ServiceName::new("eph12345").unwrap(),
        to_service: ServiceName::new("control").unwrap(),
    };
    h.encode(&vec![7u8; payload]).unwrap().stream()
}

#[divan::bench(args = [0, 1200, 60_000], sample_count = 200, sample_size = 1000)]
fn forward_data_message(bencher: Bencher<'_, '_>, payload: usize) {
    let (mut n, now) = transit_node();
    let frame = data_frame(payload);
    bencher.bench_local(|| {
        n.handle_input(
            now,
            Input::Received {
                link: LinkId(1),
                data: frame.clone(),
            },
        );
        let tx = n.poll_transmit();
        debug_assert!(tx.as_ref().is_some_and(|t| t.link == LinkId(2)));
        divan::black_box(tx)
    });
}
