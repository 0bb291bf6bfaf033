//! The unit status record: Go's `StatusFileData` (control-and-work.md §2.2).

use std::fmt::Write as _;

use serde_json::Value;

use super::remote::RemoteExtraData;
use crate::control::UnitStatus;
use crate::wire::{write_f64, write_str};

/// Created, waiting for its payload, or starting.
pub const STATE_PENDING: i64 = 0;
/// Running.
pub const STATE_RUNNING: i64 = 1;
/// Finished successfully (complete).
pub const STATE_SUCCEEDED: i64 = 2;
/// Finished unsuccessfully (complete).
pub const STATE_FAILED: i64 = 3;
/// Cancelled. **Not** complete: Go's results streams and monitors treat it as still active.
pub const STATE_CANCELED: i64 = 4;

/// What the Detail of a unit whose `work submit` payload could not be read starts with (Go's
/// node and ours write `Error reading input data: <error>`).
pub const INPUT_ERROR_DETAIL: &str = "Error reading input data";

/// The Detail of a unit whose `work submit` payload could not be read.
pub fn input_error_detail(err: &str) -> String {
    format!("{INPUT_ERROR_DETAIL}: {err}")
}

/// Go's `IsComplete`: Succeeded or Failed (Canceled is not complete).
pub fn is_complete(state: i64) -> bool {
    state == STATE_SUCCEEDED || state == STATE_FAILED
}

/// `ExtraData` of a `work-command` unit: Go's `CommandExtraData`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandExtraData {
    /// PID of the command-runner supervisor process (0 before it is started).
    pub pid: i64,
    /// The combined parameters the command runs with.
    pub params: String,
}

/// A unit's `ExtraData`, by work type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExtraData {
    /// A `work-command` unit: `{"Pid":..,"Params":..}`.
    Command(CommandExtraData),
    /// A `remote` unit: Go's `RemoteExtraData`.
    Remote(RemoteExtraData),
    /// Any other shape (a unit of a type this node does not know, or not modelled yet), kept
    /// as decoded and written back with sorted keys as Go writes a `map[string]interface{}`.
    Other(Value),
}

impl ExtraData {
    /// `ExtraData` of a command unit.
    pub fn command(pid: i64, params: impl Into<String>) -> Self {
        Self::Command(CommandExtraData {
            pid,
            params: params.into(),
        })
    }
}

/// Why a status file could not be read. The text is worded like Go's `encoding/json` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StatusDecodeError(String);

impl StatusDecodeError {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

/// A unit's status, as stored in its `status` file and kept in memory.
///
/// The file holds [`to_json`](Self::to_json); it is read with [`merge_json`](Self::merge_json),
/// which like Go's `json.Unmarshal` into an existing struct leaves fields the file does not
/// mention unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    /// One of the `STATE_*` numbers (other values are reported as `Unknown: <n>`).
    pub state: i64,
    /// Human-readable detail (`Running: PID 4242`, `exit status 0`, ...).
    pub detail: String,
    /// Bytes of stdout as last recorded.
    pub stdout_size: i64,
    /// The unit's work type.
    pub work_type: String,
    /// Work-type specific data; `None` is Go's `null`.
    pub extra_data: Option<ExtraData>,
}

impl StatusRecord {
    /// A fresh record as Go's `Init` makes it: Pending, `Unit Created`, no output.
    pub fn new(work_type: impl Into<String>, extra_data: Option<ExtraData>) -> Self {
        Self {
            state: STATE_PENDING,
            detail: "Unit Created".to_owned(),
            stdout_size: 0,
            work_type: work_type.into(),
            extra_data,
        }
    }

    /// Go's `UpdateBasicStatus` change: sets state and detail, and the stdout size unless it
    /// is `None` (Go's `-1`).
    pub fn set_basic(&mut self, state: i64, detail: impl Into<String>, stdout_size: Option<i64>) {
        self.state = state;
        self.detail = detail.into();
        if let Some(size) = stdout_size {
            self.stdout_size = size;
        }
    }

    /// The PID of a command unit's supervisor, if one was recorded (`Pid > 0`).
    pub fn command_pid(&self) -> Option<i64> {
        match &self.extra_data {
            Some(ExtraData::Command(c)) if c.pid > 0 => Some(c.pid),
            _ => None,
        }
    }

    /// The data of a remote unit.
    pub fn remote(&self) -> Option<&RemoteExtraData> {
        match &self.extra_data {
            Some(ExtraData::Remote(r)) => Some(r),
            _ => None,
        }
    }

    /// The data of a remote unit, to change.
    pub fn remote_mut(&mut self) -> Option<&mut RemoteExtraData> {
        match &mut self.extra_data {
            Some(ExtraData::Remote(r)) => Some(r),
            _ => None,
        }
    }

    /// The file contents: one JSON object in Go's field order, then `\n`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128 + self.detail.len());
        let _ = write!(out, "{{\"State\":{},\"Detail\":", self.state);
        write_str(&mut out, &self.detail);
        let _ = write!(out, ",\"StdoutSize\":{},\"WorkType\":", self.stdout_size);
        write_str(&mut out, &self.work_type);
        out.push_str(",\"ExtraData\":");
        match &self.extra_data {
            None => out.push_str("null"),
            Some(ed) => write_extra(&mut out, ed, false),
        }
        out.push_str("}\n");
        out
    }

    /// Reads a status file over this record: keys present replace fields (matched
    /// case-insensitively, as Go does), absent keys and `null` scalars leave them alone,
    /// `"ExtraData":null` clears the extra data. An object `ExtraData` is merged into the
    /// command data when the record holds command data, else kept as it is.
    ///
    /// On a type mismatch the other fields are still applied and the first mismatch is
    /// returned, as Go's decoder does. Syntax errors change nothing.
    pub fn merge_json(&mut self, data: &[u8]) -> Result<(), StatusDecodeError> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(StatusDecodeError("unexpected end of JSON input".into()));
        }
        let value: Value =
            serde_json::from_slice(data).map_err(|e| StatusDecodeError(e.to_string()))?;
        let obj = match value {
            Value::Object(obj) => obj,
            Value::Null => return Ok(()),
            other => {
                return Err(StatusDecodeError(format!(
                    "json: cannot unmarshal {} into Go value of type workceptor.StatusFileData",
                    go_kind(&other)
                )));
            }
        };
        let mut first_err = None;
        let mut fail = |e: StatusDecodeError| {
            first_err.get_or_insert(e);
        };
        for (key, v) in obj {
            let field = ["State", "Detail", "StdoutSize", "WorkType", "ExtraData"]
                .into_iter()
                .find(|f| key.eq_ignore_ascii_case(f));
            match field {
                Some("State") => match int_field(&v, "State", "int") {
                    Ok(Some(n)) => self.state = n,
                    Ok(None) => {}
                    Err(e) => fail(e),
                },
                Some("StdoutSize") => match int_field(&v, "StdoutSize", "int64") {
                    Ok(Some(n)) => self.stdout_size = n,
                    Ok(None) => {}
                    Err(e) => fail(e),
                },
                Some("Detail") => match str_field(&v, "Detail") {
                    Ok(Some(s)) => self.detail = s,
                    Ok(None) => {}
                    Err(e) => fail(e),
                },
                Some("WorkType") => match str_field(&v, "WorkType") {
                    Ok(Some(s)) => self.work_type = s,
                    Ok(None) => {}
                    Err(e) => fail(e),
                },
                Some(_) => {
                    if let Err(e) = self.merge_extra(v) {
                        fail(e);
                    }
                }
                None => {}
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn merge_extra(&mut self, v: Value) -> Result<(), StatusDecodeError> {
        match (&mut self.extra_data, v) {
            (_, Value::Null) => self.extra_data = None,
            (Some(ExtraData::Command(c)), Value::Object(obj)) => {
                let mut first_err = None;
                for (key, v) in obj {
                    if key.eq_ignore_ascii_case("Pid") {
                        match int_field(&v, "ExtraData.Pid", "int") {
                            Ok(Some(n)) => c.pid = n,
                            Ok(None) => {}
                            Err(e) => {
                                first_err.get_or_insert(e);
                            }
                        }
                    } else if key.eq_ignore_ascii_case("Params") {
                        match str_field(&v, "ExtraData.Params") {
                            Ok(Some(s)) => c.params = s,
                            Ok(None) => {}
                            Err(e) => {
                                first_err.get_or_insert(e);
                            }
                        }
                    }
                }
                if let Some(e) = first_err {
                    return Err(e);
                }
            }
            (Some(ExtraData::Remote(r)), Value::Object(obj)) => r.merge(obj)?,
            (Some(ExtraData::Remote(_)), other) => {
                return Err(StatusDecodeError(format!(
                    "json: cannot unmarshal {} into Go struct field StatusFileData.ExtraData of \
                     type workceptor.RemoteExtraData",
                    go_kind(&other)
                )));
            }
            (Some(ExtraData::Command(_)), other) => {
                return Err(StatusDecodeError(format!(
                    "json: cannot unmarshal {} into Go struct field StatusFileData.ExtraData of \
                     type workceptor.CommandExtraData",
                    go_kind(&other)
                )));
            }
            (_, other) => self.extra_data = Some(ExtraData::Other(other)),
        }
        Ok(())
    }

    /// `ExtraData` as the `work status` / `work list` replies show it (JSON, Go field order),
    /// with secrets removed: `RemoteParams` entries whose key starts with `secret_` (any case)
    /// and the Kubernetes `KubeConfig` / `KubePod` values. `None` is `null`.
    pub fn extra_data_reply(&self) -> Option<String> {
        let ed = self.extra_data.as_ref()?;
        let mut out = String::new();
        write_extra(&mut out, ed, true);
        Some(out)
    }

    /// The `work status` reply for this record (the session adds `StateName`).
    pub fn to_unit_status(&self) -> UnitStatus {
        UnitStatus {
            state: self.state,
            detail: self.detail.clone(),
            stdout_size: self.stdout_size,
            work_type: self.work_type.clone(),
            extra_data: self.extra_data_reply(),
        }
    }
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn mismatch(v: &Value, field: &str, ty: &str) -> StatusDecodeError {
    let what = match v {
        Value::Number(n) => format!("number {n}"),
        other => go_kind(other).to_owned(),
    };
    StatusDecodeError(format!(
        "json: cannot unmarshal {what} into Go struct field StatusFileData.{field} of type {ty}"
    ))
}

/// An integer field: `null` leaves it, a whole number sets it, anything else is a mismatch.
fn int_field(v: &Value, field: &str, ty: &str) -> Result<Option<i64>, StatusDecodeError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| mismatch(v, field, ty)),
        _ => Err(mismatch(v, field, ty)),
    }
}

fn str_field(v: &Value, field: &str) -> Result<Option<String>, StatusDecodeError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(mismatch(v, field, "string")),
    }
}

fn write_extra(out: &mut String, ed: &ExtraData, redact: bool) {
    match ed {
        ExtraData::Command(c) => {
            let _ = write!(out, "{{\"Pid\":{},\"Params\":", c.pid);
            write_str(out, &c.params);
            out.push('}');
        }
        ExtraData::Remote(r) => r.write_json(out, redact),
        ExtraData::Other(v) if redact => write_value(out, &redacted(v)),
        ExtraData::Other(v) => write_value(out, v),
    }
}

/// Go's `Status()` redactions for remote and Kubernetes units.
fn redacted(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(obj) = &mut v {
        if let Some(Value::Object(params)) = obj.get_mut("RemoteParams") {
            params.retain(|k, _| {
                !k.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("secret_"))
            });
        }
        for key in ["KubeConfig", "KubePod"] {
            if let Some(field) = obj.get_mut(key) {
                *field = Value::String(String::new());
            }
        }
    }
    v
}

/// Writes any JSON value as Go's `encoding/json` writes an `interface{}` (sorted keys).
/// Nesting is bounded by `serde_json`'s own parse limit.
fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                write_f64(out, n.as_f64().unwrap_or_default());
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                if let Some(item) = obj.get(k) {
                    write_value(out, item);
                }
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(pid: i64, params: &str) -> Option<ExtraData> {
        Some(ExtraData::command(pid, params))
    }

    #[test]
    fn new_record_file_form() {
        let r = StatusRecord::new("echo", cmd(0, ""));
        assert_eq!(
            r.to_json(),
            "{\"State\":0,\"Detail\":\"Unit Created\",\"StdoutSize\":0,\"WorkType\":\"echo\",\"ExtraData\":{\"Pid\":0,\"Params\":\"\"}}\n"
        );
        let r = StatusRecord {
            extra_data: None,
            detail: "a<b>&\"\n".into(),
            ..r
        };
        assert_eq!(
            r.to_json(),
            "{\"State\":0,\"Detail\":\"a\\u003cb\\u003e\\u0026\\\"\\n\",\"StdoutSize\":0,\"WorkType\":\"echo\",\"ExtraData\":null}\n"
        );
    }

    #[test]
    fn merge_keeps_absent_fields() {
        let mut r = StatusRecord::new("echo", cmd(0, "-x"));
        r.merge_json(br#"{"State":1,"detail":"Running: PID 7","ExtraData":{"Pid":99}}"#)
            .unwrap();
        assert_eq!(r.state, STATE_RUNNING);
        assert_eq!(r.detail, "Running: PID 7");
        assert_eq!(r.work_type, "echo");
        assert_eq!(r.extra_data, cmd(99, "-x"));
        assert_eq!(r.command_pid(), Some(99));
        r.merge_json(b"{\"ExtraData\":null,\"Detail\":null}\n")
            .unwrap();
        assert_eq!(r.extra_data, None);
        assert_eq!(r.detail, "Running: PID 7");
        assert_eq!(r.command_pid(), None);
        // With no command data in memory, an object is kept as it is.
        r.merge_json(br#"{"ExtraData":{"b":1,"a":[true,null,1.5,"x"]}}"#)
            .unwrap();
        assert_eq!(
            r.extra_data_reply().as_deref(),
            Some(r#"{"a":[true,null,1.5,"x"],"b":1}"#)
        );
        r.merge_json(b"null").unwrap();
    }

    #[test]
    fn round_trip_through_file_form() {
        let mut a = StatusRecord::new("sleep", cmd(4242, "30"));
        a.set_basic(STATE_FAILED, "signal: killed", Some(12));
        let mut b = StatusRecord::new("", cmd(0, ""));
        b.merge_json(a.to_json().as_bytes()).unwrap();
        assert_eq!(a, b);
        a.set_basic(STATE_CANCELED, "Canceled", None);
        assert_eq!(a.stdout_size, 12);
    }

    #[test]
    fn decode_errors() {
        let mut r = StatusRecord::new("echo", cmd(1, ""));
        let before = r.clone();
        assert_eq!(
            r.merge_json(b"").unwrap_err().to_string(),
            "unexpected end of JSON input"
        );
        assert!(r.merge_json(b"{\"State\":").is_err());
        assert_eq!(r, before);
        assert_eq!(
            r.merge_json(b"[1]").unwrap_err().to_string(),
            "json: cannot unmarshal array into Go value of type workceptor.StatusFileData"
        );
        // A mismatch still applies the other fields.
        let e = r
            .merge_json(br#"{"State":"x","Detail":"d","StdoutSize":1.5}"#)
            .unwrap_err();
        assert_eq!(r.detail, "d");
        assert!(e.to_string().starts_with("json: cannot unmarshal "), "{e}");
        assert!(r.merge_json(br#"{"ExtraData":5}"#).is_err());
        assert!(
            r.merge_json(br#"{"ExtraData":{"Pid":"x","Params":3}}"#)
                .is_err()
        );
        // Deep nesting is refused, not a stack overflow.
        let deep = format!(
            "{{\"ExtraData\":{}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(r.merge_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn replies_hide_secrets() {
        let mut r = StatusRecord::new("remote", None);
        r.merge_json(
            br#"{"ExtraData":{"RemoteNode":"n2","RemoteParams":{"params":"x","SECRET_key":"s","secret_":"t"},"KubeConfig":"kc"}}"#,
        )
        .unwrap();
        let reply = r.extra_data_reply().unwrap();
        assert_eq!(
            reply,
            r#"{"KubeConfig":"","RemoteNode":"n2","RemoteParams":{"params":"x"}}"#
        );
        // The file keeps them.
        assert!(r.to_json().contains("SECRET_key"));
        let u = r.to_unit_status();
        assert_eq!(u.extra_data.as_deref(), Some(reply.as_str()));
        assert_eq!(u.work_type, "remote");
    }

    #[test]
    fn completeness() {
        assert!(!is_complete(STATE_PENDING));
        assert!(!is_complete(STATE_RUNNING));
        assert!(is_complete(STATE_SUCCEEDED));
        assert!(is_complete(STATE_FAILED));
        assert!(!is_complete(STATE_CANCELED));
    }
}
