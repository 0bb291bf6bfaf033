//! The remote-unit machine against a scripted peer: every reply is what our control service
//! (or Go's) writes, through the shared codec.

use std::collections::BTreeMap;

use super::*;
use crate::NodeId;
use crate::control::{ErrorReply, Reply, UnitStatus};
use crate::stream::{DialFailure, StreamFailure};
use crate::wire::Problem;
use crate::work::remote::unit_command;
use crate::work::{STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED};

const ID: &str = "Rem0te01";

fn data() -> RemoteExtraData {
    RemoteExtraData {
        remote_node: "C".into(),
        remote_work_type: "echo".into(),
        remote_params: BTreeMap::from([("params".into(), "x".into())]),
        ..RemoteExtraData::default()
    }
}

fn started_data() -> RemoteExtraData {
    RemoteExtraData {
        remote_unit_id: ID.into(),
        remote_started: true,
        ..data()
    }
}

fn cfg() -> RemoteUnitConfig {
    RemoteUnitConfig {
        unreachable_timeout: Some(Duration::from_secs(30)),
        ..RemoteUnitConfig::default()
    }
}

/// The machine, the test's clock, and everything it output so far.
struct T {
    u: RemoteUnit,
    now: Instant,
    out: Vec<RemoteOutput>,
}

impl T {
    fn new(data: RemoteExtraData, state: i64, size: i64, local: i64) -> Self {
        let now = Instant::now();
        Self {
            u: RemoteUnit::new(data, state, size, local, cfg(), now),
            now,
            out: Vec::new(),
        }
    }

    /// Outputs since the last call.
    fn drain(&mut self) -> Vec<RemoteOutput> {
        let mut v = Vec::new();
        while let Some(o) = self.u.poll_output() {
            v.push(o);
        }
        self.out.extend(v.iter().cloned());
        v
    }

    /// The one dial among the new outputs.
    fn dialed(&mut self) -> ConnId {
        let dials: Vec<ConnId> = self
            .drain()
            .into_iter()
            .filter_map(|o| match o {
                RemoteOutput::Dial(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(dials.len(), 1, "{:?}", self.out);
        dials[0]
    }

    /// Connects `c` and greets as node C; returns the line the machine sends then.
    fn open(&mut self, c: ConnId) -> String {
        self.u.handle_connected(self.now, c);
        self.feed(
            c,
            &Reply::Greeting {
                node_id: "C".into(),
            },
        );
        self.sent(c)
    }

    fn feed(&mut self, c: ConnId, r: &Reply) {
        self.u.handle_bytes(self.now, c, r.encode().as_bytes());
    }

    /// The one line sent on `c` among the new outputs.
    fn sent(&mut self, c: ConnId) -> String {
        let lines: Vec<String> = self
            .drain()
            .into_iter()
            .filter_map(|o| match o {
                RemoteOutput::SendLine(x, l) if x == c => Some(l),
                _ => None,
            })
            .collect();
        assert_eq!(lines.len(), 1, "{:?}", self.out);
        lines[0].clone()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.u.handle_timeout(self.now);
    }

    /// Jumps to the machine's next timer.
    fn wake(&mut self) {
        let t = self.u.poll_timeout().expect("a timer");
        self.now = self.now.max(t);
        self.u.handle_timeout(self.now);
    }

    fn status(&mut self, c: ConnId, state: i64, detail: &str, size: i64) {
        self.feed(
            c,
            &Reply::WorkStatus(UnitStatus {
                state,
                detail: detail.into(),
                stdout_size: size,
                work_type: "echo".into(),
                extra_data: None,
            }),
        );
    }

    fn answers(&self) -> Vec<Result<bool, String>> {
        self.out
            .iter()
            .filter_map(|o| match o {
                RemoteOutput::Answer(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    fn last_status(&self) -> Option<(i64, String)> {
        self.out.iter().rev().find_map(|o| match o {
            RemoteOutput::SetStatus { state, detail, .. } => Some((*state, detail.clone())),
            _ => None,
        })
    }

    fn output(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for o in &self.out {
            if let RemoteOutput::AppendOutput { offset, data } = o {
                assert_eq!(*offset as usize, v.len(), "appended at the wrong offset");
                v.extend_from_slice(data);
            }
        }
        v
    }
}

fn firewall() -> ConnectFailure {
    ConnectFailure::Dial(DialFailure::Failed(StreamFailure::Unreachable {
        reporter: NodeId::new("B").unwrap(),
        problem: Problem::Firewall,
    }))
}

fn silence() -> ConnectFailure {
    ConnectFailure::Dial(DialFailure::Failed(StreamFailure::HandshakeTimeout(
        Duration::from_secs(15),
    )))
}

/// Submits over a fresh connection up to the final reply; returns the connection.
fn submit(t: &mut T) -> ConnId {
    let c = t.dialed();
    let line = t.open(c);
    assert!(line.contains("\"subcommand\":\"submit\"") && line.contains("\"node\":\"C\""));
    t.feed(c, &Reply::WorkUnitCreated { unit_id: ID.into() });
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::SendPayload(c)), "{out:?}");
    assert!(matches!(&out[0], RemoteOutput::SaveRemote(d) if d.remote_unit_id == ID));
    t.u.handle_half_closed(t.now, c);
    c
}

/// The two connections of a started unit: (control, results), both greeted.
fn following(t: &mut T) -> (ConnId, ConnId) {
    let dials: Vec<ConnId> = t
        .drain()
        .into_iter()
        .filter_map(|o| match o {
            RemoteOutput::Dial(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 2, "{:?}", t.out);
    let first = t.open(dials[0]);
    assert!(first.contains("\"subcommand\":\"status\""), "{first}");
    assert!(
        !first.contains("waitms"),
        "first poll answers at once: {first}"
    );
    let results = t.open(dials[1]);
    assert!(results.contains("\"subcommand\":\"results\""), "{results}");
    (dials[0], dials[1])
}

#[test]
fn submit_follow_and_copy_all_output() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = submit(&mut t);
    t.feed(
        c,
        &Reply::WorkStarted {
            unit_id: ID.into(),
            pending: false,
        },
    );
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::Close(c)), "{out:?}");
    assert_eq!(t.answers(), vec![Ok(false)]);
    assert!(
        t.out
            .iter()
            .any(|o| matches!(o, RemoteOutput::SaveRemote(d) if d.remote_started))
    );
    let dials: Vec<ConnId> = out
        .iter()
        .filter_map(|o| match o {
            RemoteOutput::Dial(c) => Some(*c),
            _ => None,
        })
        .collect();
    let (ctl, res) = (dials[0], dials[1]);
    assert!(t.open(ctl).contains("\"subcommand\":\"status\""));
    assert!(t.open(res).contains("\"startpos\":0"));
    t.status(ctl, STATE_RUNNING, "Running: PID 7", 0);
    // The next poll is a long poll carrying what is known.
    let line = t.sent(ctl);
    assert!(
        line.contains("\"waitdetail\":\"Running: PID 7\",\"waitms\":1000,\"waitstate\":1"),
        "{line}"
    );
    t.feed(res, &Reply::WorkResults { unit_id: ID.into() });
    t.u.handle_bytes(t.now, res, b"hello ");
    t.u.handle_bytes(t.now, res, b"world\n");
    t.status(ctl, STATE_SUCCEEDED, "exit status 0", 12);
    let out = t.drain();
    // Complete there with all output here: both streams are closed.
    assert!(t.u.is_done());
    assert!(out.contains(&RemoteOutput::Close(res)), "{out:?}");
    assert_eq!(t.output(), b"hello world\n");
    assert_eq!(
        t.last_status(),
        Some((STATE_SUCCEEDED, "exit status 0".into()))
    );
    // The idle status session is kept for the next unit.
    assert!(t.out.contains(&RemoteOutput::Park(ctl)), "{:?}", t.out);
    assert_eq!(t.u.poll_timeout(), None);
}

#[test]
fn results_line_and_output_in_one_read() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let (ctl, res) = following(&mut t);
    let mut bytes = Reply::WorkResults { unit_id: ID.into() }
        .encode()
        .into_bytes();
    bytes.extend_from_slice(b"abc\nde");
    t.u.handle_bytes(t.now, res, &bytes);
    t.status(ctl, STATE_SUCCEEDED, "exit status 0", 6);
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(t.output(), b"abc\nde");
}

#[test]
fn a_cut_before_the_payload_submits_again_after_it_follows() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.open(c);
    // Cut before the unit ID came: no payload went out.
    t.u.handle_stream_ended(t.now, c);
    t.drain();
    assert_eq!(
        t.answers(),
        vec![Ok(true)],
        "the submitter hears Job Submitted"
    );
    assert_eq!(t.u.phase(), RemotePhase::Submit);
    t.wake();
    let c = submit(&mut t);
    // Cut after the payload: the unit may be running there, so it is followed.
    t.u.handle_stream_ended(t.now, c);
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    assert!(t.u.data().remote_started);
    following(&mut t);
}

#[test]
fn a_refused_submit_fails() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = submit(&mut t);
    t.feed(
        c,
        &Reply::Error(ErrorReply::Other("could not verify signature".into())),
    );
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(
        t.answers(),
        vec![Err("error from remote: could not verify signature".into())]
    );
    assert_eq!(
        t.last_status(),
        Some((
            STATE_FAILED,
            "Error starting worker: error from remote: could not verify signature".into()
        ))
    );
}

#[test]
fn a_firewall_reject_fails_at_once() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, firewall());
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(
        t.last_status(),
        Some((
            STATE_FAILED,
            "Cannot reach remote node C: blocked by firewall (reported by node B)".into()
        ))
    );
    assert_eq!(t.answers(), vec![Ok(true)]);
}

#[test]
fn the_second_unanswered_handshake_in_a_row_fails() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, silence());
    assert!(!t.u.is_done(), "one silence is not enough");
    t.wake();
    let c = t.dialed();
    // Another kind of failure in between starts the count again.
    t.u.handle_connect_failed(t.now, c, ConnectFailure::NoRoute);
    t.wake();
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, silence());
    assert!(!t.u.is_done());
    t.wake();
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, silence());
    t.drain();
    assert!(t.u.is_done());
    let (state, detail) = t.last_status().unwrap();
    assert_eq!(state, STATE_FAILED);
    assert!(
        detail.starts_with("Cannot reach remote node C: handshake timeout"),
        "{detail}"
    );
}

#[test]
fn tls_failure_names_itself_and_a_started_unit_keeps_trying() {
    let tls = ConnectFailure::Dial(DialFailure::Failed(StreamFailure::Tls {
        by_peer: true,
        reason: "bad certificate".into(),
    }));
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let dials: Vec<ConnId> = t
        .drain()
        .into_iter()
        .filter_map(|o| match o {
            RemoteOutput::Dial(c) => Some(c),
            _ => None,
        })
        .collect();
    t.u.handle_connect_failed(t.now, dials[0], tls.clone());
    t.drain();
    assert!(!t.u.is_done());
    assert!(t.out.iter().any(|o| matches!(o,
        RemoteOutput::SetDetail(d) if d.starts_with("TLS error connecting to remote service: "))));
    // Unstarted: it fails.
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, tls);
    t.drain();
    assert!(t.u.is_done());
}

#[test]
fn retries_back_off_and_the_unreachable_timeout_fails_the_unit() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let start = t.now;
    let mut delays = Vec::new();
    let mut last = t.now;
    while !t.u.is_done() {
        let c = t.dialed();
        t.u.handle_connect_failed(t.now, c, ConnectFailure::NoRoute);
        t.drain();
        if t.u.is_done() {
            break;
        }
        t.wake();
        delays.push(t.now - last);
        last = t.now;
    }
    // 1 s growing ×1.5 (less up to 10 % jitter).
    assert!(delays[0] <= Duration::from_secs(1) && delays[0] >= Duration::from_millis(900));
    assert!(delays[2] > delays[1] && delays[1] > delays[0], "{delays:?}");
    assert!(t.now - start >= Duration::from_secs(30));
    assert_eq!(
        t.last_status(),
        Some((STATE_FAILED, "Remote node C was unreachable for 30s".into()))
    );
}

#[test]
fn same_seed_same_trace() {
    let run = || {
        let mut t = T::new(data(), STATE_PENDING, 0, 0);
        t.u.start(t.now);
        let start = t.now;
        let mut times = Vec::new();
        for _ in 0..6 {
            let c = t.dialed();
            t.u.handle_connect_failed(t.now, c, ConnectFailure::NoRoute);
            t.wake();
            times.push(t.now - start);
        }
        times
    };
    assert_eq!(run(), run());
}

#[test]
fn a_stalled_results_stream_resumes_from_the_local_size() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let (ctl, res) = following(&mut t);
    t.feed(res, &Reply::WorkResults { unit_id: ID.into() });
    t.u.handle_bytes(t.now, res, b"12345");
    t.status(ctl, STATE_RUNNING, "Running", 10);
    t.sent(ctl);
    // Nothing more arrives although 10 bytes exist there.
    t.advance(Duration::from_secs(5));
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::Close(res)), "{out:?}");
    // The stream is asked for again once the status has been read.
    t.status(ctl, STATE_RUNNING, "Running", 10);
    let res = t.dialed();
    let line = t.open(res);
    assert!(line.contains("\"startpos\":5"), "{line}");
    t.feed(res, &Reply::WorkResults { unit_id: ID.into() });
    t.u.handle_bytes(t.now, res, b"67890");
    t.status(ctl, STATE_SUCCEEDED, "exit status 0", 10);
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(t.output(), b"1234567890");
}

#[test]
fn go_status_replies_are_paced() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let (ctl, _res) = following(&mut t);
    t.status(ctl, STATE_RUNNING, "Running", 0);
    t.sent(ctl);
    // Go answers the long poll at once with nothing new: the next poll waits.
    t.status(ctl, STATE_RUNNING, "Running", 0);
    assert!(t.drain().is_empty());
    let at = t.u.poll_timeout().unwrap();
    assert_eq!(at - t.now, Duration::from_millis(250));
    t.wake();
    t.sent(ctl);
    t.status(ctl, STATE_RUNNING, "Running", 0);
    assert_eq!(
        t.u.poll_timeout().unwrap() - t.now,
        Duration::from_millis(500)
    );
    // A silent node: the poll is given up and the connection dialled again.
    t.wake();
    t.sent(ctl);
    t.advance(Duration::from_secs(6));
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::Close(ctl)), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, RemoteOutput::Dial(_))));
}

#[test]
fn a_unit_gone_there_fails_here() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let (ctl, _) = following(&mut t);
    t.feed(
        ctl,
        &Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    );
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(
        t.last_status(),
        Some((STATE_FAILED, "Remote work unit is gone".into()))
    );
}

#[test]
fn cancel_is_sent_then_followed_to_canceled() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    following(&mut t);
    t.u.cancel(t.now, false, false);
    let c = t.dialed();
    assert!(
        t.out
            .iter()
            .any(|o| matches!(o, RemoteOutput::SaveRemote(d) if d.local_cancelled))
    );
    // The first attempt is cut: the canceller hears "pending", it is sent again.
    t.u.handle_stream_ended(t.now, c);
    t.drain();
    assert_eq!(t.answers(), vec![Ok(true)]);
    t.wake();
    let c = t.dialed();
    let line = t.open(c);
    assert!(line.contains("\"subcommand\":\"cancel\""), "{line}");
    t.feed(
        c,
        &Reply::WorkCancelled {
            unit_id: ID.into(),
            pending: false,
        },
    );
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    t.sent(c);
    t.status(c, STATE_CANCELED, "Canceled", 0);
    t.drain();
    assert!(t.u.is_done(), "Canceled there after a cancel here is final");
}

#[test]
fn release_pending_waits_until_the_other_node_forgets() {
    let mut t = T::new(started_data(), STATE_SUCCEEDED, 0, 0);
    t.u.cancel(t.now, true, false);
    let c = t.dialed();
    let line = t.open(c);
    assert!(line.contains("\"subcommand\":\"release\""), "{line}");
    t.feed(
        c,
        &Reply::WorkReleased {
            unit_id: ID.into(),
            pending: true,
        },
    );
    assert_eq!(t.u.phase(), RemotePhase::AwaitGone);
    // Polled on the same session.
    let line = t.sent(c);
    assert!(line.contains("\"subcommand\":\"status\""), "{line}");
    assert!(
        !line.contains("waitms"),
        "Go-style polls while awaiting: {line}"
    );
    t.status(c, STATE_SUCCEEDED, "exit status 0", 0);
    t.sent(c);
    // Nothing new: the next poll waits (Go's pacing).
    t.status(c, STATE_SUCCEEDED, "exit status 0", 0);
    assert!(t.drain().is_empty());
    t.wake();
    t.sent(c);
    t.feed(
        c,
        &Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    );
    t.drain();
    assert!(t.out.contains(&RemoteOutput::Forget));
    assert!(t.out.contains(&RemoteOutput::Park(c)));
    assert!(t.u.is_done());
    assert_eq!(t.answers(), vec![Ok(false)]);
}

#[test]
fn a_reused_session_is_used_and_a_dead_one_replaced() {
    let mut t = T::new(started_data(), STATE_SUCCEEDED, 0, 0);
    t.u.cancel(t.now, true, false);
    let c = t.dialed();
    t.u.handle_reused(t.now, c);
    let line = t.sent(c);
    assert!(line.contains("\"subcommand\":\"release\""), "{line}");
    // No answer within the reused-session timeout: a new connection, no answer yet.
    t.advance(Duration::from_secs(2));
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::Close(c)), "{out:?}");
    assert!(t.answers().is_empty());
    let c2 = out
        .iter()
        .find_map(|o| match o {
            RemoteOutput::Dial(x) => Some(*x),
            _ => None,
        })
        .expect("a new dial");
    // A reused session that answers is an ordinary one.
    t.u.handle_reused(t.now, c2);
    t.sent(c2);
    t.feed(
        c2,
        &Reply::WorkReleased {
            unit_id: ID.into(),
            pending: false,
        },
    );
    t.drain();
    assert_eq!(t.answers(), vec![Ok(false)]);
    assert!(t.out.contains(&RemoteOutput::Forget));
    assert!(t.out.contains(&RemoteOutput::Park(c2)));
    // A reused session that ends before answering is replaced too.
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let dials: Vec<ConnId> = t
        .drain()
        .into_iter()
        .filter_map(|o| match o {
            RemoteOutput::Dial(c) => Some(c),
            _ => None,
        })
        .collect();
    t.u.handle_reused(t.now, dials[0]);
    t.sent(dials[0]);
    t.u.handle_stream_ended(t.now, dials[0]);
    let c = t.dialed();
    assert!(t.open(c).contains("\"subcommand\":\"status\""));
    assert!(!t.u.is_done());
}

#[test]
fn release_of_a_unit_unknown_there_succeeds() {
    let mut t = T::new(started_data(), STATE_SUCCEEDED, 0, 0);
    t.u.cancel(t.now, true, false);
    let c = t.dialed();
    t.open(c);
    t.feed(
        c,
        &Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    );
    t.drain();
    assert!(t.out.contains(&RemoteOutput::Forget));
}

#[test]
fn force_release_tries_once() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.cancel(t.now, true, true);
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, ConnectFailure::NoRoute);
    t.drain();
    assert!(t.out.contains(&RemoteOutput::Forget));
    assert_eq!(t.answers(), vec![Ok(false)]);
}

#[test]
fn cancel_before_start_fails_locally() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.u.cancel(t.now, false, false);
    t.drain();
    assert!(t.out.contains(&RemoteOutput::Close(c)));
    assert_eq!(
        t.last_status(),
        Some((STATE_FAILED, "Locally Cancelled".into()))
    );
    assert!(t.u.is_done());
}

#[test]
fn an_unstarted_unit_expires() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.set_expiry(
        t.now + Duration::from_secs(3),
        "Work unit expired on X".into(),
    );
    t.u.start(t.now);
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, ConnectFailure::NoRoute);
    t.advance(Duration::from_secs(1));
    let c = t.dialed();
    t.u.handle_connect_failed(t.now, c, ConnectFailure::NoRoute);
    t.advance(Duration::from_secs(2));
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(
        t.last_status(),
        Some((STATE_FAILED, "Work unit expired on X".into()))
    );
}

#[test]
fn a_wrong_greeting_is_a_failed_connection() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.u.handle_connected(t.now, c);
    t.feed(
        c,
        &Reply::Greeting {
            node_id: "D".into(),
        },
    );
    t.drain();
    assert!(t.out.contains(&RemoteOutput::Close(c)));
    assert_eq!(t.answers(), vec![Ok(true)]);
    assert!(t.u.poll_timeout().is_some(), "retried");
}

#[test]
fn resume_rules() {
    // Not created there (no ID saved): cannot be resumed.
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    assert!(t.u.resume(t.now).is_err());
    assert!(t.drain().is_empty());
    let mut t = T::new(data(), STATE_FAILED, 0, 0);
    assert!(t.u.resume(t.now).is_ok());
    assert!(t.u.is_done());
    // Complete there with all output here: nothing to do.
    let mut t = T::new(started_data(), STATE_SUCCEEDED, 4, 4);
    t.u.resume(t.now).unwrap();
    assert!(t.u.is_done());
    // A release not yet heard there is sent again.
    let mut t = T::new(
        RemoteExtraData {
            local_released: true,
            local_cancelled: true,
            ..started_data()
        },
        STATE_RUNNING,
        0,
        0,
    );
    t.u.resume(t.now).unwrap();
    let c = t.dialed();
    assert!(t.open(c).contains("\"subcommand\":\"release\""));
}

#[test]
fn lasting_connect_failures_are_recognised() {
    let tls = ConnectFailure::Dial(DialFailure::Failed(StreamFailure::Tls {
        by_peer: true,
        reason: "error 42".into(),
    }));
    assert!(tls.is_tls() && tls.is_lasting());
    assert!(!firewall().is_tls() && firewall().is_lasting());
    assert!(!silence().is_lasting());
    assert!(!ConnectFailure::NoRoute.is_lasting());
    assert_eq!(ConnectFailure::NoRoute.to_string(), "no route to node");
}

#[test]
fn the_final_reply_may_come_before_the_half_close_is_acknowledged() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    t.u.start(t.now);
    let c = t.dialed();
    t.open(c);
    t.feed(c, &Reply::WorkUnitCreated { unit_id: ID.into() });
    t.drain();
    // The reply arrives, then the stream ends without the acknowledgement.
    t.feed(
        c,
        &Reply::WorkStarted {
            unit_id: ID.into(),
            pending: false,
        },
    );
    t.u.handle_stream_ended(t.now, c);
    t.drain();
    assert_eq!(t.answers(), vec![Ok(false)]);
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    assert!(t.u.data().remote_started);
}

#[test]
fn refused_results_are_asked_again_after_a_pause() {
    let mut t = T::new(started_data(), STATE_RUNNING, 0, 0);
    t.u.resume(t.now).unwrap();
    let (ctl, res) = following(&mut t);
    t.status(ctl, STATE_SUCCEEDED, "exit status 0", 5);
    t.drain();
    t.feed(
        res,
        &Reply::Error(ErrorReply::Other("stdout file gone".into())),
    );
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::Close(res)), "{out:?}");
    // The status is asked at once; the results only a second later.
    assert!(
        out.iter().any(|o| matches!(o,
            RemoteOutput::SendLine(c, l) if *c == ctl && l.contains("\"subcommand\":\"status\""))),
        "{out:?}"
    );
    t.status(ctl, STATE_SUCCEEDED, "exit status 0", 5);
    assert!(
        !t.drain().iter().any(|o| matches!(o, RemoteOutput::Dial(_))),
        "asked again at once"
    );
    t.advance(Duration::from_secs(1));
    let res = t.dialed();
    assert!(t.open(res).contains("\"startpos\":0"));
}

/// Submits up to the unit ID and the payload, then cuts before the acknowledgement; returns
/// the line sent on the new connection dialled after the retry pause.
fn cut_unconfirmed(t: &mut T) -> (ConnId, String) {
    t.u.start(t.now);
    let c = t.dialed();
    t.open(c);
    t.feed(c, &Reply::WorkUnitCreated { unit_id: ID.into() });
    let out = t.drain();
    assert!(out.contains(&RemoteOutput::SendPayload(c)), "{out:?}");
    t.u.handle_stream_ended(t.now, c);
    t.drain();
    assert_eq!(t.answers(), vec![Ok(true)]);
    assert_eq!(t.u.phase(), RemotePhase::Submit);
    assert!(!t.u.data().remote_started);
    t.wake();
    let c = t.dialed();
    let line = t.open(c);
    (c, line)
}

fn status_line(unit: &str) -> String {
    status_command(unit, None)
}

fn submits(t: &T) -> usize {
    t.out
        .iter()
        .filter(|o| matches!(o, RemoteOutput::SendLine(_, l) if l.contains("\"subcommand\":\"submit\"")))
        .count()
}

#[test]
fn an_unconfirmed_payload_asks_first_and_a_unit_unknown_there_is_submitted_again() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    let (c, line) = cut_unconfirmed(&mut t);
    assert_eq!(line, status_line(ID), "asks, does not submit");
    assert_eq!(submits(&t), 1);
    t.feed(
        c,
        &Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    );
    // Nothing ran there: submitted again on the same session.
    let line = t.sent(c);
    assert!(line.contains("\"subcommand\":\"submit\""), "{line}");
    t.feed(
        c,
        &Reply::WorkUnitCreated {
            unit_id: "Other001".into(),
        },
    );
    t.u.handle_half_closed(t.now, c);
    t.feed(
        c,
        &Reply::WorkStarted {
            unit_id: "Other001".into(),
            pending: false,
        },
    );
    t.drain();
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    assert_eq!(t.u.data().remote_unit_id, "Other001");
    assert!(t.u.data().remote_started);
}

#[test]
fn a_unit_that_could_not_read_its_payload_is_released_then_submitted_again() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    let (c, line) = cut_unconfirmed(&mut t);
    assert_eq!(line, status_line(ID));
    t.status(c, STATE_FAILED, "Error reading input data: EOF", 0);
    let line = t.sent(c);
    assert_eq!(
        line,
        unit_command("release", ID, None),
        "released there first"
    );
    assert_eq!(submits(&t), 1);
    t.feed(
        c,
        &Reply::WorkReleased {
            unit_id: ID.into(),
            pending: false,
        },
    );
    let line = t.sent(c);
    assert!(line.contains("\"subcommand\":\"submit\""), "{line}");
    assert_eq!(t.u.phase(), RemotePhase::Submit);
    assert!(!t.u.data().remote_started);
}

#[test]
fn a_failure_for_another_reason_means_the_payload_arrived() {
    for (state, detail) in [
        (STATE_RUNNING, "Running: PID 7"),
        (STATE_SUCCEEDED, "exit status 0"),
        (STATE_FAILED, "exit status 1"),
        (STATE_CANCELED, "Canceled"),
    ] {
        let mut t = T::new(data(), STATE_PENDING, 0, 0);
        let (c, _) = cut_unconfirmed(&mut t);
        t.status(c, state, detail, 3);
        // Followed as a confirmed submit is: status and results streams.
        following(&mut t);
        assert!(t.out.contains(&RemoteOutput::Close(c)), "{:?}", t.out);
        assert_eq!(t.u.phase(), RemotePhase::Follow, "{detail}");
        assert_eq!(t.u.data().remote_unit_id, ID);
        assert!(
            t.out
                .iter()
                .any(|o| matches!(o, RemoteOutput::SaveRemote(d) if d.remote_started)),
            "{detail}: marked started"
        );
        assert_eq!(submits(&t), 1, "{detail}: not submitted again");
    }
}

#[test]
fn a_pending_unit_is_asked_again_paced_until_it_is_decided() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    let (c, _) = cut_unconfirmed(&mut t);
    let mut asked = Vec::new();
    for _ in 0..5 {
        t.status(c, STATE_PENDING, "Waiting for Input Data", 0);
        assert!(t.drain().is_empty(), "{:?}", t.out);
        let before = t.now;
        t.wake();
        asked.push(t.now - before);
        assert_eq!(t.sent(c), status_line(ID));
    }
    // Paced as status polls: 250 ms doubling up to 1 s.
    assert_eq!(
        asked,
        [250, 500, 1000, 1000, 1000]
            .map(Duration::from_millis)
            .to_vec()
    );
    // The question is cut: asked again on a new connection, never submitted.
    t.u.handle_stream_ended(t.now, c);
    t.wake();
    let c = t.dialed();
    assert_eq!(t.open(c), status_line(ID));
    t.status(c, STATE_FAILED, "Error reading input data: EOF", 0);
    assert_eq!(t.sent(c), unit_command("release", ID, None));
    assert_eq!(submits(&t), 1);
}

#[test]
fn a_unit_pending_beyond_the_unreachable_timeout_is_followed() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    let cut_at = t.now;
    let (c, _) = cut_unconfirmed(&mut t);
    t.status(c, STATE_PENDING, "Job Submitted", 0);
    t.drain();
    // cfg(): 30 s. Still Pending then: it had its payload and waits for a start further on.
    while t.u.phase() == RemotePhase::Submit {
        assert!(t.now < cut_at + Duration::from_secs(32), "still asking");
        t.wake();
        assert_eq!(t.sent(c), status_line(ID));
        t.status(c, STATE_PENDING, "Job Submitted", 0);
        t.drain();
    }
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    assert!(t.u.data().remote_started);
    assert_eq!(submits(&t), 1);
}

#[test]
fn an_unreadable_answer_about_an_unconfirmed_unit_fails_it() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    let (c, _) = cut_unconfirmed(&mut t);
    t.u.handle_bytes(t.now, c, b"nonsense\n");
    t.drain();
    assert!(t.u.is_done());
    assert_eq!(submits(&t), 1);
    assert!(
        matches!(t.last_status(), Some((STATE_FAILED, d)) if d.starts_with("Error starting worker"))
    );
}

#[test]
fn a_unit_released_while_its_payload_is_unconfirmed_is_released_there() {
    let mut t = T::new(data(), STATE_PENDING, 0, 0);
    let (c, _) = cut_unconfirmed(&mut t);
    t.u.cancel(t.now, true, false);
    // It may run there: the release is sent, and retried across a lasting failure.
    let c2 = t.dialed();
    assert!(t.out.contains(&RemoteOutput::Close(c)), "{:?}", t.out);
    assert!(
        !t.out.contains(&RemoteOutput::Forget),
        "not forgotten here yet"
    );
    let c = c2;
    t.u.handle_connect_failed(t.now, c, firewall());
    t.wake();
    let c = t.dialed();
    assert_eq!(t.open(c), unit_command("release", ID, None));
    t.feed(
        c,
        &Reply::WorkReleased {
            unit_id: ID.into(),
            pending: false,
        },
    );
    t.drain();
    assert!(t.out.contains(&RemoteOutput::Forget));
    // The cut answered the submit; the failed connection the release (told later).
    assert_eq!(t.answers(), vec![Ok(true), Ok(true)]);
    assert_eq!(submits(&t), 1);
}

/// A unit found on disk after a restart here: created there (its ID saved), not started.
/// Resumes it; returns the connection and the line sent on it once greeted.
fn resumed_unconfirmed(t: &mut T) -> (ConnId, String) {
    t.u.resume(t.now).expect("resumed: the other node is asked");
    assert_eq!(t.u.phase(), RemotePhase::Submit);
    let c = t.dialed();
    let line = t.open(c);
    (c, line)
}

fn created_data() -> RemoteExtraData {
    RemoteExtraData {
        remote_unit_id: ID.into(),
        ..data()
    }
}

fn failed_to_restart(t: &T) -> bool {
    t.u.is_done()
        && t.last_status()
            == Some((
                STATE_FAILED,
                "Failed to restart: remote work had not previously started".into(),
            ))
}

#[test]
fn a_resumed_unit_unknown_there_fails_to_restart_without_a_submit() {
    let mut t = T::new(created_data(), STATE_PENDING, 0, 0);
    let (c, line) = resumed_unconfirmed(&mut t);
    assert_eq!(line, status_line(ID), "asks about the unit it created");
    t.feed(
        c,
        &Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    );
    t.drain();
    assert!(failed_to_restart(&t), "{:?}", t.out);
    assert_eq!(submits(&t), 0, "the payload is gone: never submitted again");
    assert!(t.answers().is_empty(), "nobody waits for an answer");
    assert!(!t.u.data().remote_started);
}

#[test]
fn a_resumed_unit_that_could_not_read_its_payload_is_released_there_then_fails() {
    for reply in [
        Reply::WorkReleased {
            unit_id: ID.into(),
            pending: false,
        },
        Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    ] {
        let mut t = T::new(created_data(), STATE_PENDING, 0, 0);
        let (c, _) = resumed_unconfirmed(&mut t);
        t.status(c, STATE_FAILED, "Error reading input data: EOF", 0);
        assert_eq!(t.sent(c), unit_command("release", ID, None));
        assert!(!t.u.is_done(), "fails once the release is heard");
        t.feed(c, &reply);
        t.drain();
        assert!(failed_to_restart(&t), "{reply:?}: {:?}", t.out);
        assert_eq!(submits(&t), 0);
        assert!(
            !t.out.contains(&RemoteOutput::Forget),
            "kept here as Failed"
        );
    }
}

#[test]
fn a_resumed_unit_that_ran_there_is_followed_as_started() {
    for (state, detail) in [
        (STATE_RUNNING, "Running: PID 7"),
        (STATE_SUCCEEDED, "exit status 0"),
        (STATE_FAILED, "exit status 1"),
        (STATE_CANCELED, "Canceled"),
    ] {
        let mut t = T::new(created_data(), STATE_PENDING, 0, 0);
        let (c, _) = resumed_unconfirmed(&mut t);
        t.status(c, state, detail, 3);
        following(&mut t);
        assert_eq!(t.u.phase(), RemotePhase::Follow, "{detail}");
        assert!(t.u.data().remote_started, "{detail}");
        assert!(
            t.out
                .iter()
                .any(|o| matches!(o, RemoteOutput::SaveRemote(d) if d.remote_started)),
            "{detail}: saved as started"
        );
        assert_eq!(submits(&t), 0, "{detail}");
    }
}

#[test]
fn a_resumed_pending_unit_is_asked_again_across_a_cut_then_followed() {
    let mut t = T::new(created_data(), STATE_PENDING, 0, 0);
    let (c, _) = resumed_unconfirmed(&mut t);
    t.status(c, STATE_PENDING, "Waiting for Input Data", 0);
    assert!(t.drain().is_empty(), "{:?}", t.out);
    let before = t.now;
    t.wake();
    assert_eq!(t.now - before, Duration::from_millis(250), "paced as polls");
    assert_eq!(t.sent(c), status_line(ID));
    // The question is cut: asked again on a new connection.
    t.u.handle_stream_ended(t.now, c);
    t.wake();
    let c = t.dialed();
    assert_eq!(t.open(c), status_line(ID));
    t.status(c, STATE_PENDING, "Job Submitted", 0);
    t.drain();
    t.wake();
    assert_eq!(t.sent(c), status_line(ID));
    t.status(c, STATE_RUNNING, "Running: PID 7", 0);
    following(&mut t);
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    assert!(t.u.data().remote_started);
    assert_eq!(submits(&t), 0);
}

#[test]
fn a_resumed_unit_cancelled_before_it_was_confirmed_is_cancelled_there() {
    let mut t = T::new(
        RemoteExtraData {
            local_cancelled: true,
            ..created_data()
        },
        STATE_PENDING,
        0,
        0,
    );
    t.u.resume(t.now).unwrap();
    let c = t.dialed();
    assert_eq!(t.open(c), unit_command("cancel", ID, None));
    assert_eq!(submits(&t), 0);
}

#[test]
fn a_ttl_past_does_not_fail_a_unit_that_may_run_there() {
    let mut t = T::new(created_data(), STATE_PENDING, 0, 0);
    t.u.set_expiry(t.now, "Work unit expired".into());
    let (c, line) = resumed_unconfirmed(&mut t);
    assert_eq!(line, status_line(ID));
    t.advance(Duration::from_secs(1));
    assert!(!t.u.is_done(), "asked first: {:?}", t.out);
    t.status(c, STATE_RUNNING, "Running: PID 7", 0);
    following(&mut t);
    assert_eq!(t.u.phase(), RemotePhase::Follow);
    // One that never ran there fails, as it would have without the ttl.
    let mut t = T::new(created_data(), STATE_PENDING, 0, 0);
    t.u.set_expiry(t.now, "Work unit expired".into());
    let (c, _) = resumed_unconfirmed(&mut t);
    t.feed(
        c,
        &Reply::Error(ErrorReply::UnknownUnit { unit_id: ID.into() }),
    );
    t.drain();
    assert!(failed_to_restart(&t), "{:?}", t.out);
}

#[test]
fn a_machine_from_a_record_takes_its_ttl_from_the_wall_clock() {
    use crate::work::{ExtraData, StatusRecord};
    let record = |expiration: Option<i128>| {
        let mut rec = StatusRecord::new(
            "remote",
            Some(ExtraData::Remote(RemoteExtraData {
                expiration,
                ..data()
            })),
        );
        rec.state = STATE_RUNNING;
        rec.stdout_size = 7;
        rec
    };
    let now = Instant::now();
    let wall = Duration::from_secs(1_000_000);
    let wall_nanos = 1_000_000 * 1_000_000_000_i128;
    let make = |rec: &StatusRecord| {
        RemoteUnit::from_record(rec, 3, RemoteUnitConfig::default(), now, wall)
    };
    // The record's remote data, state and sizes are the machine's.
    let m = make(&record(None));
    assert_eq!(m.data().remote_node, data().remote_node);
    assert!(m.expiry.is_none());
    // 5 s of ttl left: the expiry is 5 s from now on the monotonic clock, with Go's detail.
    let at = wall_nanos + 5_000_000_000;
    let m = make(&record(Some(at)));
    assert_eq!(
        m.expiry,
        Some((
            now + Duration::from_secs(5),
            crate::work::remote::expired_detail(at, 0)
        ))
    );
    // Past already: now.
    let m = make(&record(Some(wall_nanos - 1)));
    assert_eq!(m.expiry.as_ref().map(|(t, _)| *t), Some(now));
    // Beyond what the clock holds (a file could say so): never, and no panic.
    let m = make(&record(Some(i128::MAX)));
    assert!(m.expiry.is_none() || m.expiry.as_ref().is_some_and(|(t, _)| *t > now));
}
