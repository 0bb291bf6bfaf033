//! Pinned certificate fingerprints (`pinnedservercert` / `pinnedclientcert`).

use super::error::TlsError;

/// A pinned certificate fingerprint: SHA-256 (32 bytes) or SHA-512 (64 bytes) of the leaf DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// Parses Go's configuration form: hex digits with optional `:` separators,
    /// decoding to 32 or 64 bytes (Go's `decodeFingerprints`).
    pub fn parse(text: &str) -> Result<Self, TlsError> {
        let err = |reason| TlsError::Fingerprint {
            value: text.to_owned(),
            reason,
        };
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        if digits.len() % 2 == 1 {
            return Err(err("odd number of hex digits"));
        }
        let nibble = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
        let bytes = digits
            .chunks_exact(2)
            .map(|pair| match pair {
                &[hi, lo] => Some(nibble(hi)? << 4 | nibble(lo)?),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| err("invalid hex digit"))?;
        if bytes.len() != 32 && bytes.len() != 64 {
            return Err(err(
                "fingerprints must be 32 or 64 bytes for sha256 or sha512",
            ));
        }
        Ok(Self(bytes))
    }

    /// Parses a list of configured fingerprints.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Self>, TlsError> {
        texts.iter().map(|t| Self::parse(t.as_ref())).collect()
    }

    /// Computes the SHA-256 fingerprint of a DER certificate.
    pub fn sha256_of(cert_der: &[u8]) -> Self {
        Self(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der)
                .as_ref()
                .to_vec(),
        )
    }

    /// Whether this fingerprint is the SHA-256 or SHA-512 digest of `cert_der`.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        let alg = if self.0.len() == 32 {
            &aws_lc_rs::digest::SHA256
        } else {
            &aws_lc_rs::digest::SHA512
        };
        aws_lc_rs::digest::digest(alg, cert_der).as_ref() == self.0.as_slice()
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Whether the leaf matches at least one pin; an empty pin list matches everything.
pub(crate) fn pins_match(pins: &[Fingerprint], leaf: &[u8]) -> bool {
    pins.is_empty() || pins.iter().any(|p| p.matches(leaf))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_forms() {
        let der = b"not really a certificate";
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        let hex: String = sha256
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let fp = Fingerprint::parse(&hex).unwrap();
        assert!(fp.matches(der));
        assert_eq!(fp, Fingerprint::sha256_of(der));
        let lower: String = sha256.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert!(Fingerprint::parse(&lower).unwrap().matches(der));
        let sha512: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let fp512 = Fingerprint::parse(&sha512).unwrap();
        assert!(fp512.matches(der) && !fp512.matches(b"other"));
        assert!(pins_match(&[], der));
        assert!(pins_match(&[fp512.clone(), fp.clone()], der));
        assert!(!pins_match(&[fp512], b"other"));
    }

    #[test]
    fn fingerprint_errors() {
        for bad in [
            "",
            "abc",
            "zz",
            &"ab".repeat(28),
            &"ab".repeat(48),
            &"ab".repeat(33),
        ] {
            let err = Fingerprint::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("error decoding fingerprints"),
                "{err}"
            );
        }
    }
}
