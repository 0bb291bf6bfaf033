//! The YAML config file (control-and-work.md §3.2): a top-level list of entity items.
//!
//! ```yaml
//! - node:
//!     id: foo
//! - log-level: debug        # a string goes to the barevalue parameter
//! - local-only              # a bare name: the entity with no parameters
//! - tcp-listener:
//!     port: 2222
//!     nodecost: {bar: 2.5}
//! ```
//!
//! Go reads the file with yaml.v2, a YAML 1.1 resolver: `yes`/`on`/`y` are bools, `0660` is
//! octal, `1_000` is an int. YAML 1.2 crates resolve those differently, so we take raw events
//! from `saphyr-parser` and resolve plain scalars ourselves with yaml.v2's rules ([`resolve_plain`]).
//! Only the first document is read, as `yaml.Unmarshal` does.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

use super::entity::{self, EntitySpec};
use super::error::{ConfigError, ErrorKind};
use super::raw::{RawEntity, Source};
use super::value::Value;

/// Parses the first YAML document of `text` into a [`Value`] (`Null` for an empty document).
pub fn parse_document(text: &str) -> Result<Value, ConfigError> {
    Ok(parse_with_line(text)?.map_or(Value::Null, |(v, _)| v))
}

/// The document's root value and the line it starts on.
fn parse_with_line(text: &str) -> Result<Option<(Value, usize)>, ConfigError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Value> = HashMap::new();
    let mut root: Option<(Value, usize)> = None;
    let mut root_line = 1;
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| {
            ConfigError::new(
                ErrorKind::File,
                format!("yaml: line {}: {}", e.marker().line(), e.info()),
            )
        })?;
        if stack.is_empty() {
            root_line = span.start.line();
        }
        let done = match event {
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Scalar(text, style, anchor, tag) => {
                Some((scalar(&text, style, tag.as_deref()), anchor))
            }
            Event::Alias(id) => Some((anchors.get(&id).cloned().unwrap_or(Value::Null), 0)),
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(Vec::new(), None, anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items, anchor)) => Some((Value::List(items), anchor)),
                Some(Frame::Map(entries, _, anchor)) => Some((Value::Map(entries), anchor)),
                None => None,
            },
            _ => None,
        };
        let Some((value, anchor)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, value.clone());
        }
        match stack.last_mut() {
            None => root = Some((value, root_line)),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map(entries, pending, _)) => match pending.take() {
                None => *pending = Some(value),
                Some(key) => Value::map_insert(entries, key, value),
            },
        }
    }
    Ok(root)
}

enum Frame {
    Seq(Vec<Value>, usize),
    /// Entries so far, a key waiting for its value, the anchor id.
    Map(Vec<(Value, Value)>, Option<Value>, usize),
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    match tag {
        Some(t) if t.suffix == "str" || t.suffix == "binary" => Value::Str(text.to_owned()),
        Some(t) if t.is_yaml_core_schema() || t.handle == "!!" => resolve_plain(text),
        Some(_) => Value::Str(text.to_owned()),
        None if style == ScalarStyle::Plain => resolve_plain(text),
        None => Value::Str(text.to_owned()),
    }
}

/// yaml.v2's `resolve` for an untagged plain scalar.
pub(crate) fn resolve_plain(s: &str) -> Value {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match s.as_bytes().first() {
        Some(b'.') => {
            if let Ok(f) = super::goparse::parse_float(s) {
                return Value::Float(f);
            }
        }
        Some(c) if c.is_ascii_digit() || *c == b'+' || *c == b'-' => {
            let plain = s.replace('_', "");
            if let Ok(i) = super::goparse::parse_int(&plain) {
                return Value::Int(i);
            }
            if let Ok(u) = super::goparse::parse_uint(&plain) {
                return Value::Uint(u);
            }
            if yaml_style_float(&plain)
                && let Ok(f) = super::goparse::parse_float(&plain)
            {
                return Value::Float(f);
            }
        }
        _ => {}
    }
    Value::Str(s.to_owned())
}

/// yaml.v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// Which config format the command line asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// No `--config-v2`: a list, or a mapping that says `version: 2`.
    V1OrDeclared,
    /// `--config-v2`: a mapping.
    V2,
    /// Whatever the file is (`reload` re-reading a file that was accepted at startup).
    Any,
}

/// The items of a config file: the top-level list (an empty document is an empty list), or
/// the items a version 2 mapping stands for; and whether it was version 2.
pub(crate) fn document_items(
    text: &str,
    format: Format,
) -> Result<(Vec<Value>, bool), ConfigError> {
    let file_error = |m: String| ConfigError::new(ErrorKind::File, m);
    match parse_with_line(text)? {
        None | Some((Value::Null, _)) => Ok((Vec::new(), format == Format::V2)),
        Some((Value::List(_), _)) if format == Format::V2 => Err(file_error(
            "--config-v2 expects a version 2 config, a YAML mapping (version: 2, node:, \
             tcp-listeners:, ...), but this file is a version 1 list of entities"
                .to_owned(),
        )),
        Some((Value::List(items), _)) => Ok((items, false)),
        Some((Value::Map(entries), _)) => match super::v2::declared_version(&entries) {
            Some(v) if v != "2" => Err(file_error(format!(
                "config version {v} is not supported: a version 2 config says version: 2 at its \
                 top, a version 1 config is a list of entities"
            ))),
            None if format == Format::V1OrDeclared => Err(file_error(
                "this file is a YAML mapping, but a version 1 config is a list of entities \
                 (- node: ...): for the version 2 format put version: 2 at its top or run with \
                 --config-v2"
                    .to_owned(),
            )),
            _ => Ok((super::v2::items(&entries)?, true)),
        },
        Some((other, line)) => {
            let what = match &other {
                Value::Str(s) => format!("!!str `{s}`"),
                Value::Bool(b) => format!("!!bool `{b}`"),
                scalar => format!("!!int `{scalar}`"),
            };
            Err(file_error(format!(
                "yaml: unmarshal errors:\n  line {line}: cannot unmarshal {what} into []interface {{}}"
            )))
        }
    }
}

/// The items of a config file whichever its format (see [`document_items`]).
pub(crate) fn top_level_items(text: &str) -> Result<Vec<Value>, ConfigError> {
    Ok(document_items(text, Format::Any)?.0)
}

/// Splits one top-level item into its entity name and parameters (Go's `loadConfigFromFile`).
pub(crate) fn split_item(item: &Value) -> Result<(String, Value), ConfigError> {
    let file_error = |m: &str| ConfigError::new(ErrorKind::File, m);
    match item {
        Value::Str(name) => Ok((name.clone(), Value::Null)),
        Value::Map(entries) => match entries.as_slice() {
            [(Value::Str(name), params)] => Ok((name.clone(), params.clone())),
            [_] => Err(file_error("section key is not a string")),
            _ => Err(file_error("config format invalid: item has multiple names")),
        },
        _ => Err(file_error("unknown config file format")),
    }
}

/// Turns a config file's text into entities, and tells whether it was a version 2 file.
/// `prior` are the entities already seen (command line and earlier files), used to refuse a
/// repeated singleton. Errors are not yet prefixed with `error loading config file: `.
pub(crate) fn entities_from_text(
    text: &str,
    path: &str,
    prior: &[RawEntity],
    format: Format,
) -> Result<(Vec<RawEntity>, bool), ConfigError> {
    let mut out: Vec<RawEntity> = Vec::new();
    let (items, v2) = document_items(text, format)?;
    for item in items {
        let (name, params) = split_item(&item)?;
        let spec = entity::lookup(&name).ok_or_else(|| {
            ConfigError::new(
                ErrorKind::UnknownEntity,
                format!("could not get config type for command {name}: unknown config type {name}"),
            )
        })?;
        let assignments = assignments(spec, &name, params)?;
        if spec.singleton && prior.iter().chain(&out).any(|e| std::ptr::eq(e.spec, spec)) {
            return Err(ConfigError::new(
                ErrorKind::Singleton,
                format!("only one {name} directive is allowed"),
            ));
        }
        let mut entity = RawEntity::new(spec, name.clone(), Source::File(path.to_owned()));
        for (key, value) in assignments {
            let index = spec.param_index(&key).ok_or_else(|| {
                ConfigError::new(
                    ErrorKind::UnknownParam,
                    format!("field {key} not defined for command {name}: unknown field name {key}"),
                )
            })?;
            entity.set(index, &value).map_err(|e| {
                ConfigError::new(
                    ErrorKind::BadValue,
                    format!("error setting field {key} in command {name}: {e}"),
                )
            })?;
        }
        entity.check_required()?;
        out.push(entity);
    }
    Ok((out, v2))
}

/// The `(key, value)` pairs an item's value assigns: none, a bare value, or a map's entries.
fn assignments(
    spec: &EntitySpec,
    name: &str,
    params: Value,
) -> Result<Vec<(String, Value)>, ConfigError> {
    let invalid = || ConfigError::new(ErrorKind::File, format!("invalid config format for {name}"));
    match params {
        Value::Null => Ok(Vec::new()),
        Value::Str(bare) => {
            let param = spec.bare_param().and_then(|i| spec.params.get(i)).ok_or_else(|| {
                ConfigError::new(
                    ErrorKind::Syntax,
                    format!("could not get barevalue for command {name}: command does not allow bare values"),
                )
            })?;
            Ok(vec![(param.name.to_owned(), Value::Str(bare))])
        }
        Value::Map(entries) => entries
            .into_iter()
            .map(|(k, v)| match k {
                Value::Str(key) => Ok((key, v)),
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.to_owned())
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_v2() {
        assert_eq!(resolve_plain("yes"), Value::Bool(true));
        assert_eq!(resolve_plain("Off"), Value::Bool(false));
        assert_eq!(resolve_plain("0660"), Value::Int(0o660));
        assert_eq!(resolve_plain("0x10"), Value::Int(16));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("2.5"), Value::Float(2.5));
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        assert_eq!(resolve_plain(".5"), Value::Float(0.5));
        assert_eq!(resolve_plain("18446744073709551615"), Value::Uint(u64::MAX));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("localhost:2223"), s("localhost:2223"));
        assert_eq!(resolve_plain("2001-12-14"), s("2001-12-14"));
        assert_eq!(resolve_plain("1.2.3"), s("1.2.3"));
        assert_eq!(resolve_plain("TRUE"), Value::Bool(true));
        assert_eq!(resolve_plain("tRUE"), s("tRUE"));
    }

    #[test]
    fn quoted_and_tagged_scalars_stay_strings() {
        let doc = "- {a: '0660', b: \"yes\", c: !!str 12, d: 0660, e: [x, 1]}";
        let want = Value::List(vec![Value::Map(vec![
            (s("a"), s("0660")),
            (s("b"), s("yes")),
            (s("c"), s("12")),
            (s("d"), Value::Int(0o660)),
            (s("e"), Value::List(vec![s("x"), Value::Int(1)])),
        ])]);
        assert_eq!(parse_document(doc), Ok(want));
    }

    #[test]
    fn anchors_and_aliases_and_first_document_only() {
        let doc = "- a: &x {k: 1}\n- b: *x\n---\n- c\n";
        let items = top_level_items(doc).unwrap_or_default();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1],
            Value::Map(vec![(s("b"), Value::Map(vec![(s("k"), Value::Int(1))]))])
        );
    }

    #[test]
    fn shape_errors() {
        assert!(top_level_items("").is_ok_and(|v| v.is_empty()));
        let e = document_items("node: {id: a}", Format::V1OrDeclared).map_err(|e| e.to_string());
        assert!(
            e.is_err_and(|e| e.starts_with("this file is a YAML mapping") && !e.contains('\n'))
        );
        let e = document_items("- node: {id: a}", Format::V2).map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.starts_with("--config-v2 expects a version 2 config")));
        let e = document_items("version: 3\nnode: {}", Format::Any).map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.starts_with("config version 3 is not supported")));
        let (items, v2) = document_items("version: '2'\nnode: {}", Format::V1OrDeclared).unwrap();
        assert!(v2 && items.len() == 1);
        let e = top_level_items("true").map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("yaml: unmarshal errors:\n  line 1: cannot unmarshal !!bool `true` into []interface {}".into())
        );
        assert!(top_level_items("- [").is_err_and(|e| e.message().starts_with("yaml: line")));
        let multi = Value::Map(vec![(s("a"), Value::Null), (s("b"), Value::Null)]);
        assert!(split_item(&multi).is_err_and(|e| e.message().contains("multiple names")));
        assert!(
            split_item(&Value::Int(1)).is_err_and(|e| e.message() == "unknown config file format")
        );
    }
}
