//! Control service listeners (unix socket, TCP with optional TLS) that run the sans-IO
//! [`Session`] of `receptor_core::control` against the node (control-and-work.md §1).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use receptor_core::control::{
    Action, BRIDGE_HOLD, Connection, ReloadError, Reply, StatusSnapshot, Step, TraceHops,
    WorkRequest, connect_target, failed_ping, ping_reply,
};
use receptor_core::os::host::host_info;
use receptor_tokio::NodeHandle;
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
    let mut conn = Connection::new(ctx.node.id().as_str());
    let mut bridge = None;
    let mut payload: Option<Arc<Unit>> = None;
    let mut results: Option<ResultsStream> = None;
    let mut buf = vec![0u8; 4096];
    loop {
        match conn.poll_step() {
            Step::Write(out) => {
                if sock.write_all(&out).await.is_err() {
                    return;
                }
            }
            Step::Perform(action) => {
                let reply = match action {
                    Action::Connect { node, service, tls } => {
                        match connect(&ctx, &node, &service, tls.as_deref()).await {
                            Ok(stream) => {
                                bridge = Some(stream);
                                Reply::Connected
                            }
                            Err(e) => Reply::Error(e.into()),
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
                            Err(e) => Reply::Error(e.into()),
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
                        Err(e) => Reply::Error(e.into()),
                    },
                    Action::Work(req) => work_reply(&ctx.work, req, sock.is_unix()).await,
                    other => perform(&ctx, other).await,
                };
                if conn.complete(reply).is_err() {
                    return;
                }
            }
            Step::Read => match sock.read(&mut buf).await {
                Ok(0) => conn.received_eof(),
                Ok(n) => conn.received(buf.get(..n).unwrap_or_default()),
                Err(_) => return,
            },
            Step::Payload { kept, eof } => {
                let Some(unit) = payload.take() else { return };
                let reply = receive_payload(&mut sock, &kept, eof, &unit, &ctx.work).await;
                if conn.complete(reply).is_err() {
                    return;
                }
            }
            Step::Switched { kept, eof } => {
                if let Some(stream) = bridge.take() {
                    run_bridge(sock, stream, kept, eof).await;
                    return;
                }
                if let Some(stream) = results.take() {
                    stream.run(&mut sock, |c| c.peer_gone()).await;
                }
                break;
            }
            Step::Close => break,
        }
    }
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}

/// `work submit` payload: every byte the client sends until EOF (starting with what was read
/// past the command line) goes to the unit's `stdin`; then the worker starts.
async fn receive_payload<S: ControlConn>(
    sock: &mut S,
    kept: &[u8],
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
        file.write_all(kept).await.map_err(|e| e.to_string())?;
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
        return Reply::Error(e.into());
    }
    match work.start(unit).await {
        Ok(pending) => Reply::WorkStarted {
            unit_id: unit.id().to_owned(),
            pending,
        },
        Err(e) => Reply::Error(e.into()),
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
        } => work.status_wait(&unit_id, &w).await.map(Reply::WorkStatus),
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
    r.unwrap_or_else(|e| Reply::Error(e.into()))
}

/// Dials `node:service` for `connect` (`localhost` is this node).
async fn connect(
    ctx: &ControlContext,
    node: &str,
    service: &str,
    tls: Option<&str>,
) -> Result<receptor_tokio::MeshStream, String> {
    let me = ctx.node.id().as_str();
    let target = connect_target(node, me);
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
    kept: Bytes,
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
        tokio::time::sleep(BRIDGE_HOLD).await;
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

async fn perform(ctx: &ControlContext, action: Action) -> Reply {
    match action {
        Action::Status { .. } => match ctx.node.status().await {
            Ok(st) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i128);
                let host = host_info(now, ctx.work.work_commands(), ctx.version.clone());
                Reply::Status(Box::new(StatusSnapshot::from_mesh_status(st, host)))
            }
            Err(_) => Reply::Error("node is shutting down".into()),
        },
        Action::Ping { target } => match ctx.node.ping(&target).await {
            Ok(sent) => ping_reply(sent),
            Err(e) => Reply::Ping(failed_ping(e.to_string())),
        },
        Action::Traceroute { target } => traceroute(ctx, &target).await,
        Action::Reload => Reply::Reload((ctx.reload)().await),
        // run_session performs these itself: they keep state (a stream, a unit) or need the
        // connection's kind.
        Action::Connect { .. } | Action::Work(_) => Reply::Error("unexpected command".into()),
    }
}

async fn traceroute(ctx: &ControlContext, target: &str) -> Reply {
    let Ok(mut rx) = ctx.node.traceroute(target).await else {
        return Reply::Traceroute(vec![failed_ping("node is shutting down")]);
    };
    let mut hops = TraceHops::default();
    while let Some(ev) = rx.recv().await {
        if !hops.push(ev) {
            break;
        }
    }
    hops.into_reply()
}
