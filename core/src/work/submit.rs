//! Where a `work submit` runs (control-and-work.md §1.4 "work submit"): on this node when its
//! target is this node's ID or `localhost` (any case), otherwise as a `remote` unit here that
//! submits the work to the target. A `ttl` only makes sense for remote work.
//!
//! ```
//! use receptor_core::control::WorkSubmit;
//! use receptor_core::work::{SubmitError, SubmitTo, submit_target};
//!
//! let mut req = WorkSubmit { node: "LocalHost".into(), ..Default::default() };
//! assert_eq!(submit_target(&req, "A"), Ok(SubmitTo::Local));
//! req.ttl = "1m".into();
//! assert_eq!(submit_target(&req, "A"), Err(SubmitError::TtlForLocalWork));
//! req.node = "B".into();
//! assert_eq!(submit_target(&req, "A"), Ok(SubmitTo::Remote));
//! ```

use crate::control::{WorkSubmit, connect_target};

/// Where a submitted unit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitTo {
    /// On this node, as the work type it names.
    Local,
    /// On another node, through a `remote` unit here.
    Remote,
}

/// Why a `work submit` is refused before any unit exists. The text is Go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// A `ttl` on work for this node.
    #[error("ttl option is intended for remote work only")]
    TtlForLocalWork,
}

/// Where `req` runs, as seen by node `node_id`, and whether its options fit that.
pub fn submit_target(req: &WorkSubmit, node_id: &str) -> Result<SubmitTo, SubmitError> {
    if connect_target(&req.node, node_id) != node_id {
        return Ok(SubmitTo::Remote);
    }
    if !req.ttl.is_empty() {
        return Err(SubmitError::TtlForLocalWork);
    }
    Ok(SubmitTo::Local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(node: &str, ttl: &str) -> WorkSubmit {
        WorkSubmit {
            node: node.into(),
            ttl: ttl.into(),
            ..WorkSubmit::default()
        }
    }

    #[test]
    fn local_is_this_node_or_localhost() {
        for node in ["A", "localhost", "LOCALHOST", "LocalHost"] {
            assert_eq!(
                submit_target(&req(node, ""), "A"),
                Ok(SubmitTo::Local),
                "{node}"
            );
        }
        // Node IDs are case-sensitive; only `localhost` is not.
        for node in ["a", "B", "", "localhost2"] {
            assert_eq!(
                submit_target(&req(node, ""), "A"),
                Ok(SubmitTo::Remote),
                "{node}"
            );
            assert_eq!(submit_target(&req(node, "5m"), "A"), Ok(SubmitTo::Remote));
        }
        assert_eq!(
            submit_target(&req("localhost", "5m"), "A"),
            Err(SubmitError::TtlForLocalWork)
        );
        assert_eq!(
            SubmitError::TtlForLocalWork.to_string(),
            "ttl option is intended for remote work only"
        );
    }
}
