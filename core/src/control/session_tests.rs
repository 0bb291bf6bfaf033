use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::NodeId;
use crate::control::WorkSubmit;
use std::collections::BTreeMap;

use crate::control::reply::{HostInfo, ReloadError, StatusSnapshot, UnitStatus};
use crate::ping::PingResult;

fn drain(s: &mut Session) -> String {
    let mut out = Vec::new();
    while let Some(b) = s.poll_output() {
        out.extend_from_slice(&b);
    }
    String::from_utf8(out).unwrap()
}

fn started(node: &str) -> Session {
    let mut s = Session::new(node);
    assert_eq!(drain(&mut s), format!("Receptor Control, node {node}\n"));
    assert_eq!(s.phase(), Phase::Reading);
    s
}

fn version_snapshot() -> Box<StatusSnapshot> {
    Box::new(StatusSnapshot {
        node_id: "node1".into(),
        host: HostInfo {
            version: "1.4.9".into(),
            ..HostInfo::default()
        },
        ..StatusSnapshot::default()
    })
}

#[test]
fn receptorctl_version_probe_then_ping_twice() {
    let mut s = started("node1");
    let line = b"{\"command\":\"status\",\"requested_fields\":[\"Version\"]}\n";
    assert_eq!(s.handle_bytes(line), line.len());
    assert_eq!(
        s.poll_action(),
        Some(Action::Status {
            requested_fields: Some(vec!["Version".into()])
        })
    );
    assert_eq!(s.poll_action(), None);
    assert_eq!(s.phase(), Phase::Awaiting);
    assert_eq!(s.handle_bytes(b"ping node2\n"), 0);
    s.complete(Reply::Status(version_snapshot())).unwrap();
    assert_eq!(drain(&mut s), "{\"Version\":\"1.4.9\"}\n");

    for _ in 0..2 {
        assert_eq!(s.handle_bytes(b"ping node2\n"), 11);
        assert_eq!(
            s.poll_action(),
            Some(Action::Ping {
                target: "node2".into()
            })
        );
        s.complete(Reply::Ping(PingResult {
            from: Some(NodeId::new("node2").unwrap()),
            rtt: Duration::from_micros(1500),
            error: None,
        }))
        .unwrap();
        assert_eq!(
            drain(&mut s),
            "{\"From\":\"node2\",\"Success\":true,\"Time\":1500000,\"TimeStr\":\"1.5ms\"}\n"
        );
    }
    s.handle_eof();
    assert_eq!(s.phase(), Phase::Finished);
    assert_eq!(drain(&mut s), "");
}

#[test]
fn errors_need_no_action_and_reading_continues() {
    let mut s = started("node1");
    let input = b"bogus\nping\n\n\r\nstatus x\n{\"command\":1}\nstatus\ntail";
    let used = s.handle_bytes(input);
    assert_eq!(&input[used..], b"tail");
    assert_eq!(
        drain(&mut s),
        concat!(
            "ERROR: Unknown command\n",
            "ERROR: no ping target\n",
            "ERROR: status command does not take parameters\n",
            "ERROR: command must be a string\n",
            "ERROR: Unknown command\n",
        )
    );
    assert_eq!(
        s.poll_action(),
        Some(Action::Status {
            requested_fields: None
        })
    );
}

#[test]
fn payload_after_submit_line_is_not_consumed() {
    let mut s = started("node1");
    let input = b"work submit localhost echo\nPAYLOAD BYTES\nstatus\n";
    let used = s.handle_bytes(input);
    assert_eq!(used, 27);
    assert_eq!(&input[used..], b"PAYLOAD BYTES\nstatus\n");
    let Some(Action::Work(WorkRequest::Submit(sub))) = s.poll_action() else {
        panic!("expected submit")
    };
    assert_eq!(
        sub,
        WorkSubmit {
            node: "localhost".into(),
            work_type: "echo".into(),
            ..WorkSubmit::default()
        }
    );
    s.complete(Reply::WorkUnitCreated {
        unit_id: "Abc12345".into(),
    })
    .unwrap();
    assert_eq!(
        drain(&mut s),
        "Work unit created with ID Abc12345. Send stdin data and EOF.\n"
    );
    assert_eq!(s.phase(), Phase::Payload);
    // The runtime copies the payload itself; the session takes none of it.
    assert_eq!(s.handle_bytes(&input[used..]), 0);
    s.handle_eof();
    assert_eq!(s.phase(), Phase::Payload);
    s.complete(Reply::WorkStarted {
        unit_id: "Abc12345".into(),
        pending: false,
    })
    .unwrap();
    assert_eq!(
        drain(&mut s),
        "{\"result\":\"Job Started\",\"unitid\":\"Abc12345\"}\n"
    );
    assert_eq!(s.phase(), Phase::Finished);
}

#[test]
fn submit_failures() {
    let mut s = started("node1");
    s.handle_bytes(b"work submit localhost nosuch\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::Error("unknown work type nosuch".into()))
        .unwrap();
    assert_eq!(drain(&mut s), "ERROR: unknown work type nosuch\n");
    // Nothing was created: the connection stays usable.
    assert_eq!(s.phase(), Phase::Reading);

    s.handle_bytes(b"{\"command\":\"work\",\"subcommand\":\"submit\",\"node\":\"node2\",\"worktype\":\"echo\"}\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::WorkUnitCreated {
        unit_id: "U".into(),
    })
    .unwrap();
    drain(&mut s);
    s.complete(Reply::Error("Error starting worker: boom".into()))
        .unwrap();
    assert_eq!(drain(&mut s), "ERROR: Error starting worker: boom\n");
    assert_eq!(s.phase(), Phase::Finished);
}

#[test]
fn connect_switches_and_keeps_the_rest() {
    let mut s = started("node1");
    let input = b"connect node2 control \nReceptor bytes for the bridge";
    let used = s.handle_bytes(input);
    assert_eq!(used, 23);
    assert_eq!(
        s.poll_action(),
        Some(Action::Connect {
            node: "node2".into(),
            service: "control".into(),
            tls: None
        })
    );
    s.complete(Reply::Connected).unwrap();
    assert_eq!(drain(&mut s), "Connecting\n");
    assert_eq!(s.phase(), Phase::Switched);
    assert_eq!(s.handle_bytes(&input[used..]), 0);
    s.handle_eof();
    assert_eq!(s.phase(), Phase::Switched);
}

#[test]
fn connect_dial_failure_keeps_reading() {
    let mut s = started("node1");
    s.handle_bytes(b"connect node2 control bogus\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::Error("unknown TLS config bogus".into()))
        .unwrap();
    assert_eq!(drain(&mut s), "ERROR: unknown TLS config bogus\n");
    assert_eq!(s.phase(), Phase::Reading);
}

#[test]
fn results_switch_to_streaming() {
    let mut s = started("node1");
    s.handle_bytes(b"work results U1 0\n");
    assert_eq!(
        s.poll_action(),
        Some(Action::Work(WorkRequest::Results {
            unit_id: "U1".into(),
            start_pos: 0,
            signature: "".into()
        }))
    );
    s.complete(Reply::WorkResults {
        unit_id: "U1".into(),
    })
    .unwrap();
    assert_eq!(drain(&mut s), "Streaming results for work unit U1\n");
    assert_eq!(s.phase(), Phase::Switched);
}

#[test]
fn unit_commands_round_trip() {
    let mut s = started("n");
    s.handle_bytes(b"work cancel U1\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::Error("unknown work unit U1".into()))
        .unwrap();
    s.handle_bytes(b"work release U2\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::WorkReleased {
        unit_id: "U2".into(),
        pending: false,
    })
    .unwrap();
    s.handle_bytes(b"work list\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::WorkList(BTreeMap::new())).unwrap();
    s.handle_bytes(b"work status U3\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::WorkStatus(UnitStatus::default()))
        .unwrap();
    s.handle_bytes(b"work cancel U4\n");
    assert!(s.poll_action().is_some());
    s.complete(Reply::WorkCancelled {
        unit_id: "U4".into(),
        pending: true,
    })
    .unwrap();
    s.handle_bytes(b"reload\n");
    assert_eq!(s.poll_action(), Some(Action::Reload));
    s.complete(Reply::Reload(Err(ReloadError {
        message: "bad".into(),
        code: 4,
    })))
    .unwrap();
    assert_eq!(
        drain(&mut s),
        concat!(
            "ERROR: unknown work unit U1\n",
            "{\"released\":\"U2\"}\n",
            "{}\n",
            "{\"Detail\":\"\",\"ExtraData\":null,\"State\":0,\"StateName\":\"Pending\",\"StdoutSize\":0,\"WorkType\":\"\"}\n",
            "{\"cancel pending\":\"U4\"}\n",
            "{\"Error\":\"bad ERRORCODE 4\",\"Success\":false}\n",
        )
    );
}

#[test]
fn traceroute_round_trip() {
    let mut s = started("controller");
    s.handle_bytes(b"traceroute node7\n");
    assert_eq!(
        s.poll_action(),
        Some(Action::Traceroute {
            target: "node7".into()
        })
    );
    let hop = |n: &str, us| PingResult {
        from: Some(NodeId::new(n).unwrap()),
        rtt: Duration::from_micros(us),
        error: None,
    };
    s.complete(Reply::Traceroute(vec![
        hop("controller", 210),
        hop("node5", 1000),
    ]))
    .unwrap();
    assert_eq!(
        drain(&mut s),
        "{\"0\":{\"From\":\"controller\",\"Time\":210000,\"TimeStr\":\"210µs\"},\"1\":{\"From\":\"node5\",\"Time\":1000000,\"TimeStr\":\"1ms\"}}\n"
    );
}

#[test]
fn partial_line_at_eof_executes() {
    let mut s = started("node1");
    assert_eq!(s.handle_bytes(b"reload"), 6);
    assert_eq!(s.poll_action(), None);
    s.handle_eof();
    assert!(s.saw_eof());
    assert_eq!(s.poll_action(), Some(Action::Reload));
    assert_eq!(s.phase(), Phase::Awaiting);
    s.complete(Reply::Reload(Ok(()))).unwrap();
    assert_eq!(drain(&mut s), "{\"Success\":true}\n");
    assert_eq!(s.phase(), Phase::Finished);

    // A partial line that fails to parse still gets its error written.
    let mut s = started("node1");
    s.handle_bytes(b"status x\r");
    s.handle_eof();
    assert_eq!(
        drain(&mut s),
        "ERROR: status command does not take parameters\n"
    );
    assert_eq!(s.phase(), Phase::Finished);

    // EOF with nothing buffered just ends the session.
    let mut s = started("node1");
    s.handle_eof();
    assert_eq!(s.phase(), Phase::Finished);
    assert_eq!(s.handle_bytes(b"status\n"), 0);
}

#[test]
fn eof_while_awaiting_ends_after_the_reply() {
    let mut s = started("node1");
    s.handle_bytes(b"status\n");
    s.handle_eof();
    assert_eq!(s.phase(), Phase::Awaiting);
    assert!(s.poll_action().is_some());
    s.complete(Reply::Status(version_snapshot())).unwrap();
    assert_eq!(s.phase(), Phase::Finished);
    assert!(drain(&mut s).starts_with("{\"Advertisements\":[]"));
}

#[test]
fn complete_checks_the_pending_action() {
    let mut s = started("node1");
    assert_eq!(
        s.complete(Reply::Error("x".into())),
        Err(CompleteError::NotAwaiting)
    );
    s.handle_bytes(b"status\n");
    assert_eq!(
        s.complete(Reply::Reload(Ok(()))),
        Err(CompleteError::Mismatch)
    );
    assert_eq!(
        s.complete(Reply::WorkStarted {
            unit_id: "U".into(),
            pending: false
        }),
        Err(CompleteError::Mismatch)
    );
    assert_eq!(s.phase(), Phase::Awaiting);
    assert_eq!(drain(&mut s), "");
    s.complete(Reply::Status(version_snapshot())).unwrap();
    assert_eq!(s.phase(), Phase::Reading);
}

#[test]
fn overlong_line_ends_the_session() {
    let mut s = Session::with_max_line("node1", 8);
    drain(&mut s);
    assert_eq!(s.handle_bytes(b"status\n0123456789\nstatus\n"), 7);
    assert!(s.poll_action().is_some());
    s.complete(Reply::Error("x".into())).unwrap();
    assert_eq!(s.handle_bytes(b"0123456789\nstatus\n"), 11);
    assert_eq!(s.phase(), Phase::Finished);
    assert_eq!(drain(&mut s), "ERROR: x\nERROR: command line too long\n");
}

/// Answers any action the way a runtime might, picking a plausible reply with `pick`.
fn answer(s: &mut Session, action: &Action, pick: u8) {
    let reply = if pick.is_multiple_of(4) {
        Reply::Error("failed".into())
    } else {
        match action {
            Action::Status { .. } => Reply::Status(version_snapshot()),
            Action::Ping { .. } => Reply::Ping(PingResult {
                from: None,
                rtt: Duration::from_nanos(u64::from(pick) * 1000),
                error: None,
            }),
            Action::Traceroute { .. } => Reply::Traceroute(Vec::new()),
            Action::Connect { .. } => Reply::Connected,
            Action::Reload => Reply::Reload(Ok(())),
            Action::Work(w) => match w {
                WorkRequest::Submit(_) => Reply::WorkUnitCreated {
                    unit_id: "U".into(),
                },
                WorkRequest::List { .. } => Reply::WorkList(BTreeMap::new()),
                WorkRequest::Status { .. } => Reply::WorkStatus(UnitStatus::default()),
                WorkRequest::Cancel { unit_id, .. } => Reply::WorkCancelled {
                    unit_id: unit_id.clone(),
                    pending: false,
                },
                WorkRequest::Release { unit_id, .. } => Reply::WorkReleased {
                    unit_id: unit_id.clone(),
                    pending: true,
                },
                WorkRequest::Results { unit_id, .. } => Reply::WorkResults {
                    unit_id: unit_id.clone(),
                },
            },
        }
    };
    assert_eq!(s.complete(reply), Ok(()));
    if s.phase() == Phase::Payload {
        assert_eq!(
            s.complete(Reply::WorkStarted {
                unit_id: "U".into(),
                pending: pick.is_multiple_of(2)
            }),
            Ok(())
        );
    }
}

fn lines() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"status\n".to_vec()),
        Just(b"status \n".to_vec()),
        Just(b"ping node2\n".to_vec()),
        Just(b"traceroute n\n".to_vec()),
        Just(b"connect a b \n".to_vec()),
        Just(b"reload\n".to_vec()),
        Just(b"work submit localhost echo x\n".to_vec()),
        Just(b"work results U 3\n".to_vec()),
        Just(b"work list\n".to_vec()),
        Just(b"{\"command\":\"work\",\"subcommand\":\"results\",\"unitid\":\"U\",\"startpos\":[{\"a\":[null]}]}\n".to_vec()),
        Just(b"{\"command\":\"status\",\"requested_fields\":[\"Version\"]}\n".to_vec()),
        "[ -~]{0,40}\n".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        input in prop_oneof![lines(), proptest::collection::vec(any::<u8>(), 0..600)],
        cuts in proptest::collection::vec(1usize..64, 1..20),
        picks in proptest::collection::vec(any::<u8>(), 1..32),
        eof in any::<bool>(),
    ) {
        let mut s = Session::with_max_line("node1", 200);
        let greeting = s.poll_output().unwrap();
        prop_assert_eq!(&greeting[..], b"Receptor Control, node node1\n");
        let mut pending: Vec<u8> = Vec::new();
        let mut rest: &[u8] = &input;
        let mut step = 0usize;
        loop {
            while s.poll_output().is_some() {}
            if let Some(action) = s.poll_action() {
                let pick = picks[step % picks.len()];
                answer(&mut s, &action, pick);
                step += 1;
                continue;
            }
            if s.phase() != Phase::Reading {
                break;
            }
            if pending.is_empty() {
                if rest.is_empty() {
                    if !eof || s.saw_eof() {
                        break;
                    }
                    s.handle_eof();
                    continue;
                }
                let n = cuts[step % cuts.len()].min(rest.len());
                pending.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                step += 1;
            }
            let used = s.handle_bytes(&pending);
            prop_assert!(used <= pending.len());
            pending.drain(..used);
            if used == 0 && s.poll_action().is_none() && s.phase() == Phase::Reading {
                prop_assert!(pending.is_empty());
            }
        }
        let _ = s.handle_bytes(&pending);
        s.handle_eof();
    }

    #[test]
    fn any_line_parses_or_errors(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        match parse_line(&line) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.reply().starts_with("ERROR: ") && e.reply().ends_with('\n')),
        }
    }

    #[test]
    fn any_json_like_line_parses_or_errors(line in "\\{[\\[\\]{}\":,a-z0-9 .eE+\\-\\\\u]{0,80}") {
        let _ = parse_line(line.as_bytes());
    }
}
