//! PEM files as Go's `certificates.LoadFromPEMFile` / `SaveToPEMFile` read and write them:
//! every block must be of a known type and parse; files are written mode 0600 with LF line
//! endings and 64-column base64.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::FromDer;

use super::CertError;
use crate::work::statusfile::go_path_error;

/// PEM label of a certificate.
pub(super) const CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a PKCS#10 certificate request.
pub(super) const CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";
/// PEM label of a PKCS#1 RSA private key (what Go writes).
pub(super) const RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";
/// PEM label of a PKCS#8 private key (Go reads it too).
const PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM label of a SubjectPublicKeyInfo (Go reads it; nothing here uses it).
const PUBLIC_KEY: &str = "PUBLIC KEY";

/// One parsed block of a PEM file.
pub(super) enum Item {
    /// DER of a certificate that parsed.
    Certificate(Vec<u8>),
    /// DER of a certificate request that parsed.
    Request(Vec<u8>),
    /// A private key.
    PrivateKey(PrivateKeyDer<'static>),
    /// A public key (read, never used: Go's loader accepts it).
    PublicKey,
}

/// What a single-item file must hold.
#[derive(Clone, Copy)]
pub(super) enum Want {
    /// A certificate (`cacert`).
    Certificate,
    /// A certificate request (`req`).
    Request,
}

/// Reads every block of a PEM file, checking each parses (Go's `LoadFromPEMFile`).
pub(super) fn load(path: &Path) -> Result<Vec<Item>, CertError> {
    let data = std::fs::read(path).map_err(|e| CertError::Io(go_path_error("open", path, &e)))?;
    parse(&data)
}

/// Reads every block of a PEM file's contents, checking each parses.
pub(super) fn parse(data: &[u8]) -> Result<Vec<Item>, CertError> {
    let blocks = ::pem::parse_many(data).map_err(|_| CertError::Pem)?;
    if blocks.is_empty() {
        return Err(CertError::Pem);
    }
    blocks
        .into_iter()
        .map(|block| {
            let der = block.contents().to_vec();
            match block.tag() {
                CERTIFICATE => {
                    x509_parser::parse_x509_certificate(&der).map_err(|e| CertError::Parse {
                        what: "x509: malformed certificate",
                        reason: e.to_string(),
                    })?;
                    Ok(Item::Certificate(der))
                }
                CERTIFICATE_REQUEST => {
                    x509_parser::certification_request::X509CertificationRequest::from_der(&der)
                        .map_err(|e| CertError::Parse {
                            what: "x509: malformed certificate request",
                            reason: e.to_string(),
                        })?;
                    Ok(Item::Request(der))
                }
                RSA_PRIVATE_KEY => Ok(Item::PrivateKey(PrivatePkcs1KeyDer::from(der).into())),
                PRIVATE_KEY => Ok(Item::PrivateKey(PrivatePkcs8KeyDer::from(der).into())),
                PUBLIC_KEY => {
                    x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).map_err(|e| {
                        CertError::Parse {
                            what: "x509: malformed public key",
                            reason: e.to_string(),
                        }
                    })?;
                    Ok(Item::PublicKey)
                }
                other => Err(CertError::UnknownBlock(other.to_owned())),
            }
        })
        .collect()
}

/// Reads a file that must hold exactly one certificate or request; returns its DER.
pub(super) fn load_one(path: &Path, want: Want) -> Result<Vec<u8>, CertError> {
    let what = match want {
        Want::Certificate => "certificate",
        Want::Request => "certificate request",
    };
    let mut items = load(path)?;
    if items.len() != 1 {
        return Err(CertError::NotOneItem(what));
    }
    match (want, items.pop()) {
        (Want::Certificate, Some(Item::Certificate(der)))
        | (Want::Request, Some(Item::Request(der))) => Ok(der),
        _ => Err(CertError::WrongItem(what)),
    }
}

/// Writes one PEM block to `path` (created mode 0600, or truncated), as Go's `SaveToPEMFile`.
pub(super) fn save(path: &Path, label: &str, der: &[u8]) -> Result<(), CertError> {
    let block = ::pem::Pem::new(label, der.to_vec());
    let text = ::pem::encode_config(
        &block,
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CertError::Io(go_path_error("open", path, &e)))?;
    file.write_all(text.as_bytes())
        .map_err(|e| CertError::Io(go_path_error("write", path, &e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_blocks_read_back_and_bad_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("receptor-certs-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.pem");
        save(&path, PUBLIC_KEY, b"not a key").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{text}");
        assert!(!text.contains('\r'));
        assert!(matches!(load(&path), Err(CertError::Parse { .. })));
        std::fs::write(&path, "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n").unwrap();
        assert_eq!(
            load(&path).err().unwrap().to_string(),
            "unknown block type FOO"
        );
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(
            load(&path).err().unwrap().to_string(),
            "failed to decode PEM block"
        );
        let missing = dir.join("missing.pem");
        assert_eq!(
            load(&missing).err().unwrap().to_string(),
            format!("open {}: no such file or directory", missing.display())
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
