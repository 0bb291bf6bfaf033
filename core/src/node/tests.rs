//! Unit tests of the node against hand-fed bytes (captures of Go) and a directly wired pair.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::config::LinkKind;
use crate::wire::{Message, RouteUpdate};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn node(id: &str, seed: u64, now: Instant) -> Node {
    let cfg = Config::new(
        NodeId::new(id).unwrap(),
        seed,
        Duration::from_secs(1_760_000_000),
    );
    Node::new(Arc::new(cfg), now).unwrap()
}

fn drain(n: &mut Node) -> (Vec<Transmit>, Vec<Event>) {
    let mut t = Vec::new();
    let mut e = Vec::new();
    while let Some(x) = n.poll_transmit() {
        t.push(x);
    }
    while let Some(x) = n.poll_event() {
        e.push(x);
    }
    (t, e)
}

fn decode_frames(ts: &[Transmit]) -> Vec<Message> {
    let mut out = Vec::new();
    for t in ts {
        let mut d = crate::wire::Deframer::new();
        let mut msgs = Vec::new();
        d.push(t.clone().into_bytes(), &mut msgs);
        out.extend(msgs.into_iter().map(|m| Message::decode(m).unwrap()));
    }
    out
}

fn stream() -> Arc<LinkConfig> {
    Arc::new(LinkConfig::new(LinkKind::Stream))
}

/// Plays Go node `gonode` from capture 02-handshake against our node `py`.
#[test]
fn handshake_with_go_capture_and_answer_its_ping() {
    let t0 = Instant::now();
    let mut py = node("py", 7, t0);
    let link = LinkId(1);
    py.handle_input(
        t0,
        Input::LinkUp {
            link,
            config: stream(),
        },
    );
    let (tx, _) = drain(&mut py);
    let msgs = decode_frames(&tx);
    let [Message::Route(hello)] = &msgs[..] else {
        panic!("{msgs:?}")
    };
    assert_eq!(hello.node_id, "py");
    assert_eq!(hello.forwarding_node, "py");
    assert!(hello.connections.is_empty());
    assert_eq!(hello.sequence, 1);

    // Go's first ROUTE (capture #0) establishes the session.
    let go_hello = hex(
        "9f00017b224e6f64654944223a22676f6e6f6465222c225570646174654944223a225a5842627a6e7442222c2255706461746545706f6368223a33303132303138383231363335393039322c2255706461746553657175656e6365223a322c22436f6e6e656374696f6e73223a7b7d2c22466f7277617264696e674e6f6465223a22676f6e6f6465222c225375737065637465644475706c6963617465223a307d",
    );
    py.handle_input(
        t0,
        Input::Received {
            link,
            data: Bytes::from(go_hello),
        },
    );
    let (_, ev) = drain(&mut py);
    assert!(ev.contains(&Event::PeerUp {
        link,
        node: NodeId::new("gonode").unwrap()
    }));
    assert_eq!(py.link_peer(link).map(NodeId::as_str), Some("gonode"));

    // Within 100 ms py floods an update listing gonode with cost 1.
    let t1 = t0 + Duration::from_millis(100);
    py.handle_input(t1, Input::Timeout);
    let (tx, ev) = drain(&mut py);
    assert!(ev.contains(&Event::RoutesChanged));
    let msgs = decode_frames(&tx);
    let [Message::Route(r)] = &msgs[..] else {
        panic!("{msgs:?}")
    };
    assert_eq!(r.connections.get("gonode"), Some(&1.0));

    // Go's update listing py (capture #2), then its ping (capture #3).
    let go_update = hex(
        "a500017b224e6f64654944223a22676f6e6f6465222c225570646174654944223a225155306142507852222c2255706461746545706f6368223a33303132303138383231363335393039322c2255706461746553657175656e6365223a332c22436f6e6e656374696f6e73223a7b227079223a317d2c22466f7277617264696e674e6f6465223a22676f6e6f6465222c225375737065637465644475706c6963617465223a307d",
    );
    let go_ping =
        hex("2400001d0000fc9393bd9ab34eba79f9deb91716ea30344e784446754a6470696e6700000000");
    let mut both = go_update;
    both.extend_from_slice(&go_ping);
    // Split mid-frame: the deframer must cope.
    let (a, b) = both.split_at(100);
    py.handle_input(
        t1,
        Input::Received {
            link,
            data: Bytes::copy_from_slice(a),
        },
    );
    py.handle_input(
        t1,
        Input::Received {
            link,
            data: Bytes::copy_from_slice(b),
        },
    );
    let (tx, ev) = drain(&mut py);
    assert!(ev.is_empty(), "{ev:?}");
    // The reply: py:ping -> gonode:4NxDFuJd, HTL 29 on the wire, empty payload.
    assert_eq!(tx.len(), 1);
    assert_eq!(
        tx[0].frame.as_ref(),
        &hex("2400001d000079f9deb91716ea30fc9393bd9ab34eba70696e6700000000344e784446754a64")[..]
    );
}

/// Two nodes wired back to back.
struct Pair {
    a: Node,
    b: Node,
    now: Instant,
    events_a: Vec<Event>,
    events_b: Vec<Event>,
}

impl Pair {
    fn new(cfg_a: LinkConfig, cfg_b: LinkConfig) -> Self {
        let now = Instant::now();
        let mut p = Self {
            a: node("a", 1, now),
            b: node("b", 2, now),
            now,
            events_a: Vec::new(),
            events_b: Vec::new(),
        };
        p.a.handle_input(
            now,
            Input::LinkUp {
                link: LinkId(1),
                config: Arc::new(cfg_a),
            },
        );
        p.b.handle_input(
            now,
            Input::LinkUp {
                link: LinkId(1),
                config: Arc::new(cfg_b),
            },
        );
        p
    }

    /// Moves bytes both ways until quiet, then jumps to the next timer; until `until`.
    fn run(&mut self, until: Instant) {
        loop {
            let mut moved = false;
            let (ta, ea) = drain(&mut self.a);
            let (tb, eb) = drain(&mut self.b);
            for e in ea.iter().chain(&eb) {
                if let Event::CloseLink { .. } = e {
                    moved = true;
                }
            }
            let close_a = ea.iter().any(|e| matches!(e, Event::CloseLink { .. }));
            let close_b = eb.iter().any(|e| matches!(e, Event::CloseLink { .. }));
            self.events_a.extend(ea);
            self.events_b.extend(eb);
            for t in ta {
                moved = true;
                self.b.handle_input(
                    self.now,
                    Input::Received {
                        link: LinkId(1),
                        data: t.into_bytes(),
                    },
                );
            }
            for t in tb {
                moved = true;
                self.a.handle_input(
                    self.now,
                    Input::Received {
                        link: LinkId(1),
                        data: t.into_bytes(),
                    },
                );
            }
            if close_a || close_b {
                self.a
                    .handle_input(self.now, Input::LinkDown { link: LinkId(1) });
                self.b
                    .handle_input(self.now, Input::LinkDown { link: LinkId(1) });
            }
            if moved {
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.a.handle_input(self.now, Input::Timeout);
                    self.b.handle_input(self.now, Input::Timeout);
                }
                _ => return,
            }
        }
    }
}

#[test]
fn pair_establishes_routes_and_pings() {
    let mut p = Pair::new(
        LinkConfig::new(LinkKind::Datagram),
        LinkConfig::new(LinkKind::Datagram),
    );
    let t = p.now + Duration::from_secs(1);
    p.run(t);
    assert_eq!(
        p.a.routes().get("b").map(NodeId::as_str),
        Some("b"),
        "{:?} {:?}",
        p.events_a,
        p.events_b
    );
    assert_eq!(p.a.routes().get("b").map(NodeId::as_str), Some("b"));
    assert_eq!(p.b.routes().get("a").map(NodeId::as_str), Some("a"));
    let id = p.a.ping(p.now, "b").unwrap();
    p.run(p.now + Duration::from_secs(1));
    let ok = p.events_a.iter().any(|e| matches!(e, Event::Ping { id: i, result } if *i == id && result.error.is_none() && result.from.as_ref().map(NodeId::as_str) == Some("b")));
    assert!(ok, "{:?}", p.events_a);
    // Unknown service on b: service unknown, reported by b.
    let svc = p.a.listen(p.now, None, None).unwrap();
    p.a.send(
        p.now,
        svc,
        "b",
        ServiceName::new("nosuch").unwrap(),
        Bytes::from_static(b"x"),
        None,
    )
    .unwrap();
    p.run(p.now + Duration::from_secs(1));
    assert!(p.events_a.iter().any(
        |e| matches!(e, Event::Unreachable { notice, .. } if notice.problem == "service unknown")
    ));
    // Keepalive by periodic updates: still up a minute later.
    p.run(p.now + Duration::from_secs(60));
    assert!(p.a.link_peer(LinkId(1)).is_some());
    // Ping to an unknown node fails at once.
    assert!(matches!(
        p.a.ping(p.now, "nobody"),
        Err(SendError::NoRoute(_))
    ));
}

#[test]
fn metrics_count_connections_by_kind_routes_and_recomputations() {
    let mut p = Pair::new(
        LinkConfig::new(LinkKind::Message),
        LinkConfig::new(LinkKind::Message),
    );
    let before = p.a.metrics();
    assert_eq!(before.connections, ConnectionCounts::default());
    assert_eq!((before.known_nodes, before.routes), (0, 0));
    p.run(p.now + Duration::from_secs(1));
    let m = p.a.metrics();
    assert_eq!(
        m.connections,
        ConnectionCounts {
            message: 1,
            ..ConnectionCounts::default()
        }
    );
    assert_eq!((m.known_nodes, m.routes), (2, 1));
    assert_eq!(m.stats.connections_established, 1);
    assert!(m.stats.route_recomputations >= 1);
    assert!(m.stats.route_changes >= 1 && m.stats.route_changes <= m.stats.route_recomputations);
    assert!(m.stats.messages_in > 0 && m.stats.bytes_out > 0);
}

#[test]
fn cost_mismatch_rejects() {
    // §10.4: b (listener) has nodecost a=2, a has cost 1.
    let mut cb = LinkConfig::new(LinkKind::Stream);
    cb.node_cost(NodeId::new("a").unwrap(), 2.0).unwrap();
    let mut p = Pair::new(LinkConfig::new(LinkKind::Stream), cb);
    p.run(p.now + Duration::from_secs(2));
    let rejected = |ev: &[Event]| {
        ev.iter().any(|e| matches!(e, Event::CloseLink { reason: CloseReason::Rejected(r), .. } if r.contains("cost")))
    };
    assert!(
        rejected(&p.events_a) || rejected(&p.events_b),
        "{:?} {:?}",
        p.events_a,
        p.events_b
    );
    assert!(p.a.routes().is_empty());
}

#[test]
fn allowed_peers_rejects_others() {
    let mut ca = LinkConfig::new(LinkKind::Stream);
    ca.allowed_peers = Some([NodeId::new("c").unwrap()].into_iter().collect());
    let mut p = Pair::new(ca, LinkConfig::new(LinkKind::Stream));
    p.run(p.now + Duration::from_secs(2));
    assert!(p.events_a.iter().any(|e| matches!(
        e,
        Event::CloseLink {
            reason: CloseReason::Rejected(_),
            ..
        }
    )));
    assert!(p.events_b.iter().any(|e| matches!(
        e,
        Event::CloseLink {
            reason: CloseReason::PeerRejected(None),
            ..
        }
    )));
}

/// With `bindnodeid`, a peer whose certificate is for another node is refused, the refusing
/// side says why, and the refused side learns the reason from the reject.
#[test]
fn bound_node_id_refuses_a_certificate_for_another_node_with_the_reason() {
    use crate::identity::{IdentityError, PeerCert};
    let bound = |cert: PeerCert| {
        let mut c = LinkConfig::new(LinkKind::Stream);
        c.bind_node_id = true;
        c.peer_cert = Some(cert);
        c
    };
    // b's certificate is for "m".
    let mut p = Pair::new(
        bound(PeerCert::NodeIds(vec!["m".into()])),
        LinkConfig::new(LinkKind::Stream),
    );
    p.run(p.now + Duration::from_secs(2));
    let want = IdentityError::Mismatch {
        announced: "b".into(),
        cert_ids: vec!["m".into()],
    };
    assert!(
        p.events_a.iter().any(|e| matches!(e,
            Event::CloseLink { reason: CloseReason::Identity(got), .. } if *got == want)),
        "{:?}",
        p.events_a
    );
    let text = want.to_string();
    assert!(
        p.events_b.iter().any(|e| matches!(e,
            Event::CloseLink { reason: CloseReason::PeerRejected(Some(r)), .. } if *r == text)),
        "{:?}",
        p.events_b
    );
    assert!(p.a.connections().is_empty() && p.b.connections().is_empty());

    // No node-ID SAN at all.
    let mut p = Pair::new(
        bound(PeerCert::NodeIds(vec![])),
        LinkConfig::new(LinkKind::Stream),
    );
    p.run(p.now + Duration::from_secs(2));
    assert!(p.events_a.iter().any(|e| matches!(
        e,
        Event::CloseLink {
            reason: CloseReason::Identity(IdentityError::NoNodeId { .. }),
            ..
        }
    )));

    // The certificate carries the announced ID: established, on both sides.
    let mut p = Pair::new(
        bound(PeerCert::NodeIds(vec!["b".into()])),
        bound(PeerCert::NodeIds(vec!["x".into(), "a".into()])),
    );
    p.run(p.now + Duration::from_secs(2));
    assert!(p.a.connections().contains_key(&NodeId::new("b").unwrap()));
    assert!(p.b.connections().contains_key(&NodeId::new("a").unwrap()));
}

#[test]
fn reject_reasons_round_trip_and_go_rejects_have_none() {
    use crate::wire::{encode_reject_with, reject_reason};
    let r = encode_reject_with("node-ID mismatch: \"quoted\" é");
    let msg = r.message();
    assert_eq!(msg.first(), Some(&3));
    assert_eq!(
        reject_reason(&msg[1..]).as_deref(),
        Some("node-ID mismatch: \"quoted\" é")
    );
    assert_eq!(reject_reason(b"[]"), None);
    assert_eq!(reject_reason(b""), None);
    assert_eq!(reject_reason(b"[1]"), None);
    assert_eq!(reject_reason(b"{\"a\":1}"), None);
    // Long reasons are cut on a character boundary.
    let long = "é".repeat(1000);
    let cut = reject_reason(encode_reject_with(&long).message().get(1..).unwrap()).unwrap();
    assert!(cut.len() <= crate::identity::MAX_REJECT_REASON && cut.chars().all(|c| c == 'é'));
    assert_eq!(
        Message::decode(r.message().to_vec().into()).unwrap(),
        Message::Reject
    );
}

#[test]
fn garbage_before_handshake_closes_only_that_link() {
    let t0 = Instant::now();
    let mut n = node("n", 3, t0);
    n.handle_input(
        t0,
        Input::LinkUp {
            link: LinkId(1),
            config: stream(),
        },
    );
    n.handle_input(
        t0,
        Input::LinkUp {
            link: LinkId(2),
            config: stream(),
        },
    );
    let _ = drain(&mut n);
    n.handle_input(
        t0,
        Input::Received {
            link: LinkId(1),
            data: Bytes::from_static(b"\x05\x00GET /"),
        },
    );
    let (_, ev) = drain(&mut n);
    assert!(
        matches!(
            &ev[..],
            [Event::CloseLink {
                link: LinkId(1),
                reason: CloseReason::Protocol(_)
            }]
        ),
        "{ev:?}"
    );
    // Link 2 still handshakes.
    n.handle_input(t0 + Duration::from_secs(1), Input::Timeout);
    let (tx, _) = drain(&mut n);
    assert!(tx.iter().all(|t| t.link == LinkId(2)) && !tx.is_empty());
}

#[test]
fn handshake_gives_up_after_eleven_sends_and_idle_closes() {
    let t0 = Instant::now();
    let mut n = node("n", 3, t0);
    n.handle_input(
        t0,
        Input::LinkUp {
            link: LinkId(1),
            config: stream(),
        },
    );
    let mut sends = drain(&mut n).0.len();
    let mut closed = None;
    for s in 1..30 {
        let t = t0 + Duration::from_secs(s);
        n.handle_input(t, Input::Timeout);
        let (tx, ev) = drain(&mut n);
        sends += tx.len();
        if ev.iter().any(|e| {
            matches!(
                e,
                Event::CloseLink {
                    reason: CloseReason::HandshakeTimeout,
                    ..
                }
            )
        }) {
            closed = Some(s);
            break;
        }
    }
    assert_eq!(sends, 11);
    assert_eq!(closed, Some(11));
}

#[test]
fn duplicate_node_id_later_instance_shuts_down() {
    // Our node "a" sees an update with its own ID and a larger epoch: it names the newcomer.
    let t0 = Instant::now();
    let mut a = node("a", 1, t0);
    a.handle_input(
        t0,
        Input::LinkUp {
            link: LinkId(1),
            config: stream(),
        },
    );
    let _ = drain(&mut a);
    let hello = RouteUpdate {
        node_id: "x".into(),
        update_id: "u1".into(),
        epoch: 1,
        sequence: 1,
        forwarding_node: "x".into(),
        ..Default::default()
    };
    a.handle_input(
        t0,
        Input::Received {
            link: LinkId(1),
            data: hello.encode().unwrap().stream(),
        },
    );
    let _ = drain(&mut a);
    let dup = RouteUpdate {
        node_id: "a".into(),
        update_id: "u2".into(),
        epoch: a.epoch() + 1,
        sequence: 1,
        forwarding_node: "x".into(),
        connections: [("x".to_string(), 1.0)].into(),
        ..Default::default()
    };
    a.handle_input(
        t0,
        Input::Received {
            link: LinkId(1),
            data: dup.encode().unwrap().stream(),
        },
    );
    let msgs = decode_frames(&drain(&mut a).0);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, Message::Route(r) if r.suspected_duplicate == a.epoch() + 1))
    );
    // Now we are the one named: shut down.
    let named = RouteUpdate {
        node_id: "a".into(),
        update_id: "u3".into(),
        epoch: 5,
        sequence: 9,
        forwarding_node: "x".into(),
        suspected_duplicate: a.epoch(),
        connections: [("x".to_string(), 1.0)].into(),
    };
    a.handle_input(
        t0,
        Input::Received {
            link: LinkId(1),
            data: named.encode().unwrap().stream(),
        },
    );
    let (_, ev) = drain(&mut a);
    assert!(ev.iter().any(|e| matches!(e, Event::Shutdown { .. })));
    assert!(a.is_shut_down());
    assert!(a.poll_timeout().is_none());
}

/// With `DuplicatePolicy::RefuseLink`, a claim that we are the duplicate costs the link it
/// came through, and the node runs on.
#[test]
fn duplicate_claim_refuses_the_link_when_asked_to() {
    let t0 = Instant::now();
    let mut cfg = Config::new(
        NodeId::new("a").unwrap(),
        1,
        Duration::from_secs(1_760_000_000),
    );
    cfg.on_duplicate = crate::config::DuplicatePolicy::RefuseLink;
    let mut a = Node::new(Arc::new(cfg), t0).unwrap();
    for (link, peer) in [(1, "x"), (2, "y")] {
        let link = LinkId(link);
        a.handle_input(
            t0,
            Input::LinkUp {
                link,
                config: stream(),
            },
        );
        let hello = RouteUpdate {
            node_id: peer.into(),
            update_id: format!("h{peer}"),
            epoch: 1,
            sequence: 1,
            forwarding_node: peer.into(),
            ..Default::default()
        };
        let data = hello.encode().unwrap().stream();
        a.handle_input(t0, Input::Received { link, data });
    }
    let _ = drain(&mut a);
    let named = RouteUpdate {
        node_id: "a".into(),
        update_id: "u3".into(),
        epoch: 5,
        sequence: 9,
        forwarding_node: "x".into(),
        suspected_duplicate: a.epoch(),
        ..Default::default()
    };
    let data = named.encode().unwrap().stream();
    a.handle_input(
        t0,
        Input::Received {
            link: LinkId(1),
            data,
        },
    );
    let (tx, ev) = drain(&mut a);
    assert!(!a.is_shut_down());
    assert!(!ev.iter().any(|e| matches!(e, Event::Shutdown { .. })));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::CloseLink {
            link: LinkId(1),
            reason: CloseReason::Rejected(_)
        }
    )));
    assert!(decode_frames(&tx).contains(&Message::Reject));
    assert_eq!(
        a.connections()
            .keys()
            .map(NodeId::as_str)
            .collect::<Vec<_>>(),
        ["y"]
    );
}

/// A large payload goes on a stream link behind a header of its own, not copied; a small one,
/// and any on a datagram link, goes as one buffer. Either way the bytes on the wire are
/// those of the whole message, and the peer receives the payload.
#[test]
fn large_payloads_go_on_stream_links_without_a_copy() {
    use crate::wire::{DATA_HEADER_LEN, DataHeader};
    for kind in [LinkKind::Stream, LinkKind::Datagram] {
        let mut p = Pair::new(LinkConfig::new(kind), LinkConfig::new(kind));
        p.run(p.now + Duration::from_secs(1));
        let sink = p.b.listen(p.now, Some("sink"), None).unwrap();
        let from = p.a.listen(p.now, None, None).unwrap();
        for size in [100, 4095, 4096, 60_000] {
            let payload = Bytes::from(vec![size as u8; size]);
            p.a.send(p.now, from, "b", sink, payload.clone(), None)
                .unwrap();
            let (mut tx, _) = drain(&mut p.a);
            assert_eq!(tx.len(), 1, "{kind:?} {size}");
            let t = tx.remove(0);
            let split = kind == LinkKind::Stream && size >= 4096;
            if split {
                assert_eq!(t.frame.len(), 2 + DATA_HEADER_LEN);
                assert_eq!(t.tail.as_ptr(), payload.as_ptr(), "the payload itself");
            } else {
                assert!(t.tail.is_empty(), "{kind:?} {size}");
            }
            let header = DataHeader {
                hops_to_live: 29,
                from_node: NodeId::new("a").unwrap().hash(),
                to_node: NodeId::new("b").unwrap().hash(),
                from_service: from,
                to_service: sink,
            };
            let whole = header.encode(&payload).unwrap();
            let want = match kind {
                LinkKind::Stream => whole.stream(),
                _ => whole.datagram(),
            };
            assert_eq!(t.len(), want.len());
            let wire = t.into_bytes();
            assert!(wire == want, "{kind:?} {size}");
            p.b.handle_input(
                p.now,
                Input::Received {
                    link: LinkId(1),
                    data: wire,
                },
            );
            let (_, ev) = drain(&mut p.b);
            assert!(
                ev.iter().any(
                    |e| matches!(e, Event::Datagram { service, payload: got, .. }
                    if *service == sink && *got == payload)
                ),
                "{kind:?} {size}"
            );
        }
    }
}

#[test]
fn traceroute_to_an_unknown_node_names_this_node_as_the_reporter() {
    let now = Instant::now();
    let mut n = node("self", 1, now);
    let id = n.traceroute(now, "nosuch").unwrap();
    let (_, events) = drain(&mut n);
    let hops: Vec<&PingResult> = events
        .iter()
        .filter_map(|e| match e {
            Event::TraceHop { id: i, result, .. } if *i == id => Some(result),
            _ => None,
        })
        .collect();
    let last = hops.last().unwrap();
    assert_eq!(last.from.as_ref().map(|f| f.as_str()), Some("self"));
    assert_eq!(last.error.as_deref(), Some("no route to node"));
}
