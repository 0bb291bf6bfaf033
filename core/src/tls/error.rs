//! Error types of the TLS layer.

use std::io;
use std::path::PathBuf;

use super::der::DerError;

/// Everything that can go wrong while loading TLS material or building a config.
///
/// Messages name the configuration parameter and file involved, so a startup
/// failure can be traced to the offending `tls-server` / `tls-client` entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file named by a parameter could not be read.
    #[error("error reading {param} file {path}: {source}")]
    ReadFile {
        /// Parameter name (`cert`, `key`, `rootcas`, `clientcas`).
        param: &'static str,
        /// File that was named.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("error parsing PEM in {param} file {path}: {source}")]
    Pem {
        /// Parameter name.
        param: &'static str,
        /// File that was named.
        path: PathBuf,
        /// Underlying PEM error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("no certificate found in {param} file {path}")]
    NoCertificate {
        /// Parameter name.
        param: &'static str,
        /// File that was named.
        path: PathBuf,
    },
    /// The key file holds no PKCS#1, PKCS#8 or SEC1 private key.
    #[error("no private key found in key file {path}")]
    NoPrivateKey {
        /// File that was named.
        path: PathBuf,
    },
    /// The private key is of a type or size the crypto provider cannot use
    /// (aws-lc-rs supports RSA >= 2048 bits, ECDSA P-256/P-384/P-521 and Ed25519).
    #[error("unsupported private key in key file {path}: {source}")]
    UnsupportedKey {
        /// File that was named.
        path: PathBuf,
        /// Error from the crypto provider.
        #[source]
        source: rustls::Error,
    },
    /// The private key does not belong to the certificate (Go: "private key does not match public key").
    #[error("private key in {key} does not match the certificate in {cert}")]
    KeyMismatch {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
    },
    /// A tls-client named only one of `cert` and `key`.
    #[error("cert and key must both be supplied or neither")]
    CertWithoutKey,
    /// A pinned fingerprint is not 32 or 64 bytes of hex.
    #[error("error decoding fingerprints: {reason} ({value:?})")]
    Fingerprint {
        /// The configured string.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The node's own certificate lacks its node ID (Go's startup check).
    #[error(
        "nodeID={node_id} not found in certificate name(s); names found=[{}]; cfg section={section}; server cert={}",
        .names.join(" "), .path.display()
    )]
    NodeIdNotInCert {
        /// This node's ID.
        node_id: String,
        /// Receptor node IDs the certificate does carry.
        names: Vec<String>,
        /// Name of the tls-server / tls-client entry.
        section: String,
        /// Certificate file.
        path: PathBuf,
    },
    /// `bindnodeid` is set where no certificate would be verified to bind to.
    #[error("tls config {section}: bindnodeid cannot work here: {why}")]
    BindNeedsVerifiedCert {
        /// Name of the tls-server / tls-client entry.
        section: String,
        /// What is missing.
        why: &'static str,
    },
    /// A certificate could not be decoded far enough to read its names.
    #[error("failed to parse certificate: {0}")]
    CertParse(#[from] DerError),
    /// A certificate does not carry the expected Receptor node ID.
    #[error(transparent)]
    CertName(#[from] CertNameError),
    /// rustls refused a configuration (should not happen with the built-in provider).
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
    /// The self-signed certificate for insecure mode could not be generated.
    #[error("generating self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A TLS config that QUIC cannot carry.
    #[error(transparent)]
    Quic(#[from] crate::stream::QuicTlsError),
}

/// A certificate does not carry the expected Receptor node ID.
///
/// The message text is Go's `ReceptorCertNameError`, which users and tests grep for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CertNameError {
    /// Node IDs the certificate carries.
    pub valid_nodes: Vec<String>,
    /// Node ID that was required.
    pub expected_node: String,
}

impl std::fmt::Display for CertNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.valid_nodes.len() {
            0 => write!(
                f,
                "x509: certificate is not valid for any Receptor node IDs, but wanted to match {}",
                self.expected_node
            ),
            n => write!(
                f,
                "x509: certificate is valid for Receptor node ID{} {}, not {}",
                if n > 1 { "s" } else { "" },
                self.valid_nodes.join(", "),
                self.expected_node
            ),
        }
    }
}
