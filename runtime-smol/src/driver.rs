//! The node task: one task owns the [`Node`]; link tasks and applications talk to it through
//! bounded channels, and it never waits on either of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use bytes::Bytes;
use futures_lite::future;
use receptor_core::{Apps, Event, Input, LinkConfig, LinkId, Node, Transmit};
use tracing::{debug, info, warn};

use crate::apps::{Command, SmolChannels};
use receptor_core::stream::side::Output;

use crate::stream::StreamSide;

/// Frames queued per link before the node drops further ones (the peer is too slow).
pub(crate) const LINK_QUEUE: usize = 512;
/// Messages from all link tasks to the node task; a full queue slows the readers down.
pub(crate) const INBOUND_QUEUE: usize = 1024;
/// Commands from handles to the node task.
pub(crate) const COMMAND_QUEUE: usize = 256;

/// The runtime's clock; the core never reads one.
pub(crate) fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// What link tasks tell the node task.
pub(crate) enum ToNode {
    LinkUp {
        link: LinkId,
        config: Arc<LinkConfig>,
        entry: LinkEntry,
    },
    Received {
        link: LinkId,
        data: Bytes,
    },
    LinkDown {
        link: LinkId,
    },
}

/// A link as the node task knows it.
pub(crate) struct LinkEntry {
    /// The link's frame queue, drained by its writer task; dropping it ends the writer.
    pub(crate) frames: Sender<Transmit>,
    /// Sending on it, or dropping it, makes the reader end the session.
    pub(crate) close: Option<Sender<()>>,
    /// The remote address, for logs.
    pub(crate) peer: String,
    /// Set when the session completes its handshake, cleared when either side refuses it:
    /// what the session's dialer learns (a refused dial backs off further).
    pub(crate) established: Arc<AtomicBool>,
}

/// State the node task keeps beside the node.
struct Driver {
    links: BTreeMap<LinkId, LinkEntry>,
    apps: Apps<SmolChannels>,
    streams: StreamSide,
    dropped_frames: u64,
}

enum Wake {
    Inbound(Option<ToNode>),
    Command(Option<Command>),
    Timeout,
}

/// The node task. Ends on `Shutdown`, when every handle, stream listener and stream is
/// gone, or when the node stops on its own; then `reason` is set and `_done` dropped, which
/// wakes `NodeHandle::stopped`.
pub(crate) async fn run(
    mut node: Node,
    streams: StreamSide,
    commands: Receiver<Command>,
    inbound: Receiver<ToNode>,
    reason: Arc<OnceLock<String>>,
    _done: Sender<()>,
) {
    let mut d = Driver {
        links: BTreeMap::new(),
        apps: Apps::default(),
        streams,
        dropped_frames: 0,
    };
    let stop = loop {
        if let Some(r) = d.flush(&mut node) {
            break r;
        }
        if d.streams.is_closed() {
            break String::new();
        }
        // Once stopping, only links and timers move (the streams' closes go out).
        let closing = d.streams.is_closing();
        // Due timers first, so that a busy link cannot hold back route updates and
        // keepalives (smol has no cooperative budget to break up a stream of ready inputs).
        let deadline = d.streams.poll_timeout(&node);
        if deadline.is_some_and(|at| at <= now()) {
            d.streams.handle_timeout(&mut node, now());
            continue;
        }
        let timer = deadline.map_or_else(Timer::never, Timer::at);
        // Inputs and commands by a fair coin when both are ready: neither starves the other.
        let wake = future::or(
            future::race(
                async {
                    match inbound.recv().await {
                        Err(_) if closing => future::pending().await,
                        r => Wake::Inbound(r.ok()),
                    }
                },
                async {
                    if closing {
                        future::pending().await
                    } else {
                        Wake::Command(commands.recv().await.ok())
                    }
                },
            ),
            async {
                timer.await;
                Wake::Timeout
            },
        )
        .await;
        match wake {
            Wake::Inbound(Some(m)) => d.inbound(&mut node, m),
            Wake::Command(Some(Command::Shutdown) | None) | Wake::Inbound(None) => {
                // Streams first, then the node (the core's shutdown order).
                d.streams.close(now());
            }
            Wake::Command(Some(Command::Stream(c))) => d.streams.command(&mut node, now(), c),
            Wake::Command(Some(Command::App(c))) => d.apps.command(&mut node, now(), c),
            Wake::Command(Some(Command::DisconnectAll)) => node.disconnect_all(now()),
            Wake::Timeout => d.streams.handle_timeout(&mut node, now()),
        }
    };
    // Dropping the frame senders ends every writer; the readers are told to stop.
    for (_, l) in std::mem::take(&mut d.links) {
        if let Some(c) = l.close {
            let _ = c.try_send(());
        }
    }
    if d.dropped_frames > 0 {
        let dropped = d.dropped_frames;
        debug!(dropped, "frames dropped on full link queues");
    }
    d.streams.shut_down();
    let _ = reason.set(stop);
}

impl Drop for Driver {
    /// The node task ended, or was dropped: every stream fails, pending dials learn it.
    fn drop(&mut self) {
        self.streams.shut_down();
    }
}

impl Driver {
    fn inbound(&mut self, node: &mut Node, msg: ToNode) {
        let input = match msg {
            ToNode::LinkUp {
                link,
                config,
                entry,
            } => {
                debug!(%link, peer = %entry.peer, "link up");
                self.links.insert(link, entry);
                Input::LinkUp { link, config }
            }
            ToNode::Received { link, data } => Input::Received { link, data },
            ToNode::LinkDown { link } => {
                self.links.remove(&link);
                Input::LinkDown { link }
            }
        };
        node.handle_input(now(), input);
    }

    /// Drains the node's and the streams' outputs (the core's drain loop); returns a reason
    /// if the node stopped on its own.
    fn flush(&mut self, node: &mut Node) -> Option<String> {
        let now = now();
        let mut stop = None;
        while let Some(out) = self.streams.poll_output(node, now) {
            match out {
                // Never wait on a link: a full queue means a peer that does not keep up, so
                // drop the frame, as a lossy link would.
                Output::Transmit(t) => {
                    if let Some(l) = self.links.get(&t.link)
                        && l.frames.try_send(t).is_err()
                    {
                        self.dropped_frames += 1;
                    }
                }
                Output::Event(ev) => stop = self.event(node, ev).or(stop),
            }
        }
        stop
    }

    /// A node event the stream side passed on; returns a reason if the node stopped.
    fn event(&mut self, node: &Node, ev: Event) -> Option<String> {
        // Answers, datagrams and probe results go to the applications waiting for them.
        let ev = self.apps.event(ev)?;
        match ev {
            Event::CloseLink { link, reason } => {
                // The frames already queued (a reject, say) are written before it closes.
                if let Some(l) = self.links.get_mut(&link) {
                    info!(%link, peer = %l.peer, ?reason, "closing connection");
                    if reason.is_refusal() {
                        l.established.store(false, Ordering::Relaxed);
                    }
                    if let Some(c) = l.close.take() {
                        let _ = c.try_send(());
                    }
                }
            }
            Event::PeerUp { link, node } => {
                if let Some(l) = self.links.get(&link) {
                    l.established.store(true, Ordering::Relaxed);
                }
                info!(%link, "Connection established with {node}");
            }
            Event::PeerDown { link, node } => info!(%link, "Connection to {node} lost"),
            Event::RoutesChanged => debug!(routes = ?node.routes(), "routing table changed"),
            Event::Shutdown { reason } => {
                warn!("{reason}");
                return Some(reason);
            }
            _ => {}
        }
        None
    }
}
