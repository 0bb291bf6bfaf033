//! TLS for the smol runtime: the core's runtime-independent [`receptor_core::tls`] (node-ID
//! checks, configs, the insecure mesh-stream mode, handshake explanations), with loading from
//! files ([`receptor_core::os::tls`]), as `receptor_tokio::tls` has them.

pub use receptor_core::os::tls::{Files, check_own_cert_names, system_roots};
pub use receptor_core::tls::*;
