//! How `work-command` combines its configured parameters with the submitter's (§2.4).

use std::collections::BTreeMap;

/// A submission's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// Runtime `params` were given to a work type without `allowruntimeparams`.
    #[error("extra params provided but not allowed")]
    NotAllowed,
}

/// Go's `combineParams`: `base + " " + user`, or whichever is non-empty alone.
pub fn combine_params(base: &str, user: &str) -> String {
    match (base.is_empty(), user.is_empty()) {
        (_, true) => base.to_owned(),
        (true, false) => user.to_owned(),
        (false, false) => format!("{base} {user}"),
    }
}

/// The parameter string a command unit runs with: the configured `base` plus the submitted
/// `params` entry (other submitted keys are ignored). A non-empty `params` needs
/// `allow_runtime`.
pub fn command_params(
    base: &str,
    allow_runtime: bool,
    submitted: &BTreeMap<String, String>,
) -> Result<String, ParamsError> {
    let user = submitted.get("params").map_or("", String::as_str);
    if !user.is_empty() && !allow_runtime {
        return Err(ParamsError::NotAllowed);
    }
    Ok(combine_params(base, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn combining() {
        assert_eq!(combine_params("", ""), "");
        assert_eq!(combine_params("-a", ""), "-a");
        assert_eq!(combine_params("", "-b"), "-b");
        assert_eq!(combine_params("-a", "-b c"), "-a -b c");
    }

    #[test]
    fn runtime_params_need_permission() {
        assert_eq!(command_params("-a", false, &m(&[])), Ok("-a".into()));
        assert_eq!(
            command_params("-a", false, &m(&[("params", ""), ("other", "x")])),
            Ok("-a".into())
        );
        assert_eq!(
            command_params("-a", false, &m(&[("params", "it worked!")])),
            Err(ParamsError::NotAllowed)
        );
        assert_eq!(
            ParamsError::NotAllowed.to_string(),
            "extra params provided but not allowed"
        );
        assert_eq!(
            command_params("-a", true, &m(&[("params", "it worked!")])),
            Ok("-a it worked!".into())
        );
    }
}
