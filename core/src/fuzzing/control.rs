//! The control protocol as a client drives it: command lines (plain and JSON, through the
//! hand-written JSON scanner) fed in chunks to a [`Session`], each action answered.

use std::collections::BTreeMap;

use crate::control::{Action, Phase, Reply, Session, UnitStatus, WorkRequest};

/// A session reads `data` (after a first byte choosing the chunk size) as a client's bytes;
/// every action gets the reply that fits it, with the fuzz-chosen names echoed back so the
/// reply encoders see them too. Checks that a mismatched reply is refused and changes
/// nothing, that the session never consumes more than it was given, and that it ends.
pub fn control_session(data: &[u8]) {
    let (chunk, mut rest) = match data.split_first() {
        Some((&c, rest)) => (usize::from(c).max(1), rest),
        None => return,
    };
    let mut s = Session::with_max_line("fuzz", 4096);
    let mut steps = 0usize;
    loop {
        steps += 1;
        assert!(steps < 100_000, "session does not progress");
        while let Some(out) = s.poll_output() {
            assert!(!out.is_empty(), "empty output");
        }
        match s.phase() {
            Phase::Reading => {
                if rest.is_empty() {
                    s.handle_eof();
                    if s.phase() == Phase::Reading {
                        panic!("session still reading after EOF");
                    }
                    continue;
                }
                let take = chunk.min(rest.len());
                let used = s.handle_bytes(rest.get(..take).unwrap_or_default());
                assert!(used <= take, "consumed more than given");
                rest = rest.get(used..).unwrap_or_default();
            }
            Phase::Awaiting => {
                let Some(action) = s.poll_action() else {
                    panic!("awaiting without an action");
                };
                let reply = reply_for(action);
                if !matches!(reply, Reply::Connected) {
                    let before = s.phase();
                    assert!(s.complete(Reply::Connected).is_err(), "mismatch accepted");
                    assert_eq!(s.phase(), before);
                }
                assert!(s.complete(reply).is_ok(), "fitting reply refused");
            }
            Phase::Payload => {
                // The runtime copies the rest as the unit's stdin, then reports the start.
                rest = &[];
                let r = Reply::WorkStarted {
                    unit_id: "u1".into(),
                    pending: chunk % 2 == 0,
                };
                assert!(s.complete(r).is_ok(), "start refused");
            }
            Phase::Switched | Phase::Finished => break,
        }
    }
    while s.poll_output().is_some() {}
    assert!(s.poll_action().is_none());
    assert!(s.complete(Reply::Error(String::new().into())).is_err());
}

/// The reply the runtime would give `action`, echoing its fuzz-chosen strings.
fn reply_for(action: Action) -> Reply {
    use crate::control::Command;
    let unit = |id: String| UnitStatus {
        state: (id.len() % 6) as i64,
        detail: id.clone(),
        stdout_size: id.len() as i64,
        work_type: id,
        extra_data: None,
    };
    match action {
        Command::Status { .. } => Reply::Status(Box::default()),
        Command::Reload => Reply::Reload(Ok(())),
        Command::Connect { .. } => Reply::Connected,
        Command::Work(w) => match w {
            WorkRequest::Submit(_) => Reply::WorkUnitCreated {
                unit_id: "u1".into(),
            },
            WorkRequest::List { unit_id } => {
                let mut units = BTreeMap::new();
                if let Some(id) = unit_id {
                    units.insert(id.clone(), unit(id));
                }
                Reply::WorkList(units)
            }
            WorkRequest::Status { unit_id, .. } => Reply::WorkStatus(unit(unit_id)),
            WorkRequest::Cancel { unit_id, .. } => Reply::WorkCancelled {
                pending: unit_id.len() % 2 == 0,
                unit_id,
            },
            WorkRequest::Release { unit_id, force, .. } => Reply::WorkReleased {
                unit_id,
                pending: force,
            },
            WorkRequest::Results { unit_id, .. } => Reply::WorkResults { unit_id },
        },
        Command::Ping { target } | Command::Traceroute { target } => Reply::Error(target.into()),
    }
}

/// Go's `time.ParseDuration` ([`crate::control::parse_go_duration`]) on any text (a remote
/// unit's `ttl` comes from control clients): never panics, and what it reads prints (Go's
/// `Duration.String()`) to a text that reads back to the same duration.
pub fn go_duration(data: &[u8]) {
    use crate::control::{go_duration_string, parse_go_duration};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // i64::MIN has no positive counterpart: the formatter (of a std Duration, within Go's
    // range) cannot print its magnitude.
    let Ok(nanos) = parse_go_duration(text) else {
        return;
    };
    if nanos == i64::MIN {
        return;
    }
    let printed = go_duration_string(std::time::Duration::from_nanos(nanos.unsigned_abs()));
    let signed = if nanos < 0 {
        format!("-{printed}")
    } else {
        printed
    };
    assert_eq!(
        parse_go_duration(&signed),
        Ok(nanos),
        "{text:?} printed as {signed:?}"
    );
}
