//! Test PKI: a CA (and another nobody trusts) issuing leaves with Receptor node-ID SANs,
//! written as PEM files and loaded into backend TLS configs the way the runtimes load them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use receptor_smol::tls::{
    RECEPTOR_NODE_ID_OID_ARCS, TlsClient, TlsClientParams, TlsServer, TlsServerParams,
};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "receptor-smol-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub fn new(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// Writes `<name>.crt` / `<name>.key`: a leaf for `node_ids`, valid for 127.0.0.1 and
    /// localhost, as Receptor's `cert-signreq` makes them.
    pub fn leaf(&self, dir: &TempDir, name: &str, node_ids: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth];
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        for id in node_ids {
            params.subject_alt_names.push(SanType::OtherName((
                RECEPTOR_NODE_ID_OID_ARCS.to_vec(),
                (*id).into(),
            )));
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            dir.write(&format!("{name}.crt"), &cert.pem()),
            dir.write(&format!("{name}.key"), &key.serialize_pem()),
        )
    }
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
        let dir = TempDir::new();
        let ca = Ca::new("receptor test CA");
        let other = Ca::new("someone else's CA");
        Self {
            ca_file: dir.write("ca.crt", &ca.cert.pem()),
            other_file: dir.write("other.crt", &other.cert.pem()),
            dir,
            ca,
        }
    }

    /// A mutual-TLS server config for `node` (certificate signed by our CA; clients must
    /// present one signed by it).
    pub fn server(&self, node: &str, bind: bool, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let (cert, key) = self.ca.leaf(&self.dir, &format!("{node}-server"), &[node]);
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
    /// trusting `roots`.
    pub fn client(
        &self,
        node: &str,
        cert_ids: &[&str],
        by: &Ca,
        roots: &Path,
        alpn: &[&[u8]],
    ) -> Arc<rustls::ClientConfig> {
        let (cert, key) = by.leaf(&self.dir, &format!("{node}-client"), cert_ids);
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
