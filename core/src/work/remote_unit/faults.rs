//! The remote-unit machine against the real control service under seeded faults: dials
//! that fail (no route, unanswered handshakes), connections cut at any point (before or
//! after the payload, during results, while a poll waits), lost acknowledgements. The
//! executing side keeps its units across cuts, as a node keeps them on disk; a unit whose
//! payload stream is cut fails reading its input some time later (at the latest at the QUIC
//! idle timeout, 30 s). Every run must end with the unit terminal on both sides and its
//! output here byte for byte, the work run exactly once there, no other unit left there,
//! and a seed must give the same trace every time. `REMOTE_UNIT_SEEDS=n` runs seeds 0..n
//! (the ignored `sweep` runs 500).

use std::collections::BTreeMap;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;
use crate::control::{Action, Phase, Reply, Session, UnitStatus, WorkRequest};
use crate::work::{
    STATE_FAILED, STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED, input_error_detail,
};

/// Chunks of output a unit writes, one per step of virtual time.
const CHUNKS: u64 = 12;

struct XUnit {
    state: i64,
    /// Detail other than `state <n>`.
    detail: Option<String>,
    output: Vec<u8>,
    written: u64,
    payload: Vec<u8>,
    /// Its payload stream broke: it fails reading its input then.
    fails_at: Option<Instant>,
    /// Times its work started.
    runs: u32,
}

struct Server {
    s: Session,
    /// `work results` of this unit from this offset, once switched.
    streaming: Option<(String, usize)>,
    /// The unit whose payload this session reads.
    payload_for: Option<String>,
}

struct World {
    rng: ChaCha8Rng,
    units: BTreeMap<String, XUnit>,
    next_unit: u32,
    sessions: BTreeMap<ConnId, Server>,
    trace: Vec<String>,
    stats: Stats,
}

/// What happened in one run, for the sweep's figures.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    /// Payloads that arrived whole but whose acknowledgement was lost with the connection.
    acks_lost: usize,
    /// Payload streams cut before the payload arrived.
    payloads_cut: usize,
    /// `work submit` requests there.
    submits: usize,
    /// `work status` requests there.
    statuses: usize,
    /// Units released there.
    released: usize,
    /// Times any unit's work started there.
    runs: usize,
}

fn chunk(unit: &str, i: u64) -> Vec<u8> {
    format!("{unit} line {i}\n").into_bytes()
}

impl World {
    fn chance(&mut self, percent: u64) -> bool {
        self.rng.next_u64() % 100 < percent
    }

    fn status(u: &XUnit) -> UnitStatus {
        UnitStatus {
            state: u.state,
            detail: u
                .detail
                .clone()
                .unwrap_or_else(|| format!("state {}", u.state)),
            stdout_size: u.output.len() as i64,
            work_type: "echo".into(),
            extra_data: None,
        }
    }

    /// Every running unit writes a chunk, or finishes; a unit whose payload stream broke
    /// fails when it notices.
    fn tick(&mut self, now: Instant) {
        for (id, u) in &mut self.units {
            if u.state == STATE_PENDING && u.fails_at.is_some_and(|t| now >= t) {
                u.state = STATE_FAILED;
                u.detail = Some(input_error_detail("EOF"));
            }
            if u.state == STATE_RUNNING {
                if u.written == CHUNKS {
                    u.state = STATE_SUCCEEDED;
                } else {
                    u.output.extend(chunk(id, u.written));
                    u.written += 1;
                }
            }
        }
    }

    fn answer(&mut self, c: ConnId, req: WorkRequest) -> Reply {
        let unknown = |id: &str| Reply::Error(format!("unknown work unit {id}").into());
        match req {
            WorkRequest::Submit(_) => {
                self.stats.submits += 1;
                self.next_unit += 1;
                let id = format!("U{}", self.next_unit);
                self.units.insert(
                    id.clone(),
                    XUnit {
                        state: STATE_PENDING,
                        detail: None,
                        output: Vec::new(),
                        written: 0,
                        payload: Vec::new(),
                        fails_at: None,
                        runs: 0,
                    },
                );
                if let Some(srv) = self.sessions.get_mut(&c) {
                    srv.payload_for = Some(id.clone());
                }
                Reply::WorkUnitCreated { unit_id: id }
            }
            WorkRequest::Status { unit_id, .. } => {
                self.stats.statuses += 1;
                match self.units.get(&unit_id) {
                    Some(u) => Reply::WorkStatus(Self::status(u)),
                    None => unknown(&unit_id),
                }
            }
            WorkRequest::Release { unit_id, .. } => match self.units.remove(&unit_id) {
                Some(_) => {
                    self.stats.released += 1;
                    Reply::WorkReleased {
                        unit_id,
                        pending: false,
                    }
                }
                None => unknown(&unit_id),
            },
            WorkRequest::Results {
                unit_id, start_pos, ..
            } => {
                if !self.units.contains_key(&unit_id) {
                    return unknown(&unit_id);
                }
                if let Some(srv) = self.sessions.get_mut(&c) {
                    srv.streaming = Some((unit_id.clone(), start_pos as usize));
                }
                Reply::WorkResults { unit_id }
            }
            other => Reply::Error(format!("unexpected {other:?}").into()),
        }
    }

    /// Cuts `c`: both ends lose it.
    fn cut(&mut self, m: &mut RemoteUnit, now: Instant, c: ConnId) {
        self.trace.push(format!("cut {}", c.0));
        self.end_session(now, c);
        m.handle_stream_ended(now, c);
    }

    /// The executing side loses session `c`: a unit still waiting for its payload on it
    /// notices within the QUIC idle timeout.
    fn end_session(&mut self, now: Instant, c: ConnId) {
        let Some(srv) = self.sessions.remove(&c) else {
            return;
        };
        let waiting = srv.payload_for.and_then(|id| self.units.get_mut(&id));
        if let Some(u) = waiting.filter(|u| u.payload.is_empty() && u.state == STATE_PENDING) {
            let after = Duration::from_millis(self.rng.next_u64() % 30_000);
            u.fails_at = Some(now + after);
        }
    }
}

/// One run; returns the trace and its figures.
fn run(seed: u64) -> (Vec<String>, Stats) {
    let mut w = World {
        rng: ChaCha8Rng::seed_from_u64(seed),
        units: BTreeMap::new(),
        next_unit: 0,
        sessions: BTreeMap::new(),
        trace: Vec::new(),
        stats: Stats::default(),
    };
    let start = Instant::now();
    let mut now = start;
    let config = RemoteUnitConfig {
        rng_seed: seed,
        unreachable_timeout: None,
        ..RemoteUnitConfig::default()
    };
    let data = RemoteExtraData {
        remote_node: "C".into(),
        remote_work_type: "echo".into(),
        ..RemoteExtraData::default()
    };
    let mut m = RemoteUnit::new(data, STATE_PENDING, 0, 0, config, now);
    m.start(now);
    let mut here: Vec<u8> = Vec::new();
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 20_000, "seed {seed}: no end after {steps} steps");
        while let Some(o) = m.poll_output() {
            w.trace.push(format!("{:?} {o:?}", now - start));
            match o {
                RemoteOutput::Dial(c) => {
                    if w.chance(15) {
                        let why = if w.chance(50) {
                            ConnectFailure::NoRoute
                        } else {
                            ConnectFailure::Timeout
                        };
                        m.handle_connect_failed(now, c, why);
                        continue;
                    }
                    let mut s = Session::new("C");
                    let hello = s.poll_output().unwrap_or_default();
                    w.sessions.insert(
                        c,
                        Server {
                            s,
                            streaming: None,
                            payload_for: None,
                        },
                    );
                    m.handle_connected(now, c);
                    m.handle_bytes(now, c, &hello);
                }
                RemoteOutput::SendLine(c, line) => {
                    if let Some(srv) = w.sessions.get_mut(&c) {
                        srv.s.handle_bytes(line.as_bytes());
                    }
                }
                RemoteOutput::SendPayload(c) => {
                    // The payload may be cut on the way, arrive without its
                    // acknowledgement coming back, or arrive and be acknowledged.
                    let fate = w.rng.next_u64() % 10;
                    if fate == 0 {
                        w.stats.payloads_cut += 1;
                        w.cut(&mut m, now, c);
                        continue;
                    }
                    let Some(srv) = w.sessions.get_mut(&c) else {
                        continue;
                    };
                    let Some(id) = srv.payload_for.clone() else {
                        continue;
                    };
                    if let Some(u) = w.units.get_mut(&id) {
                        u.payload.extend_from_slice(b"payload");
                        u.state = STATE_RUNNING;
                        u.runs += 1;
                        w.stats.runs += 1;
                    }
                    let _ = srv.s.complete(Reply::WorkStarted {
                        unit_id: id,
                        pending: false,
                    });
                    if fate == 1 {
                        // Acknowledgement lost, then the connection: the reply never comes.
                        w.stats.acks_lost += 1;
                        w.cut(&mut m, now, c);
                        continue;
                    }
                    m.handle_half_closed(now, c);
                }
                RemoteOutput::Close(c) | RemoteOutput::Park(c) => {
                    w.end_session(now, c);
                }
                RemoteOutput::AppendOutput { offset, data } => {
                    assert_eq!(offset as usize, here.len(), "seed {seed}: offset");
                    here.extend_from_slice(&data);
                }
                _ => {}
            }
        }
        if m.is_done() {
            break;
        }
        // Every session answers, writes what it has, maybe gets cut.
        let mut progressed = false;
        let ids: Vec<ConnId> = w.sessions.keys().copied().collect();
        for c in ids {
            if w.chance(3) {
                w.cut(&mut m, now, c);
                progressed = true;
                continue;
            }
            let Some(srv) = w.sessions.get_mut(&c) else {
                continue;
            };
            let mut out: Vec<Bytes> = Vec::new();
            while let Some(b) = srv.s.poll_output() {
                out.push(b);
            }
            if let Some(Action::Work(req)) = srv.s.poll_action() {
                let reply = w.answer(c, req);
                let Some(srv) = w.sessions.get_mut(&c) else {
                    continue;
                };
                let _ = srv.s.complete(reply);
                while let Some(b) = srv.s.poll_output() {
                    out.push(b);
                }
            }
            let Some(srv) = w.sessions.get_mut(&c) else {
                continue;
            };
            let mut ended = false;
            match srv.s.phase() {
                Phase::Switched => {
                    if let Some((id, from)) = srv.streaming.clone()
                        && let Some(u) = w.units.get(&id)
                    {
                        if from < u.output.len() {
                            out.push(Bytes::copy_from_slice(&u.output[from..]));
                            srv.streaming = Some((id, u.output.len()));
                        }
                        ended = is_complete(u.state)
                            && srv.streaming.as_ref().map(|s| s.1) == Some(u.output.len());
                    }
                }
                Phase::Finished => ended = true,
                _ => {}
            }
            for b in out {
                progressed = true;
                m.handle_bytes(now, c, &b);
            }
            if ended && w.sessions.contains_key(&c) {
                w.end_session(now, c);
                progressed = true;
                m.handle_stream_ended(now, c);
            }
        }
        if !progressed && m.poll_output().is_none() && !m.is_done() {
            // Nothing moves: virtual time does, and the units with it.
            let next = m
                .poll_timeout()
                .unwrap_or(now + Duration::from_millis(100))
                .min(now + Duration::from_millis(100));
            now = now.max(next);
            w.tick(now);
            m.handle_timeout(now);
        }
    }
    // Terminal on both sides, every byte here once.
    let id = m.data().remote_unit_id.clone();
    let u = w
        .units
        .get(&id)
        .unwrap_or_else(|| panic!("seed {seed}: followed unit {id} unknown there"));
    assert_eq!(u.state, STATE_SUCCEEDED, "seed {seed}: unit there");
    assert_eq!(u.payload, b"payload", "seed {seed}: payload");
    assert!(
        here == u.output,
        "seed {seed}: output {} bytes here, {} there; trace:\n{}",
        here.len(),
        u.output.len(),
        w.trace.join("\n")
    );
    let expected: Vec<u8> = (0..CHUNKS).flat_map(|i| chunk(&id, i)).collect();
    assert_eq!(here, expected, "seed {seed}: output");
    // The work ran once there, as the followed unit; every other unit there (one that
    // never had its payload) was released, none left behind.
    assert_eq!(u.runs, 1, "seed {seed}: runs of the followed unit");
    assert_eq!(
        w.stats.runs, 1,
        "seed {seed}: the work ran more than once there"
    );
    let others: Vec<(&String, &XUnit)> = w.units.iter().filter(|(k, _)| **k != id).collect();
    assert!(
        others.is_empty(),
        "seed {seed}: units left there besides {id}: {:?}; trace:\n{}",
        others
            .iter()
            .map(|(k, u)| (k.as_str(), u.state, u.runs))
            .collect::<Vec<_>>(),
        w.trace.join("\n")
    );
    (w.trace, w.stats)
}

fn seeds() -> u64 {
    std::env::var("REMOTE_UNIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[test]
fn units_end_terminal_with_exact_output_under_faults() {
    for seed in 0..seeds() {
        run(seed);
    }
}

#[test]
fn a_seed_gives_the_same_trace() {
    for seed in [3, 17] {
        assert_eq!(run(seed).0, run(seed).0);
    }
}

#[test]
#[ignore = "500 seeds: run by hand"]
fn sweep() {
    let (mut cuts, mut dials, mut all) = (0, 0, Stats::default());
    for seed in 0..500 {
        let (trace, st) = run(seed);
        cuts += trace.iter().filter(|l| l.starts_with("cut")).count();
        dials += trace.iter().filter(|l| l.contains(" Dial(")).count();
        all.acks_lost += st.acks_lost;
        all.payloads_cut += st.payloads_cut;
        all.submits += st.submits;
        all.statuses += st.statuses;
        all.released += st.released;
    }
    // Figures for the record (`-- --ignored --nocapture`); every run asserted the work ran
    // exactly once there and left no unit behind.
    eprintln!(
        "500 seeds: {cuts} connections cut, {dials} dials; {} payloads cut, {} acknowledgements \
         lost; {} submits ({} again), {} status requests, {} units released there; no work \
         ran twice, no unit left behind",
        all.payloads_cut,
        all.acks_lost,
        all.submits,
        all.submits - 500,
        all.statuses,
        all.released
    );
}
