//! A certificate request read for `cert-signreq`: its subject, key, names and subjectAltName,
//! and the description Go prints before asking whether to sign.

use rcgen::{
    BmpString, DistinguishedName, DnType, DnValue, Ia5String, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ECDSA_P521_SHA512, PKCS_ED25519, PKCS_RSA_SHA256, PrintableString,
    PublicKeyData, SignatureAlgorithm, TeletexString, UniversalString,
};
use x509_parser::asn1_rs::{Oid, Tag, ToDer};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::CertError;
use super::names::Names;
use super::x509::OID_SUBJECT_ALT_NAME;

/// A request's public key, re-encoded by rcgen into the certificate (checked to come out
/// byte for byte as the request's).
pub(super) struct RequestKey {
    /// The request's SubjectPublicKeyInfo, DER.
    pub(super) spki: Vec<u8>,
    /// Its subjectPublicKey bits.
    raw: Vec<u8>,
    /// An rcgen algorithm whose key-type identifier is the request's.
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for RequestKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &SignatureAlgorithm {
        self.alg
    }
}

/// A parsed, signature-checked certificate request.
pub(super) struct Request {
    /// Subject, to be copied into the certificate.
    pub(super) subject: DistinguishedName,
    /// Subject as DER.
    pub(super) subject_raw: Vec<u8>,
    /// Public key.
    pub(super) public_key: RequestKey,
    /// DNS names, IP addresses and node IDs of its subjectAltName.
    pub(super) names: Names,
    /// The subjectAltName extension's value and criticality, copied verbatim as Go does.
    pub(super) san: Option<(Vec<u8>, bool)>,
    /// The prompt's first lines.
    description: String,
}

const OID_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const OID_EC: &[u64] = &[1, 2, 840, 10045, 2, 1];
const OID_ED25519: &[u64] = &[1, 3, 101, 112];

fn arcs(oid: &Oid<'_>) -> Option<Vec<u64>> {
    oid.iter().map(Iterator::collect)
}

fn malformed(reason: impl ToString) -> CertError {
    CertError::Parse {
        what: "x509: malformed certificate request",
        reason: reason.to_string(),
    }
}

impl Request {
    /// Parses a request and checks its signature (Go does not; a forged request is refused here).
    pub(super) fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (_, csr) = X509CertificationRequest::from_der(der).map_err(malformed)?;
        csr.verify_signature()
            .map_err(|e| CertError::RequestSignature(e.to_string()))?;
        let info = &csr.certification_request_info;
        let mut san = None;
        for attr in info.iter_attributes() {
            if let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() {
                let found = req
                    .extensions
                    .iter()
                    .find(|e| arcs(&e.oid).as_deref() == Some(OID_SUBJECT_ALT_NAME));
                if let Some(e) = found
                    && san.is_none()
                {
                    san = Some((e.value.to_vec(), e.critical));
                }
            }
        }
        let names = match &san {
            Some((value, _)) => Names::from_san(value)?,
            None => Names::default(),
        };
        let (key_text, public_key) = request_key(&info.subject_pki)?;
        let description = format!(
            "Requested certificate:\n  Subject: {}\n  Encryption Algorithm: {key_text}\n  \
             Signature Algorithm: {}\n  Names:\n{}",
            go_name_string(&info.subject),
            signature_name(&csr.signature_algorithm.algorithm),
            names.describe(),
        );
        Ok(Self {
            subject: Self::distinguished_name(&info.subject)?,
            subject_raw: info.subject.as_raw().to_vec(),
            public_key,
            names,
            san,
            description,
        })
    }

    /// What Go prints before `Sign certificate (yes/no)? `, that line included.
    pub(super) fn describe(&self) -> String {
        format!("{}Sign certificate (yes/no)? ", self.description)
    }

    /// A name as rcgen values, keeping each attribute's type and string type.
    pub(super) fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, CertError> {
        let bad = || CertError::Parse {
            what: "x509: unsupported name",
            reason: name.to_string(),
        };
        let mut dn = DistinguishedName::new();
        for atv in name.iter_attributes() {
            let oid = arcs(atv.attr_type()).ok_or_else(bad)?;
            let any = atv.attr_value();
            let text = || std::str::from_utf8(any.data).map_err(|_| bad());
            let value = match any.tag() {
                Tag::PrintableString => {
                    DnValue::PrintableString(PrintableString::try_from(text()?).map_err(|_| bad())?)
                }
                Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
                Tag::Ia5String => {
                    DnValue::Ia5String(Ia5String::try_from(text()?).map_err(|_| bad())?)
                }
                Tag::T61String => {
                    DnValue::TeletexString(TeletexString::try_from(text()?).map_err(|_| bad())?)
                }
                Tag::BmpString => DnValue::BmpString(
                    BmpString::from_utf16be(any.data.to_vec()).map_err(|_| bad())?,
                ),
                Tag::UniversalString => DnValue::UniversalString(
                    UniversalString::from_utf32be(any.data.to_vec()).map_err(|_| bad())?,
                ),
                _ => return Err(bad()),
            };
            dn.push(DnType::CustomDnType(oid), value);
        }
        Ok(dn)
    }
}

/// The key as Go names it (`RSA (2048 bits)`), and as rcgen will write it.
fn request_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(String, RequestKey), CertError> {
    let alg_oid = arcs(&spki.algorithm.algorithm).unwrap_or_default();
    let param_oid = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .and_then(|o| arcs(&o));
    let (text, alg) = match (alg_oid.as_slice(), param_oid.as_deref()) {
        (OID_RSA, _) => {
            let modulus = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.modulus,
                _ => return Err(malformed("bad RSA public key")),
            };
            let bytes = modulus.iter().skip_while(|b| **b == 0).count();
            (format!("RSA ({} bits)", bytes * 8), &PKCS_RSA_SHA256)
        }
        (OID_EC, Some([1, 2, 840, 10045, 3, 1, 7])) => {
            ("ECDSA".to_owned(), &PKCS_ECDSA_P256_SHA256)
        }
        (OID_EC, Some([1, 3, 132, 0, 34])) => ("ECDSA".to_owned(), &PKCS_ECDSA_P384_SHA384),
        (OID_EC, Some([1, 3, 132, 0, 35])) => ("ECDSA".to_owned(), &PKCS_ECDSA_P521_SHA512),
        (OID_ED25519, _) => ("Ed25519".to_owned(), &PKCS_ED25519),
        _ => {
            return Err(CertError::Key(format!(
                "unsupported public key algorithm {}",
                spki.algorithm.algorithm
            )));
        }
    };
    let key = RequestKey {
        spki: spki.raw.to_vec(),
        raw: spki.subject_public_key.data.to_vec(),
        alg,
    };
    Ok((text, key))
}

/// Go's `x509.SignatureAlgorithm.String()` for the algorithms a request may use.
fn signature_name(oid: &Oid<'_>) -> String {
    let name = match arcs(oid).as_deref() {
        Some([1, 2, 840, 113549, 1, 1, 4]) => "MD5-RSA",
        Some([1, 2, 840, 113549, 1, 1, 5]) => "SHA1-RSA",
        Some([1, 2, 840, 113549, 1, 1, 11]) => "SHA256-RSA",
        Some([1, 2, 840, 113549, 1, 1, 12]) => "SHA384-RSA",
        Some([1, 2, 840, 113549, 1, 1, 13]) => "SHA512-RSA",
        Some([1, 2, 840, 113549, 1, 1, 10]) => "RSAPSS",
        Some([1, 2, 840, 10045, 4, 1]) => "ECDSA-SHA1",
        Some([1, 2, 840, 10045, 4, 3, 2]) => "ECDSA-SHA256",
        Some([1, 2, 840, 10045, 4, 3, 3]) => "ECDSA-SHA384",
        Some([1, 2, 840, 10045, 4, 3, 4]) => "ECDSA-SHA512",
        Some([1, 3, 101, 112]) => "Ed25519",
        _ => return oid.to_id_string(),
    };
    name.to_owned()
}

/// Go's `pkix.Name.String()`: known attributes in Go's order (C, ST, L, STREET, POSTALCODE, O,
/// OU, CN, SERIALNUMBER) after the others, printed last first, RFC 2253 escaped.
fn go_name_string(name: &X509Name<'_>) -> String {
    const ORDER: [(&[u64], &str); 9] = [
        (&[2, 5, 4, 6], "C"),
        (&[2, 5, 4, 8], "ST"),
        (&[2, 5, 4, 7], "L"),
        (&[2, 5, 4, 9], "STREET"),
        (&[2, 5, 4, 17], "POSTALCODE"),
        (&[2, 5, 4, 10], "O"),
        (&[2, 5, 4, 11], "OU"),
        (&[2, 5, 4, 3], "CN"),
        (&[2, 5, 4, 5], "SERIALNUMBER"),
    ];
    // Other attributes come first in the sequence, so last in the string (Go issue 39924).
    let mut rdns: Vec<String> = Vec::new();
    for a in name.iter_attributes() {
        let known = arcs(a.attr_type()).is_some_and(|o| ORDER.iter().any(|(k, _)| *k == o));
        if !known {
            let der = a.attr_value().to_der_vec().unwrap_or_default();
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            rdns.push(format!("{}=#{hex}", a.attr_type().to_id_string()));
        }
    }
    // Then one RDN per known type, values of a type together, as Go's ToRDNSequence.
    for (oid, label) in ORDER {
        let values: Vec<String> = name
            .iter_attributes()
            .filter(|a| arcs(a.attr_type()).as_deref() == Some(oid))
            .filter_map(|a| a.as_str().ok())
            .map(|v| format!("{label}={}", escape_rdn_value(v)))
            .collect();
        if !values.is_empty() {
            rdns.push(values.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

fn escape_rdn_value(v: &str) -> String {
    let last = v.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i == last,
            '#' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdn_values_are_escaped_as_go_does() {
        assert_eq!(escape_rdn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rdn_value(" #x "), "\\ #x\\ ");
        assert_eq!(escape_rdn_value("#a#"), "\\#a#");
    }
}
