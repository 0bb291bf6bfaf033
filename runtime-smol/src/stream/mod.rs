//! Mesh streams on smol: [`MeshStream`] (futures-io `AsyncRead` + `AsyncWrite`) over the
//! core's QUIC layer, [`StreamListener`], and [`NodeHandle::dial`] /
//! [`NodeHandle::listen_stream`].
//!
//! Back-pressure holds end to end, with no unbounded buffer: a writer takes credit before it
//! hands bytes to the node task, which gives the credit back only when QUIC has taken them;
//! the node task reads from QUIC only while the reader's queue has room, and the reader
//! tells it to go on when the queue has drained. A slow reader therefore fills QUIC's flow
//! control window, which stops the peer's node task taking bytes, which stops its writer.

mod mesh;
mod shared;
mod side;

use std::sync::Arc;

use async_channel::{Receiver, Sender, TrySendError};
use async_executor::Executor;
use receptor_core::stream::quinn_proto::ClientConfig;
use receptor_core::stream::{ACCEPT_QUEUE, DialFailure, ServerTls};
use receptor_core::{Advertise, ServiceName};

use crate::apps::Command;
use crate::handle::NodeHandle;

pub use mesh::MeshStream;
pub(crate) use side::{SmolPorts, StreamSide};

/// What handles and streams ask of the node task's stream side.
pub(crate) type StreamCommand = receptor_core::stream::side::StreamCommand<SmolPorts>;

/// How a stream reaches the node task from where it cannot wait (`Drop`, a reader's resume):
/// `try_send`, or when the command queue is full, a task that waits for room. Each such
/// task carries one command that the stream sends at most once per pause or per life.
#[derive(Clone)]
pub(crate) struct Mailbox {
    pub(crate) commands: Sender<Command>,
    pub(crate) executor: Arc<Executor<'static>>,
}

impl Mailbox {
    pub(crate) fn post(&self, cmd: StreamCommand) {
        if let Err(TrySendError::Full(cmd)) = self.commands.try_send(Command::Stream(cmd)) {
            let commands = self.commands.clone();
            self.executor
                .spawn(async move { drop(commands.send(cmd).await) })
                .detach();
        }
    }
}

const NODE_GONE: &str = "the node has stopped";

/// Streams accepted on a listening mesh service. While it lives it keeps the node running,
/// as a [`NodeHandle`] does. Dropping it refuses further streams; the service stays bound.
pub struct StreamListener {
    service: ServiceName,
    rx: Receiver<MeshStream>,
    /// Only keeps the node task's command queue open.
    _node: Sender<Command>,
}

impl std::fmt::Debug for StreamListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamListener")
            .field("service", &self.service)
            .finish()
    }
}

impl StreamListener {
    /// The service listened on.
    pub fn service(&self) -> ServiceName {
        self.service
    }

    /// The next accepted stream; `None` once the node stops.
    pub async fn accept(&self) -> Option<MeshStream> {
        self.rx.recv().await.ok()
    }
}

impl NodeHandle {
    /// Opens a stream to `service` on `node` (`localhost` is this node), with the QUIC
    /// client TLS given (the insecure config for ConnType 1 services, a user config for
    /// ConnType 2). Fails fast with `service unknown` when nothing listens there.
    pub async fn dial(
        &self,
        node: &str,
        service: &str,
        tls: ClientConfig,
        server_name: &str,
    ) -> Result<MeshStream, DialFailure> {
        let (reply, rx) = async_channel::bounded(1);
        let cmd = StreamCommand::dial(node, service, tls, server_name, reply);
        let sent = self.commands.send(Command::Stream(cmd)).await;
        sent.map_err(|_| DialFailure::NodeStopped)?;
        rx.recv().await.map_err(|_| DialFailure::NodeStopped)?
    }

    /// Listens for streams on `service`, optionally advertising it.
    pub async fn listen_stream(
        &self,
        service: &str,
        tls: ServerTls,
        advertise: Option<Advertise>,
    ) -> Result<StreamListener, String> {
        let (reply, rx) = async_channel::bounded(1);
        let (accept, accepted) = async_channel::bounded(ACCEPT_QUEUE);
        let cmd = StreamCommand::listen(service, tls, advertise, accept, reply);
        let sent = self.commands.send(Command::Stream(cmd)).await;
        sent.map_err(|_| NODE_GONE.to_owned())?;
        let bound = rx.recv().await.map_err(|_| NODE_GONE.to_owned())?;
        Ok(StreamListener {
            service: bound.map_err(|e| e.to_string())?,
            rx: accepted,
            _node: self.commands.clone(),
        })
    }
}
