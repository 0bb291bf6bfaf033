use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::NodeId;
use crate::control::{LineReader, WorkRequest};

fn greeted(node: &str) -> Connection {
    let mut c = Connection::new(node);
    assert_eq!(
        c.poll_step(),
        Step::Write(format!("Receptor Control, node {node}\n").into())
    );
    assert_eq!(c.poll_step(), Step::Read);
    c
}

fn ok_ping() -> PingResult {
    PingResult {
        from: Some(NodeId::new("b").unwrap()),
        rtt: Duration::from_millis(2),
        error: None,
    }
}

#[test]
fn pipelined_commands_run_one_at_a_time() {
    let mut c = greeted("a");
    c.received(b"ping b\nping c\n");
    for target in ["b", "c"] {
        let Step::Perform(Action::Ping { target: t }) = c.poll_step() else {
            panic!("expected a ping")
        };
        assert_eq!(t, target);
        // Until the action is answered nothing else happens.
        assert_eq!(c.poll_step(), Step::Close);
        c.complete(ping_reply(Ok(ok_ping()))).unwrap();
        let Step::Write(line) = c.poll_step() else {
            panic!("expected the reply")
        };
        assert!(line.starts_with(b"{\"From\":\"b\""), "{line:?}");
    }
    assert_eq!(c.poll_step(), Step::Read);
    c.received_eof();
    assert_eq!(c.poll_step(), Step::Close);
}

#[test]
fn command_split_across_reads() {
    let mut c = greeted("a");
    c.received(b"tracer");
    assert_eq!(c.poll_step(), Step::Read);
    c.received(b"oute b\n");
    assert_eq!(
        c.poll_step(),
        Step::Perform(Action::Traceroute { target: "b".into() })
    );
}

#[test]
fn bad_command_needs_no_action() {
    let mut c = greeted("a");
    c.received(b"frobnicate\n");
    let Step::Write(line) = c.poll_step() else {
        panic!("expected an error line")
    };
    assert!(line.starts_with(b"ERROR: "), "{line:?}");
    assert_eq!(c.poll_step(), Step::Read);
}

#[test]
fn eof_after_an_action_closes_once_answered() {
    let mut c = greeted("a");
    c.received(b"ping b\n");
    c.received_eof();
    assert!(matches!(c.poll_step(), Step::Perform(Action::Ping { .. })));
    c.complete(Reply::Error("no route to node".into())).unwrap();
    assert_eq!(
        c.poll_step(),
        Step::Write("ERROR: no route to node\n".into())
    );
    assert_eq!(c.poll_step(), Step::Close);
}

#[test]
fn too_long_line_ends_the_connection() {
    let mut c = Connection::with_session(Session::with_max_line("a", 8));
    let _greeting = c.poll_step();
    c.received(b"0123456789abcdef");
    let Step::Write(line) = c.poll_step() else {
        panic!("expected an error line")
    };
    assert!(line.starts_with(b"ERROR: "), "{line:?}");
    assert_eq!(c.poll_step(), Step::Close);
    // A reader of the same limit agrees that this is too long.
    assert!(LineReader::new(8).push(b"0123456789abcdef").1.is_some());
}

#[test]
fn submit_hands_over_the_bytes_past_the_command_line() {
    let mut c = greeted("a");
    c.received(b"work submit localhost echo\nPAYLOAD");
    let Step::Perform(Action::Work(WorkRequest::Submit(_))) = c.poll_step() else {
        panic!("expected submit")
    };
    c.complete(Reply::WorkUnitCreated {
        unit_id: "u1".into(),
    })
    .unwrap();
    assert!(matches!(c.poll_step(), Step::Write(_)));
    assert_eq!(
        c.poll_step(),
        Step::Payload {
            kept: "PAYLOAD".into(),
            eof: false
        }
    );
    c.complete(Reply::WorkStarted {
        unit_id: "u1".into(),
        pending: false,
    })
    .unwrap();
    assert!(matches!(c.poll_step(), Step::Write(_)));
    assert_eq!(c.poll_step(), Step::Close);
}

#[test]
fn connect_switches_with_the_kept_bytes() {
    let mut c = greeted("a");
    c.received(b"connect b control \nfor the bridge");
    c.received_eof();
    assert_eq!(
        c.poll_step(),
        Step::Perform(Action::Connect {
            node: "b".into(),
            service: "control".into(),
            tls: None
        })
    );
    c.complete(Reply::Connected).unwrap();
    assert!(matches!(c.poll_step(), Step::Write(_)));
    assert_eq!(
        c.poll_step(),
        Step::Switched {
            kept: "for the bridge".into(),
            eof: true
        }
    );
}

#[test]
fn ping_failures_use_go_texts() {
    let Reply::Ping(r) = ping_reply(Err(SendError::NoRoute("zz".into()))) else {
        panic!("expected a ping reply")
    };
    assert_eq!(r.error.as_deref(), Some("no route to node"));
    assert_eq!(r.from, None);
    let Reply::Ping(r) = ping_reply(Err(SendError::ShutDown)) else {
        panic!("expected a ping reply")
    };
    assert_eq!(r.error.as_deref(), Some("node is shut down"));
}

#[test]
fn trace_hops_stop_at_done() {
    let mut hops = TraceHops::default();
    assert!(hops.push(TraceEvent::Hop(0, ok_ping())));
    assert!(hops.push(TraceEvent::Hop(1, failed_ping("timeout"))));
    assert!(!hops.push(TraceEvent::Done));
    assert_eq!(
        hops.into_reply(),
        Reply::Traceroute(vec![ok_ping(), failed_ping("timeout")])
    );
}

#[test]
fn snapshot_from_mesh_status() {
    let id = |s| NodeId::new(s).unwrap();
    let st = MeshStatus {
        node_id: id("a"),
        connections: BTreeMap::from([(id("b"), 1.5)]),
        routes: BTreeMap::from([(id("c"), id("b"))]),
        path_costs: BTreeMap::new(),
        known_connection_costs: BTreeMap::from([(id("a"), BTreeMap::from([(id("b"), 1.5)]))]),
        advertisements: Vec::new(),
    };
    let s = StatusSnapshot::from_mesh_status(st, HostInfo::default());
    assert_eq!(s.node_id, "a");
    assert_eq!(s.connections.len(), 1);
    assert_eq!(s.connections[0].node_id, "b");
    assert_eq!(s.routing_table["c"], "b");
    assert_eq!(s.known_connection_costs["a"]["b"], 1.5);
}

#[test]
fn localhost_is_this_node() {
    assert_eq!(connect_target("LocalHost", "a"), "a");
    assert_eq!(connect_target("b", "a"), "b");
}

/// What a runtime sees of a connection: every output byte, every action, and at a switch or
/// payload the client bytes that follow the command line (the kept ones and the unread ones).
#[derive(Debug, PartialEq)]
struct Transcript {
    out: Vec<u8>,
    actions: Vec<Action>,
    handed_over: Option<Vec<u8>>,
}

/// Drives a connection over `input` read `chunk` bytes at a time, answering every action with
/// an error line, except `connect` and `work submit`, which succeed.
fn transcript(input: &[u8], chunk: usize) -> Transcript {
    let mut c = Connection::new("a");
    let mut rest = input;
    let mut t = Transcript {
        out: Vec::new(),
        actions: Vec::new(),
        handed_over: None,
    };
    for _ in 0..10_000 {
        match c.poll_step() {
            Step::Write(b) => t.out.extend_from_slice(&b),
            Step::Perform(a) => {
                let reply = match &a {
                    Action::Connect { .. } => Reply::Connected,
                    Action::Work(WorkRequest::Submit(_)) => Reply::WorkUnitCreated {
                        unit_id: "u".into(),
                    },
                    other => Reply::Error(format!("{}", format!("{other:?}").len()).into()),
                };
                t.actions.push(a);
                c.complete(reply).unwrap();
            }
            Step::Read if rest.is_empty() => c.received_eof(),
            Step::Read => {
                let (now, later) = rest.split_at(chunk.min(rest.len()));
                c.received(now);
                rest = later;
            }
            Step::Payload { kept, .. } => {
                t.handed_over = Some([&kept[..], rest].concat());
                c.complete(Reply::WorkStarted {
                    unit_id: "u".into(),
                    pending: false,
                })
                .unwrap();
            }
            Step::Switched { kept, .. } => {
                t.handed_over = Some([&kept[..], rest].concat());
                return t;
            }
            Step::Close => return t,
        }
    }
    panic!("the connection does not end");
}

fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"ping b\n".to_vec()),
        Just(b"status\n".to_vec()),
        Just(b"{\"command\":\"traceroute\",\"target\":\"c\"}\n".to_vec()),
        Just(b"connect b control \n".to_vec()),
        Just(b"work submit localhost echo\n".to_vec()),
        Just(b"\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec(line, 0..8).prop_map(|v| v.concat())
}

proptest! {
    /// How the client's bytes are split into reads changes nothing a runtime sees.
    #[test]
    fn reads_of_any_size_give_the_same_transcript(input in client_bytes(), chunk in 1usize..40) {
        prop_assert_eq!(transcript(&input, chunk), transcript(&input, input.len().max(1)));
    }
}
