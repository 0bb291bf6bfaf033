//! The executing node of the remote-unit scenario (`work_sim.rs`): the core's control
//! service ([`Connection`], the server side our nodes run) on every mesh stream accepted on
//! its `control` service, the core's unit lifecycle ([`Engine`]) deciding what becomes of
//! each unit, and a simulated worker running them.
//!
//! Units outlive the connections that made them, as a node keeps them on disk (the status
//! records here); a submit whose payload was not read to its end makes a unit that fails
//! without running (`Engine::payload_failed`). A started unit writes its output (a pattern
//! from its seed) in chunks at a fixed pace of virtual time, then succeeds. Status polls
//! with the long-poll extension are held until the unit's State or Detail change or the wait
//! runs out, as our nodes do.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use receptor_core::NodeId;
use receptor_core::control::{
    Action, Connection, Reply, StatusWait, Step, UnitStatus, WaitStep, WorkRequest,
};
use receptor_core::work::{
    Effect, Engine, STATE_PENDING, STATE_RUNNING, STATE_SUCCEEDED, StdoutSize, WorkError, all_sent,
    is_complete,
};

use crate::Sim;
use crate::check::mix64;
use crate::streams::{SimStream, StreamApp, StreamRole, pattern};
use crate::work_sim::Trace;

/// Work type of the simulated units.
pub(crate) const WORK_TYPE: &str = "sim";

/// One unit on the executing node.
#[derive(Debug)]
pub(crate) struct XUnit {
    pub(crate) state: i64,
    pub(crate) detail: String,
    pub(crate) output: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    /// Seed of the output pattern.
    pub(crate) seed: u64,
    /// Output length once done.
    pub(crate) len: usize,
    chunks: u32,
    every: u64,
    written: u32,
    /// Virtual time of the next chunk while running.
    next: Option<u64>,
}

impl XUnit {
    fn status(&self) -> UnitStatus {
        UnitStatus {
            state: self.state,
            detail: self.detail.clone(),
            stdout_size: self.output.len() as i64,
            work_type: WORK_TYPE.into(),
            extra_data: None,
        }
    }

    fn set(&mut self, state: i64, detail: &str) {
        self.state = state;
        self.detail = detail.into();
    }
}

/// What one served connection is doing.
#[derive(Debug)]
enum Srv {
    /// Going through the connection's steps.
    Steps,
    /// A long poll held until the unit's State or Detail change, or `until`.
    Held {
        unit: String,
        wait: StatusWait,
        until: u64,
    },
    /// Reading `unit`'s payload to the client's FIN.
    Payload { unit: String },
    /// Streaming `unit`'s stdout from `pos`.
    Results { unit: String, pos: usize },
    /// Our side is finished: waiting for the stream to end.
    Closing,
}

#[derive(Debug)]
struct Served {
    stream: SimStream,
    conn: Connection,
    srv: Srv,
    /// The unit a `work submit` on this connection made.
    payload_for: Option<String>,
    /// The unit and offset of a `work results` on this connection.
    results: Option<(String, usize)>,
}

/// An answer now, or a status poll to hold.
enum Answer {
    Now(Reply),
    Hold(Srv),
}

/// The executing node: its control sessions and its units.
#[derive(Debug)]
pub(crate) struct Executor {
    node: NodeId,
    seed: u64,
    /// The lifecycle: which units exist and what happens to them.
    engine: Engine<()>,
    /// Unit IDs.
    rng: ChaCha8Rng,
    /// The units' status records and output ("disk"), and the worker's state.
    pub(crate) units: BTreeMap<String, XUnit>,
    served: Vec<Served>,
    /// Streams of the simulation looked at so far for new accepted ones.
    seen: usize,
    /// Longest output of a unit.
    max_len: usize,
    /// `work results` asked from a later offset than 0 (resumed copies).
    pub(crate) resumed_results: u64,
}

impl Executor {
    /// The executing side on `node` (which must listen on `control` with
    /// [`StreamApp::Raw`]); units draw their output from `seed`.
    pub(crate) fn new(node: &str, seed: u64, max_len: usize) -> Self {
        Self {
            node: NodeId::new(node).unwrap_or_else(|e| panic!("{node:?}: {e}")),
            seed,
            engine: Engine::new(),
            rng: ChaCha8Rng::seed_from_u64(mix64(seed ^ 0x0069_6473)),
            units: BTreeMap::new(),
            served: Vec::new(),
            seen: 0,
            max_len,
            resumed_results: 0,
        }
    }

    /// When the executor has something to do next, in virtual nanoseconds.
    pub(crate) fn next_timer(&self) -> Option<u64> {
        let units = self.units.values().filter_map(|u| u.next);
        let held = self.served.iter().filter_map(|s| match s.srv {
            Srv::Held { until, .. } => Some(until),
            _ => None,
        });
        units.chain(held).min()
    }

    /// Whether every unit here is complete.
    pub(crate) fn all_complete(&self) -> bool {
        self.units.values().all(|u| is_complete(u.state))
    }

    /// Moves everything along at the current virtual time; whether anything moved.
    pub(crate) fn service(&mut self, sim: &mut Sim, trace: &mut Trace) -> bool {
        let mut moved = false;
        let total = sim.stream_total();
        for i in self.seen..total {
            let s = sim.stream_at(i);
            let r = sim.stream(s);
            if r.node == self.node && r.role == StreamRole::Acceptor(StreamApp::Raw) {
                trace.log(sim, format_args!("C accepts {i}"));
                self.served.push(Served {
                    stream: s,
                    conn: Connection::new(self.node.as_str()),
                    srv: Srv::Steps,
                    payload_for: None,
                    results: None,
                });
            }
        }
        self.seen = total;
        moved |= self.work(sim, trace);
        for i in 0..self.served.len() {
            moved |= self.drive(sim, trace, i);
        }
        let before = self.served.len();
        let mut gone = Vec::new();
        self.served.retain(|s| {
            let ended = matches!(s.srv, Srv::Closing) && sim.stream(s.stream).end.is_some();
            if ended {
                gone.extend(s.payload_for.clone());
            }
            !ended
        });
        // A submit whose connection ended before its payload was whole never runs.
        for id in gone {
            if self
                .units
                .get(&id)
                .is_some_and(|u| u.state == STATE_PENDING)
            {
                let effects = self.engine.payload_failed(&id, "the stream ended");
                self.effects(sim, trace, None, effects);
            }
        }
        moved || self.served.len() != before
    }

    /// Running units write their due chunks.
    fn work(&mut self, sim: &Sim, trace: &mut Trace) -> bool {
        let now = sim.now().as_nanos() as u64;
        let mut moved = false;
        for (id, u) in &mut self.units {
            while let Some(at) = u.next.filter(|&t| t <= now) {
                moved = true;
                let per = u.len / u.chunks as usize;
                let end = if u.written + 1 == u.chunks {
                    u.len
                } else {
                    per * (u.written as usize + 1)
                };
                let from = u.output.len();
                u.output
                    .extend_from_slice(&pattern(u.seed, from as u64, end - from));
                u.written += 1;
                if u.written == u.chunks {
                    u.set(STATE_SUCCEEDED, "Finished");
                    u.next = None;
                    self.engine.handle_status(id, STATE_SUCCEEDED);
                    trace.log(sim, format_args!("C unit {id} succeeded, {end} bytes"));
                } else {
                    u.next = Some(at + u.every);
                }
            }
        }
        moved
    }

    /// A new unit for a `work submit` (the engine's), its output plan from the seed.
    fn create(&mut self) -> Result<(String, Vec<Effect>), WorkError> {
        let n = self.units.len() as u64;
        let units = &self.units;
        let id = self
            .engine
            .new_unit_id(&mut self.rng, |id| units.contains_key(id));
        let effects = self.engine.create(&id, (), WORK_TYPE)?;
        let r = mix64(self.seed ^ mix64(0x756e_6974 + n));
        let len = 1 + (r % self.max_len as u64) as usize;
        let chunks = 1 + ((r >> 20) % 12) as u32;
        let every = Duration::from_millis(50 + (r >> 40) % 1500).as_nanos() as u64;
        self.units.insert(
            id.clone(),
            XUnit {
                state: STATE_PENDING,
                detail: "Waiting for payload".into(),
                output: Vec::new(),
                payload: Vec::new(),
                seed: mix64(r ^ 0x6f75_7470_7574),
                len,
                chunks: chunks.min(len as u32),
                every,
                written: 0,
                next: None,
            },
        );
        Ok((id, effects))
    }

    fn answer(&mut self, sim: &Sim, trace: &mut Trace, i: usize, req: WorkRequest) -> Answer {
        let unknown =
            |id: &str| Answer::Now(Reply::Error(WorkError::UnknownUnit(id.into()).into()));
        match req {
            WorkRequest::Submit(_) => match self.create() {
                Ok((id, effects)) => {
                    self.effects(sim, trace, None, effects);
                    self.served[i].payload_for = Some(id.clone());
                    Answer::Now(Reply::WorkUnitCreated { unit_id: id })
                }
                Err(e) => Answer::Now(Reply::Error(e.into())),
            },
            WorkRequest::Status { unit_id, wait, .. } => {
                let (Some(u), Some(())) = (self.units.get(&unit_id), self.engine.get(&unit_id))
                else {
                    return unknown(&unit_id);
                };
                match wait {
                    Some(w) if !w.is_news(&u.status()) => {
                        let until = sim.now() + w.wait();
                        Answer::Hold(Srv::Held {
                            unit: unit_id,
                            wait: w,
                            until: until.as_nanos() as u64,
                        })
                    }
                    _ => Answer::Now(Reply::WorkStatus(u.status())),
                }
            }
            WorkRequest::Results {
                unit_id, start_pos, ..
            } => {
                if self.engine.get(&unit_id).is_none() {
                    return unknown(&unit_id);
                }
                let from = usize::try_from(start_pos).unwrap_or(0);
                self.resumed_results += u64::from(from > 0);
                self.served[i].results = Some((unit_id.clone(), from));
                Answer::Now(Reply::WorkResults { unit_id })
            }
            other => Answer::Now(Reply::Error(format!("not served here: {other:?}").into())),
        }
    }

    fn complete(&mut self, sim: &Sim, trace: &mut Trace, i: usize, reply: Reply) {
        if let Err(e) = self.served[i].conn.complete(reply) {
            trace.log(sim, format_args!("C session refused a reply: {e}"));
        }
    }

    /// The unit's payload is whole: the engine starts it and answers the submit.
    fn start(&mut self, sim: &Sim, trace: &mut Trace, i: usize, id: String) {
        self.served[i].payload_for = None;
        match self.engine.start(&id) {
            Ok(effects) => self.effects(sim, trace, Some((i, &id)), effects),
            Err(e) => self.complete(sim, trace, i, Reply::Error(e.into())),
        }
    }

    /// Carries out the engine's effects for `unit`; `reply_to`: the connection (and unit)
    /// whose request they answer.
    fn effects(
        &mut self,
        sim: &Sim,
        trace: &mut Trace,
        reply_to: Option<(usize, &str)>,
        effects: Vec<Effect>,
    ) {
        for e in effects {
            trace.log(sim, format_args!("C {e:?}"));
            match e {
                Effect::SetStatus {
                    unit,
                    state,
                    detail,
                    stdout,
                } => {
                    if let Some(u) = self.units.get_mut(&unit) {
                        u.set(state, &detail);
                        if stdout == StdoutSize::Zero {
                            u.output.clear();
                        }
                    }
                }
                Effect::StartWorker { unit } => {
                    // The simulated worker starts at once and runs in virtual time.
                    let now = sim.now().as_nanos() as u64;
                    let started = match self.units.get_mut(&unit) {
                        Some(u) => {
                            u.set(STATE_RUNNING, "Running");
                            u.next = Some(now + u.every);
                            Ok(false)
                        }
                        None => Err(format!("no record for {unit}")),
                    };
                    let more = self.engine.handle_start_result(&unit, started);
                    self.effects(sim, trace, reply_to, more);
                }
                Effect::Reply(r) => {
                    let Some((i, unit)) = reply_to else {
                        continue;
                    };
                    let reply = match r {
                        Ok(pending) => Reply::WorkStarted {
                            unit_id: unit.to_owned(),
                            pending,
                        },
                        Err(e) => Reply::Error(e.into()),
                    };
                    self.complete(sim, trace, i, reply);
                }
                // Nobody cancels or releases here, and the node never restarts.
                _ => {}
            }
        }
    }

    /// Moves connection `i` as far as it goes now.
    fn drive(&mut self, sim: &mut Sim, trace: &mut Trace, i: usize) -> bool {
        let s = self.served[i].stream;
        let mut moved = false;
        loop {
            let r = sim.stream(s);
            let broken = r.read_error.is_some() || r.end.is_some();
            match &mut self.served[i].srv {
                Srv::Closing => return moved,
                Srv::Held { unit, wait, until } => {
                    if broken {
                        self.served[i].srv = Srv::Closing;
                        sim.stream_drop(s);
                        return true;
                    }
                    let current = self.units.get(unit.as_str()).map(|u| u.status());
                    let now = sim.now().as_nanos() as u64;
                    let reply = match wait.step(current, now >= *until) {
                        WaitStep::Wait => return moved,
                        WaitStep::Answer(st) => Reply::WorkStatus(st),
                        WaitStep::Unknown => {
                            Reply::Error(WorkError::UnknownUnit(unit.clone()).into())
                        }
                    };
                    self.served[i].srv = Srv::Steps;
                    self.complete(sim, trace, i, reply);
                    moved = true;
                }
                Srv::Payload { unit } => {
                    let unit = unit.clone();
                    let data = sim.stream_read(s);
                    moved |= !data.is_empty();
                    if let Some(u) = self.units.get_mut(&unit) {
                        for b in data {
                            u.payload.extend_from_slice(&b);
                        }
                    }
                    let r = sim.stream(s);
                    if r.eof {
                        self.served[i].srv = Srv::Steps;
                        self.start(sim, trace, i, unit);
                        moved = true;
                    } else if broken {
                        self.served[i].srv = Srv::Closing;
                        sim.stream_drop(s);
                        return true;
                    } else {
                        return moved;
                    }
                }
                Srv::Results { unit, pos } => {
                    if broken {
                        self.served[i].srv = Srv::Closing;
                        sim.stream_drop(s);
                        return true;
                    }
                    let u = &self.units[unit.as_str()];
                    if u.output.len() > *pos {
                        let data = Bytes::copy_from_slice(&u.output[*pos..]);
                        *pos = u.output.len();
                        sim.stream_write(s, data);
                        moved = true;
                    }
                    if all_sent(u.state, *pos as u64, u.output.len() as i64) {
                        self.served[i].srv = Srv::Closing;
                        sim.stream_finish(s);
                        return true;
                    }
                    return moved;
                }
                Srv::Steps => match self.served[i].conn.poll_step() {
                    Step::Write(b) => {
                        sim.stream_write(s, b);
                        moved = true;
                    }
                    Step::Perform(Action::Work(req)) => {
                        moved = true;
                        match self.answer(sim, trace, i, req) {
                            Answer::Now(reply) => self.complete(sim, trace, i, reply),
                            Answer::Hold(h) => self.served[i].srv = h,
                        }
                    }
                    Step::Perform(other) => {
                        moved = true;
                        let reply = Reply::Error(format!("not served here: {other:?}").into());
                        self.complete(sim, trace, i, reply);
                    }
                    Step::Read => {
                        let data = sim.stream_read(s);
                        if !data.is_empty() {
                            for b in data {
                                self.served[i].conn.received(&b);
                            }
                            moved = true;
                            continue;
                        }
                        let r = sim.stream(s);
                        if r.eof {
                            self.served[i].conn.received_eof();
                            moved = true;
                        } else if broken {
                            self.served[i].srv = Srv::Closing;
                            sim.stream_drop(s);
                            return true;
                        } else {
                            return moved;
                        }
                    }
                    Step::Payload { kept, eof } => {
                        moved = true;
                        let Some(unit) = self.served[i].payload_for.clone() else {
                            self.complete(sim, trace, i, Reply::Error("no unit".into()));
                            continue;
                        };
                        if let Some(u) = self.units.get_mut(&unit) {
                            u.payload.extend_from_slice(&kept);
                        }
                        if eof {
                            self.start(sim, trace, i, unit);
                        } else {
                            self.served[i].srv = Srv::Payload { unit };
                        }
                    }
                    Step::Switched { .. } => {
                        moved = true;
                        self.served[i].srv = match self.served[i].results.take() {
                            Some((unit, pos)) => Srv::Results { unit, pos },
                            None => {
                                sim.stream_finish(s);
                                Srv::Closing
                            }
                        };
                    }
                    Step::Close => {
                        self.served[i].srv = Srv::Closing;
                        sim.stream_finish(s);
                        return true;
                    }
                },
            }
        }
    }
}
