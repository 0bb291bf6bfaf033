//! Certificate verifiers reproducing Go receptor's `ReceptorVerifyFunc` ("RVF") on top of webpki.
//!
//! Go runs the standard chain check and then RVF: pinned fingerprints, a chain check with
//! the right EKU, and, for mesh streams, the Receptor node ID. Here each verifier does the
//! same checks in one place. The handshake signature is always checked with the provider's
//! algorithms, even when certificate checks are disabled (Go's `InsecureSkipVerify` keeps it too).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DistinguishedName, Error, OtherError, RootCertStore};

use super::fingerprint::{Fingerprint, pins_match};
use super::insecure::chain_has_insecure_cn;
use super::nodeid::check_cert_node_id;

/// Go's RVF message for a leaf that matches no pinned fingerprint.
#[derive(Debug, thiserror::Error)]
#[error("RVF failed: presented certificate does not match any pinned fingerprint")]
struct PinMismatch;

/// A TLS dial met a mesh service that runs without TLS (insecure mode).
#[derive(Debug, thiserror::Error)]
#[error("the service does not use TLS (it presented the insecure mode's self-signed certificate)")]
struct PlainService;

/// Carries a Go-style message through `rustls::OtherError`, whose `Display` prints the
/// inner error's `Debug` form: this `Debug` prints the message itself.
struct Reason(Box<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Reason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A certificate rejection whose text (from `err`) reaches the rustls error and the log.
pub(crate) fn other(err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Reason(
        Box::new(err),
    )))))
}

fn check_pins(pins: &[Fingerprint], leaf: &CertificateDer<'_>) -> Result<(), Error> {
    if pins_match(pins, leaf) {
        Ok(())
    } else {
        Err(other(PinMismatch))
    }
}

fn check_node_id(leaf: &CertificateDer<'_>, expected: Option<&str>) -> Result<(), Error> {
    match expected {
        None => Ok(()),
        Some(node) => check_cert_node_id(leaf, node).map_err(|e| match e {
            super::TlsError::CertName(n) => other(n),
            e => other(e),
        }),
    }
}

/// What a server certificate must be valid for (Go's `ExpectedHostnameType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServerIdentity {
    /// Backends: the name or IP the caller dials, given to rustls as the `ServerName`.
    Dns,
    /// Mesh streams: this Receptor node ID in the leaf's otherName SANs; no DNS check.
    NodeId(String),
}

/// Verifies a server for a `tls-client` config.
pub(crate) struct ReceptorServerVerifier {
    roots: Arc<RootCertStore>,
    pins: Arc<[Fingerprint]>,
    identity: ServerIdentity,
    algs: WebPkiSupportedAlgorithms,
}

impl ReceptorServerVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        pins: Arc<[Fingerprint]>,
        identity: ServerIdentity,
        provider: &CryptoProvider,
    ) -> Self {
        Self {
            roots,
            pins,
            identity,
            algs: provider.signature_verification_algorithms,
        }
    }
}

impl fmt::Debug for ReceptorServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceptorServerVerifier")
            .field("roots", &self.roots.len())
            .field("pins", &self.pins.len())
            .field("identity", &self.identity)
            .finish()
    }
}

impl ServerCertVerifier for ReceptorServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        match &self.identity {
            ServerIdentity::Dns => {
                // Go: standard verification (chain + name), then RVF (pins, chain with serverAuth).
                verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    now,
                    self.algs.all,
                )?;
                verify_server_name(&parsed, server_name)?;
                check_pins(&self.pins, end_entity)?;
            }
            ServerIdentity::NodeId(node) => {
                // Go: InsecureSkipVerify plus RVF only (pins, chain with serverAuth, node ID).
                let checked = check_pins(&self.pins, end_entity).and_then(|()| {
                    verify_server_cert_signed_by_trust_anchor(
                        &parsed,
                        &self.roots,
                        intermediates,
                        now,
                        self.algs.all,
                    )
                });
                // A service without TLS presents the insecure mode's self-signed certificate:
                // say that, rather than that its issuer is unknown.
                if checked.is_err() && chain_has_insecure_cn(std::iter::once(end_entity)) {
                    return Err(other(PlainService));
                }
                checked?;
                check_node_id(end_entity, Some(node))?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    check_signatures_with_algs!();
}

/// `insecureskipverify: true`: accepts any server certificate (pins included, as in Go),
/// but still checks that the server owns the key of the certificate it sent.
pub(crate) struct AcceptAnyServerCert {
    algs: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServerCert {
    pub(crate) fn new(provider: &CryptoProvider) -> Self {
        Self {
            algs: provider.signature_verification_algorithms,
        }
    }
}

impl fmt::Debug for AcceptAnyServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptAnyServerCert")
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    check_signatures_with_algs!();
}

/// Verifies client certificates for a `tls-server` config with client auth enabled.
///
/// A client certificate is always mandatory: with `requireclientcert` that is Go's
/// `RequireAndVerifyClientCert`; with only `clientcas` it is Go's quirk, where RVF runs
/// even without a certificate and fails with "peer certificate missing".
pub(crate) struct ReceptorClientVerifier {
    /// webpki chain check with EKU clientAuth; `None` when the CA store is empty.
    chain: Option<Arc<dyn ClientCertVerifier>>,
    hints: Vec<DistinguishedName>,
    pins: Arc<[Fingerprint]>,
    expected_node: Option<String>,
    algs: WebPkiSupportedAlgorithms,
}

impl ReceptorClientVerifier {
    /// `expected_node` adds the mesh-stream check that the client leaf carries the
    /// connecting node's ID.
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        pins: Arc<[Fingerprint]>,
        expected_node: Option<String>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let hints = roots.subjects();
        let chain = if roots.is_empty() {
            None
        } else {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| Error::General(e.to_string()))?;
            Some(verifier)
        };
        Ok(Self {
            chain,
            hints,
            pins,
            expected_node,
            algs: provider.signature_verification_algorithms,
        })
    }
}

impl fmt::Debug for ReceptorClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceptorClientVerifier")
            .field("roots", &self.hints.len())
            .field("pins", &self.pins.len())
            .field("expected_node", &self.expected_node)
            .finish()
    }
}

impl ClientCertVerifier for ReceptorClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let Some(chain) = &self.chain else {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        };
        chain.verify_client_cert(end_entity, intermediates, now)?;
        check_pins(&self.pins, end_entity)?;
        check_node_id(end_entity, self.expected_node.as_deref())?;
        Ok(ClientCertVerified::assertion())
    }

    check_signatures_with_algs!();
}
