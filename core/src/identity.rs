//! Binding a backend peer's announced node ID to its TLS certificate (`bindnodeid`).
//!
//! Go accepts any peer whose certificate chains to the configured CA, whatever node ID it then
//! announces in its first routing update. With [`LinkConfig::bind_node_id`] on, the runtime
//! reads the Receptor node IDs (subjectAltName otherName 1.3.6.1.4.1.2312.19.1) of the peer's
//! verified certificate into [`LinkConfig::peer_cert`], and the handshake refuses a peer whose
//! announced ID is not among them. Certificates are parsed at the edge; the decision is here.
//!
//! [`LinkConfig::bind_node_id`]: crate::LinkConfig::bind_node_id
//! [`LinkConfig::peer_cert`]: crate::LinkConfig::peer_cert

use crate::id::NodeId;

/// Longest refusal reason taken from a peer's reject message; the rest is cut off.
pub const MAX_REJECT_REASON: usize = 512;

/// What a session's TLS handshake showed about the peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCert {
    /// The session is not TLS, or the peer presented no certificate.
    Absent,
    /// The peer's verified certificate carries these Receptor node IDs (maybe none).
    NodeIds(Vec<String>),
    /// The certificate's names could not be read (a malformed subjectAltName).
    Unreadable(String),
}

/// Why a peer was refused under node-ID binding. The messages are what both logs show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate carries node IDs, but not the announced one.
    #[error(
        "node-ID mismatch: the peer announced node ID {announced} but its certificate is for \
         node ID{} {}",
        if .cert_ids.len() > 1 { "s" } else { "" },
        .cert_ids.join(", ")
    )]
    Mismatch {
        /// The ID the peer announced in its handshake.
        announced: String,
        /// The node IDs its certificate carries.
        cert_ids: Vec<String>,
    },
    /// The certificate carries no Receptor node ID at all.
    #[error(
        "no node ID in certificate: the peer announced node ID {announced} but its certificate \
         has no Receptor node-ID subjectAltName"
    )]
    NoNodeId {
        /// The ID the peer announced in its handshake.
        announced: String,
    },
    /// No certificate: the link is not TLS, or the peer sent none.
    #[error(
        "no certificate: the peer announced node ID {announced} without a TLS certificate \
         to prove it"
    )]
    NoCertificate {
        /// The ID the peer announced in its handshake.
        announced: String,
    },
    /// The certificate's names could not be read.
    #[error("unreadable certificate: the peer announced node ID {announced}: {error}")]
    Unreadable {
        /// The ID the peer announced in its handshake.
        announced: String,
        /// What the parser said.
        error: String,
    },
}

/// Decides whether a peer that announced `announced` may have the session: always when
/// binding is off (Go), otherwise only when its certificate carries that ID, compared exactly.
pub fn check_peer(
    bind: bool,
    cert: Option<&PeerCert>,
    announced: &NodeId,
) -> Result<(), IdentityError> {
    if !bind {
        return Ok(());
    }
    let announced_s = || announced.as_str().to_owned();
    match cert.unwrap_or(&PeerCert::Absent) {
        PeerCert::Absent => Err(IdentityError::NoCertificate {
            announced: announced_s(),
        }),
        PeerCert::Unreadable(e) => Err(IdentityError::Unreadable {
            announced: announced_s(),
            error: e.clone(),
        }),
        PeerCert::NodeIds(ids) if ids.is_empty() => Err(IdentityError::NoNodeId {
            announced: announced_s(),
        }),
        PeerCert::NodeIds(ids) if ids.iter().any(|i| i == announced.as_str()) => Ok(()),
        PeerCert::NodeIds(ids) => Err(IdentityError::Mismatch {
            announced: announced_s(),
            cert_ids: ids.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn off_accepts_anything() {
        assert_eq!(check_peer(false, None, &id("B")), Ok(()));
        let other = PeerCert::NodeIds(vec!["M".into()]);
        assert_eq!(check_peer(false, Some(&other), &id("B")), Ok(()));
    }

    #[test]
    fn on_needs_the_announced_id_in_the_certificate() {
        let m = PeerCert::NodeIds(vec!["M".into()]);
        assert_eq!(
            check_peer(true, Some(&m), &id("M")),
            Ok(()),
            "the certificate's own ID"
        );
        let err = check_peer(true, Some(&m), &id("B")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node-ID mismatch: the peer announced node ID B but its certificate is for node ID M"
        );
        // Exact comparison, as Go's check on mesh streams.
        assert!(check_peer(true, Some(&m), &id("m")).is_err());
        let two = PeerCert::NodeIds(vec!["n1".into(), "n2".into()]);
        assert_eq!(check_peer(true, Some(&two), &id("n2")), Ok(()));
        assert!(
            check_peer(true, Some(&two), &id("n3"))
                .unwrap_err()
                .to_string()
                .ends_with("node IDs n1, n2")
        );
    }

    #[test]
    fn on_refuses_certificates_without_ids_and_missing_certificates() {
        let none = PeerCert::NodeIds(vec![]);
        assert!(matches!(
            check_peer(true, Some(&none), &id("B")),
            Err(IdentityError::NoNodeId { .. })
        ));
        assert!(matches!(
            check_peer(true, None, &id("B")),
            Err(IdentityError::NoCertificate { .. })
        ));
        assert!(matches!(
            check_peer(true, Some(&PeerCert::Absent), &id("B")),
            Err(IdentityError::NoCertificate { .. })
        ));
        let bad = PeerCert::Unreadable("bad SAN".into());
        assert!(
            check_peer(true, Some(&bad), &id("B"))
                .unwrap_err()
                .to_string()
                .contains("bad SAN")
        );
    }
}
