//! Building the CA certificate, requests and signed certificates with rcgen, with the
//! extensions Go's `crypto/x509` writes, in its order and encoding:
//! CA: keyUsage (critical; digitalSignature, keyCertSign), extKeyUsage (clientAuth, serverAuth),
//! basicConstraints (critical; CA), subjectKeyIdentifier. Leaf: keyUsage (critical;
//! digitalSignature), extKeyUsage, authorityKeyIdentifier (when the CA has a key identifier),
//! and the request's subjectAltName copied verbatim.

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, KeyPair,
    PrintableString, SerialNumber,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::ParsedExtension;

use super::CertError;
use super::names::Names;
use super::request::Request;

const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
const OID_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
pub(super) const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
const OID_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
const OID_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];

/// A certificate's validity period.
#[derive(Clone, Copy, Debug)]
pub(super) struct Validity {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Validity {
    /// `notbefore`/`notafter` as given (RFC 3339), else now and now + `years` (Go's `AddDate`).
    pub(super) fn parse(
        not_before: Option<&str>,
        not_after: Option<&str>,
        years: i32,
    ) -> Result<Self, CertError> {
        let parse =
            |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| CertError::Time(s.to_owned()));
        let now = OffsetDateTime::now_utc();
        Ok(Self {
            not_before: not_before.map_or(Ok(now), parse)?,
            not_after: match not_after {
                Some(s) => parse(s)?,
                None => add_years(now, years),
            },
        })
    }
}

/// Go's `t.AddDate(years, 0, 0)`: 29 February becomes 1 March in a year without one.
fn add_years(t: OffsetDateTime, years: i32) -> OffsetDateTime {
    let year = t.year().saturating_add(years);
    t.replace_year(year)
        .or_else(|_| {
            t.replace_day(1)
                .and_then(|t| t.replace_month(time::Month::March))
                .and_then(|t| t.replace_year(year))
        })
        .unwrap_or(t)
}

/// A subject of just a common name, typed as Go types it: PrintableString when every
/// character allows, else UTF8String.
fn common_name_dn(common_name: &str) -> DistinguishedName {
    let value = PrintableString::try_from(common_name).map_or_else(
        |_| DnValue::Utf8String(common_name.to_owned()),
        DnValue::PrintableString,
    );
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, value);
    dn
}

/// 16 random bytes, positive and of full length.
fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CertError::Build("no random numbers".into()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ext(oid: &[u64], critical: bool, value: Vec<u8>) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, value);
    e.set_criticality(critical);
    e
}

/// keyUsage with digitalSignature (bit 0) and, for a CA, keyCertSign (bit 5), in the fewest
/// bits, as Go writes it.
fn key_usage(ca: bool) -> CustomExtension {
    let (byte, bits) = if ca { (0x84, 6) } else { (0x80, 1) };
    let value = yasna::construct_der(|w| w.write_bitvec_bytes(&[byte], bits));
    ext(OID_KEY_USAGE, true, value)
}

fn ext_key_usage() -> CustomExtension {
    let value = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for oid in [OID_CLIENT_AUTH, OID_SERVER_AUTH] {
                w.next()
                    .write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
            }
        });
    });
    ext(OID_EXT_KEY_USAGE, false, value)
}

fn basic_constraints_ca() -> CustomExtension {
    let value = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_bool(true)));
    ext(OID_BASIC_CONSTRAINTS, true, value)
}

/// RFC 7093 method 1, as Go since 1.25: the leftmost 160 bits of the SHA-256 of the key.
fn subject_key_id(public_key_raw: &[u8]) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key_raw);
    digest.as_ref().iter().take(20).copied().collect()
}

fn authority_key_id(key_id: &[u8]) -> CustomExtension {
    let value = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_tagged_implicit(yasna::Tag::context(0), |w| w.write_bytes(key_id));
        });
    });
    ext(OID_AUTHORITY_KEY_ID, false, value)
}

/// The self-signed CA certificate of `cert-init`, as DER.
pub(super) fn ca_certificate(
    common_name: &str,
    key: &KeyPair,
    validity: Validity,
) -> Result<Vec<u8>, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial()?);
    let ski = yasna::construct_der(|w| w.write_bytes(&subject_key_id(key.public_key_raw())));
    params.custom_extensions = vec![
        key_usage(true),
        ext_key_usage(),
        basic_constraints_ca(),
        ext(OID_SUBJECT_KEY_ID, false, ski),
    ];
    Ok(params.self_signed(key)?.der().to_vec())
}

/// The request of `cert-makereq`, as DER: subject CN, one subjectAltName with the names.
pub(super) fn request(
    common_name: &str,
    names: &Names,
    key: &KeyPair,
) -> Result<Vec<u8>, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.subject_alt_names = names.san_types()?;
    Ok(params.serialize_request(key)?.der().to_vec())
}

/// The certificate `cert-signreq` issues for `req`, signed by the CA, as DER.
pub(super) fn sign(
    req: &Request,
    ca_der: &[u8],
    ca_key: &KeyPair,
    validity: Validity,
) -> Result<Vec<u8>, CertError> {
    let malformed = |e: String| CertError::Parse {
        what: "x509: malformed certificate",
        reason: e,
    };
    let (_, ca) =
        x509_parser::parse_x509_certificate(ca_der).map_err(|e| malformed(e.to_string()))?;
    if ca.public_key().subject_public_key.data.as_ref() != ca_key.public_key_raw() {
        return Err(CertError::KeyMismatch);
    }
    // The issuer name is the CA's subject; rcgen signs on behalf of an issuer it holds as a
    // certificate, so the CA is rebuilt around that name (only the name and key are used).
    let mut issuer_params = CertificateParams::default();
    issuer_params.distinguished_name = Request::distinguished_name(ca.subject())?;
    let issuer = issuer_params.self_signed(ca_key)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = req.subject.clone();
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial()?);
    params.custom_extensions = vec![key_usage(false), ext_key_usage()];
    let ca_key_id = ca
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        });
    // Go sets the authority key identifier only for a CA with a key identifier that is not
    // issuing to itself.
    if let Some(id) = ca_key_id
        && ca.subject().as_raw() != req.subject_raw.as_slice()
    {
        params.custom_extensions.push(authority_key_id(id));
    }
    if let Some((value, critical)) = &req.san {
        params
            .custom_extensions
            .push(ext(OID_SUBJECT_ALT_NAME, *critical, value.clone()));
    }
    let cert = params.signed_by(&req.public_key, &issuer, ca_key)?;
    let der = cert.der().to_vec();
    // The name and key must come out byte for byte as they went in: TLS stacks find a
    // certificate's issuer by comparing names as bytes.
    let (_, out) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| malformed(e.to_string()))?;
    if out.issuer().as_raw() != ca.subject().as_raw() {
        return Err(CertError::IssuerName);
    }
    if out.public_key().raw != req.public_key.spki.as_slice() {
        return Err(CertError::Key(
            "the request's public key did not carry over".into(),
        ));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn add_years_is_go_add_date() {
        let t = at("2028-02-29T12:00:00Z");
        assert_eq!(add_years(t, 1), at("2029-03-01T12:00:00Z"));
        assert_eq!(add_years(t, 4), at("2032-02-29T12:00:00Z"));
    }

    #[test]
    fn validity_parses_rfc3339_only() {
        let v = Validity::parse(Some("2020-01-02T03:04:05+01:00"), None, 1).unwrap();
        assert_eq!(v.not_before, at("2020-01-02T02:04:05Z"));
        let err = Validity::parse(Some("2020-01-01"), None, 1).unwrap_err();
        assert!(
            err.to_string().starts_with("parsing time \"2020-01-01\""),
            "{err}"
        );
    }

    #[test]
    fn common_names_are_typed_as_go_types_them() {
        assert!(matches!(
            common_name_dn("node 1").get(&DnType::CommonName),
            Some(DnValue::PrintableString(_))
        ));
        for cn in ["*.example", "a&b", "nœud"] {
            assert!(matches!(
                common_name_dn(cn).get(&DnType::CommonName),
                Some(DnValue::Utf8String(_))
            ));
        }
    }
}
