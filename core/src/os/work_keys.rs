//! Work-signing keys from files (control-and-work.md §2.7), for both runtimes: `work-signing`
//! signs the commands a node sends for its remote units, `work-verification` checks the
//! signatures of commands that arrive for work types with `verifysignature`.
//!
//! As Go does, the key files are only checked for existence at startup ([`check_exists`]) and
//! read on every use, so a replaced key takes effect without a restart and a broken one fails
//! only the commands that need it. The tokens are core's [`crate::work::jwt`]; when a unit
//! makes a fresh one is [`crate::work::signing`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::go_error::go_path_error;
use crate::work::jwt::{SigningKey, VerifyError, VerifyingKey};
use crate::work::remote_unit::RemoteUnit;
use crate::work::signing::{DEFAULT_TOKEN_EXPIRATION, SignatureRefresh, token_expiry};

/// Why a token could not be made. The texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// This node has no `work-signing` key.
    #[error("cannot sign work: signing key is empty")]
    NoKey,
    /// The key file could not be read, or holds no usable private key.
    #[error("could not load signing key file: {0}")]
    Load(String),
    /// The key would not sign.
    #[error("{0}")]
    Sign(String),
}

/// Why a command's signature is refused. The texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The command carries no signature.
    #[error("could not verify signature: signature is empty")]
    Empty,
    /// This node has no `work-verification` key.
    #[error("could not verify signature: verifying key not specified")]
    NoKey,
    /// The key file could not be read, or holds no usable public key.
    #[error("could not load verifying key file: {0}")]
    Load(String),
    /// Not a valid token for this key now, or for another node.
    #[error("{}", verify_text(.0))]
    Token(VerifyError),
}

fn verify_text(e: &VerifyError) -> String {
    match e {
        VerifyError::Audience => e.to_string(),
        VerifyError::Token(t) => format!("could not verify signature: {t}"),
    }
}

/// A node's work-signing keys: files, read on each use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkKeys {
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

impl WorkKeys {
    /// How long the tokens this node signs are valid.
    pub fn token_lifetime(&self) -> Duration {
        self.signing
            .as_ref()
            .map_or(DEFAULT_TOKEN_EXPIRATION, |(_, d)| *d)
    }

    /// Go's `createSignature`: a fresh token for `node`, made at `now` (the wall clock, since
    /// the Unix epoch).
    pub fn sign_for(&self, node: &str, now: Duration) -> Result<String, SignError> {
        let Some((path, lifetime)) = &self.signing else {
            return Err(SignError::NoKey);
        };
        let pem =
            std::fs::read(path).map_err(|e| SignError::Load(go_path_error("open", path, &e)))?;
        let key = SigningKey::from_pem(&pem).map_err(SignError::Load)?;
        key.sign(node, token_expiry(now, *lifetime))
            .map_err(SignError::Sign)
    }

    /// Gives remote unit `unit` a fresh token when it signs its work and the one in use is
    /// due for renewal ([`SignatureRefresh`], which records it). `now` is the monotonic clock,
    /// `wall` the wall clock since the Unix epoch. On an error the unit keeps its last token.
    pub fn refresh_signature(
        &self,
        unit: &mut RemoteUnit,
        signed: &mut SignatureRefresh,
        now: Instant,
        wall: Duration,
    ) -> Result<(), SignError> {
        let data = unit.data();
        if !data.sign_work || !signed.due(now, self.token_lifetime()) {
            return Ok(());
        }
        let sig = self.sign_for(&data.remote_node, wall)?;
        unit.set_signature(Some(sig));
        signed.signed(now);
        Ok(())
    }

    /// Go's `VerifySignature` for a command arriving at node `node_id` at `now` (the wall
    /// clock, since the Unix epoch).
    pub fn verify(
        &self,
        signature: &str,
        node_id: &str,
        now: Duration,
    ) -> Result<(), SignatureError> {
        if signature.is_empty() {
            return Err(SignatureError::Empty);
        }
        let Some(path) = &self.verifying else {
            return Err(SignatureError::NoKey);
        };
        let pem = std::fs::read(path)
            .map_err(|e| SignatureError::Load(go_path_error("open", path, &e)))?;
        let key = VerifyingKey::from_pem(&pem).map_err(SignatureError::Load)?;
        key.verify(signature, node_id, now.as_secs_f64())
            .map_err(SignatureError::Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wall clock the tokens are made and checked at.
    const NOW: Duration = Duration::from_secs(1_796_601_600);

    fn key_file(name: &str, data: &[u8]) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("receptor-signing-{}-{name}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn sign_and_verify_through_files() {
        let private = key_file("a.key", include_bytes!("../work/testdata/sign_a_pkcs1.pem"));
        let public = key_file("a.pub", include_bytes!("../work/testdata/sign_a_pub.pem"));
        let other = key_file("b.pub", include_bytes!("../work/testdata/sign_b_pub.pem"));
        let signer = WorkKeys {
            signing: Some((private.clone(), DEFAULT_TOKEN_EXPIRATION)),
            verifying: None,
        };
        let token = signer.sign_for("C", NOW).unwrap();
        let good = WorkKeys {
            signing: None,
            verifying: Some(public.clone()),
        };
        good.verify(&token, "C", NOW).unwrap();
        assert!(matches!(
            good.verify(&token, "C", NOW + 2 * DEFAULT_TOKEN_EXPIRATION),
            Err(SignatureError::Token(VerifyError::Token(_)))
        ));
        let text = |r: Result<(), SignatureError>| r.unwrap_err().to_string();
        assert_eq!(
            text(good.verify(&token, "D", NOW)),
            "token audience did not match node ID"
        );
        assert_eq!(
            text(good.verify("", "C", NOW)),
            "could not verify signature: signature is empty"
        );
        let bad = WorkKeys {
            signing: None,
            verifying: Some(other.clone()),
        };
        assert_eq!(
            text(bad.verify(&token, "C", NOW)),
            "could not verify signature: crypto/rsa: verification error"
        );
        assert_eq!(
            text(WorkKeys::default().verify(&token, "C", NOW)),
            "could not verify signature: verifying key not specified"
        );
        assert_eq!(
            WorkKeys::default().sign_for("C", NOW),
            Err(SignError::NoKey)
        );
        assert_eq!(
            SignError::NoKey.to_string(),
            "cannot sign work: signing key is empty"
        );
        let missing = WorkKeys {
            signing: Some(("/nonexistent/key".into(), DEFAULT_TOKEN_EXPIRATION)),
            verifying: None,
        };
        assert_eq!(
            missing.sign_for("C", NOW).unwrap_err().to_string(),
            "could not load signing key file: open /nonexistent/key: no such file or directory"
        );
        let not_private = WorkKeys {
            signing: Some((public.clone(), DEFAULT_TOKEN_EXPIRATION)),
            verifying: None,
        };
        assert!(matches!(
            not_private.sign_for("C", NOW),
            Err(SignError::Load(_))
        ));
        assert_eq!(
            check_exists("/nonexistent/key").unwrap_err(),
            "/nonexistent/key does not exist"
        );
        for p in [private, public, other] {
            let _ = std::fs::remove_file(p);
        }
    }
}
