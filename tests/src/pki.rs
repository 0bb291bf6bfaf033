//! Test certificates: CAs and leaves carrying Receptor node-ID SANs, as Receptor's
//! `cert-init` / `cert-signreq` make them, for the TLS tests of the core and the runtimes.
//!
//! # Panics
//! Everywhere rcgen refuses what is built here: a test fixture, not a runtime part.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

pub use rcgen::ExtendedKeyUsagePurpose as Eku;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use receptor_core::tls::RECEPTOR_NODE_ID_OID_ARCS;
use rustls::pki_types::CertificateDer;

/// Both extended key usages, as Receptor's node certificates have them.
pub fn both() -> Vec<Eku> {
    vec![Eku::ServerAuth, Eku::ClientAuth]
}

/// A certificate authority.
pub struct Ca {
    /// Its self-signed certificate.
    pub cert: rcgen::Certificate,
    /// Its key.
    pub key: KeyPair,
}

impl Ca {
    /// A new self-signed CA named `cn`.
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

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Issues a leaf like Receptor's `cert-signreq`: DNS localhost, IP 127.0.0.1, `node_ids`
    /// as Receptor node-ID otherNames, and `ekus`.
    pub fn leaf(&self, node_ids: &[&str], ekus: Vec<Eku>) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "receptor test leaf");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
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
        Leaf { cert, key }
    }
}

/// A certificate issued by a [`Ca`], with its key.
pub struct Leaf {
    /// The certificate.
    pub cert: rcgen::Certificate,
    /// Its key.
    pub key: KeyPair,
}

impl Leaf {
    /// The certificate's DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The key as PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}
