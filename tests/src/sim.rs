//! The simulator proper: virtual clock, event queue, nodes, links and dialing. How one node
//! is driven and its transmits carried is in `drive.rs`; fault injection, commands and
//! getters are in `control.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use receptor_core::{Config, Event, Input, LinkId, Node, NodeId};

use crate::check::{Convergence, TraceHash, mix64};
use crate::link::{DirState, LinkModel, Session, SimLink};
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
    spin: (u64, u32),
    pub(crate) events: Vec<Recorded>,
    /// Configured links touching this node.
    pub(crate) links: Vec<u32>,
}

impl SimNode {
    /// Running and not shut down.
    pub(crate) fn alive(&self) -> bool {
        self.node.as_ref().is_some_and(|n| !n.is_shut_down())
    }
}

/// A deterministic simulation of a Receptor mesh: many [`Node`]s joined by modelled links,
/// driven by one virtual clock and one seeded random stream.
///
/// The same seed and the same calls give the same run, bit for bit ([`Sim::trace_hash`]).
/// Absolute `Instant`s never leave the simulator: times are offsets from its start.
pub struct Sim {
    pub(crate) seed: u64,
    base: Instant,
    pub(crate) now: u64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) names: BTreeMap<NodeId, u32>,
    pub(crate) links: Vec<SimLink>,
    pub(crate) sessions: Vec<Session>,
    queue: EventQueue<SimEvent>,
    seq: u64,
    pub(crate) stats: SimStats,
    pub(crate) hash: TraceHash,
    pub(crate) conv: Convergence,
    pub(crate) record: bool,
    /// Inputs waiting to be fed to the node being driven (reused buffer).
    pub(crate) work: VecDeque<Input>,
    /// Mesh streams (`streams.rs`); empty unless a test uses them.
    pub(crate) stream_world: crate::streams::StreamWorld,
    /// Whether `run_until` may process events in windows, node by node.
    batching: bool,
    /// The window being processed, if any.
    window: Option<Window>,
    /// The events of a window, in time order, and their order of processing: node << 32 |
    /// position (reused buffers).
    batch: Vec<(u128, Option<SimEvent>)>,
    batch_order: Vec<u64>,
}

/// A window of virtual time being processed node by node (see [`Sim::set_batching`]).
#[derive(Debug)]
struct Window {
    /// Events at or after this time wait for the next window.
    end: u64,
    /// The node being processed.
    node: u32,
    /// Its own events (timers) scheduled inside the window, by key, largest first.
    local: Vec<(u128, SimEvent)>,
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

impl Sim {
    /// An empty simulation at virtual time zero.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            // The one clock read: an anchor for the `Instant`s the core wants. Only offsets
            // from it are ever used or shown.
            base: Instant::now(),
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            nodes: Vec::new(),
            names: BTreeMap::new(),
            links: Vec::new(),
            sessions: Vec::new(),
            queue: EventQueue::new(),
            seq: 0,
            stats: SimStats::default(),
            hash: TraceHash::default(),
            conv: Convergence::default(),
            record: true,
            work: VecDeque::new(),
            stream_world: Default::default(),
            batching: false,
            window: None,
            batch: Vec::new(),
            batch_order: Vec::new(),
        }
    }

    /// Lets [`Sim::run_until`] (and so [`Sim::run_until_converged`]) process events in
    /// windows as long as the shortest link latency, node by node, instead of one at a time
    /// in time order. Nothing a node does can reach another node within such a window, so
    /// every node still gets the same inputs at the same times; keeping one node's state
    /// in the cache for all its events of a window makes large meshes much faster.
    ///
    /// What changes: random draws (loss, jitter) and the tie-breaking of events at the very
    /// same nanosecond follow the processing order, so a batched run differs from an
    /// unbatched one with the same seed (each is repeatable), and the goal is checked
    /// between windows, so `run_until` stops at the end of the window that reached it.
    pub fn set_batching(&mut self, on: bool) {
        self.batching = on;
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

    /// A hash of every frame transmitted so far, with its time, node and link.
    pub fn trace_hash(&self) -> u64 {
        self.hash.finish()
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
        self.seq += 1;
        if let Some(w) = self.window.as_mut()
            && at < w.end
        {
            // Only a node's own timers can fall inside the window it is processed in.
            if !matches!(ev, SimEvent::Timer { node, .. } if node == w.node) {
                self.violation("an event for another node inside the lookahead window");
            }
            let k = crate::queue::key(at, self.seq);
            let i = w.local.partition_point(|(x, _)| *x > k);
            w.local.insert(i, (k, ev));
            return;
        }
        self.queue.push(at, self.seq, ev);
    }

    /// Processes the earliest pending event. Returns `false` when nothing is pending.
    pub fn step(&mut self) -> bool {
        let Some((at, ev)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        self.dispatch(ev);
        true
    }

    fn dispatch(&mut self, ev: SimEvent) {
        self.stats.steps += 1;
        match ev {
            SimEvent::Timer { node, token } => self.on_timer(node, token),
            SimEvent::Deliver { to, frame, .. } => self.on_deliver(to, frame),
            SimEvent::Closed { to } => self.on_closed(to),
            SimEvent::Dial { link } => {
                self.links[link as usize].dial_pending = false;
                self.dial(link);
            }
            SimEvent::Streams { node, token } => self.on_streams(node, token),
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
    /// [`Sim::set_batching`]). A dial, which involves two nodes, ends the window early and
    /// is processed on its own.
    fn step_window(&mut self, w: u64, limit: u64) {
        let Some((t0, ev)) = self.queue.peek() else {
            return;
        };
        if matches!(ev, SimEvent::Dial { .. }) {
            self.step();
            return;
        }
        let end = t0.saturating_add(w).min(limit.saturating_add(1));
        let mut batch = std::mem::take(&mut self.batch);
        let mut order = std::mem::take(&mut self.batch_order);
        while let Some((at, ev)) = self.queue.peek()
            && at < end
            && !matches!(ev, SimEvent::Dial { .. })
        {
            let Some((k, ev)) = self.queue.pop_keyed() else {
                break;
            };
            let node = self.target(&ev).unwrap_or(u32::MAX);
            order.push((u64::from(node) << 32) | batch.len() as u64);
            batch.push((k, Some(ev)));
        }
        // By node, then by position in time order.
        order.sort_unstable();
        let mut last = self.now;
        let mut i = 0;
        while let Some(&first) = order.get(i) {
            let node = (first >> 32) as u32;
            self.window = Some(Window {
                end,
                node,
                local: Vec::new(),
            });
            loop {
                let next_batch = order
                    .get(i)
                    .filter(|&&o| (o >> 32) as u32 == node)
                    .and_then(|&o| batch.get(o as u32 as usize))
                    .map(|e| e.0);
                let next_local = self
                    .window
                    .as_ref()
                    .and_then(|w| w.local.last())
                    .map(|e| e.0);
                let (k, ev) = match (next_batch, next_local) {
                    (None, None) => break,
                    (Some(b), Some(l)) if l < b => self.pop_local(),
                    (Some(_), _) => {
                        let at = order.get(i).map_or(usize::MAX, |&o| o as u32 as usize);
                        i += 1;
                        batch.get_mut(at).and_then(|e| Some((e.0, e.1.take()?)))
                    }
                    (None, Some(_)) => self.pop_local(),
                }
                .unwrap_or_else(|| self.violation("window bookkeeping"));
                let at = (k >> 64) as u64;
                self.now = at;
                last = last.max(at);
                self.dispatch(ev);
            }
        }
        batch.clear();
        order.clear();
        self.batch = batch;
        self.batch_order = order;
        self.window = None;
        self.now = last;
    }

    fn pop_local(&mut self) -> Option<(u128, SimEvent)> {
        self.window.as_mut().and_then(|w| w.local.pop())
    }

    /// Virtual time of the next pending event.
    pub(crate) fn next_at(&mut self) -> Option<u64> {
        self.queue.peek_at()
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
        panic!(
            "simulator invariant violated at t={:?}: {what} (seed {}; replay with SIM_SEED={})",
            self.now(),
            self.seed,
            self.seed
        );
    }

    fn on_timer(&mut self, n: u32, token: u64) {
        let now = self.now;
        let sn = &mut self.nodes[n as usize];
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
            let name = sn.name.clone();
            self.violation(&format!("node {name} asks for timeouts without end"));
        }
        self.feed(n, Some(Input::Timeout));
    }

    fn on_deliver(&mut self, to: LinkId, frame: Bytes) {
        let (s, r) = split(to);
        let sess = &self.sessions[s];
        let link = &self.links[sess.link as usize];
        let x = 1 - r;
        if link.dir[x] == DirState::Partitioned {
            self.stats.dropped_partition += 1;
            return;
        }
        if !sess.open[r] {
            self.stats.dropped_closed += 1;
            // TCP answers bytes for a closed socket with a reset.
            if link.model.ordered() && sess.open[x] && link.dir[r] == DirState::Up {
                let at = self.now + link.model.latency.as_nanos() as u64;
                self.schedule(at, SimEvent::Closed { to: end_id(s, x) });
            }
            return;
        }
        self.stats.delivered += 1;
        let n = link.ends[r];
        self.feed(
            n,
            Some(Input::Received {
                link: to,
                data: frame,
            }),
        );
    }

    fn on_closed(&mut self, to: LinkId) {
        let (s, r) = split(to);
        let l = self.sessions[s].link as usize;
        if self.links[l].dir[1 - r] == DirState::Partitioned || !self.sessions[s].open[r] {
            return;
        }
        let input = self.end_down(s, r);
        let n = self.links[l].ends[r];
        self.feed(n, Some(input));
    }

    /// Marks end `e` of session `s` closed, schedules the dialer's redial, and returns the
    /// `LinkDown` for its node.
    pub(crate) fn end_down(&mut self, s: usize, e: usize) -> Input {
        self.sessions[s].open[e] = false;
        if e == 0 {
            self.redial_later(self.sessions[s].link);
        }
        Input::LinkDown { link: end_id(s, e) }
    }

    fn redial_later(&mut self, l: u32) {
        let link = &mut self.links[l as usize];
        let dialer_alive = self.nodes[link.ends[0] as usize].alive();
        if link.removed || !link.model.redial || link.dial_pending || !dialer_alive {
            return;
        }
        link.dial_pending = true;
        let at = self.now + link.backoff.next_wait().as_nanos() as u64;
        self.schedule(at, SimEvent::Dial { link: l });
    }

    /// The dialer of link `l` connects now, if it is alive and not connected.
    pub(crate) fn dial(&mut self, l: u32) {
        let link = &self.links[l as usize];
        let [a, b] = link.ends;
        let connected = link
            .session
            .is_some_and(|s| self.sessions[s as usize].open[0]);
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
        if self.sessions[s].open[1] && self.nodes[b as usize].alive() {
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
