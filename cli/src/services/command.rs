//! `command-service`: each stream to the mesh service runs `command` (split as google/shlex
//! does) on a new pseudo-terminal, with the stream bridged to the terminal, as Go does.
//!
//! The session ends when either side does: when the child and everything holding its terminal
//! are gone, the rest of its output is sent and the stream is closed; when the stream ends, the
//! terminal is hung up (the child's session gets SIGHUP, as when a Go node closes the pty).
//! Exited children are reaped.

use std::sync::Arc;

use receptor_core::work::shlex_split;
use receptor_tokio::{MeshStream, NodeHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use tracing::{debug, error, info};

use super::advert;
use super::pty::Pty;
use crate::config::CommandServiceCfg;
use crate::run::TlsConfigs;
use crate::streamtls::server_for;

/// Bytes moved per read in each direction (a terminal's buffers are a few KiB).
const CHUNK: usize = 16 * 1024;

/// Starts a `command-service`: a mesh stream service (ad `{"type":"Command Service"}`,
/// ConnType 1, or 2 with `tls`, a `tls-server`).
pub(super) async fn service(
    node: &NodeHandle,
    cfg: &CommandServiceCfg,
    tls: &Arc<TlsConfigs>,
) -> Result<JoinHandle<()>, String> {
    let (server_tls, conn_type) = server_for(tls, cfg.tls.as_deref())?;
    let ad = advert(conn_type, &[("type", "Command Service")]);
    let mut listener = node
        .listen_stream(&cfg.service, server_tls, Some(ad))
        .await
        .map_err(|e| format!("error listening on Receptor network: {e}"))?;
    // Go logs the config struct with %s.
    info!(
        "Running command service {{{} {} {}}}",
        cfg.service,
        cfg.command,
        cfg.tls.as_deref().unwrap_or_default()
    );
    // Go splits the command for every connection and fails each one when it cannot: the
    // error is the same every time, so say it now too.
    let argv = shlex_split(&cfg.command).map_err(|e| e.to_string());
    let argv = match argv {
        Ok(a) if a.is_empty() => Err("empty command".to_owned()),
        other => other,
    };
    if let Err(e) = &argv {
        error!("command service {}: bad command: {e}", cfg.service);
    }
    Ok(tokio::spawn(async move {
        while let Some(mesh) = listener.accept().await {
            match &argv {
                Ok(argv) => {
                    tokio::spawn(run(mesh, argv.clone()));
                }
                Err(e) => error!("Error running command: {e}"),
            }
        }
    }))
}

/// Runs one session: the command on a pty, bridged to `mesh`.
async fn run(mesh: MeshStream, argv: Vec<String>) {
    let from = mesh
        .remote()
        .map_or_else(|| "?".to_owned(), ToString::to_string);
    let (pty, mut child) = match Pty::spawn(&argv) {
        Ok(x) => x,
        Err(e) => {
            error!("Error running command: {e}");
            return;
        }
    };
    debug!("command service: {from} runs {argv:?}");
    let (mut rd, mut wr) = tokio::io::split(mesh);
    tokio::select! {
        r = terminal_to_mesh(&pty, &mut wr) => {
            if let Err(e) = r {
                debug!("command service: {from}: {e}");
            }
        }
        r = mesh_to_terminal(&mut rd, &pty) => {
            if let Err(e) = r {
                debug!("command service: {from}: {e}");
            }
        }
    }
    drop(pty);
    let _ = wr.shutdown().await;
    drop((rd, wr));
    match child.wait().await {
        Ok(status) => debug!("command service: {from}: command ended: {status}"),
        Err(e) => debug!("command service: {from}: waiting for the command: {e}"),
    }
}

/// The child's output to the stream, until the terminal's slave side is closed.
async fn terminal_to_mesh(pty: &Pty, mesh: &mut WriteHalf<MeshStream>) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = pty.read(&mut buf).await?;
        let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
            return Ok(());
        };
        mesh.write_all(data).await?;
    }
}

/// The stream's bytes to the terminal, until the stream ends.
async fn mesh_to_terminal(mesh: &mut ReadHalf<MeshStream>, pty: &Pty) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = mesh.read(&mut buf).await?;
        let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
            return Ok(());
        };
        pty.write_all(data).await?;
    }
}
