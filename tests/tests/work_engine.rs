//! The local unit lifecycle (core's `Engine`) driven by a simulated node: a simulated worker
//! (processes that run for a while in virtual time and outlive node restarts), a simulated
//! unit directory per unit (its status record) with removals that fail now and then, and
//! random submits, starts, cancels, releases, force-releases and node restarts drawn
//! from a seed. Every unit must end terminal or released, the table and the "disk" must agree,
//! and the same seed must give the same trace.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use receptor_core::work::{
    CancelOutcome, Effect, Engine, ExtraData, Restart, STATE_CANCELED, STATE_FAILED, STATE_PENDING,
    STATE_RUNNING, STATE_SUCCEEDED, StatusRecord, StdoutSize, WorkType, is_complete,
};

/// Units of the simulated type run a "process" that takes a few virtual seconds.
#[derive(Debug)]
struct SimWorker;

impl WorkType for SimWorker {
    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_process(rec)
    }
}

struct SimNode {
    now: Instant,
    rng: ChaCha8Rng,
    engine: Engine<()>,
    /// Unit directories: the status record of each.
    disk: BTreeMap<String, StatusRecord>,
    /// Running processes and when they end (they survive node restarts, as supervisors do).
    procs: BTreeMap<String, Instant>,
    /// Removals of a directory that fail before one succeeds.
    busy: BTreeMap<String, u8>,
    trace: Vec<String>,
}

impl SimNode {
    fn new(seed: u64) -> Self {
        Self {
            now: Instant::now(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            engine: Engine::new(),
            disk: BTreeMap::new(),
            procs: BTreeMap::new(),
            busy: BTreeMap::new(),
            trace: Vec::new(),
        }
    }

    fn log(&mut self, what: String) {
        self.trace.push(what);
    }

    fn pick(&mut self) -> Option<String> {
        let ids: Vec<&str> = self.engine.units().map(|(id, ())| id).collect();
        if ids.is_empty() {
            return None;
        }
        let i = (self.rng.next_u32() as usize) % ids.len();
        Some(ids[i].to_owned())
    }

    /// Carries out effects until the request is answered; the answer.
    fn run(&mut self, effects: Vec<Effect>) -> Option<Result<bool, String>> {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        let mut reply = None;
        while let Some(e) = queue.pop_front() {
            let more = match e {
                Effect::SetStatus {
                    unit,
                    state,
                    detail,
                    stdout,
                } => {
                    self.log(format!("{unit}: status {state} {detail}"));
                    if let Some(rec) = self.disk.get_mut(&unit) {
                        let size = match stdout {
                            StdoutSize::Zero => Some(0),
                            StdoutSize::Keep => None,
                            StdoutSize::Current => Some(rec.stdout_size),
                        };
                        rec.set_basic(state, detail, size);
                    }
                    Vec::new()
                }
                Effect::StartWorker { unit } => {
                    let secs = 1 + u64::from(self.rng.next_u32() % 5);
                    self.procs
                        .insert(unit.clone(), self.now + Duration::from_secs(secs));
                    if let Some(rec) = self.disk.get_mut(&unit) {
                        rec.set_basic(STATE_RUNNING, "Running: PID 1", Some(0));
                    }
                    self.engine.handle_status(&unit, STATE_RUNNING);
                    self.engine.handle_start_result(&unit, Ok(false))
                }
                Effect::ReattachWorker { unit } => {
                    // As the CLI's command worker: a process that ended while the node was
                    // down without a final state is reported gone; nothing else needs following.
                    let mut more = self.engine.handle_reattach_result(&unit, Ok(()));
                    if !self.procs.contains_key(&unit) {
                        let state = self.disk.get(&unit).map_or(STATE_FAILED, |r| r.state);
                        more.extend(self.engine.handle_worker_gone(
                            &unit,
                            state,
                            "exited unexpectedly (unknown status)".to_owned(),
                        ));
                    }
                    more
                }
                Effect::CancelWorker { unit, release } => {
                    let running = self.procs.remove(&unit).is_some();
                    let outcome = if running {
                        CancelOutcome::Stopped
                    } else {
                        CancelOutcome::NotRunning
                    };
                    self.engine.handle_cancel_result(&unit, release, outcome)
                }
                Effect::RemoveDir {
                    unit,
                    force,
                    tries_left,
                    not_before,
                } => {
                    if let Some(at) = not_before {
                        self.now = self.now.max(at);
                    }
                    let r = match self.busy.get_mut(&unit) {
                        Some(n) if *n > 0 => {
                            *n -= 1;
                            Err("unlinkat: device or resource busy".to_owned())
                        }
                        _ => {
                            self.disk.remove(&unit);
                            Ok(())
                        }
                    };
                    self.engine
                        .handle_remove_result(self.now, &unit, force, tries_left, r)
                }
                Effect::Forget { unit } => {
                    self.log(format!("{unit}: forgotten"));
                    self.engine.forget(&unit);
                    Vec::new()
                }
                Effect::Reply(r) => {
                    reply = Some(r.map_err(|e| e.to_string()));
                    Vec::new()
                }
            };
            queue.extend(more);
        }
        reply
    }

    fn submit(&mut self) {
        let mut rng = self.rng.clone();
        let disk = &self.disk;
        let id = self
            .engine
            .new_unit_id(&mut rng, |id| disk.contains_key(id));
        self.rng = rng;
        let rec = StatusRecord::new("sim", Some(ExtraData::command(0, "")));
        self.disk.insert(id.clone(), rec);
        let effects = self.engine.create(&id, (), "sim").unwrap();
        self.run(effects);
        self.log(format!("{id}: submitted"));
        if self.rng.next_u32().is_multiple_of(4) {
            // A payload that fails to arrive, or one left unstarted (until a restart).
            if self.rng.next_u32().is_multiple_of(2) {
                let effects = self.engine.payload_failed(&id, "EOF");
                self.run(effects);
            }
            return;
        }
        let effects = self.engine.start(&id).unwrap();
        let r = self.run(effects);
        self.log(format!("{id}: start {r:?}"));
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        let ended: Vec<String> = self
            .procs
            .iter()
            .filter(|(_, at)| **at <= self.now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            self.procs.remove(&id);
            if let Some(rec) = self.disk.get_mut(&id) {
                rec.set_basic(STATE_SUCCEEDED, "exit status 0", Some(12));
            }
            self.engine.handle_status(&id, STATE_SUCCEEDED);
            self.log(format!("{id}: exited"));
        }
    }

    /// A process killed from outside: its unit's record stays Running. The node sees it go
    /// half of the time; otherwise it finds out at its next restart.
    fn kill_one(&mut self) {
        let Some(id) = self.procs.keys().next().cloned() else {
            return;
        };
        self.procs.remove(&id);
        self.log(format!("{id}: killed"));
        if self.rng.next_u32().is_multiple_of(2) && self.engine.get(&id).is_some() {
            let state = self.disk.get(&id).map_or(STATE_FAILED, |r| r.state);
            let effects = self.engine.handle_worker_gone(
                &id,
                state,
                "exited unexpectedly (signal: killed)".to_owned(),
            );
            self.run(effects);
        }
    }

    fn restart_node(&mut self) {
        self.log("node restart".to_owned());
        self.engine = Engine::new();
        let disk: Vec<(String, StatusRecord)> = self
            .disk
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, rec) in disk {
            let effects = self
                .engine
                .handle_found(&id, (), Ok(&rec), Some(&SimWorker));
            self.run(effects);
        }
    }

    fn step(&mut self) {
        match self.rng.next_u32() % 10 {
            0..=2 => self.submit(),
            3 => {
                if let Some(id) = self.pick() {
                    let effects = self.engine.cancel(&id).unwrap();
                    let r = self.run(effects);
                    self.log(format!("{id}: cancel {r:?}"));
                }
            }
            4 | 5 => {
                if let Some(id) = self.pick() {
                    let force = self.rng.next_u32().is_multiple_of(2);
                    if self.rng.next_u32().is_multiple_of(3) {
                        self.busy
                            .insert(id.clone(), (self.rng.next_u32() % 4) as u8);
                    }
                    let effects = self.engine.release(&id, force).unwrap();
                    let r = self.run(effects);
                    self.log(format!("{id}: release force={force} {r:?}"));
                }
            }
            6 => self.restart_node(),
            7 => self.kill_one(),
            _ => {
                let ms = u64::from(self.rng.next_u32() % 3000);
                self.advance(Duration::from_millis(ms));
            }
        }
        self.check();
    }

    /// The table and the disk agree on every unit's state.
    fn check(&self) {
        for (id, ()) in self.engine.units() {
            let rec = self.disk.get(id);
            assert!(rec.is_some(), "{id} in the table but not on disk");
            let rec = rec.unwrap();
            // The engine follows what it wrote and what it was told; the disk is the truth.
            if let Some(state) = self.engine.state(id)
                && (is_complete(state) || state == STATE_CANCELED)
            {
                assert_eq!(state, rec.state, "{id}");
            }
        }
    }

    /// Lets everything finish and checks how every unit ended.
    fn finish(&mut self) {
        self.advance(Duration::from_secs(60));
        for (id, ()) in self.engine.units() {
            let rec = &self.disk[id];
            let done = is_complete(rec.state) || rec.state == STATE_CANCELED;
            // Only a unit never started (no payload yet) may still be Pending, and only one
            // whose process was killed unnoticed still Running.
            assert!(
                done || rec.state == STATE_PENDING || rec.state == STATE_RUNNING,
                "{id} ended {} {}",
                rec.state,
                rec.detail
            );
            assert!(!self.procs.contains_key(id) || rec.state == STATE_CANCELED);
        }
        // A restart turns every leftover Pending unit into Failed and follows nothing that ended.
        self.restart_node();
        for (id, rec) in &self.disk {
            assert!(
                is_complete(rec.state) || rec.state == STATE_CANCELED,
                "{id} after restart: {} {}",
                rec.state,
                rec.detail
            );
            assert!(self.engine.get(id).is_some(), "{id} on disk, not listed");
            if rec.state == STATE_FAILED && rec.detail.starts_with("Pending") {
                assert_eq!(rec.detail, "Pending at restart");
            }
        }
    }
}

fn run_seed(seed: u64) -> Vec<String> {
    let mut node = SimNode::new(seed);
    for _ in 0..200 {
        node.step();
    }
    node.finish();
    node.trace
}

#[test]
fn random_lifecycles_end_well_and_repeat() {
    let seeds: u64 = std::env::var("WORK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let marks = [
        "status 4 Canceled",
        "forgotten",
        "Pending at restart",
        "Error reading input data",
        "Err(\"unlinkat",
        "node restart",
        "exited",
        "exited unexpectedly (signal: killed)",
        "exited unexpectedly (unknown status)",
    ];
    for seed in 0..seeds {
        let first = run_seed(seed);
        assert!(first.len() > 50, "seed {seed}: too little happened");
        for line in &first {
            for m in marks {
                if line.contains(m) {
                    *seen.entry(m).or_default() += 1;
                }
            }
        }
        assert_eq!(first, run_seed(seed), "seed {seed} is not repeatable");
    }
    // Every path was taken (cancel, release, restart rules, failed removals).
    for m in marks {
        assert!(
            seen.get(m).copied().unwrap_or(0) > 0,
            "never saw {m:?}: {seen:?}"
        );
    }
}

#[test]
fn a_busy_directory_is_removed_on_the_third_try() {
    let mut node = SimNode::new(1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let id = node.engine.new_unit_id(&mut rng, |_| false);
    node.disk.insert(id.clone(), StatusRecord::new("sim", None));
    let effects = node.engine.create(&id, (), "sim").unwrap();
    node.run(effects);
    // Two busy tries, then the third removes it: a second apart each.
    node.busy.insert(id.clone(), 2);
    let before = node.now;
    let effects = node.engine.release(&id, false).unwrap();
    assert_eq!(node.run(effects), Some(Ok(false)));
    assert_eq!(node.now - before, Duration::from_secs(2));
    assert!(node.disk.is_empty() && node.engine.is_empty());
}
