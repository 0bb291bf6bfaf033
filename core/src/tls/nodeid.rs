//! Receptor node IDs carried in certificates (netceptor spec §2.6, control spec §4.1).
//!
//! A node ID lives in the subjectAltName as `otherName` with type-id
//! [`RECEPTOR_NODE_ID_OID`] and value `[0] EXPLICIT UTF8String`. Matching is an exact,
//! case-sensitive comparison, as in Go's `utils.ParseReceptorNamesFromCert`.

use std::path::Path;

use crate::identity::PeerCert;
use rustls::pki_types::CertificateDer;

use super::der;
use super::error::{CertNameError, TlsError};

/// Dotted form of the otherName type-id that marks a Receptor node ID.
pub const RECEPTOR_NODE_ID_OID: &str = "1.3.6.1.4.1.2312.19.1";

/// DER content octets of [`RECEPTOR_NODE_ID_OID`].
const RECEPTOR_NODE_ID_OID_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x92, 0x08, 0x13, 0x01];

/// Arc components of [`RECEPTOR_NODE_ID_OID`], for certificate generators such as rcgen.
pub const RECEPTOR_NODE_ID_OID_ARCS: &[u64] = &[1, 3, 6, 1, 4, 1, 2312, 19, 1];

/// Returns every Receptor node ID in a DER certificate's subjectAltName, in order.
///
/// Any ASN.1 string type that Go decodes into a string is accepted. A malformed
/// subjectAltName is an error, as in Go (where it fails the whole check).
pub fn node_ids_in_cert(cert_der: &[u8]) -> Result<Vec<String>, TlsError> {
    Ok(der::san_other_names(cert_der, RECEPTOR_NODE_ID_OID_DER)?)
}

/// Returns every Receptor node ID in the value of a subjectAltName extension (the content
/// of its OCTET STRING), in order: the form a certificate request carries them in.
pub fn node_ids_in_san(san_value: &[u8]) -> Result<Vec<String>, TlsError> {
    Ok(der::san_value_other_names(
        san_value,
        RECEPTOR_NODE_ID_OID_DER,
    )?)
}

/// Checks that a certificate carries `expected` as a Receptor node ID.
///
/// The error displays Go's text (`x509: certificate is valid for Receptor node ID ...`).
pub fn check_cert_node_id(cert_der: &[u8], expected: &str) -> Result<(), TlsError> {
    let names = node_ids_in_cert(cert_der)?;
    if names.iter().any(|n| n == expected) {
        Ok(())
    } else {
        Err(CertNameError {
            valid_nodes: names,
            expected_node: expected.to_owned(),
        }
        .into())
    }
}

/// Checks the leaf of a peer's presented chain after a handshake (for example from
/// `rustls::Connection::peer_certificates`). A missing chain fails the check.
///
/// This is the post-handshake form of the per-connection verifier that
/// [`super::TlsServer::stream_config_for_peer`] installs; use whichever suits the driver.
pub fn check_peer_node_id(
    peer_chain: Option<&[CertificateDer<'_>]>,
    expected: &str,
) -> Result<(), TlsError> {
    match peer_chain.and_then(|c| c.first()) {
        Some(leaf) => check_cert_node_id(leaf, expected),
        None => Err(CertNameError {
            valid_nodes: Vec::new(),
            expected_node: expected.to_owned(),
        }
        .into()),
    }
}

/// What a peer's presented chain (from a completed, verified handshake) proves for node-ID
/// binding (`bindnodeid`): the Receptor node IDs of its leaf.
pub fn peer_cert_identity(peer_chain: Option<&[CertificateDer<'_>]>) -> PeerCert {
    match peer_chain.and_then(|c| c.first()) {
        None => PeerCert::Absent,
        Some(leaf) => match node_ids_in_cert(leaf) {
            Ok(ids) => PeerCert::NodeIds(ids),
            Err(e) => PeerCert::Unreadable(e.to_string()),
        },
    }
}

/// Go's startup check on the node's own, already parsed, leaf certificate: it must carry
/// `node_id`. `section` (the `tls-server` / `tls-client` entry) and `cert_path` are quoted in
/// the error.
pub fn check_leaf_names(
    section: &str,
    cert_path: &Path,
    leaf: &CertificateDer<'_>,
    node_id: &str,
) -> Result<(), TlsError> {
    let names = node_ids_in_cert(leaf)?;
    if names.iter().any(|n| n == node_id) {
        return Ok(());
    }
    Err(TlsError::NodeIdNotInCert {
        node_id: node_id.to_owned(),
        names,
        section: section.to_owned(),
        path: cert_path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps SAN GeneralNames in a minimal certificate skeleton that the DER walker accepts.
    pub(crate) fn cert_with_san(general_names: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let len = body.len();
            if len < 0x80 {
                out.push(len as u8);
            } else {
                out.extend([0x82, (len >> 8) as u8, len as u8]);
            }
            out.extend_from_slice(body);
            out
        }
        let san = tlv(0x30, general_names);
        let mut ext = tlv(0x06, &[0x55, 0x1d, 0x11]);
        ext.extend(tlv(0x04, &san));
        let exts = tlv(0xa3, &tlv(0x30, &tlv(0x30, &ext)));
        let mut tbs = tlv(0xa0, &[0x02, 0x01, 0x02]);
        tbs.extend([0x02, 0x01, 0x01]);
        tbs.extend(tlv(0x30, &[0x06, 0x01, 0x00]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(exts);
        let mut cert = tlv(0x30, &tbs);
        cert.extend(tlv(0x30, &[0x06, 0x01, 0x00]));
        cert.extend([0x03, 0x01, 0x00]);
        tlv(0x30, &cert)
    }

    /// The exact SAN entry for node `foobar` from netceptor spec §2.6.
    const FOOBAR: &[u8] = &[
        0xa0, 0x15, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x92, 0x08, 0x13, 0x01, 0xa0, 0x08,
        0x0c, 0x06, 0x66, 0x6f, 0x6f, 0x62, 0x61, 0x72,
    ];

    #[test]
    fn spec_vector_foobar() {
        let cert = cert_with_san(FOOBAR);
        assert_eq!(node_ids_in_cert(&cert).unwrap(), ["foobar"]);
        check_cert_node_id(&cert, "foobar").unwrap();
        let err = check_cert_node_id(&cert, "Foobar").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x509: certificate is valid for Receptor node ID foobar, not Foobar"
        );
    }

    #[test]
    fn several_names_other_types_and_dns_entries() {
        let mut names = vec![0x82, 0x04, b'h', b'o', b's', b't']; // dNSName "host"
        names.extend_from_slice(FOOBAR);
        // Same OID, PrintableString "n2".
        names.extend([0xa0, 0x11, 0x06, 0x09]);
        names.extend_from_slice(RECEPTOR_NODE_ID_OID_DER);
        names.extend([0xa0, 0x04, 0x13, 0x02, b'n', b'2']);
        // A different otherName type-id is ignored.
        names.extend([
            0xa0, 0x09, 0x06, 0x03, 0x2a, 0x03, 0x04, 0xa0, 0x02, 0x0c, 0x00,
        ]);
        let cert = cert_with_san(&names);
        assert_eq!(node_ids_in_cert(&cert).unwrap(), ["foobar", "n2"]);
        let mut san = vec![0x30, names.len() as u8];
        san.extend_from_slice(&names);
        assert_eq!(node_ids_in_san(&san).unwrap(), ["foobar", "n2"]);
        let err = check_cert_node_id(&cert, "n3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x509: certificate is valid for Receptor node IDs foobar, n2, not n3"
        );
    }

    #[test]
    fn no_names_and_malformed_values() {
        let cert = cert_with_san(&[0x82, 0x01, b'h']);
        assert!(node_ids_in_cert(&cert).unwrap().is_empty());
        assert_eq!(
            check_cert_node_id(&cert, "x").unwrap_err().to_string(),
            "x509: certificate is not valid for any Receptor node IDs, but wanted to match x"
        );
        // Receptor OID with an INTEGER value: Go fails the whole check.
        let mut bad = vec![0xa0, 0x10, 0x06, 0x09];
        bad.extend_from_slice(RECEPTOR_NODE_ID_OID_DER);
        bad.extend([0xa0, 0x03, 0x02, 0x01, 0x05]);
        assert!(node_ids_in_cert(&cert_with_san(&bad)).is_err());
        // A primitive [0] is not an otherName.
        assert!(node_ids_in_cert(&cert_with_san(&[0x80, 0x01, 0x00])).is_err());
        assert!(node_ids_in_cert(b"\x30\x03\x02\x01\x01").is_err());
    }

    #[test]
    fn peer_chain_check() {
        let cert = CertificateDer::from(cert_with_san(FOOBAR));
        check_peer_node_id(Some(std::slice::from_ref(&cert)), "foobar").unwrap();
        assert!(check_peer_node_id(Some(&[cert]), "other").is_err());
        assert!(check_peer_node_id(None, "foobar").is_err());
        assert!(check_peer_node_id(Some(&[]), "foobar").is_err());
    }

    #[test]
    fn peer_identity_for_binding() {
        let cert = CertificateDer::from(cert_with_san(FOOBAR));
        assert_eq!(
            peer_cert_identity(Some(std::slice::from_ref(&cert))),
            PeerCert::NodeIds(vec!["foobar".into()])
        );
        let bare = CertificateDer::from(cert_with_san(&[0x82, 0x01, b'h']));
        assert_eq!(peer_cert_identity(Some(&[bare])), PeerCert::NodeIds(vec![]));
        assert_eq!(peer_cert_identity(None), PeerCert::Absent);
        assert_eq!(peer_cert_identity(Some(&[])), PeerCert::Absent);
        let broken = CertificateDer::from(cert_with_san(&[0x80, 0x01, 0x00]));
        assert!(matches!(
            peer_cert_identity(Some(&[broken])),
            PeerCert::Unreadable(_)
        ));
    }
}
