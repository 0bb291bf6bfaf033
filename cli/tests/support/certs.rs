//! Certificates for end-to-end tests: a CA and node certificates carrying Receptor node-ID
//! SANs, as `cert-init` / `cert-signreq` make them.

use receptor_tests::pki::{self, both};

use super::TempDir;

/// A certificate authority (`receptor_tests::pki`'s), writing its files for the node under
/// test.
pub struct Ca(pki::Ca);

impl Ca {
    /// A new self-signed CA named `cn`.
    pub fn new(cn: &str) -> Self {
        Self(pki::Ca::new(cn))
    }

    /// Writes `<name>.crt` / `<name>.key` for a node cert like Receptor's `cert-signreq` makes.
    pub fn issue(&self, dir: &TempDir, name: &str, node_ids: &[&str]) -> (String, String) {
        let leaf = self.0.leaf_named(name, node_ids, both());
        let (c, k) = (
            dir.path(&format!("{name}.crt")),
            dir.path(&format!("{name}.key")),
        );
        std::fs::write(&c, leaf.cert_pem()).unwrap();
        std::fs::write(&k, leaf.key_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    /// Writes the CA certificate to `name` in `dir`; returns its path.
    pub fn write(&self, dir: &TempDir, name: &str) -> String {
        let p = dir.path(name);
        std::fs::write(&p, self.0.cert_pem()).unwrap();
        p.display().to_string()
    }
}
