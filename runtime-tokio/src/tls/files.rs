//! Loading PEM files, CA pools and the system trust store, and pinned fingerprints.
//!
//! Strictness follows Go: the node's own certificate and key must parse
//! (`tls.X509KeyPair`), while CA bundles are read leniently
//! (`CertPool.AppendCertsFromPEM` skips anything it cannot parse).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::error::TlsError;

fn read(param: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::ReadFile {
        param,
        path: path.to_owned(),
        source,
    })
}

/// Reads every `CERTIFICATE` block of a PEM file, in order (leaf first).
///
/// Fails when the file is unreadable, has broken PEM, or has no certificate.
pub(crate) fn load_cert_chain(
    param: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(param, path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
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

/// Reads the first PKCS#1, PKCS#8 or SEC1 private key of a PEM file.
fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
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

/// Loads a certificate chain and its key, checking that they belong together.
pub(crate) fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_cert_chain("cert", cert)?;
    let key_der = load_private_key(key)?;
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
fn add_pem_bundle(roots: &mut RootCertStore, pem: &[u8]) -> usize {
    // Stop at the first broken block, keeping what came before (Go skips junk similarly).
    let certs = CertificateDer::pem_slice_iter(pem).map_while(Result::ok);
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    added
}

/// Reads a CA bundle (`rootcas` / `clientcas`).
///
/// An unreadable file is an error; a file without usable certificates yields an empty
/// store (Go accepts the config, then every verification fails), with a warning.
pub(crate) fn load_ca_file(param: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read(param, path)?;
    let mut roots = RootCertStore::empty();
    if add_pem_bundle(&mut roots, &pem) == 0 {
        tracing::warn!(param, path = %path.display(), "no usable CA certificates; every peer will be rejected");
    }
    Ok(roots)
}

/// Go's CA bundle locations on Linux (`crypto/x509/root_linux.go`), first readable one wins.
const CERT_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Go's CA directories on Linux; every file in each is read.
const CERT_DIRECTORIES: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];

/// Loads the system trust store the way Go's `x509.SystemCertPool` does on Unix:
/// `SSL_CERT_FILE` (else the first readable of Go's Linux bundle paths, starting with
/// `/etc/ssl/certs/ca-certificates.crt`) plus every file in the `SSL_CERT_DIR` directories
/// (colon-separated; else `/etc/ssl/certs` and `/etc/pki/tls/certs`).
///
/// Used when `rootcas` / `clientcas` is unset. No network access; an empty result is
/// not an error (verification then fails with "unknown issuer").
pub fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let env_file = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty());
    let files: Vec<PathBuf> = match env_file {
        Some(f) => vec![PathBuf::from(f)],
        None => CERT_FILES.iter().map(PathBuf::from).collect(),
    };
    if let Some(pem) = files.iter().find_map(|f| fs::read(f).ok()) {
        add_pem_bundle(&mut roots, &pem);
    }
    let env_dirs = std::env::var("SSL_CERT_DIR").ok().filter(|d| !d.is_empty());
    let dirs: Vec<PathBuf> = match env_dirs {
        Some(d) => d.split(':').map(PathBuf::from).collect(),
        None => CERT_DIRECTORIES.iter().map(PathBuf::from).collect(),
    };
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(pem) = fs::read(entry.path()) {
                add_pem_bundle(&mut roots, &pem);
            }
        }
    }
    tracing::debug!(count = roots.len(), "loaded system trust store");
    roots
}

/// A pinned certificate fingerprint: SHA-256 (32 bytes) or SHA-512 (64 bytes) of the leaf DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// Parses Go's configuration form: hex digits with optional `:` separators,
    /// decoding to 32 or 64 bytes (Go's `decodeFingerprints`).
    pub fn parse(text: &str) -> Result<Self, TlsError> {
        let err = |reason| TlsError::Fingerprint {
            value: text.to_owned(),
            reason,
        };
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        if digits.len() % 2 == 1 {
            return Err(err("odd number of hex digits"));
        }
        let nibble = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
        let bytes = digits
            .chunks_exact(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| err("invalid hex digit"))?;
        if bytes.len() != 32 && bytes.len() != 64 {
            return Err(err(
                "fingerprints must be 32 or 64 bytes for sha256 or sha512",
            ));
        }
        Ok(Self(bytes))
    }

    /// Parses a list of configured fingerprints.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Self>, TlsError> {
        texts.iter().map(|t| Self::parse(t.as_ref())).collect()
    }

    /// Computes the SHA-256 fingerprint of a DER certificate.
    pub fn sha256_of(cert_der: &[u8]) -> Self {
        Self(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der)
                .as_ref()
                .to_vec(),
        )
    }

    /// Whether this fingerprint is the SHA-256 or SHA-512 digest of `cert_der`.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        let alg = if self.0.len() == 32 {
            &aws_lc_rs::digest::SHA256
        } else {
            &aws_lc_rs::digest::SHA512
        };
        aws_lc_rs::digest::digest(alg, cert_der).as_ref() == self.0.as_slice()
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Whether the leaf matches at least one pin; an empty pin list matches everything.
pub(crate) fn pins_match(pins: &[Fingerprint], leaf: &[u8]) -> bool {
    pins.is_empty() || pins.iter().any(|p| p.matches(leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_forms() {
        let der = b"not really a certificate";
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        let hex: String = sha256
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let fp = Fingerprint::parse(&hex).unwrap();
        assert!(fp.matches(der));
        assert_eq!(fp, Fingerprint::sha256_of(der));
        let lower: String = sha256.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert!(Fingerprint::parse(&lower).unwrap().matches(der));
        let sha512: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let fp512 = Fingerprint::parse(&sha512).unwrap();
        assert!(fp512.matches(der) && !fp512.matches(b"other"));
        assert!(pins_match(&[], der));
        assert!(pins_match(&[fp512.clone(), fp.clone()], der));
        assert!(!pins_match(&[fp512], b"other"));
    }

    #[test]
    fn fingerprint_errors() {
        for bad in [
            "",
            "abc",
            "zz",
            &"ab".repeat(28),
            &"ab".repeat(48),
            &"ab".repeat(33),
        ] {
            let err = Fingerprint::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("error decoding fingerprints"),
                "{err}"
            );
        }
    }
}
