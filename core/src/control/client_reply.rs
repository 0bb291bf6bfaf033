//! The control service's replies as one typed value, both ways: [`ControlReply::encode`] writes
//! the exact line the service sends (through the `format_*` functions of the server), and
//! [`ControlReply::decode`] reads a line a control service sent back into the same value. A
//! node reads with it what the executing node of a remote unit answers (control-and-work.md
//! §2.6), which may be Go receptor: the decoder accepts Go's wording where it differs from
//! ours only in what Go's own client ignores.
//!
//! ```
//! use receptor_core::control::{ControlReply, ErrorReply};
//!
//! let line = ControlReply::Error(ErrorReply::UnknownUnit { unit_id: "Ab12".into() }).encode();
//! assert_eq!(line, "ERROR: unknown work unit Ab12\n");
//! assert_eq!(
//!     ControlReply::decode(&line),
//!     Ok(ControlReply::Error(ErrorReply::UnknownUnit { unit_id: "Ab12".into() }))
//! );
//! assert_eq!(
//!     ControlReply::decode("{\"release pending\":\"Ab12\"}\n"),
//!     Ok(ControlReply::WorkReleased { unit_id: "Ab12".into(), pending: true })
//! );
//! ```

use serde::Deserialize;
use serde_json::value::RawValue;

use super::reply::{
    UnitStatus, error_line, format_cancelled, format_released, format_submitted,
    format_unit_status, greeting, streaming_results, work_unit_created,
};
use crate::work::remote::submitted_unit_id;

const GREETING_PREFIX: &str = "Receptor Control, node ";
const STREAMING_PREFIX: &str = "Streaming results for work unit ";
const UNKNOWN_UNIT_PREFIX: &str = "unknown work unit ";

/// The message of an `ERROR:` reply, by what a client does about it.
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

/// One reply line of a control service, as far as a client acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlReply {
    /// The greeting that opens every session.
    Greeting {
        /// The node the service belongs to.
        node_id: String,
    },
    /// `ERROR: <message>`.
    Error(ErrorReply),
    /// `work submit`: the unit exists; the client sends the payload and half-closes.
    WorkUnitCreated {
        /// The new unit's ID.
        unit_id: String,
    },
    /// `work submit` after the payload: the unit started (`pending`: `Job Submitted`, the
    /// start waits for a node further on).
    WorkStarted {
        /// The unit's ID.
        unit_id: String,
        /// `Job Submitted` rather than `Job Started`.
        pending: bool,
    },
    /// `work results`: raw stdout follows until the stream ends.
    StreamingResults {
        /// The unit's ID.
        unit_id: String,
    },
    /// `work status` (plain or long-poll).
    WorkStatus(UnitStatus),
    /// `work cancel`.
    WorkCancelled {
        /// The unit's ID.
        unit_id: String,
        /// `cancel pending`: the node has not heard from its own remote side yet.
        pending: bool,
    },
    /// `work release` / `work force-release`.
    WorkReleased {
        /// The unit's ID.
        unit_id: String,
        /// `release pending`: the node has not heard from its own remote side yet.
        pending: bool,
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

impl ControlReply {
    /// The exact line the control service writes for this reply, `\n` included.
    pub fn encode(&self) -> String {
        match self {
            Self::Greeting { node_id } => greeting(node_id),
            Self::Error(e) => error_line(&e.to_string()),
            Self::WorkUnitCreated { unit_id } => work_unit_created(unit_id),
            Self::WorkStarted { unit_id, pending } => format_submitted(unit_id, *pending),
            Self::StreamingResults { unit_id } => streaming_results(unit_id),
            Self::WorkStatus(s) => format_unit_status(s),
            Self::WorkCancelled { unit_id, pending } => format_cancelled(unit_id, *pending),
            Self::WorkReleased { unit_id, pending } => format_released(unit_id, *pending),
        }
    }

    /// Reads one reply line (with or without its line end).
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
        if let Some(unit_id) = text.strip_prefix(STREAMING_PREFIX) {
            return Ok(Self::StreamingResults {
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

fn decode_json(text: &str) -> Result<ControlReply, ReplyDecodeError> {
    let bad = |e: serde_json::Error| ReplyDecodeError::Json {
        reason: e.to_string(),
        line: text.to_owned(),
    };
    let unrecognised = || ReplyDecodeError::Unrecognised(text.to_owned());
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(bad)?;
    if map.contains_key("State") {
        let s: StatusWire<'_> = serde_json::from_str(text).map_err(bad)?;
        return Ok(ControlReply::WorkStatus(UnitStatus {
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
        return Ok(ControlReply::WorkStarted { unit_id, pending });
    }
    if map.len() != 1 {
        return Err(unrecognised());
    }
    let (key, value) = map.iter().next().ok_or_else(unrecognised)?;
    let unit_id = value.as_str().ok_or_else(unrecognised)?.to_owned();
    Ok(match key.as_str() {
        "cancelled" => ControlReply::WorkCancelled {
            unit_id,
            pending: false,
        },
        "cancel pending" => ControlReply::WorkCancelled {
            unit_id,
            pending: true,
        },
        "released" => ControlReply::WorkReleased {
            unit_id,
            pending: false,
        },
        "release pending" => ControlReply::WorkReleased {
            unit_id,
            pending: true,
        },
        _ => return Err(unrecognised()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ControlReply> {
        let id = || "Ab12cd34".to_owned();
        vec![
            ControlReply::Greeting {
                node_id: "node-1.x".into(),
            },
            ControlReply::Error(ErrorReply::UnknownUnit { unit_id: id() }),
            ControlReply::Error(ErrorReply::Other(
                "could not verify signature: \"bad\"".into(),
            )),
            ControlReply::WorkUnitCreated { unit_id: id() },
            ControlReply::WorkStarted {
                unit_id: id(),
                pending: false,
            },
            ControlReply::WorkStarted {
                unit_id: id(),
                pending: true,
            },
            ControlReply::StreamingResults { unit_id: id() },
            ControlReply::WorkStatus(UnitStatus {
                state: 1,
                detail: "Running: PID 42 \"quoted\" <tag>".into(),
                stdout_size: 12345,
                work_type: "echo".into(),
                extra_data: Some(r#"{"Pid":42,"Params":"-n 1"}"#.into()),
            }),
            ControlReply::WorkStatus(UnitStatus {
                state: 3,
                detail: String::new(),
                stdout_size: 0,
                work_type: "remote".into(),
                extra_data: None,
            }),
            ControlReply::WorkCancelled {
                unit_id: id(),
                pending: false,
            },
            ControlReply::WorkCancelled {
                unit_id: id(),
                pending: true,
            },
            ControlReply::WorkReleased {
                unit_id: id(),
                pending: false,
            },
            ControlReply::WorkReleased {
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
            assert_eq!(ControlReply::decode(&line), Ok(r.clone()), "{line}");
            // Without the line end (and with Windows's) too.
            assert_eq!(ControlReply::decode(line.trim_end()), Ok(r.clone()));
            let crlf = format!("{}\r\n", line.trim_end());
            assert_eq!(ControlReply::decode(&crlf), Ok(r));
        }
    }

    #[test]
    fn go_wording() {
        // Go's status reply (its field order, StateName included).
        let go = r#"{"Detail":"exit status 0","ExtraData":null,"State":2,"StateName":"Succeeded","StdoutSize":6,"WorkType":"echo"}"#;
        assert_eq!(
            ControlReply::decode(go),
            Ok(ControlReply::WorkStatus(UnitStatus {
                state: 2,
                detail: "exit status 0".into(),
                stdout_size: 6,
                work_type: "echo".into(),
                extra_data: None,
            }))
        );
        // Missing fields are Go's zero values.
        assert!(matches!(
            ControlReply::decode(r#"{"State":1}"#),
            Ok(ControlReply::WorkStatus(UnitStatus {
                state: 1,
                stdout_size: 0,
                ..
            }))
        ));
        assert_eq!(
            ControlReply::decode("ERROR unknown work unit x"),
            Ok(ControlReply::Error(ErrorReply::UnknownUnit {
                unit_id: "x".into()
            }))
        );
        assert_eq!(
            ControlReply::decode("ERROR: unknown work unit "),
            Ok(ControlReply::Error(ErrorReply::Other(
                "unknown work unit".into()
            )))
        );
        assert_eq!(
            ControlReply::decode("Work unit created with ID Q1. Send stdin data and EOF."),
            Ok(ControlReply::WorkUnitCreated {
                unit_id: "Q1".into()
            })
        );
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        for line in ["", "hello", "Work unit created with ID .", "{\"x\":\"y\"}"] {
            assert!(
                matches!(
                    ControlReply::decode(line),
                    Err(ReplyDecodeError::Unrecognised(_))
                ),
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
                matches!(
                    ControlReply::decode(line),
                    Err(ReplyDecodeError::Json { .. })
                ),
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
                matches!(
                    ControlReply::decode(line),
                    Err(ReplyDecodeError::Unrecognised(_))
                ),
                "{line}"
            );
        }
    }
}
