//! Go receptor's certificate helpers (control-and-work.md §4.3-4.5): `--cert-init` makes a CA,
//! `--cert-makereq` a key and a certificate request carrying Receptor node IDs, `--cert-signreq`
//! signs a request with the CA. The PEM outputs are those of Go's commands (`CERTIFICATE`,
//! `CERTIFICATE REQUEST`, PKCS#1 `RSA PRIVATE KEY`, files mode 0600), so a Go CA signs our
//! requests and ours signs Go's.
//!
//! rcgen builds and signs; x509-parser reads requests and certificates. Where Go's output differs
//! from rcgen's defaults (extension order, minimal key-usage bits, no subject key identifier on
//! a leaf) the extensions are written here with yasna, the DER writer rcgen itself uses.
//!
//! Differences from Go, each deliberate: serial numbers are 16 random bytes, not the Unix time
//! (Go gives a CA and a certificate it signs in the same second one serial); RSA keys are 2048,
//! 3072 or 4096 bits (our TLS refuses smaller ones); a request whose signature does not verify is
//! refused; CA and request keys may also be ECDSA or Ed25519.

mod keys;
mod names;
mod pem;
mod request;
mod x509;

use std::io::{BufRead, Write};
use std::path::Path;

use crate::config::{CertInitCfg, CertMakeReqCfg, CertSignReqCfg};

pub use keys::KEY_SIZES;

/// Why a certificate command failed. Texts follow Go's where Go has one.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or written (worded like Go's `open <path>: <reason>`).
    #[error("{0}")]
    Io(String),
    /// A file holds something that is not PEM, or PEM with trailing garbage.
    #[error("failed to decode PEM block")]
    Pem,
    /// A PEM block of a type Go does not read.
    #[error("unknown block type {0}")]
    UnknownBlock(String),
    /// A PEM block whose content does not parse.
    #[error("{what}: {reason}")]
    Parse {
        /// What the block was meant to hold.
        what: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// A single-item file (`cacert`, `cakey`, `req`) holds more or fewer items.
    #[error("{0} file should contain exactly one item")]
    NotOneItem(&'static str),
    /// A single-item file holds the wrong kind of item.
    #[error("{0} file does not contain {0} data")]
    WrongItem(&'static str),
    /// `inkey` holds more than one private key.
    #[error("multiple private keys in file {0}")]
    MultipleKeys(String),
    /// `inkey` holds no private key.
    #[error("no private keys in file {0}")]
    NoKey(String),
    /// `commonname` is empty.
    #[error("must provide CommonName")]
    NoCommonName,
    /// `cert-makereq` without `inkey` or `outkey`.
    #[error("must provide either InKey or OutKey")]
    NoKeyChoice,
    /// `cert-makereq` with both `inkey` and `outkey`.
    #[error("cannot use both InKey and OutKey")]
    BothKeys,
    /// `cert-makereq` with `inkey` and `bits`.
    #[error("cannot specify key bits when reading an already-existing key")]
    BitsWithInKey,
    /// `cert-makereq` with `outkey` and no `bits`.
    #[error("must specify key bits when creating a new key")]
    NoBits,
    /// A key size this implementation cannot generate.
    #[error("unsupported RSA key size {0} bits: use 2048, 3072 or 4096")]
    KeySize(u32),
    /// The CA key is not the key of the CA certificate.
    #[error("x509: provided PrivateKey doesn't match parent's PublicKey")]
    KeyMismatch,
    /// A key type that cannot sign certificates here.
    #[error("unsupported private key: {0}")]
    Key(String),
    /// An `ipaddress` that is not an IP address.
    #[error("invalid IP address: {0}")]
    IpAddress(String),
    /// A `dnsname` that cannot be written as an IA5String.
    #[error("invalid DNS name: {0}")]
    DnsName(String),
    /// `notbefore`/`notafter` not in RFC 3339 form.
    #[error("parsing time {0:?}: not an RFC 3339 date/time such as 2006-01-02T15:04:05Z07:00")]
    Time(String),
    /// The request names no DNS name, IP address or node ID.
    #[error("cannot sign: no names found in certificate")]
    NoNames,
    /// The request's signature does not verify with its own key.
    #[error("certificate request signature does not verify: {0}")]
    RequestSignature(String),
    /// The operator did not answer `y`/`yes` to the prompt.
    #[error("user declined")]
    Declined,
    /// No answer to the prompt (standard input closed).
    #[error("EOF")]
    Eof,
    /// The CA's subject name could not be reproduced byte for byte as the issuer name.
    #[error("the CA certificate's subject name cannot be copied into the certificate's issuer")]
    IssuerName,
    /// rcgen refused to build or sign.
    #[error("{0}")]
    Build(String),
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        Self::Build(e.to_string())
    }
}

/// `--cert-init`: a new RSA key and a self-signed CA certificate, valid ten years unless given.
pub fn init(cfg: &CertInitCfg) -> Result<(), CertError> {
    if cfg.common_name.is_empty() {
        return Err(CertError::NoCommonName);
    }
    let validity = x509::Validity::parse(cfg.not_before.as_deref(), cfg.not_after.as_deref(), 10)?;
    let key = keys::generate_rsa(cfg.bits)?;
    let cert = x509::ca_certificate(&cfg.common_name, &key, validity)?;
    pem::save(Path::new(&cfg.out_cert), pem::CERTIFICATE, &cert)?;
    pem::save(
        Path::new(&cfg.out_key),
        pem::RSA_PRIVATE_KEY,
        &keys::pkcs1_der(&key)?,
    )
}

/// `--cert-makereq`: a certificate request for a new key (`outkey`) or an existing one (`inkey`).
pub fn make_req(cfg: &CertMakeReqCfg) -> Result<(), CertError> {
    // Go's Prepare checks, in Go's order.
    match (&cfg.in_key, &cfg.out_key) {
        (None, None) => return Err(CertError::NoKeyChoice),
        (Some(_), Some(_)) => return Err(CertError::BothKeys),
        (Some(_), None) if cfg.bits != 0 => return Err(CertError::BitsWithInKey),
        (None, Some(_)) if cfg.bits == 0 => return Err(CertError::NoBits),
        _ => {}
    }
    let names = names::Names::from_args(&cfg.dns_name, &cfg.ip_address, &cfg.node_id)?;
    if cfg.common_name.is_empty() {
        return Err(CertError::NoCommonName);
    }
    let key = match &cfg.in_key {
        Some(path) => keys::load_request_key(Path::new(path))?,
        None => keys::generate_rsa(cfg.bits)?,
    };
    let req = x509::request(&cfg.common_name, &names, &key)?;
    pem::save(Path::new(&cfg.out_req), pem::CERTIFICATE_REQUEST, &req)?;
    if let Some(out_key) = &cfg.out_key {
        pem::save(
            Path::new(out_key),
            pem::RSA_PRIVATE_KEY,
            &keys::pkcs1_der(&key)?,
        )?;
    }
    Ok(())
}

/// `--cert-signreq`: signs `req` with the CA, valid one year unless given. Without `verify`, shows
/// the request on `out` and asks on `input` first, as Go does.
pub fn sign_req(
    cfg: &CertSignReqCfg,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CertError> {
    let validity = x509::Validity::parse(cfg.not_before.as_deref(), cfg.not_after.as_deref(), 1)?;
    let ca_cert = pem::load_one(Path::new(&cfg.ca_cert), pem::Want::Certificate)?;
    let ca_key = keys::load_ca_key(Path::new(&cfg.ca_key))?;
    let req_der = pem::load_one(Path::new(&cfg.req), pem::Want::Request)?;
    let req = request::Request::parse(&req_der)?;
    if req.names.is_empty() {
        return Err(CertError::NoNames);
    }
    if !cfg.verify {
        let io = |e: std::io::Error| CertError::Io(e.to_string());
        out.write_all(req.describe().as_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
        let mut answer = String::new();
        if input.read_line(&mut answer).map_err(io)? == 0 {
            return Err(CertError::Eof);
        }
        // Go's Scanln reads one word.
        let word = answer
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase();
        if word != "y" && word != "yes" {
            return Err(CertError::Declined);
        }
    }
    let cert = x509::sign(&req, &ca_cert, &ca_key, validity)?;
    pem::save(Path::new(&cfg.out_cert), pem::CERTIFICATE, &cert)
}

/// Everything the certificate commands read from files, applied to `data` as a file's
/// contents (for fuzzing): PEM blocks and what each holds, a request's names and its
/// prompt, and a subjectAltName value.
#[cfg(feature = "fuzzing")]
pub(crate) fn read_untrusted(data: &[u8]) {
    if let Ok(items) = pem::parse(data) {
        for item in items {
            if let pem::Item::Request(der) = item
                && let Ok(req) = request::Request::parse(&der)
            {
                let _ = req.describe();
                let _ = req.names.san_types();
            }
        }
    }
    if let Ok(req) = request::Request::parse(data) {
        let _ = req.describe();
    }
    if let Ok(names) = names::Names::from_san(data) {
        let _ = names.describe();
        let _ = names.san_types();
    }
}
