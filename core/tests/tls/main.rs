//! Handshake tests for the TLS layer: rustls client and server driven through an
//! in-memory pump, with rcgen-generated CAs and leaves carrying Receptor node-ID SANs.

// rustls checks certificate dates against the wall clock, so certificates are made for it.
#![allow(clippy::disallowed_methods)]

mod backend;
mod stream;
mod support;
