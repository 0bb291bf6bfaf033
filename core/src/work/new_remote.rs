//! The checks of a `work submit` that makes a `remote` unit, and the [`RemoteExtraData`] the
//! unit starts with (Go's `remoteUnit` set-up in `workceptor/remote_work.go`).
//!
//! In Go's order: a named `tlsclient` must be a configured TLS client; params with secrets
//! (`secret_*` keys) need TLS; `ttl` must be a Go duration, and sets when an unstarted unit
//! gives up. A `ttl` longer than the signing tokens last is allowed with a warning.
//!
//! ```
//! use std::time::Duration;
//! use receptor_core::control::WorkSubmit;
//! use receptor_core::work::{NewRemoteError, new_remote_data};
//!
//! let mut req = WorkSubmit { node: "C".into(), work_type: "echo".into(), ..Default::default() };
//! req.params.insert("secret_token".into(), "x".into());
//! let parse = |_: &str| -> Result<i64, String> { Ok(0) };
//! assert_eq!(
//!     new_remote_data(&req, true, Duration::from_secs(300), 0, parse),
//!     Err(NewRemoteError::SecretsWithoutTls)
//! );
//! ```

use std::time::Duration;

use super::remote::{RemoteExtraData, is_secret};
use super::signing::ttl_outlives_token;
use crate::control::WorkSubmit;
use crate::wire::UnixNanos;

/// Why a remote unit cannot be made. The texts are Go's; the control client shows them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NewRemoteError {
    /// `tlsclient` names no configured TLS client.
    #[error("unknown TLS config {0}")]
    UnknownTlsConfig(String),
    /// Params hold secrets but no `tlsclient` was given.
    #[error("cannot send secrets over a non-TLS connection")]
    SecretsWithoutTls,
    /// `ttl` is not a Go duration: the duration parser's own words.
    #[error("{0}")]
    Ttl(String),
}

/// A remote unit's starting data, and whether to warn that its `ttl` outlives its signing
/// tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRemote {
    /// The unit's `ExtraData`.
    pub data: RemoteExtraData,
    /// `signwork` with a `ttl` longer than a token lasts: Go logs `json web token expires
    /// before ttl` and makes the unit anyway.
    pub ttl_outlives_token: bool,
}

/// Checks `req` (a `work submit` for another node) and gives the unit's starting data.
///
/// `tls_client_known`: whether `req.tls_client` names a configured TLS client (anything when
/// it is empty). `token_lifetime`: how long this node's signing tokens last. `now`: the wall
/// clock, for the expiration. `parse_ttl`: Go's `time.ParseDuration` in nanoseconds, called
/// only when `ttl` is given and the other checks passed.
pub fn new_remote_data(
    req: &WorkSubmit,
    tls_client_known: bool,
    token_lifetime: Duration,
    now: UnixNanos,
    parse_ttl: impl FnOnce(&str) -> Result<i64, String>,
) -> Result<NewRemote, NewRemoteError> {
    if !req.tls_client.is_empty() && !tls_client_known {
        return Err(NewRemoteError::UnknownTlsConfig(req.tls_client.clone()));
    }
    if req.tls_client.is_empty() && req.params.keys().any(|k| is_secret(k)) {
        return Err(NewRemoteError::SecretsWithoutTls);
    }
    let (expiration, ttl_outlives) = if req.ttl.is_empty() {
        (None, false)
    } else {
        let ttl = parse_ttl(&req.ttl).map_err(NewRemoteError::Ttl)?;
        (
            Some(now.saturating_add(UnixNanos::from(ttl))),
            req.sign_work && ttl_outlives_token(ttl, token_lifetime),
        )
    };
    Ok(NewRemote {
        data: RemoteExtraData {
            remote_node: req.node.clone(),
            remote_work_type: req.work_type.clone(),
            remote_params: req.params.clone(),
            sign_work: req.sign_work,
            tls_client: req.tls_client.clone(),
            expiration,
            ..RemoteExtraData::default()
        },
        ttl_outlives_token: ttl_outlives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: Duration = Duration::from_secs(300);
    const MIN: i64 = 60_000_000_000;

    fn req(tls: &str, ttl: &str, sign: bool, params: &[(&str, &str)]) -> WorkSubmit {
        WorkSubmit {
            node: "C".into(),
            work_type: "echo".into(),
            tls_client: tls.into(),
            ttl: ttl.into(),
            sign_work: sign,
            signature: String::new(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    /// A parser of whole minutes (`5m`), for the tests.
    fn minutes(s: &str) -> Result<i64, String> {
        s.strip_suffix('m')
            .and_then(|n| n.parse::<i64>().ok())
            .map(|n| n * MIN)
            .ok_or_else(|| format!("time: invalid duration {s:?}"))
    }

    #[test]
    fn checks_in_gos_order() {
        let r = req("nosuch", "bad", false, &[("secret_x", "s")]);
        assert_eq!(
            new_remote_data(&r, false, LIFE, 0, minutes),
            Err(NewRemoteError::UnknownTlsConfig("nosuch".into()))
        );
        let r = req("", "bad", false, &[("SECRET_x", "s")]);
        assert_eq!(
            new_remote_data(&r, false, LIFE, 0, minutes),
            Err(NewRemoteError::SecretsWithoutTls)
        );
        let r = req("", "bad", false, &[("secretx", "s")]);
        let e = new_remote_data(&r, false, LIFE, 0, minutes).unwrap_err();
        assert_eq!(
            e,
            NewRemoteError::Ttl("time: invalid duration \"bad\"".into())
        );
        assert_eq!(e.to_string(), "time: invalid duration \"bad\"");
        // Secrets are fine over TLS.
        let r = req("client", "", false, &[("secret_x", "s")]);
        assert!(new_remote_data(&r, true, LIFE, 0, minutes).is_ok());
    }

    #[test]
    fn data_and_expiration() {
        let r = req("client", "10m", false, &[("params", "-n 1")]);
        let got = new_remote_data(&r, true, LIFE, 1_000, minutes).unwrap();
        assert_eq!(
            got,
            NewRemote {
                data: RemoteExtraData {
                    remote_node: "C".into(),
                    remote_work_type: "echo".into(),
                    remote_params: r.params.clone(),
                    tls_client: "client".into(),
                    expiration: Some(1_000 + 10 * UnixNanos::from(MIN)),
                    ..RemoteExtraData::default()
                },
                ttl_outlives_token: false,
            }
        );
        // No ttl: no expiration, and the parser is not asked.
        let r = req("", "", true, &[]);
        let got = new_remote_data(&r, true, LIFE, 1_000, |_: &str| -> Result<i64, String> {
            panic!("no ttl to parse")
        })
        .unwrap();
        assert_eq!(got.data.expiration, None);
        assert!(got.data.sign_work);
    }

    #[test]
    fn warns_when_the_ttl_outlives_the_tokens() {
        let outlives = |ttl: &str, sign: bool| {
            new_remote_data(&req("", ttl, sign, &[]), true, LIFE, 0, minutes)
                .unwrap()
                .ttl_outlives_token
        };
        assert!(!outlives("5m", true));
        assert!(outlives("6m", true));
        assert!(!outlives("6m", false));
    }
}
