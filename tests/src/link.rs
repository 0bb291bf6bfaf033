//! Link models: how the simulated network carries the sessions of one configured backend.
//!
//! A configured link joins a dialer and a listener. Each time the dialer connects, a new
//! *session* starts: both ends get `Input::LinkUp` with fresh `LinkId`s. Sessions end by a
//! reset (loss on an ordered link), a close the node asks for (`Event::CloseLink`), or a crash,
//! and the dialer then redials with Go's backoff (netceptor.md §2.7).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use receptor_core::{LinkConfig, LinkKind, NodeId};

/// How one configured link behaves: transport, delays, faults, and the backend options of
/// both ends.
#[derive(Debug, Clone)]
pub struct LinkModel {
    /// Stream (TCP-like: in order, loss resets the session), datagram (UDP-like: per-message
    /// loss, reordering allowed) or message (WebSocket-like: in order, no framing).
    pub kind: LinkKind,
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra one-way delay drawn uniformly from `[0, jitter)` per message. On ordered links a
    /// message is never delivered before one sent earlier in the same direction.
    pub jitter: Duration,
    /// Per-message probability: datagram links drop the message; ordered links reset the
    /// whole session (both ends get `LinkDown`, the dialer redials).
    pub loss: f64,
    /// Per-message probability that a datagram link delivers a second copy.
    pub duplicate: f64,
    /// Stream links only: deliver each frame in two chunks split at a random byte, so the
    /// core's deframer sees partial frames.
    pub split_frames: bool,
    /// Whether the dialer reconnects after the session ends (Go `redial`, default true).
    pub redial: bool,
    /// Backend options of the dialing side (its `kind` is overwritten with [`LinkModel::kind`]).
    pub dialer: LinkConfig,
    /// Backend options of the listening side (its `kind` is overwritten likewise).
    pub listener: LinkConfig,
}

impl LinkModel {
    fn new(kind: LinkKind) -> Self {
        Self {
            kind,
            latency: Duration::from_millis(5),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            split_frames: false,
            redial: true,
            dialer: LinkConfig::new(kind),
            listener: LinkConfig::new(kind),
        }
    }

    /// A TCP-like link: 5 ms latency, no jitter, no loss, cost 1, redial on.
    pub fn stream() -> Self {
        Self::new(LinkKind::Stream)
    }

    /// A UDP-like link: 5 ms latency, no jitter, no loss, cost 1, redial on.
    pub fn datagram() -> Self {
        Self::new(LinkKind::Datagram)
    }

    /// A WebSocket-like link: ordered whole messages, 5 ms latency, cost 1, redial on.
    pub fn message() -> Self {
        Self::new(LinkKind::Message)
    }

    /// Sets the one-way latency.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// Sets the jitter bound.
    pub fn jitter(mut self, d: Duration) -> Self {
        self.jitter = d;
        self
    }

    /// Sets the per-message loss probability (a reset on ordered links).
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Sets the per-message duplication probability (datagram links only).
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Delivers stream frames in two chunks (see [`LinkModel::split_frames`]).
    pub fn split_frames(mut self) -> Self {
        self.split_frames = true;
        self
    }

    /// Turns redial off: once the session ends, the link stays down.
    pub fn no_redial(mut self) -> Self {
        self.redial = false;
        self
    }

    /// Sets the backend cost at both ends.
    ///
    /// # Panics
    /// If `cost` is not finite and positive.
    pub fn cost(mut self, cost: f64) -> Self {
        self.dialer.cost = cost;
        self.listener.cost = cost;
        assert!(cost.is_finite() && cost > 0.0, "bad cost {cost}");
        self
    }

    /// Edits the dialing side's backend options.
    pub fn dialer_config(mut self, f: impl FnOnce(&mut LinkConfig)) -> Self {
        f(&mut self.dialer);
        self
    }

    /// Edits the listening side's backend options (`nodecost` lives here in Go).
    pub fn listener_config(mut self, f: impl FnOnce(&mut LinkConfig)) -> Self {
        f(&mut self.listener);
        self
    }

    /// Whether the transport keeps messages in order (and so resets on loss).
    pub fn ordered(&self) -> bool {
        self.kind != LinkKind::Datagram
    }
}

/// The state of one direction of a link (turmoil's per-direction state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// Messages flow.
    Up,
    /// Messages, closes and dials are dropped.
    Partitioned,
}

/// Go's redial backoff: 5 s, then ×1.5 after each failed dial, at most 20 s; back to 5 s
/// after a successful dial (netceptor.md §2.7).
///
/// Only the dialer's processing changes it, possibly on a lane's thread: an atomic.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// Nanoseconds.
    next: AtomicU64,
}

impl Backoff {
    pub(crate) const START: Duration = Duration::from_secs(5);
    pub(crate) const MAX: Duration = Duration::from_secs(20);

    pub(crate) fn new() -> Self {
        Self {
            next: AtomicU64::new(Self::START.as_nanos() as u64),
        }
    }

    /// The wait before the next attempt; each call makes the following one longer.
    pub(crate) fn next_wait(&self) -> Duration {
        let d = Duration::from_nanos(self.next.load(Relaxed));
        self.next
            .store((d * 3 / 2).min(Self::MAX).as_nanos() as u64, Relaxed);
        d
    }

    /// A dial succeeded.
    pub(crate) fn reset(&self) {
        self.next.store(Self::START.as_nanos() as u64, Relaxed);
    }
}

/// One configured link between two simulated nodes. End 0 dials, end 1 listens.
#[derive(Debug)]
pub(crate) struct SimLink {
    pub(crate) ends: [u32; 2],
    pub(crate) model: LinkModel,
    pub(crate) configs: [Arc<LinkConfig>; 2],
    /// `dir[e]` is the direction from end `e` to the other end.
    pub(crate) dir: [DirState; 2],
    /// The current (or last) session.
    pub(crate) session: Option<u32>,
    pub(crate) backoff: Backoff,
    /// A redial is scheduled (written by the dialer's processing only).
    dial_pending: AtomicBool,
    /// `disconnect` was called: never dial again.
    pub(crate) removed: bool,
}

impl SimLink {
    pub(crate) fn new(a: u32, b: u32, mut model: LinkModel) -> Self {
        model.dialer.kind = model.kind;
        model.listener.kind = model.kind;
        let configs = [
            Arc::new(model.dialer.clone()),
            Arc::new(model.listener.clone()),
        ];
        Self {
            ends: [a, b],
            model,
            configs,
            dir: [DirState::Up; 2],
            session: None,
            backoff: Backoff::new(),
            dial_pending: AtomicBool::new(false),
            removed: false,
        }
    }

    pub(crate) fn dial_pending(&self) -> bool {
        self.dial_pending.load(Relaxed)
    }

    pub(crate) fn set_dial_pending(&self, on: bool) {
        self.dial_pending.store(on, Relaxed);
    }

    /// Both directions carry messages.
    pub(crate) fn healthy(&self) -> bool {
        self.dir == [DirState::Up; 2]
    }

    /// The cost end `e` will use with a peer named `peer` (its nodecost override, if any).
    pub(crate) fn cost_at(&self, e: usize, peer: &NodeId) -> f64 {
        let c = &self.configs[e];
        c.node_cost.get(peer).copied().unwrap_or(c.cost)
    }

    /// Whether the two ends would accept each other: costs agree exactly (§4.3) and each is
    /// in the other's `allowedpeers`, if set.
    pub(crate) fn viable(&self, ids: [&NodeId; 2]) -> bool {
        let allowed = |e: usize, peer: &NodeId| {
            self.configs[e]
                .allowed_peers
                .as_ref()
                .is_none_or(|set| set.contains(peer))
        };
        ids[0] != ids[1]
            && self.cost_at(0, ids[1]) == self.cost_at(1, ids[0])
            && allowed(0, ids[1])
            && allowed(1, ids[0])
    }
}

/// One backend session: the pair of `LinkId`s the two ends know it by.
///
/// `LinkId(2 * s + e)` is end `e` of session `s`, so IDs are unique and never reused. The
/// state of end `e` is written only by the processing of the node at that end (possibly
/// on a lane's thread, hence atomics), and an end once closed never opens again.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) link: u32,
    /// The end's node still has the link (no `LinkDown` fed, not crashed).
    open: [AtomicBool; 2],
    /// The end's node has been told (`LinkDown` fed) or is gone: it must not use the link.
    gone: [AtomicBool; 2],
    /// Latest delivery time scheduled per direction, to keep ordered links in order.
    last_at: [AtomicU64; 2],
}

impl Session {
    pub(crate) fn new(link: u32) -> Self {
        Self {
            link,
            open: [AtomicBool::new(true), AtomicBool::new(true)],
            gone: [AtomicBool::new(false), AtomicBool::new(false)],
            last_at: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    pub(crate) fn is_open(&self, e: usize) -> bool {
        self.open[e].load(Relaxed)
    }

    pub(crate) fn close(&self, e: usize) {
        self.open[e].store(false, Relaxed);
    }

    pub(crate) fn is_gone(&self, e: usize) -> bool {
        self.gone[e].load(Relaxed)
    }

    pub(crate) fn set_gone(&self, e: usize) {
        self.gone[e].store(true, Relaxed);
    }

    pub(crate) fn last_at(&self, e: usize) -> u64 {
        self.last_at[e].load(Relaxed)
    }

    pub(crate) fn set_last_at(&self, e: usize, at: u64) {
        self.last_at[e].store(at, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_go() {
        let b = Backoff::new();
        let waits: Vec<u64> = (0..6).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [5000, 7500, 11250, 16875, 20000, 20000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_secs(5));
    }
}
