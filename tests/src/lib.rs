//! Deterministic mesh simulator over receptor-core.
