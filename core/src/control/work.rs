//! Parsing the `work` command (control-and-work.md §1.4 "work", Go `workceptor/controlsvc.go`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::command::ParseError;
use super::gofmt::{float_to_i64, parse_int, sprint_s};
use super::json::{JsonObject, JsonValue};
use super::reply::UnitStatus;

/// A `work` subcommand with its parameters.
///
/// Signatures are strings where empty means "none", as in Go (`"signature":""` and a missing
/// key behave the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkRequest {
    /// `work submit <node> <worktype> [params...]`: create a unit, then take its payload.
    Submit(WorkSubmit),
    /// `work list [unitid]`: all known units, or just one.
    List {
        /// The one unit to list. `Some("")` for `work list ` with a trailing space (Go looks up
        /// the empty ID).
        unit_id: Option<String>,
    },
    /// `work status <unitid>`.
    Status {
        /// The unit.
        unit_id: String,
        /// The JSON form's `signature` (unused by Go for status).
        signature: String,
        /// The long-poll extension (JSON form only), if asked for.
        wait: Option<StatusWait>,
    },
    /// `work cancel <unitid>`.
    Cancel {
        /// The unit.
        unit_id: String,
        /// The JSON form's `signature`, checked against the unit's work type.
        signature: String,
    },
    /// `work release <unitid>` or `work force-release <unitid>`.
    Release {
        /// The unit.
        unit_id: String,
        /// The JSON form's `signature`.
        signature: String,
        /// `force-release`: release even if the remote side cannot be reached.
        force: bool,
    },
    /// `work results <unitid> [startpos]`: stream the unit's stdout from an offset.
    Results {
        /// The unit.
        unit_id: String,
        /// Byte offset to start from (0 when omitted; may be negative, Go passes it on).
        start_pos: i64,
        /// The JSON form's `signature`.
        signature: String,
    },
}

/// The long-poll extension of the JSON `work status`, which our nodes use to follow a remote
/// unit: with the keys `waitstate` (number), `waitdetail` (string) and `waitms` (number of
/// milliseconds), the reply comes once the unit's State or Detail differ from `waitstate` /
/// `waitdetail`, or after `waitms`, whichever is first. Go's control service ignores keys it
/// does not know and answers at once, so towards Go this is an ordinary status poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusWait {
    /// The State the client knows.
    pub state: i64,
    /// The Detail the client knows.
    pub detail: String,
    /// The longest wait, in milliseconds.
    pub millis: u64,
}

/// The longest a long-polled `work status` waits, whatever the client asks.
pub const STATUS_WAIT_MAX: Duration = Duration::from_secs(30);

/// What a long-polled `work status` does with the unit as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitStep {
    /// Answer with this status.
    Answer(UnitStatus),
    /// The unit is gone (released meanwhile): answer `unknown work unit`.
    Unknown,
    /// Wait for the unit to change or the deadline, then ask again.
    Wait,
}

impl StatusWait {
    /// How long the reply may wait: the asked wait, or [`STATUS_WAIT_MAX`] if that is
    /// sooner.
    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.millis).min(STATUS_WAIT_MAX)
    }

    /// When the reply is due at the latest, for a request that arrived at `now`.
    pub fn deadline(&self, now: Instant) -> Instant {
        now + self.wait()
    }

    /// Whether `current` tells the client something new: its State or Detail differ from
    /// what the client knows.
    pub fn is_news(&self, current: &UnitStatus) -> bool {
        current.state != self.state || current.detail != self.detail
    }

    /// The rule of the long poll: `current` is the unit's status now (`None` once it is
    /// released); `timed_out`: the [`wait`](Self::wait) since the request has passed. A gone
    /// unit is unknown; news is answered at once; anything else waits until the time is up
    /// and is then answered as it is.
    pub fn step(&self, current: Option<UnitStatus>, timed_out: bool) -> WaitStep {
        match current {
            None => WaitStep::Unknown,
            Some(st) if timed_out || self.is_news(&st) => WaitStep::Answer(st),
            Some(_) => WaitStep::Wait,
        }
    }

    /// The extension's keys in `obj`, when all three are there with the right types.
    fn from_json(obj: &JsonObject) -> Option<Self> {
        let number = |k: &str| match obj.get(k) {
            Some(JsonValue::Number(f)) if f.is_finite() => Some(float_to_i64(*f)),
            _ => None,
        };
        Some(Self {
            state: number("waitstate")?,
            detail: opt_str(obj, "waitdetail")?,
            millis: u64::try_from(number("waitms")?).ok()?,
        })
    }
}

/// The parameters of `work submit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkSubmit {
    /// Target node; this node's ID or `localhost` (any case) means a local unit.
    pub node: String,
    /// The work type.
    pub work_type: String,
    /// `tlsclient` for remote work; empty for none.
    pub tls_client: String,
    /// `ttl` for remote work (a Go duration string); empty for none.
    pub ttl: String,
    /// `signwork`: only the exact string `true` sets it.
    pub sign_work: bool,
    /// `signature`; empty for none.
    pub signature: String,
    /// Every other key: the work params. The plain form has at most `params`, the remaining
    /// tokens re-joined with single spaces (absent when there are none).
    pub params: BTreeMap<String, String>,
}

/// Keys of a JSON submit that are not work params.
pub(crate) const NON_PARAMS: [&str; 8] = [
    "command",
    "subcommand",
    "node",
    "worktype",
    "tlsclient",
    "ttl",
    "signwork",
    "signature",
];

fn invalid(msg: String) -> ParseError {
    ParseError::Invalid(msg)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses the plain form: `params` is everything after `work `, split on single spaces.
pub(crate) fn parse_plain(params: &[u8]) -> Result<WorkRequest, ParseError> {
    let tokens: Vec<&[u8]> = params.split(|&b| b == b' ').collect();
    let sub = lossy(tokens.first().copied().unwrap_or_default()).to_lowercase();
    let token = |i: usize| lossy(tokens.get(i).copied().unwrap_or_default());
    match sub.as_str() {
        "submit" => {
            if tokens.len() < 3 {
                return Err(invalid(
                    "work submit requires a target node and work type".into(),
                ));
            }
            let mut submit = WorkSubmit {
                node: token(1),
                work_type: token(2),
                ..WorkSubmit::default()
            };
            if let Some(rest) = tokens.get(3..).filter(|r| !r.is_empty()) {
                let joined: Vec<String> = rest.iter().map(|t| lossy(t)).collect();
                submit.params.insert("params".into(), joined.join(" "));
            }
            Ok(WorkRequest::Submit(submit))
        }
        // Extra tokens after the unit ID are ignored by Go here.
        "list" => Ok(WorkRequest::List {
            unit_id: (tokens.len() > 1).then(|| token(1)),
        }),
        "status" | "cancel" | "release" | "force-release" => {
            if tokens.len() < 2 {
                return Err(invalid(format!("work {sub} requires a unit ID")));
            }
            if tokens.len() > 2 {
                return Err(invalid(format!(
                    "work {sub} does not take parameters after the unit ID"
                )));
            }
            Ok(unit_request(&sub, token(1), String::new(), None))
        }
        "results" => {
            if tokens.len() < 2 {
                return Err(invalid("work results requires a unit ID".into()));
            }
            if tokens.len() > 3 {
                return Err(invalid(
                    "work results only takes a unit ID and optional start position".into(),
                ));
            }
            let start_pos = match tokens.get(2) {
                None => 0,
                Some(t) => parse_int(t).map_err(|e| {
                    invalid(format!("error converting start position to integer: {e}"))
                })?,
            };
            Ok(WorkRequest::Results {
                unit_id: token(1),
                start_pos,
                signature: String::new(),
            })
        }
        _ => Err(invalid("bad command".into())),
    }
}

fn unit_request(
    sub: &str,
    unit_id: String,
    signature: String,
    wait: Option<StatusWait>,
) -> WorkRequest {
    match sub {
        "status" => WorkRequest::Status {
            unit_id,
            signature,
            wait,
        },
        "cancel" => WorkRequest::Cancel { unit_id, signature },
        _ => WorkRequest::Release {
            unit_id,
            signature,
            force: sub == "force-release",
        },
    }
}

/// Go's `strFromMap`.
fn str_field(obj: &JsonObject, name: &str) -> Result<String, ParseError> {
    match obj.get(name) {
        None => Err(invalid(format!("field {name} missing"))),
        Some(JsonValue::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(format!("field {name} must be a string"))),
    }
}

/// An optional string field: anything but a string counts as absent, as in Go.
fn opt_str(obj: &JsonObject, name: &str) -> Option<String> {
    match obj.get(name) {
        Some(JsonValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Go's `intFromMap`: numbers are truncated; a string never passes (a valid integer string
/// falls through to the "not convertible" message, an invalid one reports `strconv`'s error).
fn int_field(obj: &JsonObject, name: &str) -> Result<i64, ParseError> {
    match obj.get(name) {
        None => Err(invalid(format!("field {name} missing"))),
        Some(JsonValue::Number(f)) => Ok(float_to_i64(*f)),
        Some(v) => {
            if let JsonValue::String(s) = v
                && let Err(e) = parse_int(s.as_bytes())
            {
                return Err(invalid(e));
            }
            Err(invalid(format!(
                "field {name} value {} is not convertible to an int",
                sprint_s(v)
            )))
        }
    }
}

/// Parses the JSON form (`{"command":"work","subcommand":...}`).
pub(crate) fn parse_json(obj: &JsonObject) -> Result<WorkRequest, ParseError> {
    let sub = str_field(obj, "subcommand")?.to_lowercase();
    match sub.as_str() {
        "submit" => {
            let mut params = BTreeMap::new();
            let mut all = BTreeMap::new();
            for (k, v) in obj {
                let JsonValue::String(s) = v else {
                    return Err(invalid(format!(
                        "submit parameters must all be strings and {k} is not"
                    )));
                };
                all.insert(k.as_str(), s.as_str());
                if !NON_PARAMS.contains(&k.as_str()) {
                    params.insert(k.clone(), s.clone());
                }
            }
            let node = str_field(obj, "node")?;
            let work_type = str_field(obj, "worktype")?;
            let get = |k: &str| all.get(k).map(|s| (*s).to_owned()).unwrap_or_default();
            Ok(WorkRequest::Submit(WorkSubmit {
                node,
                work_type,
                tls_client: get("tlsclient"),
                ttl: get("ttl"),
                sign_work: all.get("signwork") == Some(&"true"),
                signature: get("signature"),
                params,
            }))
        }
        "status" | "cancel" | "release" | "force-release" => {
            let unit_id = str_field(obj, "unitid")?;
            let signature = opt_str(obj, "signature").unwrap_or_default();
            let wait = if sub == "status" {
                StatusWait::from_json(obj)
            } else {
                None
            };
            Ok(unit_request(&sub, unit_id, signature, wait))
        }
        "list" => Ok(WorkRequest::List {
            unit_id: opt_str(obj, "unitid"),
        }),
        "results" => {
            let unit_id = str_field(obj, "unitid")?;
            let start_pos = int_field(obj, "startpos")?;
            Ok(WorkRequest::Results {
                unit_id,
                start_pos,
                signature: opt_str(obj, "signature").unwrap_or_default(),
            })
        }
        _ => Err(invalid("bad command".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::command::{Command, parse_line};

    fn w(s: &str) -> Result<WorkRequest, ParseError> {
        match parse_line(s.as_bytes()) {
            Ok(Command::Work(w)) => Ok(w),
            Ok(other) => panic!("not work: {other:?}"),
            Err(e) => Err(e),
        }
    }

    fn err(s: &str) -> String {
        w(s).unwrap_err().reply()
    }

    fn submit(node: &str, wt: &str, params: &[(&str, &str)]) -> WorkSubmit {
        WorkSubmit {
            node: node.into(),
            work_type: wt.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..WorkSubmit::default()
        }
    }

    #[test]
    fn plain_submit() {
        assert_eq!(
            w("work submit node3 echosleeplong"),
            Ok(WorkRequest::Submit(submit("node3", "echosleeplong", &[])))
        );
        assert_eq!(
            w("WORK Submit localhost echo a  b"),
            Ok(WorkRequest::Submit(submit(
                "localhost",
                "echo",
                &[("params", "a  b")]
            )))
        );
        assert_eq!(
            w("work submit localhost echo "),
            Ok(WorkRequest::Submit(submit(
                "localhost",
                "echo",
                &[("params", "")]
            )))
        );
        assert_eq!(
            err("work submit node3"),
            "ERROR: work submit requires a target node and work type\n"
        );
    }

    #[test]
    fn plain_unit_commands() {
        assert_eq!(w("work list"), Ok(WorkRequest::List { unit_id: None }));
        assert_eq!(
            w("work list abc extra"),
            Ok(WorkRequest::List {
                unit_id: Some("abc".into())
            })
        );
        assert_eq!(
            w("work list "),
            Ok(WorkRequest::List {
                unit_id: Some("".into())
            })
        );
        assert_eq!(
            w("work status U1"),
            Ok(WorkRequest::Status {
                unit_id: "U1".into(),
                signature: "".into(),
                wait: None
            })
        );
        assert_eq!(
            w("work cancel U1"),
            Ok(WorkRequest::Cancel {
                unit_id: "U1".into(),
                signature: "".into()
            })
        );
        assert_eq!(
            w("work release U1"),
            Ok(WorkRequest::Release {
                unit_id: "U1".into(),
                signature: "".into(),
                force: false
            })
        );
        assert_eq!(
            w("work FORCE-RELEASE U1"),
            Ok(WorkRequest::Release {
                unit_id: "U1".into(),
                signature: "".into(),
                force: true
            })
        );
        for sub in ["status", "cancel", "release", "force-release"] {
            assert_eq!(
                err(&format!("work {sub}")),
                format!("ERROR: work {sub} requires a unit ID\n")
            );
            assert_eq!(
                err(&format!("work {sub} a b")),
                format!("ERROR: work {sub} does not take parameters after the unit ID\n")
            );
        }
        assert_eq!(
            err("work Cancel a b"),
            "ERROR: work cancel does not take parameters after the unit ID\n"
        );
        assert_eq!(err("work"), "ERROR: bad command\n");
        assert_eq!(err("work "), "ERROR: bad command\n");
        assert_eq!(err("work frobnicate x"), "ERROR: bad command\n");
    }

    #[test]
    fn plain_results() {
        let r = |pos| {
            Ok(WorkRequest::Results {
                unit_id: "U1".into(),
                start_pos: pos,
                signature: "".into(),
            })
        };
        assert_eq!(w("work results U1"), r(0));
        assert_eq!(w("work results U1 0"), r(0));
        assert_eq!(w("work results U1 42"), r(42));
        assert_eq!(
            err("work results"),
            "ERROR: work results requires a unit ID\n"
        );
        assert_eq!(
            err("work results U1 0 1"),
            "ERROR: work results only takes a unit ID and optional start position\n"
        );
        assert_eq!(
            err("work results U1 x"),
            "ERROR: error converting start position to integer: strconv.ParseInt: parsing \"x\": invalid syntax\n"
        );
        assert_eq!(
            err("work results U1 "),
            "ERROR: error converting start position to integer: strconv.ParseInt: parsing \"\": invalid syntax\n"
        );
        assert_eq!(
            err("work results U1 99999999999999999999"),
            "ERROR: error converting start position to integer: strconv.ParseInt: parsing \"99999999999999999999\": value out of range\n"
        );
    }

    #[test]
    fn json_submit() {
        // receptorctl's json.dumps spacing.
        let line = r#"{"command": "work", "subcommand": "submit", "node": "node2", "worktype": "echosleepshort", "tlsclient": "client", "ttl": "10h", "signwork": "true", "params": "", "secret_x": "s"}"#;
        assert_eq!(
            w(line),
            Ok(WorkRequest::Submit(WorkSubmit {
                node: "node2".into(),
                work_type: "echosleepshort".into(),
                tls_client: "client".into(),
                ttl: "10h".into(),
                sign_work: true,
                signature: "".into(),
                params: [
                    ("params".into(), "".into()),
                    ("secret_x".into(), "s".into())
                ]
                .into_iter()
                .collect(),
            }))
        );
        let Ok(WorkRequest::Submit(s)) = w(
            r#"{"command":"work","subcommand":"SUBMIT","node":"localhost","worktype":"echo","signwork":"True","signature":"sig"}"#,
        ) else {
            panic!()
        };
        assert!(!s.sign_work);
        assert_eq!(s.signature, "sig");
        assert!(s.params.is_empty());
        assert_eq!(
            err(
                r#"{"command":"work","subcommand":"submit","node":"n","worktype":"w","signwork":true}"#
            ),
            "ERROR: submit parameters must all be strings and signwork is not\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":"submit","worktype":"w"}"#),
            "ERROR: field node missing\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":"submit","node":"n"}"#),
            "ERROR: field worktype missing\n"
        );
    }

    #[test]
    fn json_unit_commands() {
        assert_eq!(
            err(r#"{"command":"work"}"#),
            "ERROR: field subcommand missing\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":1}"#),
            "ERROR: field subcommand must be a string\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":""}"#),
            "ERROR: bad command\n"
        );
        assert_eq!(
            w(r#"{"command":"work","subcommand":"Status","unitid":"U","signature":"S"}"#),
            Ok(WorkRequest::Status {
                unit_id: "U".into(),
                signature: "S".into(),
                wait: None
            })
        );
        // The long-poll extension; incomplete or mistyped, it is ignored (as Go ignores it).
        assert_eq!(
            w(
                r#"{"command":"work","subcommand":"status","unitid":"U","waitdetail":"Running: PID 5","waitms":1000,"waitstate":1}"#
            ),
            Ok(WorkRequest::Status {
                unit_id: "U".into(),
                signature: "".into(),
                wait: Some(StatusWait {
                    state: 1,
                    detail: "Running: PID 5".into(),
                    millis: 1000
                })
            })
        );
        for partial in [
            r#"{"command":"work","subcommand":"status","unitid":"U","waitms":1000,"waitstate":1}"#,
            r#"{"command":"work","subcommand":"status","unitid":"U","waitdetail":"","waitms":"1000","waitstate":1}"#,
            r#"{"command":"work","subcommand":"status","unitid":"U","waitdetail":"","waitms":-1,"waitstate":1}"#,
        ] {
            assert_eq!(
                w(partial),
                Ok(WorkRequest::Status {
                    unit_id: "U".into(),
                    signature: "".into(),
                    wait: None
                })
            );
        }
        assert_eq!(
            w(r#"{"command":"work","subcommand":"release","unitid":"U","signature":5}"#),
            Ok(WorkRequest::Release {
                unit_id: "U".into(),
                signature: "".into(),
                force: false
            })
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":"cancel"}"#),
            "ERROR: field unitid missing\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":"force-release","unitid":3}"#),
            "ERROR: field unitid must be a string\n"
        );
        assert_eq!(
            w(r#"{"command":"work","subcommand":"list"}"#),
            Ok(WorkRequest::List { unit_id: None })
        );
        assert_eq!(
            w(r#"{"command":"work","subcommand":"list","unitid":7}"#),
            Ok(WorkRequest::List { unit_id: None })
        );
        assert_eq!(
            w(r#"{"command":"work","subcommand":"list","unitid":"U"}"#),
            Ok(WorkRequest::List {
                unit_id: Some("U".into())
            })
        );
    }

    #[test]
    fn status_wait_answers_news_at_once_and_the_rest_at_the_deadline() {
        let t0 = Instant::now();
        let wait = StatusWait {
            state: 1,
            detail: "Running: PID 5".into(),
            millis: 1000,
        };
        assert_eq!(wait.wait(), Duration::from_secs(1));
        assert_eq!(wait.deadline(t0), t0 + Duration::from_secs(1));
        let st = |state: i64, detail: &str| UnitStatus {
            state,
            detail: detail.into(),
            ..UnitStatus::default()
        };
        let same = st(1, "Running: PID 5");
        // Nothing new: wait, until the time is up.
        assert_eq!(wait.step(Some(same.clone()), false), WaitStep::Wait);
        assert_eq!(
            wait.step(Some(same.clone()), true),
            WaitStep::Answer(same.clone())
        );
        // A new State or a new Detail: at once. StdoutSize alone is no news.
        for news in [st(2, "Running: PID 5"), st(1, "Running: PID 6")] {
            assert_eq!(wait.step(Some(news.clone()), false), WaitStep::Answer(news));
        }
        let grown = UnitStatus {
            stdout_size: 9,
            ..same.clone()
        };
        assert_eq!(wait.step(Some(grown), false), WaitStep::Wait);
        // Released: unknown, even when the time is up.
        assert_eq!(wait.step(None, false), WaitStep::Unknown);
        assert_eq!(wait.step(None, true), WaitStep::Unknown);
        // The wait is capped at 30 s.
        let long = StatusWait {
            millis: u64::MAX,
            ..wait
        };
        assert_eq!(long.wait(), STATUS_WAIT_MAX);
        assert_eq!(long.deadline(t0), t0 + STATUS_WAIT_MAX);
    }

    #[test]
    fn json_results_startpos() {
        let r = |pos| {
            Ok(WorkRequest::Results {
                unit_id: "U".into(),
                start_pos: pos,
                signature: "".into(),
            })
        };
        let line = |pos: &str| {
            format!(r#"{{"command":"work","subcommand":"results","unitid":"U","startpos":{pos}}}"#)
        };
        assert_eq!(w(&line("0")), r(0));
        assert_eq!(w(&line("12")), r(12));
        assert_eq!(w(&line("12.9")), r(12));
        assert_eq!(w(&line("-3.5")), r(-3));
        assert_eq!(w(&line("1e3")), r(1000));
        assert_eq!(
            err(&line("\"5\"")),
            "ERROR: field startpos value 5 is not convertible to an int\n"
        );
        assert_eq!(
            err(&line("\"x\"")),
            "ERROR: strconv.ParseInt: parsing \"x\": invalid syntax\n"
        );
        assert_eq!(
            err(&line("true")),
            "ERROR: field startpos value %!s(bool=true) is not convertible to an int\n"
        );
        assert_eq!(
            err(&line("null")),
            "ERROR: field startpos value %!s(<nil>) is not convertible to an int\n"
        );
        assert_eq!(
            err(&line("[1]")),
            "ERROR: field startpos value [%!s(float64=1)] is not convertible to an int\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":"results","unitid":"U"}"#),
            "ERROR: field startpos missing\n"
        );
        assert_eq!(
            err(r#"{"command":"work","subcommand":"results","startpos":0}"#),
            "ERROR: field unitid missing\n"
        );
    }
}
