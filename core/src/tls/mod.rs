//! TLS as Go receptor does it, for any runtime (feature `tls`): node IDs in certificates,
//! certificate checks, rustls configs built from PEM bytes, the insecure mesh-stream mode, and
//! what a failed handshake means. Nothing here reads a file or touches a socket: configs are
//! loaded through a [`PemSource`] (the runtimes' reads files: `os::tls`, feature `os`), and
//! the runtimes run the handshakes.
//!
//! * Backends (tcp/ws, and plain TLS listeners such as the control service's `tcptls`):
//!   [`TlsServer::backend_config`] / [`TlsClient::backend_config`], netceptor spec §2.5.
//! * Mesh streams (QUIC inside netceptor), spec §8.3: user TLS binds certificates to node IDs
//!   ([`TlsServer::stream_config_for_peer`], [`TlsClient::stream_config`]); services without a
//!   `tls-server` use the [`insecure`] self-signed mode.
//! * Node IDs in certificates (spec §2.6): [`node_ids_in_cert`], `os::tls::check_own_cert_names` (feature `os`).
//!
//! Crypto is rustls with the aws-lc-rs provider. Known gaps against Go: no P-521 key
//! exchange, no static-RSA TLS 1.2 suite, RSA keys below 2048 bits are refused.

/// The handshake-signature methods of a rustls verifier, checked with `self.algs` (the
/// provider's algorithms). Every verifier here keeps that check, whatever it does with
/// certificates.
macro_rules! check_signatures_with_algs {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
}

mod config;
mod der;
mod error;
mod explain;
mod fingerprint;
pub mod insecure;
mod nodeid;
mod pem;
mod verify;

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, InvalidDnsNameError, ServerName};

use crate::LinkConfig;

pub use config::{
    ALPN_HTTP11, ALPN_NETCEPTOR, ClientAuthMode, TlsClient, TlsClientParams, TlsServer,
    TlsServerParams,
};
pub use der::DerError;
pub use error::{CertNameError, TlsError};
pub use explain::{HandshakeError, HandshakeSide, explain_handshake_error, explain_session_error};
pub use fingerprint::Fingerprint;
pub use nodeid::{
    RECEPTOR_NODE_ID_OID, RECEPTOR_NODE_ID_OID_ARCS, check_cert_node_id, check_leaf_names,
    check_peer_node_id, node_ids_in_cert, node_ids_in_san, peer_cert_identity,
};
pub use pem::{
    PemMemory, PemSource, add_pem_bundle, ca_store_from_pem, cert_chain_from_pem,
    certified_key_from_pem, private_key_from_pem,
};

/// The `ServerName` to dial a backend with: the host part of its address (an IP literal,
/// optionally in `[...]`, or a DNS name), which the server certificate must match.
pub fn server_name_for_host(host: &str) -> Result<ServerName<'static>, InvalidDnsNameError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned())
}

/// The server name to dial a mesh stream with: `preferred` when rustls accepts it, else
/// `netceptor`. Go sends the dialer's own node ID (insecure mode) or no SNI, and the stream
/// verifiers never check it, so any valid name will do.
pub fn stream_server_name(preferred: &str) -> String {
    match ServerName::try_from(preferred) {
        Ok(_) => preferred.to_owned(),
        Err(_) => "netceptor".to_owned(),
    }
}

/// The `ServerName` to dial the backend address `host:port` with (its host part, as
/// [`server_name_for_host`] takes it).
pub fn server_name_for_address(address: &str) -> Result<ServerName<'static>, InvalidDnsNameError> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    server_name_for_host(host)
}

/// A backend session's link options: the backend's, with the peer certificate's node IDs
/// added when the backend binds node IDs to certificates (`bindnodeid`), so the node can check
/// the ID the peer announces. `chain` is what the TLS handshake received (`None` on a plain
/// link).
pub fn session_link(
    link: &Arc<LinkConfig>,
    chain: Option<&[CertificateDer<'_>]>,
) -> Arc<LinkConfig> {
    if !link.bind_node_id {
        return link.clone();
    }
    let mut own = LinkConfig::clone(link);
    own.peer_cert = Some(peer_cert_identity(chain));
    Arc::new(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_of_addresses() {
        let name = |a| server_name_for_address(a).map(|n| n.to_str().into_owned());
        assert_eq!(name("example.com:443").unwrap(), "example.com");
        assert_eq!(name("127.0.0.1:1").unwrap(), "127.0.0.1");
        assert_eq!(name("[::1]:9").unwrap(), "::1");
        assert!(name("bad name:1").is_err());
    }
}
