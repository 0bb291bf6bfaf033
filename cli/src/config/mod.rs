//! Go-compatible configuration for the `receptor` binary (control-and-work.md §3).
//!
//! Work in progress: the entity table, Go's value conversions and the two syntaxes.

mod cmdline;
mod entity;
mod error;
mod goparse;
mod raw;
mod value;
mod yaml;

pub use entity::{ENTITIES, EntitySpec, Kind, ParamSpec, Section, lookup};
pub use error::{ConfigError, ErrorKind};
pub use raw::Source;
pub use value::Value;
pub use yaml::parse_document;
