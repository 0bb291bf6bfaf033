//! Remote units across the simulated mesh (issue 13, item 3): node A submits units to node
//! C through B (line A - B - C; in a quarter of the seeds also a costlier second path
//! A - D - C) under packet loss, partitions of A-B and B-C, and crashes
//! with restarts of B and of A, all drawn from one seed.
//!
//! Each unit on A is the core's [`RemoteUnit`] machine, driven as the cli drives it: its
//! connections are mesh streams (QUIC over the simulated mesh) to C's `control` service,
//! a dial without a route fails at once (`NoRoute`), the payload counts as delivered once
//! QUIC acknowledged it all, and output is stored in memory at the offsets the machine
//! says. A's "disk" (the remote data, State, Detail and sizes the machine saved, and the
//! output) survives A's crash; on restart each unfinished unit's machine is made anew from
//! it and resumed (`RemoteUnit::new` + `resume`), and one that cannot resume fails, as the
//! cli does. C serves every stream with the core's control [`Connection`] and runs units
//! with a simulated worker (`work_exec.rs`).
//!
//! [`run_remote_units`] checks at the end that every unit is terminal on both sides, that a
//! unit A reports Succeeded has C's output byte for byte (none lost, none doubled), that a
//! unit A reports Failed never started there, and it returns a hash of the run's trace
//! (every input and output of every machine and of C, with its virtual time, and the shape
//! of every QUIC packet): the same seed must give the same hash.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use receptor_core::stream::DialFailure;
use receptor_core::work::remote_unit::{
    ConnId, ConnectFailure, RemoteOutput, RemoteUnit, RemoteUnitConfig,
};
use receptor_core::work::{RemoteExtraData, STATE_FAILED, STATE_PENDING};

use crate::check::{TraceHash, mix64};
use crate::streams::{SimStream, StreamApp};
use crate::work_exec::{Executor, WORK_TYPE};
use crate::work_report::UnitsReport;
use crate::{LinkModel, Sim};

/// The submitting, relaying and executing nodes.
const A: &str = "A";
pub(crate) const B: &str = "B";
const C: &str = "C";
/// The relay of the second path, in some seeds.
const D: &str = "D";

/// Faults happen within this much virtual time after the first submit.
const FAULT_WINDOW: Duration = Duration::from_secs(60);
/// Every unit must be terminal on both sides this long after the last fault.
const SETTLE: Duration = Duration::from_secs(600);

/// The run's trace: every line is hashed; the lines are kept for a failure's report.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) hash: TraceHash,
    pub(crate) lines: Vec<String>,
}

impl Trace {
    /// Records `what` at the simulation's current time.
    pub(crate) fn log(&mut self, sim: &Sim, what: fmt::Arguments<'_>) {
        let line = format!("{:>12?} {what}", sim.now());
        self.hash.bytes(line.as_bytes());
        self.lines.push(line);
    }

    fn tail(&self, n: usize) -> String {
        let from = self.lines.len().saturating_sub(n);
        self.lines[from..].join("\n")
    }
}

/// A fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Partition(&'static str, &'static str),
    Heal(&'static str, &'static str),
    Crash(&'static str),
    Restart(&'static str),
}

/// One unit on A: its "disk" (what survives a crash) and, while A runs, its machine.
pub(crate) struct AUnit {
    pub(crate) id: String,
    pub(crate) submit_at: u64,
    pub(crate) payload: Bytes,
    pub(crate) submitted: bool,
    /// The machine has nothing more to do (or could not be resumed).
    pub(crate) finished: bool,
    pub(crate) data: RemoteExtraData,
    pub(crate) state: i64,
    pub(crate) detail: String,
    pub(crate) stdout_size: i64,
    pub(crate) output: Vec<u8>,
    m: Option<RemoteUnit>,
    conns: BTreeMap<ConnId, AConn>,
}

struct AConn {
    stream: SimStream,
    opened: bool,
    /// The payload is written and finished; waiting for QUIC to acknowledge it all.
    acking: bool,
}

pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) sim: Sim,
    pub(crate) exec: Executor,
    pub(crate) units: Vec<AUnit>,
    pub(crate) faults: Vec<(u64, Fault)>,
    pub(crate) next_fault: usize,
    pub(crate) trace: Trace,
    pub(crate) incarnation_a: u64,
    pub(crate) dials: u64,
    /// Connections of A's machines that broke (not a clean end of stream).
    pub(crate) cuts: u64,
    /// Open connections A's machines gave up on (no reply in time, stalled output).
    pub(crate) abandoned: u64,
    /// Machines made anew from A's disk and resumed after a restart of A.
    pub(crate) resumes: u64,
    pub(crate) loss: [f64; 2],
    pub(crate) second_path: bool,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// A number in `lo..hi` from `rng`.
fn pick(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    lo + rng.next_u64() % (hi - lo).max(1)
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ 0x7375_6e69_7473));
        let mut sim = Sim::new(seed);
        for n in [A, B, C] {
            sim.add_node(n);
        }
        let loss_ab = [0.0, 0.01, 0.03][(rng.next_u64() % 3) as usize];
        let loss_bc = [0.0, 0.01, 0.03][(rng.next_u64() % 3) as usize];
        sim.connect(A, B, LinkModel::datagram().loss(loss_ab));
        // B-C: a lossy datagram link, or a stream link (TCP: no loss, resets instead).
        let bc = if rng.next_u64() % 2 == 0 {
            LinkModel::datagram().loss(loss_bc)
        } else {
            LinkModel::stream()
        };
        let loss_bc = bc.loss;
        sim.connect(B, C, bc);
        // A quarter of the seeds have a second, costlier path A - D - C to fail over to
        // (drawn apart, so the other seeds keep their runs).
        let second_path = mix64(seed ^ 0x0064_7061_7468).is_multiple_of(4);
        if second_path {
            sim.add_node(D);
            sim.connect(A, D, LinkModel::datagram().cost(3.0));
            sim.connect(D, C, LinkModel::datagram().cost(3.0));
        }
        let exec = Executor::new(C, seed, 48 * 1024);
        let mut w = Self {
            seed,
            sim,
            exec,
            units: Vec::new(),
            faults: Vec::new(),
            next_fault: 0,
            trace: Trace::default(),
            incarnation_a: 0,
            dials: 0,
            cuts: 0,
            abandoned: 0,
            resumes: 0,
            loss: [loss_ab, loss_bc],
            second_path,
        };
        w.trace.log(
            &w.sim,
            format_args!(
                "seed {seed}: loss A-B {loss_ab}, B-C {loss_bc}, second path {second_path}"
            ),
        );
        // Units from 1 s on, faults within the window after that.
        let t0 = ns(Duration::from_secs(1));
        let n = pick(&mut rng, 3, 7) as usize;
        for i in 0..n {
            let at = t0 + pick(&mut rng, 0, ns(Duration::from_secs(30)));
            let payload = format!("payload of unit {i} seed {seed}\n").repeat(1 + i);
            w.units.push(AUnit {
                id: format!("A{i}"),
                submit_at: at,
                payload: Bytes::from(payload),
                submitted: false,
                finished: false,
                data: RemoteExtraData {
                    remote_node: C.into(),
                    remote_work_type: WORK_TYPE.into(),
                    ..RemoteExtraData::default()
                },
                state: STATE_PENDING,
                detail: String::new(),
                stdout_size: 0,
                output: Vec::new(),
                m: None,
                conns: BTreeMap::new(),
            });
        }
        let window = ns(FAULT_WINDOW);
        let mut faults = Vec::new();
        // Partitions and crashes of B up to 45 s: beyond QUIC's 30 s idle timeout, so some
        // connections die under the machines, and others live through.
        for (a, b) in [(A, B), (B, C)] {
            for _ in 0..pick(&mut rng, 0, 3) {
                let at = t0 + pick(&mut rng, 0, window);
                let len = pick(
                    &mut rng,
                    ns(Duration::from_secs(1)),
                    ns(Duration::from_secs(45)),
                );
                faults.push((at, Fault::Partition(a, b)));
                faults.push((at + len, Fault::Heal(a, b)));
            }
        }
        for node in [B, A] {
            for _ in 0..pick(&mut rng, 0, 3) {
                let at = t0 + pick(&mut rng, 0, window);
                let len = pick(
                    &mut rng,
                    ns(Duration::from_millis(200)),
                    ns(Duration::from_secs(if node == B { 45 } else { 15 })),
                );
                faults.push((at, Fault::Crash(node)));
                faults.push((at + len, Fault::Restart(node)));
            }
        }
        // Overlapping faults of one kind on one node or link: the earliest end wins, and a
        // restart of a running node or a heal of a whole link does nothing.
        faults.sort_by_key(|f| f.0);
        w.faults = faults;
        w
    }

    fn now(&self) -> u64 {
        ns(self.sim.now())
    }

    fn instant(&self) -> Instant {
        self.sim.instant()
    }

    /// The next fault, submit, worker step or machine timer.
    fn next_timer(&self) -> Option<u64> {
        let fault = self.faults.get(self.next_fault).map(|f| f.0);
        let a_up = self.sim.is_alive(A);
        let submit = self
            .units
            .iter()
            .filter(|u| !u.submitted && a_up)
            .map(|u| u.submit_at);
        let machines = self
            .units
            .iter()
            .filter_map(|u| u.m.as_ref()?.poll_timeout())
            .map(|t| self.sim.vtime(t));
        [fault, self.exec.next_timer()]
            .into_iter()
            .flatten()
            .chain(submit)
            .chain(machines)
            .min()
    }

    fn config(&self, i: usize) -> RemoteUnitConfig {
        RemoteUnitConfig {
            rng_seed: mix64(self.seed ^ mix64((i as u64) << 16 | self.incarnation_a)),
            unreachable_timeout: None,
            label: self.units[i].id.clone(),
            ..RemoteUnitConfig::default()
        }
    }

    fn apply_fault(&mut self, f: Fault) {
        self.trace.log(&self.sim, format_args!("fault {f:?}"));
        match f {
            Fault::Partition(a, b) => self.sim.partition(a, b),
            Fault::Heal(a, b) => self.sim.heal(a, b),
            Fault::Crash(n) => {
                self.sim.crash(n);
                if n == A {
                    // The process is gone: machines and connections with it; the disk stays.
                    for u in &mut self.units {
                        u.m = None;
                        u.conns.clear();
                    }
                }
            }
            Fault::Restart(n) => {
                if self.sim.is_alive(n) {
                    return;
                }
                self.sim.restart(n);
                if n == A {
                    self.incarnation_a += 1;
                    for i in 0..self.units.len() {
                        self.resume(i);
                    }
                }
            }
        }
    }

    /// After A's restart: the unit's machine from its disk, resumed as the cli does.
    fn resume(&mut self, i: usize) {
        let u = &self.units[i];
        if !u.submitted || u.finished {
            return;
        }
        let config = self.config(i);
        let now = self.instant();
        let u = &mut self.units[i];
        let mut m = RemoteUnit::new(
            u.data.clone(),
            u.state,
            u.stdout_size,
            u.output.len() as i64,
            config,
            now,
        );
        match m.resume(now) {
            Ok(()) => {
                u.m = Some(m);
                self.resumes += 1;
            }
            Err(e) => {
                u.state = STATE_FAILED;
                u.detail = format!("Failed to restart: {e}");
                u.finished = true;
                self.trace
                    .log(&self.sim, format_args!("{} {}", u.id, u.detail));
            }
        }
    }

    fn submit(&mut self, i: usize) {
        let config = self.config(i);
        let now = self.instant();
        let u = &mut self.units[i];
        u.submitted = true;
        let mut m = RemoteUnit::new(u.data.clone(), STATE_PENDING, 0, 0, config, now);
        m.start(now);
        u.m = Some(m);
        self.trace
            .log(&self.sim, format_args!("{} submitted", self.units[i].id));
    }

    /// Carries out unit `i`'s outputs.
    fn apply(&mut self, i: usize) -> Result<bool, String> {
        let now = self.instant();
        let mut moved = false;
        loop {
            let u = &mut self.units[i];
            let Some(m) = u.m.as_mut() else {
                return Ok(moved);
            };
            let Some(o) = m.poll_output() else {
                if m.is_done() {
                    u.finished = true;
                    u.m = None;
                    self.trace.log(
                        &self.sim,
                        format_args!("{} done: {}", self.units[i].id, self.units[i].detail),
                    );
                    moved = true;
                }
                return Ok(moved);
            };
            moved = true;
            match &o {
                RemoteOutput::AppendOutput { offset, data } => self.trace.log(
                    &self.sim,
                    format_args!("{} append {} at {offset}", u.id, data.len()),
                ),
                other => self
                    .trace
                    .log(&self.sim, format_args!("{} {other:?}", u.id)),
            }
            match o {
                RemoteOutput::Dial(c) => {
                    let routed = self.sim.routes(A).keys().any(|n| n.as_str() == C);
                    if routed {
                        self.dials += 1;
                        let stream = self.sim.stream_dial_raw(A, C, "control");
                        u.conns.insert(
                            c,
                            AConn {
                                stream,
                                opened: false,
                                acking: false,
                            },
                        );
                    } else {
                        self.trace
                            .log(&self.sim, format_args!("{} dial {}: no route", u.id, c.0));
                        m.handle_connect_failed(now, c, ConnectFailure::NoRoute);
                    }
                }
                RemoteOutput::SendLine(c, line) => {
                    if let Some(conn) = u.conns.get(&c) {
                        self.sim.stream_write(conn.stream, Bytes::from(line));
                    }
                }
                RemoteOutput::SendPayload(c) => {
                    if let Some(conn) = u.conns.get_mut(&c) {
                        conn.acking = true;
                        self.sim.stream_write(conn.stream, u.payload.clone());
                        self.sim.stream_finish(conn.stream);
                    }
                }
                RemoteOutput::Close(c) | RemoteOutput::Park(c) => {
                    if let Some(conn) = u.conns.remove(&c) {
                        let open = self.sim.stream(conn.stream).end.is_none();
                        self.abandoned += u64::from(open && !m.is_done());
                        self.sim.stream_drop(conn.stream);
                    }
                }
                RemoteOutput::AppendOutput { offset, data } => {
                    if offset != u.output.len() as i64 {
                        return Err(format!(
                            "{}: output for offset {offset} with {} bytes here",
                            u.id,
                            u.output.len()
                        ));
                    }
                    u.output.extend_from_slice(&data);
                }
                RemoteOutput::SaveRemote(d) => u.data = d,
                RemoteOutput::SetStatus {
                    state,
                    detail,
                    stdout_size,
                } => {
                    u.state = state;
                    u.detail = detail;
                    if let Some(s) = stdout_size {
                        u.stdout_size = s;
                    }
                }
                RemoteOutput::SetDetail(d) => u.detail = d,
                RemoteOutput::Forget => return Err(format!("{}: forgotten unasked", u.id)),
                _ => {}
            }
        }
    }

    /// Feeds unit `i`'s machine what its streams did and its due timer.
    fn feed(&mut self, i: usize) -> Result<bool, String> {
        let now = self.instant();
        let vnow = self.now();
        let mut moved = self.apply(i)?;
        let due = self.units[i]
            .m
            .as_ref()
            .and_then(RemoteUnit::poll_timeout)
            .is_some_and(|t| self.sim.vtime(t) <= vnow);
        if due && let Some(m) = self.units[i].m.as_mut() {
            m.handle_timeout(now);
            moved |= self.apply(i)?;
        }
        let ids: Vec<ConnId> = self.units[i].conns.keys().copied().collect();
        for c in ids {
            let u = &mut self.units[i];
            let (Some(m), Some(conn)) = (u.m.as_mut(), u.conns.get_mut(&c)) else {
                continue;
            };
            let s = conn.stream;
            let r = self.sim.stream(s);
            if !conn.opened {
                if r.opened_at.is_some() {
                    conn.opened = true;
                    moved = true;
                    m.handle_connected(now, c);
                } else if r.end.is_some() {
                    let why = self
                        .sim
                        .stream_dial_failure(s)
                        .cloned()
                        .unwrap_or(DialFailure::NodeStopped);
                    self.trace.log(
                        &self.sim,
                        format_args!("{} dial {} failed: {why}", u.id, c.0),
                    );
                    u.conns.remove(&c);
                    m.handle_connect_failed(now, c, ConnectFailure::Dial(why));
                    moved |= self.apply(i)?;
                    continue;
                } else {
                    continue;
                }
            }
            for b in self.sim.stream_read(s) {
                moved = true;
                m.handle_bytes(now, c, &b);
            }
            let r = self.sim.stream(s);
            if conn.acking && r.fin_acked {
                conn.acking = false;
                moved = true;
                m.handle_half_closed(now, c);
            }
            if r.eof || r.read_error.is_some() || r.end.is_some() {
                moved = true;
                let why = format!("{:?} {:?}", r.read_error, r.end);
                if !r.eof {
                    self.cuts += 1;
                }
                self.trace.log(
                    &self.sim,
                    format_args!("{} conn {} ended: {why}", u.id, c.0),
                );
                u.conns.remove(&c);
                self.sim.stream_drop(s);
                m.handle_stream_ended(now, c);
            }
            moved |= self.apply(i)?;
        }
        Ok(moved)
    }

    /// Everything that is due now, until nothing moves.
    fn settle(&mut self) -> Result<(), String> {
        for _ in 0..100_000 {
            let mut moved = self.exec.service(&mut self.sim, &mut self.trace);
            for i in 0..self.units.len() {
                moved |= self.feed(i)?;
            }
            if !moved {
                return Ok(());
            }
        }
        Err("no rest at one instant".into())
    }

    fn all_done(&self) -> bool {
        self.next_fault == self.faults.len()
            && self.units.iter().all(|u| u.submitted && u.finished)
            && self.exec.all_complete()
    }

    fn run(&mut self) -> Result<(), String> {
        self.sim
            .stream_listen(C, "control", StreamApp::Raw)
            .map_err(|e| e.to_string())?;
        let last_fault = self.faults.last().map_or(0, |f| f.0);
        let limit = last_fault.max(ns(Duration::from_secs(32))) + ns(SETTLE);
        loop {
            let now = self.now();
            while let Some(&(at, f)) = self.faults.get(self.next_fault)
                && at <= now
            {
                self.next_fault += 1;
                self.apply_fault(f);
            }
            if self.sim.is_alive(A) {
                for i in 0..self.units.len() {
                    if !self.units[i].submitted && self.units[i].submit_at <= now {
                        self.submit(i);
                    }
                }
            }
            self.settle()?;
            if self.all_done() {
                return Ok(());
            }
            if now > limit {
                return Err("units not terminal on both sides in time".into());
            }
            let next = self.next_timer();
            match (self.sim.next_at(), next) {
                (Some(t), Some(n)) if n < t => self.sim.now = self.sim.now.max(n),
                (None, Some(n)) => self.sim.now = self.sim.now.max(n),
                (Some(_), _) => {
                    self.sim.step();
                }
                (None, None) => return Err("nothing left to happen".into()),
            }
        }
    }
}

/// Runs the scenario with `seed`: the figures, or what went wrong with the end of the trace.
pub fn run_remote_units(seed: u64) -> Result<UnitsReport, String> {
    let mut w = World::new(seed);
    let outcome = w.run().and_then(|()| w.check());
    outcome.map_err(|e| {
        format!(
            "seed {seed} at {:?}: {e}\n--- last trace lines ---\n{}",
            w.sim.now(),
            w.trace.tail(80)
        )
    })
}

/// The whole trace of the scenario with `seed`, one line per event (for reading a run).
pub fn remote_units_trace(seed: u64) -> Vec<String> {
    let mut w = World::new(seed);
    if let Err(e) = w.run().and_then(|()| w.check().map(drop)) {
        w.trace.lines.push(format!("FAILED: {e}"));
    }
    w.trace.lines
}
