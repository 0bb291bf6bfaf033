//! Remote units on smol (control-and-work.md §2.6): a unit of the built-in type `remote` here
//! whose work runs on another node. The protocol, its retries and timeouts are core's
//! [`RemoteUnit`] machine; this module only drives it: it opens the mesh streams the machine
//! asks for (to the other node's `control` service) and reports what they read, keeps its
//! timer, and carries out its outputs on the unit directory (status file, appended `stdout`,
//! deletion on release), as the `receptor` binary does under tokio.
//!
//! One job at a time drives a unit, owning one machine: a start, a follow after a restart, or
//! a cancel or release. A new job stops the running one first and starts from the unit's
//! record, where the old one left everything it knew.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use async_executor::Task;
use async_io::Timer;
use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use rand_core::RngCore;
use receptor_core::os::stdout::UnitStdout;
use receptor_core::os::work_keys::WorkKeys;
use receptor_core::tls::insecure::insecure_stream_client;
use receptor_core::tls::stream_server_name;
use receptor_core::work::remote::RemoteExtraData;
use receptor_core::work::remote_unit::{
    ConnEvent, ConnId, ConnWrite, ConnectFailure, RemoteOutput, RemoteUnit, RemoteUnitConfig,
};
use receptor_core::work::signing::SignatureRefresh;
use receptor_core::work::{CancelOutcome, Engine, ReadSize, SessionPool};
use tracing::{debug, error, warn};

use super::unit::{Unit, lock};
use super::{Work, wall_clock};
use crate::control::ConnectTls;
use crate::{MeshStream, NodeHandle};

/// Read size of a payload file.
const CHUNK: usize = 64 * 1024;
/// Events from a unit's connections waiting for its job.
const EVENTS: usize = 64;
/// Writes waiting for one connection.
const WRITES: usize = 8;

/// How this node reaches the nodes remote units run on.
#[derive(Clone)]
pub(super) struct Mesh {
    pub(super) node: NodeHandle,
    /// TLS for the streams by `tlsclient` name (`None`: plain streams in the insecure mode,
    /// and no named config).
    pub(super) tls: Option<ConnectTls>,
    /// Idle control sessions parked by one unit's machine for another's.
    pub(super) pool: Arc<Pool>,
}

/// Idle control sessions to other nodes, shared by the units' jobs (core's parking lot).
pub(super) type Pool = Mutex<SessionPool<MeshStream>>;

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// Whether TLS config `name` can be used.
    pub(super) fn knows_tls(&self, name: &str, node: &str) -> Result<(), String> {
        match &self.tls {
            Some(pick) => pick(Some(name), node).map(drop),
            None => Err(format!("unknown TLS config {name}")),
        }
    }

    /// Dials `control` on `node` (with TLS config `tls_client` when not empty). A node
    /// without a route is refused at once instead of waiting for the QUIC handshake to time
    /// out. The greeting is left to the machine.
    async fn open(&self, node: &str, tls_client: &str) -> Result<MeshStream, ConnectFailure> {
        let name = (!tls_client.is_empty()).then_some(tls_client);
        let (cfg, sni) = match (&self.tls, name) {
            (Some(pick), _) => pick(name, node).map_err(ConnectFailure::Other)?,
            (None, Some(n)) => {
                return Err(ConnectFailure::Other(format!("unknown TLS config {n}")));
            }
            (None, None) => {
                let quic =
                    insecure_stream_client().map_err(|e| ConnectFailure::Other(e.to_string()))?;
                (quic, stream_server_name(self.node.id().as_str()))
            }
        };
        if node != self.node.id().as_str() {
            let st = self
                .node
                .status()
                .await
                .map_err(|e| ConnectFailure::Other(e.to_string()))?;
            if !st.routes.keys().any(|dest| dest.as_str() == node) {
                return Err(ConnectFailure::NoRoute);
            }
        }
        Ok(self.node.dial(node, "control", cfg, &sni).await?)
    }
}

/// One connection: its writes, and its task (dropping it closes the stream).
struct Conn {
    writes: Sender<ConnWrite>,
    task: Task<()>,
}

/// One unit's job: its machine, its connections, and the caller waiting for the answer.
struct Job {
    id: String,
    unit: Arc<Unit>,
    engine: Arc<Mutex<Engine<Arc<Unit>>>>,
    mesh: Mesh,
    m: RemoteUnit,
    conns: BTreeMap<ConnId, Conn>,
    events_tx: Sender<ConnEvent>,
    events: Receiver<ConnEvent>,
    answer: Option<Sender<Result<bool, String>>>,
    stdout: UnitStdout,
    /// The unit's job generation this job runs as (see [`Unit::job_gen`]).
    generation: u64,
    /// The node's signing key, for units with `signwork`.
    keys: WorkKeys,
    /// When the signature the machine holds was made.
    signed: SignatureRefresh,
}

impl Job {
    /// A job for `unit` with a machine made from its record, and the receiver of its answer.
    fn new(
        w: &Work,
        id: &str,
        unit: &Arc<Unit>,
    ) -> Result<(Self, Receiver<Result<bool, String>>), String> {
        let mesh = w
            .mesh
            .clone()
            .ok_or_else(|| "remote work needs a running node".to_owned())?;
        let rec = lock(&unit.rec).clone();
        let config = RemoteUnitConfig {
            unreachable_timeout: w.unreachable_timeout,
            rng_seed: lock(&w.rng).next_u64(),
            label: id.to_owned(),
            ..RemoteUnitConfig::default()
        };
        // A `ttl`: not started there by then, the unit fails with Go's detail.
        let m = RemoteUnit::from_record(
            &rec,
            unit.stdout_size(),
            config,
            Instant::now(),
            wall_clock(),
        );
        let (events_tx, events) = async_channel::bounded(EVENTS);
        let (tx, rx) = async_channel::bounded(1);
        // Made before any status is stored: a results stream of a unit complete with no
        // stdout file ends at once, before its output arrives.
        let mut stdout = UnitStdout::new(unit.stdout_path());
        if let Err(e) = stdout.create() {
            debug!("[{id}] {e}");
        }
        // A results stream waiting for the file opens it.
        unit.notify();
        let job = Self {
            id: id.to_owned(),
            unit: unit.clone(),
            engine: w.engine.clone(),
            mesh,
            m,
            conns: BTreeMap::new(),
            events_tx,
            events,
            answer: Some(tx),
            stdout,
            generation: 0,
            keys: w.keys.clone(),
            signed: SignatureRefresh::default(),
        };
        Ok((job, rx))
    }

    /// Gives the machine a fresh signature when the unit signs its work and the last one is
    /// getting old (core's [`SignatureRefresh`]).
    fn sign(&mut self) -> Result<(), String> {
        self.keys
            .refresh_signature(&mut self.m, &mut self.signed, Instant::now(), wall_clock())
            .map_err(|e| e.to_string())
    }

    /// [`Job::sign`] where a failure only means the commands go with the last signature.
    fn refresh(&mut self) {
        if let Err(e) = self.sign() {
            error!("[{}] could not create signature: {e}", self.id);
        }
    }

    /// Runs the machine until it has nothing more to do.
    async fn run(mut self) {
        enum Wake {
            Event(ConnEvent),
            Timeout,
        }
        loop {
            if !self.apply() || self.m.is_done() {
                break;
            }
            let at = self.m.poll_timeout();
            let events = &self.events;
            let wake = future::or(
                async {
                    match events.recv().await {
                        Ok(ev) => Wake::Event(ev),
                        Err(_) => future::pending().await,
                    }
                },
                async {
                    match at {
                        Some(t) => {
                            Timer::at(t).await;
                        }
                        None => future::pending::<()>().await,
                    }
                    Wake::Timeout
                },
            )
            .await;
            self.refresh();
            match wake {
                Wake::Event(ev) => self.feed(ev),
                Wake::Timeout => self.m.handle_timeout(Instant::now()),
            }
        }
    }

    fn feed(&mut self, ev: ConnEvent) {
        if ev.ends_conn() {
            self.conns.remove(&ev.conn());
        }
        self.m.handle_event(Instant::now(), ev);
    }

    /// Carries out the machine's outputs; its answer goes out once all of them are done (a
    /// release is answered after the directory is gone). `false`: this job was stopped and
    /// did nothing.
    fn apply(&mut self) -> bool {
        let unit = self.unit.clone();
        let current = lock(&unit.job_gen);
        if *current != self.generation {
            return false;
        }
        let mut answer = None;
        while let Some(o) = self.m.poll_output() {
            match o {
                RemoteOutput::Dial(c) => self.dial(c),
                RemoteOutput::SendLine(c, line) => self.write(c, ConnWrite::Line(line)),
                RemoteOutput::SendPayload(c) => self.write(c, ConnWrite::Payload),
                RemoteOutput::Close(c) => {
                    self.conns.remove(&c);
                }
                RemoteOutput::Park(c) => {
                    // Its task lives on to hand the session to the pool (or, if it cannot be
                    // told, is dropped: the session closes).
                    if let Some(conn) = self.conns.remove(&c)
                        && conn.writes.try_send(ConnWrite::Park).is_ok()
                    {
                        conn.task.detach();
                    }
                }
                RemoteOutput::AppendOutput { offset, data } => self.append(offset, &data),
                RemoteOutput::SaveRemote(d) => self.unit.update(|r| {
                    if let Some(x) = r.remote_mut() {
                        *x = d;
                    }
                }),
                RemoteOutput::SetStatus {
                    state,
                    detail,
                    stdout_size,
                } => {
                    self.unit.set(state, detail, stdout_size);
                    lock(&self.engine).handle_status(&self.id, state);
                }
                RemoteOutput::SetDetail(detail) => self.unit.update(|r| r.detail = detail),
                RemoteOutput::Answer(a) => answer = Some(a),
                RemoteOutput::Forget => self.forget(),
                other => debug!("[{}] ignored {other:?}", self.id),
            }
        }
        drop(current);
        if let Some(a) = answer
            && let Some(tx) = self.answer.take()
        {
            let _ = tx.try_send(a);
        }
        true
    }

    fn dial(&mut self, c: ConnId) {
        let red = self.m.data();
        let (writes, rx) = async_channel::bounded(WRITES);
        let task = self.mesh.node.spawn(connection(
            c,
            self.mesh.clone(),
            red.remote_node.clone(),
            red.tls_client.clone(),
            self.unit.stdin_path(),
            rx,
            self.events_tx.clone(),
        ));
        self.conns.insert(c, Conn { writes, task });
    }

    fn write(&mut self, c: ConnId, w: ConnWrite) {
        let sent = self
            .conns
            .get(&c)
            .is_some_and(|conn| conn.writes.try_send(w).is_ok());
        if !sent {
            // Gone or hopelessly behind: the machine hears the stream ended.
            self.conns.remove(&c);
            self.m.handle_stream_ended(Instant::now(), c);
        }
    }

    fn append(&mut self, offset: i64, data: &[u8]) {
        let appended = self.stdout.append(offset, data);
        // Its results streams read on.
        self.unit.notify_output();
        match appended {
            Ok(None) => {}
            Ok(Some(len)) => warn!(
                "[{}] stdout holds {len} bytes, output arrived for byte {offset}",
                self.id
            ),
            Err(e) => error!("[{}] {e}", self.id),
        }
    }

    /// The unit is released there: its directory goes (a failure is only logged, as Go's
    /// forced release does) and the engine forgets it.
    fn forget(&mut self) {
        self.stdout.close();
        if let Err(e) = self.unit.remove_dir() {
            error!("Error releasing unit {}: {e}", self.unit.dir.display());
        }
        lock(&self.engine).forget(&self.id);
        self.unit.notify();
    }
}

/// One connection: a parked session or a new dial, then reads into events and writes what
/// the job asks, until either side ends (the job drops its task to close it) or the job
/// parks it.
async fn connection(
    c: ConnId,
    mesh: Mesh,
    node: String,
    tls: String,
    stdin: PathBuf,
    writes: Receiver<ConnWrite>,
    events: Sender<ConnEvent>,
) {
    enum Next {
        Read(std::io::Result<usize>),
        Write(Option<ConnWrite>),
    }
    let parked = lock(&mesh.pool).take(&node, &tls, Instant::now());
    let (mut stream, up) = match parked {
        Some(s) => (s, ConnEvent::Reused(c)),
        None => match mesh.open(&node, &tls).await {
            Ok(s) => (s, ConnEvent::Connected(c)),
            Err(e) => {
                let _ = events.send(ConnEvent::ConnectFailed(c, e)).await;
                return;
            }
        },
    };
    if events.send(up).await.is_err() {
        return;
    }
    // The payload counts as delivered only once the other node acknowledged all of it: a
    // cut after the half-close but before that must be a cut, not a start.
    let mut acked = Some(stream.acked());
    // The buffer is of the read size, which grows as core's rule says.
    let mut size = ReadSize::remote();
    let mut buf = vec![0u8; size.get()];
    loop {
        // Reading is given up for a write and taken up again after it (a mesh stream's read
        // takes nothing until it completes).
        let next = future::or(async { Next::Read(stream.read(&mut buf).await) }, async {
            Next::Write(writes.recv().await.ok())
        })
        .await;
        let written = match next {
            Next::Read(Ok(0)) => break,
            Next::Read(Ok(n)) => {
                let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                size.read(n);
                buf.resize(size.get(), 0);
                if events.send(ConnEvent::Bytes(c, data)).await.is_err() {
                    return;
                }
                continue;
            }
            Next::Read(Err(e)) => {
                debug!("read error reading from {node}: {e}");
                break;
            }
            Next::Write(None) => return,
            Next::Write(Some(ConnWrite::Park)) => {
                // A session the pool has no room for closes here.
                drop(lock(&mesh.pool).put(&node, &tls, stream, Instant::now()));
                return;
            }
            Next::Write(Some(ConnWrite::Line(line))) => {
                match stream.write_all(line.as_bytes()).await {
                    Ok(()) => stream.flush().await.map(|()| false),
                    Err(e) => Err(e),
                }
            }
            Next::Write(Some(ConnWrite::Payload)) => {
                match (send_payload(&stdin, &mut stream).await, acked.take()) {
                    (Ok(()), Some(acked)) => acked.await.map(|()| true),
                    (r, _) => r.map(|()| true),
                }
            }
        };
        match written {
            Ok(payload) => {
                if payload && events.send(ConnEvent::HalfClosed(c)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                debug!("write error sending to {node}: {e}");
                break;
            }
        }
    }
    let _ = events.send(ConnEvent::Ended(c)).await;
}

/// Writes the unit's stdin file to the stream, then half-closes it.
async fn send_payload(
    stdin: &std::path::Path,
    wr: &mut (impl futures_lite::io::AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut file = std::fs::File::open(stdin).inspect_err(|e| {
        error!("error opening stdin file {}: {e}", stdin.display());
    })?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        wr.write_all(chunk).await?;
    }
    wr.close().await
}

/// Runs `job` as the unit's job (the previous one must have been stopped).
fn spawn_job(unit: &Unit, mut job: Job) {
    job.generation = *lock(&unit.job_gen);
    let node = job.mesh.node.clone();
    let task = node.spawn(job.run());
    *lock(&unit.job) = Some(task);
}

/// Stops the unit's job, if any, and waits until it has stopped.
async fn stop_job(unit: &Unit) {
    *lock(&unit.job_gen) += 1;
    let job = lock(&unit.job).take();
    if let Some(job) = job {
        job.cancel().await;
    }
}

fn job_running(unit: &Unit) -> bool {
    lock(&unit.job).as_ref().is_some_and(|j| !j.is_finished())
}

/// Waits for a job's answer; a job that ended without one has not reached the other node.
async fn answer(rx: Receiver<Result<bool, String>>) -> Result<bool, String> {
    rx.recv().await.unwrap_or(Ok(true))
}

/// The remote data of a unit as last written.
fn data(unit: &Unit) -> RemoteExtraData {
    lock(&unit.rec).remote().cloned().unwrap_or_default()
}

/// Go's `Start`: submits the unit, answering once the other node started it, or once the
/// first attempt failed (pending: the job goes on in the background).
pub(super) async fn start(w: &Work, id: &str, unit: &Arc<Unit>) -> Result<bool, String> {
    if data(unit).remote_started {
        return Err("unit was already started".into());
    }
    if job_running(unit) {
        return Err("start or monitor process already running".into());
    }
    let (mut job, rx) = Job::new(w, id, unit)?;
    job.sign()?;
    job.m.start(Instant::now());
    spawn_job(unit, job);
    answer(rx).await
}

/// Go's `Restart` for a remote unit found on disk.
pub(super) fn restart(w: &Work, id: &str, unit: &Arc<Unit>) -> Result<(), String> {
    let (mut job, _) = Job::new(w, id, unit)?;
    job.m.resume(Instant::now())?;
    if !job.m.is_done() {
        job.refresh();
        spawn_job(unit, job);
    }
    Ok(())
}

/// Go's `Cancel` (`release` `None`) and `Release` (`Some(force)`) for a remote unit.
pub(super) async fn cancel(
    w: &Work,
    id: &str,
    unit: &Arc<Unit>,
    release: Option<bool>,
) -> CancelOutcome {
    stop_job(unit).await;
    let (mut job, rx) = match Job::new(w, id, unit) {
        Ok(j) => j,
        Err(e) => return CancelOutcome::Failed(e),
    };
    job.m
        .cancel(Instant::now(), release.is_some(), release.unwrap_or(false));
    if !job.m.is_done() {
        job.refresh();
    }
    spawn_job(unit, job);
    match answer(rx).await {
        Ok(pending) => CancelOutcome::Handled { pending },
        Err(e) => CancelOutcome::Failed(e),
    }
}
