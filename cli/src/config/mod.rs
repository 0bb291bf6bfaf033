//! Go-compatible configuration for the `receptor` binary (control-and-work.md §3).
//!
//! Work in progress: the entity table and Go's value conversions.

mod entity;
mod error;
mod goparse;
mod value;

pub use entity::{ENTITIES, EntitySpec, Kind, ParamSpec, Section, lookup};
pub use error::{ConfigError, ErrorKind};
pub use value::Value;
