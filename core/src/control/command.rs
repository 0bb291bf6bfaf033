//! Parsing one control-service command line (control-and-work.md §1.3, §1.4).
//!
//! A line starting with `{` is JSON: an object whose `command` (a string, matched
//! case-sensitively) names the command and whose other keys are its parameters. Any other line is
//! plain text: the first word, lower-cased, is the command and everything after the first space,
//! verbatim, is its parameter string.

use super::json::{JsonObject, JsonValue, parse_object};
use super::work::{self, WorkRequest};

/// A parsed control command: what the runtime must do before the session can answer.
///
/// The session hands these out as actions ([`Action`](super::Action) is the same type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `status`: report the node's status. Needs a [`StatusSnapshot`](super::StatusSnapshot).
    Status {
        /// The JSON form's `requested_fields`, in request order (duplicates and unknown names
        /// allowed); `None` means all eight fields. Only these need to be computed.
        requested_fields: Option<Vec<String>>,
    },
    /// `ping <target>`: ping a node with the maximum hops-to-live. Needs a
    /// [`PingResult`](crate::PingResult).
    Ping {
        /// The node to ping, verbatim (may be empty or `localhost`).
        target: String,
    },
    /// `traceroute <target>`: ping with hops-to-live 0, 1, 2, ... Needs every hop's
    /// [`PingResult`](crate::PingResult) in order.
    Traceroute {
        /// The node to trace, verbatim.
        target: String,
    },
    /// `connect <node> <service> [<tls>]`: dial a mesh service and bridge the session to it.
    Connect {
        /// The node to dial (`localhost` means this node).
        node: String,
        /// The service on that node.
        service: String,
        /// The `tls-client` configuration to dial with; `None` (also for an empty name) means
        /// a plain stream.
        tls: Option<String>,
    },
    /// `reload`: re-read the configuration (parameters are ignored).
    Reload,
    /// `work <subcommand> ...`: a unit-of-work request.
    Work(WorkRequest),
}

/// Why a command line produced no command. [`ParseError::reply`] is what Go writes back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The JSON was invalid or had no string `command`. Go writes this reason and then, as the
    /// empty command is unknown too, also `ERROR: Unknown command` (two lines).
    #[error("{0}")]
    Json(String),
    /// No such command.
    #[error("Unknown command")]
    Unknown,
    /// The command's parameters were rejected; the message is Go's.
    #[error("{0}")]
    Invalid(String),
}

impl ParseError {
    /// The exact bytes the control service answers with, one or two `ERROR:` lines.
    pub fn reply(&self) -> String {
        match self {
            Self::Json(reason) => format!("ERROR: {reason}\nERROR: Unknown command\n"),
            Self::Unknown => "ERROR: Unknown command\n".to_owned(),
            Self::Invalid(msg) => format!("ERROR: {msg}\n"),
        }
    }
}

fn invalid(msg: &str) -> ParseError {
    ParseError::Invalid(msg.to_owned())
}

/// Parses one command line (without its `\n`, `\r` already dropped).
pub fn parse_line(line: &[u8]) -> Result<Command, ParseError> {
    if line.first() == Some(&b'{') {
        parse_json(line)
    } else {
        parse_plain(line)
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_plain(line: &[u8]) -> Result<Command, ParseError> {
    let (word, params) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (
            line.get(..i).unwrap_or_default(),
            line.get(i + 1..).unwrap_or_default(),
        ),
        None => (line, &[][..]),
    };
    match lossy(word).to_lowercase().as_str() {
        "status" => {
            if params.is_empty() {
                Ok(Command::Status {
                    requested_fields: None,
                })
            } else {
                Err(invalid("status command does not take parameters"))
            }
        }
        "ping" => match params {
            [] => Err(invalid("no ping target")),
            _ => Ok(Command::Ping {
                target: lossy(params),
            }),
        },
        "traceroute" => match params {
            [] => Err(invalid("no traceroute target")),
            _ => Ok(Command::Traceroute {
                target: lossy(params),
            }),
        },
        "connect" => {
            let tokens: Vec<String> = params.split(|&b| b == b' ').map(lossy).collect();
            match tokens.as_slice() {
                [node, service] => Ok(connect(node, service, "")),
                [node, service, tls] => Ok(connect(node, service, tls)),
                [] | [_] => Err(invalid("no connect target")),
                _ => Err(invalid("too many parameters")),
            }
        }
        "reload" => Ok(Command::Reload),
        "work" => work::parse_plain(params).map(Command::Work),
        _ => Err(ParseError::Unknown),
    }
}

fn connect(node: &str, service: &str, tls: &str) -> Command {
    Command::Connect {
        node: node.to_owned(),
        service: service.to_owned(),
        tls: (!tls.is_empty()).then(|| tls.to_owned()),
    }
}

fn parse_json(line: &[u8]) -> Result<Command, ParseError> {
    let obj = parse_object(line).map_err(ParseError::Json)?;
    let name = match obj.get("command") {
        None => return Err(ParseError::Json("JSON did not contain a command".into())),
        Some(JsonValue::String(s)) => s.as_str(),
        Some(_) => return Err(ParseError::Json("command must be a string".into())),
    };
    match name {
        "status" => json_status(&obj),
        "ping" => json_target(&obj, "ping").map(|target| Command::Ping { target }),
        "traceroute" => {
            json_target(&obj, "traceroute").map(|target| Command::Traceroute { target })
        }
        "connect" => json_connect(&obj),
        "reload" => Ok(Command::Reload),
        "work" => work::parse_json(&obj).map(Command::Work),
        _ => Err(ParseError::Unknown),
    }
}

fn json_status(obj: &JsonObject) -> Result<Command, ParseError> {
    let requested_fields = match obj.get("requested_fields") {
        None => None,
        Some(JsonValue::Array(items)) => {
            let mut fields = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    JsonValue::String(s) => fields.push(s.clone()),
                    _ => return Err(invalid("each element of requested_fields must be a string")),
                }
            }
            Some(fields)
        }
        // Go crashes on this (an unchecked type assertion); refuse it instead.
        Some(_) => return Err(invalid("requested_fields must be an array of strings")),
    };
    Ok(Command::Status { requested_fields })
}

fn json_target(obj: &JsonObject, cmd: &str) -> Result<String, ParseError> {
    match obj.get("target") {
        None => Err(ParseError::Invalid(format!("no {cmd} target"))),
        Some(JsonValue::String(s)) => Ok(s.clone()),
        Some(_) => Err(ParseError::Invalid(format!("{cmd} target must be string"))),
    }
}

fn json_connect(obj: &JsonObject) -> Result<Command, ParseError> {
    let node = match obj.get("node") {
        None => return Err(invalid("no connect target node")),
        Some(JsonValue::String(s)) => s,
        Some(_) => return Err(invalid("connect target node must be string")),
    };
    let service = match obj.get("service") {
        None => return Err(invalid("no connect target service")),
        Some(JsonValue::String(s)) => s,
        Some(_) => return Err(invalid("connect target service must be string")),
    };
    let tls = match obj.get("tls") {
        None => "",
        Some(JsonValue::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("connect tls name must be string")),
    };
    Ok(connect(node, service, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse_line(s.as_bytes())
    }

    fn reply(s: &str) -> String {
        p(s).unwrap_err().reply()
    }

    #[test]
    fn status_plain_and_json() {
        let all = Ok(Command::Status {
            requested_fields: None,
        });
        assert_eq!(p("status"), all);
        assert_eq!(p("STATUS"), all);
        // One trailing space leaves an empty parameter string.
        assert_eq!(p("status "), all);
        assert_eq!(
            reply("status  "),
            "ERROR: status command does not take parameters\n"
        );
        assert_eq!(
            reply("status x"),
            "ERROR: status command does not take parameters\n"
        );
        assert_eq!(p(r#"{"command":"status"}"#), all);
        assert_eq!(
            p(r#"{"command":"status","requested_fields":["Version","Bogus","Version"]}"#),
            Ok(Command::Status {
                requested_fields: Some(vec!["Version".into(), "Bogus".into(), "Version".into()])
            })
        );
        assert_eq!(
            p(r#"{"command": "status", "requested_fields": []}"#),
            Ok(Command::Status {
                requested_fields: Some(vec![])
            })
        );
        assert_eq!(
            reply(r#"{"command":"status","requested_fields":["Version",1]}"#),
            "ERROR: each element of requested_fields must be a string\n"
        );
        assert_eq!(
            reply(r#"{"command":"status","requested_fields":"Version"}"#),
            "ERROR: requested_fields must be an array of strings\n"
        );
        assert_eq!(
            reply(r#"{"command":"status","requested_fields":null}"#),
            "ERROR: requested_fields must be an array of strings\n"
        );
    }

    #[test]
    fn ping_and_traceroute() {
        assert_eq!(
            p("ping node2"),
            Ok(Command::Ping {
                target: "node2".into()
            })
        );
        // The remainder after the first space is taken verbatim.
        assert_eq!(
            p("Ping  node2 x"),
            Ok(Command::Ping {
                target: " node2 x".into()
            })
        );
        assert_eq!(reply("ping"), "ERROR: no ping target\n");
        assert_eq!(reply("ping "), "ERROR: no ping target\n");
        assert_eq!(reply(r#"{"command":"ping"}"#), "ERROR: no ping target\n");
        assert_eq!(
            reply(r#"{"command":"ping","target":7}"#),
            "ERROR: ping target must be string\n"
        );
        assert_eq!(
            p(r#"{"command":"ping","target":""}"#),
            Ok(Command::Ping { target: "".into() })
        );
        assert_eq!(
            p("traceroute node7"),
            Ok(Command::Traceroute {
                target: "node7".into()
            })
        );
        assert_eq!(reply("traceroute"), "ERROR: no traceroute target\n");
        assert_eq!(
            reply(r#"{"command":"traceroute"}"#),
            "ERROR: no traceroute target\n"
        );
        assert_eq!(
            reply(r#"{"command":"traceroute","target":null}"#),
            "ERROR: traceroute target must be string\n"
        );
        assert_eq!(
            p(r#"{"command":"traceroute","target":"n"}"#),
            Ok(Command::Traceroute { target: "n".into() })
        );
    }

    #[test]
    fn connect_forms() {
        let plain = |tls: Option<&str>| {
            Ok(Command::Connect {
                node: "node2".into(),
                service: "control".into(),
                tls: tls.map(Into::into),
            })
        };
        assert_eq!(p("connect node2 control"), plain(None));
        // receptorctl always sends a third token, empty when there is no TLS client.
        assert_eq!(p("connect node2 control "), plain(None));
        assert_eq!(p("connect node2 control client"), plain(Some("client")));
        assert_eq!(reply("connect"), "ERROR: no connect target\n");
        assert_eq!(reply("connect node2"), "ERROR: no connect target\n");
        assert_eq!(reply("connect a b c d"), "ERROR: too many parameters\n");
        assert_eq!(
            reply("connect node2 control  "),
            "ERROR: too many parameters\n"
        );
        assert_eq!(
            p(r#"{"command":"connect","node":"node2","service":"control"}"#),
            plain(None)
        );
        assert_eq!(
            p(r#"{"command":"connect","node":"node2","service":"control","tls":""}"#),
            plain(None)
        );
        assert_eq!(
            p(r#"{"command":"connect","node":"node2","service":"control","tls":"client"}"#),
            plain(Some("client"))
        );
        for (json, msg) in [
            (r#"{"command":"connect"}"#, "no connect target node"),
            (
                r#"{"command":"connect","node":1}"#,
                "connect target node must be string",
            ),
            (
                r#"{"command":"connect","node":"a"}"#,
                "no connect target service",
            ),
            (
                r#"{"command":"connect","node":"a","service":[]}"#,
                "connect target service must be string",
            ),
            (
                r#"{"command":"connect","node":"a","service":"b","tls":false}"#,
                "connect tls name must be string",
            ),
        ] {
            assert_eq!(reply(json), format!("ERROR: {msg}\n"), "{json}");
        }
    }

    #[test]
    fn reload_ignores_parameters() {
        assert_eq!(p("reload"), Ok(Command::Reload));
        assert_eq!(p("reload "), Ok(Command::Reload));
        assert_eq!(p("RELOAD now please"), Ok(Command::Reload));
        assert_eq!(p(r#"{"command":"reload","x":1}"#), Ok(Command::Reload));
    }

    #[test]
    fn unknown_commands() {
        assert_eq!(reply("bogus"), "ERROR: Unknown command\n");
        assert_eq!(reply(" status"), "ERROR: Unknown command\n");
        assert_eq!(reply("statusx"), "ERROR: Unknown command\n");
        // JSON command names are case-sensitive, plain ones are not.
        assert_eq!(reply(r#"{"command":"STATUS"}"#), "ERROR: Unknown command\n");
        assert_eq!(reply(r#"{"command":""}"#), "ERROR: Unknown command\n");
    }

    #[test]
    fn json_double_error_quirk() {
        assert_eq!(
            reply(r#"{"target":"x"}"#),
            "ERROR: JSON did not contain a command\nERROR: Unknown command\n"
        );
        assert_eq!(
            reply(r#"{"command":5}"#),
            "ERROR: command must be a string\nERROR: Unknown command\n"
        );
        assert_eq!(
            reply(r#"{"command":null}"#),
            "ERROR: command must be a string\nERROR: Unknown command\n"
        );
        assert_eq!(
            reply("{bad"),
            "ERROR: invalid character 'b' looking for beginning of object key string\nERROR: Unknown command\n"
        );
        assert_eq!(
            reply(r#"{"command":"status""#),
            "ERROR: unexpected end of JSON input\nERROR: Unknown command\n"
        );
        assert_eq!(
            reply(r#"{"command":"status"} {}"#),
            "ERROR: invalid character '{' after top-level value\nERROR: Unknown command\n"
        );
    }
}
