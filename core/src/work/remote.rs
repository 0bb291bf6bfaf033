//! Remote units (control-and-work.md §2.6), the parts without I/O: the `ExtraData` of a
//! `remote` unit ([`RemoteExtraData`], Go's `RemoteExtraData` in field order) and the exact
//! control-protocol lines a node sends to the executing node's control service.
//!
//! ```
//! use std::collections::BTreeMap;
//! use receptor_core::work::remote::{submit_command, submitted_unit_id, unit_command};
//!
//! let params = BTreeMap::from([("params".to_owned(), "-n 5".to_owned())]);
//! assert_eq!(
//!     submit_command(&params, "node2", "echo", "", None),
//!     "{\"command\":\"work\",\"node\":\"node2\",\"params\":\"-n 5\",\"subcommand\":\"submit\",\
//!      \"tlsclient\":\"\",\"worktype\":\"echo\"}\n"
//! );
//! assert_eq!(
//!     submitted_unit_id("Work unit created with ID Ab12cd34. Send stdin data and EOF.\n"),
//!     Some("Ab12cd34")
//! );
//! assert_eq!(
//!     unit_command("release", "Ab12cd34", None),
//!     "{\"command\":\"work\",\"subcommand\":\"release\",\"unitid\":\"Ab12cd34\"}\n"
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::status::StatusDecodeError;
use crate::wire::{UnixNanos, format_rfc3339_nano, parse_rfc3339, write_str};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix nanoseconds.
pub const ZERO_TIME: UnixNanos = -62_135_596_800 * 1_000_000_000;

/// `ExtraData` of a `remote` unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteExtraData {
    /// The node that runs the work.
    pub remote_node: String,
    /// The work type there.
    pub remote_work_type: String,
    /// Every work param submitted, secrets included (replies hide `secret_*`).
    pub remote_params: BTreeMap<String, String>,
    /// The unit's ID on the remote node, once known.
    pub remote_unit_id: String,
    /// The remote node accepted the unit and its payload.
    pub remote_started: bool,
    /// Cancelled here (the remote side may still have to hear about it).
    pub local_cancelled: bool,
    /// Released here (the remote side may still have to hear about it).
    pub local_released: bool,
    /// Commands sent for this unit carry a signature.
    pub sign_work: bool,
    /// `tls-client` config for the connection to the remote control service; empty for none.
    pub tls_client: String,
    /// When an unstarted unit gives up (`ttl`); `None` is Go's zero time (no limit).
    pub expiration: Option<UnixNanos>,
}

impl RemoteExtraData {
    /// The JSON object in Go's field order; with `redact`, `RemoteParams` without keys that
    /// start with `secret_` (any case), as `work status` / `work list` show it.
    pub fn write_json(&self, out: &mut String, redact: bool) {
        out.push_str("{\"RemoteNode\":");
        write_str(out, &self.remote_node);
        out.push_str(",\"RemoteWorkType\":");
        write_str(out, &self.remote_work_type);
        out.push_str(",\"RemoteParams\":{");
        let mut first = true;
        for (k, v) in &self.remote_params {
            if redact && is_secret(k) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            write_str(out, k);
            out.push(':');
            write_str(out, v);
        }
        out.push_str("},\"RemoteUnitID\":");
        write_str(out, &self.remote_unit_id);
        let _ = write!(
            out,
            ",\"RemoteStarted\":{},\"LocalCancelled\":{},\"LocalReleased\":{},\"SignWork\":{},\
             \"TLSClient\":",
            self.remote_started, self.local_cancelled, self.local_released, self.sign_work
        );
        write_str(out, &self.tls_client);
        out.push_str(",\"Expiration\":");
        write_str(
            out,
            &format_rfc3339_nano(self.expiration.unwrap_or(ZERO_TIME)),
        );
        out.push('}');
    }

    /// Reads a JSON object over this data as Go's decoder does into the struct: keys match
    /// fields case-insensitively, absent keys and `null` scalars leave fields alone, params
    /// are added to the map (`null` empties it). Returns the first type mismatch after
    /// applying everything else.
    pub fn merge(&mut self, obj: serde_json::Map<String, Value>) -> Result<(), StatusDecodeError> {
        let mut first_err: Option<StatusDecodeError> = None;
        for (key, v) in obj {
            let r = match key.to_ascii_lowercase().as_str() {
                "remotenode" => set_text(&mut self.remote_node, "RemoteNode", &v),
                "remoteworktype" => set_text(&mut self.remote_work_type, "RemoteWorkType", &v),
                "remoteunitid" => set_text(&mut self.remote_unit_id, "RemoteUnitID", &v),
                "tlsclient" => set_text(&mut self.tls_client, "TLSClient", &v),
                "remotestarted" => set_flag(&mut self.remote_started, "RemoteStarted", &v),
                "localcancelled" => set_flag(&mut self.local_cancelled, "LocalCancelled", &v),
                "localreleased" => set_flag(&mut self.local_released, "LocalReleased", &v),
                "signwork" => set_flag(&mut self.sign_work, "SignWork", &v),
                "remoteparams" => self.merge_params(&v),
                "expiration" => match &v {
                    Value::Null => Ok(()),
                    Value::String(s) => match parse_rfc3339(s) {
                        Some(t) => {
                            self.expiration = (t != ZERO_TIME).then_some(t);
                            Ok(())
                        }
                        None => Err(StatusDecodeError::new(format!(
                            "parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse"
                        ))),
                    },
                    other => Err(mismatch("Expiration", "time.Time", other)),
                },
                _ => Ok(()),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn merge_params(&mut self, v: &Value) -> Result<(), StatusDecodeError> {
        match v {
            Value::Null => self.remote_params.clear(),
            Value::Object(m) => {
                let mut first_err = None;
                for (k, pv) in m {
                    match pv {
                        Value::String(s) => {
                            self.remote_params.insert(k.clone(), s.clone());
                        }
                        other => {
                            first_err.get_or_insert(mismatch("RemoteParams", "string", other));
                        }
                    }
                }
                if let Some(e) = first_err {
                    return Err(e);
                }
            }
            other => return Err(mismatch("RemoteParams", "map[string]string", other)),
        }
        Ok(())
    }
}

fn mismatch(field: &str, ty: &str, v: &Value) -> StatusDecodeError {
    StatusDecodeError::new(format!(
        "json: cannot unmarshal {} into Go struct field RemoteExtraData.ExtraData.{field} of type {ty}",
        kind(v)
    ))
}

fn set_text(field: &mut String, name: &str, v: &Value) -> Result<(), StatusDecodeError> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => {
            field.clone_from(s);
            Ok(())
        }
        other => Err(mismatch(name, "string", other)),
    }
}

fn set_flag(field: &mut bool, name: &str, v: &Value) -> Result<(), StatusDecodeError> {
    match v {
        Value::Null => Ok(()),
        Value::Bool(b) => {
            *field = *b;
            Ok(())
        }
        other => Err(mismatch(name, "bool", other)),
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// Whether a param is a secret: its key starts with `secret_` in any case.
pub fn is_secret(key: &str) -> bool {
    key.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("secret_"))
}

/// Writes a JSON object of string values with sorted keys (Go marshalling a map), then `\n`.
fn json_line(fields: &BTreeMap<&str, &str>, extra: Option<(&str, i64)>) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut num = extra;
    for (k, v) in fields {
        if let Some((nk, nv)) = num
            && nk < *k
        {
            if !first {
                out.push(',');
            }
            first = false;
            write_str(&mut out, nk);
            let _ = write!(out, ":{nv}");
            num = None;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_str(&mut out, k);
        out.push(':');
        write_str(&mut out, v);
    }
    if let Some((nk, nv)) = num {
        if !first {
            out.push(',');
        }
        write_str(&mut out, nk);
        let _ = write!(out, ":{nv}");
    }
    out.push_str("}\n");
    out
}

/// The `work submit` line for the remote node: the params, then `command`, `subcommand`,
/// `node`, `worktype`, `tlsclient` (always, maybe empty) and the signature if any, as one JSON
/// object with sorted keys. `ttl` and `signwork` are not passed on (Go does the same).
pub fn submit_command(
    params: &BTreeMap<String, String>,
    node: &str,
    work_type: &str,
    tls_client: &str,
    signature: Option<&str>,
) -> String {
    let mut fields: BTreeMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    fields.insert("command", "work");
    fields.insert("subcommand", "submit");
    fields.insert("node", node);
    fields.insert("worktype", work_type);
    fields.insert("tlsclient", tls_client);
    if let Some(sig) = signature {
        fields.insert("signature", sig);
    }
    json_line(&fields, None)
}

/// A `work <sub>` line naming a remote unit (`cancel`, `release`), signed or not.
pub fn unit_command(sub: &str, unit_id: &str, signature: Option<&str>) -> String {
    let mut fields = BTreeMap::from([
        ("command", "work"),
        ("subcommand", sub),
        ("unitid", unit_id),
    ]);
    if let Some(sig) = signature {
        fields.insert("signature", sig);
    }
    json_line(&fields, None)
}

/// The `work status` line for a remote unit: plain JSON, or with the long-poll extension
/// (`wait`: the State and Detail known, the longest wait in milliseconds; see
/// [`crate::control::StatusWait`]), which Go ignores.
pub fn status_command(unit_id: &str, wait: Option<(i64, &str, u64)>) -> String {
    let mut out = String::from("{\"command\":\"work\",\"subcommand\":\"status\",\"unitid\":");
    write_str(&mut out, unit_id);
    if let Some((state, detail, millis)) = wait {
        out.push_str(",\"waitdetail\":");
        write_str(&mut out, detail);
        let _ = write!(out, ",\"waitms\":{millis},\"waitstate\":{state}");
    }
    out.push_str("}\n");
    out
}

/// The `work results` line asking for a remote unit's stdout from `start_pos`.
pub fn results_command(unit_id: &str, start_pos: i64, signature: Option<&str>) -> String {
    let mut fields = BTreeMap::from([
        ("command", "work"),
        ("subcommand", "results"),
        ("unitid", unit_id),
    ]);
    if let Some(sig) = signature {
        fields.insert("signature", sig);
    }
    json_line(&fields, Some(("startpos", start_pos)))
}

/// The unit ID in the remote node's answer to a submit: Go's regex `with ID ([a-zA-Z0-9]+)\.`.
pub fn submitted_unit_id(line: &str) -> Option<&str> {
    let mut rest = line;
    while let Some(i) = rest.find("with ID ") {
        let after = rest.get(i + 8..).unwrap_or_default();
        let n = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if n > 0 && after.as_bytes().get(n) == Some(&b'.') {
            return after.get(..n);
        }
        rest = after;
    }
    None
}

/// `Work unit expired on Mon Jan 2 15:04:05`: Go's `Format("Mon Jan 2 15:04:05")` of the
/// expiration, in the zone `offset_secs` east of UTC.
pub fn expired_detail(expiration: UnixNanos, offset_secs: i32) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = (expiration.div_euclid(1_000_000_000)) as i64 + i64::from(offset_secs);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // The civil date from the RFC 3339 text keeps one calendar implementation.
    let text = format_rfc3339_nano(i128::from(days) * 86_400 * 1_000_000_000);
    let month: usize = text.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = text.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let weekday = DAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Mon");
    let month = MONTHS.get(month - 1).copied().unwrap_or("Jan");
    format!(
        "Work unit expired on {weekday} {month} {day} {:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RemoteExtraData {
        RemoteExtraData {
            remote_node: "C".into(),
            remote_work_type: "echo".into(),
            remote_params: BTreeMap::from([
                ("params".into(), "x".into()),
                ("SECRET_k".into(), "s".into()),
            ]),
            remote_unit_id: "abc".into(),
            remote_started: true,
            sign_work: true,
            tls_client: "tc".into(),
            ..RemoteExtraData::default()
        }
    }

    #[test]
    fn json_in_go_field_order() {
        let mut out = String::new();
        sample().write_json(&mut out, false);
        assert_eq!(
            out,
            r#"{"RemoteNode":"C","RemoteWorkType":"echo","RemoteParams":{"SECRET_k":"s","params":"x"},"RemoteUnitID":"abc","RemoteStarted":true,"LocalCancelled":false,"LocalReleased":false,"SignWork":true,"TLSClient":"tc","Expiration":"0001-01-01T00:00:00Z"}"#
        );
        let mut out = String::new();
        sample().write_json(&mut out, true);
        assert!(out.contains(r#""RemoteParams":{"params":"x"}"#), "{out}");
    }

    #[test]
    fn merge_like_go() {
        let mut r = RemoteExtraData::default();
        let v: Value = serde_json::from_str(
            r#"{"remotenode":"C","RemoteParams":{"a":"1"},"RemoteStarted":true,
                "Expiration":"2024-10-24T16:36:52.5-04:00","Other":1}"#,
        )
        .unwrap();
        let Value::Object(obj) = v else { panic!() };
        r.merge(obj).unwrap();
        assert_eq!(r.remote_node, "C");
        assert!(r.remote_started);
        assert_eq!(r.remote_params["a"], "1");
        assert_eq!(r.expiration, parse_rfc3339("2024-10-24T20:36:52.5Z"));
        let mut out = String::new();
        r.write_json(&mut out, false);
        assert!(
            out.ends_with(r#""Expiration":"2024-10-24T20:36:52.5Z"}"#),
            "{out}"
        );
        let v: Value = serde_json::from_str(
            r#"{"RemoteStarted":"yes","RemoteNode":"D","Expiration":"0001-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let Value::Object(obj) = v else { panic!() };
        assert!(r.merge(obj).is_err());
        assert_eq!(r.remote_node, "D");
        assert!(r.remote_started);
        assert_eq!(r.expiration, None);
    }

    #[test]
    fn command_lines() {
        let params = BTreeMap::from([("a<b".to_owned(), "x".to_owned())]);
        assert_eq!(
            submit_command(&params, "C", "echo", "tc", Some("t.o.k")),
            "{\"a\\u003cb\":\"x\",\"command\":\"work\",\"node\":\"C\",\"signature\":\"t.o.k\",\
             \"subcommand\":\"submit\",\"tlsclient\":\"tc\",\"worktype\":\"echo\"}\n"
        );
        assert_eq!(
            results_command("abc", 42, None),
            "{\"command\":\"work\",\"startpos\":42,\"subcommand\":\"results\",\"unitid\":\"abc\"}\n"
        );
        assert_eq!(
            results_command("abc", 0, Some("s")),
            "{\"command\":\"work\",\"signature\":\"s\",\"startpos\":0,\"subcommand\":\"results\",\
             \"unitid\":\"abc\"}\n"
        );
        assert_eq!(
            unit_command("cancel", "abc", Some("s")),
            "{\"command\":\"work\",\"signature\":\"s\",\"subcommand\":\"cancel\",\"unitid\":\"abc\"}\n"
        );
        assert_eq!(
            status_command("abc", None),
            "{\"command\":\"work\",\"subcommand\":\"status\",\"unitid\":\"abc\"}\n"
        );
        assert_eq!(
            status_command("abc", Some((1, "Running: \"x\"", 1000))),
            "{\"command\":\"work\",\"subcommand\":\"status\",\"unitid\":\"abc\",\
             \"waitdetail\":\"Running: \\\"x\\\"\",\"waitms\":1000,\"waitstate\":1}\n"
        );
        // What our control service parses it to.
        let line = status_command("abc", Some((1, "Running: \"x\"", 1000)));
        assert!(matches!(
            crate::control::parse_line(line.trim_end().as_bytes()),
            Ok(crate::control::Command::Work(crate::control::WorkRequest::Status {
                wait: Some(w),
                ..
            })) if w.state == 1 && w.detail == "Running: \"x\"" && w.millis == 1000
        ));
        assert_eq!(submitted_unit_id("ERROR: could not verify signature"), None);
        assert_eq!(submitted_unit_id("with ID abc with ID x1."), Some("x1"));
        assert_eq!(submitted_unit_id("with ID ."), None);
    }

    #[test]
    fn expiry_text() {
        let t = parse_rfc3339("2024-10-24T16:36:52.9Z").unwrap();
        assert_eq!(
            expired_detail(t, 0),
            "Work unit expired on Thu Oct 24 16:36:52"
        );
        assert_eq!(
            expired_detail(t, -5 * 3600),
            "Work unit expired on Thu Oct 24 11:36:52"
        );
        let t = parse_rfc3339("2023-01-02T00:00:01Z").unwrap();
        assert_eq!(
            expired_detail(t, 0),
            "Work unit expired on Mon Jan 2 00:00:01"
        );
        assert_eq!(format_rfc3339_nano(ZERO_TIME), "0001-01-01T00:00:00Z");
        assert!(is_secret("Secret_x") && !is_secret("secret") && !is_secret("x"));
    }
}
