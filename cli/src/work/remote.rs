//! Remote units (control-and-work.md §2.6): a unit of the built-in type `remote` on this node
//! whose work runs on another node. The protocol, its retries and timeouts are the core's
//! [`RemoteUnit`] machine; this module only drives it with tokio: it opens the mesh streams
//! the machine asks for and reports what they read, keeps its timer, and carries out its
//! outputs on the unit directory (status file, appended `stdout`, deletion on release).
//!
//! One task at a time drives a unit (its *job*), owning one machine: a start, a monitor
//! after a restart, or a cancel or release. A new job stops the running one first and starts
//! from the unit's files, where the old one left everything it knew.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rand_chacha::rand_core::RngCore;
use receptor_core::control::WorkSubmit;
use receptor_core::os::stdout::{AppendError, UnitStdout};
use receptor_core::work::remote::RemoteExtraData;
use receptor_core::work::remote_unit::{
    ConnEvent, ConnId, ConnWrite, ConnectFailure, RemoteOutput, RemoteUnit, RemoteUnitConfig,
};
use receptor_core::work::signing::SignatureRefresh;
use receptor_core::work::{ReadSize, SessionPool, StatusRecord, new_remote_data};
use receptor_tokio::MeshStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, error, warn};

use super::client::Mesh;
use super::{Unit, Workceptor, lock};

/// Events from a unit's connections waiting for its job.
const EVENTS: usize = 64;
/// Writes waiting for one connection.
const WRITES: usize = 8;

/// A unit's remote data as last read (with secrets: the status file keeps them).
fn data(unit: &Unit) -> RemoteExtraData {
    unit.status().remote().cloned().unwrap_or_default()
}

/// The wall clock, since the Unix epoch.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The machine's clock: tokio's, so that paused-time tests work.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Idle control sessions to other nodes, shared by the units' jobs (core's parking lot).
pub(super) type Pool = std::sync::Mutex<SessionPool<MeshStream>>;

struct Conn {
    writes: mpsc::Sender<ConnWrite>,
    task: AbortHandle,
}

/// One unit's job: its machine, its connections, and the caller waiting for the answer.
struct Job {
    w: Arc<Workceptor>,
    unit: Arc<Unit>,
    m: RemoteUnit,
    conns: BTreeMap<ConnId, Conn>,
    events_tx: mpsc::Sender<ConnEvent>,
    events: mpsc::Receiver<ConnEvent>,
    answer: Option<oneshot::Sender<Result<bool, String>>>,
    /// When the signature the machine holds was made.
    signed: SignatureRefresh,
    stdout: UnitStdout,
}

impl Job {
    /// A job for `unit` with a machine made from its files, and the receiver of its answer.
    fn new(
        w: &Arc<Workceptor>,
        unit: &Arc<Unit>,
    ) -> Result<(Self, oneshot::Receiver<Result<bool, String>>), String> {
        let st = unit.status();
        let config = RemoteUnitConfig {
            unreachable_timeout: w.unreachable_timeout,
            rng_seed: lock(&w.rng).next_u64(),
            label: unit.id.clone(),
            ..RemoteUnitConfig::default()
        };
        let m = RemoteUnit::from_record(&st, unit.stdout_size(), config, now(), wall_clock());
        let (events_tx, events) = mpsc::channel(EVENTS);
        let (tx, rx) = oneshot::channel();
        // Made before any status is stored: a results stream of a unit complete with no
        // stdout file ends at once, before its output arrives.
        let mut stdout = UnitStdout::new(unit.dir.join("stdout"));
        if let Err(e) = stdout.create() {
            debug!("[{}] {e}", unit.id);
        }
        let job = Self {
            w: w.clone(),
            unit: unit.clone(),
            m,
            conns: BTreeMap::new(),
            events_tx,
            events,
            answer: Some(tx),
            signed: SignatureRefresh::default(),
            stdout,
        };
        Ok((job, rx))
    }

    /// Gives the machine a fresh signature when the unit signs its work and the last one is
    /// getting old.
    fn sign(&mut self) -> Result<(), String> {
        self.w
            .keys
            .refresh_signature(&mut self.m, &mut self.signed, Instant::now(), wall_clock())
            .map_err(|e| e.to_string())
    }

    /// Runs the machine until it has nothing more to do.
    async fn run(mut self) {
        loop {
            self.apply();
            if self.m.is_done() {
                break;
            }
            let wake = self.m.poll_timeout();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(ev) = self.events.recv() => {
                    self.refresh();
                    self.feed(ev);
                }
                () = sleep => {
                    self.refresh();
                    self.m.handle_timeout(now());
                }
            }
        }
    }

    fn refresh(&mut self) {
        if let Err(e) = self.sign() {
            error!("[{}] could not create signature: {e}", self.unit.id);
        }
    }

    fn feed(&mut self, ev: ConnEvent) {
        if ev.ends_conn() {
            self.conns.remove(&ev.conn());
        }
        self.m.handle_event(now(), ev);
    }

    /// Carries out the machine's outputs; its answer goes out once all of them are done (a
    /// release is answered after the directory is gone).
    fn apply(&mut self) {
        let mut answer = None;
        while let Some(o) = self.m.poll_output() {
            match o {
                RemoteOutput::Dial(c) => self.dial(c),
                RemoteOutput::SendLine(c, line) => self.write(c, ConnWrite::Line(line)),
                RemoteOutput::SendPayload(c) => self.write(c, ConnWrite::Payload),
                RemoteOutput::Close(c) => {
                    if let Some(conn) = self.conns.remove(&c) {
                        conn.task.abort();
                    }
                }
                RemoteOutput::Park(c) => {
                    if let Some(conn) = self.conns.remove(&c)
                        && conn.writes.try_send(ConnWrite::Park).is_err()
                    {
                        conn.task.abort();
                    }
                }
                RemoteOutput::AppendOutput { offset, data } => self.append(offset, &data),
                RemoteOutput::SaveRemote(d) => {
                    let _ = self.unit.update(|r| {
                        if let Some(x) = r.remote_mut() {
                            *x = d;
                        }
                    });
                }
                RemoteOutput::SetStatus {
                    state,
                    detail,
                    stdout_size,
                } => {
                    if !self.unit.is_released() {
                        self.unit.update_basic(state, detail, stdout_size);
                    }
                }
                RemoteOutput::SetDetail(detail) => {
                    let _ = self.unit.update(|r| r.detail = detail);
                }
                RemoteOutput::Answer(a) => answer = Some(a),
                RemoteOutput::Forget => self.w.forget(&self.unit),
                other => debug!("[{}] ignored {other:?}", self.unit.id),
            }
        }
        if let Some(a) = answer
            && let Some(tx) = self.answer.take()
        {
            let _ = tx.send(a);
        }
    }

    fn dial(&mut self, c: ConnId) {
        let red = self.m.data();
        let (writes, rx) = mpsc::channel(WRITES);
        let task = tokio::spawn(connection(
            c,
            self.w.clone(),
            red.remote_node.clone(),
            red.tls_client.clone(),
            self.unit.stdin_path(),
            rx,
            self.events_tx.clone(),
        ))
        .abort_handle();
        self.conns.insert(c, Conn { writes, task });
    }

    fn write(&mut self, c: ConnId, w: ConnWrite) {
        let sent = self
            .conns
            .get(&c)
            .is_some_and(|conn| conn.writes.try_send(w).is_ok());
        if !sent {
            // Gone or hopelessly behind: the machine hears the stream ended.
            if let Some(conn) = self.conns.remove(&c) {
                conn.task.abort();
            }
            self.m.handle_stream_ended(now(), c);
        }
    }

    fn append(&mut self, offset: i64, data: &[u8]) {
        match self.stdout.append(offset, data) {
            Ok(None) => {}
            Ok(Some(len)) => warn!(
                "[{}] stdout holds {len} bytes, output arrived for byte {offset}",
                self.unit.id
            ),
            // Nothing was written: no change to tell the unit's waiters about.
            Err(e @ AppendError::Open { .. }) => return error!("[{}] {e}", self.unit.id),
            Err(e) => error!("[{}] {e}", self.unit.id),
        }
        self.unit.touch();
    }
}

impl Drop for Job {
    /// A job that ends, or is stopped, closes the connections it has (parked ones live on).
    fn drop(&mut self) {
        for conn in self.conns.values() {
            conn.task.abort();
        }
    }
}

/// One connection: a parked session or a new dial, then reads into events and writes what
/// the job asks, until either side ends or the job parks it (the job aborts it to close it).
async fn connection(
    c: ConnId,
    w: Arc<Workceptor>,
    node: String,
    tls: String,
    stdin: PathBuf,
    mut writes: mpsc::Receiver<ConnWrite>,
    events: mpsc::Sender<ConnEvent>,
) {
    let parked = lock(&w.pool).take(&node, &tls, Instant::now());
    let (stream, up) = match parked {
        Some(s) => (s, ConnEvent::Reused(c)),
        None => {
            let opened = match &w.mesh {
                Some(m) => m.open(&node, &tls).await,
                None => Err(ConnectFailure::Other(
                    "remote work needs a running node".into(),
                )),
            };
            match opened {
                Ok(s) => (s, ConnEvent::Connected(c)),
                Err(e) => {
                    let _ = events.send(ConnEvent::ConnectFailed(c, e)).await;
                    return;
                }
            }
        }
    };
    if events.send(up).await.is_err() {
        return;
    }
    // The payload counts as delivered only once the other node acknowledged all of it: a
    // cut after the half-close but before that must be a cut (submit again), not a start.
    let mut acked = Some(stream.acked());
    let (mut rd, mut wr) = tokio::io::split(stream);
    let reader = async {
        // Each connection keeps a buffer of the read size, which grows as core's rule says.
        let mut size = ReadSize::remote();
        let mut buf = BytesMut::new();
        loop {
            buf.reserve(size.get());
            match rd.read_buf(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    size.read(n);
                    if events
                        .send(ConnEvent::Bytes(c, buf.split().freeze()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    debug!("read error reading from {node}: {e}");
                    return;
                }
            }
        }
    };
    let writer = async {
        while let Some(w) = writes.recv().await {
            let payload = matches!(w, ConnWrite::Payload);
            let r = match w {
                ConnWrite::Park => return true,
                ConnWrite::Line(line) => match wr.write_all(line.as_bytes()).await {
                    Ok(()) => wr.flush().await,
                    Err(e) => Err(e),
                },
                ConnWrite::Payload => match (send_payload(&stdin, &mut wr).await, acked.take()) {
                    (Ok(()), Some(acked)) => acked.await,
                    (r, _) => r,
                },
            };
            if let Err(e) = r {
                debug!("write error sending to {node}: {e}");
                return false;
            }
            if payload && events.send(ConnEvent::HalfClosed(c)).await.is_err() {
                return false;
            }
        }
        std::future::pending::<bool>().await
    };
    let park = tokio::select! {
        () = reader => false,
        park = writer => park,
    };
    if park {
        // A session the pool has no room for closes here.
        drop(lock(&w.pool).put(&node, &tls, rd.unsplit(wr), Instant::now()));
        return;
    }
    let _ = events.send(ConnEvent::Ended(c)).await;
}

/// Writes the unit's stdin file to the stream, then half-closes it.
async fn send_payload(
    stdin: &std::path::Path,
    wr: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(stdin).await.map_err(|e| {
        error!("error opening stdin file {}: {e}", stdin.display());
        e
    })?;
    tokio::io::copy(&mut file, wr).await?;
    wr.shutdown().await
}

/// Spawns `job` as the unit's job (the previous one must have been stopped).
fn spawn_job(unit: &Unit, job: Job) {
    *lock(&unit.job) = Some(tokio::spawn(job.run()));
}

/// Stops the unit's job, if any, and waits until it has stopped.
async fn stop_job(unit: &Unit) {
    let job = lock(&unit.job).take();
    if let Some(job) = job {
        job.abort();
        let _ = job.await;
    }
}

fn job_running(unit: &Unit) -> bool {
    lock(&unit.job).as_ref().is_some_and(|j| !j.is_finished())
}

/// Waits for a job's answer; a job that ended without one has not reached the other node.
async fn answer(rx: oneshot::Receiver<Result<bool, String>>) -> Result<bool, String> {
    rx.await.unwrap_or(Ok(true))
}

impl Workceptor {
    fn mesh(&self) -> Result<&Mesh, String> {
        self.mesh
            .as_ref()
            .ok_or_else(|| "remote work needs a running node".to_owned())
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
}

/// Go's `Start`: submits the unit, answering once the other node started it, or once the
/// first attempt failed (pending: the job goes on in the background).
pub(super) async fn start(w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<bool, String> {
    if data(unit).remote_started {
        return Err("unit was already started".into());
    }
    if job_running(unit) {
        return Err("start or monitor process already running".into());
    }
    let (mut job, rx) = Job::new(w, unit)?;
    job.sign()?;
    job.m.start(now());
    spawn_job(unit, job);
    answer(rx).await
}

/// Go's `Restart` for a remote unit found on disk.
pub(super) fn restart(w: &Arc<Workceptor>, unit: &Arc<Unit>) -> Result<(), String> {
    let (mut job, _) = Job::new(w, unit)?;
    job.m.resume(now())?;
    if !job.m.is_done() {
        job.refresh();
        spawn_job(unit, job);
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
    stop_job(unit).await;
    let (mut job, rx) = Job::new(w, unit)?;
    job.m.cancel(now(), release, force);
    if !job.m.is_done() {
        job.refresh();
    }
    spawn_job(unit, job);
    answer(rx).await
}

/// The validated settings of a new remote unit: the core's [`new_remote_data`] rule, with
/// this node's TLS clients, token lifetime, clock and duration parser.
pub(super) fn new_data(w: &Workceptor, req: &WorkSubmit) -> Result<RemoteExtraData, String> {
    let tls_known =
        req.tls_client.is_empty() || w.mesh()?.tls.clients.contains_key(&req.tls_client);
    let new = new_remote_data(
        req,
        tls_known,
        w.keys.token_lifetime(),
        wall_clock().as_nanos() as i128,
        crate::config::parse_go_duration,
    )
    .map_err(|e| e.to_string())?;
    if new.ttl_outlives_token {
        warn!("json web token expires before ttl");
    }
    Ok(new.data)
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
