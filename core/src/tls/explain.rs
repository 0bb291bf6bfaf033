//! What a failed backend TLS handshake means, in words an operator can act on.
//!
//! rustls reports `invalid peer certificate: UnknownIssuer` or `received fatal alert:
//! BadCertificate`; neither says which side refused what. [`explain_handshake_error`] names the
//! cause from the side that logs it, and keeps rustls's text for the details.

use std::io;

use rustls::{AlertDescription, CertificateError, Error};

/// Which end of the handshake is explaining its failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeSide {
    /// We dialed (tls-client): the peer is the server.
    Client,
    /// We accepted (tls-server): the peer is the client.
    Server,
}

impl HandshakeSide {
    /// The parameter naming the CAs this side checks the peer with.
    fn our_cas(self) -> &'static str {
        match self {
            Self::Client => "rootcas",
            Self::Server => "clientcas",
        }
    }
}

/// A failed TLS handshake, as the side that ran it sees it. Its text names the cause in words
/// an operator can act on ([`explain_handshake_error`]); [`Self::tls`] gives rustls's error.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake failed: {}", explain_handshake_error(.source, *.side))]
pub struct HandshakeError {
    /// Which end ran the handshake.
    pub side: HandshakeSide,
    /// The error the handshake ended with.
    #[source]
    pub source: io::Error,
}

impl HandshakeError {
    /// The error of `side`'s handshake.
    pub fn new(side: HandshakeSide, source: io::Error) -> Self {
        Self { side, source }
    }

    /// rustls's error, when the TLS layer (not the socket) ended the handshake.
    pub fn tls(&self) -> Option<&Error> {
        self.source
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
    }
}

/// The cause of a failed handshake as this side can tell it, followed by rustls's error in
/// parentheses. For an error that is not from the TLS layer, its text alone.
pub fn explain_handshake_error(err: &io::Error, side: HandshakeSide) -> String {
    let tls = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    let cause = match tls {
        Some(e) => explain_tls(e, side),
        None if err.kind() == io::ErrorKind::UnexpectedEof => match side {
            HandshakeSide::Client => Some(
                "the server closed the connection during the TLS handshake (a listener without \
                 tls, or one that refused us without an alert)"
                    .to_owned(),
            ),
            HandshakeSide::Server => Some(
                "the client closed the connection during the TLS handshake (it may have \
                 refused our certificate: its log says why)"
                    .to_owned(),
            ),
        },
        None => None,
    };
    match cause {
        Some(c) => format!("{c} ({err})"),
        None => err.to_string(),
    }
}

/// The cause of an error that ended an established TLS session, when the peer said it with an
/// alert: with TLS 1.3 a client learns only after its handshake that the server refused its
/// certificate. `None` for every other error (a reset, an end of stream).
pub fn explain_session_error(err: &io::Error) -> Option<String> {
    match err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::AlertReceived(a)) => explain_alert(*a, "peer").map(|c| format!("{c} ({err})")),
        _ => None,
    }
}

fn explain_tls(e: &Error, side: HandshakeSide) -> Option<String> {
    let peer = match side {
        HandshakeSide::Client => "server",
        HandshakeSide::Server => "client",
    };
    Some(match e {
        Error::InvalidCertificate(c) => explain_cert(c, side, peer),
        Error::NoCertificatesPresented => format!(
            "the {peer} sent no certificate, and this tls-server requires one \
             (requireclientcert or clientcas)"
        ),
        Error::AlertReceived(a) => explain_alert(*a, peer)?,
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. } => match side {
            HandshakeSide::Server => "the client does not speak TLS (a peer without tls \
                                      dialing this TLS listener?)"
                .to_owned(),
            HandshakeSide::Client => {
                "the server does not speak TLS (a listener without tls?)".to_owned()
            }
        },
        Error::PeerIncompatible(_) => format!(
            "no TLS version, cipher suite or key exchange in common with the {peer} \
             (mintls13 on one side only, or an old peer?)"
        ),
        Error::NoApplicationProtocol => format!(
            "no application protocol (ALPN) in common with the {peer} (a WebSocket backend \
             against a TCP one?)"
        ),
        _ => return None,
    })
}

fn explain_cert(c: &CertificateError, side: HandshakeSide, peer: &str) -> String {
    let cas = side.our_cas();
    match c {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            format!("the {peer}'s certificate is not signed by a CA this node trusts ({cas})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("the {peer}'s certificate has expired")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("the {peer}'s certificate is not valid yet (clocks out of step?)")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the {peer}'s certificate is not valid for the address dialed")
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!(
                "the {peer}'s certificate is not made for this use (its extended key usage \
                 lacks {})",
                match side {
                    HandshakeSide::Client => "serverAuth",
                    HandshakeSide::Server => "clientAuth",
                }
            )
        }
        _ => format!("the {peer}'s certificate was refused"),
    }
}

fn explain_alert(a: AlertDescription, peer: &str) -> Option<String> {
    Some(match a {
        AlertDescription::UnknownCA => {
            format!("the {peer} does not trust the CA that signed this node's certificate")
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked
        | AlertDescription::AccessDenied => {
            format!("the {peer} refused this node's certificate (its log says why)")
        }
        AlertDescription::CertificateRequired => format!(
            "the {peer} requires a client certificate and this node sent none (set cert and \
             key on the tls-client)"
        ),
        AlertDescription::HandshakeFailure
        | AlertDescription::ProtocolVersion
        | AlertDescription::InsufficientSecurity => format!(
            "no TLS version, cipher suite or key exchange in common with the {peer} \
             (mintls13 on one side only, or an old peer?)"
        ),
        AlertDescription::NoApplicationProtocol => {
            format!("no application protocol (ALPN) in common with the {peer}")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn certificate_failures_name_the_side_and_the_parameter() {
        let e = io(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        let s = explain_handshake_error(&e, HandshakeSide::Client);
        assert!(
            s.starts_with(
                "the server's certificate is not signed by a CA this node trusts (rootcas)"
            ),
            "{s}"
        );
        assert!(
            s.ends_with("(invalid peer certificate: UnknownIssuer)"),
            "{s}"
        );
        let s = explain_handshake_error(&e, HandshakeSide::Server);
        assert!(
            s.contains("client's certificate") && s.contains("clientcas"),
            "{s}"
        );
        let e = io(Error::NoCertificatesPresented);
        let s = explain_handshake_error(&e, HandshakeSide::Server);
        assert!(s.contains("requireclientcert"), "{s}");
    }

    #[test]
    fn alerts_say_the_peer_refused_us() {
        let alert = |a| io(Error::AlertReceived(a));
        let s = explain_handshake_error(&alert(AlertDescription::UnknownCA), HandshakeSide::Client);
        assert!(s.starts_with("the server does not trust the CA"), "{s}");
        let s = explain_handshake_error(
            &alert(AlertDescription::CertificateRequired),
            HandshakeSide::Client,
        );
        assert!(s.contains("sent none"), "{s}");
        let s = explain_handshake_error(
            &alert(AlertDescription::BadCertificate),
            HandshakeSide::Server,
        );
        assert!(
            s.starts_with("the client refused this node's certificate"),
            "{s}"
        );
    }

    #[test]
    fn session_errors_explained_only_for_alerts() {
        let e = io(Error::AlertReceived(AlertDescription::CertificateRequired));
        let s = explain_session_error(&e).unwrap();
        assert!(
            s.starts_with("the peer requires a client certificate"),
            "{s}"
        );
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(explain_session_error(&reset), None);
    }

    #[test]
    fn plain_peers_and_other_errors() {
        let e = io(Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        let s = explain_handshake_error(&e, HandshakeSide::Server);
        assert!(s.starts_with("the client does not speak TLS"), "{s}");
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let s = explain_handshake_error(&eof, HandshakeSide::Client);
        assert!(s.starts_with("the server closed the connection"), "{s}");
        let other = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(
            explain_handshake_error(&other, HandshakeSide::Client),
            "reset"
        );
    }
}
