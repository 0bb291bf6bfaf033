//! TLS material from PEM bytes: certificate chains, private keys, CA bundles.
//!
//! Strictness follows Go: the node's own certificate and key must parse
//! (`tls.X509KeyPair`), while CA bundles are read leniently
//! (`CertPool.AppendCertsFromPEM` skips anything it cannot parse).
//!
//! Nothing here reads a file: a [`PemSource`] hands the bytes in (the runtimes' is the file
//! system, `receptor_core::os::tls::Files`; [`PemMemory`] holds them in memory). Paths only
//! name the files in errors and select what the source returns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::error::TlsError;

/// Where the PEM files a `tls-server` / `tls-client` entry names come from.
pub trait PemSource {
    /// The contents of the file at `path`, named by the parameter `param` (`cert`, `key`,
    /// `rootcas`, `clientcas`).
    fn read(&mut self, param: &'static str, path: &Path) -> Result<Vec<u8>, TlsError>;

    /// The system trust store, used when `rootcas` / `clientcas` is unset.
    fn system_roots(&mut self) -> RootCertStore;
}

/// PEM files held in memory, by path, and an empty system trust store: for an embedder whose
/// certificates do not live in files, and for tests.
#[derive(Clone, Debug, Default)]
pub struct PemMemory {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl PemMemory {
    /// An empty set of files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the file at `path`.
    pub fn insert(&mut self, path: impl Into<PathBuf>, pem: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.into(), pem.into());
        self
    }
}

impl PemSource for PemMemory {
    fn read(&mut self, param: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| TlsError::ReadFile {
                param,
                path: path.to_owned(),
                source: std::io::ErrorKind::NotFound.into(),
            })
    }

    fn system_roots(&mut self) -> RootCertStore {
        RootCertStore::empty()
    }
}

/// Every `CERTIFICATE` block of `pem`, in order (leaf first). `param` and `path` name the
/// file in errors.
///
/// Fails on broken PEM, or when there is no certificate.
pub fn cert_chain_from_pem(
    param: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            param,
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            param,
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first PKCS#1, PKCS#8 or SEC1 private key of `pem` (the `key` file at `path`).
pub fn private_key_from_pem(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            param: "key",
            path: path.to_owned(),
            source,
        },
    })
}

/// A certificate chain and its key, checked to belong together (the files at `cert` and `key`
/// hold `cert_pem` and `key_pem`).
pub fn certified_key_from_pem(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = cert_chain_from_pem("cert", cert, cert_pem)?;
    let key_der = private_key_from_pem(key, key_pem)?;
    let signing_key =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der).map_err(|source| {
            TlsError::UnsupportedKey {
                path: key.to_owned(),
                source,
            }
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        // Some key types cannot report their public key; the handshake will catch a mismatch.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            });
        }
    }
    Ok(Arc::new(certified))
}

/// Adds every parsable certificate of a PEM bundle; returns how many were added.
pub fn add_pem_bundle(roots: &mut RootCertStore, pem: &[u8]) -> usize {
    // Stop at the first broken block, keeping what came before (Go skips junk similarly).
    let certs = CertificateDer::pem_slice_iter(pem).map_while(Result::ok);
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    added
}

/// A CA bundle (`rootcas` / `clientcas`, the file at `path`) as a trust store.
///
/// A bundle without usable certificates yields an empty store (Go accepts the config, then
/// every verification fails), with a warning.
pub fn ca_store_from_pem(param: &'static str, path: &Path, pem: &[u8]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    if add_pem_bundle(&mut roots, pem) == 0 {
        tracing::warn!(param, path = %path.display(), "no usable CA certificates; every peer will be rejected");
    }
    roots
}

/// Reads and parses a certificate and key through `source`.
pub(crate) fn load_certified_key(
    source: &mut dyn PemSource,
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = source.read("cert", cert)?;
    let key_pem = source.read("key", key)?;
    certified_key_from_pem(cert, &cert_pem, key, &key_pem)
}

/// Reads and parses a CA bundle through `source`.
pub(crate) fn load_ca(
    source: &mut dyn PemSource,
    param: &'static str,
    path: &Path,
) -> Result<RootCertStore, TlsError> {
    let pem = source.read(param, path)?;
    Ok(ca_store_from_pem(param, path, &pem))
}
