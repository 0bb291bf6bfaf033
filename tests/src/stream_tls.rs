//! TLS for simulated mesh streams: one certificate per simulation, derived from its seed.
//!
//! The runtimes' TLS builders (`receptor_tokio::tls`) would pull tokio into the simulator and
//! make a fresh random key per listener. Here a few lines of rustls and rcgen do instead:
//! an Ed25519 key whose seed comes from the simulation seed, a self-signed certificate made
//! from it (rcgen with fixed parameters: the same bytes every run), and a client that
//! accepts exactly that certificate (pinned by its DER) and checks the handshake signature.
//! Ed25519 signatures are deterministic and of fixed size, so handshakes have the same
//! sizes every run (key shares and nonces still come from the OS; see `streams.rs`).

use std::sync::Arc;

use receptor_core::stream::quinn_proto::{ClientConfig, ServerConfig};
use receptor_core::stream::{client_config, server_config};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::check::mix64;

/// The server name every simulated dial presents (the pinned verifier ignores it).
pub(crate) const SERVER_NAME: &str = "receptor-sim";

/// The QUIC configs of one simulation.
pub(crate) struct SimTls {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: ClientConfig,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTls")
    }
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
fn ed25519_pkcs8(seed: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

impl SimTls {
    /// Configs for the simulation seeded with `seed`.
    ///
    /// # Panics
    /// If rustls or rcgen refuse what is built here (a bug, not a runtime condition).
    pub(crate) fn new(seed: u64) -> Self {
        let mut key_seed = [0u8; 32];
        for (i, chunk) in key_seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&mix64(seed ^ mix64(0x7715 + i as u64)).to_le_bytes());
        }
        let pkcs8 = PrivatePkcs8KeyDer::from(ed25519_pkcs8(key_seed));
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
            .expect("Ed25519 key");
        let mut params =
            rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()]).expect("cert params");
        params.serial_number = Some(rcgen::SerialNumber::from(1u64));
        let cert = params
            .self_signed(&key)
            .expect("self-signed cert")
            .der()
            .clone();

        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(pkcs8))
            .expect("server cert");
        let mut server = server;
        // No session tickets: every handshake is a full one, the same every run.
        server.send_tls13_tickets = 0;

        let verifier = Arc::new(Pinned {
            cert,
            algs: provider().signature_verification_algorithms,
        });
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        client.resumption = rustls::client::Resumption::disabled();

        Self {
            server: server_config(server).expect("QUIC server config"),
            client: client_config(client).expect("QUIC client config"),
        }
    }
}

/// The QUIC server and client configs the simulator's streams use with seed `seed`, for
/// tests that drive [`receptor_core::stream::Streams`] by hand.
pub fn stream_tls(seed: u64) -> (Arc<ServerConfig>, ClientConfig) {
    let t = SimTls::new(seed);
    (t.server, t.client)
}

/// Accepts exactly one certificate; handshake signatures are verified for real.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
