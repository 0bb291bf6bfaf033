//! What a test does to a running simulation: faults (partitions, crashes, restarts),
//! application commands (listen, send, ping, traceroute), and what it can look at.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use receptor_core::wire::UnreachableNotice;
use receptor_core::{
    Addr, Advertise, Event, ListenError, Node, NodeId, PingId, PingResult, SendError, ServiceName,
};

use crate::check::{Truth, Wrong};
use crate::link::DirState;
use crate::sim::{Recorded, Sim, Stuck};

impl Sim {
    // ---- faults ----

    /// Configured links between `a` and `b`, either way round.
    fn links_between(&self, a: u32, b: u32) -> Vec<usize> {
        self.nodes[a as usize]
            .links
            .iter()
            .map(|&l| l as usize)
            .filter(|&l| {
                let [x, y] = self.links[l].ends;
                (x, y) == (a, b) || (x, y) == (b, a)
            })
            .collect()
    }

    fn set_dirs(&mut self, a: &str, b: &str, state: DirState, one_way: bool) {
        let (ia, ib) = (self.ix(a), self.ix(b));
        for l in self.links_between(ia, ib) {
            let link = &mut self.links[l];
            if one_way {
                let e = usize::from(link.ends[0] != ia);
                link.dir[e] = state;
            } else {
                link.dir = [state; 2];
            }
        }
        self.conv.invalidate();
    }

    /// Cuts every link between `a` and `b` in both directions: messages, closes and dials
    /// are lost until [`Sim::heal`]. Sessions idle out after the core's 21 s.
    pub fn partition(&mut self, a: &str, b: &str) {
        self.set_dirs(a, b, DirState::Partitioned, false);
    }

    /// Cuts the links between `from` and `to` in the direction from `from` only.
    pub fn partition_oneway(&mut self, from: &str, to: &str) {
        self.set_dirs(from, to, DirState::Partitioned, true);
    }

    /// Restores both directions of every link between `a` and `b`.
    pub fn heal(&mut self, a: &str, b: &str) {
        self.set_dirs(a, b, DirState::Up, false);
    }

    /// Partitions every link that has one end in `left` and the other in `right`.
    pub fn partition_groups(&mut self, left: &[&str], right: &[&str]) {
        for a in left {
            for b in right {
                self.partition(a, b);
            }
        }
    }

    /// Cuts every link of `node`.
    pub fn isolate(&mut self, node: &str) {
        let n = self.ix(node);
        for &l in &self.nodes[n as usize].links {
            self.links[l as usize].dir = [DirState::Partitioned; 2];
        }
        self.conv.invalidate();
    }

    /// Restores every direction of every link.
    pub fn heal_all(&mut self) {
        for link in &mut self.links {
            link.dir = [DirState::Up; 2];
        }
        self.conv.invalidate();
    }

    /// Changes the loss probability of the links between `a` and `b` from now on.
    pub fn set_loss(&mut self, a: &str, b: &str, loss: f64) {
        let (ia, ib) = (self.ix(a), self.ix(b));
        for l in self.links_between(ia, ib) {
            self.links[l].model.loss = loss;
        }
    }

    /// Removes the links between `a` and `b` for good: open sessions go down at both ends
    /// and nobody redials.
    pub fn disconnect(&mut self, a: &str, b: &str) {
        let (ia, ib) = (self.ix(a), self.ix(b));
        for l in self.links_between(ia, ib) {
            self.links[l].removed = true;
            let Some(s) = self.links[l].session.map(|s| s as usize) else {
                continue;
            };
            for e in 0..2 {
                if self.sessions[s].is_open(e) {
                    self.sessions[s].close(e);
                    let n = self.links[l].ends[e];
                    let link = crate::sim::end_id(s, e);
                    self.feed(n, Some(receptor_core::Input::LinkDown { link }));
                }
            }
        }
        self.conv.invalidate();
    }

    /// The process dies: the node vanishes, and its peers see its sessions close (after the
    /// data in flight, unless partitioned). Its dialers stop until [`Sim::restart`].
    pub fn crash(&mut self, node: &str) {
        let n = self.ix(node);
        let sn = &mut self.nodes[n as usize];
        if sn.node.take().is_none() {
            return;
        }
        sn.timer = None;
        sn.timer_token += 1;
        for l in sn.links.clone() {
            let Some(s) = self.links[l as usize].session.map(|s| s as usize) else {
                continue;
            };
            for e in 0..2 {
                if self.links[l as usize].ends[e] == n && self.sessions[s].is_open(e) {
                    self.sessions[s].close(e);
                    self.sessions[s].set_gone(e);
                    self.send_close(s, e);
                }
            }
        }
        self.conv.invalidate();
        // Its mesh streams die with it (`streams.rs`).
        self.stream_crash(n);
    }

    /// Starts the node again (crashing it first if it runs): a new `Node` whose wall clock
    /// is later, so its epoch is larger. Its own links dial at once; its peers' redials find
    /// it on their own schedule.
    pub fn restart(&mut self, node: &str) {
        self.crash(node);
        let n = self.ix(node);
        self.start(n);
        for l in self.nodes[n as usize].links.clone() {
            let link = &mut self.links[l as usize];
            if link.ends[0] == n {
                link.backoff.reset();
                self.dial(l);
            }
        }
    }

    // ---- commands ----

    fn alive_node(&mut self, name: &str) -> Option<(u32, &mut Node)> {
        let n = self.ix(name);
        let node = self.nodes[n as usize]
            .node
            .as_mut()
            .filter(|n| !n.is_shut_down())?;
        Some((n, node))
    }

    /// Binds `service` on `node`, not advertised.
    ///
    /// # Panics
    /// If the node is not running.
    pub fn listen(&mut self, node: &str, service: &str) -> Result<ServiceName, ListenError> {
        self.listen_advertised(node, service, None)
    }

    /// Binds `service` on `node`, advertised with `ad` if given.
    ///
    /// # Panics
    /// If the node is not running.
    pub fn listen_advertised(
        &mut self,
        node: &str,
        service: &str,
        ad: Option<Advertise>,
    ) -> Result<ServiceName, ListenError> {
        let now = self.instant();
        let (n, nd) = self
            .alive_node(node)
            .unwrap_or_else(|| panic!("node {node} is not running"));
        let r = nd.listen(now, Some(service), ad);
        self.feed(n, None);
        r
    }

    /// Unbinds `service` on `node`; an advertised one is withdrawn from the mesh.
    ///
    /// # Panics
    /// If the node is not running or the name is not a valid service name.
    pub fn unlisten(&mut self, node: &str, service: &str) {
        let service = ServiceName::new(service).unwrap_or_else(|e| panic!("{service:?}: {e}"));
        let now = self.instant();
        let (n, nd) = self
            .alive_node(node)
            .unwrap_or_else(|| panic!("node {node} is not running"));
        nd.unlisten(now, service);
        self.feed(n, None);
    }

    /// Sends `payload` from `from:from_service` to `to:to_service` with the default
    /// hops-to-live.
    pub fn send(
        &mut self,
        from: &str,
        from_service: &str,
        to: &str,
        to_service: &str,
        payload: impl Into<Bytes>,
    ) -> Result<(), SendError> {
        self.send_with_hops(from, from_service, to, to_service, payload, None)
    }

    /// As [`Sim::send`], with an explicit hops-to-live.
    ///
    /// # Panics
    /// If a service name is not valid.
    pub fn send_with_hops(
        &mut self,
        from: &str,
        from_service: &str,
        to: &str,
        to_service: &str,
        payload: impl Into<Bytes>,
        hops: Option<u8>,
    ) -> Result<(), SendError> {
        let service = |s: &str| ServiceName::new(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let (fs, ts) = (service(from_service), service(to_service));
        let now = self.instant();
        let Some((n, nd)) = self.alive_node(from) else {
            return Err(SendError::ShutDown);
        };
        let r = nd.send(now, fs, to, ts, payload.into(), hops);
        self.feed(n, None);
        r
    }

    /// Starts a ping from `from` to `to`; see [`Sim::ping_result`].
    pub fn ping(&mut self, from: &str, to: &str) -> Result<PingId, SendError> {
        let now = self.instant();
        let Some((n, nd)) = self.alive_node(from) else {
            return Err(SendError::ShutDown);
        };
        let r = nd.ping(now, to);
        self.feed(n, None);
        r
    }

    /// Starts a traceroute from `from` to `to`; see [`Sim::trace_result`].
    pub fn traceroute(&mut self, from: &str, to: &str) -> Result<PingId, SendError> {
        let now = self.instant();
        let Some((n, nd)) = self.alive_node(from) else {
            return Err(SendError::ShutDown);
        };
        let r = nd.traceroute(now, to);
        self.feed(n, None);
        r
    }

    // ---- looking ----

    /// The running node (also when shut down), or `None` while crashed.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes[self.ix(name) as usize].node.as_ref()
    }

    /// Whether the node runs and has not shut down.
    pub fn is_alive(&self, name: &str) -> bool {
        self.nodes[self.ix(name) as usize].alive()
    }

    /// The node's routing table (destination -> first hop); empty while crashed.
    pub fn routes(&self, name: &str) -> BTreeMap<NodeId, NodeId> {
        self.node(name)
            .map(|n| n.routes().clone())
            .unwrap_or_default()
    }

    /// Simulator names of all nodes, in order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(NodeId::as_str)
    }

    /// Everything the node reported so far (all incarnations).
    pub fn events(&self, name: &str) -> &[Recorded] {
        &self.nodes[self.ix(name) as usize].events
    }

    /// Forgets the node's recorded events.
    pub fn clear_events(&mut self, name: &str) {
        let n = self.ix(name);
        self.nodes[n as usize].events.clear();
    }

    /// Datagrams delivered to `service` on `node`: (sender, payload).
    pub fn datagrams(&self, node: &str, service: &str) -> Vec<(Addr, Bytes)> {
        self.events(node)
            .iter()
            .filter_map(|r| match &r.event {
                Event::Datagram {
                    service: s,
                    from,
                    payload,
                } if s.as_bytes() == service.as_bytes() => Some((from.clone(), payload.clone())),
                _ => None,
            })
            .collect()
    }

    /// Unreachable notices delivered to services of `node`: (service, reporter, notice).
    pub fn unreachables(&self, node: &str) -> Vec<(ServiceName, NodeId, UnreachableNotice)> {
        self.events(node)
            .iter()
            .filter_map(|r| match &r.event {
                Event::Unreachable {
                    service,
                    reporter,
                    notice,
                } => Some((*service, reporter.clone(), notice.clone())),
                _ => None,
            })
            .collect()
    }

    /// The outcome of a ping started on `node`, once it has one.
    pub fn ping_result(&self, node: &str, id: PingId) -> Option<PingResult> {
        self.events(node).iter().find_map(|r| match &r.event {
            Event::Ping { id: i, result } if *i == id => Some(result.clone()),
            _ => None,
        })
    }

    /// The hops of a traceroute started on `node`, once it is done.
    pub fn trace_result(&self, node: &str, id: PingId) -> Option<Vec<(u8, PingResult)>> {
        let events = self.events(node);
        let done = events
            .iter()
            .any(|r| matches!(r.event, Event::TraceDone { id: i } if i == id));
        done.then(|| {
            events
                .iter()
                .filter_map(|r| match &r.event {
                    Event::TraceHop { id: i, hop, result } if *i == id => {
                        Some((*hop, result.clone()))
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// Runs until the ping has an outcome (at most 15 s of virtual time).
    pub fn wait_ping(&mut self, node: &str, id: PingId) -> Result<PingResult, Stuck> {
        let mut out = None;
        self.run_until(
            |sim| {
                out = sim.ping_result(node, id);
                out.is_some()
            },
            Duration::from_secs(15),
        )?;
        out.ok_or_else(|| self.stuck("no ping result".to_owned()))
    }

    /// Runs until the traceroute is done (at most `within`).
    pub fn wait_trace(
        &mut self,
        node: &str,
        id: PingId,
        within: Duration,
    ) -> Result<Vec<(u8, PingResult)>, Stuck> {
        let mut out = None;
        self.run_until(
            |sim| {
                out = sim.trace_result(node, id);
                out.is_some()
            },
            within,
        )?;
        out.ok_or_else(|| self.stuck("no traceroute result".to_owned()))
    }

    // ---- convergence ----

    fn truth(&self) -> Truth {
        let ids: Vec<Option<&NodeId>> = self
            .nodes
            .iter()
            .map(|sn| {
                let node = sn.node.as_ref().filter(|n| !n.is_shut_down())?;
                Some(node.id())
            })
            .collect();
        let edges: Vec<(u32, u32, f64)> = self
            .links
            .iter()
            .filter_map(|link| {
                let [a, b] = link.ends;
                let (ida, idb) = (ids[a as usize]?, ids[b as usize]?);
                let up = !link.removed && link.healthy() && link.viable([ida, idb]);
                up.then(|| (a, b, link.cost_at(0, idb)))
            })
            .collect();
        Truth::new(&ids, &edges)
    }

    /// Whether every running node's routing table is complete and correct for the current
    /// topology (see the `check` module). Cheap to call after every step.
    pub fn converged(&mut self) -> bool {
        if self.conv.needs_truth() {
            let truth = self.truth();
            self.conv.set_truth(truth, self.nodes.len());
        }
        let nodes = &self.nodes;
        self.conv.update(|i| {
            let node = nodes[i as usize].node.as_ref()?;
            (!node.is_shut_down()).then(|| node.routes())
        })
    }

    /// Runs until [`Sim::converged`], for at most `within`. The error lists wrong tables.
    pub fn run_until_converged(&mut self, within: Duration) -> Result<(), Stuck> {
        self.run_until(Self::converged, within).map_err(|mut e| {
            let wrong = self.wrong_tables();
            e.detail = format!("{} tables wrong", wrong.len());
            for (node, why) in wrong.iter().take(5) {
                e.detail.push_str(&format!("; {node}: {why}"));
            }
            e
        })
    }

    /// Every running node whose table is wrong, and why (recomputed from scratch).
    pub fn wrong_tables(&self) -> Vec<(NodeId, Wrong)> {
        let mut truth = self.truth();
        let mut out = Vec::new();
        for (i, sn) in self.nodes.iter().enumerate() {
            let Some(node) = sn.node.as_ref().filter(|n| !n.is_shut_down()) else {
                continue;
            };
            if let Err(w) = truth.check(i as u32, node.routes()) {
                out.push((sn.name.clone(), w));
            }
        }
        out
    }

    /// Number of partitions among running nodes, as the simulator's links define them.
    pub fn partitions(&self) -> usize {
        self.truth().partitions()
    }
}
