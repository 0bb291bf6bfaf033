//! The simulator proper: virtual clock, event queue, nodes, links and dialing. How one node
//! is driven and its transmits carried is in `drive.rs`; fault injection, commands and
//! getters are in `control.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use receptor_core::{Config, Event, Input, LinkId, Node, NodeId};

use crate::check::{Convergence, TraceHash, mix64};
use crate::drive::{Item, Lane, LaneBufs, LaneOut, close_at, redial_at};
use crate::link::{LinkModel, Session, SimLink};
use crate::queue::EventQueue;

/// Unix time of virtual time zero, for the nodes' wall clocks (route epochs, ad times).
pub(crate) const WALL_BASE: Duration = Duration::from_secs(1_700_000_000);

/// An event a node reported, stamped with the virtual time since the simulation began.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Virtual time since the start of the simulation.
    pub at: Duration,
    /// What the node said.
    pub event: Event,
}

/// Counters over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Frames the nodes transmitted (including ones the network then lost).
    pub messages: u64,
    /// Bytes of those frames.
    pub bytes: u64,
    /// Frames handed to the receiving node.
    pub delivered: u64,
    /// Frames dropped by a partition.
    pub dropped_partition: u64,
    /// Frames dropped by datagram loss.
    pub dropped_loss: u64,
    /// Frames that reached a closed end.
    pub dropped_closed: u64,
    /// Sessions reset by loss on an ordered link.
    pub resets: u64,
    /// Dial attempts, and how many failed (peer down or partitioned).
    pub dials: u64,
    /// Failed dial attempts.
    pub failed_dials: u64,
    /// Events processed.
    pub steps: u64,
}

/// `run_until` gave up: the goal was not reached by the deadline.
#[derive(Debug, Clone)]
pub struct Stuck {
    /// Virtual time at which the run stopped.
    pub at: Duration,
    /// The simulation seed, to replay with `SIM_SEED`.
    pub seed: u64,
    /// What was still wrong.
    pub detail: String,
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "goal not reached by t={:?} (seed {}; replay with SIM_SEED={}): {}",
            self.at, self.seed, self.seed, self.detail
        )
    }
}

impl std::error::Error for Stuck {}

#[derive(Debug)]
pub(crate) enum SimEvent {
    /// The node's `poll_timeout` is due; `token` tells stale entries apart.
    Timer { node: u32, token: u64 },
    /// Bytes arrive at the end of a session, which is node `node`'s.
    Deliver { node: u32, to: LinkId, frame: Bytes },
    /// The other end closed or reset the session.
    Closed { to: LinkId },
    /// The dialer of a link tries again.
    Dial { link: u32 },
    /// Mesh streams (`streams.rs`): the node's stream layer has input (`token` 0) or its
    /// timer is due (`token` tells stale entries apart).
    Streams { node: u32, token: u64 },
}

/// One simulated process.
#[derive(Debug)]
pub(crate) struct SimNode {
    pub(crate) name: NodeId,
    /// The configuration every incarnation starts from (seed and wall clock are set anew).
    pub(crate) config: Config,
    /// `None` while crashed.
    pub(crate) node: Option<Node>,
    pub(crate) incarnation: u32,
    pub(crate) timer: Option<u64>,
    pub(crate) timer_token: u64,
    /// Timeouts fed at one instant in a row, to catch a timer that never clears.
    pub(crate) spin: (u64, u32),
    pub(crate) events: Vec<Recorded>,
    /// Configured links touching this node.
    pub(crate) links: Vec<u32>,
    /// The network's random stream for what this node sends (loss, jitter, duplicates,
    /// split frames), derived from the seed and the node's name.
    pub(crate) rng: u64,
    /// A hash of every frame this node transmitted, with its time and link.
    pub(crate) trace: TraceHash,
}

impl SimNode {
    /// Running and not shut down.
    pub(crate) fn alive(&self) -> bool {
        self.node.as_ref().is_some_and(|n| !n.is_shut_down())
    }
}

/// Windows with fewer events than this are processed on one thread.
const PARALLEL_MIN: usize = 512;

/// A deterministic simulation of a Receptor mesh: many [`Node`]s joined by modelled links,
/// driven by one virtual clock and seeded random streams.
///
/// The same seed and the same calls give the same run, bit for bit ([`Sim::trace_hash`]),
/// whatever the number of threads ([`Sim::set_threads`]). Absolute `Instant`s never leave
/// the simulator: times are offsets from its start.
pub struct Sim {
    pub(crate) seed: u64,
    base: Instant,
    pub(crate) now: u64,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) names: BTreeMap<NodeId, u32>,
    pub(crate) links: Vec<SimLink>,
    pub(crate) sessions: Vec<Session>,
    pending: Pending,
    pub(crate) stats: SimStats,
    pub(crate) conv: Convergence,
    pub(crate) record: bool,
    /// Mesh streams (`streams.rs`); empty unless a test uses them.
    pub(crate) stream_world: crate::streams::StreamWorld,
    /// Whether `run_until` may process events in windows, node by node.
    batching: bool,
    /// Threads a window may use.
    threads: usize,
    /// While a window's stream-layer events are processed: its end.
    window_end: Option<u64>,
    /// The share of a window's events the first thread takes, from how long each thread
    /// took per event in earlier windows (see [`Balance`]).
    balance: Balance,
    /// Reused buffers: the lanes', a window's events as drained, their targets, the
    /// events by node, and the per-node counts.
    lane_bufs: [LaneBufs; 2],
    batch: Vec<(u128, SimEvent)>,
    targets: Vec<u32>,
    items: Vec<Item>,
    counts: Vec<usize>,
    groups: Vec<(u32, usize, usize)>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now())
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SimStats {
    fn add(&mut self, o: &Self) {
        self.messages += o.messages;
        self.bytes += o.bytes;
        self.delivered += o.delivered;
        self.dropped_partition += o.dropped_partition;
        self.dropped_loss += o.dropped_loss;
        self.dropped_closed += o.dropped_closed;
        self.resets += o.resets;
        self.dials += o.dials;
        self.failed_dials += o.failed_dials;
        self.steps += o.steps;
    }
}

impl Sim {
    /// An empty simulation at virtual time zero.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            // The one clock read: an anchor for the `Instant`s the core wants. Only offsets
            // from it are ever used or shown.
            base: Instant::now(),
            now: 0,
            nodes: Vec::new(),
            names: BTreeMap::new(),
            links: Vec::new(),
            sessions: Vec::new(),
            pending: Pending {
                queue: EventQueue::new(),
                dials: BTreeMap::new(),
                seq: 0,
            },
            stats: SimStats::default(),
            conv: Convergence::default(),
            record: true,
            stream_world: Default::default(),
            batching: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            window_end: None,
            balance: Balance::default(),
            lane_bufs: Default::default(),
            batch: Vec::new(),
            targets: Vec::new(),
            items: Vec::new(),
            counts: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Lets [`Sim::run_until`] (and so [`Sim::run_until_converged`]) process events in
    /// windows as long as the shortest link latency, node by node, instead of one at a time
    /// in time order. Nothing a node does can reach another node within such a window, so
    /// every node still gets the same inputs at the same times; keeping one node's state
    /// in the cache for all its events of a window makes large meshes much faster, and the
    /// nodes of a window can be split among threads ([`Sim::set_threads`]).
    ///
    /// What changes: the tie-breaking of events at the very same nanosecond follows the
    /// processing order, so a batched run can differ from an unbatched one with the same
    /// seed (each is repeatable), and the goal is checked between windows, so `run_until`
    /// stops at the end of the window that reached it.
    pub fn set_batching(&mut self, on: bool) {
        self.batching = on;
    }

    /// Sets how many threads (1 or 2) a batched window may use; by default 2 where the
    /// machine has two cores. The run is the same either way.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.clamp(1, 2);
    }

    /// Keeps (default) or stops keeping each node's events; large runs save memory.
    pub fn set_record_events(&mut self, record: bool) {
        self.record = record;
    }

    /// The seed the simulation was made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// A hash of every frame transmitted so far, with its time, node and link: the nodes'
    /// own traces, combined in node order.
    pub fn trace_hash(&self) -> u64 {
        let mut h = TraceHash::default();
        for sn in &self.nodes {
            h.u64(sn.trace.finish());
        }
        h.finish()
    }

    pub(crate) fn instant(&self) -> Instant {
        self.base + Duration::from_nanos(self.now)
    }

    pub(crate) fn vtime(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Adds a node named `name` with Go's default configuration.
    ///
    /// # Panics
    /// If the name is taken or not a valid node ID.
    pub fn add_node(&mut self, name: &str) {
        self.add_node_with(name, |_| {});
    }

    /// Adds a node after letting `edit` change its configuration (firewall rules, timers,
    /// even a `node_id` different from the simulator's `name` to model duplicate IDs).
    /// The RNG seed and wall clock are set by the simulator.
    ///
    /// # Panics
    /// If the name is taken or not a valid node ID.
    pub fn add_node_with(&mut self, name: &str, edit: impl FnOnce(&mut Config)) {
        let id = NodeId::new(name).unwrap_or_else(|e| panic!("node name {name:?}: {e}"));
        assert!(!self.names.contains_key(name), "node {name} exists already");
        let mut config = Config::new(id.clone(), 0, WALL_BASE);
        edit(&mut config);
        let n = self.nodes.len() as u32;
        self.names.insert(id.clone(), n);
        let rng = mix64(node_seed(self.seed, &id, 0) ^ 0x6e65_7477_6f72_6b21);
        self.nodes.push(SimNode {
            name: id,
            config,
            node: None,
            incarnation: 0,
            timer: None,
            timer_token: 0,
            spin: (0, 0),
            events: Vec::new(),
            links: Vec::new(),
            rng,
            trace: TraceHash::default(),
        });
        self.start(n);
    }

    /// Starts a new incarnation of node `n` now: a fresh seed and the current wall clock,
    /// so a restart gets a larger epoch.
    pub(crate) fn start(&mut self, n: u32) {
        let sn = &mut self.nodes[n as usize];
        sn.incarnation += 1;
        let mut config = sn.config.clone();
        config.rng_seed = node_seed(self.seed, &sn.name, sn.incarnation);
        config.wall_clock = WALL_BASE + Duration::from_nanos(self.now);
        let node = Node::new(Arc::new(config), self.base + Duration::from_nanos(self.now))
            .unwrap_or_else(|e| panic!("node {}: {e}", sn.name));
        sn.node = Some(node);
        sn.spin = (0, 0);
        self.conv.invalidate();
        self.feed(n, None);
    }

    /// The index of a node by simulator name.
    ///
    /// # Panics
    /// If there is no such node.
    pub(crate) fn ix(&self, name: &str) -> u32 {
        *self
            .names
            .get(name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// Joins `a` and `b` with a link: `a` dials `b` now, and both get `LinkUp` with fresh
    /// `LinkId`s. Returns the link's index.
    pub fn connect(&mut self, a: &str, b: &str, model: LinkModel) -> usize {
        let (ia, ib) = (self.ix(a), self.ix(b));
        let l = self.links.len() as u32;
        self.links.push(SimLink::new(ia, ib, model));
        self.nodes[ia as usize].links.push(l);
        if ib != ia {
            self.nodes[ib as usize].links.push(l);
        }
        self.conv.invalidate();
        self.dial(l);
        l as usize
    }

    // ---- the event loop ----

    pub(crate) fn schedule(&mut self, at: u64, ev: SimEvent) {
        if self.window_end.is_some_and(|end| at < end) {
            self.violation("an event for another node inside the lookahead window");
        }
        self.pending.push(self.now, at, ev);
    }

    /// Drives node `n` through `f` on a lane of this thread, then applies what it did.
    fn with_lane(&mut self, n: u32, f: impl FnOnce(&mut Lane<'_>, &mut SimNode)) {
        let bufs = std::mem::take(&mut self.lane_bufs[0]);
        let mut lane = Lane::new(
            self.seed,
            self.base,
            self.now,
            &self.links,
            &self.sessions,
            self.record,
            Some(&mut self.stream_world),
            None,
            bufs,
        );
        // Stream-layer events of a window: nothing may be scheduled inside it.
        lane.window = self.window_end.map(|end| (end, u32::MAX));
        f(&mut lane, &mut self.nodes[n as usize]);
        let out = lane.finish();
        self.absorb(out, 0);
    }

    /// Applies what a lane did: its events are scheduled in the order it made them.
    fn absorb(&mut self, out: LaneOut, i: usize) {
        let LaneOut {
            stats,
            mut bufs,
            invalidate,
            last,
        } = out;
        self.stats.add(&stats);
        for (at, ev) in bufs.out.drain(..) {
            self.schedule(at, ev);
        }
        for n in bufs.marks.drain(..) {
            self.conv.mark(n);
        }
        if invalidate {
            self.conv.invalidate();
        }
        self.now = self.now.max(last);
        self.lane_bufs[i] = bufs;
    }

    /// Feeds `input` (if any) to node `n` and handles everything that follows from it.
    pub(crate) fn feed(&mut self, n: u32, input: Option<Input>) {
        self.with_lane(n, |lane, sn| lane.feed(n, sn, input));
    }

    /// The key of the next pending event.
    fn next_key(&mut self) -> Option<u128> {
        let q = self.pending.queue.peek_key();
        let d = self.pending.dials.first_key_value().map(|(&k, _)| k);
        match (q, d) {
            (Some(q), Some(d)) => Some(q.min(d)),
            (q, d) => q.or(d),
        }
    }

    /// Processes the earliest pending event. Returns `false` when nothing is pending.
    pub fn step(&mut self) -> bool {
        let Some(k) = self.next_key() else {
            return false;
        };
        self.now = self.now.max((k >> 64) as u64);
        if self
            .pending
            .dials
            .first_key_value()
            .is_some_and(|(&d, _)| d == k)
        {
            if let Some((_, link)) = self.pending.dials.pop_first() {
                self.dispatch(SimEvent::Dial { link });
            }
        } else if let Some((_, ev)) = self.pending.queue.pop() {
            self.dispatch(ev);
        }
        true
    }

    fn dispatch(&mut self, ev: SimEvent) {
        match ev {
            SimEvent::Dial { link } => {
                self.stats.steps += 1;
                self.links[link as usize].set_dial_pending(false);
                self.dial(link);
            }
            SimEvent::Streams { node, token } => {
                self.stats.steps += 1;
                self.on_streams(node, token);
            }
            ev => {
                let Some(n) = self.target(&ev) else {
                    self.violation("an event without its node");
                };
                self.with_lane(n, |lane, sn| lane.dispatch(n, sn, ev));
            }
        }
    }

    /// The node an event is for (`None` for a dial, which involves two, and for a stream
    /// layer).
    fn target(&self, ev: &SimEvent) -> Option<u32> {
        match ev {
            SimEvent::Timer { node, .. } | SimEvent::Deliver { node, .. } => Some(*node),
            SimEvent::Closed { to } => {
                let (s, r) = split(*to);
                Some(self.links[self.sessions[s].link as usize].ends[r])
            }
            // A stream layer is its own actor: like a dial, it is not batched with its node.
            SimEvent::Dial { .. } | SimEvent::Streams { .. } => None,
        }
    }

    /// The lookahead: the shortest link latency (0 when there are no links).
    fn lookahead(&self) -> u64 {
        self.links
            .iter()
            .map(|l| l.model.latency.as_nanos() as u64)
            .min()
            .unwrap_or(0)
    }

    /// Processes every event before `min(next + w, limit + 1)`, node by node (see
    /// [`Sim::set_batching`]), the nodes split among the threads. The window ends before
    /// the next dial, which involves two nodes and is processed on its own.
    fn step_window(&mut self, w: u64, limit: u64) {
        let Some(k0) = self.next_key() else {
            return;
        };
        let t0 = (k0 >> 64) as u64;
        let mut end = t0.saturating_add(w).min(limit.saturating_add(1));
        if let Some((&kd, _)) = self.pending.dials.first_key_value() {
            end = end.min((kd >> 64) as u64);
        }
        if end <= t0 {
            self.step();
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        self.pending.queue.drain_before(end, &mut batch);
        self.order_window(&mut batch);
        self.batch = batch;
        let mut items = std::mem::take(&mut self.items);
        let groups = std::mem::take(&mut self.groups);
        // Stream-layer events (no node) come last and are processed here afterwards.
        let none = self.nodes.len() as u32;
        let lanes_end = groups.iter().take_while(|g| g.0 != none).count();
        let total = groups.get(lanes_end.wrapping_sub(1)).map_or(0, |g| g.2);
        let parallel = self.threads > 1 && total >= PARALLEL_MIN && self.stream_world.is_empty();
        // Lane 1 takes the groups from `split` on.
        let split = if parallel {
            let share = self.balance.first_share(total);
            groups[..lanes_end].partition_point(|g| g.1 < share)
        } else {
            lanes_end
        };
        let (ga, gb) = groups[..lanes_end].split_at(split);
        let (first_b, node_b) = gb.first().map_or((total, none), |g| (g.1, g.0));
        let (items_lanes, _) = items.split_at_mut(total);
        let (ia, ib) = items_lanes.split_at_mut(first_b);
        let mut bufs = std::mem::take(&mut self.lane_bufs);
        let local_seq = self.pending.seq;
        let Self {
            seed,
            base,
            now,
            nodes,
            links,
            sessions,
            record,
            pending,
            ..
        } = self;
        let (na, nb) = nodes.split_at_mut(node_b as usize);
        let lane = |bufs: LaneBufs, pending| {
            let mut lane = Lane::new(
                *seed, *base, *now, links, sessions, *record, None, pending, bufs,
            );
            lane.local_seq = local_seq;
            lane
        };
        // The first lane schedules straight into the queue, as it goes: its events come
        // first in the order the lanes made them anyway, and the serial part is smaller.
        let mut lane_a = lane(std::mem::take(&mut bufs[0]), Some(pending));
        let out_b = if gb.is_empty() {
            lane_a.run_window(na, 0, ia, 0, ga, end);
            None
        } else {
            let mut lane_b = lane(std::mem::take(&mut bufs[1]), None);
            let (out, took_a, took_b) = std::thread::scope(|scope| {
                let b = scope.spawn(move || {
                    let started = Instant::now();
                    lane_b.run_window(nb, node_b, ib, first_b, gb, end);
                    (lane_b.finish(), started.elapsed())
                });
                let started = Instant::now();
                lane_a.run_window(na, 0, ia, 0, ga, end);
                let took_a = started.elapsed();
                match b.join() {
                    Ok((out, took_b)) => (out, took_a, took_b),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            });
            self.balance
                .observe(first_b, total - first_b, took_a, took_b);
            Some(out)
        };
        let out_a = lane_a.finish();
        self.lane_bufs = bufs;
        self.absorb(out_a, 0);
        if let Some(out_b) = out_b {
            self.absorb(out_b, 1);
        }
        // The stream layers' events, in time order.
        self.window_end = Some(end);
        for it in items.iter_mut().skip(total) {
            if let Some(ev) = it.ev.take() {
                self.now = self.now.max((it.key >> 64) as u64);
                self.dispatch(ev);
            }
        }
        self.window_end = None;
        items.clear();
        self.items = items;
        self.groups = groups;
    }

    /// Orders the events of a window by node into `items` (a node's own in any order: the
    /// lane that processes them sorts them), and lists each node's range in `groups`
    /// (stream-layer events last, as node `nodes.len()`, sorted by key).
    fn order_window(&mut self, batch: &mut Vec<(u128, SimEvent)>) {
        let none = self.nodes.len() as u32;
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        targets.extend(batch.iter().map(|(_, ev)| self.target(ev).unwrap_or(none)));
        let items = &mut self.items;
        items.clear();
        if batch.len() * 4 >= self.nodes.len() {
            // Counting sort by node (stable), then each node's few events by key.
            let counts = &mut self.counts;
            counts.clear();
            counts.resize(self.nodes.len() + 2, 0);
            for &t in &targets {
                counts[t as usize + 1] += 1;
            }
            for i in 1..counts.len() {
                counts[i] += counts[i - 1];
            }
            items.resize_with(batch.len(), || Item {
                key: 0,
                node: 0,
                ev: None,
            });
            for ((key, ev), &node) in batch.drain(..).zip(&targets) {
                let at = &mut counts[node as usize];
                items[*at] = Item {
                    key,
                    node,
                    ev: Some(ev),
                };
                *at += 1;
            }
        } else {
            items.extend(
                batch
                    .drain(..)
                    .zip(&targets)
                    .map(|((key, ev), &node)| Item {
                        key,
                        node,
                        ev: Some(ev),
                    }),
            );
            items.sort_unstable_by_key(|it| it.node);
        }
        self.targets = targets;
        let groups = &mut self.groups;
        groups.clear();
        let mut a = 0;
        while a < items.len() {
            let node = items[a].node;
            let b = a + items[a..].partition_point(|it| it.node == node);
            if node == none {
                // Nodes' events are put in time order by the lanes; these are not.
                items[a..b].sort_unstable_by_key(|it| it.key);
            }
            groups.push((node, a, b));
            a = b;
        }
    }

    /// Virtual time of the next pending event.
    pub(crate) fn next_at(&mut self) -> Option<u64> {
        self.next_key().map(|k| (k >> 64) as u64)
    }

    /// Runs every event due within `d`, then moves the clock to the end of `d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d.as_nanos() as u64;
        while self.next_at().is_some_and(|t| t <= end) {
            self.step();
        }
        self.now = end;
    }

    /// Steps until `pred` holds (checked before each step), for at most `within` of virtual
    /// time. On failure the clock stands at the deadline.
    pub fn run_until(
        &mut self,
        mut pred: impl FnMut(&mut Self) -> bool,
        within: Duration,
    ) -> Result<(), Stuck> {
        let end = self.now + within.as_nanos() as u64;
        let window = if self.batching { self.lookahead() } else { 0 };
        loop {
            if pred(self) {
                return Ok(());
            }
            if self.next_at().is_none_or(|t| t > end) {
                self.now = self.now.max(end);
                return Err(self.stuck("condition still false".to_owned()));
            }
            if window > 0 {
                self.step_window(window, end);
            } else {
                self.step();
            }
        }
    }

    pub(crate) fn stuck(&self, detail: String) -> Stuck {
        Stuck {
            at: self.now(),
            seed: self.seed,
            detail,
        }
    }

    pub(crate) fn violation(&self, what: &str) -> ! {
        crate::drive::violation(self.now, self.seed, what)
    }

    /// Closes end `e` of session `s` from its own side (a crash): the other end hears of it
    /// after the data already in flight, unless the direction is partitioned.
    pub(crate) fn send_close(&mut self, s: usize, e: usize) {
        if let Some(at) = close_at(&self.links, &self.sessions, s, e, self.now) {
            self.schedule(
                at,
                SimEvent::Closed {
                    to: end_id(s, 1 - e),
                },
            );
        }
    }

    fn redial_later(&mut self, l: u32) {
        let link = &self.links[l as usize];
        let dialer_alive = self.nodes[link.ends[0] as usize].alive();
        if let Some(at) = redial_at(link, dialer_alive, self.now) {
            self.schedule(at, SimEvent::Dial { link: l });
        }
    }

    /// The dialer of link `l` connects now, if it is alive and not connected.
    pub(crate) fn dial(&mut self, l: u32) {
        let link = &self.links[l as usize];
        let [a, b] = link.ends;
        let connected = link
            .session
            .is_some_and(|s| self.sessions[s as usize].is_open(0));
        if link.removed || connected || !self.nodes[a as usize].alive() {
            return;
        }
        self.stats.dials += 1;
        if !self.nodes[b as usize].alive() || !link.healthy() {
            self.stats.failed_dials += 1;
            self.redial_later(l);
            return;
        }
        let s = self.sessions.len();
        self.sessions.push(Session::new(l));
        let link = &mut self.links[l as usize];
        link.backoff.reset();
        link.session = Some(s as u32);
        let configs = link.configs.clone();
        let [c0, c1] = configs;
        self.feed(
            a,
            Some(Input::LinkUp {
                link: end_id(s, 0),
                config: c0,
            }),
        );
        if self.sessions[s].is_open(1) && self.nodes[b as usize].alive() {
            self.feed(
                b,
                Some(Input::LinkUp {
                    link: end_id(s, 1),
                    config: c1,
                }),
            );
        }
    }
}

/// The events waiting to happen, and the sequence that orders those due at the same time.
#[derive(Debug)]
pub(crate) struct Pending {
    queue: EventQueue<SimEvent>,
    /// Dials, which involve two nodes, wait apart: a window ends before the next one.
    dials: BTreeMap<u128, u32>,
    seq: u64,
}

impl Pending {
    /// Schedules `ev` at `at` (not before `now`), after everything scheduled so far for
    /// the same time.
    pub(crate) fn push(&mut self, now: u64, at: u64, ev: SimEvent) {
        self.seq += 1;
        match ev {
            SimEvent::Dial { link } => {
                assert!(at >= now, "event scheduled in the past");
                self.dials.insert(crate::queue::key(at, self.seq), link);
            }
            ev => self.queue.push(at, self.seq, ev),
        }
    }
}

/// How a window's events are shared between two threads. Events do not cost the same
/// everywhere (a node with many events per window keeps its state in the cache, one with
/// few meets it cold), so an even split by count leaves one thread waiting; the share
/// follows the time each thread took per event. Only wall-clock time decides it, and the
/// run does not depend on the split.
#[derive(Debug, Clone, Copy)]
struct Balance {
    /// The first thread's share of the events, in 1/1024ths.
    share: u64,
}

impl Default for Balance {
    fn default() -> Self {
        Self { share: 512 }
    }
}

impl Balance {
    /// How many of `total` events the first thread takes.
    fn first_share(&self, total: usize) -> usize {
        (total as u64 * self.share / 1024) as usize
    }

    /// Learns from a window: the threads took `took_a` and `took_b` for `a` and `b` events.
    fn observe(&mut self, a: usize, b: usize, took_a: Duration, took_b: Duration) {
        let (ta, tb) = (took_a.as_nanos() as u64, took_b.as_nanos() as u64);
        if a == 0 || b == 0 || ta == 0 || tb == 0 {
            return;
        }
        // Per-event costs, and the share that would have made both threads take as long.
        let (ca, cb) = (ta as f64 / a as f64, tb as f64 / b as f64);
        let ideal = 1024.0 * cb / (ca + cb);
        let next = (self.share as f64 + ideal) / 2.0;
        self.share = next.clamp(256.0, 768.0) as u64;
    }
}

/// Session index and end of a `LinkId`.
pub(crate) fn split(id: LinkId) -> (usize, usize) {
    ((id.0 / 2) as usize, (id.0 % 2) as usize)
}

/// The `LinkId` of end `e` of session `s`.
pub(crate) fn end_id(s: usize, e: usize) -> LinkId {
    LinkId((s * 2 + e) as u64)
}

/// Derives a node's RNG seed from the simulation seed, its name and its incarnation, so
/// adding nodes in another order does not change their seeds.
fn node_seed(seed: u64, name: &NodeId, incarnation: u32) -> u64 {
    let mut h = TraceHash::default();
    h.bytes(name.as_str().as_bytes());
    mix64(seed ^ mix64(h.finish() ^ u64::from(incarnation)))
}
