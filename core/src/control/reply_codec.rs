//! The control service's replies as one typed value, both ways.
//!
//! [`Reply`] is what the runtime answers an [`Action`](super::Action) with, and what a client
//! reads back: [`Reply::encode`] writes the exact line the service sends (through the
//! `format_*` functions, so the bytes are written in one place), and [`Reply::decode`] reads a
//! line a control service sent into the same value. A node reads with it what the executing
//! node of a remote unit answers (control-and-work.md §2.6), which may be Go receptor: the
//! decoder accepts Go's wording where it differs from ours only in what Go's own client
//! ignores.
//!
//! The replies a node never reads (`status`, `ping`, `traceroute`, `reload`, `work list`: only
//! receptorctl does) are encoded only; [`Reply::decode`] refuses their lines with
//! [`ReplyDecodeError::Unrecognised`] rather than mistake them for another reply. For every
//! other reply `decode(encode(x)) == x` (tested below and fuzzed by `remote_reply`).
//!
//! ```
//! use receptor_core::control::{ErrorReply, Reply};
//!
//! let line = Reply::Error(ErrorReply::UnknownUnit { unit_id: "Ab12".into() }).encode();
//! assert_eq!(line, "ERROR: unknown work unit Ab12\n");
//! assert_eq!(
//!     Reply::decode(&line),
//!     Ok(Reply::Error(ErrorReply::UnknownUnit { unit_id: "Ab12".into() }))
//! );
//! assert_eq!(
//!     Reply::decode("{\"release pending\":\"Ab12\"}\n"),
//!     Ok(Reply::WorkReleased { unit_id: "Ab12".into(), pending: true })
//! );
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::reply::{
    CONNECTING, ReloadError, StatusSnapshot, UnitStatus, error_line, format_cancelled, format_ping,
    format_released, format_reload, format_status, format_submitted, format_traceroute,
    format_unit_list, format_unit_status, greeting, streaming_results, work_unit_created,
};
use crate::ping::PingResult;
use crate::work::WorkError;
use crate::work::remote::submitted_unit_id;

const GREETING_PREFIX: &str = "Receptor Control, node ";
const STREAMING_PREFIX: &str = "Streaming results for work unit ";
const UNKNOWN_UNIT_PREFIX: &str = "unknown work unit ";

/// The message of an `ERROR:` reply, by what a client does about it.
///
/// Build it from a message with [`ErrorReply::from_message`] (or `From<String>` / `From<&str>`,
/// which do the same), so a message a client recognises is always typed as such: `Other`
/// never holds a message that `from_message` would classify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorReply {
    /// The service does not know the unit (released there, or never made): Go's
    /// `unknown work unit <id>`.
    #[error("unknown work unit {unit_id}")]
    UnknownUnit {
        /// The unit asked about.
        unit_id: String,
    },
    /// Any other failure, in the service's words.
    #[error("{0}")]
    Other(String),
}

impl ErrorReply {
    /// Reads an error message (what follows `ERROR: `).
    pub fn from_message(msg: &str) -> Self {
        match msg.strip_prefix(UNKNOWN_UNIT_PREFIX) {
            Some(id) if !id.is_empty() => Self::UnknownUnit {
                unit_id: id.to_owned(),
            },
            _ => Self::Other(msg.to_owned()),
        }
    }
}

impl From<String> for ErrorReply {
    fn from(msg: String) -> Self {
        match msg.strip_prefix(UNKNOWN_UNIT_PREFIX) {
            Some(id) if !id.is_empty() => Self::UnknownUnit {
                unit_id: id.to_owned(),
            },
            _ => Self::Other(msg),
        }
    }
}

impl From<&str> for ErrorReply {
    fn from(msg: &str) -> Self {
        Self::from_message(msg)
    }
}

impl From<WorkError> for ErrorReply {
    fn from(e: WorkError) -> Self {
        match e {
            WorkError::UnknownUnit(unit_id) => Self::UnknownUnit { unit_id },
            other => Self::from(other.to_string()),
        }
    }
}

/// One reply of a control service: the runtime's answer to an [`Action`](super::Action), and
/// a line a client reads.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// The greeting that opens every session (the session writes it itself; it is no answer
    /// to an action).
    Greeting {
        /// The node the service belongs to.
        node_id: String,
    },
    /// Any action failed: `ERROR: <message>`. After a failed `work submit` payload or start, the
    /// session ends; otherwise it reads the next command.
    Error(ErrorReply),
    /// For [`Command::Status`](super::Command::Status): the snapshot (the session applies
    /// `requested_fields`). Encoded only.
    Status(Box<StatusSnapshot>),
    /// For [`Command::Ping`](super::Command::Ping): the outcome (failures are JSON too, not
    /// `ERROR:` lines). Encoded only.
    Ping(PingResult),
    /// For [`Command::Traceroute`](super::Command::Traceroute): every hop in order, the
    /// failing one (if any) last. Encoded only.
    Traceroute(Vec<PingResult>),
    /// For [`Command::Reload`](super::Command::Reload). Encoded only.
    Reload(Result<(), ReloadError>),
    /// For [`Command::Connect`](super::Command::Connect): the stream is dialled; the session
    /// switches to bridging.
    Connected,
    /// For `work submit`: the unit exists; the session asks for the payload (and the client
    /// sends it and half-closes).
    WorkUnitCreated {
        /// The new unit's ID.
        unit_id: String,
    },
    /// For `work submit` in [`Phase::Payload`](super::Phase::Payload): the worker started
    /// (`pending`: `Job Submitted`, the start waits for a node further on, e.g. the remote
    /// node is not reachable yet).
    WorkStarted {
        /// The unit's ID.
        unit_id: String,
        /// `Job Submitted` instead of `Job Started`.
        pending: bool,
    },
    /// For `work list`. Encoded only.
    WorkList(BTreeMap<String, UnitStatus>),
    /// For `work status` (plain or long-poll).
    WorkStatus(UnitStatus),
    /// For `work cancel`.
    WorkCancelled {
        /// The unit's ID.
        unit_id: String,
        /// `cancel pending` instead of `cancelled`: the node has not heard from its own remote
        /// side yet.
        pending: bool,
    },
    /// For `work release` and `work force-release`.
    WorkReleased {
        /// The unit's ID.
        unit_id: String,
        /// `release pending` instead of `released`: the node has not heard from its own
        /// remote side yet.
        pending: bool,
    },
    /// For `work results`: the stream is ready; the session switches to streaming, and raw
    /// stdout follows until the stream ends.
    WorkResults {
        /// The unit's ID.
        unit_id: String,
    },
}

/// Why a reply line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyDecodeError {
    /// The line is none of the replies a client expects.
    #[error("unrecognised reply: {0}")]
    Unrecognised(String),
    /// A JSON reply that is not valid, or whose fields have the wrong types.
    #[error("malformed JSON reply ({reason}): {line}")]
    Json {
        /// What the JSON decoder said.
        reason: String,
        /// The line.
        line: String,
    },
}

/// Go's `StatusFileData` as a `work status` reply carries it (its `StateName` is derived).
#[derive(Deserialize)]
struct StatusWire<'a> {
    #[serde(rename = "State", default)]
    state: i64,
    #[serde(rename = "Detail", default)]
    detail: String,
    #[serde(rename = "StdoutSize", default)]
    stdout_size: i64,
    #[serde(rename = "WorkType", default)]
    work_type: String,
    #[serde(rename = "ExtraData", borrow, default)]
    extra_data: Option<&'a RawValue>,
}

impl Reply {
    /// The exact line the control service writes for this reply, `\n` included. A `status`
    /// reply has every field here; the session writes only the requested ones.
    pub fn encode(&self) -> String {
        match self {
            Self::Greeting { node_id } => greeting(node_id),
            Self::Error(e) => error_line(&e.to_string()),
            Self::Status(snap) => format_status(snap, None),
            Self::Ping(r) => format_ping(r),
            Self::Traceroute(hops) => format_traceroute(hops),
            Self::Reload(r) => format_reload(r.as_ref().map(|_| ())),
            Self::Connected => CONNECTING.to_owned(),
            Self::WorkUnitCreated { unit_id } => work_unit_created(unit_id),
            Self::WorkStarted { unit_id, pending } => format_submitted(unit_id, *pending),
            Self::WorkList(units) => format_unit_list(units),
            Self::WorkStatus(s) => format_unit_status(s),
            Self::WorkCancelled { unit_id, pending } => format_cancelled(unit_id, *pending),
            Self::WorkReleased { unit_id, pending } => format_released(unit_id, *pending),
            Self::WorkResults { unit_id } => streaming_results(unit_id),
        }
    }

    /// Reads one reply line (with or without its line end). The replies that are encoded
    /// only (see the module doc) are [`ReplyDecodeError::Unrecognised`].
    pub fn decode(line: &str) -> Result<Self, ReplyDecodeError> {
        let text = line.trim_end_matches(['\n', '\r']);
        // Go's client looks at the first five bytes only.
        if let Some(rest) = text.strip_prefix("ERROR") {
            let msg = rest.strip_prefix(':').unwrap_or(rest).trim();
            return Ok(Self::Error(ErrorReply::from_message(msg)));
        }
        if text.starts_with('{') {
            return decode_json(text);
        }
        if text == CONNECTING.trim_end() {
            return Ok(Self::Connected);
        }
        if let Some(unit_id) = text.strip_prefix(STREAMING_PREFIX) {
            return Ok(Self::WorkResults {
                unit_id: unit_id.to_owned(),
            });
        }
        if let Some(node_id) = text.strip_prefix(GREETING_PREFIX) {
            return Ok(Self::Greeting {
                node_id: node_id.to_owned(),
            });
        }
        // Go's client finds the ID with a regex anywhere in the line.
        if let Some(unit_id) = submitted_unit_id(text) {
            return Ok(Self::WorkUnitCreated {
                unit_id: unit_id.to_owned(),
            });
        }
        Err(ReplyDecodeError::Unrecognised(text.to_owned()))
    }
}

fn decode_json(text: &str) -> Result<Reply, ReplyDecodeError> {
    let bad = |e: serde_json::Error| ReplyDecodeError::Json {
        reason: e.to_string(),
        line: text.to_owned(),
    };
    let unrecognised = || ReplyDecodeError::Unrecognised(text.to_owned());
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(bad)?;
    if map.contains_key("State") {
        let s: StatusWire<'_> = serde_json::from_str(text).map_err(bad)?;
        return Ok(Reply::WorkStatus(UnitStatus {
            state: s.state,
            detail: s.detail,
            stdout_size: s.stdout_size,
            work_type: s.work_type,
            extra_data: s
                .extra_data
                .map(|r| r.get().to_owned())
                .filter(|r| r != "null"),
        }));
    }
    let text_of = |key: &str| map.get(key).and_then(serde_json::Value::as_str);
    if let Some(result) = text_of("result") {
        let pending = match result {
            "Job Started" => false,
            "Job Submitted" => true,
            _ => return Err(unrecognised()),
        };
        let unit_id = text_of("unitid").ok_or_else(unrecognised)?.to_owned();
        return Ok(Reply::WorkStarted { unit_id, pending });
    }
    if map.len() != 1 {
        return Err(unrecognised());
    }
    let (key, value) = map.iter().next().ok_or_else(unrecognised)?;
    let unit_id = value.as_str().ok_or_else(unrecognised)?.to_owned();
    Ok(match key.as_str() {
        "cancelled" => Reply::WorkCancelled {
            unit_id,
            pending: false,
        },
        "cancel pending" => Reply::WorkCancelled {
            unit_id,
            pending: true,
        },
        "released" => Reply::WorkReleased {
            unit_id,
            pending: false,
        },
        "release pending" => Reply::WorkReleased {
            unit_id,
            pending: true,
        },
        _ => return Err(unrecognised()),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn all() -> Vec<Reply> {
        let id = || "Ab12cd34".to_owned();
        vec![
            Reply::Greeting {
                node_id: "node-1.x".into(),
            },
            Reply::Error(ErrorReply::UnknownUnit { unit_id: id() }),
            Reply::Error(ErrorReply::Other(
                "could not verify signature: \"bad\"".into(),
            )),
            Reply::Connected,
            Reply::WorkUnitCreated { unit_id: id() },
            Reply::WorkStarted {
                unit_id: id(),
                pending: false,
            },
            Reply::WorkStarted {
                unit_id: id(),
                pending: true,
            },
            Reply::WorkResults { unit_id: id() },
            Reply::WorkStatus(UnitStatus {
                state: 1,
                detail: "Running: PID 42 \"quoted\" <tag>".into(),
                stdout_size: 12345,
                work_type: "echo".into(),
                extra_data: Some(r#"{"Pid":42,"Params":"-n 1"}"#.into()),
            }),
            Reply::WorkStatus(UnitStatus {
                state: 3,
                detail: String::new(),
                stdout_size: 0,
                work_type: "remote".into(),
                extra_data: None,
            }),
            Reply::WorkCancelled {
                unit_id: id(),
                pending: false,
            },
            Reply::WorkCancelled {
                unit_id: id(),
                pending: true,
            },
            Reply::WorkReleased {
                unit_id: id(),
                pending: false,
            },
            Reply::WorkReleased {
                unit_id: id(),
                pending: true,
            },
        ]
    }

    #[test]
    fn every_reply_round_trips() {
        for r in all() {
            let line = r.encode();
            assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
            assert_eq!(Reply::decode(&line), Ok(r.clone()), "{line}");
            // Without the line end (and with Windows's) too.
            assert_eq!(Reply::decode(line.trim_end()), Ok(r.clone()));
            let crlf = format!("{}\r\n", line.trim_end());
            assert_eq!(Reply::decode(&crlf), Ok(r));
        }
    }

    #[test]
    fn go_wording() {
        // Go's status reply (its field order, StateName included).
        let go = r#"{"Detail":"exit status 0","ExtraData":null,"State":2,"StateName":"Succeeded","StdoutSize":6,"WorkType":"echo"}"#;
        assert_eq!(
            Reply::decode(go),
            Ok(Reply::WorkStatus(UnitStatus {
                state: 2,
                detail: "exit status 0".into(),
                stdout_size: 6,
                work_type: "echo".into(),
                extra_data: None,
            }))
        );
        // Missing fields are Go's zero values.
        assert!(matches!(
            Reply::decode(r#"{"State":1}"#),
            Ok(Reply::WorkStatus(UnitStatus {
                state: 1,
                stdout_size: 0,
                ..
            }))
        ));
        assert_eq!(
            Reply::decode("ERROR unknown work unit x"),
            Ok(Reply::Error(ErrorReply::UnknownUnit {
                unit_id: "x".into()
            }))
        );
        assert_eq!(
            Reply::decode("ERROR: unknown work unit "),
            Ok(Reply::Error(ErrorReply::Other("unknown work unit".into())))
        );
        assert_eq!(
            Reply::decode("Work unit created with ID Q1. Send stdin data and EOF."),
            Ok(Reply::WorkUnitCreated {
                unit_id: "Q1".into()
            })
        );
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        for line in ["", "hello", "Work unit created with ID .", "{\"x\":\"y\"}"] {
            assert!(
                matches!(Reply::decode(line), Err(ReplyDecodeError::Unrecognised(_))),
                "{line}"
            );
        }
        for line in [
            "{",
            r#"{"State":"1"}"#,
            r#"{"State":1,"StdoutSize":1.5}"#,
            r#"{"State":1,"Detail":3}"#,
        ] {
            assert!(
                matches!(Reply::decode(line), Err(ReplyDecodeError::Json { .. })),
                "{line}"
            );
        }
        for line in [
            r#"{"result":"Job Done","unitid":"x"}"#,
            r#"{"result":"Job Started"}"#,
            r#"{"cancelled":1}"#,
            r#"{"cancelled":"a","released":"b"}"#,
        ] {
            assert!(
                matches!(Reply::decode(line), Err(ReplyDecodeError::Unrecognised(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn encode_only_replies_are_not_mistaken_for_others() {
        let ping = PingResult {
            from: crate::NodeId::new("B").ok(),
            rtt: std::time::Duration::from_micros(1500),
            error: None,
        };
        let failed = PingResult {
            from: None,
            rtt: std::time::Duration::ZERO,
            error: Some("no route".into()),
        };
        let one = |id: &str| {
            BTreeMap::from([(
                id.to_owned(),
                UnitStatus {
                    state: 2,
                    ..UnitStatus::default()
                },
            )])
        };
        for r in [
            Reply::Status(Box::default()),
            Reply::Ping(ping.clone()),
            Reply::Ping(failed.clone()),
            Reply::Traceroute(vec![ping, failed]),
            Reply::Reload(Ok(())),
            Reply::Reload(Err(ReloadError {
                message: "bad".into(),
                code: 4,
            })),
            Reply::WorkList(BTreeMap::new()),
            Reply::WorkList(one("Ab12")),
            // Unit IDs that are keys of other replies.
            Reply::WorkList(one("cancelled")),
            Reply::WorkList(one("State")),
        ] {
            let line = r.encode();
            assert!(line.ends_with('\n'), "{line}");
            assert!(
                matches!(
                    Reply::decode(&line),
                    Err(ReplyDecodeError::Unrecognised(_) | ReplyDecodeError::Json { .. })
                ),
                "{line}"
            );
        }
    }

    #[test]
    fn errors_are_typed_however_they_are_made() {
        let unknown = ErrorReply::UnknownUnit {
            unit_id: "U1".into(),
        };
        assert_eq!(ErrorReply::from("unknown work unit U1"), unknown);
        assert_eq!(ErrorReply::from("unknown work unit U1".to_owned()), unknown);
        assert_eq!(
            ErrorReply::from(WorkError::UnknownUnit("U1".into())),
            unknown
        );
        assert_eq!(
            ErrorReply::from(WorkError::Duplicate("U1".into())),
            ErrorReply::Other("work unit U1 already exists".into())
        );
        assert_eq!(
            ErrorReply::from("unknown work unit ".to_owned()),
            ErrorReply::Other("unknown work unit ".into())
        );
    }

    fn status() -> impl Strategy<Value = UnitStatus> {
        (
            any::<i64>(),
            any::<String>(),
            any::<i64>(),
            any::<String>(),
            prop_oneof![
                Just(None),
                Just(Some(r#"{"Pid":42,"Params":"-n 1"}"#.to_owned())),
                Just(Some(r#"{"RemoteNode":"C","RemoteParams":{}}"#.to_owned())),
            ],
        )
            .prop_map(
                |(state, detail, stdout_size, work_type, extra_data)| UnitStatus {
                    state,
                    detail,
                    stdout_size,
                    work_type,
                    extra_data,
                },
            )
    }

    /// Every reply a client reads, with generated fields.
    fn readable() -> impl Strategy<Value = Reply> {
        let id = "[0-9A-Za-z]{1,12}";
        prop_oneof![
            "[A-Za-z0-9._-]{1,20}".prop_map(|node_id| Reply::Greeting { node_id }),
            // What a message reads as once the line is split off and trimmed.
            "[^\r\n]*".prop_map(|m| Reply::Error(ErrorReply::from(m.trim()))),
            id.prop_map(|unit_id| Reply::Error(ErrorReply::UnknownUnit { unit_id })),
            Just(Reply::Connected),
            id.prop_map(|unit_id| Reply::WorkUnitCreated { unit_id }),
            (id, any::<bool>())
                .prop_map(|(unit_id, pending)| Reply::WorkStarted { unit_id, pending }),
            status().prop_map(Reply::WorkStatus),
            (id, any::<bool>())
                .prop_map(|(unit_id, pending)| Reply::WorkCancelled { unit_id, pending }),
            (id, any::<bool>())
                .prop_map(|(unit_id, pending)| Reply::WorkReleased { unit_id, pending }),
            id.prop_map(|unit_id| Reply::WorkResults { unit_id }),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(r in readable()) {
            let line = r.encode();
            prop_assert!(line.ends_with('\n'));
            prop_assert_eq!(line.matches('\n').count(), 1, "{}", line);
            prop_assert_eq!(Reply::decode(&line), Ok(r));
        }

        /// Whatever decodes, encodes to a line that decodes the same (the fuzz target's
        /// property, on arbitrary text).
        #[test]
        fn decoded_lines_re_encode(line in any::<String>()) {
            if let Ok(r) = Reply::decode(&line) {
                prop_assert_eq!(Reply::decode(&r.encode()), Ok(r));
            }
        }
    }
}
