#![warn(missing_docs)]
//! The `receptor` binary's library half: configuration parsing (and, later, startup).
//!
//! Kept as a library so integration tests and other tools can drive the parser directly.

pub mod config;
