//! The `metrics` entity (not in Go receptor): an HTTP endpoint, optionally with TLS, serving
//! - `GET /metrics`: `receptor_*` series for Prometheus ([`expose`]);
//! - `GET /topology.json`, `GET /topology.dot`: the mesh as this node knows it ([`topology`]);
//! - `GET /`: an HTML page with a picture of the mesh the node draws itself ([`svg`]).
//!
//! ```yaml
//! - metrics:
//!     port: 9100          # required
//!     bindaddr: 127.0.0.1 # the default: only this host can read it
//!     tls: server         # optional: a tls-server name, for HTTPS
//! ```
//!
//! Every page is built from a fresh snapshot of the node when it is asked for. Requests are
//! parsed by [`parse_request`] (httparse); anything that is not a GET or HEAD of a known
//! page gets a 4xx, a connection that sends nothing for [`READ_TIMEOUT`] gets 408, and at
//! most [`MAX_CONNECTIONS`] are served at once.

mod expose;
mod http;
mod svg;
mod topology;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use receptor_tokio::NodeHandle;
use receptor_tokio::rustls::ServerConfig;
use receptor_tokio::tls::ALPN_HTTP11;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

pub use expose::{Format, Snapshot};
pub use http::{MAX_HEAD, Page, Request, RequestError, parse_request, route};
pub use topology::Topology;

use crate::config::MetricsCfg;
use crate::run::TlsConfigs;
use crate::work::Workceptor;

/// How long a client has to send its request head (and finish a TLS handshake).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once per endpoint; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// Control service sessions, counted where they run (`control.rs`).
#[derive(Debug)]
pub struct SessionCounter {
    open: AtomicU64,
    started: AtomicU64,
}

/// The control sessions of this process.
pub static CONTROL_SESSIONS: SessionCounter = SessionCounter {
    open: AtomicU64::new(0),
    started: AtomicU64::new(0),
};

impl SessionCounter {
    /// Counts a session as started and open until the guard is dropped.
    pub fn start(&'static self) -> SessionGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        SessionGuard(self)
    }

    /// Sessions open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Sessions started so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

/// An open session; dropping it closes it in the count.
#[derive(Debug)]
pub struct SessionGuard(&'static SessionCounter);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where the pages' numbers come from.
pub struct Sources {
    /// The node.
    pub node: NodeHandle,
    /// Units of work, counted by type and state.
    pub work: Arc<Workceptor>,
    /// The build version.
    pub version: String,
}

impl Sources {
    async fn snapshot(&self) -> Option<Snapshot> {
        Some(Snapshot {
            version: self.version.clone(),
            node_id: self.node.id().as_str().to_owned(),
            node: self.node.metrics().await.ok()?,
            units: self.work.unit_counts(),
            control_open: CONTROL_SESSIONS.open(),
            control_started: CONTROL_SESSIONS.started(),
        })
    }

    /// The response to a request for `page`.
    async fn page(&self, page: Page, req: &Request) -> Vec<u8> {
        let head_only = req.method == "HEAD";
        let (ctype, body) = match page {
            Page::Metrics => {
                let Some(snap) = self.snapshot().await else {
                    return http::error_response(503);
                };
                let format = Format::from_accept(req.accept.as_deref());
                (format.content_type(), expose::render(&snap, format))
            }
            Page::TopologyJson | Page::TopologyDot | Page::Index => {
                let (Ok(status), Some(snap)) = (self.node.status().await, self.snapshot().await)
                else {
                    return http::error_response(503);
                };
                let t = Topology::from_status(&status);
                match page {
                    Page::TopologyJson => ("application/json", format!("{:#}\n", t.to_json())),
                    Page::TopologyDot => ("text/vnd.graphviz; charset=utf-8", t.to_dot()),
                    _ => (
                        "text/html; charset=utf-8",
                        svg::page(&t, &expose::summary(&snap)),
                    ),
                }
            }
        };
        http::response(200, ctype, body.as_bytes(), head_only)
    }
}

/// The running endpoints; `reload` stops them and starts the new set. Dropping this leaves
/// them running.
#[derive(Default)]
pub struct MetricsServers {
    sources: Option<Arc<Sources>>,
    tasks: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

impl MetricsServers {
    /// Starts one endpoint per `metrics` entity, serving numbers from `sources`. A port that
    /// cannot be bound is an error.
    pub async fn start(
        &mut self,
        cfgs: &[MetricsCfg],
        tls: &TlsConfigs,
        sources: Arc<Sources>,
    ) -> Result<(), String> {
        self.stop();
        self.sources = Some(sources);
        self.restart(cfgs, tls).await
    }

    /// Stops the endpoints and starts those of `cfgs` (for `reload`), with the sources given
    /// to [`MetricsServers::start`].
    pub async fn restart(&mut self, cfgs: &[MetricsCfg], tls: &TlsConfigs) -> Result<(), String> {
        self.stop();
        let Some(sources) = self.sources.clone() else {
            return Ok(());
        };
        for cfg in cfgs {
            let tls_cfg = match &cfg.tls {
                None => None,
                Some(name) => Some(
                    tls.servers
                        .get(name)
                        .ok_or_else(|| format!("unknown TLS config {name}"))?
                        .backend_config(&[ALPN_HTTP11])
                        .map_err(|e| e.to_string())?,
                ),
            };
            let (addr, task) = serve(cfg, tls_cfg, sources.clone()).await?;
            self.tasks.push(task);
            self.addrs.push(addr);
        }
        Ok(())
    }

    /// The bound addresses, in configuration order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops every endpoint (requests being answered are cut off).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.addrs.clear();
    }
}

/// Binds one endpoint and serves it until the task is aborted.
pub async fn serve(
    cfg: &MetricsCfg,
    tls: Option<Arc<ServerConfig>>,
    sources: Arc<Sources>,
) -> Result<(SocketAddr, JoinHandle<()>), String> {
    let listener = TcpListener::bind((cfg.bind_addr.as_str(), cfg.port))
        .await
        .map_err(|e| format!("error listening on {}:{}: {e}", cfg.bind_addr, cfg.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!("Serving metrics on {scheme}://{addr}/metrics");
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let (sock, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tokio::spawn(async move {
                    let mut sock = sock;
                    let _ = sock.write_all(&http::error_response(503)).await;
                });
                continue;
            };
            let (sources, acceptor) = (sources.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _slot = slot;
                match acceptor {
                    None => answer(sock, &sources).await,
                    Some(acc) => match tokio::time::timeout(READ_TIMEOUT, acc.accept(sock)).await {
                        Ok(Ok(tls)) => answer(tls, &sources).await,
                        Ok(Err(e)) => debug!("metrics TLS handshake with {peer}: {e}"),
                        Err(_) => debug!("metrics TLS handshake with {peer} timed out"),
                    },
                }
            });
        }
    });
    Ok((addr, task))
}

/// Reads one request head and answers it; the connection then closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, sources: &Sources) {
    let mut buf = Vec::with_capacity(1024);
    let out = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut sock, &mut buf)).await {
        Err(_) => http::error_response(408),
        Ok(Err(e)) => http::error_response(e.status()),
        Ok(Ok(None)) => return,
        Ok(Ok(Some(req))) => match route(&req) {
            Ok(page) => sources.page(page, &req).await,
            Err(status) => http::error_response(status),
        },
    };
    let _ = sock.write_all(&out).await;
    let _ = sock.shutdown().await;
}

/// Reads until a whole request head is in `buf` (at most [`MAX_HEAD`] bytes). `Ok(None)`: the
/// client left before sending anything.
async fn read_head<S: AsyncRead + Unpin>(
    sock: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, RequestError> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(req) = parse_request(buf)? {
            return Ok(Some(req));
        }
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(RequestError::Malformed(
                    "connection closed mid-request".into(),
                ))
            };
        }
        let room = MAX_HEAD.saturating_sub(buf.len());
        buf.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Command, Parser};

    #[test]
    fn the_entity_parses_with_defaults_and_checks_its_tls_name() {
        let parse = |args: &[&str]| Parser::new().with_hostname("h").parse_args(args);
        let Ok(Command::Run(c)) = parse(&["--local-only", "--metrics", "9100"]) else {
            panic!()
        };
        assert_eq!(
            c.metrics,
            [MetricsCfg {
                bind_addr: "127.0.0.1".into(),
                port: 9100,
                tls: None
            }]
        );
        assert!(c.check_supported().is_ok());
        let e = parse(&["--local-only", "--metrics", "port=1", "tls=nope"]).unwrap_err();
        assert_eq!(e.to_string(), "unknown TLS config nope");
        assert!(parse(&["--local-only", "--metrics", "bindaddr=::1"]).is_err());
        assert!(crate::config::lookup("metrics").is_some_and(|e| e.reloadable()));
    }

    #[test]
    fn session_guards_count_open_sessions() {
        static C: SessionCounter = SessionCounter {
            open: AtomicU64::new(0),
            started: AtomicU64::new(0),
        };
        let a = C.start();
        let b = C.start();
        drop(a);
        assert_eq!((C.open(), C.started()), (1, 2));
        drop(b);
        assert_eq!(C.open(), 0);
    }
}
