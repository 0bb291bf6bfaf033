//! Handshake tests for the TLS layer: rustls client and server driven through an
//! in-memory pump, with rcgen-generated CAs and leaves carrying Receptor node-ID SANs.

mod backend;
mod stream;
mod support;
