//! Control service listeners (unix socket, TCP with optional TLS) that run the sans-IO
//! [`Session`] of `receptor_core::control` against the node (control-and-work.md §1).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use receptor_core::PingResult;
use receptor_core::control::{
    Action, ConnectionStatus, HostInfo, Phase, ReloadError, Reply, Session, StatusSnapshot,
    WorkRequest,
};
use receptor_tokio::{NodeHandle, TraceEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::run::TlsConfigs;
use crate::streamtls::{client_for, server_for};
use crate::work::{ResultsStream, Unit, Workceptor};

/// `reload`, as the CLI implements it (re-reading the config file, restarting backends).
pub type ReloadFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), ReloadError>> + Send>> + Send + Sync>;

/// What every control session needs.
#[derive(Clone)]
pub struct ControlContext {
    /// The node.
    pub node: NodeHandle,
    /// Re-reads the configuration.
    pub reload: ReloadFn,
    /// The build version reported by `status`.
    pub version: String,
    /// TLS configs by name, for `connect` and the mesh listener.
    pub tls: Arc<TlsConfigs>,
    /// Units of work (`work` commands) and the work types to advertise.
    pub work: Arc<Workceptor>,
}

/// A client connection of a control session.
pub trait ControlConn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Connections on the Unix socket listener are trusted: `work` commands on them need no
    /// signature (§2.7).
    fn is_unix(&self) -> bool {
        false
    }

    /// Whether the client has certainly gone away entirely (not merely half-closed its side).
    /// Lets a `work results` stream that has nothing to write end when its client leaves.
    fn peer_gone(&self) -> bool {
        false
    }
}

impl ControlConn for tokio::net::UnixStream {
    fn is_unix(&self) -> bool {
        true
    }

    /// The kernel reports hang-up on a Unix stream socket once the peer has closed it
    /// completely; a mere `shutdown(SHUT_WR)` (what receptorctl does) is only read-closed.
    fn peer_gone(&self) -> bool {
        use std::task::{Context, Poll, Waker};
        let mut cx = Context::from_waker(Waker::noop());
        let ready = std::pin::pin!(self.ready(tokio::io::Interest::WRITABLE));
        match std::future::Future::poll(ready, &mut cx) {
            Poll::Ready(Ok(r)) => r.is_write_closed(),
            Poll::Ready(Err(_)) => true,
            Poll::Pending => false,
        }
    }
}

impl ControlConn for tokio::net::TcpStream {}

impl ControlConn for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {}

impl ControlConn for receptor_tokio::MeshStream {}

/// How long `connect` holds the remote side's first bytes after `Connecting` (see run_bridge).
const BRIDGE_HOLD: Duration = Duration::from_millis(100);

/// Go's TLS handshake deadline for the TCP control listener.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Listens on a unix socket: takes `<path>.lock` (an exclusive lock held for the process's
/// life), replaces any stale socket file and sets its permissions.
pub fn serve_unix(
    path: &Path,
    permissions: u32,
    ctx: ControlContext,
) -> Result<JoinHandle<()>, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(PathBuf::from(&lock_path))
        .map_err(|e| format!("could not open lock file {}: {e}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        "could not acquire lock on socket file: fslock is already locked".to_owned()
    })?;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("error listening on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(permissions))
        .map_err(|e| format!("error setting permissions on {}: {e}", path.display()))?;
    Ok(tokio::spawn(async move {
        let _lock = lock;
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(run_session(sock, ctx.clone()));
                }
                Err(e) => {
                    warn!("control socket accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }))
}

/// Listens on TCP (`host:port`, or a bare port on all addresses), optionally with TLS.
pub async fn serve_tcp(
    listen: &str,
    tls: Option<Arc<receptor_tokio::rustls::ServerConfig>>,
    ctx: ControlContext,
) -> Result<(std::net::SocketAddr, JoinHandle<()>), String> {
    let addr = if listen.contains(':') {
        listen.to_owned()
    } else {
        format!("0.0.0.0:{listen}")
    };
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("error listening on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = tls.map(TlsAcceptor::from);
    Ok((
        local,
        tokio::spawn(async move {
            loop {
                let Ok((sock, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let ctx = ctx.clone();
                match &acceptor {
                    None => {
                        tokio::spawn(run_session(sock, ctx));
                    }
                    Some(acc) => {
                        let acc = acc.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(TLS_HANDSHAKE, acc.accept(sock)).await {
                                Ok(Ok(tls)) => run_session(tls, ctx).await,
                                Ok(Err(e)) => debug!("control TLS handshake with {peer}: {e}"),
                                Err(_) => debug!("control TLS handshake with {peer} timed out"),
                            }
                        });
                    }
                }
            }
        }),
    ))
}

/// Serves the control protocol as a mesh stream service (advertised as "Control Service").
pub async fn serve_mesh(
    service: &str,
    tls_name: Option<&str>,
    ctx: ControlContext,
) -> Result<JoinHandle<()>, String> {
    let (server, conn_type) = server_for(&ctx.tls, tls_name)?;
    let work_commands = ctx.work.work_commands();
    let advertise = receptor_core::Advertise {
        conn_type,
        tags: [("type".to_owned(), "Control Service".to_owned())].into(),
        work_commands: (!work_commands.is_empty()).then_some(work_commands),
    };
    let mut listener = ctx
        .node
        .listen_stream(service, server, Some(advertise))
        .await
        .map_err(|e| format!("service {service}: {e}"))?;
    info!("Running control service {service}");
    Ok(tokio::spawn(async move {
        while let Some(stream) = listener.accept().await {
            tokio::spawn(run_session(stream, ctx.clone()));
        }
    }))
}

/// Runs one control session to its end.
async fn run_session<S: ControlConn>(mut sock: S, ctx: ControlContext) {
    let _counted = crate::metrics::CONTROL_SESSIONS.start();
    let mut s = Session::new(ctx.node.id().as_str());
    let mut input = BytesMut::with_capacity(4096);
    let mut eof = false;
    let mut bridge = None;
    let mut payload: Option<Arc<Unit>> = None;
    let mut results: Option<ResultsStream> = None;
    loop {
        while let Some(out) = s.poll_output() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
        }
        if let Some(action) = s.poll_action() {
            let reply = match action {
                Action::Connect { node, service, tls } => {
                    match connect(&ctx, &node, &service, tls.as_deref()).await {
                        Ok(stream) => {
                            bridge = Some(stream);
                            Reply::Connected
                        }
                        Err(e) => Reply::Error(e),
                    }
                }
                Action::Work(WorkRequest::Submit(req)) => {
                    match ctx.work.submit(&req, sock.is_unix()) {
                        Ok(unit) => {
                            let unit_id = unit.id().to_owned();
                            debug!(
                                "[{unit_id}] submitted on the control service: work type {}{}",
                                req.work_type,
                                if req.node.is_empty() {
                                    String::new()
                                } else {
                                    format!(", to run on {}", req.node)
                                }
                            );
                            payload = Some(unit);
                            Reply::WorkUnitCreated { unit_id }
                        }
                        Err(e) => Reply::Error(e),
                    }
                }
                Action::Work(WorkRequest::Results {
                    unit_id,
                    start_pos,
                    signature,
                }) => match ctx
                    .work
                    .results(&unit_id, start_pos, &signature, sock.is_unix())
                {
                    Ok(stream) => {
                        debug!("[{unit_id}] results streamed from byte {start_pos}");
                        results = Some(stream);
                        Reply::WorkResults { unit_id }
                    }
                    Err(e) => Reply::Error(e),
                },
                Action::Work(req) => work_reply(&ctx.work, req, sock.is_unix()).await,
                other => perform(&ctx, other).await,
            };
            if s.complete(reply).is_err() {
                return;
            }
            continue;
        }
        match s.phase() {
            Phase::Reading => {
                if !input.is_empty() {
                    let used = s.handle_bytes(&input);
                    input.advance(used);
                    if used > 0 {
                        continue;
                    }
                }
                if eof {
                    break;
                }
                match sock.read_buf(&mut input).await {
                    Ok(0) => {
                        eof = true;
                        s.handle_eof();
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
            Phase::Payload => {
                let Some(unit) = payload.take() else { return };
                let reply = receive_payload(&mut sock, &mut input, eof, &unit, &ctx.work).await;
                eof = true;
                if s.complete(reply).is_err() {
                    return;
                }
            }
            Phase::Switched => {
                if let Some(stream) = bridge.take() {
                    run_bridge(sock, stream, input, eof).await;
                    return;
                }
                if let Some(stream) = results.take() {
                    stream.run(&mut sock, |c| c.peer_gone()).await;
                }
                break;
            }
            Phase::Finished | Phase::Awaiting => break,
        }
    }
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}

/// `work submit` payload: every byte the client sends until EOF (starting with what was read
/// past the command line) goes to the unit's `stdin`; then the worker starts.
async fn receive_payload<S: ControlConn>(
    sock: &mut S,
    input: &mut BytesMut,
    eof: bool,
    unit: &Arc<Unit>,
    work: &Arc<Workceptor>,
) -> Reply {
    let path = unit.stdin_path();
    let copied = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .map_err(|e| e.to_string())?;
        file.write_all(input).await.map_err(|e| e.to_string())?;
        input.clear();
        if !eof {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = sock.read(&mut buf).await.map_err(|e| e.to_string())?;
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                    break;
                };
                file.write_all(chunk).await.map_err(|e| e.to_string())?;
            }
        }
        file.flush().await.map_err(|e| e.to_string())
    };
    if let Err(e) = copied.await {
        work.payload_failed(unit, &e);
        return Reply::Error(e);
    }
    match work.start(unit).await {
        Ok(pending) => Reply::WorkStarted {
            unit_id: unit.id().to_owned(),
            pending,
        },
        Err(e) => Reply::Error(e),
    }
}

/// The `work` subcommands that answer with one reply.
async fn work_reply(work: &Arc<Workceptor>, req: WorkRequest, is_unix: bool) -> Reply {
    let r = match req {
        WorkRequest::List { unit_id } => work.list(unit_id.as_deref()).map(Reply::WorkList),
        WorkRequest::Status {
            unit_id,
            wait: None,
            ..
        } => work.status(&unit_id).map(Reply::WorkStatus),
        WorkRequest::Status {
            unit_id,
            wait: Some(w),
            ..
        } => work
            .status_wait(
                &unit_id,
                w.state,
                &w.detail,
                Duration::from_millis(w.millis),
            )
            .await
            .map(Reply::WorkStatus),
        WorkRequest::Cancel { unit_id, signature } => work
            .cancel(&unit_id, &signature, is_unix)
            .await
            .map(|pending| Reply::WorkCancelled { unit_id, pending }),
        WorkRequest::Release {
            unit_id,
            signature,
            force,
        } => work
            .release(&unit_id, &signature, force, is_unix)
            .await
            .map(|pending| Reply::WorkReleased { unit_id, pending }),
        // Submit and results switch the session; run_session handles them.
        WorkRequest::Submit(_) | WorkRequest::Results { .. } => {
            Err("work: unexpected subcommand".to_owned())
        }
    };
    r.unwrap_or_else(Reply::Error)
}

/// Dials `node:service` for `connect` (`localhost` is this node).
async fn connect(
    ctx: &ControlContext,
    node: &str,
    service: &str,
    tls: Option<&str>,
) -> Result<receptor_tokio::MeshStream, String> {
    let me = ctx.node.id().as_str();
    let target = if node.eq_ignore_ascii_case("localhost") {
        me
    } else {
        node
    };
    let (cfg, sni) = client_for(&ctx.tls, tls, target, me)?;
    ctx.node
        .dial(target, service, cfg, &sni)
        .await
        .map_err(|e| e.to_string())
}

/// Copies bytes both ways between the control connection and a mesh stream until both
/// directions end: the client's EOF half-closes the stream, the stream's EOF closes our
/// writing side of the connection.
async fn run_bridge<S: AsyncRead + AsyncWrite + Unpin>(
    sock: S,
    stream: receptor_tokio::MeshStream,
    kept: BytesMut,
    client_eof: bool,
) {
    let (mut cr, mut cw) = tokio::io::split(sock);
    let (mut sr, mut sw) = tokio::io::split(stream);
    let up = async {
        if !kept.is_empty() && sw.write_all(&kept).await.is_err() {
            return;
        }
        if !client_eof {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        // receptorctl reads the `Connecting` line through a buffered file and then selects on
        // the raw socket: bytes that arrive with that line are lost in its buffer. Go's
        // remote greeting comes a round trip later by construction; ours could come at once.
        tokio::time::sleep(BRIDGE_HOLD).await;
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

async fn perform(ctx: &ControlContext, action: Action) -> Reply {
    match action {
        Action::Status { .. } => match snapshot(ctx).await {
            Some(s) => Reply::Status(Box::new(s)),
            None => Reply::Error("node is shutting down".into()),
        },
        Action::Ping { target } => Reply::Ping(ping(ctx, &target).await),
        Action::Traceroute { target } => Reply::Traceroute(traceroute(ctx, &target).await),
        Action::Reload => Reply::Reload((ctx.reload)().await),
        Action::Connect { .. } => {
            Reply::Error("connect: mesh streams are not supported yet".into())
        }
        Action::Work(req) => work_reply(&ctx.work, req, false).await,
    }
}

fn failed(error: String) -> PingResult {
    PingResult {
        from: None,
        rtt: Duration::ZERO,
        error: Some(error),
    }
}

/// Go reports a ping that could not be sent by its bare reason.
fn send_error_text(e: &receptor_core::SendError) -> String {
    match e {
        receptor_core::SendError::NoRoute(_) => "no route to node".to_owned(),
        other => other.to_string(),
    }
}

async fn ping(ctx: &ControlContext, target: &str) -> PingResult {
    match ctx.node.ping(target).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => failed(send_error_text(&e)),
        Err(e) => failed(e.to_string()),
    }
}

async fn traceroute(ctx: &ControlContext, target: &str) -> Vec<PingResult> {
    let mut hops = Vec::new();
    let Ok(mut rx) = ctx.node.traceroute(target).await else {
        return vec![failed("node is shutting down".into())];
    };
    while let Some(ev) = rx.recv().await {
        match ev {
            TraceEvent::Hop(_, r) => hops.push(r),
            TraceEvent::Done => break,
        }
    }
    hops
}

async fn snapshot(ctx: &ControlContext) -> Option<StatusSnapshot> {
    let st = ctx.node.status().await.ok()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128;
    Some(StatusSnapshot {
        node_id: st.node_id.to_string(),
        connections: st
            .connections
            .into_iter()
            .map(|(n, cost)| ConnectionStatus {
                node_id: n.to_string(),
                cost,
            })
            .collect(),
        routing_table: st
            .routes
            .into_iter()
            .map(|(d, h)| (d.to_string(), h.to_string()))
            .collect(),
        known_connection_costs: st
            .known_connection_costs
            .into_iter()
            .map(|(a, m)| {
                (
                    a.to_string(),
                    m.into_iter().map(|(b, c)| (b.to_string(), c)).collect(),
                )
            })
            .collect(),
        advertisements: st.advertisements,
        host: HostInfo {
            now,
            utc_offset: 0,
            work_commands: ctx.work.work_commands(),
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            memory_mib: memory_mib(),
            version: ctx.version.clone(),
        },
    })
}

/// Total physical memory in MiB, from /proc/meminfo (0 if unknown).
fn memory_mib() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}
