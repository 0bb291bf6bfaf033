//! The application's side of a node: [`NodeHandle`], what it returns, and [`spawn_node`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use receptor_core::{
    Advertise, AppCommand, Config, LinkId, ListenError, MeshStatus, Node, NodeId, NodeMetrics,
    PingResult, SendError, ServiceEvent, ServiceName, TraceEvent, Unanswered,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{
    COMMAND_QUEUE, Command, INBOUND_QUEUE, SERVICE_QUEUE, ToNode, TokioChannels, now, run,
};
use crate::stream::{StreamSide, TokioPorts};

/// The node has stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct NodeGone;

/// What a metrics scrape reads from the node task: the node's own numbers and the driver's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// The core node's counters and sizes.
    pub node: NodeMetrics,
    /// Mesh streams (QUIC connections over the mesh) open on this node.
    pub mesh_streams: u64,
    /// Frames dropped because a link's write queue was full (a peer that does not keep up).
    pub frames_dropped_queue_full: u64,
}

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
    let seed = config.stream_rng_seed();
    let node = Node::new(config, now())?;
    let (commands, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (inbound, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let (stop_tx, stopped) = watch::channel(None);
    let streams = StreamSide::new(seed, TokioPorts::new(commands.downgrade()));
    tokio::spawn(run(node, streams, cmd_rx, in_rx, stop_tx));
    Ok(NodeHandle {
        id,
        commands,
        inbound,
        next_link: Arc::new(AtomicU64::new(1)),
        stopped,
    })
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

    /// Sends an application request whose answer, if the node stopped first, is
    /// [`Unanswered::node_stopped`].
    async fn ask<T: Unanswered>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> AppCommand<TokioChannels>,
    ) -> T {
        self.call(make)
            .await
            .unwrap_or_else(|NodeGone| T::node_stopped())
    }

    /// Sends an application request that has no answer.
    async fn post(&self, cmd: AppCommand<TokioChannels>) -> Result<(), NodeGone> {
        self.commands
            .send(Command::App(cmd))
            .await
            .map_err(|_| NodeGone)
    }

    /// The node's mesh state.
    pub async fn status(&self) -> Result<MeshStatus, NodeGone> {
        self.call(AppCommand::Status).await
    }

    /// Counters for a metrics scrape.
    pub async fn metrics(&self) -> Result<Metrics, NodeGone> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Metrics(tx))
            .await
            .map_err(|_| NodeGone)?;
        rx.await.map_err(|_| NodeGone)
    }

    /// Pings a node (10 s timeout, as Go).
    pub async fn ping(&self, target: &str) -> Result<Result<PingResult, SendError>, NodeGone> {
        self.call(|tx| AppCommand::ping(target, tx)).await
    }

    /// Traceroute to a node: hop events, then `Done`.
    pub async fn traceroute(&self, target: &str) -> Result<mpsc::Receiver<TraceEvent>, NodeGone> {
        let (tx, rx) = mpsc::channel(64);
        self.post(AppCommand::traceroute(target, tx)).await?;
        Ok(rx)
    }

    /// Binds a service (ephemeral when `None`); datagrams and notices for it arrive on the
    /// returned receiver. A stopped node reports `InUse` (the core has no "shut down" case).
    pub async fn listen(
        &self,
        service: Option<&str>,
        advertise: Option<Advertise>,
    ) -> Result<(ServiceName, mpsc::Receiver<ServiceEvent>), ListenError> {
        let (deliver, rx) = mpsc::channel(SERVICE_QUEUE);
        let listen = |reply| AppCommand::listen(service, advertise, deliver, reply);
        Ok((self.ask(listen).await?, rx))
    }

    /// Unbinds a service.
    pub async fn unlisten(&self, service: ServiceName) {
        let _ = self.post(AppCommand::Unlisten(service)).await;
    }

    /// Sends a datagram from a local service.
    pub async fn send_to(
        &self,
        from: ServiceName,
        to_node: &str,
        to_service: ServiceName,
        payload: Bytes,
    ) -> Result<(), SendError> {
        self.ask(|reply| AppCommand::send(from, to_node, to_service, payload, reply))
            .await
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
