//! TLS material from the file system: the [`PemSource`] the runtimes load `tls-server` /
//! `tls-client` entries with, and the system trust store read the way Go reads it.
//!
//! Everything else about TLS (parsing, checks, configs) is in [`crate::tls`], which reads
//! nothing itself.

use std::fs;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;

use crate::tls::{
    PemSource, TlsClient, TlsClientParams, TlsError, TlsServer, TlsServerParams, add_pem_bundle,
    cert_chain_from_pem, check_leaf_names,
};

/// The file system as a [`PemSource`]: files are read when a config is loaded, and the
/// system trust store is [`system_roots`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Files;

impl PemSource for Files {
    fn read(&mut self, param: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
        fs::read(path).map_err(|source| TlsError::ReadFile {
            param,
            path: path.to_owned(),
            source,
        })
    }

    fn system_roots(&mut self) -> RootCertStore {
        system_roots()
    }
}

impl TlsServer {
    /// Reads the certificate, key and CA files, and runs Go's startup check that the
    /// certificate carries `node_id` (unless `skip_receptor_names_check`); see
    /// [`TlsServer::from_source`].
    pub fn load(params: &TlsServerParams, node_id: &str) -> Result<Self, TlsError> {
        Self::from_source(params, node_id, &mut Files)
    }
}

impl TlsClient {
    /// Reads the optional certificate/key and the CA file, and runs Go's startup check that
    /// a configured certificate carries `node_id`; see [`TlsClient::from_source`].
    pub fn load(params: &TlsClientParams, node_id: &str) -> Result<Self, TlsError> {
        Self::from_source(params, node_id, &mut Files)
    }
}

/// Go's startup check: unless `skip` (`skipreceptornamescheck`), the node's own certificate
/// must carry `node_id`. Only the first certificate in `cert_path` (the leaf) is examined.
///
/// `section` is the name of the `tls-server` / `tls-client` entry, quoted in the error.
pub fn check_own_cert_names(
    section: &str,
    cert_path: &Path,
    node_id: &str,
    skip: bool,
) -> Result<(), TlsError> {
    if skip {
        return Ok(());
    }
    let pem = Files.read("cert", cert_path)?;
    let chain = cert_chain_from_pem("cert", cert_path, &pem)?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        param: "cert",
        path: cert_path.to_owned(),
    })?;
    check_leaf_names(section, cert_path, leaf, node_id)
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
