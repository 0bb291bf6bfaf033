//! The stream layer's address map keeps only the peers of live connections: two layers back
//! to back, many short connections, virtual time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use receptor_tests::stream_tls;

use super::*;
use crate::wire::{PROBLEM_SERVICE_UNKNOWN, Problem, UnreachableNotice};

fn addr(node: &str, service: &str) -> Addr {
    Addr {
        node: NodeId::new(node).unwrap(),
        service: ServiceName::new(service).unwrap(),
    }
}

fn svc(name: &str) -> ServiceName {
    ServiceName::new(name).unwrap()
}

/// Moves datagrams both ways between `a` (node "a") and `b` (node "b") until neither has any
/// left, checking both maps after every datagram; returns the events each side produced.
fn pump(a: &mut Streams, b: &mut Streams, now: Instant) -> (Vec<StreamEvent>, Vec<StreamEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(d) = a.poll_datagram() {
            moved = true;
            b.handle_datagram(now, d.to.service, addr("a", &d.from.to_string()), d.payload);
            check_map(b);
        }
        while let Some(d) = b.poll_datagram() {
            moved = true;
            a.handle_datagram(now, d.to.service, addr("b", &d.from.to_string()), d.payload);
            check_map(a);
        }
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if !moved {
            return (ea, eb);
        }
    }
}

/// The map holds exactly the peers of the connections `s` keeps (closing ones included:
/// quinn still sends their close).
fn check_map(s: &Streams) {
    let peers: BTreeSet<&Addr> = s.conns.values().map(|c| &c.remote).collect();
    assert_eq!(s.addrs.len(), peers.len(), "peers: {peers:?}");
    for p in peers {
        let sock = s
            .addrs
            .get(p)
            .unwrap_or_else(|| panic!("{p} has no address"));
        assert_eq!(s.addrs.mesh(&sock), Some(p));
    }
}

/// Time passes in steps of `step` for `total`, both sides running their timers.
fn run(a: &mut Streams, b: &mut Streams, now: &mut Instant, step: Duration, total: Duration) {
    let end = *now + total;
    while *now < end {
        *now += step;
        a.handle_timeout(*now);
        b.handle_timeout(*now);
        pump(a, b, *now);
        check_map(a);
        check_map(b);
    }
}

fn accepted(events: &[StreamEvent]) -> Vec<StreamHandle> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Accepted { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect()
}

/// Many short connections, each from its own ephemeral service (as dials are): while they
/// live, each side keeps their peers; once quinn is done with them (closed, then drained
/// after the close's three PTOs), both maps are empty again.
#[test]
fn the_address_map_shrinks_back_after_connections_end() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(7);
    let (mut a, mut b) = (Streams::new(11), Streams::new(12));
    b.listen(svc("svc"), ServerTls::Fixed(server));
    let ms = Duration::from_millis(10);
    for round in 0..3 {
        let mut dials = Vec::new();
        for i in 0..4 {
            let eph = svc(&format!("eph{round}-{i}"));
            let id = a
                .dial(now, eph, addr("b", "svc"), client.clone(), "x")
                .unwrap();
            dials.push(id);
        }
        let mut eb = Vec::new();
        for _ in 0..10 {
            now += ms;
            a.handle_timeout(now);
            b.handle_timeout(now);
            eb.extend(pump(&mut a, &mut b, now).1);
        }
        let acc = accepted(&eb);
        assert_eq!(acc.len(), 4, "{eb:?}");
        // a dials one address; b sees one per dialer.
        assert_eq!((a.addrs.len(), b.addrs.len()), (1, 4));
        for &id in &dials {
            assert_eq!(a.write(now, id, b"ping").unwrap(), 4);
        }
        pump(&mut a, &mut b, now);
        // Half close here, half there: both sides' closes go through the map.
        for (k, &id) in dials.iter().enumerate() {
            if k % 2 == 0 {
                a.close(now, id);
            }
        }
        for (k, &id) in acc.iter().enumerate() {
            if k % 2 == 1 {
                b.close(now, id);
            }
        }
        pump(&mut a, &mut b, now);
        // Closing, not drained: quinn still answers with its close, to an address kept.
        assert!(!a.is_empty() && !b.is_empty());
        assert_eq!(a.addrs.len(), 1);
        // The rest close when the application lets go after hearing `Closed`.
        for &id in &dials {
            a.close(now, id);
        }
        for &id in &acc {
            b.close(now, id);
        }
        run(&mut a, &mut b, &mut now, ms * 10, Duration::from_secs(5));
        assert!(a.is_empty() && b.is_empty(), "{a:?} {b:?}");
        assert_eq!((a.addrs.len(), b.addrs.len()), (0, 0), "round {round}");
    }
}

/// A notice that `to` (a peer's address) is unreachable from `from`, as node `to.node` or a
/// node on the way sends it.
fn unreachable(from: &Addr, to: &Addr) -> UnreachableNotice {
    UnreachableNotice {
        from_node: from.node.to_string(),
        to_node: to.node.to_string(),
        from_service: from.service.to_string(),
        to_service: to.service.to_string(),
        problem: PROBLEM_SERVICE_UNKNOWN.into(),
    }
}

/// Time passes on `s` alone for `total`: its peer is gone, whatever it sends is lost.
fn alone(s: &mut Streams, now: &mut Instant, total: Duration) -> Vec<StreamEvent> {
    let end = *now + total;
    let mut events = Vec::new();
    while *now < end {
        *now += Duration::from_millis(100);
        s.handle_timeout(*now);
        while s.poll_datagram().is_some() {}
        events.extend(std::iter::from_fn(|| s.poll_event()));
        check_map(s);
    }
    events
}

fn unreachable_failure(events: &[StreamEvent], id: StreamHandle) -> bool {
    events.iter().any(|e| {
        matches!(e, StreamEvent::Closed {
            stream,
            error: Some(StreamFailure::Unreachable { problem: Problem::ServiceUnknown, .. }),
        } if *stream == id)
    })
}

/// A dial ended by an unreachable notice: the dialer hears why at once, and once quinn
/// drained the connection nothing of it is left (address, endpoint).
#[test]
fn an_unreachable_peer_leaves_nothing_at_the_dialer() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(8);
    let (mut a, mut b) = (Streams::new(13), Streams::new(14));
    b.listen(svc("svc"), ServerTls::Fixed(server));
    let eph = svc("eph");
    let id = a.dial(now, eph, addr("b", "svc"), client, "x").unwrap();
    pump(&mut a, &mut b, now);
    assert_eq!((a.len(), a.addrs.len()), (1, 1));
    let notice = unreachable(&addr("a", "eph"), &addr("b", "svc"));
    a.handle_unreachable(now, eph, &NodeId::new("b").unwrap(), &notice);
    let events: Vec<StreamEvent> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(unreachable_failure(&events, id), "{events:?}");
    alone(&mut a, &mut now, Duration::from_secs(10));
    assert_eq!((a.len(), a.addrs.len()), (0, 0));
    assert!(!a.has_service(eph));
}

/// A listener's connections whose dialer went away (the mesh says its service is unknown)
/// are gone from the listener's QUIC endpoint too once drained, open ones and ones already
/// closing alike; and a packet of the dialer's that still arrives meets the close, not a
/// new connection.
#[test]
fn an_unreachable_peer_leaves_nothing_at_the_listener() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(10);
    let (mut a, mut b) = (Streams::new(17), Streams::new(18));
    let service = svc("svc");
    b.listen(service, ServerTls::Fixed(server));
    let dials: Vec<StreamHandle> = ["eph1", "eph2"]
        .iter()
        .map(|e| {
            a.dial(now, svc(e), addr("b", "svc"), client.clone(), "x")
                .unwrap()
        })
        .collect();
    let (_, eb) = pump(&mut a, &mut b, now);
    let acc = accepted(&eb);
    assert_eq!(acc.len(), 2, "{eb:?}");
    let open_at_b = |b: &Streams| b.endpoints.get(&service).map(|e| e.ep.open_connections());
    assert_eq!(open_at_b(&b), Some(2));
    // The second is closing already when the notices come.
    b.close(now, acc[1]);
    let reporter = NodeId::new("a").unwrap();
    for e in ["eph1", "eph2"] {
        let notice = unreachable(&addr("b", "svc"), &addr("a", e));
        b.handle_unreachable(now, service, &reporter, &notice);
    }
    while b.poll_datagram().is_some() {}
    let events: Vec<StreamEvent> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(unreachable_failure(&events, acc[0]), "{events:?}");
    // A late packet of the first dialer: answered with the close, which says why.
    assert_eq!(a.write(now, dials[0], b"late").unwrap(), 4);
    let (ea, eb) = pump(&mut a, &mut b, now);
    assert!(accepted(&eb).is_empty(), "{eb:?}");
    assert!(
        ea.iter().any(|e| matches!(e, StreamEvent::Closed {
            stream,
            error: Some(StreamFailure::Closed { code: 500, reason }),
        } if *stream == dials[0] && reason.contains("service unknown"))),
        "{ea:?}"
    );
    // Then the dialers are gone for good.
    let events = alone(&mut b, &mut now, Duration::from_secs(10));
    assert!(accepted(&events).is_empty(), "{events:?}");
    assert_eq!((b.len(), b.addrs.len()), (0, 0));
    assert_eq!(open_at_b(&b), Some(0));
}

/// Datagrams that make no connection (garbage to a listener, anything to a service with no
/// endpoint) and dials that cannot start leave no address behind.
#[test]
fn datagrams_and_dials_without_a_connection_leave_no_address() {
    let now = Instant::now();
    let (server, client) = stream_tls(9);
    let mut b = Streams::new(15);
    b.listen(svc("svc"), ServerTls::Fixed(server));
    for i in 0..10 {
        let from = addr("a", &format!("eph{i}"));
        b.handle_datagram(now, svc("svc"), from.clone(), Bytes::from(vec![0x40; 1200]));
        b.handle_datagram(now, svc("nothing"), from, Bytes::from_static(b"x"));
    }
    while b.poll_datagram().is_some() {}
    assert_eq!((b.len(), b.addrs.len()), (0, 0));
    let mut a = Streams::new(16);
    let r = a.dial(now, svc("eph"), addr("b", "svc"), client, "not a name!");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(a.addrs.len(), 0);
}

/// A dial that fails before its stream opens (the listener closes it during the handshake,
/// or nothing answers) tells the dialer `Closed` but leaves nothing to read behind: nobody
/// reads it, so it would stay forever.
#[test]
fn a_dial_that_never_opened_leaves_nothing_to_read() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(20);
    let (mut a, mut b) = (Streams::new(21), Streams::new(22));
    b.listen(svc("svc"), ServerTls::Fixed(server));
    let refused = a
        .dial(now, svc("eph1"), addr("b", "svc"), client.clone(), "x")
        .unwrap();
    while let Some(d) = a.poll_datagram() {
        b.handle_datagram(now, d.to.service, addr("a", "eph1"), d.payload);
    }
    b.close_all(now);
    let (ea, _) = pump(&mut a, &mut b, now);
    assert!(
        ea.iter()
            .any(|e| matches!(e, StreamEvent::Closed { stream, .. } if *stream == refused)),
        "{ea:?}"
    );
    // No answer at all: the handshake times out.
    let silent = a
        .dial(now, svc("eph2"), addr("c", "svc"), client, "x")
        .unwrap();
    let mut ea = Vec::new();
    let end = now + HANDSHAKE_TIMEOUT + Duration::from_secs(10);
    while now < end {
        now += Duration::from_millis(100);
        a.handle_timeout(now);
        while a.poll_datagram().is_some() {}
        ea.extend(std::iter::from_fn(|| a.poll_event()));
    }
    assert!(
        ea.iter().any(
            |e| matches!(e, StreamEvent::Closed { stream, error: Some(_) } if *stream == silent)
        ),
        "{ea:?}"
    );
    assert!(a.is_empty(), "{a:?}");
    assert!(a.leftovers.is_empty(), "{:?}", a.leftovers.keys());
}

/// A listener stopped and started again while its old connections still drain: the old
/// ones' end touches neither the new endpoint nor its connections (quinn numbers each
/// endpoint's connections from 0 again).
#[test]
fn listening_again_leaves_old_connections_apart() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(11);
    let (mut a, mut b) = (Streams::new(19), Streams::new(20));
    let service = svc("svc");
    b.listen(service, ServerTls::Fixed(server.clone()));
    let old = a
        .dial(now, svc("eph1"), addr("b", "svc"), client.clone(), "x")
        .unwrap();
    let (_, eb) = pump(&mut a, &mut b, now);
    assert_eq!(accepted(&eb).len(), 1, "{eb:?}");
    b.unlisten(now, service);
    b.listen(service, ServerTls::Fixed(server));
    let new = a
        .dial(now, svc("eph2"), addr("b", "svc"), client, "x")
        .unwrap();
    let (ea, eb) = pump(&mut a, &mut b, now);
    assert!(
        ea.iter()
            .any(|e| matches!(e, StreamEvent::Closed { stream, .. } if *stream == old)),
        "{ea:?}"
    );
    let acc = accepted(&eb);
    assert_eq!(acc.len(), 1, "{eb:?}");
    a.close(now, old);
    // The old connection drains meanwhile.
    run(
        &mut a,
        &mut b,
        &mut now,
        Duration::from_millis(100),
        Duration::from_secs(5),
    );
    assert_eq!((b.len(), b.endpoint_connections()), (1, 1));
    assert_eq!(a.write(now, new, b"still here").unwrap(), 10);
    let (_, eb) = pump(&mut a, &mut b, now);
    assert!(
        eb.iter()
            .any(|e| matches!(e, StreamEvent::Readable { stream } if *stream == acc[0])),
        "{eb:?}"
    );
    assert_eq!(
        b.read(now, acc[0], 100).unwrap(),
        Read::Data(Bytes::from_static(b"still here"))
    );
}

/// A dial from a service name whose previous dial still drains (the node picked the name
/// again) shares that endpoint, which stays for the new connection when the old one goes.
#[test]
fn a_dial_name_picked_again_keeps_its_endpoint() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(12);
    let (mut a, mut b) = (Streams::new(23), Streams::new(24));
    b.listen(svc("svc"), ServerTls::Fixed(server));
    let eph = svc("eph");
    let old = a
        .dial(now, eph, addr("b", "svc"), client.clone(), "x")
        .unwrap();
    pump(&mut a, &mut b, now);
    a.close(now, old);
    let new = a.dial(now, eph, addr("b", "svc"), client, "x").unwrap();
    let (ea, eb) = pump(&mut a, &mut b, now);
    assert!(
        ea.iter()
            .any(|e| matches!(e, StreamEvent::Connected { stream } if *stream == new)),
        "{ea:?}"
    );
    let acc = accepted(&eb);
    assert_eq!(acc.len(), 1, "{eb:?}");
    run(
        &mut a,
        &mut b,
        &mut now,
        Duration::from_millis(100),
        Duration::from_secs(5),
    );
    assert_eq!((a.len(), a.endpoint_connections()), (1, 1));
    assert_eq!(a.write(now, new, b"still here").unwrap(), 10);
    pump(&mut a, &mut b, now);
    assert_eq!(
        b.read(now, acc[0], 100).unwrap(),
        Read::Data(Bytes::from_static(b"still here"))
    );
}
