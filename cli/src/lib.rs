#![warn(missing_docs)]
//! The `receptor` binary's library half: configuration parsing, logging and startup.
//!
//! Kept as a library so integration tests and other tools can drive it directly.

pub mod backends;
pub mod certs;
pub mod config;
pub mod control;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod logging;
pub mod metrics;
pub mod run;
pub mod services;
pub mod streamtls;
pub mod work;
