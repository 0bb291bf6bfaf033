//! `tls-server` / `tls-client` parameters and the rustls configs built from them
//! (netceptor spec §2.5 and §8.3, control spec §4.2; Go `pkg/netceptor/tlsconfig.go`).
//!
//! Loading ([`TlsServer::from_source`], [`TlsClient::from_source`]; the runtimes' `load` reads
//! the files) happens once at startup, like Go's `Prepare`: the PEM files are parsed, the
//! node-ID check runs, fingerprints are decoded. Configs are
//! then derived per use, like Go's `GetClientTLSConfig` / stream listener setup:
//! backends (tcp/ws) verify DNS names, mesh streams (QUIC) verify Receptor node IDs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::error::TlsError;
use super::fingerprint::Fingerprint;
use super::nodeid;
use super::pem::{self, PemSource};
use super::verify::{
    AcceptAnyServerCert, ReceptorClientVerifier, ReceptorServerVerifier, ServerIdentity,
};

/// ALPN protocol forced on every mesh-stream (QUIC) TLS config.
pub const ALPN_NETCEPTOR: &[u8] = b"netceptor";
/// ALPN protocol for WebSocket backends (HTTP/1.1 only).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Parameters of a `tls-server` entry, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsServerParams {
    /// `name`: how listeners and services refer to this config.
    pub name: String,
    /// `cert`: PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// `key`: PEM private key (PKCS#1, PKCS#8 or SEC1).
    pub key: PathBuf,
    /// `requireclientcert`: clients must present a certificate that chains to `clientcas`.
    pub require_client_cert: bool,
    /// `clientcas`: CA bundle for client certificates (system roots when unset).
    pub client_cas: Option<PathBuf>,
    /// `pinnedclientcert`: hex SHA-256/SHA-512 fingerprints; the client leaf must match one.
    pub pinned_client_cert: Vec<String>,
    /// `skipreceptornamescheck`: skip the startup check that `cert` carries our node ID.
    pub skip_receptor_names_check: bool,
    /// `mintls13`: TLS 1.3 only, with default key-exchange groups.
    pub min_tls13: bool,
    /// `bindnodeid` (not in Go): on tcp/ws backends, a client must announce a node ID its
    /// certificate carries. Needs client certificates (`requireclientcert` or `clientcas`).
    pub bind_node_id: bool,
}

/// Parameters of a `tls-client` entry, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsClientParams {
    /// `name`: how peers and services refer to this config.
    pub name: String,
    /// `cert`: client certificate chain to present (must come with `key`).
    pub cert: Option<PathBuf>,
    /// `key`: private key for `cert`.
    pub key: Option<PathBuf>,
    /// `rootcas`: CA bundle for server certificates (system roots when unset).
    pub root_cas: Option<PathBuf>,
    /// `insecureskipverify`: accept any server certificate (disables pins too).
    pub insecure_skip_verify: bool,
    /// `pinnedservercert`: hex SHA-256/SHA-512 fingerprints; the server leaf must match one.
    pub pinned_server_cert: Vec<String>,
    /// `skipreceptornamescheck`: skip the startup check that `cert` carries our node ID.
    pub skip_receptor_names_check: bool,
    /// `mintls13`: TLS 1.3 only, with default key-exchange groups.
    pub min_tls13: bool,
    /// `bindnodeid` (not in Go): on tcp/ws backends, the server must announce a node ID its
    /// certificate carries. Refused with `insecureskipverify`, which leaves nothing proven.
    pub bind_node_id: bool,
}

/// How a `tls-server` treats client certificates (Go's `tls.ClientAuthType` choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// Neither `requireclientcert` nor `clientcas`: no certificate is requested.
    None,
    /// Only `clientcas`: Go's `VerifyClientCertIfGiven`, which in practice still requires a
    /// certificate because Receptor's verify callback fails when none is sent.
    VerifyIfGiven,
    /// `requireclientcert`: Go's `RequireAndVerifyClientCert`; mesh streams also bind the
    /// client certificate to the connecting node ID.
    Require,
}

/// The crypto provider for a config: aws-lc-rs, restricted like Go's `baseTLS`.
///
/// Without `mintls13` Go allows only P-521, P-384 and P-256 (no X25519) and four TLS 1.2
/// suites. rustls has no P-521 key exchange and no static-RSA suites, so this offers P-384
/// and P-256, all TLS 1.3 suites, and the three ECDHE suites of Go's list.
pub(crate) fn provider(min_tls13: bool) -> Arc<CryptoProvider> {
    let base = go_ordered_provider();
    if min_tls13 {
        return Arc::new(base);
    }
    use aws_lc_rs::cipher_suite as cs;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![
            aws_lc_rs::kx_group::SECP384R1,
            aws_lc_rs::kx_group::SECP256R1,
        ],
        ..base
    })
}

/// aws-lc-rs with the TLS 1.3 suites in Go's order where AES is in hardware: AES-128-GCM,
/// ChaCha20-Poly1305, AES-256-GCM (rustls puts AES-256 first). The client's order picks the
/// suite, and every byte of a mesh stream is sealed with it: AES-128 takes 10 rounds to
/// AES-256's 14, which made stream encryption about a third cheaper.
///
/// Key exchange offers X25519, P-256 and P-384, as Go does with `mintls13` and as every
/// mesh stream does: not the provider's post-quantum hybrid, whose key share would make
/// the first QUIC packet of every stream a kilobyte larger.
pub(crate) fn go_ordered_provider() -> CryptoProvider {
    use aws_lc_rs::cipher_suite as cs;
    use aws_lc_rs::kx_group as kx;
    let base = aws_lc_rs::default_provider();
    let tls13 = [
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
    ];
    let mut cipher_suites = tls13.to_vec();
    cipher_suites.extend(base.cipher_suites.iter().filter(|s| !tls13.contains(s)));
    CryptoProvider {
        cipher_suites,
        kx_groups: vec![kx::X25519, kx::SECP256R1, kx::SECP384R1],
        ..base
    }
}

/// Protocol versions: TLS 1.2+ for backends unless `mintls13`; QUIC is always TLS 1.3.
fn versions(min_tls13: bool, stream: bool) -> &'static [&'static SupportedProtocolVersion] {
    static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&TLS13];
    static TLS12_AND_13: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];
    if min_tls13 || stream {
        TLS13_ONLY
    } else {
        TLS12_AND_13
    }
}

fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.to_vec()).collect()
}

/// Treats an empty path like an unset parameter, as Go compares against `""`.
fn set(path: Option<&PathBuf>) -> Option<&Path> {
    path.map(PathBuf::as_path)
        .filter(|p| !p.as_os_str().is_empty())
}

/// A loaded `tls-server` entry, from which server configs are derived.
#[derive(Clone, Debug)]
pub struct TlsServer {
    name: String,
    key: Arc<CertifiedKey>,
    client_auth: ClientAuthMode,
    client_roots: Arc<RootCertStore>,
    pins: Arc<[Fingerprint]>,
    min_tls13: bool,
    bind_node_id: bool,
}

impl TlsServer {
    /// Parses the certificate, key and CA files that `source` holds for `params`, and runs
    /// Go's startup check that the certificate carries `node_id` (unless
    /// `skip_receptor_names_check`).
    pub fn from_source(
        params: &TlsServerParams,
        node_id: &str,
        source: &mut dyn PemSource,
    ) -> Result<Self, TlsError> {
        let key = pem::load_certified_key(source, &params.cert, &params.key)?;
        if !params.skip_receptor_names_check {
            let leaf = key.end_entity_cert()?;
            nodeid::check_leaf_names(&params.name, &params.cert, leaf, node_id)?;
        }
        let client_cas = set(params.client_cas.as_ref());
        let client_auth = match (params.require_client_cert, client_cas) {
            (true, _) => ClientAuthMode::Require,
            (false, Some(_)) => ClientAuthMode::VerifyIfGiven,
            (false, None) => ClientAuthMode::None,
        };
        let client_roots = match (client_auth, client_cas) {
            (_, Some(path)) => Arc::new(pem::load_ca(source, "clientcas", path)?),
            (ClientAuthMode::Require, None) => Arc::new(source.system_roots()),
            (_, None) => Arc::new(RootCertStore::empty()),
        };
        if params.bind_node_id && client_auth == ClientAuthMode::None {
            return Err(TlsError::BindNeedsVerifiedCert {
                section: params.name.clone(),
                why: "it needs client certificates: set requireclientcert or clientcas",
            });
        }
        // Decoded (and validated) even when unused, as in Go.
        let pins = Fingerprint::parse_all(&params.pinned_client_cert)?.into();
        Ok(Self {
            name: params.name.clone(),
            key,
            client_auth,
            client_roots,
            pins,
            min_tls13: params.min_tls13,
            bind_node_id: params.bind_node_id,
        })
    }

    /// The entry's `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `bindnodeid`: backends using this config bind a client's node ID to its certificate.
    pub fn bind_node_id(&self) -> bool {
        self.bind_node_id
    }

    /// How client certificates are treated.
    pub fn client_auth(&self) -> ClientAuthMode {
        self.client_auth
    }

    /// A server config for a tcp/ws backend listener (or any plain TLS listener such as
    /// the control service's `tcptls`). `alpn` is offered as given (ws needs `http/1.1`).
    pub fn backend_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = provider(self.min_tls13);
        let verifier = self.client_verifier(&provider, None, true)?;
        self.build(provider, versions(self.min_tls13, false), verifier, alpn)
    }

    /// A server config for a mesh-stream (QUIC) listener: TLS 1.3, ALPN `netceptor`.
    ///
    /// It checks client chains and pins but no node ID; with [`ClientAuthMode::Require`] use
    /// [`Self::stream_config_for_peer`] for each connection instead, as Go does.
    pub fn stream_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = provider(self.min_tls13);
        let verifier = self.client_verifier(&provider, None, true)?;
        self.build(
            provider,
            versions(self.min_tls13, true),
            verifier,
            &[ALPN_NETCEPTOR],
        )
    }

    /// The mesh-stream server config for one incoming connection from `remote_node` (the
    /// netceptor FromNode of the QUIC packets; for quinn, pass it to `Incoming::accept_with`).
    ///
    /// With [`ClientAuthMode::Require`] the client leaf must carry `remote_node` and pinned
    /// fingerprints are not applied (Go's per-connection `GetConfigForClient`). Otherwise this
    /// equals [`Self::stream_config`].
    pub fn stream_config_for_peer(&self, remote_node: &str) -> Result<Arc<ServerConfig>, TlsError> {
        if self.client_auth != ClientAuthMode::Require {
            return self.stream_config();
        }
        let provider = provider(self.min_tls13);
        let verifier = self.client_verifier(&provider, Some(remote_node), false)?;
        self.build(
            provider,
            versions(self.min_tls13, true),
            verifier,
            &[ALPN_NETCEPTOR],
        )
    }

    fn client_verifier(
        &self,
        provider: &Arc<CryptoProvider>,
        expected_node: Option<&str>,
        with_pins: bool,
    ) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        if self.client_auth == ClientAuthMode::None {
            // Go applies pinnedclientcert only when client auth is on.
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        let pins = if with_pins {
            self.pins.clone()
        } else {
            Arc::from([])
        };
        let verifier = ReceptorClientVerifier::new(
            self.client_roots.clone(),
            pins,
            expected_node.map(str::to_owned),
            provider,
        )?;
        Ok(Arc::new(verifier))
    }

    fn build(
        &self,
        provider: Arc<CryptoProvider>,
        versions: &[&'static SupportedProtocolVersion],
        verifier: Arc<dyn ClientCertVerifier>,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(self.key.clone())));
        config.alpn_protocols = alpn_list(alpn);
        Ok(Arc::new(config))
    }
}

/// A loaded `tls-client` entry, from which client configs are derived.
#[derive(Clone, Debug)]
pub struct TlsClient {
    name: String,
    key: Option<Arc<CertifiedKey>>,
    roots: Arc<RootCertStore>,
    insecure_skip_verify: bool,
    pins: Arc<[Fingerprint]>,
    min_tls13: bool,
    bind_node_id: bool,
}

impl TlsClient {
    /// Parses the optional certificate/key and the CA file that `source` holds for `params`,
    /// and runs Go's startup check that a configured certificate carries `node_id` (unless
    /// `skip_receptor_names_check`).
    pub fn from_source(
        params: &TlsClientParams,
        node_id: &str,
        source: &mut dyn PemSource,
    ) -> Result<Self, TlsError> {
        let key = match (set(params.cert.as_ref()), set(params.key.as_ref())) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let certified = pem::load_certified_key(source, cert, key)?;
                if !params.skip_receptor_names_check {
                    nodeid::check_leaf_names(
                        &params.name,
                        cert,
                        certified.end_entity_cert()?,
                        node_id,
                    )?;
                }
                Some(certified)
            }
            _ => return Err(TlsError::CertWithoutKey),
        };
        let root_cas = set(params.root_cas.as_ref());
        let roots = match (root_cas, params.insecure_skip_verify) {
            (Some(path), _) => Arc::new(pem::load_ca(source, "rootcas", path)?),
            (None, false) => Arc::new(source.system_roots()),
            (None, true) => Arc::new(RootCertStore::empty()),
        };
        let pins = Fingerprint::parse_all(&params.pinned_server_cert)?.into();
        if params.bind_node_id && params.insecure_skip_verify {
            return Err(TlsError::BindNeedsVerifiedCert {
                section: params.name.clone(),
                why: "insecureskipverify accepts any certificate, which proves no node ID",
            });
        }
        Ok(Self {
            name: params.name.clone(),
            key,
            roots,
            insecure_skip_verify: params.insecure_skip_verify,
            pins,
            min_tls13: params.min_tls13,
            bind_node_id: params.bind_node_id,
        })
    }

    /// The entry's `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `bindnodeid`: backends using this config bind the server's node ID to its certificate.
    pub fn bind_node_id(&self) -> bool {
        self.bind_node_id
    }

    /// A client config for dialing a tcp/ws backend (or any plain TLS server).
    ///
    /// The server is checked against the `ServerName` given to the connector, which must be
    /// the host part of the peer address (see [`super::server_name_for_host`]). SNI is sent
    /// unless `insecureskipverify`, where Go leaves `ServerName` empty.
    pub fn backend_config(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = provider(self.min_tls13);
        let verifier = self.server_verifier(&provider, ServerIdentity::Dns);
        let mut config = self.build(provider, versions(self.min_tls13, false), verifier, alpn)?;
        config.enable_sni = !self.insecure_skip_verify;
        Ok(Arc::new(config))
    }

    /// A client config for a mesh-stream (QUIC) connection to `target_node`: TLS 1.3, ALPN
    /// `netceptor`, no SNI, and the server leaf must carry `target_node` as a Receptor node ID
    /// (no DNS check). The `ServerName` given to the connector is then irrelevant.
    pub fn stream_config(&self, target_node: &str) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = provider(self.min_tls13);
        let verifier =
            self.server_verifier(&provider, ServerIdentity::NodeId(target_node.to_owned()));
        let mut config = self.build(
            provider,
            versions(self.min_tls13, true),
            verifier,
            &[ALPN_NETCEPTOR],
        )?;
        config.enable_sni = false;
        Ok(Arc::new(config))
    }

    fn server_verifier(
        &self,
        provider: &CryptoProvider,
        identity: ServerIdentity,
    ) -> Arc<dyn ServerCertVerifier> {
        if self.insecure_skip_verify {
            Arc::new(AcceptAnyServerCert::new(provider))
        } else {
            Arc::new(ReceptorServerVerifier::new(
                self.roots.clone(),
                self.pins.clone(),
                identity,
                provider,
            ))
        }
    }

    fn build(
        &self,
        provider: Arc<CryptoProvider>,
        versions: &[&'static SupportedProtocolVersion],
        verifier: Arc<dyn ServerCertVerifier>,
        alpn: &[&[u8]],
    ) -> Result<ClientConfig, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.key {
            Some(key) => {
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())))
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn_list(alpn);
        Ok(config)
    }
}
