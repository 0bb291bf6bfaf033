//! Driving one node by the core's polling contract, and carrying what it transmits over the
//! modelled links.
//!
//! A [`Lane`] drives nodes: it holds what processing a node may touch beyond the node
//! itself. The network model is shared read-only, except for per-end session state and a
//! link's redial state, which only the node at that end (the dialer, for redials) writes.
//! Everything else a node's processing does to the simulation (events to schedule,
//! counters, routing-table marks) is buffered in the lane and applied by the [`Sim`] in
//! node order afterwards. So lanes can process the nodes of one window on several threads
//! and the run does not depend on how the nodes were split among them: random draws come
//! from each node's own stream and the trace is hashed per node.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use receptor_core::{Event, Input, LinkId, LinkKind, Node};

use crate::check::mix64;
use crate::link::{DirState, Session, SimLink};
use crate::queue::key;
use crate::sim::{Pending, Recorded, SimEvent, SimNode, SimStats, end_id, split};
use crate::streams::StreamWorld;

/// Buffers a lane keeps between uses.
#[derive(Debug, Default)]
pub(crate) struct LaneBufs {
    /// Events to schedule, in the order they were made.
    pub(crate) out: Vec<(u64, SimEvent)>,
    /// Nodes that reported new routes.
    pub(crate) marks: Vec<u32>,
    /// Inputs waiting to be fed to the node being driven.
    work: VecDeque<Input>,
    /// The node's own events (timers) due inside the window, by key, largest first.
    local: Vec<(u128, SimEvent)>,
}

/// One event of a window, with the node it is for.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) key: u128,
    pub(crate) node: u32,
    pub(crate) ev: Option<SimEvent>,
}

/// What a lane did, for [`crate::sim::Sim`] to apply.
#[derive(Debug)]
pub(crate) struct LaneOut {
    pub(crate) stats: SimStats,
    pub(crate) bufs: LaneBufs,
    /// The topology as the checker knows it changed (a node shut down).
    pub(crate) invalidate: bool,
    /// The latest virtual time processed.
    pub(crate) last: u64,
}

/// A driver of nodes; see the module documentation.
pub(crate) struct Lane<'a> {
    pub(crate) seed: u64,
    pub(crate) base: Instant,
    pub(crate) now: u64,
    pub(crate) links: &'a [SimLink],
    pub(crate) sessions: &'a [Session],
    pub(crate) record: bool,
    pub(crate) streams: Option<&'a mut StreamWorld>,
    /// Where events beyond the window go, if straight into the simulator's queue (else
    /// into `bufs.out`, for the simulator to schedule afterwards).
    pending: Option<&'a mut Pending>,
    /// Inside a window: its end and the node being processed (`u32::MAX`: none may
    /// schedule anything inside it).
    pub(crate) window: Option<(u64, u32)>,
    /// Sequence numbers for events inside the window: above those of every event that
    /// was pending when it began.
    pub(crate) local_seq: u64,
    stats: SimStats,
    bufs: LaneBufs,
    invalidate: bool,
    last: u64,
}

impl<'a> Lane<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        seed: u64,
        base: Instant,
        now: u64,
        links: &'a [SimLink],
        sessions: &'a [Session],
        record: bool,
        streams: Option<&'a mut StreamWorld>,
        pending: Option<&'a mut Pending>,
        bufs: LaneBufs,
    ) -> Self {
        Self {
            seed,
            base,
            now,
            links,
            sessions,
            record,
            streams,
            pending,
            window: None,
            local_seq: 0,
            stats: SimStats::default(),
            bufs,
            invalidate: false,
            last: now,
        }
    }

    pub(crate) fn finish(self) -> LaneOut {
        LaneOut {
            stats: self.stats,
            bufs: self.bufs,
            invalidate: self.invalidate,
            last: self.last,
        }
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_nanos(self.now)
    }

    fn vtime(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base).as_nanos() as u64
    }

    pub(crate) fn violation(&self, what: &str) -> ! {
        violation(self.now, self.seed, what)
    }

    fn schedule(&mut self, at: u64, ev: SimEvent) {
        if let Some((end, node)) = self.window
            && at < end
        {
            // Only a node's own timers can fall inside the window it is processed in.
            if !matches!(ev, SimEvent::Timer { node: m, .. } if m == node) {
                self.violation("an event for another node inside the lookahead window");
            }
            self.local_seq += 1;
            let k = key(at, self.local_seq);
            let local = &mut self.bufs.local;
            let i = local.partition_point(|(x, _)| *x > k);
            local.insert(i, (k, ev));
            return;
        }
        match self.pending.as_deref_mut() {
            Some(p) => p.push(self.now, at, ev),
            None => self.bufs.out.push((at, ev)),
        }
    }

    /// Processes the events of a window node by node: `groups` are `(node, start, end)`
    /// ranges of `items` (whose first element is number `first` of the window), each in
    /// key order; `nodes` starts at node `offset`.
    pub(crate) fn run_window(
        &mut self,
        nodes: &mut [SimNode],
        offset: u32,
        items: &mut [Item],
        first: usize,
        groups: &[(u32, usize, usize)],
        end: u64,
    ) {
        for &(node, a, b) in groups {
            let Some(sn) = nodes.get_mut(node.wrapping_sub(offset) as usize) else {
                self.violation("window bookkeeping");
            };
            let Some(evs) = items.get_mut(a - first..b - first) else {
                self.violation("window bookkeeping");
            };
            self.window = Some((end, node));
            // A node's few events, in time order: sorted here, on the lane's thread.
            evs.sort_unstable_by_key(|it| it.key);
            touch_frames(evs);
            if let Some(node) = sn.node.as_ref() {
                node.warm(evs.iter().filter_map(|it| match &it.ev {
                    Some(SimEvent::Deliver { to, frame, .. }) => Some((*to, &frame[..])),
                    _ => None,
                }));
            }
            let mut i = 0;
            loop {
                let next_batch = evs.get(i).map(|it| it.key);
                let next_local = self.bufs.local.last().map(|e| e.0);
                let (k, ev) = match (next_batch, next_local) {
                    (None, None) => break,
                    (Some(b), Some(l)) if l < b => self.bufs.local.pop(),
                    (Some(_), _) => {
                        i += 1;
                        evs.get_mut(i - 1)
                            .and_then(|it| Some((it.key, it.ev.take()?)))
                    }
                    (None, Some(_)) => self.bufs.local.pop(),
                }
                .unwrap_or_else(|| self.violation("window bookkeeping"));
                let at = (k >> 64) as u64;
                self.now = at;
                self.last = self.last.max(at);
                self.dispatch(node, sn, ev);
            }
            self.window = None;
        }
    }

    /// Handles an event for node `n`.
    pub(crate) fn dispatch(&mut self, n: u32, sn: &mut SimNode, ev: SimEvent) {
        self.stats.steps += 1;
        match ev {
            SimEvent::Timer { token, .. } => self.on_timer(n, sn, token),
            SimEvent::Deliver { to, frame, .. } => self.on_deliver(n, sn, to, frame),
            SimEvent::Closed { to } => self.on_closed(n, sn, to),
            SimEvent::Dial { .. } | SimEvent::Streams { .. } => {
                self.violation("a dial or stream event given to a node")
            }
        }
    }

    /// Feeds `input` (if any) to node `n`, then drains its outputs, feeding it the
    /// `LinkDown`s its own closes cause, and finally schedules its next timeout.
    pub(crate) fn feed(&mut self, n: u32, sn: &mut SimNode, input: Option<Input>) {
        let mut work = std::mem::take(&mut self.bufs.work);
        match input {
            Some(i) => work.push_back(i),
            None => self.drain(n, sn, &mut work),
        }
        while let Some(input) = work.pop_front() {
            let now = self.instant();
            if let Input::LinkDown { link } = input {
                let (s, e) = split(link);
                self.sessions[s].set_gone(e);
            }
            let Some(node) = sn.node.as_mut() else {
                break;
            };
            node.handle_input(now, input);
            self.drain(n, sn, &mut work);
        }
        work.clear();
        self.bufs.work = work;
        self.schedule_timer(n, sn);
    }

    fn drain(&mut self, n: u32, sn: &mut SimNode, work: &mut VecDeque<Input>) {
        let mut count = 0usize;
        while let Some(tx) = sn.node.as_mut().and_then(Node::poll_transmit) {
            count += 1;
            let link = tx.link;
            self.on_transmit(n, sn, link, tx.into_bytes(), work);
        }
        while let Some(ev) = sn.node.as_mut().and_then(Node::poll_event) {
            count += 1;
            self.on_event(n, sn, ev, work);
        }
        let bound = 1000 + 64 * sn.links.len();
        if count > bound {
            self.violation(&format!(
                "node {} produced {count} outputs for one input",
                sn.name
            ));
        }
    }

    fn schedule_timer(&mut self, n: u32, sn: &mut SimNode) {
        let t = sn
            .node
            .as_ref()
            .and_then(Node::poll_timeout)
            .map(|t| self.vtime(t).max(self.now));
        if t == sn.timer {
            return;
        }
        sn.timer_token += 1;
        sn.timer = t;
        let token = sn.timer_token;
        if let Some(at) = t {
            self.schedule(at, SimEvent::Timer { node: n, token });
        }
    }

    fn on_timer(&mut self, n: u32, sn: &mut SimNode, token: u64) {
        let now = self.now;
        if sn.timer_token != token || sn.node.is_none() {
            return;
        }
        sn.timer = None;
        sn.spin = if sn.spin.0 == now {
            (now, sn.spin.1 + 1)
        } else {
            (now, 1)
        };
        if sn.spin.1 > 10_000 {
            self.violation(&format!("node {} asks for timeouts without end", sn.name));
        }
        self.feed(n, sn, Some(Input::Timeout));
    }

    fn on_deliver(&mut self, n: u32, sn: &mut SimNode, to: LinkId, frame: Bytes) {
        let (s, r) = split(to);
        let sess = &self.sessions[s];
        let link = &self.links[sess.link as usize];
        let x = 1 - r;
        if link.dir[x] == DirState::Partitioned {
            self.stats.dropped_partition += 1;
            return;
        }
        if !sess.is_open(r) {
            self.stats.dropped_closed += 1;
            // TCP answers bytes for a closed socket with a reset. (Whether the other end is
            // still open is its own business: a reset for a closed end is ignored there.)
            if link.model.ordered() && link.dir[r] == DirState::Up {
                let at = self.now + link.model.latency.as_nanos() as u64;
                self.schedule(at, SimEvent::Closed { to: end_id(s, x) });
            }
            return;
        }
        self.stats.delivered += 1;
        self.feed(
            n,
            sn,
            Some(Input::Received {
                link: to,
                data: frame,
            }),
        );
    }

    fn on_closed(&mut self, n: u32, sn: &mut SimNode, to: LinkId) {
        let (s, r) = split(to);
        let l = self.sessions[s].link as usize;
        if self.links[l].dir[1 - r] == DirState::Partitioned || !self.sessions[s].is_open(r) {
            return;
        }
        let input = self.end_down(n, sn, s, r);
        self.feed(n, sn, Some(input));
    }

    /// Marks end `e` of session `s`, which is node `n`'s, closed, schedules the dialer's
    /// redial, and returns the `LinkDown` for the node.
    fn end_down(&mut self, n: u32, sn: &SimNode, s: usize, e: usize) -> Input {
        let sess = &self.sessions[s];
        sess.close(e);
        if e == 0 {
            let link = &self.links[sess.link as usize];
            if link.ends[0] != n {
                self.violation("a dialer's end closed by another node");
            }
            if let Some(at) = redial_at(link, sn.alive(), self.now) {
                self.schedule(at, SimEvent::Dial { link: sess.link });
            }
        }
        Input::LinkDown { link: end_id(s, e) }
    }

    fn on_transmit(
        &mut self,
        n: u32,
        sn: &mut SimNode,
        link: LinkId,
        frame: Bytes,
        work: &mut VecDeque<Input>,
    ) {
        let (s, e) = split(link);
        let owner = self.sessions.get(s).map(|sess| sess.link as usize);
        if owner.is_none_or(|l| self.links[l].ends[e] != n) {
            self.violation(&format!("transmit on {link}, which node {n} does not own"));
        }
        let sess = &self.sessions[s];
        let l = sess.link as usize;
        if sess.is_gone(e) {
            self.violation(&format!("node {n} transmits on {link} after its LinkDown"));
        }
        if !sess.is_open(e) {
            // The network reset it in this very drain; the node hears of it next.
            self.stats.dropped_closed += 1;
            return;
        }
        self.stats.messages += 1;
        self.stats.bytes += frame.len() as u64;
        sn.trace.u64(self.now);
        sn.trace.u64(link.0);
        sn.trace.bytes(&frame);
        let max_hops = sn.config.max_hops;
        let model = &self.links[l].model;
        if let Err(what) = check_frame(model.kind, &frame, max_hops) {
            self.violation(&format!("node {n} sent a bad frame on {link}: {what}"));
        }
        if self.links[l].dir[e] == DirState::Partitioned {
            self.stats.dropped_partition += 1;
            return;
        }
        let (ordered, loss, dup, split_frames) = (
            model.ordered(),
            model.loss,
            model.duplicate,
            model.split_frames && model.kind == LinkKind::Stream,
        );
        let (latency, jitter) = (
            model.latency.as_nanos() as u64,
            model.jitter.as_nanos() as u64,
        );
        if chance(&mut sn.rng, loss) {
            if ordered {
                self.reset(n, sn, s, e, work);
            } else {
                self.stats.dropped_loss += 1;
            }
            return;
        }
        let to = end_id(s, 1 - e);
        let node = self.links[l].ends[1 - e];
        let mut at = self.now + latency + draw_below(&mut sn.rng, jitter);
        if ordered {
            at = at.max(sess.last_at(e));
            sess.set_last_at(e, at);
        }
        if split_frames && frame.len() >= 2 {
            let cut = 1 + draw_below(&mut sn.rng, frame.len() as u64 - 1) as usize;
            let head = frame.slice(..cut);
            self.schedule(
                at,
                SimEvent::Deliver {
                    node,
                    to,
                    frame: head,
                },
            );
            let tail = frame.slice(cut..);
            self.schedule(
                at,
                SimEvent::Deliver {
                    node,
                    to,
                    frame: tail,
                },
            );
            return;
        }
        if !ordered && chance(&mut sn.rng, dup) {
            let again = self.now + latency + draw_below(&mut sn.rng, jitter);
            let copy = frame.clone();
            self.schedule(
                again,
                SimEvent::Deliver {
                    node,
                    to,
                    frame: copy,
                },
            );
        }
        self.schedule(at, SimEvent::Deliver { node, to, frame });
    }

    /// Loss on an ordered link: the connection resets at both ends.
    fn reset(&mut self, n: u32, sn: &SimNode, s: usize, e: usize, work: &mut VecDeque<Input>) {
        self.stats.resets += 1;
        let input = self.end_down(n, sn, s, e);
        work.push_back(input);
        let l = self.sessions[s].link as usize;
        let at = self.now + self.links[l].model.latency.as_nanos() as u64;
        self.schedule(
            at,
            SimEvent::Closed {
                to: end_id(s, 1 - e),
            },
        );
    }

    fn on_event(&mut self, n: u32, sn: &mut SimNode, ev: Event, work: &mut VecDeque<Input>) {
        // Mesh streams: what is for the node's stream layer goes there (`streams.rs`).
        let ev = match self.streams.as_deref_mut() {
            Some(w) => {
                let mut wake = None;
                let passed = w.intercept(n, ev, &mut wake);
                if let Some(wake) = wake {
                    self.schedule(self.now, wake);
                }
                let Some(ev) = passed else { return };
                ev
            }
            None => ev,
        };
        match &ev {
            Event::CloseLink { link, .. } => {
                let (s, e) = split(*link);
                let owned = self
                    .sessions
                    .get(s)
                    .is_some_and(|sess| self.links[sess.link as usize].ends[e] == n);
                if !owned {
                    self.violation(&format!("node {n} closed {link}, which it does not own"));
                }
                if self.sessions[s].is_open(e) {
                    let input = self.end_down(n, sn, s, e);
                    work.push_back(input);
                    if let Some(at) = close_at(self.links, self.sessions, s, e, self.now) {
                        self.schedule(
                            at,
                            SimEvent::Closed {
                                to: end_id(s, 1 - e),
                            },
                        );
                    }
                }
            }
            Event::RoutesChanged => self.bufs.marks.push(n),
            Event::Shutdown { .. } => self.invalidate = true,
            _ => {}
        }
        if self.record {
            let at = Duration::from_nanos(self.now);
            sn.events.push(Recorded { at, event: ev });
        }
    }
}

/// Reads every cache line of the frames a node is about to receive. They were written
/// by other nodes milliseconds ago and have left the cache: reading them all at once lets
/// the misses overlap, where processing the events would meet them one after another.
fn touch_frames(evs: &[Item]) {
    let mut x = 0u8;
    for it in evs {
        if let Some(SimEvent::Deliver { frame, .. }) = &it.ev {
            for line in frame.chunks(64) {
                x ^= line[0];
            }
        }
    }
    std::hint::black_box(x);
}

/// Panics with what went wrong, when, and how to replay it.
pub(crate) fn violation(now: u64, seed: u64, what: &str) -> ! {
    panic!(
        "simulator invariant violated at t={:?}: {what} (seed {seed}; replay with SIM_SEED={seed})",
        Duration::from_nanos(now),
    );
}

/// When the other end of session `s` hears that end `e` closed (after the data already in
/// flight), unless the direction is partitioned. Whether the other end is still open is
/// its own business: a close for a closed end is ignored there.
pub(crate) fn close_at(
    links: &[SimLink],
    sessions: &[Session],
    s: usize,
    e: usize,
    now: u64,
) -> Option<u64> {
    let sess = &sessions[s];
    let link = &links[sess.link as usize];
    if link.dir[e] == DirState::Partitioned {
        return None;
    }
    let mut at = now + link.model.latency.as_nanos() as u64;
    if link.model.ordered() {
        at = at.max(sess.last_at(e));
    }
    Some(at)
}

/// When the dialer of `link` tries again, if it will (and notes that it will).
pub(crate) fn redial_at(link: &SimLink, dialer_alive: bool, now: u64) -> Option<u64> {
    if link.removed || !link.model.redial || link.dial_pending() || !dialer_alive {
        return None;
    }
    link.set_dial_pending(true);
    Some(now + link.backoff.next_wait().as_nanos() as u64)
}

/// The next number of a node's network random stream (SplitMix64).
pub(crate) fn next_u64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

fn draw_below(rng: &mut u64, bound: u64) -> u64 {
    if bound == 0 { 0 } else { next_u64(rng) % bound }
}

fn chance(rng: &mut u64, p: f64) -> bool {
    p > 0.0 && ((next_u64(rng) >> 11) as f64) < p * (1u64 << 53) as f64
}

/// Checks one transmitted frame: well framed, not empty, not too long, and no data message
/// carrying more hops-to-live than the node may give (netceptor.md §6.1).
fn check_frame(kind: LinkKind, frame: &[u8], max_hops: u8) -> Result<(), String> {
    let msg = if kind == LinkKind::Stream {
        let (prefix, msg) = frame
            .split_at_checked(2)
            .ok_or("frame shorter than its prefix")?;
        let len = u16::from_le_bytes([prefix[0], prefix[1]]) as usize;
        if len != msg.len() {
            return Err(format!("prefix says {len} bytes, frame has {}", msg.len()));
        }
        msg
    } else {
        frame
    };
    match msg {
        [] => Err("empty message".to_owned()),
        [0, htl, ..] if *htl > max_hops => Err(format!("data message with hops-to-live {htl}")),
        _ if msg.len() > 65535 => Err(format!("{}-byte message", msg.len())),
        _ => Ok(()),
    }
}
