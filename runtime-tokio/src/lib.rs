//! Tokio runtime for receptor-core (filled by the binary issue).

pub mod tls;
