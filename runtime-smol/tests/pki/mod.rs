//! Test PKI: a CA (and another nobody trusts) from `receptor_tests::pki`, its leaves written
//! as PEM files and loaded into backend TLS configs the way the runtimes load them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use receptor_smol::tls::{TlsClient, TlsClientParams, TlsServer, TlsServerParams};

use crate::common::TempDir;
pub use receptor_tests::pki::Ca;
use receptor_tests::pki::both;

/// Writes `contents` to `name` in `dir`; returns its path.
fn write(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A CA, another CA nobody here trusts, and their files.
pub struct Pki {
    pub dir: TempDir,
    pub ca: Ca,
    pub ca_file: PathBuf,
    pub other_file: PathBuf,
}

impl Pki {
    pub fn new() -> Self {
        let dir = TempDir::new("tls");
        let ca = Ca::new("receptor test CA");
        let other = Ca::new("someone else's CA");
        Self {
            ca_file: write(&dir, "ca.crt", &ca.cert_pem()),
            other_file: write(&dir, "other.crt", &other.cert_pem()),
            dir,
            ca,
        }
    }

    /// Writes `<name>.crt` / `<name>.key`: a leaf for `node_ids` signed by `by`.
    fn leaf(&self, by: &Ca, name: &str, node_ids: &[&str]) -> (PathBuf, PathBuf) {
        let leaf = by.leaf(node_ids, both());
        (
            write(&self.dir, &format!("{name}.crt"), &leaf.cert_pem()),
            write(&self.dir, &format!("{name}.key"), &leaf.key_pem()),
        )
    }

    /// A mutual-TLS server config for `node` (certificate signed by our CA; clients must
    /// present one signed by it), offering `alpn`.
    pub fn server(&self, node: &str, bind: bool, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let (cert, key) = self.leaf(&self.ca, &format!("{node}-server"), &[node]);
        let params = TlsServerParams {
            name: "srv".into(),
            cert,
            key,
            require_client_cert: true,
            client_cas: Some(self.ca_file.clone()),
            bind_node_id: bind,
            ..Default::default()
        };
        TlsServer::load(&params, node)
            .unwrap()
            .backend_config(alpn)
            .unwrap()
    }

    /// A client config for `node` presenting a certificate for `cert_ids` (signed by `by`),
    /// trusting `roots`, offering `alpn`.
    pub fn client(
        &self,
        node: &str,
        cert_ids: &[&str],
        by: &Ca,
        roots: &Path,
        alpn: &[&[u8]],
    ) -> Arc<rustls::ClientConfig> {
        let (cert, key) = self.leaf(by, &format!("{node}-client"), cert_ids);
        let params = TlsClientParams {
            name: "cli".into(),
            cert: Some(cert),
            key: Some(key),
            root_cas: Some(roots.to_owned()),
            skip_receptor_names_check: true,
            ..Default::default()
        };
        TlsClient::load(&params, node)
            .unwrap()
            .backend_config(alpn)
            .unwrap()
    }
}
