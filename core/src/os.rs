//! The few operating-system calls both runtimes make on their sockets (feature `os`, which
//! only the runtimes enable). Not part of the sans-IO node: nothing in the core calls these;
//! the policy they apply lives in [`crate::config`].
#![allow(unsafe_code)]

pub mod sockopt;
