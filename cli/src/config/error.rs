//! The configuration error type.
//!
//! Go receptor reports every configuration problem as one line, `Error: <message>`, on stdout and
//! exits 1. Scripts and tests match on those messages (e.g. `Error: connection cost must be
//! positive`), so [`ConfigError`] carries the Go wording verbatim in its message and adds a
//! [`ErrorKind`] for callers that want to branch on the category.

use std::fmt;

/// What went wrong, broadly. The message says exactly what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Command-line structure: a parameter before any entity, a bare value where none is allowed.
    Syntax,
    /// An entity name that receptor does not know.
    UnknownEntity,
    /// A parameter name that the entity does not have.
    UnknownParam,
    /// A value that cannot be converted to the parameter's type.
    BadValue,
    /// A required parameter was not given.
    MissingParam,
    /// A singleton entity given twice.
    Singleton,
    /// An exclusive entity (`version`, `cert-*`) given together with others.
    Exclusive,
    /// The YAML file could not be read or has the wrong shape.
    File,
    /// A semantic check failed (cost ≤ 0, bad firewall rule, unknown TLS config name, ...).
    Invalid,
    /// The entity is known and parsed, but this implementation cannot run it yet.
    NotSupported,
}

/// A configuration error with Go receptor's message wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ErrorKind,
    message: String,
}

impl ConfigError {
    /// Builds an error of `kind` with the full message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The `<entity>: not supported yet` refusal for a recognised but unimplemented entity.
    pub fn not_supported(entity: &str) -> Self {
        Self::new(
            ErrorKind::NotSupported,
            format!("{entity}: not supported yet"),
        )
    }

    /// The category of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the `Error: ` prefix the binary prints.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message, keeping the kind (Go wraps file errors as `error loading config file: ...`).
    pub(crate) fn prefixed(self, prefix: &str) -> Self {
        Self {
            kind: self.kind,
            message: format!("{prefix}{}", self.message),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}
