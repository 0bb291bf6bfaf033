//! Work signing (control-and-work.md §2.7): the RS512 JSON web tokens a node with
//! `work-signing` attaches to the commands it sends for a remote unit, and their verification
//! on a node with `work-verification`, as Go receptor does it with `golang-jwt/jwt/v4`.
//!
//! A token is `base64url(header) "." base64url(claims) "." base64url(signature)` (no padding),
//! header `{"alg":"RS512","typ":"JWT"}`, claims `{"aud":["<target node>"],"exp":<unix s>}`,
//! signature RSASSA-PKCS1-v1_5 with SHA-512. Keys come from PEM files: a private key as
//! `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8), a public key as `PUBLIC KEY`
//! (SubjectPublicKeyInfo). Errors are worded as Go words them where clients may see them.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use receptor_core::work::jwt::{SigningKey, VerifyError, VerifyingKey};
//!
//! # let private_pem = include_bytes!("testdata/sign_a_pkcs8.pem");
//! # let public_pem = include_bytes!("testdata/sign_a_pub.pem");
//! let signer = SigningKey::from_pem(private_pem)?;
//! let token = signer.sign("node2", 1_900_000_000)?;
//! let verifier = VerifyingKey::from_pem(public_pem)?;
//! verifier.verify(&token, "node2", 1_800_000_000.0)?;
//! assert_eq!(
//!     verifier.verify(&token, "node3", 1_800_000_000.0),
//!     Err(VerifyError::Audience)
//! );
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair, UnparsedPublicKey};
use serde_json::Value;

use crate::control::go_duration_string;

/// Why a work-signing token does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a valid token for this key now: the JWT library's text, as Go words it.
    #[error("{0}")]
    Token(String),
    /// A valid token, for another node.
    #[error("token audience did not match node ID")]
    Audience,
}

/// The header of every token we sign (Go marshals a map: sorted keys).
const HEADER: &str = r#"{"alg":"RS512","typ":"JWT"}"#;

/// An RSA private key that signs tokens.
#[derive(Debug)]
pub struct SigningKey(RsaKeyPair);

/// An RSA public key that verifies tokens (the PKCS#1 `RSAPublicKey` DER inside the
/// SubjectPublicKeyInfo).
#[derive(Debug, Clone)]
pub struct VerifyingKey(Vec<u8>);

impl SigningKey {
    /// Reads a private key file's contents (Go's `certificates.LoadPrivateKey`): exactly one
    /// PEM block, `RSA PRIVATE KEY` or `PRIVATE KEY` holding an RSA key (2048 to 8192 bits).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let blocks = pem_blocks(pem)?;
        let [(label, der)] = blocks.as_slice() else {
            return Err("private key file should contain exactly one item".into());
        };
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der),
            "PUBLIC KEY" | "CERTIFICATE" | "CERTIFICATE REQUEST" => {
                return Err("private key file does not contain private key data".into());
            }
            other => return Err(format!("unknown block type {other}")),
        };
        pair.map(Self)
            .map_err(|e| format!("x509: failed to parse private key: {e}"))
    }

    /// A token for `audience` (the target node ID) expiring at `exp` (Unix seconds).
    pub fn sign(&self, audience: &str, exp: i64) -> Result<String, String> {
        let mut claims = String::from(r#"{"aud":["#);
        crate::wire::write_str(&mut claims, audience);
        let _ = write!(claims, r#"],"exp":{exp}}}"#);
        let mut token = b64url_encode(HEADER.as_bytes());
        token.push('.');
        token.push_str(&b64url_encode(claims.as_bytes()));
        let mut sig = vec![0u8; self.0.public_modulus_len()];
        self.0
            .sign(
                &signature::RSA_PKCS1_SHA512,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "crypto/rsa: signing failed".to_owned())?;
        token.push('.');
        token.push_str(&b64url_encode(&sig));
        Ok(token)
    }
}

impl VerifyingKey {
    /// Reads a public key file's contents (Go's `certificates.LoadPublicKey`): exactly one
    /// `PUBLIC KEY` PEM block holding an RSA key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let blocks = pem_blocks(pem)?;
        let [(label, der)] = blocks.as_slice() else {
            return Err("public key file should contain exactly one item".into());
        };
        match label.as_str() {
            "PUBLIC KEY" => rsa_public_key_from_spki(der).map(|k| Self(k.to_vec())),
            "RSA PRIVATE KEY" | "PRIVATE KEY" | "CERTIFICATE" | "CERTIFICATE REQUEST" => {
                Err("public key file does not contain public key data".into())
            }
            other => Err(format!("unknown block type {other}")),
        }
    }

    /// Verifies `token` for this node at `now` (Unix seconds), as Go's `VerifySignature` after
    /// the key is loaded: [`VerifyError::Token`] carries the JWT library's text (the caller
    /// prefixes `could not verify signature: `), [`VerifyError::Audience`] is a valid token
    /// for another node.
    ///
    /// As in `jwt/v4`, time claims (`exp`, `iat`, `nbf`) are optional and checked before the
    /// signature, and a bad signature is the error reported when both fail.
    pub fn verify(&self, token: &str, node_id: &str, now: f64) -> Result<(), VerifyError> {
        let claims = self.verify_token(token, now).map_err(VerifyError::Token)?;
        if !audience_matches(claims.get("aud"), node_id) {
            return Err(VerifyError::Audience);
        }
        Ok(())
    }

    fn verify_token(
        &self,
        token: &str,
        now: f64,
    ) -> Result<serde_json::Map<String, Value>, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, sig] = parts.as_slice() else {
            return Err("token contains an invalid number of segments".into());
        };
        let header: Value = decode_segment_json(header)?;
        let claims = match decode_segment_json(claims)? {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type jwt.RegisteredClaims",
                    json_kind(&other)
                ));
            }
        };
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let algorithm: &dyn signature::VerificationAlgorithm = match alg {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
            "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
            "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
            "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
            "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
            "HS256" | "HS384" | "HS512" | "ES256" | "ES384" | "ES512" | "EdDSA" | "none" => {
                return Err("key is of invalid type".into());
            }
            _ => return Err("signing method (alg) is unavailable.".into()),
        };
        let mut claim_error = time_claims_error(&claims, now)?;
        let signed_len = header_len(token);
        let signed = token.get(..signed_len).unwrap_or_default();
        let sig_ok = b64url_decode(sig)
            .map(|s| {
                UnparsedPublicKey::new(algorithm, &self.0)
                    .verify(signed.as_bytes(), &s)
                    .is_ok()
            })
            .unwrap_or(false);
        if !sig_ok {
            claim_error = Some("crypto/rsa: verification error".into());
        }
        match claim_error {
            Some(e) => Err(e),
            None => Ok(claims),
        }
    }
}

/// Length of `header.claims`, the signed part of a token.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn decode_segment_json(seg: &str) -> Result<Value, String> {
    let raw = b64url_decode(seg)?;
    serde_json::from_slice(&raw).map_err(|e| e.to_string())
}

/// A time claim as `jwt.NumericDate` reads it: a JSON number of seconds, truncated to whole
/// seconds. Absent or `null` is `None`.
fn numeric_date(claims: &serde_json::Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().map(f64::trunc)),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field RegisteredClaims.{key} of type \
             *jwt.NumericDate",
            json_kind(other)
        )),
    }
}

/// `jwt.RegisteredClaims.Valid`: the last failing time claim's text, `None` when all pass.
fn time_claims_error(
    claims: &serde_json::Map<String, Value>,
    now: f64,
) -> Result<Option<String>, String> {
    let mut err = None;
    if let Some(exp) = numeric_date(claims, "exp")?
        && now > exp
    {
        let late = Duration::try_from_secs_f64(now - exp).unwrap_or_default();
        err = Some(format!("token is expired by {}", go_duration_string(late)));
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && now < iat
    {
        err = Some("Token used before issued".into());
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now < nbf
    {
        err = Some("token is not valid yet".into());
    }
    Ok(err)
}

/// `VerifyAudience(node, true)`: `aud` (a string or an array of strings) names the node.
fn audience_matches(aud: Option<&Value>, node_id: &str) -> bool {
    match aud {
        Some(Value::String(s)) => s == node_id,
        Some(Value::Array(items)) => items
            .iter()
            .any(|v| v.as_str().is_some_and(|s| s == node_id)),
        _ => false,
    }
}

/// The PEM blocks of a file, as `(label, DER)`. Text before a block and whitespace after the
/// last one are ignored; anything else is Go's `failed to decode PEM block`.
pub(crate) fn pem_blocks(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let text = String::from_utf8_lossy(data);
    let mut blocks = Vec::new();
    let mut rest: &str = &text;
    while !rest.trim().is_empty() {
        let fail = || "failed to decode PEM block".to_owned();
        let start = rest.find("-----BEGIN ").ok_or_else(fail)?;
        let after = rest.get(start + 11..).ok_or_else(fail)?;
        let label_end = after.find("-----").ok_or_else(fail)?;
        let label = after.get(..label_end).ok_or_else(fail)?.to_owned();
        let body_start = after.get(label_end + 5..).ok_or_else(fail)?;
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or_else(fail)?;
        let body = body_start.get(..body_end).ok_or_else(fail)?;
        // RFC 1421 headers ("Proc-Type: ...") end at a blank line; base64 never has ':'.
        let body = match body.find(':') {
            Some(_) => body
                .split_once("\n\n")
                .or_else(|| body.split_once("\r\n\r\n"))
                .map_or("", |(_, b)| b),
            None => body,
        };
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = b64_decode(&compact, STD).map_err(|_| fail())?;
        blocks.push((label, der));
        rest = body_start
            .get(body_end + end_marker.len()..)
            .unwrap_or_default();
    }
    if blocks.is_empty() {
        return Err("failed to decode PEM block".into());
    }
    Ok(blocks)
}

/// One DER element: (tag, contents, rest).
fn der_next(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// `1.2.840.113549.1.1.1`, rsaEncryption, DER-encoded.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The `RSAPublicKey` inside a SubjectPublicKeyInfo of algorithm rsaEncryption.
fn rsa_public_key_from_spki(der: &[u8]) -> Result<&[u8], String> {
    let bad = || "x509: failed to parse public key (malformed SubjectPublicKeyInfo)".to_owned();
    let (tag, spki, _) = der_next(der).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (tag, alg, rest) = der_next(spki).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (tag, oid, _) = der_next(alg).ok_or_else(bad)?;
    if tag != 0x06 {
        return Err(bad());
    }
    if oid != OID_RSA_ENCRYPTION {
        return Err("public key file does not contain public key data".into());
    }
    let (tag, bits, _) = der_next(rest).ok_or_else(bad)?;
    match bits.split_first() {
        Some((0, key)) if tag == 0x03 => Ok(key),
        _ => Err(bad()),
    }
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (Go's `base64.RawURLEncoding`).
pub(crate) fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            let idx = ((n >> (18 - 6 * i)) & 63) as usize;
            out.push(char::from(URL.get(idx).copied().unwrap_or(b'A')));
        }
    }
    out
}

/// Decodes a JWT segment: base64url, padding optional (as `jwt/v4` pads it before decoding).
pub(crate) fn b64url_decode(seg: &str) -> Result<Vec<u8>, String> {
    b64_decode(seg.trim_end_matches('='), URL)
}

/// Decodes base64 in `alphabet` with optional `=` padding; the error is Go's text.
fn b64_decode(s: &str, alphabet: &[u8; 64]) -> Result<Vec<u8>, String> {
    let unpadded = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, c) in unpadded.bytes().enumerate() {
        let Some(v) = alphabet.iter().position(|&a| a == c) else {
            return Err(format!("illegal base64 data at input byte {i}"));
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if unpadded.len() % 4 == 1 {
        return Err(format!(
            "illegal base64 data at input byte {}",
            unpadded.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_PKCS1: &[u8] = include_bytes!("testdata/sign_a_pkcs1.pem");
    const A_PKCS8: &[u8] = include_bytes!("testdata/sign_a_pkcs8.pem");
    const A_PUB: &[u8] = include_bytes!("testdata/sign_a_pub.pem");
    const B_PUB: &[u8] = include_bytes!("testdata/sign_b_pub.pem");

    #[test]
    fn base64url() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"\xfb\xff", "-_8"),
        ] {
            assert_eq!(b64url_encode(raw), enc);
            assert_eq!(b64url_decode(enc).unwrap(), raw);
        }
        assert_eq!(b64url_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(
            b64url_decode("Zm9v!").unwrap_err(),
            "illegal base64 data at input byte 4"
        );
        assert!(b64url_decode("Z").is_err());
    }

    #[test]
    fn sign_and_verify_both_private_key_forms() {
        let verifier = VerifyingKey::from_pem(A_PUB).unwrap();
        for pem in [A_PKCS1, A_PKCS8] {
            let token = SigningKey::from_pem(pem).unwrap().sign("C", 2_000).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            assert_eq!(b64url_decode(parts[0]).unwrap(), HEADER.as_bytes());
            assert_eq!(
                b64url_decode(parts[1]).unwrap(),
                br#"{"aud":["C"],"exp":2000}"#
            );
            assert_eq!(b64url_decode(parts[2]).unwrap().len(), 256);
            verifier.verify(&token, "C", 1_000.0).unwrap();
            assert_eq!(
                verifier
                    .verify(&token, "B", 1_000.0)
                    .unwrap_err()
                    .to_string(),
                "token audience did not match node ID"
            );
            assert_eq!(
                verifier
                    .verify(&token, "C", 2_061.5)
                    .unwrap_err()
                    .to_string(),
                "token is expired by 1m1.5s"
            );
            let other = VerifyingKey::from_pem(B_PUB).unwrap();
            assert_eq!(
                other.verify(&token, "C", 1_000.0).unwrap_err().to_string(),
                "crypto/rsa: verification error"
            );
            // Wrong key and expired: the signature error wins, as in jwt/v4.
            assert_eq!(
                other.verify(&token, "C", 3_000.0).unwrap_err().to_string(),
                "crypto/rsa: verification error"
            );
            // A tampered claim breaks the signature.
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                b64url_encode(br#"{"aud":["D"],"exp":2000}"#),
                parts[2]
            );
            assert_eq!(
                verifier
                    .verify(&forged, "D", 1_000.0)
                    .unwrap_err()
                    .to_string(),
                "crypto/rsa: verification error"
            );
        }
    }

    #[test]
    fn malformed_tokens() {
        let v = VerifyingKey::from_pem(A_PUB).unwrap();
        assert_eq!(
            v.verify("a.b", "C", 0.0).unwrap_err().to_string(),
            "token contains an invalid number of segments"
        );
        let hs = format!(
            "{}.{}.x",
            b64url_encode(br#"{"alg":"HS256"}"#),
            b64url_encode(b"{}")
        );
        assert_eq!(
            v.verify(&hs, "C", 0.0).unwrap_err().to_string(),
            "key is of invalid type"
        );
        let aud_string = format!(
            "{}.{}.",
            b64url_encode(HEADER.as_bytes()),
            b64url_encode(br#"{"aud":"C"}"#)
        );
        assert_eq!(
            v.verify(&aud_string, "C", 0.0).unwrap_err().to_string(),
            "crypto/rsa: verification error"
        );
        assert!(audience_matches(Some(&Value::String("C".into())), "C"));
        assert!(!audience_matches(None, "C"));
    }

    #[test]
    fn key_files() {
        assert_eq!(
            SigningKey::from_pem(A_PUB).unwrap_err(),
            "private key file does not contain private key data"
        );
        assert_eq!(
            VerifyingKey::from_pem(A_PKCS1).unwrap_err(),
            "public key file does not contain public key data"
        );
        let two = [A_PUB, B_PUB].concat();
        assert_eq!(
            VerifyingKey::from_pem(&two).unwrap_err(),
            "public key file should contain exactly one item"
        );
        assert_eq!(
            SigningKey::from_pem(b"ssh-rsa AAAA").unwrap_err(),
            "failed to decode PEM block"
        );
        let openssh =
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(
            SigningKey::from_pem(openssh).unwrap_err(),
            "unknown block type OPENSSH PRIVATE KEY"
        );
        assert!(
            SigningKey::from_pem(
                b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            )
            .unwrap_err()
            .starts_with("x509: failed to parse private key")
        );
    }
}
