//! The remote-unit machine against the real control service ([`crate::control::Session`],
//! the server side our nodes run) over in-memory connections, with a scripted unit behind
//! it: what one side writes is exactly what the other reads, so the client machine, the
//! reply codec and the session agree end to end.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::*;
use crate::control::{Action, Phase, Reply, Session, UnitStatus, WorkRequest};
use crate::work::{STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED};

const UNIT: &str = "Exec0001";

/// The executing node: its sessions and its one unit, which writes `chunks` of output, one
/// per status poll, then succeeds.
struct Executor {
    sessions: BTreeMap<ConnId, Server>,
    stdin: Vec<u8>,
    output: Vec<u8>,
    chunks: Vec<&'static [u8]>,
    state: i64,
    cancelled: bool,
    released: bool,
}

struct Server {
    s: Session,
    /// `work results` from this offset, once switched.
    streaming: Option<usize>,
}

impl Executor {
    fn status(&self) -> UnitStatus {
        UnitStatus {
            state: self.state,
            detail: if self.cancelled {
                "Canceled".into()
            } else {
                format!("state {}", self.state)
            },
            stdout_size: self.output.len() as i64,
            work_type: "echo".into(),
            extra_data: None,
        }
    }

    /// The unit moves on a step.
    fn tick(&mut self) {
        if self.cancelled || self.state == STATE_PENDING {
            return;
        }
        if self.chunks.is_empty() {
            self.state = STATE_SUCCEEDED;
        } else {
            let c = self.chunks.remove(0);
            self.output.extend_from_slice(c);
        }
    }

    fn answer(&mut self, req: WorkRequest) -> Reply {
        let unknown = |id: String| Reply::Error(format!("unknown work unit {id}").into());
        match req {
            WorkRequest::Submit(_) => Reply::WorkUnitCreated {
                unit_id: UNIT.into(),
            },
            _ if self.released => match req {
                WorkRequest::Status { unit_id, .. }
                | WorkRequest::Cancel { unit_id, .. }
                | WorkRequest::Release { unit_id, .. }
                | WorkRequest::Results { unit_id, .. } => unknown(unit_id),
                _ => Reply::Error("unexpected".into()),
            },
            WorkRequest::Status { .. } => {
                self.tick();
                Reply::WorkStatus(self.status())
            }
            WorkRequest::Results { unit_id, .. } => Reply::WorkResults { unit_id },
            WorkRequest::Cancel { unit_id, .. } => {
                self.cancelled = true;
                self.state = STATE_CANCELED;
                Reply::WorkCancelled {
                    unit_id,
                    pending: false,
                }
            }
            WorkRequest::Release { unit_id, .. } => {
                self.released = true;
                Reply::WorkReleased {
                    unit_id,
                    pending: false,
                }
            }
            WorkRequest::List { .. } => Reply::Error("unexpected".into()),
        }
    }
}

/// Runs the machine against the executor until it is done (or `steps` run out); returns
/// the output appended here.
fn run(m: &mut RemoteUnit, x: &mut Executor, now: &mut Instant, steps: usize) -> Vec<u8> {
    let mut appended = Vec::new();
    for _ in 0..steps {
        let mut progressed = false;
        while let Some(o) = m.poll_output() {
            progressed = true;
            match o {
                RemoteOutput::Dial(c) => {
                    let mut s = Session::new("C");
                    let hello = s.poll_output().unwrap();
                    x.sessions.insert(c, Server { s, streaming: None });
                    m.handle_connected(*now, c);
                    m.handle_bytes(*now, c, &hello);
                }
                RemoteOutput::SendLine(c, line) => {
                    let srv = x.sessions.get_mut(&c).unwrap();
                    assert_eq!(srv.s.handle_bytes(line.as_bytes()), line.len());
                }
                RemoteOutput::SendPayload(c) => {
                    let srv = x.sessions.get_mut(&c).unwrap();
                    assert_eq!(srv.s.phase(), Phase::Payload);
                    x.stdin.extend_from_slice(b"the payload");
                    x.state = STATE_RUNNING;
                    srv.s
                        .complete(Reply::WorkStarted {
                            unit_id: UNIT.into(),
                            pending: false,
                        })
                        .unwrap();
                    m.handle_half_closed(*now, c);
                }
                RemoteOutput::Close(c) | RemoteOutput::Park(c) => {
                    x.sessions.remove(&c);
                }
                RemoteOutput::AppendOutput { offset, data } => {
                    assert_eq!(offset as usize, appended.len());
                    appended.extend_from_slice(&data);
                }
                _ => {}
            }
        }
        // Every session answers what it was asked and writes what it has.
        let ids: Vec<ConnId> = x.sessions.keys().copied().collect();
        for c in ids {
            let Some(srv) = x.sessions.get_mut(&c) else {
                continue;
            };
            let mut out: Vec<Bytes> = Vec::new();
            let mut ended = false;
            while let Some(b) = srv.s.poll_output() {
                out.push(b);
            }
            if let Some(action) = srv.s.poll_action() {
                let Action::Work(req) = action else {
                    panic!("unexpected action {action:?}");
                };
                let from = match &req {
                    WorkRequest::Results { start_pos, .. } => Some(*start_pos as usize),
                    _ => None,
                };
                let reply = x.answer(req);
                let srv = x.sessions.get_mut(&c).unwrap();
                if from.is_some() {
                    srv.streaming = from;
                }
                srv.s.complete(reply).unwrap();
                while let Some(b) = srv.s.poll_output() {
                    out.push(b);
                }
            }
            let srv = x.sessions.get_mut(&c).unwrap();
            match srv.s.phase() {
                Phase::Switched => {
                    // Results: what there is from the asked offset; the end once complete.
                    let from = srv.streaming.unwrap_or(0);
                    if from < x.output.len() {
                        out.push(Bytes::copy_from_slice(&x.output[from..]));
                        srv.streaming = Some(x.output.len());
                    }
                    ended = is_complete(x.state) && srv.streaming == Some(x.output.len());
                }
                Phase::Finished => ended = true,
                _ => {}
            }
            for b in out {
                progressed = true;
                m.handle_bytes(*now, c, &b);
            }
            if ended && x.sessions.remove(&c).is_some() {
                progressed = true;
                m.handle_stream_ended(*now, c);
            }
        }
        if m.is_done() {
            break;
        }
        if !progressed {
            let t = m.poll_timeout().expect("stuck without a timer");
            *now = (*now).max(t);
            m.handle_timeout(*now);
        }
    }
    appended
}

fn executor(chunks: Vec<&'static [u8]>) -> Executor {
    Executor {
        sessions: BTreeMap::new(),
        stdin: Vec::new(),
        output: Vec::new(),
        chunks,
        state: STATE_PENDING,
        cancelled: false,
        released: false,
    }
}

fn fresh() -> RemoteExtraData {
    RemoteExtraData {
        remote_node: "C".into(),
        remote_work_type: "echo".into(),
        ..RemoteExtraData::default()
    }
}

#[test]
fn a_unit_runs_through_the_real_control_service() {
    let mut now = Instant::now();
    let mut m = RemoteUnit::new(
        fresh(),
        STATE_PENDING,
        0,
        0,
        RemoteUnitConfig::default(),
        now,
    );
    let mut x = executor(vec![b"one\n", b"two\n", b"three\n"]);
    m.start(now);
    let out = run(&mut m, &mut x, &mut now, 500);
    assert!(m.is_done(), "phase {:?}", m.phase());
    assert_eq!(x.stdin, b"the payload");
    assert_eq!(out, b"one\ntwo\nthree\n");
    assert_eq!(m.data().remote_unit_id, UNIT);
    assert!(m.data().remote_started);
}

#[test]
fn cancel_then_release_through_the_real_control_service() {
    let mut now = Instant::now();
    let mut m = RemoteUnit::new(
        fresh(),
        STATE_PENDING,
        0,
        0,
        RemoteUnitConfig::default(),
        now,
    );
    let mut x = executor(vec![b"a"; 1000]);
    m.start(now);
    let _ = run(&mut m, &mut x, &mut now, 20);
    assert!(!m.is_done());
    m.cancel(now, false, false);
    let _ = run(&mut m, &mut x, &mut now, 200);
    assert!(x.cancelled);
    assert!(
        m.is_done(),
        "Canceled there after a cancel here: {:?}",
        m.phase()
    );
    let data = m.data().clone();
    let mut m = RemoteUnit::new(data, STATE_CANCELED, 0, 0, RemoteUnitConfig::default(), now);
    m.cancel(now, true, false);
    let mut forgot = false;
    for _ in 0..50 {
        let _ = run(&mut m, &mut x, &mut now, 1);
        forgot |= x.released;
        if m.is_done() {
            break;
        }
    }
    assert!(forgot && m.is_done());
}
