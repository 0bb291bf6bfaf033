//! The node task: one tokio task owns the [`Node`]; backends and applications (through
//! [`NodeHandle`](crate::NodeHandle)) talk to it through bounded channels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use receptor_core::{
    AppCommand, Apps, Channels, Event, Input, LinkConfig, LinkId, Node, NodeId, Transmit,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use receptor_core::stream::side::Output;

use crate::stream::{StreamCommand, StreamSide};

/// Frames queued per link before the node drops further ones (the peer is too slow).
pub(crate) const LINK_QUEUE: usize = 512;
pub(crate) const INBOUND_QUEUE: usize = 1024;
pub(crate) const COMMAND_QUEUE: usize = 256;
/// Inputs (or commands) the node task takes in one go before it flushes its outputs.
const DRAIN_BATCH: usize = 64;
/// Datagrams queued per local service before further ones are dropped.
pub const SERVICE_QUEUE: usize = 256;

/// How the node reaches one link's writer.
pub(crate) struct LinkTx {
    pub(crate) frames: mpsc::Sender<Transmit>,
    pub(crate) close: oneshot::Sender<()>,
    /// Set once the session completes its handshake: until then its reader holds at most
    /// one message's worth of buffer.
    pub(crate) established: Arc<AtomicBool>,
}

pub(crate) enum ToNode {
    LinkUp {
        link: LinkId,
        config: Arc<LinkConfig>,
        tx: LinkTx,
        peer: String,
    },
    Received {
        link: LinkId,
        data: Bytes,
    },
    LinkDown {
        link: LinkId,
    },
}

/// tokio's side of [`Channels`]: `oneshot` for answers, bounded `mpsc` (`try_send`) for feeds.
pub(crate) struct TokioChannels;

impl Channels for TokioChannels {
    type Reply<T> = oneshot::Sender<T>;
    type Feed<T> = mpsc::Sender<T>;

    fn reply<T>(tx: oneshot::Sender<T>, value: T) {
        let _ = tx.send(value);
    }

    fn feed<T>(tx: &mpsc::Sender<T>, value: T) {
        let _ = tx.try_send(value);
    }
}

/// A request from a handle to the node task.
pub(crate) enum Command {
    /// For the core's application bookkeeping.
    App(AppCommand<TokioChannels>),
    DisconnectAll,
    Shutdown,
    Stream(StreamCommand),
    Metrics(oneshot::Sender<crate::handle::Metrics>),
}

/// The runtime's clock, as the core takes it.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// A link as the node task knows it: its frame queue, close signal, peer (backend and
/// address, as `tcp 127.0.0.1:2222`) and handshake flag.
type LinkEntry = (
    mpsc::Sender<Transmit>,
    Option<oneshot::Sender<()>>,
    String,
    Arc<AtomicBool>,
);

/// State the node task keeps beside the node.
struct Driver {
    node: Node,
    streams: StreamSide,
    links: BTreeMap<LinkId, LinkEntry>,
    apps: Apps<TokioChannels>,
    dropped_frames: u64,
    /// Links that went down since the last flush, with their peers: the node's `PeerDown`
    /// for them comes after the entry left `links`, and the log names the peer.
    just_down: Vec<(LinkId, String)>,
    /// The routing table as last logged (destination -> next hop).
    logged_routes: BTreeMap<NodeId, NodeId>,
}

pub(crate) async fn run(
    node: Node,
    streams: StreamSide,
    mut commands: mpsc::Receiver<Command>,
    mut inbound: mpsc::Receiver<ToNode>,
    stopped: watch::Sender<Option<String>>,
) {
    let mut d = Driver {
        node,
        streams,
        links: BTreeMap::new(),
        apps: Apps::default(),
        dropped_frames: 0,
        just_down: Vec::new(),
        logged_routes: BTreeMap::new(),
    };
    let mut reason = None;
    loop {
        if let Some(r) = d.flush() {
            reason = Some(r);
            break;
        }
        if d.streams.is_closed() {
            break;
        }
        let closing = d.streams.is_closing();
        let deadline = d.streams.poll_timeout(&d.node);
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            msg = inbound.recv() => match msg {
                Some(m) => {
                    d.inbound(m);
                    // What else is queued is handled before the flush: the packets and
                    // writes of one wake-up then leave together, in fuller QUIC packets.
                    for _ in 1..DRAIN_BATCH {
                        let Ok(m) = inbound.try_recv() else { break };
                        d.inbound(m);
                    }
                }
                None => break,
            },
            // Once stopping, only links and timers move (the streams' closes go out).
            cmd = commands.recv(), if !closing => {
                let mut cmd = cmd;
                let mut n = 0;
                loop {
                    match cmd {
                        Some(Command::Shutdown) | None => {
                            // Streams first, then the node (the core's shutdown order).
                            d.streams.close(now());
                            break;
                        }
                        Some(c) => d.command(c),
                    }
                    n += 1;
                    if n == DRAIN_BATCH {
                        break;
                    }
                    match commands.try_recv() {
                        Ok(c) => cmd = Some(c),
                        Err(_) => break,
                    }
                }
            }
            () = sleep => d.streams.handle_timeout(&mut d.node, now()),
        }
    }
    d.streams.shut_down();
    // Dropping the link senders ends every writer; the readers are told to stop.
    for (_, (_, close, _, _)) in std::mem::take(&mut d.links) {
        if let Some(c) = close {
            let _ = c.send(());
        }
    }
    let _ = stopped.send(Some(reason.unwrap_or_default()));
}

impl Driver {
    fn inbound(&mut self, msg: ToNode) {
        let now = now();
        match msg {
            ToNode::LinkUp {
                link,
                config,
                tx,
                peer,
            } => {
                debug!(%link, %peer, "link up");
                self.links
                    .insert(link, (tx.frames, Some(tx.close), peer, tx.established));
                self.node.handle_input(now, Input::LinkUp { link, config });
            }
            ToNode::Received { link, data } => {
                self.node.handle_input(now, Input::Received { link, data });
            }
            ToNode::LinkDown { link } => {
                if let Some((_, _, peer, _)) = self.links.remove(&link) {
                    debug!(%link, %peer, "link down");
                    self.just_down.push((link, peer));
                }
                self.node.handle_input(now, Input::LinkDown { link });
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = now();
        match cmd {
            Command::App(c) => self.apps.command(&mut self.node, now, c),
            Command::DisconnectAll => self.node.disconnect_all(now),
            Command::Stream(c) => self.streams.command(&mut self.node, now, c),
            Command::Metrics(reply) => {
                let _ = reply.send(crate::handle::Metrics {
                    node: self.node.metrics(),
                    mesh_streams: self.streams.streams().len() as u64,
                    frames_dropped_queue_full: self.dropped_frames,
                });
            }
            Command::Shutdown => {}
        }
    }

    /// Drains the node's and the streams' outputs (the core's drain loop); returns a reason
    /// if the node stopped on its own.
    fn flush(&mut self) -> Option<String> {
        let now = now();
        let mut stop = None;
        while let Some(out) = self.streams.poll_output(&mut self.node, now) {
            match out {
                Output::Transmit(t) => self.transmit(t),
                Output::Event(ev) => {
                    if let Some(r) = self.event(ev) {
                        stop = Some(r);
                    }
                }
            }
        }
        self.just_down.clear();
        stop
    }

    /// The backend and address of `link`, also just after it went down.
    fn peer_of(&self, link: LinkId) -> &str {
        self.links
            .get(&link)
            .map(|(_, _, p, _)| p)
            .or_else(|| {
                self.just_down
                    .iter()
                    .find(|(l, _)| *l == link)
                    .map(|(_, p)| p)
            })
            .map_or("", String::as_str)
    }

    /// Logs what changed in the routing table since it was last logged: one line per change
    /// of routes, naming each destination gained or moved with its next hop, and each lost.
    fn log_routes(&mut self) {
        let routes = self.node.routes();
        let mut changes = Vec::new();
        for (dest, hop) in routes {
            if self.logged_routes.get(dest) != Some(hop) {
                changes.push(format!("{dest} via {hop}"));
            }
        }
        for dest in self.logged_routes.keys() {
            if !routes.contains_key(dest) {
                changes.push(format!("{dest} unreachable"));
            }
        }
        if !changes.is_empty() {
            info!("Routing table changed: {}", changes.join(", "));
            self.logged_routes = routes.clone();
        }
    }

    fn transmit(&mut self, t: Transmit) {
        if let Some((tx, _, _, _)) = self.links.get(&t.link)
            && tx.try_send(t).is_err()
        {
            // A full queue means a peer that does not keep up: drop, as a lossy link would.
            self.dropped_frames += 1;
        }
    }

    /// A node event the stream side passed on; returns a reason if the node stopped.
    fn event(&mut self, ev: Event) -> Option<String> {
        // Answers, datagrams and probe results go to the applications waiting for them.
        let ev = self.apps.event(ev)?;
        match ev {
            Event::CloseLink { link, reason } => {
                if let Some((_, close, peer, established)) = self.links.get_mut(&link) {
                    info!(%link, %peer, ?reason, "closing connection");
                    // A session refused by either side counts as never established, so
                    // its dialer backs off: the same peer would be refused again.
                    if reason.is_refusal() {
                        established.store(false, Ordering::Relaxed);
                    }
                    if let Some(c) = close.take() {
                        let _ = c.send(());
                    }
                }
            }
            Event::PeerDown { link, node } => {
                info!("Connection to {node} lost ({})", self.peer_of(link));
            }
            Event::PeerUp { link, node } => {
                if let Some((_, _, _, established)) = self.links.get(&link) {
                    established.store(true, Ordering::Relaxed);
                }
                // Go's words, with the backend and address after them.
                info!(
                    "Connection established with {node} ({})",
                    self.peer_of(link)
                );
            }
            Event::RoutesChanged => self.log_routes(),
            Event::Shutdown { reason } => {
                warn!("{reason}");
                return Some(reason);
            }
            _ => {}
        }
        None
    }
}
