//! The node task: one tokio task owns the [`Node`]; backends and applications talk to it
//! through bounded channels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use receptor_core::{
    Advertise, AppCommand, Apps, Channels, Config, Event, Input, LinkConfig, LinkId, ListenError,
    MeshStatus, Node, NodeId, PingResult, SendError, ServiceEvent, ServiceName, TraceEvent,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::stream::{StreamCommand, StreamSide};

/// Frames queued per link before the node drops further ones (the peer is too slow).
pub(crate) const LINK_QUEUE: usize = 512;
const INBOUND_QUEUE: usize = 1024;
const COMMAND_QUEUE: usize = 256;
/// Inputs (or commands) the node task takes in one go before it flushes its outputs.
const DRAIN_BATCH: usize = 64;
/// Datagrams queued per local service before further ones are dropped.
pub const SERVICE_QUEUE: usize = 256;

/// How the node reaches one link's writer.
pub(crate) struct LinkTx {
    pub(crate) frames: mpsc::Sender<Bytes>,
    pub(crate) close: oneshot::Sender<()>,
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
}

/// The node has stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct NodeGone;

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    id: NodeId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) inbound: mpsc::Sender<ToNode>,
    next_link: Arc<AtomicU64>,
    stopped: watch::Receiver<Option<String>>,
}

/// Starts the node task on the current tokio runtime.
pub fn spawn_node(config: Arc<Config>) -> Result<NodeHandle, receptor_core::ConfigError> {
    let id = config.node_id.clone();
    let seed = config.rng_seed.rotate_left(17) ^ id.hash();
    let node = Node::new(config, now())?;
    let (commands, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (inbound, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let (stop_tx, stopped) = watch::channel(None);
    let streams = StreamSide::new(seed, commands.downgrade());
    tokio::spawn(run(node, streams, cmd_rx, in_rx, stop_tx));
    Ok(NodeHandle {
        id,
        commands,
        inbound,
        next_link: Arc::new(AtomicU64::new(1)),
        stopped,
    })
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl NodeHandle {
    /// This node's ID.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub(crate) fn new_link(&self) -> LinkId {
        LinkId(self.next_link.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends an application request and waits for its one answer.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> AppCommand<TokioChannels>,
    ) -> Result<T, NodeGone> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::App(make(tx));
        self.commands.send(cmd).await.map_err(|_| NodeGone)?;
        rx.await.map_err(|_| NodeGone)
    }

    /// The node's mesh state.
    pub async fn status(&self) -> Result<MeshStatus, NodeGone> {
        self.call(AppCommand::Status).await
    }

    /// Pings a node (10 s timeout, as Go).
    pub async fn ping(&self, target: &str) -> Result<Result<PingResult, SendError>, NodeGone> {
        let target = target.to_owned();
        self.call(|tx| AppCommand::Ping(target, tx)).await
    }

    /// Traceroute to a node: hop events, then `Done`.
    pub async fn traceroute(&self, target: &str) -> Result<mpsc::Receiver<TraceEvent>, NodeGone> {
        let (tx, rx) = mpsc::channel(64);
        self.commands
            .send(Command::App(AppCommand::Traceroute(target.to_owned(), tx)))
            .await
            .map_err(|_| NodeGone)?;
        Ok(rx)
    }

    /// Binds a service (ephemeral when `None`); datagrams and notices for it arrive on the
    /// returned receiver.
    pub async fn listen(
        &self,
        service: Option<&str>,
        advertise: Option<Advertise>,
    ) -> Result<(ServiceName, mpsc::Receiver<ServiceEvent>), ListenError> {
        let (deliver, rx) = mpsc::channel(SERVICE_QUEUE);
        let service = service.map(str::to_owned);
        let r = self
            .call(|reply| AppCommand::Listen {
                service,
                advertise,
                deliver,
                reply,
            })
            .await;
        match r {
            Ok(Ok(name)) => Ok((name, rx)),
            Ok(Err(e)) => Err(e),
            Err(NodeGone) => Err(ListenError::InUse(ServiceName::default())),
        }
    }

    /// Unbinds a service.
    pub async fn unlisten(&self, service: ServiceName) {
        let _ = self
            .commands
            .send(Command::App(AppCommand::Unlisten(service)))
            .await;
    }

    /// Sends a datagram from a local service.
    pub async fn send_to(
        &self,
        from: ServiceName,
        to_node: &str,
        to_service: ServiceName,
        payload: Bytes,
    ) -> Result<(), SendError> {
        let to_node = to_node.to_owned();
        self.call(|reply| AppCommand::Send {
            from,
            to_node,
            to_service,
            payload,
            reply,
        })
        .await
        .unwrap_or(Err(SendError::ShutDown))
    }

    /// Closes every link; the node keeps running (for `reload`).
    pub async fn disconnect_all(&self) {
        let _ = self.commands.send(Command::DisconnectAll).await;
    }

    /// Asks the node to stop; every link closes.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// Waits until the node stops; returns why, if it stopped on its own (duplicate node ID).
    pub async fn stopped(&self) -> Option<String> {
        let mut rx = self.stopped.clone();
        loop {
            if let Some(reason) = rx.borrow().clone() {
                return Some(reason).filter(|r| !r.is_empty());
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// A link as the node task knows it: its frame queue, close signal and peer address.
type LinkEntry = (mpsc::Sender<Bytes>, Option<oneshot::Sender<()>>, String);

/// State the node task keeps beside the node.
struct Driver {
    node: Node,
    streams: StreamSide,
    links: BTreeMap<LinkId, LinkEntry>,
    apps: Apps<TokioChannels>,
    dropped_frames: u64,
}

async fn run(
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
    };
    let mut reason = None;
    'run: loop {
        if let Some(r) = d.flush() {
            reason = Some(r);
            break;
        }
        let deadline = [d.node.poll_timeout(), d.streams.streams.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
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
            cmd = commands.recv() => {
                let mut cmd = cmd;
                let mut n = 0;
                loop {
                    match cmd {
                        Some(Command::Shutdown) | None => {
                            d.node.close(now());
                            let _ = d.flush();
                            break 'run;
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
            () = sleep => {
                let now = now();
                d.node.handle_input(now, Input::Timeout);
                d.streams.streams.handle_timeout(now);
            }
        }
    }
    d.streams.shut_down();
    // Dropping the link senders ends every writer; the readers are told to stop.
    for (_, (_, close, _)) in std::mem::take(&mut d.links) {
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
                self.links.insert(link, (tx.frames, Some(tx.close), peer));
                self.node.handle_input(now, Input::LinkUp { link, config });
            }
            ToNode::Received { link, data } => {
                self.node.handle_input(now, Input::Received { link, data });
            }
            ToNode::LinkDown { link } => {
                self.links.remove(&link);
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
            Command::Shutdown => {}
        }
    }

    /// Drains the node's outputs; returns a reason if the node stopped on its own.
    fn flush(&mut self) -> Option<String> {
        loop {
            let stop = self.flush_node();
            if stop.is_some() {
                return stop;
            }
            if !self.streams.pump(&mut self.node, now()) {
                return None;
            }
        }
    }

    /// Drains the node's own outputs once.
    fn flush_node(&mut self) -> Option<String> {
        let now = now();
        while let Some(t) = self.node.poll_transmit() {
            if let Some((tx, _, _)) = self.links.get(&t.link)
                && tx.try_send(t.frame).is_err()
            {
                // A full queue means a peer that does not keep up: drop, as a lossy link would.
                self.dropped_frames += 1;
            }
        }
        let mut stop = None;
        while let Some(ev) = self.node.poll_event() {
            match ev {
                Event::Datagram {
                    service,
                    from,
                    payload,
                } if self.streams.owns(service) => {
                    self.streams
                        .streams
                        .handle_datagram(now, service, from, payload);
                }
                Event::Unreachable {
                    service, notice, ..
                } if self.streams.owns(service) => {
                    let s = &mut self.streams.streams;
                    s.handle_unreachable(
                        service,
                        &notice.to_node,
                        &notice.to_service,
                        &notice.problem,
                    );
                }
                Event::CloseLink { link, reason } => {
                    if let Some((_, close, peer)) = self.links.get_mut(&link) {
                        info!(%link, %peer, ?reason, "closing connection");
                        if let Some(c) = close.take() {
                            let _ = c.send(());
                        }
                    }
                }
                Event::PeerDown { link, node } => {
                    info!(%link, "Connection to {node} lost");
                }
                Event::PeerUp { link, node } => {
                    info!(%link, "Connection established with {node}");
                }
                Event::RoutesChanged => {
                    debug!(routes = ?self.node.routes(), "routing table changed");
                }
                Event::Shutdown { reason } => {
                    warn!("{reason}");
                    stop = Some(reason);
                }
                ev => {
                    // Link and routing events are all handled above.
                    let _ = self.apps.event(ev);
                }
            }
        }
        stop
    }
}
