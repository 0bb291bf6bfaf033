//! The remote-unit machine under whatever the other node and the runtime may do.

use std::time::{Duration, Instant};

use arbitrary::Unstructured;

use crate::control::{ErrorReply, Reply, UnitStatus};
use crate::stream::{DialFailure, StreamFailure};
use crate::work::RemoteExtraData;
use crate::work::remote_unit::{
    ConnId, ConnectFailure, RemoteOutput, RemoteUnit, RemoteUnitConfig,
};

/// Drives a [`RemoteUnit`] (fresh or started) with fuzz-chosen inputs: connection outcomes,
/// reply lines (well-formed ones with fuzz fields, and raw bytes), half-closes, stream ends,
/// time, cancels and releases. It must never panic, only touch connections it dialled,
/// append output contiguously, answer each command at most once, and once done ask for
/// nothing more.
#[allow(clippy::disallowed_methods)] // the harness, not the core, picks the start instant
pub fn remote_unit(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let started = u.arbitrary::<bool>().unwrap_or(false);
    let red = RemoteExtraData {
        remote_node: "C".into(),
        remote_work_type: "echo".into(),
        remote_unit_id: if started { "U1".into() } else { String::new() },
        remote_started: started,
        ..RemoteExtraData::default()
    };
    let local = i64::from(u.int_in_range(0u8..=8).unwrap_or(0));
    let state = i64::from(u.int_in_range(0u8..=4).unwrap_or(0));
    let mut now = Instant::now();
    let mut m = RemoteUnit::new(red, state, local, local, RemoteUnitConfig::default(), now);
    if started {
        let _ = m.resume(now);
    } else {
        m.start(now);
    }
    let mut h = Harness {
        open: Vec::new(),
        appended: local,
        answers_owed: u32::from(!started),
    };
    h.drain(&mut m);
    for _ in 0..200 {
        let Ok(op) = u.int_in_range(0u8..=9) else {
            break;
        };
        let conn = pick(&mut u, &h.open);
        match op {
            0 if u.arbitrary::<bool>().unwrap_or(false) => m.handle_reused(now, conn),
            0 => m.handle_connected(now, conn),
            1 => {
                let why = match u.int_in_range(0u8..=4).unwrap_or(0) {
                    0 => ConnectFailure::NoRoute,
                    1 => ConnectFailure::Timeout,
                    2 => ConnectFailure::Dial(DialFailure::Failed(
                        StreamFailure::HandshakeTimeout(Duration::from_secs(15)),
                    )),
                    3 => ConnectFailure::Dial(DialFailure::Failed(StreamFailure::Tls {
                        by_peer: true,
                        reason: "x".into(),
                    })),
                    _ => ConnectFailure::Dial(DialFailure::Closed),
                };
                m.handle_connect_failed(now, conn, why);
                // The runtime's connection is gone: nothing to close.
                h.open.retain(|c| *c != conn);
            }
            2 => {
                let bytes = u.arbitrary::<Vec<u8>>().unwrap_or_default();
                m.handle_bytes(now, conn, &bytes);
            }
            3 => {
                let line = reply(&mut u).encode();
                m.handle_bytes(now, conn, line.as_bytes());
            }
            4 => m.handle_half_closed(now, conn),
            5 => m.handle_stream_ended(now, conn),
            6 | 7 => {
                let ms = u.int_in_range(0u32..=30_000).unwrap_or(0);
                now += Duration::from_millis(u64::from(ms));
                m.handle_timeout(now);
            }
            8 => {
                let (release, force) = (
                    u.arbitrary::<bool>().unwrap_or(false),
                    u.arbitrary::<bool>().unwrap_or(false),
                );
                h.answers_owed += 1;
                m.cancel(now, release, force);
            }
            _ => {
                // The runtime may call early; nothing must change then.
                m.handle_timeout(now);
            }
        }
        h.drain(&mut m);
        if m.is_done() {
            assert_eq!(m.poll_timeout(), None, "done but wants a timer");
            assert!(h.open.is_empty(), "done with connections open");
        }
    }
}

struct Harness {
    open: Vec<ConnId>,
    appended: i64,
    answers_owed: u32,
}

impl Harness {
    fn drain(&mut self, m: &mut RemoteUnit) {
        while let Some(o) = m.poll_output() {
            match o {
                RemoteOutput::Dial(c) => {
                    assert!(!self.open.contains(&c), "{c:?} dialled twice");
                    self.open.push(c);
                }
                RemoteOutput::SendLine(c, line) => {
                    assert!(self.open.contains(&c), "line on {c:?}, not open");
                    assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
                }
                RemoteOutput::SendPayload(c) => assert!(self.open.contains(&c)),
                RemoteOutput::Close(c) | RemoteOutput::Park(c) => {
                    assert!(self.open.contains(&c), "closing {c:?}, not open");
                    self.open.retain(|x| *x != c);
                }
                RemoteOutput::AppendOutput { offset, data } => {
                    assert_eq!(offset, self.appended, "output not contiguous");
                    self.appended += data.len() as i64;
                }
                RemoteOutput::Answer(_) => {
                    assert!(self.answers_owed > 0, "answer nobody asked for");
                    self.answers_owed -= 1;
                }
                _ => {}
            }
        }
    }
}

/// One of the open connections, or one that never was.
fn pick(u: &mut Unstructured<'_>, open: &[ConnId]) -> ConnId {
    let i = u.int_in_range(0..=open.len()).unwrap_or(0);
    open.get(i).copied().unwrap_or(ConnId(99))
}

/// A well-formed reply with fuzz fields.
fn reply(u: &mut Unstructured<'_>) -> Reply {
    let id = if u.arbitrary::<bool>().unwrap_or(true) {
        "U1".to_owned()
    } else {
        "X2".to_owned()
    };
    match u.int_in_range(0u8..=8).unwrap_or(0) {
        0 => Reply::Greeting {
            node_id: if u.arbitrary::<bool>().unwrap_or(true) {
                "C".into()
            } else {
                "D".into()
            },
        },
        1 => Reply::WorkUnitCreated { unit_id: id },
        2 => Reply::WorkStarted {
            unit_id: id,
            pending: u.arbitrary().unwrap_or(false),
        },
        3 => Reply::WorkResults { unit_id: id },
        4 | 5 => Reply::WorkStatus(UnitStatus {
            state: i64::from(u.int_in_range(0u8..=5).unwrap_or(1)),
            detail: u.arbitrary().unwrap_or_default(),
            stdout_size: i64::from(u.int_in_range(0u8..=40).unwrap_or(0)),
            work_type: "echo".into(),
            extra_data: None,
        }),
        6 => Reply::WorkCancelled {
            unit_id: id,
            pending: u.arbitrary().unwrap_or(false),
        },
        7 => Reply::WorkReleased {
            unit_id: id,
            pending: u.arbitrary().unwrap_or(false),
        },
        _ => Reply::Error(if u.arbitrary::<bool>().unwrap_or(true) {
            ErrorReply::UnknownUnit { unit_id: id }
        } else {
            ErrorReply::Other(u.arbitrary().unwrap_or_default())
        }),
    }
}
