//! Firewall rules with Go's syntax and meaning (netceptor.md §6.4).

use std::collections::BTreeMap;

use regex::Regex;

use crate::config::ConfigError;

/// What a rule does with a message it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallAction {
    /// Let it through.
    Accept,
    /// Discard it and tell the sender (`blocked by firewall`).
    Reject,
    /// Discard it silently.
    Drop,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Pattern(Regex),
}

impl Matcher {
    /// An exact name, or a `/regex/` anchored at both ends. Go silently drops a `/...` value
    /// that is not a whole `/regex/` or does not compile, so the rule matches more broadly
    /// than written (a `reject` meant for one node rejects every node); we refuse it instead.
    fn parse(field: &str, value: &str) -> Result<Self, ConfigError> {
        if !value.starts_with('/') {
            return Ok(Self::Exact(value.to_owned()));
        }
        let inner = value
            .strip_prefix('/')
            .and_then(|v| v.strip_suffix('/'))
            .ok_or_else(|| {
                ConfigError::Firewall(format!("{field}: regex not enclosed in //: {value}"))
            })?;
        Regex::new(&format!("^(?:{inner})$"))
            .map(Self::Pattern)
            .map_err(|e| {
                // The regex crate's message draws a caret diagram; its last line says why.
                let why = e.to_string();
                let why = why.lines().last().unwrap_or_default().trim().to_owned();
                ConfigError::Firewall(format!("{field}: regex failed to compile: {value}: {why}"))
            })
    }

    /// A rule field: an empty value, as in Go, leaves the field out.
    fn field(field: &str, value: &str) -> Result<Option<Self>, ConfigError> {
        if value.is_empty() {
            return Ok(None);
        }
        Self::parse(field, value).map(Some)
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Self::Exact(e) => e == s,
            Self::Pattern(r) => r.is_match(s),
        }
    }
}

/// One rule: an action and up to four fields that must all match.
#[derive(Debug, Clone)]
pub struct FirewallRule {
    action: FirewallAction,
    from_node: Option<Matcher>,
    to_node: Option<Matcher>,
    from_service: Option<Matcher>,
    to_service: Option<Matcher>,
}

impl FirewallRule {
    /// Builds a rule from Go's YAML map form: keys `action` (required), `fromnode`, `tonode`,
    /// `fromservice`, `toservice`, case-insensitive. Unknown keys are an error, and so is a
    /// value that starts with `/` but is not a `/regex/` that compiles.
    pub fn parse(fields: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut rule = Self {
            action: FirewallAction::Accept,
            from_node: None,
            to_node: None,
            from_service: None,
            to_service: None,
        };
        let mut action = None;
        for (k, v) in fields {
            match k.to_ascii_lowercase().as_str() {
                "action" => {
                    action = Some(match v.to_ascii_lowercase().as_str() {
                        "accept" => FirewallAction::Accept,
                        "reject" => FirewallAction::Reject,
                        "drop" => FirewallAction::Drop,
                        _ => return Err(ConfigError::Firewall(format!("invalid action: {v}"))),
                    });
                }
                "fromnode" => rule.from_node = Matcher::field("fromnode", v)?,
                "tonode" => rule.to_node = Matcher::field("tonode", v)?,
                "fromservice" => rule.from_service = Matcher::field("fromservice", v)?,
                "toservice" => rule.to_service = Matcher::field("toservice", v)?,
                _ => return Err(ConfigError::Firewall(format!("unknown key: {k}"))),
            }
        }
        rule.action =
            action.ok_or_else(|| ConfigError::Firewall("action is required".to_owned()))?;
        Ok(rule)
    }

    /// Whether every field the rule names matches.
    fn fires(&self, from_node: &str, to_node: &str, from_service: &str, to_service: &str) -> bool {
        let ok = |m: &Option<Matcher>, s: &str| m.as_ref().is_none_or(|m| m.matches(s));
        ok(&self.from_node, from_node)
            && ok(&self.to_node, to_node)
            && ok(&self.from_service, from_service)
            && ok(&self.to_service, to_service)
    }
}

/// The first rule that fires decides; with none, the message is accepted.
pub fn evaluate(
    rules: &[FirewallRule],
    from_node: &str,
    to_node: &str,
    from_service: &str,
    to_service: &str,
) -> FirewallAction {
    rules
        .iter()
        .find(|r| r.fires(from_node, to_node, from_service, to_service))
        .map_or(FirewallAction::Accept, |r| r.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kv: &[(&str, &str)]) -> FirewallRule {
        FirewallRule::parse(
            &kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn go_semantics() {
        let rules = vec![
            rule(&[("Action", "Reject"), ("ToNode", "/(?i)EXEC.*/")]),
            rule(&[
                ("action", "drop"),
                ("fromnode", "bad"),
                ("toservice", "ctl"),
            ]),
            rule(&[("action", "drop")]),
        ];
        assert_eq!(
            evaluate(&rules, "a", "execution", "x", "y"),
            FirewallAction::Reject
        );
        assert_eq!(
            evaluate(&rules, "a", "exec2x", "x", "y"),
            FirewallAction::Reject
        );
        assert_eq!(
            evaluate(&rules, "bad", "n", "x", "ctl"),
            FirewallAction::Drop
        );
        assert_eq!(
            evaluate(&rules, "bad", "n", "x", "other"),
            FirewallAction::Drop
        );
        assert_eq!(evaluate(&[], "a", "b", "c", "d"), FirewallAction::Accept);
        // Regexes are anchored.
        let r = vec![rule(&[("action", "drop"), ("tonode", "/ab/")])];
        assert_eq!(evaluate(&r, "x", "xaby", "s", "s"), FirewallAction::Accept);
    }

    #[test]
    fn errors() {
        let bad = |kv: &[(&str, &str)]| {
            FirewallRule::parse(
                &kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .is_err()
        };
        assert!(bad(&[("fromnode", "a")]));
        assert!(bad(&[("action", "allow")]));
        assert!(bad(&[("action", "drop"), ("port", "1")]));
    }

    /// Go drops these fields silently, widening the rule to every message; we refuse them.
    #[test]
    fn invalid_regexes_are_refused() {
        let err = |kv: &[(&str, &str)]| {
            FirewallRule::parse(
                &kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(&[("action", "reject"), ("fromnode", "/unterminated")]),
            "firewall rule: fromnode: regex not enclosed in //: /unterminated"
        );
        assert_eq!(
            err(&[("action", "reject"), ("tonode", "/")]),
            "firewall rule: tonode: regex not enclosed in //: /"
        );
        let e = err(&[("action", "accept"), ("FromService", "/[a-/")]);
        assert!(
            e.starts_with("firewall rule: fromservice: regex failed to compile: /[a-/: "),
            "{e}"
        );
        // The empty regex is valid: it matches the empty name only.
        let r = vec![rule(&[("action", "drop"), ("toservice", "//")])];
        assert_eq!(evaluate(&r, "a", "b", "c", ""), FirewallAction::Drop);
        assert_eq!(evaluate(&r, "a", "b", "c", "d"), FirewallAction::Accept);
    }
}
