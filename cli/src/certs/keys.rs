//! Private keys: new RSA keys, their PKCS#1 form (what Go writes as `RSA PRIVATE KEY`), and the
//! keys `cakey` and `inkey` name.

use std::path::Path;

use rcgen::{KeyPair, PKCS_RSA_SHA256, RsaKeySize};

use super::CertError;
use super::pem::{self, Item};

/// The RSA key sizes `bits` may name.
pub const KEY_SIZES: [u32; 3] = [2048, 3072, 4096];

/// A new RSA key of `bits` bits, signing with SHA-256 (Go's `SHA256-RSA`).
pub(super) fn generate_rsa(bits: u32) -> Result<KeyPair, CertError> {
    let size = match bits {
        2048 => RsaKeySize::_2048,
        3072 => RsaKeySize::_3072,
        4096 => RsaKeySize::_4096,
        other => return Err(CertError::KeySize(other)),
    };
    Ok(KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size)?)
}

/// The PKCS#1 `RSAPrivateKey` of a key this module generated (held as PKCS#8, whose
/// `privateKey` OCTET STRING is exactly that).
pub(super) fn pkcs1_der(key: &KeyPair) -> Result<Vec<u8>, CertError> {
    let pkcs8 = key.serialize_der();
    yasna::parse_der(&pkcs8, |r| {
        r.read_sequence(|r| {
            let _version = r.next().read_u8()?;
            let _algorithm = r.next().read_der()?;
            let private_key = r.next().read_bytes()?;
            // Optional attributes [0] and public key [1] (PKCS#8 v2).
            while r.read_optional(|r| r.read_der())?.is_some() {}
            Ok(private_key)
        })
    })
    .map_err(|e| CertError::Key(format!("cannot convert the new key to PKCS#1: {e}")))
}

fn key_pair(
    der: &tokio_rustls::rustls::pki_types::PrivateKeyDer<'_>,
) -> Result<KeyPair, CertError> {
    KeyPair::try_from(der).map_err(|e| CertError::Key(e.to_string()))
}

/// The CA key: the file must hold exactly one item, a private key (Go's `LoadPrivateKey`).
pub(super) fn load_ca_key(path: &Path) -> Result<KeyPair, CertError> {
    let mut items = pem::load(path)?;
    if items.len() != 1 {
        return Err(CertError::NotOneItem("private key"));
    }
    match items.pop() {
        Some(Item::PrivateKey(der)) => key_pair(&der),
        _ => Err(CertError::WrongItem("private key")),
    }
}

/// The key for a request: the one private key among the file's items (Go's `MakeReq`, which
/// skips certificates and other blocks).
pub(super) fn load_request_key(path: &Path) -> Result<KeyPair, CertError> {
    let mut found = None;
    for item in pem::load(path)? {
        if let Item::PrivateKey(der) = item {
            if found.is_some() {
                return Err(CertError::MultipleKeys(path.display().to_string()));
            }
            found = Some(der);
        }
    }
    match found {
        Some(der) => key_pair(&der),
        None => Err(CertError::NoKey(path.display().to_string())),
    }
}
