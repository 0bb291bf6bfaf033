//! Go's version 2 config file (`receptor --config-v2 --config FILE`, Go's `cmd/config.go`): a
//! YAML mapping instead of a list, with plural keys for the entities that repeat.
//!
//! ```yaml
//! version: 2
//! node:
//!   id: foo
//! log-level:
//!   level: Debug
//! tcp-listeners:
//!   - port: 2222
//! control-services:
//!   - service: control
//!     filename: /tmp/foo.sock
//! work-commands:
//!   - workType: echo
//!     command: cat
//! ```
//!
//! Each key becomes the version 1 items it stands for (`tcp-listeners: [a, b]` is
//! `- tcp-listener: a` and `- tcp-listener: b`), so both formats share one parser, one set of
//! checks and one `reload` bookkeeping. Keys are case-insensitive, as viper reads them.
//!
//! Beyond Go: a file with `version: 2` at its top is read as version 2 without the flag; every
//! entity is accepted under its version 1 name too (`tcp-peer:` with one map or a list, as the
//! Go docs' workceptor example writes it, where Go silently ignores it), and under a plural
//! name where Go's schema has none (`command-services`, `work-pythons`); an unknown key is an
//! error, where viper ignores it; `trace: true` and `local-only: true` switch those on.

use super::entity;
use super::error::{ConfigError, ErrorKind};
use super::value::Value;

/// Version 2 keys that name a list of entities, or one entity, and the entity they hold.
const KEYS: &[(&str, &str)] = &[
    ("control-services", "control-service"),
    ("tls-clients", "tls-client"),
    ("tls-servers", "tls-server"),
    ("work-commands", "work-command"),
    ("iprouters", "ip-router"),
    ("ip-routers", "ip-router"),
    ("command-services", "command-service"),
    ("tcp-clients", "tcp-client"),
    ("tcp-servers", "tcp-server"),
    ("udp-clients", "udp-client"),
    ("udp-servers", "udp-server"),
    ("unix-socket-clients", "unix-socket-client"),
    ("unix-socket-servers", "unix-socket-server"),
    ("cert-makereqs", "cert-makereq"),
    ("cert-signreqs", "cert-signreq"),
    ("tcp-listeners", "tcp-listener"),
    ("udp-listeners", "udp-listener"),
    ("ws-listeners", "ws-listener"),
    ("tcp-peers", "tcp-peer"),
    ("udp-peers", "udp-peer"),
    ("ws-peers", "ws-peer"),
    ("work-pythons", "work-python"),
];

/// The `version` a mapping declares, if it has the key (any case).
pub(crate) fn declared_version(entries: &[(Value, Value)]) -> Option<String> {
    entries.iter().find_map(|(k, v)| match k {
        Value::Str(key) if key.eq_ignore_ascii_case("version") => Some(match v {
            Value::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
            other => other.to_string(),
        }),
        _ => None,
    })
}

/// The version 1 items (`{entity: params}` maps) that a version 2 mapping stands for, in the
/// file's order.
pub(crate) fn items(entries: &[(Value, Value)]) -> Result<Vec<Value>, ConfigError> {
    let mut out = Vec::new();
    for (key, value) in entries {
        let Value::Str(key) = key else {
            return Err(ConfigError::new(
                ErrorKind::File,
                "section key is not a string",
            ));
        };
        let key = key.to_lowercase();
        if key == "version" {
            continue;
        }
        let name = match KEYS.iter().find(|(k, _)| *k == key) {
            Some((_, name)) => *name,
            None => match entity::lookup(&key) {
                Some(spec) if !spec.hidden && spec.name != "version" => spec.name,
                _ => {
                    return Err(ConfigError::new(
                        ErrorKind::UnknownEntity,
                        format!("unknown key {key} in a version 2 config"),
                    ));
                }
            },
        };
        let item = |params: Value| Value::Map(vec![(Value::Str(name.to_owned()), params)]);
        match value {
            Value::List(list) => out.extend(list.iter().cloned().map(item)),
            Value::Bool(false) => {}
            Value::Bool(true) => out.push(item(Value::Null)),
            other => out.push(item(other.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse_document;

    fn v2(text: &str) -> Result<Vec<Value>, ConfigError> {
        match parse_document(text)? {
            Value::Map(entries) => items(&entries),
            other => panic!("{other:?}"),
        }
    }

    fn names(items: &[Value]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Value::Map(e) => e[0].0.to_string(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn plural_keys_become_one_item_each() {
        let items = v2(
            "version: 2\nNode: {id: a}\nTCP-Listeners:\n  - port: 1\n  - port: 2\n\
                        tcp-peer: {address: 'h:1'}\nlocal-only: {local: true}\ntrace: false\n",
        )
        .unwrap();
        assert_eq!(
            names(&items),
            [
                "node",
                "tcp-listener",
                "tcp-listener",
                "tcp-peer",
                "local-only"
            ]
        );
        assert_eq!(
            declared_version(&[(Value::Str("VERSION".into()), Value::Int(2))]).as_deref(),
            Some("2")
        );
        let err = v2("tcp-listenerz: []").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key tcp-listenerz in a version 2 config"
        );
        assert!(v2("command-runner: {}").is_err());
    }
}
