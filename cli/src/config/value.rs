//! Untyped config values and their conversion into parameter types.
//!
//! [`Value`] is what Go's yaml.v2 produces when decoding into `interface{}` (and what a command-line
//! argument is: always a string). [`Field`] is a parameter's converted value. The conversion rules
//! copy ghjm/cmdline's `setValue`: string fields take numbers and bools too (`%d`, `%f`, `%t`), numeric
//! and bool fields parse strings, list and map fields take a JSON string, and a plain string
//! appended to a string-list field accumulates.

use std::collections::BTreeMap;
use std::fmt;

use super::entity::Kind;
use super::goparse;

/// An untyped configuration value, as Go's yaml.v2 decodes a YAML node into `interface{}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `~`, `null`, an empty value.
    Null,
    /// A YAML 1.1 bool (`true`, `yes`, `on`, ...).
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    Uint(u64),
    /// A float (also every JSON number).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    List(Vec<Value>),
    /// A mapping, in document order, keys unique (a repeated key keeps the later value).
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Inserts into a map value, replacing the value of an equal key (Go map assignment).
    pub(crate) fn map_insert(entries: &mut Vec<(Value, Value)>, key: Value, value: Value) {
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => entries.push((key, value)),
        }
    }

    /// Converts a JSON value the way Go's `encoding/json` decodes into `interface{}`: every number
    /// becomes a float.
    pub(crate) fn from_json(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Self::Str(s),
            serde_json::Value::Array(items) => {
                Self::List(items.into_iter().map(Self::from_json).collect())
            }
            serde_json::Value::Object(map) => Self::Map(
                map.into_iter()
                    .map(|(k, v)| (Self::Str(k), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Formats like Go's `%v`, so error messages quote values the way the reference does.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("<nil>"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Uint(u) => write!(f, "{u}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => f.write_str(s),
            Self::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Self::Map(entries) => {
                f.write_str("map[")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One firewall rule as written: its key/value pairs, checked later (netceptor.md §6.4).
pub(crate) type RawRule = Vec<(Value, Value)>;

/// A parameter's converted value. Starts as the Go zero value of its [`Kind`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Field {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `None` is Go's nil slice, distinct from an empty one (`allowedpeers: []` allows no peer).
    StrList(Option<Vec<String>>),
    FloatMap(BTreeMap<String, f64>),
    AnyMap(BTreeMap<String, Value>),
    Rules(Vec<RawRule>),
}

impl Field {
    /// The Go zero value for a parameter of `kind`.
    pub(crate) fn zero(kind: Kind) -> Self {
        match kind {
            Kind::Str => Self::Str(String::new()),
            Kind::Int => Self::Int(0),
            Kind::Float => Self::Float(0.0),
            Kind::Bool => Self::Bool(false),
            Kind::StrList => Self::StrList(None),
            Kind::FloatMap => Self::FloatMap(BTreeMap::new()),
            Kind::AnyMap => Self::AnyMap(BTreeMap::new()),
            Kind::Rules => Self::Rules(Vec::new()),
        }
    }

    /// Assigns `value` to this field with cmdline's `setValue` rules. The error text is Go's.
    pub(crate) fn set(&mut self, kind: Kind, value: &Value) -> Result<(), String> {
        let type_error = || format!("type error (expected {}, got {value})", kind.go_type());
        if *value == Value::Null {
            // Go sets nil maps/slices to their zero value and refuses nil for scalars.
            return match kind {
                Kind::Str | Kind::Int | Kind::Float | Kind::Bool => {
                    Err("value cannot be nil".to_owned())
                }
                _ => {
                    *self = Self::zero(kind);
                    Ok(())
                }
            };
        }
        let new = match (kind, value) {
            (Kind::Str, Value::Str(s)) => Self::Str(s.clone()),
            (Kind::Str, Value::Int(i)) => Self::Str(i.to_string()),
            (Kind::Str, Value::Uint(u)) => Self::Str(u.to_string()),
            (Kind::Str, Value::Float(x)) => Self::Str(goparse::format_float_f(*x)),
            (Kind::Str, Value::Bool(b)) => Self::Str(b.to_string()),
            (Kind::Int, Value::Int(i)) => Self::Int(*i),
            // Go's integer conversion wraps; float conversion truncates toward zero.
            (Kind::Int, Value::Uint(u)) => Self::Int(*u as i64),
            (Kind::Int, Value::Float(x)) => Self::Int(*x as i64),
            (Kind::Int, Value::Str(s)) => Self::Int(goparse::parse_int(s)?),
            (Kind::Float, Value::Int(i)) => Self::Float(*i as f64),
            (Kind::Float, Value::Uint(u)) => Self::Float(*u as f64),
            (Kind::Float, Value::Float(x)) => Self::Float(*x),
            (Kind::Float, Value::Str(s)) => Self::Float(goparse::parse_float(s)?),
            (Kind::Bool, Value::Bool(b)) => Self::Bool(*b),
            (Kind::Bool, Value::Str(s)) => Self::Bool(goparse::parse_bool(s)?),
            (Kind::StrList, Value::List(items)) => Self::StrList(Some(string_items(items)?)),
            (Kind::StrList, Value::Str(s)) if s.starts_with('[') => {
                Self::StrList(Some(string_items(&json_list(s)?)?))
            }
            (Kind::StrList, Value::Str(s)) => {
                // A plain string appends: `--cert-makereq dnsname=a dnsname=b`.
                let mut items = match self {
                    Self::StrList(Some(items)) => std::mem::take(items),
                    _ => Vec::new(),
                };
                items.push(s.clone());
                Self::StrList(Some(items))
            }
            (Kind::FloatMap, Value::Map(entries)) => Self::FloatMap(float_map(entries)?),
            (Kind::FloatMap, Value::Str(s)) if s.starts_with('{') => {
                Self::FloatMap(float_map(&json_map(s)?)?)
            }
            (Kind::AnyMap, Value::Map(entries)) => Self::AnyMap(any_map(entries)?),
            (Kind::AnyMap, Value::Str(s)) if s.starts_with('{') => {
                Self::AnyMap(any_map(&json_map(s)?)?)
            }
            (Kind::Rules, Value::List(items)) => Self::Rules(rule_items(items)?),
            // Go cannot take firewall rules from a JSON string (its JSON maps have string keys,
            // not convertible to FirewallRuleData); accepting them is a deliberate superset.
            (Kind::Rules, Value::Str(s)) if s.starts_with('[') => {
                Self::Rules(rule_items(&json_list(s)?)?)
            }
            _ => return Err(type_error()),
        };
        *self = new;
        Ok(())
    }
}

fn json_value(s: &str) -> Result<Value, String> {
    serde_json::from_str::<serde_json::Value>(s)
        .map(Value::from_json)
        .map_err(|e| format!("invalid JSON {s:?}: {e}"))
}

fn json_list(s: &str) -> Result<Vec<Value>, String> {
    match json_value(s)? {
        Value::List(items) => Ok(items),
        other => Err(format!("invalid value {other}: expected a JSON list")),
    }
}

fn json_map(s: &str) -> Result<Vec<(Value, Value)>, String> {
    match json_value(s)? {
        Value::Map(entries) => Ok(entries),
        other => Err(format!("invalid value {other}: expected a JSON dict")),
    }
}

fn string_items(items: &[Value]) -> Result<Vec<String>, String> {
    items
        .iter()
        .map(|item| match item {
            Value::Str(s) => Ok(s.clone()),
            other => Err(format!("invalid value {other}: must be type string")),
        })
        .collect()
}

fn map_key(key: &Value) -> Result<String, String> {
    match key {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!("invalid key {other}: must be type string")),
    }
}

fn float_map(entries: &[(Value, Value)]) -> Result<BTreeMap<String, f64>, String> {
    entries
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::Int(i) => *i as f64,
                Value::Uint(u) => *u as f64,
                Value::Float(x) => *x,
                other => return Err(format!("invalid value {other}: must be type float64")),
            };
            Ok((map_key(k)?, value))
        })
        .collect()
}

fn any_map(entries: &[(Value, Value)]) -> Result<BTreeMap<String, Value>, String> {
    entries
        .iter()
        .map(|(k, v)| Ok((map_key(k)?, v.clone())))
        .collect()
}

fn rule_items(items: &[Value]) -> Result<Vec<RawRule>, String> {
    items
        .iter()
        .map(|item| match item {
            Value::Map(entries) => Ok(entries.clone()),
            other => Err(format!(
                "invalid value {other}: must be type netceptor.FirewallRuleData"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kind: Kind, v: Value) -> Result<Field, String> {
        let mut f = Field::zero(kind);
        f.set(kind, &v).map(|()| f)
    }

    fn s(x: &str) -> Value {
        Value::Str(x.to_owned())
    }

    #[test]
    fn strings_take_scalars_like_go_sprintf() {
        assert_eq!(
            set(Kind::Str, Value::Int(11113)),
            Ok(Field::Str("11113".into()))
        );
        assert_eq!(
            set(Kind::Str, Value::Float(1.5)),
            Ok(Field::Str("1.500000".into()))
        );
        assert_eq!(
            set(Kind::Str, Value::Bool(true)),
            Ok(Field::Str("true".into()))
        );
        assert_eq!(
            set(Kind::Str, Value::Null),
            Err("value cannot be nil".into())
        );
        assert!(set(Kind::Str, Value::List(vec![])).is_err_and(|e| e.contains("expected string")));
    }

    #[test]
    fn numbers_and_bools_convert() {
        assert_eq!(set(Kind::Int, s("0660")), Ok(Field::Int(0o660)));
        assert_eq!(set(Kind::Int, Value::Float(2222.9)), Ok(Field::Int(2222)));
        assert_eq!(set(Kind::Float, Value::Int(2)), Ok(Field::Float(2.0)));
        assert_eq!(set(Kind::Float, s("0.2")), Ok(Field::Float(0.2)));
        assert_eq!(set(Kind::Bool, s("yes")), Ok(Field::Bool(true)));
        // Go cannot convert an int to bool: `redial: 1` in YAML is a type error.
        assert!(set(Kind::Bool, Value::Int(1)).is_err_and(|e| e.contains("expected bool")));
        assert!(set(Kind::Int, Value::Bool(true)).is_err());
    }

    #[test]
    fn string_lists_accumulate_or_replace() {
        let mut f = Field::zero(Kind::StrList);
        assert_eq!(f.set(Kind::StrList, &s("a")), Ok(()));
        assert_eq!(f.set(Kind::StrList, &s("b")), Ok(()));
        assert_eq!(f, Field::StrList(Some(vec!["a".into(), "b".into()])));
        assert_eq!(f.set(Kind::StrList, &s(r#"["n1","n2"]"#)), Ok(()));
        assert_eq!(f, Field::StrList(Some(vec!["n1".into(), "n2".into()])));
        assert_eq!(f.set(Kind::StrList, &Value::List(vec![])), Ok(()));
        assert_eq!(f, Field::StrList(Some(vec![])));
        assert_eq!(f.set(Kind::StrList, &Value::Null), Ok(()));
        assert_eq!(f, Field::StrList(None));
        assert!(set(Kind::StrList, s("[1]")).is_err_and(|e| e.contains("must be type string")));
    }

    #[test]
    fn float_maps_from_yaml_or_json() {
        let m = set(Kind::FloatMap, s(r#"{"a": 1.3, "b": 5}"#));
        let want: BTreeMap<String, f64> = [("a".into(), 1.3), ("b".into(), 5.0)].into();
        assert_eq!(m, Ok(Field::FloatMap(want)));
        assert_eq!(
            set(Kind::FloatMap, s("{}")),
            Ok(Field::FloatMap(BTreeMap::new()))
        );
        let yaml = Value::Map(vec![(s("bar"), Value::Float(2.5))]);
        let want: BTreeMap<String, f64> = [("bar".into(), 2.5)].into();
        assert_eq!(set(Kind::FloatMap, yaml), Ok(Field::FloatMap(want)));
        assert!(set(Kind::FloatMap, s(r#"{"a": "x"}"#)).is_err());
        assert!(set(Kind::FloatMap, s("{bad")).is_err());
        assert!(set(Kind::FloatMap, s("a=1")).is_err_and(|e| e.contains("type error")));
    }
}
