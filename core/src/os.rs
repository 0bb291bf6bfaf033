//! What both runtimes take from the operating system around the node (feature `os`, which
//! only the runtimes enable): socket options, randomness, host facts, child exit statuses, a remote unit's stdout file, the directory of a node's units, work-signing key files, Go's wording of I/O errors, and TLS files (with
//! feature `tls`). Not part of the sans-IO node:
//! nothing in the core calls these; the policies they serve live in [`crate::config`] and
//! [`crate::backoff`].
#![allow(unsafe_code)]

pub mod go_error;
pub mod host;
#[cfg(unix)]
pub mod process;
pub mod sockopt;
#[cfg(unix)]
pub mod stdout;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(unix)]
pub mod unit_root;
pub mod work_keys;

use std::hash::{BuildHasher, Hasher};

/// Some randomness (for the backoff jitter), from the OS-seeded keys of the standard
/// library's hasher.
pub fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
