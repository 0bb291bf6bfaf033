//! smol's ports for the core's stream glue ([`receptor_core::stream::side`]): how the node
//! task makes the application's ends of streams and hands them over.

use std::sync::Arc;

use async_channel::{Sender, WeakSender};
use async_executor::Executor;
use bytes::Bytes;
use receptor_core::Addr;
use receptor_core::stream::StreamHandle;
use receptor_core::stream::app::AppEnd;
use receptor_core::stream::side::{self, StreamPorts};

use super::Mailbox;
use super::mesh::MeshStream;
use super::shared::Shared;
use crate::apps::{Command, SmolChannels};

/// Bytes a writer may have handed to the node task beyond what QUIC has taken.
const WRITE_CREDIT: usize = 1 << 20;

/// How the node task reaches one [`MeshStream`]: the buffer and credit they share.
pub(crate) struct SmolEnd(Arc<Shared>);

impl AppEnd for SmolEnd {
    fn room(&mut self) -> bool {
        self.0.room()
    }

    fn push(&mut self, data: Bytes) {
        self.0.push(data);
    }

    fn end(&mut self, error: Option<String>) {
        self.0.end_reads(error);
    }

    fn add_credit(&mut self, n: usize) {
        self.0.add_credit(n);
    }

    fn fail_writes(&mut self, why: &str) {
        self.0.fail_writes(why);
    }

    fn acked(&mut self) {
        self.0.acked();
    }
}

/// smol's side of the glue: bounded `async_channel`s to streams and listeners.
pub(crate) struct SmolPorts {
    /// Weak, so that the node task does not keep its own command queue open: it ends when
    /// every handle, listener and stream is gone.
    commands: WeakSender<Command>,
    executor: Arc<Executor<'static>>,
}

impl SmolPorts {
    pub(crate) fn new(commands: &Sender<Command>, executor: Arc<Executor<'static>>) -> Self {
        Self {
            commands: commands.downgrade(),
            executor,
        }
    }
}

impl StreamPorts for SmolPorts {
    type Channels = SmolChannels;
    type End = SmolEnd;
    type Stream = MeshStream;
    type Accept = Sender<MeshStream>;

    /// `None` when the node is on its way out (no handle left to keep its queue open).
    fn open(&mut self, id: StreamHandle, remote: Option<&Addr>) -> Option<(SmolEnd, MeshStream)> {
        let commands = self.commands.upgrade()?;
        let shared = Arc::new(Shared::new(WRITE_CREDIT));
        let mailbox = Mailbox {
            commands,
            executor: self.executor.clone(),
        };
        let stream = MeshStream::new(id, remote.cloned(), mailbox, shared.clone());
        Some((SmolEnd(shared), stream))
    }

    fn offer(&mut self, accept: &Self::Accept, stream: MeshStream) -> bool {
        accept.try_send(stream).is_ok()
    }
}

/// The stream half of the node task: the core's glue with smol's ports.
pub(crate) type StreamSide = side::StreamSide<SmolPorts>;
