//! `unix-socket-server` (local Unix socket → mesh stream) and `unix-socket-client` (mesh
//! service → existing Unix socket).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use receptor_tokio::{MeshStream, NodeHandle};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::{debug, error, info};

use super::{MeshDialer, advert, bridge, server_for};
use crate::config::{UnixSocketClientCfg, UnixSocketServerCfg};
use crate::run::TlsConfigs;

/// Go's `UnixSocketListen`: an exclusive lock on `<filename>.lock` held for the process's
/// life, then the old file is removed, the socket bound and its mode set.
fn listen(path: &Path, permissions: u32) -> Result<(UnixListener, std::fs::File), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(PathBuf::from(&lock_path))
        .map_err(|e| format!("could not acquire lock on socket file: {e}"))?;
    lock.try_lock().map_err(|_| {
        "could not acquire lock on socket file: fslock is already locked".to_owned()
    })?;
    // os.RemoveAll: whatever is there goes, a missing file is fine.
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    removed.map_err(|e| format!("could not overwrite socket file: {e}"))?;
    let listener =
        UnixListener::bind(path).map_err(|e| format!("could not listen on socket file: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(permissions))
        .map_err(|e| format!("error setting socket file permissions: {e}"))?;
    Ok((listener, lock))
}

/// Starts a `unix-socket-server`: each connection to `filename` is dialled as a stream to
/// `remotenode:remoteservice` (mesh TLS from `tls`, a `tls-client`) and bridged.
pub(super) async fn server(
    node: &NodeHandle,
    cfg: &UnixSocketServerCfg,
    tls: &TlsConfigs,
) -> Result<JoinHandle<()>, String> {
    let dialer = Arc::new(MeshDialer::new(
        node,
        tls,
        cfg.tls.as_deref(),
        &cfg.remote_node,
        &cfg.remote_service,
    )?);
    let path = PathBuf::from(&cfg.filename);
    let (listener, lock) =
        listen(&path, cfg.permissions).map_err(|e| format!("error opening Unix socket: {e}"))?;
    info!(
        "Running Unix socket proxy server on {} to {}:{}",
        cfg.filename, cfg.remote_node, cfg.remote_service
    );
    Ok(tokio::spawn(async move {
        let _lock = lock;
        loop {
            let sock = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    error!("Error accepting Unix socket connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let dialer = dialer.clone();
            let what = format!(
                "unix {} -> {}:{}",
                path.display(),
                dialer.remote_node,
                dialer.remote_service
            );
            debug!("{what}: connection accepted");
            tokio::spawn(async move {
                match dialer.dial().await {
                    Ok(mesh) => {
                        let _ = bridge(sock, mesh, &what).await;
                    }
                    Err(e) => error!("Error connecting on Receptor network: {e}"),
                }
            });
        }
    }))
}

/// Starts a `unix-socket-client`: a mesh service (ad `{"type":"Unix Proxy","filename":F}`,
/// ConnType 1, or 2 with `tls`, a `tls-server`) whose streams are bridged to new connections
/// to the existing socket `filename`.
pub(super) async fn client(
    node: &NodeHandle,
    cfg: &UnixSocketClientCfg,
    tls: &Arc<TlsConfigs>,
) -> Result<JoinHandle<()>, String> {
    let (server_tls, conn_type) = server_for(tls, cfg.tls.as_deref())?;
    let ad = advert(
        conn_type,
        &[("type", "Unix Proxy"), ("filename", cfg.filename.as_str())],
    );
    let mut listener = node
        .listen_stream(&cfg.service, server_tls, Some(ad))
        .await
        .map_err(|e| format!("error listening on Receptor network: {e}"))?;
    info!(
        "Running Unix socket proxy client on service {} to {}",
        cfg.service, cfg.filename
    );
    let path = PathBuf::from(&cfg.filename);
    Ok(tokio::spawn(async move {
        while let Some(mesh) = listener.accept().await {
            tokio::spawn(outbound(mesh, path.clone()));
        }
    }))
}

async fn outbound(mesh: MeshStream, path: PathBuf) {
    let from = mesh
        .remote()
        .map_or_else(|| "?".to_owned(), ToString::to_string);
    let what = format!("{from} -> unix {}", path.display());
    debug!("{what}: stream accepted");
    match UnixStream::connect(&path).await {
        Ok(sock) => {
            let _ = bridge(sock, mesh, &what).await;
        }
        Err(e) => error!("Error connecting via Unix socket: {e}"),
    }
}
