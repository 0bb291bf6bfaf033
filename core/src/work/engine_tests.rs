use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::work::{ExtraData, STATE_RUNNING, STATE_SUCCEEDED};

#[derive(Debug)]
struct Process;

impl WorkType for Process {
    fn on_restart(&self, rec: &StatusRecord) -> Restart {
        Restart::for_process(rec)
    }
}

fn status(unit: &str, state: i64, detail: &str, stdout: StdoutSize) -> Effect {
    Effect::SetStatus {
        unit: unit.into(),
        state,
        detail: detail.into(),
        stdout,
    }
}

fn engine_with(id: &str) -> Engine<u32> {
    let mut e = Engine::new();
    e.create(id, 7, "echo").unwrap();
    e
}

#[test]
fn submit_start_and_fail_to_start() {
    let mut e = Engine::new();
    assert_eq!(
        e.create("u1", 1u32, "echo").unwrap(),
        [status(
            "u1",
            STATE_PENDING,
            "Waiting for Input Data",
            StdoutSize::Zero
        )]
    );
    assert_eq!(e.get("u1"), Some(&1));
    assert_eq!(e.work_type("u1"), Some("echo"));
    assert_eq!(
        e.create("u1", 2, "echo"),
        Err(WorkError::Duplicate("u1".into()))
    );
    assert_eq!(
        e.start("u1").unwrap(),
        [
            status("u1", STATE_PENDING, "Starting Worker", StdoutSize::Zero),
            Effect::StartWorker { unit: "u1".into() }
        ]
    );
    assert_eq!(
        e.handle_start_result("u1", Ok(false)),
        [Effect::Reply(Ok(false))]
    );
    e.create("u2", 2, "echo").unwrap();
    assert_eq!(
        e.handle_start_result("u2", Err("fork/exec /x: no such file".into())),
        [
            status(
                "u2",
                STATE_FAILED,
                "Error starting worker: fork/exec /x: no such file",
                StdoutSize::Zero
            ),
            Effect::Reply(Err(WorkError::Worker("fork/exec /x: no such file".into())))
        ]
    );
    assert_eq!(e.state("u2"), Some(STATE_FAILED));
    assert_eq!(
        e.payload_failed("u1", "EOF"),
        [status(
            "u1",
            STATE_FAILED,
            "Error reading input data: EOF",
            StdoutSize::Zero
        )]
    );
}

#[test]
fn unknown_and_invalid_units() {
    let mut e: Engine<u32> = Engine::new();
    let unknown = Err(WorkError::UnknownUnit("nope".into()));
    assert_eq!(e.start("nope"), unknown);
    assert_eq!(e.cancel("nope"), unknown);
    assert_eq!(e.release("nope", false), unknown);
    assert_eq!(
        WorkError::UnknownUnit("nope".into()).to_string(),
        "unknown work unit nope"
    );
    // Cleanup can be repeated: force-release of a unit that is gone succeeds.
    assert_eq!(e.release("nope", true).unwrap(), [Effect::Reply(Ok(false))]);
    for bad in ["", "..", "a/b"] {
        assert_eq!(e.release(bad, true), Err(WorkError::InvalidId(bad.into())));
        assert!(e.create(bad, 1, "echo").is_err());
    }
}

#[test]
fn cancel_outcomes() {
    let mut e = engine_with("u");
    let cancel = e.cancel("u").unwrap();
    assert_eq!(
        cancel,
        [Effect::CancelWorker {
            unit: "u".into(),
            release: None
        }]
    );
    assert_eq!(
        e.handle_cancel_result("u", None, CancelOutcome::Stopped),
        [
            status("u", STATE_CANCELED, "Canceled", StdoutSize::Keep),
            Effect::Reply(Ok(false))
        ]
    );
    assert_eq!(e.state("u"), Some(STATE_CANCELED));
    assert_eq!(
        e.handle_cancel_result("u", None, CancelOutcome::NotRunning),
        [Effect::Reply(Ok(false))]
    );
    assert_eq!(
        e.handle_cancel_result("u", None, CancelOutcome::Failed("EPERM".into())),
        [Effect::Reply(Err(WorkError::Worker("EPERM".into())))]
    );
    assert_eq!(
        e.handle_cancel_result("u", None, CancelOutcome::Handled { pending: true }),
        [Effect::Reply(Ok(true))]
    );
    // A cancel never removes anything.
    assert_eq!(e.get("u"), Some(&7));
}

#[test]
fn release_cancels_then_removes_then_forgets() {
    let t0 = Instant::now();
    let mut e = engine_with("u");
    assert_eq!(
        e.release("u", false).unwrap(),
        [Effect::CancelWorker {
            unit: "u".into(),
            release: Some(false)
        }]
    );
    let remove = Effect::RemoveDir {
        unit: "u".into(),
        force: false,
        tries_left: 2,
        not_before: None,
    };
    // A running unit is stopped (Canceled) before its directory goes.
    assert_eq!(
        e.handle_cancel_result("u", Some(false), CancelOutcome::Stopped),
        [
            status("u", STATE_CANCELED, "Canceled", StdoutSize::Keep),
            remove.clone()
        ]
    );
    assert_eq!(
        e.handle_cancel_result("u", Some(false), CancelOutcome::NotRunning),
        [remove]
    );
    assert_eq!(
        e.handle_remove_result(t0, "u", false, 2, Ok(())),
        [
            Effect::Forget { unit: "u".into() },
            Effect::Reply(Ok(false))
        ]
    );
    assert!(e.get("u").is_none() && e.is_empty());
}

#[test]
fn release_when_the_cancel_fails() {
    let t0 = Instant::now();
    let mut e = engine_with("u");
    // Plain release: the error is the answer and the unit stays.
    assert_eq!(
        e.handle_cancel_result("u", Some(false), CancelOutcome::Failed("EPERM".into())),
        [Effect::Reply(Err(WorkError::Worker("EPERM".into())))]
    );
    assert_eq!(e.len(), 1);
    // Forced: the directory goes anyway.
    assert_eq!(
        e.handle_cancel_result("u", Some(true), CancelOutcome::Failed("EPERM".into())),
        [Effect::RemoveDir {
            unit: "u".into(),
            force: true,
            tries_left: 2,
            not_before: None
        }]
    );
    assert_eq!(
        e.handle_remove_result(t0, "u", true, 2, Err("EBUSY".into())),
        [
            Effect::Forget { unit: "u".into() },
            Effect::Reply(Ok(false))
        ]
    );
    assert!(e.is_empty());
}

#[test]
fn removal_is_tried_three_times_a_second_apart() {
    let t0 = Instant::now();
    let mut e = engine_with("u");
    let mut tries = 0;
    let mut effect = Effect::RemoveDir {
        unit: "u".into(),
        force: false,
        tries_left: REMOVE_TRIES - 1,
        not_before: None,
    };
    let mut now = t0;
    let last = loop {
        let Effect::RemoveDir {
            tries_left,
            not_before,
            ..
        } = effect
        else {
            break effect;
        };
        if let Some(at) = not_before {
            assert_eq!(at, now + REMOVE_RETRY);
            now = at;
        }
        tries += 1;
        let mut out = e.handle_remove_result(now, "u", false, tries_left, Err("EBUSY".into()));
        assert_eq!(out.len(), 1);
        effect = out.remove(0);
    };
    assert_eq!(tries, 3);
    assert_eq!(now, t0 + 2 * REMOVE_RETRY);
    assert_eq!(last, Effect::Reply(Err(WorkError::Remove("EBUSY".into()))));
    // The unit is still there to be released again.
    assert_eq!(e.get("u"), Some(&7));
}

#[test]
fn restart_after_a_node_restart() {
    let mut e: Engine<u32> = Engine::new();
    let rec = |state| {
        let mut r = StatusRecord::new("echo", Some(ExtraData::command(5, "")));
        r.state = state;
        r
    };
    assert_eq!(
        e.handle_found("run", 1, Ok(&rec(STATE_RUNNING)), Some(&Process)),
        [Effect::ReattachWorker { unit: "run".into() }]
    );
    assert_eq!(
        e.handle_found("pend", 2, Ok(&rec(STATE_PENDING)), Some(&Process)),
        [status(
            "pend",
            STATE_FAILED,
            "Pending at restart",
            StdoutSize::Current
        )]
    );
    assert_eq!(e.state("pend"), Some(STATE_FAILED));
    assert!(
        e.handle_found("done", 3, Ok(&rec(STATE_SUCCEEDED)), Some(&Process))
            .is_empty()
    );
    // An unregistered type is listed, never started.
    assert!(
        e.handle_found("alien", 4, Ok(&rec(STATE_RUNNING)), None)
            .is_empty()
    );
    assert_eq!(e.state("alien"), Some(STATE_RUNNING));
    assert_eq!(
        e.handle_found("bad", 5, Err("unexpected end of JSON input".into()), None),
        [status(
            "bad",
            STATE_FAILED,
            "Failed to restart: unexpected end of JSON input",
            StdoutSize::Current
        )]
    );
    // Found twice (a lookup racing the scan): the first one counts.
    assert!(
        e.handle_found("run", 9, Ok(&rec(STATE_PENDING)), Some(&Process))
            .is_empty()
    );
    assert_eq!(e.get("run"), Some(&1));
    assert_eq!(
        e.handle_reattach_result("run", Err("no pid".into())),
        [status(
            "run",
            STATE_FAILED,
            "Failed to restart: no pid",
            StdoutSize::Current
        )]
    );
    assert!(e.handle_reattach_result("run", Ok(())).is_empty());
    let ids: Vec<&str> = e.units().map(|(id, _)| id).collect();
    assert_eq!(ids, ["alien", "bad", "done", "pend", "run"]);
}

#[test]
fn unit_ids_avoid_known_units_and_taken_names() {
    let mut a = ChaCha20Rng::seed_from_u64(3);
    let mut b = ChaCha20Rng::seed_from_u64(3);
    let mut e: Engine<()> = Engine::new();
    let first = e.new_unit_id(&mut a, |_| false);
    e.create(&first, (), "echo").unwrap();
    // The same draws again: the first is known, the second is "on disk", the third is new.
    let mut seen = Vec::new();
    let third = e.new_unit_id(&mut b, |id| {
        seen.push(id.to_owned());
        seen.len() == 1
    });
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], first);
    assert_eq!(seen[1], third);
    assert!(third != first && third.len() == crate::work::UNIT_ID_LEN);
}

#[test]
fn a_worker_gone_fails_only_unfinished_units() {
    let mut e = engine_with("u");
    let detail = || "Command runner exited unexpectedly (signal: killed)".to_owned();
    for done in [STATE_SUCCEEDED, STATE_FAILED, STATE_CANCELED] {
        assert!(e.handle_worker_gone("u", done, detail()).is_empty());
        assert_eq!(e.state("u"), Some(done));
    }
    for live in [STATE_PENDING, STATE_RUNNING] {
        assert_eq!(
            e.handle_worker_gone("u", live, detail()),
            [status(
                "u",
                STATE_FAILED,
                "Command runner exited unexpectedly (signal: killed)",
                StdoutSize::Current
            )]
        );
        assert_eq!(e.state("u"), Some(STATE_FAILED));
    }
}
