//! The "insecure" mesh-stream mode (netceptor spec §8.3, ConnType 1): used when a service
//! listens without a `tls-server`. The listener presents a throwaway self-signed certificate
//! with a well-known CommonName; the dialer accepts any chain containing that CN.
//!
//! This only proves that the peer speaks netceptor's insecure mode; it authenticates nothing.
//! Validity dates are ignored on purpose: Go listeners running for over 24 hours present
//! expired certificates. The TLS 1.3 CertificateVerify signature is still checked.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::version::TLS13;
use rustls::{ClientConfig, Error, ServerConfig};

use super::config::{ALPN_NETCEPTOR, go_ordered_provider};
use super::der;
use super::error::TlsError;
use super::verify;

/// Subject CommonName of the insecure-mode certificate (Go's `insecureCommonName`).
pub const INSECURE_COMMON_NAME: &str = "netceptor-insecure-common-name";

/// How long before `now` the generated certificate becomes valid.
const BACKDATE: Duration = Duration::from_secs(60);
/// How long after `now` the generated certificate stays valid.
const LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Seconds since the Unix epoch, clamped to what an X.509 time can express
/// (9999-12-31T23:59:59Z), so that date arithmetic in rcgen cannot overflow.
fn since_epoch(t: SystemTime) -> Duration {
    const MAX_SECS: u64 = 253_402_300_799;
    Duration::from_secs(
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(MAX_SECS),
    )
}

/// Generates the self-signed insecure-mode certificate and its PKCS#8 key.
///
/// Like Go: serial 1, Subject CN [`INSECURE_COMMON_NAME`], valid `now - 1 min` to
/// `now + 24 h`, no extensions. The key is ECDSA P-256 rather than Go's RSA-2048; Go
/// clients accept any key type their x509 parser knows.
pub fn generate_insecure_cert(
    now: SystemTime,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = insecure_cert_for(now, &key_pair)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    Ok((cert, key))
}

/// The insecure-mode certificate (as [`generate_insecure_cert`] makes it) for a given PKCS#8
/// key of any type rcgen signs with. With a fixed key and `now`, and a key type whose
/// signatures are deterministic (Ed25519), the same bytes every time: what a simulation needs.
pub fn insecure_cert_for_key(
    now: SystemTime,
    key: &PrivatePkcs8KeyDer<'_>,
) -> Result<CertificateDer<'static>, TlsError> {
    insecure_cert_for(now, &rcgen::KeyPair::try_from(key)?)
}

fn insecure_cert_for(
    now: SystemTime,
    key_pair: &rcgen::KeyPair,
) -> Result<CertificateDer<'static>, TlsError> {
    let mut params = rcgen::CertificateParams::default();
    params.serial_number = Some(rcgen::SerialNumber::from(1u64));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, INSECURE_COMMON_NAME);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH));
    params.not_after = epoch + since_epoch(now.checked_add(LIFETIME).unwrap_or(now));
    Ok(params.self_signed(key_pair)?.der().clone())
}

/// A mesh-stream server config for the insecure mode, with a fresh certificate generated
/// for `now` (Go makes one per listening service). TLS 1.3, ALPN `netceptor`, no client
/// certificate requested, SNI ignored, default key-exchange groups (as in Go).
pub fn insecure_server_config(now: SystemTime) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert, key) = generate_insecure_cert(now)?;
    insecure_server_config_with(cert, key)
}

/// [`insecure_server_config`] with a given certificate (see [`insecure_cert_for_key`]) and
/// its key.
pub fn insecure_server_config_with(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(go_ordered_provider()))
        .with_protocol_versions(&[&TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![ALPN_NETCEPTOR.to_vec()];
    Ok(Arc::new(config))
}

/// A mesh-stream client config for dialing an insecure-mode service: TLS 1.3, ALPN
/// `netceptor`, server accepted by [`InsecureCommonNameVerifier`].
///
/// Go sends the dialer's own node ID as SNI; pass it as the connector's server name if it is
/// a valid DNS name (the Go server ignores SNI, so any valid name works).
pub fn insecure_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(go_ordered_provider());
    let verifier = Arc::new(InsecureCommonNameVerifier::new(
        provider.signature_verification_algorithms,
    ));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_NETCEPTOR.to_vec()];
    Ok(Arc::new(config))
}

/// The QUIC client config of an insecure-mode mesh stream: [`insecure_client_config`] for
/// quinn, made once per process and shared by every dial. It keeps no state between dials: no
/// session resumption and no address-validation tokens (see [`crate::stream::client_config`]).
pub fn insecure_stream_client() -> Result<quinn_proto::ClientConfig, TlsError> {
    static MADE: std::sync::OnceLock<quinn_proto::ClientConfig> = std::sync::OnceLock::new();
    if let Some(made) = MADE.get() {
        return Ok(made.clone());
    }
    let tls = insecure_client_config()?;
    let quic = crate::stream::client_config((*tls).clone())?;
    Ok(MADE.get_or_init(|| quic).clone())
}

/// Go's `verifyServerCertificate`: accepts iff any certificate in the presented chain
/// decodes and has exactly the CommonName [`INSECURE_COMMON_NAME`]. No chain, date or
/// name checks; the handshake signature is verified with the provider's algorithms.
pub struct InsecureCommonNameVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl InsecureCommonNameVerifier {
    /// Builds the verifier with the given signature algorithms (usually the provider's).
    pub fn new(algs: WebPkiSupportedAlgorithms) -> Self {
        Self { algs }
    }
}

impl fmt::Debug for InsecureCommonNameVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InsecureCommonNameVerifier")
    }
}

/// Go's error text for a secure (or foreign) certificate on an insecure connection.
#[derive(Debug, thiserror::Error)]
#[error("insecure connection to secure service")]
struct NotInsecureService;

/// Whether any certificate of a chain has the insecure-mode CommonName.
pub fn chain_has_insecure_cn<'a>(chain: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> bool {
    chain
        .into_iter()
        .any(|c| matches!(der::subject_common_name(c), Ok(Some(cn)) if cn == INSECURE_COMMON_NAME))
}

impl ServerCertVerifier for InsecureCommonNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if chain_has_insecure_cn(std::iter::once(end_entity).chain(intermediates)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(verify::other(NotInsecureService))
        }
    }

    check_signatures_with_algs!();
}
