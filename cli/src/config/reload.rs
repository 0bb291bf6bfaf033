//! Support for the control service's `reload` (control-and-work.md §3.6).
//!
//! Go records each item of the `--config` file at startup, normalised by re-serialising it with
//! sorted map keys. On `reload` it re-reads the file: a non-reloadable item that is new or changed,
//! or one that disappeared, refuses the reload; only backends (and `local-only`) may change.

use std::fmt::Write as _;

use super::entity::is_reloadable_name;
use super::error::{ConfigError, ErrorKind};
use super::value::Value;
use super::yaml;

/// One top-level item of a config file, normalised for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileItem {
    /// The entity name as written (the item's key, or the bare string).
    pub name: String,
    /// A canonical rendering of the whole item (map keys sorted), equal iff the items are equal.
    pub canonical: String,
    /// Whether `reload` may change it (name starts with a backend entity name or `local-only`).
    pub reloadable: bool,
}

/// Reads the items of a config file's text for `reload` bookkeeping. Only the YAML shape is
/// checked here (as Go does); entity names and parameters are validated by the normal parse.
pub fn file_items(text: &str) -> Result<Vec<FileItem>, ConfigError> {
    yaml::top_level_items(text)?
        .iter()
        .map(|item| {
            let name = match item {
                Value::Map(entries) => entries.first().map(|(k, _)| k.to_string()),
                other => Some(other.to_string()),
            }
            .unwrap_or_default();
            let mut canonical = String::new();
            render(&mut canonical, item);
            Ok(FileItem {
                reloadable: is_reloadable_name(&name),
                name,
                canonical,
            })
        })
        .collect()
}

/// Compares the items recorded at startup with the file's items now. The error messages are
/// Go's; the control service appends ` ERRORCODE 3` to them.
pub fn check_reload(before: &[FileItem], after: &[FileItem]) -> Result<(), ConfigError> {
    let fixed = |items: &[FileItem]| -> Vec<FileItem> {
        items.iter().filter(|i| !i.reloadable).cloned().collect()
    };
    let (before, after) = (fixed(before), fixed(after));
    if let Some(added) = after.iter().find(|i| !before.contains(i)) {
        return Err(ConfigError::new(
            ErrorKind::Invalid,
            format!(
                "a non-reloadable config action '{}' was modified or added. Must restart \
                 receptor for these changes to take effect",
                added.name
            ),
        ));
    }
    if let Some(removed) = before.iter().find(|i| !after.contains(i)) {
        return Err(ConfigError::new(
            ErrorKind::Invalid,
            format!(
                "a non-reloadable config action '{}' was removed. Must restart receptor for \
                 changes to take effect",
                removed.name
            ),
        ));
    }
    Ok(())
}

/// A deterministic, unambiguous rendering: strings quoted, maps sorted by rendered key.
fn render(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push('~'),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(x) => {
            let _ = write!(out, "{x:?}");
        }
        Value::Str(s) => {
            let _ = write!(out, "{s:?}");
        }
        Value::List(items) => {
            out.push('[');
            for item in items {
                render(out, item);
                out.push(',');
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let mut rendered: Vec<(String, String)> = entries
                .iter()
                .map(|(k, v)| {
                    let (mut ks, mut vs) = (String::new(), String::new());
                    render(&mut ks, k);
                    render(&mut vs, v);
                    (ks, vs)
                })
                .collect();
            rendered.sort();
            out.push('{');
            for (k, v) in rendered {
                let _ = write!(out, "{k}:{v},");
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: &str = "---\n- node:\n    id: foo\n- log-level: Info\n- trace\n- tcp-peer:\n    \
                        address: localhost:8001\n- work-command:\n    workType: hello\n    command: bash\n";

    fn items(text: &str) -> Vec<FileItem> {
        file_items(text).unwrap_or_default()
    }

    #[test]
    fn backends_may_change_other_items_may_not() {
        let before = items(INIT);
        assert_eq!(before.len(), 5);
        assert!(before.iter().any(|i| i.name == "tcp-peer" && i.reloadable));
        assert!(before.iter().any(|i| i.name == "trace" && !i.reloadable));
        let moved = INIT.replace("8001", "8002") + "- tcp-listener: {port: 1}\n";
        assert_eq!(check_reload(&before, &items(&moved)), Ok(()));
        // Key order and quoting style do not matter.
        let reordered = INIT.replace(
            "workType: hello\n    command: bash",
            "command: 'bash'\n    workType: hello",
        );
        assert_eq!(check_reload(&before, &items(&reordered)), Ok(()));
        let changed = INIT.replace("hello", "hello2");
        assert!(check_reload(&before, &items(&changed)).is_err_and(|e| e.message()
            == "a non-reloadable config action 'work-command' was modified or added. Must restart receptor for these changes to take effect"));
        let removed = INIT.replace("- trace\n", "");
        assert!(check_reload(&before, &items(&removed)).is_err_and(|e| e.message()
            == "a non-reloadable config action 'trace' was removed. Must restart receptor for changes to take effect"));
    }
}
