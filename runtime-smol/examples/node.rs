//! A mesh node on smol, from the command line. It logs its connections, echoes datagrams
//! sent to its `echo` service (logging each), can ping another node every 5 s, and with
//! `--control SOCKET` answers `receptorctl` (status, ping, traceroute, connect) there and as
//! the mesh service `control`.
//!
//! ```text
//! cargo run -p receptor-smol --example node -- --id a --tcp-listen 7323 --control /tmp/a.sock
//! cargo run -p receptor-smol --example node -- --id b --tcp-peer 127.0.0.1:7323 --ping a
//! receptorctl --socket /tmp/a.sock traceroute b
//! ```
//!
//! Listeners bind every address, as the `receptor` binary's do; `--bind` picks one.
//!
//! The core answers pings itself and tells the runtime nothing about them, so answered
//! pings cannot be logged here; the pinging side logs every round trip.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use receptor_core::stream::{ServerTls, client_config, server_config};
use receptor_core::{Config, LinkConfig, LinkKind, NodeId};
use receptor_smol::backends::{DialSpec, ListenSpec, tcp_dial, tcp_listen, udp_dial, udp_listen};
use receptor_smol::control::{ConnectTls, ControlOptions, serve_control_mesh, serve_control_unix};
use receptor_smol::{ServiceEvent, spawn_node};
use receptor_tokio::tls::insecure::{insecure_client_config, insecure_server_config};
use tracing::{info, warn};

const USAGE: &str = "usage: node --id ID [--bind ADDR] [--tcp-listen PORT] [--tcp-peer HOST:PORT] \
[--udp-listen PORT] [--udp-peer HOST:PORT] [--control SOCKET] [--ping NODE]   \
(listen/peer flags repeat)";

#[derive(Default)]
struct Args {
    id: String,
    bind: Option<String>,
    tcp_listen: Vec<u16>,
    tcp_peer: Vec<String>,
    udp_listen: Vec<u16>,
    udp_peer: Vec<String>,
    control: Option<PathBuf>,
    ping: Option<String>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let port = |v: String| v.parse::<u16>().map_err(|e| format!("bad port {v}: {e}"));
        match flag.as_str() {
            "--id" => a.id = value()?,
            "--bind" => a.bind = Some(value()?),
            "--tcp-listen" => a.tcp_listen.push(port(value()?)?),
            "--tcp-peer" => a.tcp_peer.push(value()?),
            "--udp-listen" => a.udp_listen.push(port(value()?)?),
            "--udp-peer" => a.udp_peer.push(value()?),
            "--control" => a.control = Some(value()?.into()),
            "--ping" => a.ping = Some(value()?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.id.is_empty() {
        return Err("--id is required".into());
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
    use std::hash::{BuildHasher, Hasher};
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let node = spawn_node(Arc::new(Config::new(NodeId::new(&args.id)?, seed, wall)))?;

    let bind = args.bind.unwrap_or_else(|| "0.0.0.0".into());
    let link = |kind| Arc::new(LinkConfig::new(kind));
    let listen = |port, kind| ListenSpec {
        bind: bind.clone(),
        port,
        link: link(kind),
        tls: None,
    };
    let dial = |address: String, kind| DialSpec {
        address,
        redial: true,
        link: link(kind),
        tls: None,
    };
    let mut backends = Vec::new();
    for port in args.tcp_listen {
        let (addr, task) = tcp_listen(&node, listen(port, LinkKind::Stream)).await?;
        info!("listening for TCP on {addr}");
        backends.push(task);
    }
    for port in args.udp_listen {
        let (addr, task) = udp_listen(&node, listen(port, LinkKind::Datagram)).await?;
        info!("listening for UDP on {addr}");
        backends.push(task);
    }
    for peer in args.tcp_peer {
        backends.push(tcp_dial(&node, dial(peer, LinkKind::Stream)));
    }
    for peer in args.udp_peer {
        backends.push(udp_dial(&node, dial(peer, LinkKind::Datagram)));
    }

    let _control = match &args.control {
        Some(path) => {
            let options = ControlOptions {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                connect_tls: Some(insecure_connect()),
            };
            let unix = serve_control_unix(&node, path, options.clone())?;
            info!("control service on {}", path.display());
            // As Go nodes do, also as the mesh service `control` (plain: ConnType 1).
            let tls = insecure_server_config(std::time::SystemTime::now())?;
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

/// `connect` dials plain (ConnType 1) mesh streams: this node has no `tls-client` configs.
/// (The insecure configs come from receptor-tokio until the TLS code lives in the core.)
fn insecure_connect() -> ConnectTls {
    Arc::new(|name, _target| {
        if let Some(name) = name {
            return Err(format!("unknown TLS config {name}"));
        }
        let tls = insecure_client_config().map_err(|e| e.to_string())?;
        let quic = client_config((*tls).clone()).map_err(|e| e.to_string())?;
        Ok((quic, "netceptor".to_owned()))
    })
}
