//! The application's side of a node: [`NodeHandle`], what it returns, and [`spawn_node`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use bytes::Bytes;
use receptor_core::{
    Advertise, AppCommand, Config, LinkId, ListenError, MeshStatus, Node, NodeId, PingResult,
    SendError, ServiceEvent, ServiceName, TraceEvent, Unanswered,
};

use crate::apps::{Command, SmolChannels};
use crate::driver::{self, COMMAND_QUEUE, INBOUND_QUEUE, ToNode};
use crate::stream::{SmolPorts, StreamSide};

/// Datagrams queued per local service before further ones are dropped.
pub const SERVICE_QUEUE: usize = 256;
/// Traceroute events queued before further ones are dropped (more than `max_hops` + 1).
const TRACE_QUEUE: usize = 64;

/// The node has stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct NodeGone;

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    id: NodeId,
    pub(crate) commands: Sender<Command>,
    pub(crate) inbound: Sender<ToNode>,
    next_link: Arc<AtomicU64>,
    executor: Arc<Executor<'static>>,
    /// Never carries a message: it closes when the node task ends.
    done: Receiver<()>,
    /// Why the node stopped; empty when it was asked to.
    reason: Arc<OnceLock<String>>,
}

/// The executor behind [`spawn_node`]: one background thread, as `smol::spawn` has by default.
/// One thread is enough: a single task owns the node, and link tasks only move bytes.
fn global_executor() -> &'static Arc<Executor<'static>> {
    static GLOBAL: OnceLock<Arc<Executor<'static>>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let ex = Arc::new(Executor::new());
        let run = ex.clone();
        std::thread::Builder::new()
            .name("receptor-smol".into())
            .spawn(move || {
                loop {
                    // Tasks' panics reach whoever awaits them; keep the thread alive anyway.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        async_io::block_on(run.run(std::future::pending::<()>()))
                    }));
                }
            })
            .expect("cannot spawn the receptor-smol executor thread");
        ex
    })
}

/// Starts the node task on this crate's global executor (one background thread, started on
/// first use). Backends started through the handle run there too.
pub fn spawn_node(config: Arc<Config>) -> Result<NodeHandle, receptor_core::ConfigError> {
    spawn_node_on(global_executor().clone(), config)
}

/// Starts the node task on `executor`, which the caller runs (e.g. `block_on(ex.run(..))`).
/// Backends started through the handle run there too. Keep running the executor past
/// [`NodeHandle::stopped`]: link and backend tasks end just after the node task, and until
/// they do they hold their sockets and the executor's `Arc`.
pub fn spawn_node_on(
    executor: Arc<Executor<'static>>,
    config: Arc<Config>,
) -> Result<NodeHandle, receptor_core::ConfigError> {
    let id = config.node_id.clone();
    let seed = config.stream_rng_seed();
    let node = Node::new(config, driver::now())?;
    let (commands, cmd_rx) = async_channel::bounded(COMMAND_QUEUE);
    let (inbound, in_rx) = async_channel::bounded(INBOUND_QUEUE);
    let (done_tx, done) = async_channel::bounded(1);
    let reason = Arc::new(OnceLock::new());
    let streams = StreamSide::new(seed, SmolPorts::new(&commands, executor.clone()));
    let task = driver::run(node, streams, cmd_rx, in_rx, reason.clone(), done_tx);
    executor.spawn(task).detach();
    Ok(NodeHandle {
        id,
        commands,
        inbound,
        next_link: Arc::new(AtomicU64::new(1)),
        executor,
        done,
        reason,
    })
}

/// A channel for exactly one answer.
fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    async_channel::bounded(1)
}

impl NodeHandle {
    /// This node's ID.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub(crate) fn new_link(&self) -> LinkId {
        LinkId(self.next_link.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `future` on the node's executor.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.executor.spawn(future)
    }

    /// Sends an application request and waits for its one answer.
    async fn call<T>(
        &self,
        make: impl FnOnce(Sender<T>) -> AppCommand<SmolChannels>,
    ) -> Result<T, NodeGone> {
        let (tx, rx) = oneshot();
        let cmd = Command::App(make(tx));
        self.commands.send(cmd).await.map_err(|_| NodeGone)?;
        rx.recv().await.map_err(|_| NodeGone)
    }

    /// Sends an application request whose answer, if the node stopped first, is
    /// [`Unanswered::node_stopped`].
    async fn ask<T: Unanswered>(
        &self,
        make: impl FnOnce(Sender<T>) -> AppCommand<SmolChannels>,
    ) -> T {
        self.call(make)
            .await
            .unwrap_or_else(|NodeGone| T::node_stopped())
    }

    /// Sends an application request that has no answer.
    async fn post(&self, cmd: AppCommand<SmolChannels>) -> Result<(), NodeGone> {
        self.commands
            .send(Command::App(cmd))
            .await
            .map_err(|_| NodeGone)
    }

    /// The node's mesh state.
    pub async fn status(&self) -> Result<MeshStatus, NodeGone> {
        self.call(AppCommand::Status).await
    }

    /// Pings a node (10 s timeout, as Go).
    pub async fn ping(&self, target: &str) -> Result<Result<PingResult, SendError>, NodeGone> {
        self.call(|tx| AppCommand::ping(target, tx)).await
    }

    /// Traceroute to a node: hop events, then `Done`.
    pub async fn traceroute(&self, target: &str) -> Result<Receiver<TraceEvent>, NodeGone> {
        let (tx, rx) = async_channel::bounded(TRACE_QUEUE);
        self.post(AppCommand::traceroute(target, tx)).await?;
        Ok(rx)
    }

    /// Binds a service (ephemeral when `None`); datagrams and notices for it arrive on the
    /// returned receiver. A stopped node reports `InUse` (the core has no "shut down" case).
    pub async fn listen(
        &self,
        service: Option<&str>,
        advertise: Option<Advertise>,
    ) -> Result<(ServiceName, Receiver<ServiceEvent>), ListenError> {
        let (deliver, rx) = async_channel::bounded(SERVICE_QUEUE);
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

    /// Closes every link; the node keeps running, and dialers with `redial` dial again (Go's
    /// `reload` drops all backends this way before starting them anew).
    pub async fn disconnect_all(&self) {
        let _ = self.commands.send(Command::DisconnectAll).await;
    }

    /// Asks the node to stop; every link closes.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// Waits until the node stops; returns why, if it stopped on its own (duplicate node ID).
    pub async fn stopped(&self) -> Option<String> {
        // Nothing is ever sent: `recv` returns when the node task drops the sender.
        let _ = self.done.recv().await;
        self.reason.get().cloned().filter(|r| !r.is_empty())
    }
}
