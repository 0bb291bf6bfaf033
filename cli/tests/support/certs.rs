//! Certificates for end-to-end tests: a CA and node certificates carrying Receptor node-ID
//! SANs, as `cert-init` / `cert-signreq` make them.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::TempDir;

/// The Receptor node-ID otherName OID (1.3.6.1.4.1.2312.19.1).
const OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 2312, 19, 1];

/// A certificate authority.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// A new self-signed CA named `cn`.
    pub fn new(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// Writes `<name>.crt` / `<name>.key` for a node cert like Receptor's `cert-signreq` makes.
    pub fn issue(&self, dir: &TempDir, name: &str, node_ids: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth];
        p.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        for id in node_ids {
            p.subject_alt_names
                .push(SanType::OtherName((OID.to_vec(), (*id).into())));
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let (c, k) = (
            dir.path(&format!("{name}.crt")),
            dir.path(&format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }

    /// Writes the CA certificate to `name` in `dir`; returns its path.
    pub fn write(&self, dir: &TempDir, name: &str) -> String {
        let p = dir.path(name);
        std::fs::write(&p, self.cert.pem()).unwrap();
        p.display().to_string()
    }
}
