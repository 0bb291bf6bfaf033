//! A mesh node on smol, from the command line. It logs its connections, echoes datagrams
//! sent to its `echo` service (logging each), can ping another node every 5 s, and with
//! `--control SOCKET` answers `receptorctl` (status, ping, traceroute, connect, work) there
//! and as the mesh service `control`.
//!
//! ```text
//! cargo run -p receptor-smol --example node -- --id a --tcp-listen 7323 --control /tmp/a.sock
//! cargo run -p receptor-smol --example node -- --id b --tcp-peer 127.0.0.1:7323 --ping a
//! receptorctl --socket /tmp/a.sock traceroute b
//! ```
//!
//! With `--tls-cert`, `--tls-key` and `--tls-ca` (all three), the tcp and ws backends run TLS
//! with mutual authentication: peers must present a certificate from that CA, and the node ID
//! a peer announces must be one its certificate carries (ours must carry `--id`). Then
//! `--ws-listen` serves wss, and `--ws-peer` takes `wss://` URLs.
//!
//! Listeners bind every address, as the `receptor` binary's do; `--bind` picks one.
//!
//! With `--control`, `--work-command worktype=NAME command=CMD [params=P]
//! [allowruntimeparams=true]` (Go's `--work-command` entity, key=value arguments up to the
//! next flag; repeats) offers command work types, run in `--data-dir DIR/<id>` (default: the
//! system temp directory's `receptor-smol`), and `work submit --node OTHER` runs work on
//! another node:
//!
//! ```text
//! node --id a --tcp-listen 7323 --control /tmp/a.sock --work-command worktype=cat command=cat
//! receptorctl --socket /tmp/a.sock work submit cat -l hello -f
//! ```
//!
//! `--work-signing privatekey=F [tokenexpiration=DURATION]` signs the work of `work submit
//! --signwork`; `--work-verification publickey=F` with `verifysignature=true` on a
//! `--work-command` makes commands for that type from other nodes need a valid signature
//! (Go's `work-signing` and `work-verification`).
//!
//! The core answers pings itself and tells the runtime nothing about them, so answered
//! pings cannot be logged here; the pinging side logs every round trip.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_io::Timer;
use futures_lite::future;
use receptor_core::control::parse_go_duration;
use receptor_core::os::work_keys::{WorkKeys, check_exists};
use receptor_core::stream::{ServerTls, server_config};
use receptor_core::work::signing::DEFAULT_TOKEN_EXPIRATION;
use receptor_core::{Config, LinkConfig, LinkKind, NodeId};
use receptor_smol::backends::{
    DialSpec, ListenSpec, WsDialSpec, WsListenSpec, tcp_dial, tcp_listen, udp_dial, udp_listen,
    ws_dial, ws_listen,
};
use receptor_smol::control::{ControlOptions, serve_control_mesh, serve_control_unix};
use receptor_smol::rustls;
use receptor_smol::tls::insecure::insecure_server_config;
use receptor_smol::tls::{ALPN_HTTP11, TlsClient, TlsClientParams, TlsServer, TlsServerParams};
use receptor_smol::work::{CommandWorkType, Work};
use receptor_smol::{NodeHandle, ServiceEvent, Task, spawn_node};
use tracing::{info, warn};

const USAGE: &str = "usage: node --id ID [--bind ADDR] [--tcp-listen PORT] [--tcp-peer HOST:PORT] \
[--ws-listen PORT] [--ws-peer URL] [--udp-listen PORT] [--udp-peer HOST:PORT] \
[--tls-cert F --tls-key F --tls-ca F] [--control SOCKET] [--ping NODE] \
[--data-dir DIR] [--work-command worktype=NAME command=CMD [params=P] [allowruntimeparams=true] \
[verifysignature=true]] [--work-signing privatekey=F [tokenexpiration=DURATION]] \
[--work-verification publickey=F]   (listen, peer and work-command flags repeat)";

/// The WebSocket listeners' upgrade path (`/` takes every path, as Go's does).
const WS_PATH: &str = "/";

#[derive(Default)]
struct Args {
    id: String,
    bind: Option<String>,
    tcp_listen: Vec<u16>,
    tcp_peer: Vec<String>,
    ws_listen: Vec<u16>,
    ws_peer: Vec<String>,
    udp_listen: Vec<u16>,
    udp_peer: Vec<String>,
    tls: Option<TlsFiles>,
    control: Option<PathBuf>,
    ping: Option<String>,
    data_dir: Option<PathBuf>,
    work_commands: Vec<(String, CommandWorkType)>,
    keys: WorkKeys,
}

/// The key=value arguments of one `--work-command`.
fn work_command(pairs: &[String]) -> Result<(String, CommandWorkType), String> {
    let mut name = String::new();
    let mut ty = CommandWorkType::default();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--work-command: {pair} is not key=value"))?;
        match k.to_ascii_lowercase().as_str() {
            "worktype" => name = v.to_owned(),
            "command" => ty.command = v.to_owned(),
            "params" => ty.params = v.to_owned(),
            "allowruntimeparams" => ty.allow_runtime_params = v == "true",
            "verifysignature" => ty.verify_signature = v == "true",
            _ => return Err(format!("--work-command: unknown key {k}")),
        }
    }
    if name.is_empty() || ty.command.is_empty() {
        return Err("--work-command needs worktype= and command=".into());
    }
    Ok((name, ty))
}

/// The key=value arguments of `--work-signing` (`verify`: false) or `--work-verification`
/// into `keys`; the key file must exist.
fn work_key(pairs: &[String], verify: bool, keys: &mut WorkKeys) -> Result<(), String> {
    let flag = if verify {
        "--work-verification"
    } else {
        "--work-signing"
    };
    let (mut file, mut lifetime) = (None, DEFAULT_TOKEN_EXPIRATION);
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{flag}: {pair} is not key=value"))?;
        match (k.to_ascii_lowercase().as_str(), verify) {
            ("privatekey", false) | ("publickey", true) => file = Some(v.to_owned()),
            ("tokenexpiration", false) => {
                let nanos = parse_go_duration(v).map_err(|e| format!("{flag}: {e}"))?;
                lifetime = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
            }
            _ => return Err(format!("{flag}: unknown key {k}")),
        }
    }
    let file = file.ok_or_else(|| format!("{flag} needs its key file"))?;
    check_exists(&file)?;
    if verify {
        keys.verifying = Some(file.into());
    } else {
        keys.signing = Some((file.into(), lifetime));
    }
    Ok(())
}

/// `--tls-cert`, `--tls-key`, `--tls-ca`.
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn parse(it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut it = it.peekable();
    let mut a = Args::default();
    let (mut cert, mut key, mut ca) = (None, None, None);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let port = |v: String| v.parse::<u16>().map_err(|e| format!("bad port {v}: {e}"));
        match flag.as_str() {
            "--id" => a.id = value()?,
            "--bind" => a.bind = Some(value()?),
            "--tcp-listen" => a.tcp_listen.push(port(value()?)?),
            "--tcp-peer" => a.tcp_peer.push(value()?),
            "--ws-listen" => a.ws_listen.push(port(value()?)?),
            "--ws-peer" => a.ws_peer.push(value()?),
            "--udp-listen" => a.udp_listen.push(port(value()?)?),
            "--udp-peer" => a.udp_peer.push(value()?),
            "--tls-cert" => cert = Some(PathBuf::from(value()?)),
            "--tls-key" => key = Some(PathBuf::from(value()?)),
            "--tls-ca" => ca = Some(PathBuf::from(value()?)),
            "--control" => a.control = Some(value()?.into()),
            "--ping" => a.ping = Some(value()?),
            "--data-dir" => a.data_dir = Some(value()?.into()),
            "--work-command" | "--work-signing" | "--work-verification" => {
                let mut pairs = Vec::new();
                while let Some(p) = it.next_if(|p| !p.starts_with("--")) {
                    pairs.push(p);
                }
                match flag.as_str() {
                    "--work-command" => a.work_commands.push(work_command(&pairs)?),
                    f => work_key(&pairs, f == "--work-verification", &mut a.keys)?,
                }
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.id.is_empty() {
        return Err("--id is required".into());
    }
    a.tls = match (cert, key, ca) {
        (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert, key, ca }),
        (None, None, None) => None,
        _ => return Err("--tls-cert, --tls-key and --tls-ca go together".into()),
    };
    for url in &a.ws_peer {
        let secure = if url.starts_with("wss://") {
            true
        } else if url.starts_with("ws://") {
            false
        } else {
            return Err(format!("--ws-peer {url}: not a ws:// or wss:// URL"));
        };
        if secure != a.tls.is_some() {
            return Err(format!(
                "--ws-peer {url}: wss:// URLs go with --tls-*, ws:// URLs without"
            ));
        }
    }
    Ok(a)
}

fn main() {
    let args = parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    });
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    if let Err(e) = async_io::block_on(run(args)) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let wall = SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let seed = receptor_core::os::random_u64();
    let node = spawn_node(Arc::new(Config::new(NodeId::new(&args.id)?, seed, wall)))?;

    let bind = args.bind.clone().unwrap_or_else(|| "0.0.0.0".into());
    let tls = args
        .tls
        .as_ref()
        .map(|f| load_tls(f, &args.id))
        .transpose()?;
    let backends = start_backends(&node, &bind, &args, tls.as_ref()).await?;

    let _control = match &args.control {
        Some(path) => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("receptor-smol"))
                .join(&args.id);
            let work = Work::new(dir, receptor_core::os::random_u64())
                .with_node(node.clone(), None)
                .with_keys(args.keys.clone());
            for (name, ty) in &args.work_commands {
                work.register_type(name, ty.clone());
            }
            work.scan();
            let options = ControlOptions {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                connect_tls: None,
                work: Some(Arc::new(work)),
            };
            let unix = serve_control_unix(&node, path, options.clone())?;
            info!("control service on {}", path.display());
            // As Go nodes do, also as the mesh service `control` (plain: ConnType 1).
            let tls = insecure_server_config(SystemTime::now())?;
            let server = ServerTls::Fixed(server_config((*tls).clone())?);
            let mesh = serve_control_mesh(&node, "control", server, 1, options).await?;
            Some((unix, mesh))
        }
        None => None,
    };

    let (echo, datagrams) = node.listen(Some("echo"), None).await?;
    let echoer = async {
        while let Ok(ev) = datagrams.recv().await {
            if let ServiceEvent::Datagram {
                from_node,
                from_service,
                payload,
            } = ev
            {
                info!(
                    "echoing {} bytes to {from_node}:{from_service}",
                    payload.len()
                );
                let to = from_node.as_str();
                let _ = node.send_to(echo, to, from_service, payload).await;
            }
        }
    };
    let pinger = async {
        let Some(target) = &args.ping else {
            return future::pending().await;
        };
        loop {
            Timer::after(Duration::from_secs(5)).await;
            match node.ping(target).await {
                Ok(Ok(r)) if r.error.is_none() => info!("reply from {target} in {:?}", r.rtt),
                Ok(Ok(r)) => warn!("ping {target}: {}", r.error.unwrap_or_default()),
                Ok(Err(e)) => warn!("ping {target}: {e}"),
                Err(gone) => return warn!("{gone}"),
            }
        }
    };
    // Runs until the node stops (the echo service's queue closes with it).
    future::or(echoer, pinger).await;
    drop(backends);
    Ok(())
}

/// The backends' TLS: the server and client configs of the tcp and ws backends.
struct BackendTls {
    server: TlsServer,
    client: TlsClient,
}

/// Loads `--tls-*`: mutual authentication against the one CA, node IDs bound to certificates
/// both ways, and Go's startup check that our certificate carries `id`.
fn load_tls(files: &TlsFiles, id: &str) -> Result<BackendTls, Box<dyn std::error::Error>> {
    let server = TlsServer::load(
        &TlsServerParams {
            name: "tls".into(),
            cert: files.cert.clone(),
            key: files.key.clone(),
            require_client_cert: true,
            client_cas: Some(files.ca.clone()),
            bind_node_id: true,
            ..TlsServerParams::default()
        },
        id,
    )?;
    let client = TlsClient::load(
        &TlsClientParams {
            name: "tls".into(),
            cert: Some(files.cert.clone()),
            key: Some(files.key.clone()),
            root_cas: Some(files.ca.clone()),
            bind_node_id: true,
            ..TlsClientParams::default()
        },
        id,
    )?;
    Ok(BackendTls { server, client })
}

/// Starts every listener and peer of `args`; dropping the tasks stops them.
async fn start_backends(
    node: &NodeHandle,
    bind: &str,
    args: &Args,
    tls: Option<&BackendTls>,
) -> Result<Vec<Task<()>>, Box<dyn std::error::Error>> {
    let link = |kind| {
        let mut l = LinkConfig::new(kind);
        l.bind_node_id = tls.is_some() && kind != LinkKind::Datagram;
        Arc::new(l)
    };
    let server = |alpn: &[&[u8]]| -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        tls.map(|t| t.server.backend_config(alpn).map_err(|e| e.to_string()))
            .transpose()
    };
    let client = |alpn: &[&[u8]]| -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        tls.map(|t| t.client.backend_config(alpn).map_err(|e| e.to_string()))
            .transpose()
    };
    let listen = |port, kind, tls| ListenSpec {
        bind: bind.to_owned(),
        port,
        link: link(kind),
        tls,
    };
    let dial = |address: &String, kind, tls| DialSpec {
        address: address.clone(),
        redial: true,
        link: link(kind),
        tls,
    };
    let mut backends = Vec::new();
    for &port in &args.tcp_listen {
        let spec = listen(port, LinkKind::Stream, server(&[])?);
        let (addr, task) = tcp_listen(node, spec).await?;
        info!("listening for TCP on {addr}");
        backends.push(task);
    }
    for &port in &args.ws_listen {
        let spec = WsListenSpec {
            listen: listen(port, LinkKind::Message, server(&[ALPN_HTTP11])?),
            path: WS_PATH.into(),
        };
        let (addr, task) = ws_listen(node, spec).await?;
        info!("listening for WebSocket on {addr}");
        backends.push(task);
    }
    for &port in &args.udp_listen {
        let (addr, task) = udp_listen(node, listen(port, LinkKind::Datagram, None)).await?;
        info!("listening for UDP on {addr}");
        backends.push(task);
    }
    for peer in &args.tcp_peer {
        backends.push(tcp_dial(node, dial(peer, LinkKind::Stream, client(&[])?)));
    }
    for url in &args.ws_peer {
        let spec = WsDialSpec {
            url: url.clone(),
            redial: true,
            link: link(LinkKind::Message),
            tls: client(&[ALPN_HTTP11])?,
            extra_header: None,
        };
        backends.push(ws_dial(node, spec));
    }
    for peer in &args.udp_peer {
        backends.push(udp_dial(node, dial(peer, LinkKind::Datagram, None)));
    }
    Ok(backends)
}
