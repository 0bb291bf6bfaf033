//! The `work` commands of the control service, served by a [`Work`] through core's engine:
//! `submit` (payload into the unit's stdin, then start), `list`, `status` (also long-polled),
//! `results` (streamed), `cancel`, `release`, `force-release`.
//!
//! A `work submit` naming another node makes a `remote` unit here (when the [`Work`] has a
//! node, [`Work::with_node`]) that runs the work there through core's remote-unit machine.
//!
//! What `receptor` checks before its engine sees a request, this does too: a `ttl` is for
//! remote work only, and signatures follow Go's rule ([`Work::check_signature`]): commands
//! for work types with `verifysignature` must carry one that verifies with the node's
//! `work-verification` key unless they come on the unix socket, and a signature where none
//! is asked for is refused.

use std::io::Write;
use std::sync::Arc;

use futures_lite::io::{AsyncRead, AsyncReadExt};
use receptor_core::control::{Reply, WorkRequest, WorkSubmit};
use receptor_core::work::{SubmitTo, submit_target};

use crate::work::{ResultsStream, Work};

/// The service's [`Work`], or the error every `work` command gets without one.
fn work_or_err(work: Option<&Arc<Work>>) -> Result<&Arc<Work>, String> {
    work.ok_or_else(|| "work: this node runs no work units".to_owned())
}

/// Where a command came from, for its signature check: on the unix socket (`true`: trusted),
/// and this node's ID (the audience of a signature).
pub(super) type Origin<'a> = (bool, &'a str);

/// `work submit`, first half: the new unit's ID; its payload comes next (`local`: on the
/// unix socket).
pub(super) fn submit(
    work: Option<&Arc<Work>>,
    self_id: &str,
    req: &WorkSubmit,
    local: bool,
) -> Result<String, String> {
    let work = work_or_err(work)?;
    work.check_signature(
        &req.work_type,
        req.sign_work,
        &req.signature,
        local,
        self_id,
    )?;
    let remote = submit_target(req, self_id).map_err(|e| e.to_string())? == SubmitTo::Remote;
    let id = if remote {
        work.create_remote(req)
    } else {
        work.create(&req.work_type, &req.params)
    }
    .map_err(|e| e.to_string())?;
    let to = if remote {
        format!(", to run on {}", req.node)
    } else {
        String::new()
    };
    tracing::debug!(
        "[{id}] submitted on the control service: work type {}{to}",
        req.work_type
    );
    Ok(id)
}

/// `work submit`, second half: every byte the client sends until EOF (starting with `kept`,
/// read past the command line) goes to the unit's stdin; then the unit starts.
pub(super) async fn receive_payload<S: AsyncRead + Unpin>(
    sock: &mut S,
    kept: &[u8],
    eof: bool,
    work: &Arc<Work>,
    id: &str,
) -> Reply {
    let copied = async {
        let path = work.stdin_path(id).map_err(|e| e.to_string())?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        file.write_all(kept).map_err(|e| e.to_string())?;
        if !eof {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = sock.read(&mut buf).await.map_err(|e| e.to_string())?;
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                    break;
                };
                file.write_all(chunk).map_err(|e| e.to_string())?;
            }
        }
        file.flush().map_err(|e| e.to_string())
    };
    if let Err(e) = copied.await {
        work.payload_failed(id, &e);
        return Reply::Error(e.into());
    }
    match work.start(id).await {
        Ok(pending) => Reply::WorkStarted {
            unit_id: id.to_owned(),
            pending,
        },
        Err(e) => Reply::Error(e.into()),
    }
}

/// `work results`: the stream to run once the session has switched.
pub(super) fn results(
    work: Option<&Arc<Work>>,
    unit_id: &str,
    start_pos: i64,
    signature: &str,
    (local, node_id): Origin<'_>,
) -> Result<ResultsStream, String> {
    let work = work_or_err(work)?;
    let stream = work
        .results_stream(unit_id, start_pos)
        .map_err(|e| e.to_string())?;
    work.check_unit_signature(unit_id, signature, local, node_id)?;
    Ok(stream)
}

/// The `work` commands that answer with one reply.
pub(super) async fn reply(work: Option<&Arc<Work>>, req: WorkRequest, origin: Origin<'_>) -> Reply {
    let work = match work_or_err(work) {
        Ok(w) => w,
        Err(e) => return Reply::Error(e.into()),
    };
    let r = match req {
        WorkRequest::List { unit_id } => work
            .list(unit_id.as_deref())
            .map(Reply::WorkList)
            .map_err(|e| e.to_string()),
        WorkRequest::Status {
            unit_id,
            wait: None,
            ..
        } => work
            .unit_status(&unit_id)
            .map(Reply::WorkStatus)
            .map_err(|e| e.to_string()),
        WorkRequest::Status {
            unit_id,
            wait: Some(w),
            ..
        } => work
            .unit_status_wait(&unit_id, &w)
            .await
            .map(Reply::WorkStatus)
            .map_err(|e| e.to_string()),
        WorkRequest::Cancel { unit_id, signature } => {
            match checked(work, &unit_id, &signature, origin) {
                Ok(()) => work
                    .cancel_pending(&unit_id)
                    .await
                    .map(|pending| Reply::WorkCancelled { unit_id, pending })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            }
        }
        WorkRequest::Release {
            unit_id,
            signature,
            force,
        } => match checked(work, &unit_id, &signature, origin) {
            Ok(()) => work
                .release_pending(&unit_id, force)
                .await
                .map(|pending| Reply::WorkReleased { unit_id, pending })
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        // Submit and results switch the session; `session` handles them.
        WorkRequest::Submit(_) | WorkRequest::Results { .. } => {
            Err("work: unexpected subcommand".to_owned())
        }
    };
    r.unwrap_or_else(|e| Reply::Error(e.into()))
}

/// The signature check of a command on an existing unit (an unknown one is left to the
/// engine, which knows `force-release`'s rule).
fn checked(
    work: &Work,
    unit_id: &str,
    signature: &str,
    (local, node_id): Origin<'_>,
) -> Result<(), String> {
    work.check_unit_signature(unit_id, signature, local, node_id)
}
