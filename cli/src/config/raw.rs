//! One entity occurrence while parsing: its parameters converted but not yet checked for meaning.
//!
//! This mirrors ghjm/cmdline's `cfgObjInfo`: a zero-valued Go struct that parameters are assigned
//! into, a record of which were set (for required-parameter checks and defaults), and the label
//! used in error messages (the argument as typed on the command line, or the YAML key).

use std::collections::BTreeMap;

use super::entity::{EntitySpec, Kind};
use super::error::{ConfigError, ErrorKind};
use super::value::{Field, RawRule, Value};

/// Where an entity came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    CommandLine,
    /// A `--config` YAML file (its path as given).
    File(String),
    /// Added because it was missing (`node`).
    Implicit,
}

/// An entity with its parameters assigned.
#[derive(Clone, Debug)]
pub(crate) struct RawEntity {
    pub(crate) spec: &'static EntitySpec,
    /// Name for error messages: `--tcp-listener` as typed, `tcp-listener` from YAML, `implicit node`.
    pub(crate) label: String,
    pub(crate) source: Source,
    fields: Vec<Field>,
    set: Vec<bool>,
}

impl RawEntity {
    pub(crate) fn new(spec: &'static EntitySpec, label: String, source: Source) -> Self {
        Self {
            spec,
            label,
            source,
            fields: spec.params.iter().map(|p| Field::zero(p.kind)).collect(),
            set: vec![false; spec.params.len()],
        }
    }

    /// Assigns a value to parameter `index` (a valid index into `spec.params`).
    pub(crate) fn set(&mut self, index: usize, value: &Value) -> Result<(), String> {
        let (Some(param), Some(field), Some(flag)) = (
            self.spec.params.get(index),
            self.fields.get_mut(index),
            self.set.get_mut(index),
        ) else {
            return Err("no such parameter".to_owned());
        };
        field.set(param.kind, value)?;
        *flag = true;
        Ok(())
    }

    /// Fails with Go's `error in <label>: required parameter(s) missing: a, b`.
    pub(crate) fn check_required(&self) -> Result<(), ConfigError> {
        let missing: Vec<&str> = self
            .spec
            .params
            .iter()
            .zip(&self.set)
            .filter(|(p, set)| p.required && !**set)
            .map(|(p, _)| p.name)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let plural = if missing.len() > 1 { "s" } else { "" };
        Err(ConfigError::new(
            ErrorKind::MissingParam,
            format!(
                "error in {}: required parameter{plural} missing: {}",
                self.label,
                missing.join(", ")
            ),
        ))
    }

    /// Fills unset parameters from their Go `default:` tag, converted like user input.
    pub(crate) fn apply_defaults(&mut self) -> Result<(), ConfigError> {
        for (i, param) in self.spec.params.iter().enumerate() {
            let Some(default) = param.default else {
                continue;
            };
            if self.set.get(i).copied().unwrap_or(true) {
                continue;
            }
            if let Some(field) = self.fields.get_mut(i) {
                field
                    .set(param.kind, &Value::Str(default.to_owned()))
                    .map_err(|e| {
                        ConfigError::new(
                            ErrorKind::BadValue,
                            format!("error setting default value for field {}: {e}", param.name),
                        )
                    })?;
            }
        }
        Ok(())
    }

    fn field(&self, name: &str, kind: Kind) -> Option<&Field> {
        let i = self.spec.param_index(name);
        debug_assert!(
            i.and_then(|i| self.spec.params.get(i))
                .is_some_and(|p| p.kind == kind),
            "entity {} has no {kind:?} parameter {name}",
            self.spec.name
        );
        self.fields.get(i?)
    }

    /// A string parameter (`""` when unset and without default).
    pub(crate) fn str(&self, name: &str) -> String {
        match self.field(name, Kind::Str) {
            Some(Field::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// A string parameter, `None` when empty (Go treats `""` as "not configured").
    pub(crate) fn opt_str(&self, name: &str) -> Option<String> {
        Some(self.str(name)).filter(|s| !s.is_empty())
    }

    /// An int parameter.
    pub(crate) fn int(&self, name: &str) -> i64 {
        match self.field(name, Kind::Int) {
            Some(Field::Int(i)) => *i,
            _ => 0,
        }
    }

    /// A float parameter.
    pub(crate) fn float(&self, name: &str) -> f64 {
        match self.field(name, Kind::Float) {
            Some(Field::Float(x)) => *x,
            _ => 0.0,
        }
    }

    /// A bool parameter.
    pub(crate) fn bool(&self, name: &str) -> bool {
        matches!(self.field(name, Kind::Bool), Some(Field::Bool(true)))
    }

    /// A string-list parameter; `None` is Go's nil slice.
    pub(crate) fn str_list(&self, name: &str) -> Option<Vec<String>> {
        match self.field(name, Kind::StrList) {
            Some(Field::StrList(list)) => list.clone(),
            _ => None,
        }
    }

    /// A map-of-floats parameter.
    pub(crate) fn float_map(&self, name: &str) -> BTreeMap<String, f64> {
        match self.field(name, Kind::FloatMap) {
            Some(Field::FloatMap(m)) => m.clone(),
            _ => BTreeMap::new(),
        }
    }

    /// A free-form map parameter.
    pub(crate) fn any_map(&self, name: &str) -> BTreeMap<String, Value> {
        match self.field(name, Kind::AnyMap) {
            Some(Field::AnyMap(m)) => m.clone(),
            _ => BTreeMap::new(),
        }
    }

    /// The firewall-rule list parameter.
    pub(crate) fn rules(&self, name: &str) -> Vec<RawRule> {
        match self.field(name, Kind::Rules) {
            Some(Field::Rules(r)) => r.clone(),
            _ => Vec::new(),
        }
    }
}
