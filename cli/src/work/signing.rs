//! Work signing keys from the configuration (control-and-work.md §2.7): `work-signing` signs
//! the commands this node sends for its remote units, `work-verification` checks the
//! signatures of commands that arrive for work types with `verifysignature`.
//!
//! Like Go, the key files are only checked for existence at startup and read on every use, so
//! a replaced key takes effect without a restart and a broken one fails only the commands that
//! need it. When a unit makes a fresh token, and when tokens expire, is the core's
//! [`receptor_core::work::signing`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use receptor_core::work::jwt::{SigningKey, VerifyError, VerifyingKey};
pub use receptor_core::work::signing::DEFAULT_TOKEN_EXPIRATION;
use receptor_core::work::signing::token_expiry;

use super::statusfile::go_path_error;

/// The keys of this node.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// `work-signing`: private key file and token lifetime.
    pub signing: Option<(PathBuf, Duration)>,
    /// `work-verification`: public key file.
    pub verifying: Option<PathBuf>,
}

/// Go's `filenameExists` check at startup.
pub fn check_exists(path: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("{path} does not exist")),
        Err(e) => Err(go_path_error("stat", path.as_ref(), &e)),
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Keys {
    /// How long the tokens this node signs are valid.
    pub fn token_lifetime(&self) -> Duration {
        self.signing
            .as_ref()
            .map_or(DEFAULT_TOKEN_EXPIRATION, |(_, d)| *d)
    }

    /// Go's `createSignature`: a fresh token for `node`.
    pub fn sign_for(&self, node: &str) -> Result<String, String> {
        let Some((path, lifetime)) = &self.signing else {
            return Err("cannot sign work: signing key is empty".into());
        };
        let load = |e: String| format!("could not load signing key file: {e}");
        let pem = std::fs::read(path).map_err(|e| load(go_path_error("open", path, &e)))?;
        let key = SigningKey::from_pem(&pem).map_err(load)?;
        key.sign(node, token_expiry(now(), *lifetime))
    }

    /// Go's `VerifySignature` for a command arriving at node `node_id`.
    pub fn verify(&self, signature: &str, node_id: &str) -> Result<(), String> {
        if signature.is_empty() {
            return Err("could not verify signature: signature is empty".into());
        }
        let Some(path) = &self.verifying else {
            return Err("could not verify signature: verifying key not specified".into());
        };
        let load = |e: String| format!("could not load verifying key file: {e}");
        let pem = std::fs::read(path).map_err(|e| load(go_path_error("open", path, &e)))?;
        let key = VerifyingKey::from_pem(&pem).map_err(load)?;
        key.verify(signature, node_id, now().as_secs_f64())
            .map_err(|e| match e {
                VerifyError::Audience => e.to_string(),
                VerifyError::Token(e) => format!("could not verify signature: {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str, data: &[u8]) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("receptor-signing-{}-{name}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn sign_and_verify_through_files() {
        let private = key_file(
            "a.key",
            include_bytes!("../../../core/src/work/testdata/sign_a_pkcs1.pem"),
        );
        let public = key_file(
            "a.pub",
            include_bytes!("../../../core/src/work/testdata/sign_a_pub.pem"),
        );
        let other = key_file(
            "b.pub",
            include_bytes!("../../../core/src/work/testdata/sign_b_pub.pem"),
        );
        let signer = Keys {
            signing: Some((private.clone(), DEFAULT_TOKEN_EXPIRATION)),
            verifying: None,
        };
        let token = signer.sign_for("C").unwrap();
        let good = Keys {
            signing: None,
            verifying: Some(public.clone()),
        };
        good.verify(&token, "C").unwrap();
        assert_eq!(
            good.verify(&token, "D").unwrap_err(),
            "token audience did not match node ID"
        );
        assert_eq!(
            good.verify("", "C").unwrap_err(),
            "could not verify signature: signature is empty"
        );
        let bad = Keys {
            signing: None,
            verifying: Some(other.clone()),
        };
        assert_eq!(
            bad.verify(&token, "C").unwrap_err(),
            "could not verify signature: crypto/rsa: verification error"
        );
        assert_eq!(
            Keys::default().verify(&token, "C").unwrap_err(),
            "could not verify signature: verifying key not specified"
        );
        assert_eq!(
            Keys::default().sign_for("C").unwrap_err(),
            "cannot sign work: signing key is empty"
        );
        let missing = Keys {
            signing: Some(("/nonexistent/key".into(), DEFAULT_TOKEN_EXPIRATION)),
            verifying: None,
        };
        assert_eq!(
            missing.sign_for("C").unwrap_err(),
            "could not load signing key file: open /nonexistent/key: no such file or directory"
        );
        assert_eq!(
            check_exists("/nonexistent/key").unwrap_err(),
            "/nonexistent/key does not exist"
        );
        for p in [private, public, other] {
            let _ = std::fs::remove_file(p);
        }
    }
}
