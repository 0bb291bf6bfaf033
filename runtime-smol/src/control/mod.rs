//! The control service (what `receptorctl` talks to) on a unix socket or as a mesh stream
//! service: a small I/O loop around [`receptor_core::control::Connection`], performing
//! `status`, `ping`, `traceroute` and `connect` through the [`NodeHandle`], and the `work`
//! commands through the [`Work`] of [`ControlOptions::work`] (`work`).
//!
//! `reload` belongs to the full `receptor` node (configuration files), and `work` needs a
//! [`Work`]; without them they answer with an error line and the session goes on.

mod work;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_io::Timer;
use async_net::unix::UnixListener;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use receptor_core::Advertise;
use receptor_core::control::{
    Action, BRIDGE_HOLD, Connection, Reply, StatusSnapshot, Step, TraceHops, WorkRequest,
    connect_target, failed_ping, ping_reply,
};
use receptor_core::os::host::host_info;
use receptor_core::stream::ServerTls;
use receptor_core::stream::quinn_proto::ClientConfig;
use receptor_core::tls::insecure::insecure_stream_client;
use receptor_core::tls::stream_server_name;
use tracing::{debug, warn};

use crate::work::{ResultsStream, Work};
use crate::{MeshStream, NodeHandle, Task};

/// Picks the QUIC client TLS for `connect`: given the `tls-client` name the client asked for
/// (`None`: a plain, ConnType 1 stream) and the target node, the config and the server name
/// to dial with, or the error line's text.
pub type ConnectTls =
    Arc<dyn Fn(Option<&str>, &str) -> Result<(ClientConfig, String), String> + Send + Sync>;

/// What a control service needs besides the node.
#[derive(Clone, Default)]
pub struct ControlOptions {
    /// The version `status` reports.
    pub version: String,
    /// TLS for `connect`. Without it `connect` dials plain (ConnType 1) streams only, in the
    /// insecure mode, and a named TLS config is unknown.
    pub connect_tls: Option<ConnectTls>,
    /// The units of work the `work` commands act on (`None`: they are refused).
    pub work: Option<Arc<Work>>,
}

/// `connect`'s TLS without [`ControlOptions::connect_tls`]: the insecure mode, named as Go
/// names it, from this node.
fn plain_connect_tls(name: Option<&str>, self_id: &str) -> Result<(ClientConfig, String), String> {
    if let Some(name) = name {
        return Err(format!("unknown TLS config {name}"));
    }
    let quic = insecure_stream_client().map_err(|e| e.to_string())?;
    Ok((quic, stream_server_name(self_id)))
}

/// Why a control service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another process serves this socket.
    #[error("control socket {0} is in use")]
    InUse(String),
    /// Binding or preparing the socket failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket's path.
        path: String,
        /// The error.
        source: io::Error,
    },
}

/// Serves the control protocol on the unix socket `path` until the returned task is dropped
/// or the node stops, then removes the socket file. A stale socket file (nothing listening)
/// is replaced; a live one is an error.
pub fn serve_control_unix(
    node: &NodeHandle,
    path: &Path,
    options: ControlOptions,
) -> Result<Task<()>, ControlError> {
    let shown = || path.display().to_string();
    let io_err = |source| ControlError::Io {
        path: shown(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(shown()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    let file = SocketFile(path.to_owned());
    let node2 = node.clone();
    Ok(node.spawn(async move {
        let _file = file;
        let stopped = node2.clone();
        let accept = async {
            loop {
                match listener.accept().await {
                    Ok((sock, _)) => {
                        node2
                            .spawn(session(sock, node2.clone(), options.clone(), true))
                            .detach();
                    }
                    Err(e) => {
                        warn!("control socket accept: {e}");
                        Timer::after(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        };
        futures_lite::future::or(accept, async {
            stopped.stopped().await;
        })
        .await;
    }))
}

/// Removes the socket file when the service ends.
struct SocketFile(std::path::PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves the control protocol as the mesh stream service `service` (Go nodes call theirs
/// `control`), advertised as a "Control Service" with `conn_type` (1: `tls` is the insecure
/// mode, 2: user TLS), until the returned task is dropped or the node stops.
pub async fn serve_control_mesh(
    node: &NodeHandle,
    service: &str,
    tls: ServerTls,
    conn_type: u8,
    options: ControlOptions,
) -> Result<Task<()>, String> {
    let work_commands = options
        .work
        .as_ref()
        .map(|w| w.work_commands())
        .filter(|c| !c.is_empty());
    let advertise = Advertise {
        conn_type,
        tags: [("type".to_owned(), "Control Service".to_owned())].into(),
        work_commands,
    };
    let listener = node.listen_stream(service, tls, Some(advertise)).await?;
    let node2 = node.clone();
    Ok(node.spawn(async move {
        while let Some(stream) = listener.accept().await {
            node2
                .spawn(session(stream, node2.clone(), options.clone(), false))
                .detach();
        }
    }))
}

/// Runs one control session to its end (`local`: on the unix socket, whose commands need no
/// signature).
async fn session<S>(mut sock: S, node: NodeHandle, options: ControlOptions, local: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Connection::new(node.id().as_str());
    let mut bridge: Option<MeshStream> = None;
    // The unit a `work submit` made (its payload comes next), the stream `work results` runs.
    let mut payload: Option<String> = None;
    let mut results: Option<ResultsStream> = None;
    let mut buf = vec![0u8; 4096];
    loop {
        match conn.poll_step() {
            Step::Write(out) => {
                if sock.write_all(&out).await.is_err() {
                    return;
                }
            }
            Step::Perform(Action::Connect {
                node: to,
                service,
                tls,
            }) => {
                let reply = match connect(&node, &options, &to, &service, tls.as_deref()).await {
                    Ok(stream) => {
                        bridge = Some(stream);
                        Reply::Connected
                    }
                    Err(e) => Reply::Error(e.into()),
                };
                if conn.complete(reply).is_err() {
                    return;
                }
            }
            Step::Perform(Action::Work(WorkRequest::Submit(req))) => {
                let submitted =
                    work::submit(options.work.as_ref(), node.id().as_str(), &req, local);
                let reply = match submitted {
                    Ok(unit_id) => {
                        payload = Some(unit_id.clone());
                        Reply::WorkUnitCreated { unit_id }
                    }
                    Err(e) => Reply::Error(e.into()),
                };
                if conn.complete(reply).is_err() {
                    return;
                }
            }
            Step::Perform(Action::Work(WorkRequest::Results {
                unit_id,
                start_pos,
                signature,
            })) => {
                let opened = work::results(
                    options.work.as_ref(),
                    &unit_id,
                    start_pos,
                    &signature,
                    (local, node.id().as_str()),
                );
                let reply = match opened {
                    Ok(stream) => {
                        results = Some(stream);
                        Reply::WorkResults { unit_id }
                    }
                    Err(e) => Reply::Error(e.into()),
                };
                if conn.complete(reply).is_err() {
                    return;
                }
            }
            Step::Perform(Action::Work(req)) => {
                if conn
                    .complete(
                        work::reply(options.work.as_ref(), req, (local, node.id().as_str())).await,
                    )
                    .is_err()
                {
                    return;
                }
            }
            Step::Perform(action) => {
                if conn
                    .complete(perform(&node, &options, action).await)
                    .is_err()
                {
                    return;
                }
            }
            Step::Read => match sock.read(&mut buf).await {
                Ok(0) => conn.received_eof(),
                Ok(n) => conn.received(buf.get(..n).unwrap_or_default()),
                Err(_) => return,
            },
            Step::Payload { kept, eof } => {
                let (Some(id), Some(w)) = (payload.take(), options.work.as_ref()) else {
                    return;
                };
                let reply = work::receive_payload(&mut sock, &kept, eof, w, &id).await;
                if conn.complete(reply).is_err() {
                    return;
                }
            }
            Step::Switched { kept, eof } => {
                if let Some(stream) = bridge.take() {
                    bridge_streams(sock, stream, &kept, eof).await;
                    return;
                }
                if let Some(stream) = results.take() {
                    stream.run(&mut sock).await;
                }
                break;
            }
            Step::Close => break,
        }
    }
    let _ = sock.close().await;
}

async fn perform(node: &NodeHandle, options: &ControlOptions, action: Action) -> Reply {
    match action {
        Action::Status { .. } => match node.status().await {
            Ok(st) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i128);
                let work_commands = options
                    .work
                    .as_ref()
                    .map(|w| w.work_commands())
                    .unwrap_or_default();
                let host = host_info(now, work_commands, options.version.clone());
                Reply::Status(Box::new(StatusSnapshot::from_mesh_status(st, host)))
            }
            Err(gone) => Reply::Error(gone.to_string().into()),
        },
        Action::Ping { target } => match node.ping(&target).await {
            Ok(sent) => ping_reply(sent),
            Err(gone) => Reply::Ping(failed_ping(gone.to_string())),
        },
        Action::Traceroute { target } => {
            let Ok(rx) = node.traceroute(&target).await else {
                return Reply::Traceroute(vec![failed_ping("the node has stopped")]);
            };
            let mut hops = TraceHops::default();
            while let Ok(ev) = rx.recv().await {
                if !hops.push(ev) {
                    break;
                }
            }
            hops.into_reply()
        }
        Action::Reload => Reply::Error("reload: this node has no configuration file".into()),
        // Handled by `session`, which keeps the stream or the unit.
        Action::Connect { .. } | Action::Work(_) => Reply::Error("unexpected command".into()),
    }
}

/// Dials `to:service` for `connect`.
async fn connect(
    node: &NodeHandle,
    options: &ControlOptions,
    to: &str,
    service: &str,
    tls: Option<&str>,
) -> Result<MeshStream, String> {
    let me = node.id().as_str();
    let target = connect_target(to, me);
    let (cfg, server_name) = match &options.connect_tls {
        Some(pick) => pick(tls, target)?,
        None => plain_connect_tls(tls, me)?,
    };
    debug!("control connect to {target}:{service}");
    node.dial(target, service, cfg, &server_name)
        .await
        .map_err(|e| e.to_string())
}

/// Copies bytes both ways between the control connection and a mesh stream until both
/// directions end: the client's EOF finishes the stream's writing side, the stream's EOF
/// shuts down the connection's.
async fn bridge_streams<S>(sock: S, stream: MeshStream, kept: &[u8], client_eof: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sr, mut sw) = futures_lite::io::split(stream);
    let (mut cr, mut cw) = futures_lite::io::split(sock);
    let up = async {
        let sent = kept.is_empty() || sw.write_all(kept).await.is_ok();
        if sent && !client_eof {
            let _ = futures_lite::io::copy(&mut cr, &mut sw).await;
        }
        let _ = sw.close().await;
    };
    let down = async {
        Timer::after(BRIDGE_HOLD).await;
        let _ = futures_lite::io::copy(&mut sr, &mut cw).await;
        let _ = cw.close().await;
    };
    futures_lite::future::zip(up, down).await;
}
