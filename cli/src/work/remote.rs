//! Remote units (control-and-work.md §2.6): a unit of the built-in type `remote` on this node
//! whose work runs on another node. Everything between the two nodes is the plain control
//! protocol over a mesh stream to the other node's `control` service, so either side may be Go
//! receptor:
//!
//! * start: `work submit` (JSON line), the reply naming the remote unit ID, the payload, a
//!   half-close, the final reply;
//! * monitoring, until the unit is complete and all its output is here: a status poller
//!   (`work status` on one connection, mirroring State, Detail and StdoutSize) and a stdout
//!   copier (`work results <id> <local size>`, appending to the local `stdout`); after any
//!   failure the copier asks again from the size of the local file, so no byte is lost or
//!   doubled;
//! * cancel / release / force-release: `work cancel` / `work release` on the other node;
//! * restart: units found on disk resume where they were.
//!
//! One task at a time drives a unit (its *job*): start, monitoring, or sending a cancel or
//! release until the other node hears it. A new job stops the running one first.
//!
//! Faster than Go, and compatible with it either way round:
//! * the copier asks for results at once and keeps a results stream open while the unit
//!   runs (Go asks only once the status shows more output than it has); the other node then
//!   sends output as it comes and ends the stream when the unit is complete, which prompts a
//!   status poll at once;
//! * status polls carry the long-poll extension ([`receptor_core::control::StatusWait`]): our
//!   nodes answer as soon as State or Detail change, else after [`STATUS_WAIT`]; Go ignores
//!   the extra keys and answers at once, and the poller then waits between polls as before
//!   (250 ms after a change, doubling up to 1 s).
//!
//! Beyond Go: a unit whose node stays unreachable for longer than the configured timeout
//! (`work-remote unreachabletimeout`, default 5 minutes) fails with a detail saying so instead
//! of waiting forever (Go #711); release of a unit the other node no longer knows succeeds
//! (Go #758); a node with no route is not dialled, and a dial gives up after 20 s.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use receptor_core::backoff::Backoff;
use receptor_core::control::{ControlReply, ErrorReply, go_duration_string};
use receptor_core::work::remote::{
    RemoteExtraData, expired_detail, results_command, status_command, submit_command, unit_command,
};
use receptor_core::work::{STATE_CANCELED, STATE_FAILED, StatusRecord, is_complete};
use tracing::{debug, error, info, warn};

use super::client::{Client, ConnectError};
use super::{Unit, Workceptor, lock};
use receptor_core::stream::StreamFailure;

/// Longest pause between status polls, and between stdout checks (Go: 1 s).
const POLL: Duration = Duration::from_secs(1);
/// Pause between status polls after the unit's state changed; it doubles up to [`POLL`] while
/// nothing changes, so short units finish with little delay and quiet ones cost no more
/// polls than in Go.
const POLL_FAST: Duration = Duration::from_millis(250);
/// First retry delay after a failed connection; grows ×1.5 up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay (Go: 60 s; retries are cheap, a node back is noticed sooner).
const RETRY_MAX: Duration = Duration::from_secs(20);
/// How long a status reply may take (beyond [`STATUS_WAIT`]) before the connection is given
/// up as broken: a node that vanished would otherwise only be noticed when QUIC's idle timeout
/// (30 s) ends it.
const STATUS_REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a node of ours holds a status poll while nothing changes: each running unit costs
/// at most one poll a second, as in Go, and a change is seen at once.
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// How long a results stream may stay silent while the other node reports more output than
/// has arrived, before it is given up as broken and asked for again from the local size.
const RESULTS_STALL: Duration = Duration::from_secs(5);
/// How long an idle control session to another node is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(10);
/// Idle control sessions kept per node (and TLS config).
const POOL_PER_NODE: usize = 8;
/// How long the first reply on a pooled session may take. A session whose node restarted
/// meanwhile gets no answer at all (QUIC notices only after its 30 s idle timeout); then a
/// new session is dialled.
const POOLED_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Read size when copying results.
const CHUNK: usize = 256 * 1024;

/// A unit's remote data as last read (with secrets: the status file keeps them).
fn data(unit: &Unit) -> RemoteExtraData {
    unit.status().remote().cloned().unwrap_or_default()
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Time left until `at` (Unix nanoseconds); zero once past.
fn until(at: i128) -> Duration {
    Duration::from_nanos(u64::try_from((at - now_nanos()).max(0)).unwrap_or(u64::MAX))
}

/// How the status poller and the stdout copier of one unit wake each other: the poller tells
/// the copier of news (more output, a new state), the copier tells the poller when a results
/// stream ended (the other node ends it when the unit is complete).
#[derive(Default)]
struct Wakers {
    poller: tokio::sync::Notify,
    copier: tokio::sync::Notify,
    /// The poller's session while it waits with nothing asked (the unit is finished): the
    /// monitor hands it to the pool when it ends.
    idle: Mutex<Option<Client>>,
}

/// Idle control sessions to other nodes, reused by status pollers, cancels and releases:
/// every new session is a QUIC handshake over the mesh. Sessions are only put here between
/// commands (nothing asked, nothing to read). One that died while idle (its node restarted)
/// is found out by a status request answered within [`POOLED_REPLY_TIMEOUT`], or not.
#[derive(Default)]
pub(super) struct Pool {
    /// By (node, TLS config): sessions with the time they became idle, oldest first.
    idle: Mutex<HashMap<PoolKey, Vec<(Client, Instant)>>>,
}

/// A node and the TLS config its sessions use.
type PoolKey = (String, String);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    /// The most recently used idle session to the unit's node, if one is fresh enough.
    fn take(&self, red: &RemoteExtraData) -> Option<Client> {
        let mut idle = lock(&self.idle);
        let key = (red.remote_node.clone(), red.tls_client.clone());
        let list = idle.get_mut(&key)?;
        let found = loop {
            match list.pop() {
                Some((c, since)) if since.elapsed() < POOL_IDLE => break Some(c),
                Some(_) => {}
                None => break None,
            }
        };
        if list.is_empty() {
            idle.remove(&key);
        }
        found
    }

    /// Keeps an idle session for reuse.
    fn put(&self, red: &RemoteExtraData, c: Client) {
        let mut idle = lock(&self.idle);
        let list = idle
            .entry((red.remote_node.clone(), red.tls_client.clone()))
            .or_default();
        list.retain(|(_, since)| since.elapsed() < POOL_IDLE);
        if list.len() < POOL_PER_NODE {
            list.push((c, Instant::now()));
        }
    }
}

impl Workceptor {
    fn mesh(&self) -> Result<&super::client::Mesh, String> {
        self.mesh
            .as_ref()
            .ok_or_else(|| "remote work needs a running node".to_owned())
    }

    fn signature_for(&self, red: &RemoteExtraData) -> Result<Option<String>, String> {
        if red.sign_work {
            self.keys.sign_for(&red.remote_node).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A pooled session to the unit's node that still answers (a status request), or one
    /// connection attempt.
    async fn session(&self, red: &RemoteExtraData) -> Result<Client, ConnectError> {
        while let Some(mut c) = self.pool.take(red) {
            let probe = async {
                c.send(&status_command(&red.remote_unit_id, None)).await?;
                c.read_line().await
            };
            match tokio::time::timeout(POOLED_REPLY_TIMEOUT, probe).await {
                Ok(Ok(_)) => return Ok(c),
                _ => debug!("idle session to {} is dead", red.remote_node),
            }
        }
        self.connect_once(red).await
    }

    /// A cancel or release on a pooled session or a new one; on success the session goes
    /// back to the pool.
    async fn cancel_on_session(
        &self,
        unit: &Unit,
        red: &RemoteExtraData,
        release: bool,
    ) -> Result<Result<bool, CancelError>, ConnectError> {
        let mut conn = self.session(red).await?;
        let r = self.cancel_remote(unit, &mut conn, release).await;
        if r.is_ok() {
            self.pool.put(red, conn);
        }
        Ok(r)
    }

    /// One connection attempt to the unit's node.
    async fn connect_once(&self, red: &RemoteExtraData) -> Result<Client, ConnectError> {
        let mesh = self.mesh().map_err(ConnectError::Other)?;
        mesh.connect(&red.remote_node, &red.tls_client).await
    }

    /// Go's `getConnection`: connects, retrying with backoff. Gives up (`None`) when the TLS
    /// handshake fails for a unit not started yet (it is Failed then), and, with
    /// `unreachable_limit`, when the node has been unreachable for longer than the configured
    /// timeout (the unit is Failed then).
    async fn connection(&self, unit: &Unit, unreachable_limit: bool) -> Option<Client> {
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
        loop {
            let red = data(unit);
            match self.connect_once(&red).await {
                Ok(c) => {
                    *lock(&unit.unreachable_since) = None;
                    unit.unanswered.store(0, Ordering::Relaxed);
                    return Some(c);
                }
                Err(e) => {
                    info!("Connection to {} failed with error: {e}", red.remote_node);
                    if gave_up(unit, &red.remote_node, &e) {
                        return None;
                    }
                    let since = *lock(&unit.unreachable_since).get_or_insert_with(Instant::now);
                    if unreachable_limit
                        && let Some(limit) = self.unreachable_timeout
                        && since.elapsed() >= limit
                    {
                        self.unreachable(unit, &red.remote_node, limit);
                        return None;
                    }
                }
            }
            tokio::time::sleep(backoff.next_delay(rand_u64())).await;
        }
    }

    /// The node stayed unreachable too long: the unit fails with what output arrived.
    fn unreachable(&self, unit: &Unit, node: &str, limit: Duration) {
        let size = unit.stdout_size();
        let st = unit.status();
        if is_complete(st.state) && size >= st.stdout_size {
            return;
        }
        let detail = format!(
            "Remote node {node} was unreachable for {}",
            go_duration_string(limit)
        );
        warn!("[{}] {detail}", unit.id);
        unit.update_basic(STATE_FAILED, detail, Some(size));
    }

    /// Go's `startRemoteUnit` on an open connection: submit, payload, half-close, reply.
    async fn send_submit(&self, unit: &Unit, mut conn: Client) -> Result<(), SubmitError> {
        use SubmitError::{Cut, Final, Unconfirmed};
        let red = data(unit);
        let node = &red.remote_node;
        let sig = self.signature_for(&red).map_err(Final)?;
        debug!(
            "[{}] submitting work type {} to {node}",
            unit.id, red.remote_work_type
        );
        let line = submit_command(
            &red.remote_params,
            node,
            &red.remote_work_type,
            &red.tls_client,
            sig.as_deref(),
        );
        conn.send(&line)
            .await
            .map_err(|e| Cut(format!("write error sending to {node}: {e}")))?;
        let reply = conn
            .read_line()
            .await
            .map_err(|e| Cut(format!("read error reading from {node}: {e}")))?;
        let Ok(ControlReply::WorkUnitCreated { unit_id: remote_id }) = ControlReply::decode(&reply)
        else {
            return Err(Final(format!(
                "could not parse response: {}",
                reply.trim_end_matches('\n')
            )));
        };
        debug!(
            "[{}] {node} created unit {remote_id}; sending stdin",
            unit.id
        );
        unit.update(|r| {
            if let Some(d) = r.remote_mut() {
                d.remote_unit_id.clone_from(&remote_id);
            }
        })
        .map_err(Final)?;
        let mut stdin = tokio::fs::File::open(unit.stdin_path())
            .await
            .map_err(|e| Final(format!("error opening stdin file: {e}")))?;
        conn.send_from(&mut stdin)
            .await
            .map_err(|e| Cut(format!("error sending stdin file: {e}")))?;
        conn.half_close()
            .await
            .map_err(|e| Cut(format!("error closing stdin file: {e}")))?;
        let reply = conn
            .read_line()
            .await
            .map_err(|e| Unconfirmed(format!("read error reading from {node}: {e}")))?;
        if let Ok(ControlReply::Error(e)) = ControlReply::decode(&reply) {
            return Err(Final(format!("error from remote: {e}")));
        }
        mark_started(unit).map_err(Final)?;
        info!("[{}] started as unit {remote_id} on {node}", unit.id);
        Ok(())
    }

    /// Go's `cancelOrReleaseRemoteUnit` on an open connection. Returns whether the other node
    /// answered "pending" (its own remote side has not heard yet).
    async fn cancel_remote(
        &self,
        unit: &Unit,
        conn: &mut Client,
        release: bool,
    ) -> Result<bool, CancelError> {
        let red = data(unit);
        let node = &red.remote_node;
        let sig = self.signature_for(&red).map_err(CancelError::Final)?;
        let sub = if release { "release" } else { "cancel" };
        debug!(
            "[{}] asking {node} to {sub} unit {}",
            unit.id, red.remote_unit_id
        );
        conn.send(&unit_command(sub, &red.remote_unit_id, sig.as_deref()))
            .await
            .map_err(|e| CancelError::Cut(format!("write error sending to {node}: {e}")))?;
        let reply = conn
            .read_line()
            .await
            .map_err(|e| CancelError::Cut(format!("read error reading from {node}: {e}")))?;
        match ControlReply::decode(&reply) {
            // Released there already (or never known): nothing left to release (Go #758).
            Ok(ControlReply::Error(ErrorReply::UnknownUnit { .. })) if release => Ok(false),
            Ok(ControlReply::Error(e)) => Err(CancelError::Final(format!(
                "error cancelling remote unit: {e}"
            ))),
            Ok(
                ControlReply::WorkCancelled { pending, .. }
                | ControlReply::WorkReleased { pending, .. },
            ) => Ok(pending),
            Ok(other) => Err(CancelError::Final(format!(
                "unexpected reply to {sub}: {}",
                other.encode().trim_end()
            ))),
            Err(e) => Err(CancelError::Final(e.to_string())),
        }
    }

    /// Go's status poller. Ends when the other node no longer knows the unit (returning
    /// `true`), on a remote error, or when it gives up connecting.
    async fn poll_status(&self, unit: &Unit, wakers: Option<&Wakers>) -> bool {
        let for_release = wakers.is_none();
        let red = data(unit);
        let mut conn: Option<Client> = self.pool.take(&red);
        // The first reply on a pooled session is expected at once (see POOLED_REPLY_TIMEOUT).
        let mut pooled = conn.is_some();
        let mut interval = POLL_FAST;
        let mut last: Option<(i64, String, i64)> = None;
        loop {
            let c = match &mut conn {
                Some(c) => c,
                None => match self.connection(unit, !for_release).await {
                    Some(c) => conn.insert(c),
                    None => return false,
                },
            };
            // The first poll answers at once; later ones wait for a change (our nodes).
            let millis = u64::try_from(STATUS_WAIT.as_millis()).unwrap_or(u64::MAX);
            let wait = last.as_ref().map(|(s, d, _)| (*s, d.as_str(), millis));
            let sent = Instant::now();
            if let Err(e) = c.send(&status_command(&red.remote_unit_id, wait)).await {
                debug!("Write error sending to {}: {e}", red.remote_node);
                conn = None;
                tokio::time::sleep(POLL).await;
                continue;
            }
            let within = if pooled {
                POOLED_REPLY_TIMEOUT + STATUS_WAIT
            } else {
                STATUS_REPLY_TIMEOUT + STATUS_WAIT
            };
            pooled = false;
            let line = match tokio::time::timeout(within, c.read_line()).await {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    debug!("Read error reading from {}: {e}", red.remote_node);
                    conn = None;
                    continue;
                }
                Err(_) => {
                    debug!("No status reply from {}: reconnecting", red.remote_node);
                    conn = None;
                    continue;
                }
            };
            let status = match ControlReply::decode(&line) {
                Ok(ControlReply::WorkStatus(s)) => s,
                Ok(ControlReply::Error(ErrorReply::UnknownUnit { .. })) => {
                    if let Some(c) = conn.take() {
                        self.pool.put(&red, c);
                    }
                    if !for_release {
                        debug!(
                            "Work unit {} on node {} is gone.",
                            red.remote_unit_id, red.remote_node
                        );
                        let size = unit.stdout_size();
                        unit.update_basic(STATE_FAILED, "Remote work unit is gone", Some(size));
                    }
                    return true;
                }
                Ok(ControlReply::Error(e)) => {
                    error!("Remote error: {e}");
                    return false;
                }
                Ok(other) => {
                    error!("Not a status reply: {}", other.encode().trim_end());
                    return false;
                }
                Err(e) => {
                    error!("Error reading status reply: {e}");
                    return false;
                }
            };
            let (state, detail, size) = (status.state, status.detail, status.stdout_size);
            if last
                .as_ref()
                .is_none_or(|l| *l != (state, detail.clone(), size))
            {
                debug!(
                    "[{}] status of {} on {}: {} ({detail}), {size} bytes of stdout",
                    unit.id,
                    red.remote_unit_id,
                    red.remote_node,
                    receptor_core::control::state_name(state)
                );
            }
            if !unit.is_released() {
                unit.update_basic(state, detail.clone(), Some(size));
            }
            let state_changed = last
                .as_ref()
                .is_none_or(|(s, d, _)| *s != state || *d != detail);
            let changed = state_changed || last.as_ref().is_some_and(|l| l.2 != size);
            // A node that held the poll has paced it already; one that answered at once
            // (Go) is asked again after the rest of the interval.
            let pause = if state_changed {
                Duration::ZERO
            } else {
                interval.saturating_sub(sent.elapsed())
            };
            interval = if state_changed {
                POLL_FAST
            } else {
                (interval * 2).min(POLL)
            };
            last = Some((state, detail, size));
            let Some(w) = wakers else {
                tokio::time::sleep(pause).await;
                continue;
            };
            if changed {
                w.copier.notify_one();
            }
            if is_complete(state) || (state == STATE_CANCELED && data(unit).local_cancelled) {
                // Nothing will change: park the session until the copier asks again (the
                // monitor ends first, when all output is here, and pools the session).
                *lock(&w.idle) = conn.take();
                w.poller.notified().await;
                conn = lock(&w.idle).take();
                continue;
            }
            if !pause.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = w.poller.notified() => {}
                }
            }
        }
    }

    /// Go's stdout copier: keeps the local `stdout` up to the size the other node reports,
    /// asking for results from the local size after every failure. Ends once the unit is
    /// complete (or cancelled here and Canceled there) with all its output here.
    ///
    /// Unlike Go it keeps a results stream open from the start, so output arrives as it is
    /// written and the stream's end tells of completion.
    async fn copy_stdout(&self, unit: &Unit, wakers: &Wakers) {
        let path = unit.dir.join("stdout");
        if let Err(e) = open_append(&path) {
            error!("Could not open stdout file {}: {e}", path.display());
            return;
        }
        let mut changes = unit.subscribe();
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    () = unit.changed(&mut changes) => {}
                    () = wakers.copier.notified() => {}
                }
            }
            first = false;
            let st = unit.status();
            let red = st.remote().cloned().unwrap_or_default();
            let local = unit.stdout_size();
            if copied_all(&st, local) {
                return;
            }
            // All output is here and the unit will not write more: wait for the poller.
            if local >= st.stdout_size && finished(&st) {
                continue;
            }
            let Some(mut conn) = self.connection(unit, true).await else {
                return;
            };
            let sig = match self.signature_for(&red) {
                Ok(s) => s,
                Err(e) => {
                    error!("could not create signature to get results: {e}");
                    return;
                }
            };
            debug!(
                "[{}] fetching results of {} from {} at byte {local}",
                unit.id, red.remote_unit_id, red.remote_node
            );
            let cmd = results_command(&red.remote_unit_id, local, sig.as_deref());
            if let Err(e) = conn.send(&cmd).await {
                warn!("Write error sending to {}: {e}", red.remote_node);
                continue;
            }
            match conn.read_line().await {
                Ok(l)
                    if matches!(
                        ControlReply::decode(&l),
                        Ok(ControlReply::StreamingResults { .. })
                    ) => {}
                Ok(l) => {
                    warn!(
                        "Remote node {} did not stream results: {}",
                        red.remote_node,
                        l.trim_end()
                    );
                    // Perhaps the unit is gone there: the poller finds out.
                    wakers.poller.notify_one();
                    continue;
                }
                Err(e) => {
                    warn!("Read error reading from {}: {e}", red.remote_node);
                    continue;
                }
            }
            // The other node ends the stream when the unit is complete: ask for its state.
            if let Err(e) = append_stream(unit, &path, &mut conn).await {
                warn!("Could not copy to stdout file {}: {e}", path.display());
            }
            wakers.poller.notify_one();
            // Subscribed again: the stream's own writes are no news.
            changes = unit.subscribe();
        }
    }

    /// Monitors a started unit until it is complete with all its output (or monitoring gives
    /// up): the status poller and the stdout copier, ending together.
    async fn monitor(&self, unit: &Unit) {
        let wakers = Wakers::default();
        tokio::select! {
            _ = self.poll_status(unit, Some(&wakers)) => {}
            () = self.copy_stdout(unit, &wakers) => {}
        }
        if let Some(c) = lock(&wakers.idle).take() {
            self.pool.put(&data(unit), c);
        }
    }

    /// Waits until the other node no longer knows the unit, then deletes it here.
    async fn finish_release(&self, unit: &Unit, confirmed: bool) {
        if !confirmed && !self.poll_status(unit, None).await {
            return;
        }
        self.forget(unit);
    }

    /// Deletes a released unit's directory and forgets it (Go's forced release: a directory
    /// that cannot be removed is only logged).
    fn forget(&self, unit: &Unit) {
        if let Err(e) = std::fs::remove_dir_all(&unit.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            error!("Error releasing unit {}: {e}", unit.dir.display());
        }
        self.forget_unit(unit);
    }

    /// The background part of a start: connect (retrying), submit, monitor.
    async fn start_job(self: Arc<Self>, unit: Arc<Unit>) {
        let started = async {
            loop {
                let Some(conn) = self.connection(&unit, true).await else {
                    return false;
                };
                match self.send_submit(&unit, conn).await {
                    Ok(()) => return true,
                    Err(SubmitError::Cut(e)) => {
                        // Go leaves the unit Pending for good. The other node's unit, if
                        // it made one, fails reading its input: submitting again is safe.
                        info!("[{}] submit cut off ({e}); submitting again", unit.id);
                        tokio::time::sleep(RETRY_FIRST).await;
                    }
                    Err(SubmitError::Unconfirmed(e)) => {
                        info!(
                            "[{}] no answer after the payload ({e}); following it",
                            unit.id
                        );
                        return mark_started(&unit).is_ok();
                    }
                    Err(SubmitError::Final(e)) => {
                        error!("Error running action function: {e}");
                        let detail = format!("Error starting worker: {e}");
                        unit.update_basic(STATE_FAILED, detail, Some(0));
                        return false;
                    }
                }
            }
        };
        let expiry = data(&unit).expiration;
        let started = match expiry {
            None => started.await,
            Some(at) => {
                tokio::select! {
                    s = started => s,
                    () = tokio::time::sleep(until(at)) => {
                        let started = data(&unit).remote_started;
                        if !started {
                            unit.update(|r| {
                                r.state = STATE_FAILED;
                                r.detail = expired_detail(at, 0);
                            }).ok();
                        }
                        started
                    }
                }
            }
        };
        if started {
            self.monitor(&unit).await;
        }
    }

    /// Sends a cancel or release until the other node hears it, then follows up: a cancelled
    /// unit is monitored (it becomes Canceled there), a released one deleted here once the
    /// other node has let go of it.
    async fn cancel_job(self: Arc<Self>, unit: Arc<Unit>, release: bool) {
        loop {
            let Some(mut c) = self.connection(&unit, !release).await else {
                return;
            };
            match self.cancel_remote(&unit, &mut c, release).await {
                Ok(pending) if release => {
                    self.finish_release(&unit, !pending).await;
                    return;
                }
                Ok(_) => {
                    self.monitor(&unit).await;
                    return;
                }
                Err(CancelError::Cut(e)) => {
                    debug!("[{}] {e}; retrying", unit.id);
                    tokio::time::sleep(RETRY_FIRST).await;
                }
                Err(CancelError::Final(e)) => {
                    error!("Error running action function: {e}");
                    return;
                }
            }
        }
    }
}

/// Spawns `job` as the unit's job (the previous one must have been stopped).
fn spawn_job(unit: &Unit, job: impl Future<Output = ()> + Send + 'static) {
    *lock(&unit.job) = Some(tokio::spawn(job));
}

/// Stops the unit's job, if any, and waits until it has stopped.
async fn stop_job(unit: &Unit) {
    let job = lock(&unit.job).take();
    if let Some(job) = job {
        job.abort();
        let _ = job.await;
    }
}

/// Starts monitoring the unit as its job.
fn spawn_monitor(w: &Arc<Workceptor>, unit: &Arc<Unit>) {
    let (w, unit) = (w.clone(), unit.clone());
    spawn_job(&unit.clone(), async move { w.monitor(&unit).await });
}

fn job_running(unit: &Unit) -> bool {
    lock(&unit.job).as_ref().is_some_and(|j| !j.is_finished())
}

/// Whether this is the second handshake in a row that went unanswered although a route
/// existed: a firewall on the way drops the packets. One silence is not enough: a node that
/// has just come back learns a route to us only with our next routing update (up to 10 s,
/// as Go), and drops our handshake until then.
fn unanswered_twice(unit: &Unit, e: &ConnectError) -> bool {
    if matches!(e.failure(), Some(StreamFailure::HandshakeTimeout(_))) {
        unit.unanswered.fetch_add(1, Ordering::Relaxed) >= 1
    } else {
        unit.unanswered.store(0, Ordering::Relaxed);
        false
    }
}

/// Fails a unit not started on the other node yet when connecting failed in a way that
/// retrying will not mend: TLS refused, a firewall on the way rejecting the packets, or
/// handshakes left unanswered although a route exists (a firewall dropping them). A TLS
/// failure names itself in the unit's Detail even when the unit runs already (as Go's
/// does). Returns whether the unit is Failed now.
fn gave_up(unit: &Unit, node: &str, e: &ConnectError) -> bool {
    let detail = if e.is_tls() {
        format!("TLS error connecting to remote service: {e}")
    } else if e.is_lasting() || unanswered_twice(unit, e) {
        format!("Cannot reach remote node {node}: {e}")
    } else {
        return false;
    };
    let mut give_up = false;
    let _ = unit.update(|r| {
        let started = r.remote().is_some_and(|d| d.remote_started);
        if !started {
            give_up = true;
            r.state = STATE_FAILED;
        }
        if !started || e.is_tls() {
            r.detail = detail;
        }
    });
    if give_up {
        warn!("[{}] {}", unit.id, unit.status().detail);
    }
    give_up
}

/// Go's `Start`: one connection attempt while the submitter waits, then the rest in the
/// background. Returns whether the start is pending (`Job Submitted`: not connected yet).
pub(super) async fn start(w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<bool, String> {
    let red = data(unit);
    if red.remote_started {
        return Err("unit was already started".into());
    }
    if job_running(unit) {
        return Err("start or monitor process already running".into());
    }
    // The attempt ends when the unit's ttl does; the background job then fails it.
    let attempt = w.connect_once(&red);
    let first = match red.expiration {
        None => attempt.await,
        Some(at) => tokio::time::timeout(until(at), attempt)
            .await
            .map_err(|_| ConnectError::Other("expired".to_owned()))
            .and_then(|r| r),
    };
    match first {
        Ok(conn) => {
            *lock(&unit.unreachable_since) = None;
            match w.send_submit(unit, conn).await {
                Ok(()) => {}
                Err(SubmitError::Cut(e)) => {
                    debug!("[{}] submit to {} cut off: {e}", unit.id, red.remote_node);
                    spawn_job(unit, w.clone().start_job(unit.clone()));
                    return Ok(true);
                }
                Err(SubmitError::Unconfirmed(e)) => {
                    debug!("[{}] no answer from {}: {e}", unit.id, red.remote_node);
                    mark_started(unit)?;
                }
                Err(SubmitError::Final(e)) => return Err(e),
            }
            spawn_monitor(w, unit);
            Ok(false)
        }
        Err(e) => {
            debug!("[{}] connecting to {}: {e}", unit.id, red.remote_node);
            if gave_up(unit, &red.remote_node, &e) {
                return Ok(true);
            }
            lock(&unit.unreachable_since).get_or_insert_with(Instant::now);
            spawn_job(unit, w.clone().start_job(unit.clone()));
            Ok(true)
        }
    }
}

/// Why a submit to the other node did not complete.
#[derive(Debug, thiserror::Error)]
enum SubmitError {
    /// The connection broke before the other node had the whole payload: its unit, if it
    /// made one, fails reading its input and never runs, so submitting again is safe.
    #[error("{0}")]
    Cut(String),
    /// The connection broke after the whole payload was sent: the other node's unit may be
    /// running, so it is followed rather than submitted again.
    #[error("{0}")]
    Unconfirmed(String),
    /// The other node refused the unit, or a local step failed: retrying will not mend it.
    #[error("{0}")]
    Final(String),
}

/// Why a cancel or release did not reach the other node's unit.
#[derive(Debug, thiserror::Error)]
enum CancelError {
    /// The connection broke: asking again may get through.
    #[error("{0}")]
    Cut(String),
    /// The other node refused, or answered something else: asking again will not mend it.
    #[error("{0}")]
    Final(String),
}

/// Records that the other node has the unit (from here on it is followed, not submitted).
fn mark_started(unit: &Unit) -> Result<(), String> {
    unit.update(|r| {
        if let Some(d) = r.remote_mut() {
            d.remote_started = true;
        }
    })
    .map(|_| ())
}

/// Go's `Restart` for a remote unit found on disk.
pub(super) fn restart(w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<(), String> {
    let st = unit.status();
    let red = st.remote().cloned().unwrap_or_default();
    if !red.remote_started {
        if is_complete(st.state) {
            // Failed before it started (e.g. locally cancelled): nothing to resume.
            return Ok(());
        }
        return Err("remote work had not previously started".into());
    }
    if red.local_released || red.local_cancelled {
        spawn_job(unit, w.clone().cancel_job(unit.clone(), red.local_released));
        return Ok(());
    }
    if !(is_complete(st.state) && unit.stdout_size() >= st.stdout_size) {
        spawn_monitor(w, unit);
    }
    Ok(())
}

/// Go's `Cancel` (`release` false) and `Release` for a remote unit. Returns whether the
/// other node has not heard yet (`cancel pending` / `release pending`).
pub(super) async fn cancel_or_release(
    w: &Arc<Workceptor>,
    unit: &Arc<Unit>,
    release: bool,
    force: bool,
) -> Result<bool, String> {
    let mut started = false;
    unit.update(|r| {
        if let Some(d) = r.remote_mut() {
            d.local_cancelled = true;
            d.local_released |= release;
            started = d.remote_started;
        }
    })?;
    stop_job(unit).await;
    if !started {
        if release {
            w.forget(unit);
        } else {
            unit.update_basic(STATE_FAILED, "Locally Cancelled", Some(0));
        }
        return Ok(false);
    }
    let red = data(unit);
    if release && force {
        let attempt = async {
            let mut conn = w
                .connect_once(&red)
                .await
                .map_err(|e| CancelError::Cut(e.to_string()))?;
            w.cancel_remote(unit, &mut conn, true).await
        };
        if let Err(e) = attempt.await {
            error!("Error with connect and run: {e}");
        }
        w.forget(unit);
        return Ok(false);
    }
    match w.cancel_on_session(unit, &red, release).await {
        Ok(r) => {
            let pending = match r {
                Ok(p) => p,
                Err(e) => {
                    // The unit is still there: keep following it.
                    spawn_monitor(w, unit);
                    return Err(e.to_string());
                }
            };
            if !release {
                spawn_monitor(w, unit);
            } else if pending {
                let (w, unit) = (w.clone(), unit.clone());
                spawn_job(&unit.clone(), async move {
                    w.finish_release(&unit, false).await;
                });
            } else {
                w.forget(unit);
            }
            Ok(false)
        }
        Err(e) => {
            debug!("[{}] connecting to {}: {e}", unit.id, red.remote_node);
            spawn_job(unit, w.clone().cancel_job(unit.clone(), release));
            Ok(true)
        }
    }
}

/// The validated settings of a new remote unit.
pub(super) fn new_data(
    w: &Workceptor,
    node: &str,
    work_type: &str,
    tls_client: &str,
    ttl: &str,
    sign_work: bool,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<RemoteExtraData, String> {
    if !tls_client.is_empty() {
        let tls = &w.mesh()?.tls;
        if !tls.clients.contains_key(tls_client) {
            return Err(format!("unknown TLS config {tls_client}"));
        }
    }
    if tls_client.is_empty()
        && params
            .keys()
            .any(|k| receptor_core::work::remote::is_secret(k))
    {
        return Err("cannot send secrets over a non-TLS connection".into());
    }
    let expiration = if ttl.is_empty() {
        None
    } else {
        let d = crate::config::parse_go_duration(ttl)?;
        if sign_work && d > i64::try_from(w.keys.token_lifetime().as_nanos()).unwrap_or(i64::MAX) {
            warn!("json web token expires before ttl");
        }
        Some(now_nanos() + i128::from(d))
    };
    Ok(RemoteExtraData {
        remote_node: node.to_owned(),
        remote_work_type: work_type.to_owned(),
        remote_params: params.clone(),
        sign_work,
        tls_client: tls_client.to_owned(),
        expiration,
        ..RemoteExtraData::default()
    })
}

/// Creates `path` if needed, for appending.
fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Whether the unit will not change any more: complete, or cancelled here and Canceled
/// there.
fn finished(st: &StatusRecord) -> bool {
    is_complete(st.state)
        || (st.state == STATE_CANCELED && st.remote().is_some_and(|r| r.local_cancelled))
}

/// Whether monitoring is over: the unit is finished and all its output (`local` bytes of
/// it) is here.
fn copied_all(st: &StatusRecord, local: i64) -> bool {
    finished(st) && local >= st.stdout_size
}

/// Appends everything the stream sends until its end to `path`, or until the unit is finished
/// with all its output here (a Canceled unit's stream never ends). A stream that stays silent
/// while the unit's status says more output exists has broken (its node went away without
/// closing it, which QUIC notices only after 30 s) and ends with an error.
async fn append_stream(
    unit: &Unit,
    path: &std::path::Path,
    conn: &mut Client,
) -> std::io::Result<()> {
    let mut file = open_append(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut changes = unit.subscribe();
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            r = conn.read(&mut buf) => {
                let Some(chunk) = buf.get(..r?).filter(|c| !c.is_empty()) else {
                    return Ok(());
                };
                file.write_all(chunk)?;
                heard = Instant::now();
                unit.touch();
                // Our own news: not a reason to look at the status.
                changes.borrow_and_update();
            }
            () = unit.changed(&mut changes) => {
                let st = unit.status();
                let local = unit.stdout_size();
                if copied_all(&st, local) {
                    return Ok(());
                }
                if st.stdout_size > local && heard.elapsed() >= RESULTS_STALL {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "results stream stalled",
                    ));
                }
            }
        }
    }
}

/// A random number for backoff jitter.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now_nanos() as u128);
    h.finish()
}

/// The status a fresh remote unit starts with.
pub(super) fn new_record(red: RemoteExtraData) -> StatusRecord {
    StatusRecord::new("remote", Some(receptor_core::work::ExtraData::Remote(red)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_record() {
        let r = new_record(RemoteExtraData {
            remote_node: "C".into(),
            ..RemoteExtraData::default()
        });
        assert!(r.to_json().starts_with(
            "{\"State\":0,\"Detail\":\"Unit Created\",\"StdoutSize\":0,\"WorkType\":\"remote\",\
             \"ExtraData\":{\"RemoteNode\":\"C\","
        ));
    }
}
