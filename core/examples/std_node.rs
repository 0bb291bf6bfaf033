//! A mesh node on the core alone: std::net sockets, plain threads and one loop, no async
//! runtime. It answers pings (the core does) and prints its connections and routes.
//!
//! ```text
//! cargo run -p receptor-core --example std_node -- --id a --tcp-listen 127.0.0.1:7323
//! cargo run -p receptor-core --example std_node -- --id b --tcp-peer 127.0.0.1:7323
//! ```
//!
//! One thread owns the [`Node`]. Each connection has a reader thread that hands its bytes to
//! the node thread over a channel (the core deframes the TCP byte stream itself); the node
//! thread writes frames to the sockets and waits on the channel until the node's next timer.

// This is the edge the core's lints keep clocks and threads out of: here they belong.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use receptor_core::backoff::Backoff;
use receptor_core::{Config, Event, Input, LinkConfig, LinkId, LinkKind, Node, NodeId};

const USAGE: &str =
    "usage: std_node --id ID [--tcp-listen ADDR] [--tcp-peer ADDR]   (listen/peer flags repeat)";

/// A peer that stops reading for this long loses its connection (writes block the node
/// thread, so they must not block for ever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the socket threads tell the node thread.
enum Msg {
    /// A connection opened; the stream is the node thread's writing side.
    Up(LinkId, TcpStream, String),
    Data(LinkId, Bytes),
    Down(LinkId),
}

struct Args {
    id: String,
    listen: Vec<String>,
    peers: Vec<String>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        id: String::new(),
        listen: Vec::new(),
        peers: Vec::new(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--id" => a.id = value,
            "--tcp-listen" => a.listen.push(value),
            "--tcp-peer" => a.peers.push(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.id.is_empty() {
        return Err("--id is required".into());
    }
    Ok(a)
}

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let args = parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    });
    if let Err(e) = run(args) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

/// A random u64 from the standard library's per-process hash keys.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let config = Config::new(NodeId::new(&args.id)?, random_u64(), wall);
    let node = Node::new(Arc::new(config), Instant::now())?;
    let (tx, rx) = channel();
    let ids = Arc::new(AtomicU64::new(0));
    for addr in &args.listen {
        let listener = TcpListener::bind(addr).map_err(|e| format!("--tcp-listen {addr}: {e}"))?;
        println!("listening on {}", listener.local_addr()?);
        let (tx, ids) = (tx.clone(), ids.clone());
        thread::spawn(move || accept(listener, &tx, &ids));
    }
    for addr in args.peers {
        let (tx, ids) = (tx.clone(), ids.clone());
        thread::spawn(move || dial(&addr, &tx, &ids));
    }
    drive(node, &rx);
    Ok(())
}

/// Accepts connections for ever, one reader thread each.
fn accept(listener: TcpListener, tx: &Sender<Msg>, ids: &AtomicU64) {
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let (tx, link) = (tx.clone(), LinkId(ids.fetch_add(1, Ordering::Relaxed)));
                thread::spawn(move || session(s, link, &tx));
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
}

/// Dials `addr`, runs the session, and redials with the core's backoff when it ends.
fn dial(addr: &str, tx: &Sender<Msg>, ids: &AtomicU64) {
    let mut backoff = Backoff::default();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                backoff.reset();
                session(s, LinkId(ids.fetch_add(1, Ordering::Relaxed)), tx);
                println!("connection to {addr} closed");
            }
            Err(e) => eprintln!("connection to {addr} failed: {e}"),
        }
        thread::sleep(backoff.next_delay(random_u64()));
    }
}

/// Reads one connection until it ends, handing every chunk to the node thread as it comes.
fn session(stream: TcpStream, link: LinkId, tx: &Sender<Msg>) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let writer = match stream.try_clone() {
        Ok(w) if w.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok() => w,
        _ => return,
    };
    // TCP_NODELAY: the core's frames are small and latency matters (pings, handshakes).
    let _ = stream.set_nodelay(true);
    if tx.send(Msg::Up(link, writer, peer)).is_err() {
        return;
    }
    let mut stream = stream;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                if tx.send(Msg::Data(link, data)).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Msg::Down(link));
}

/// The node thread: feeds the node what the sockets send, writes what it wants written,
/// and wakes it when its next timer is due.
fn drive(mut node: Node, rx: &Receiver<Msg>) {
    let config = Arc::new(LinkConfig::new(LinkKind::Stream));
    let mut links: BTreeMap<LinkId, (TcpStream, String)> = BTreeMap::new();
    loop {
        // Outputs first: the transmits, then the events (a CloseLink comes after the frames
        // queued for that link, such as a reject).
        while let Some(t) = node.poll_transmit() {
            if let Some((s, _)) = links.get_mut(&t.link)
                && (s.write_all(&t.frame).is_err() || s.write_all(&t.tail).is_err())
            {
                // The reader sees the shutdown and reports the link down.
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        while let Some(ev) = node.poll_event() {
            match ev {
                Event::PeerUp { link, node: peer } => {
                    let addr = links.get(&link).map_or("", |(_, a)| a.as_str());
                    println!("connection established with {peer} ({addr})");
                }
                Event::PeerDown { node: peer, .. } => println!("connection to {peer} lost"),
                Event::CloseLink { link, reason } => {
                    if let Some((s, addr)) = links.get(&link) {
                        println!("closing connection to {addr}: {reason:?}");
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
                Event::RoutesChanged => {
                    let routes: Vec<String> = node
                        .routes()
                        .iter()
                        .map(|(dest, hop)| format!("{dest} via {hop}"))
                        .collect();
                    if routes.is_empty() {
                        println!("routes: none");
                    } else {
                        println!("routes: {}", routes.join(", "));
                    }
                }
                Event::Shutdown { reason } => {
                    eprintln!("{reason}");
                    std::process::exit(1);
                }
                // No services bound and no pings sent here: nothing else comes.
                _ => {}
            }
        }
        let msg = match node.poll_timeout() {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
        };
        let now = Instant::now();
        let input = match msg {
            None => Input::Timeout,
            Some(Msg::Up(link, stream, addr)) => {
                links.insert(link, (stream, addr));
                Input::LinkUp {
                    link,
                    config: config.clone(),
                }
            }
            Some(Msg::Data(link, data)) => Input::Received { link, data },
            Some(Msg::Down(link)) => {
                links.remove(&link);
                Input::LinkDown { link }
            }
        };
        node.handle_input(now, input);
        // A busy channel never times out: run timers that fell due meanwhile.
        if node.poll_timeout().is_some_and(|at| at <= now) {
            node.handle_input(now, Input::Timeout);
        }
    }
}
