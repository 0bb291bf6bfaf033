//! Bounds on what peers can make a node hold: how much one link may teach, and forgetting
//! what no route reaches any more (Go keeps everything it ever learned).

use std::time::Duration;

use super::Node;
use crate::id::LinkId;

impl Node {
    /// How often to look for state to forget: a quarter of the forget time, so state goes
    /// between 1 and 1.25 times that after the last route to it.
    pub(super) fn sweep_interval(&self) -> Duration {
        (self.config.forget_after / 4).max(Duration::from_secs(1))
    }

    /// Forgets nodes no route has reached for `forget_after`, names nothing refers to, and
    /// the advertisements of unreachable nodes (and cancelled ones) after the same time;
    /// gives the links that taught them their room back.
    pub(super) fn forget(&mut self) {
        let (now, after) = (self.now, self.config.forget_after);
        let gone = self.router.sweep(now, after);
        if !gone.nodes.is_empty() || !gone.names.is_empty() {
            for (_, via) in &gone.names {
                if let Some(l) = via.and_then(|v| self.links.get_mut(&v)) {
                    l.learned_nodes = l.learned_nodes.saturating_sub(1);
                }
            }
            for name in gone.nodes.iter().chain(gone.names.iter().map(|(n, _)| n)) {
                let h = name.hash();
                if *name != self.id
                    && !self.peers.contains_key(name)
                    && self.names.get(&h) == Some(name)
                {
                    self.names.remove(&h);
                }
            }
            self.stats.nodes_forgotten += gone.nodes.len() as u64;
            tracing::debug!(
                node = %self.id,
                nodes = gone.nodes.len(),
                names = gone.names.len(),
                "forgot state no route reaches"
            );
            // Indexes moved: the forwarding index is rebuilt.
            self.forward_stale = true;
            self.recompute();
        }
        let table = self.router.table();
        let freed = self
            .services
            .sweep(now, after, self.id.as_str(), |n| table.contains_key(n));
        self.stats.ads_forgotten += freed.len() as u64;
        for via in freed {
            if let Some(l) = via.and_then(|v| self.links.get_mut(&v)) {
                l.learned_ads = l.learned_ads.saturating_sub(1);
            }
        }
    }

    /// A link reached a bound on what one link may teach: say so once per link.
    pub(super) fn link_full(&mut self, link: LinkId, what: &str) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if !l.warned_full {
            l.warned_full = true;
            tracing::warn!(
                node = %self.id, %link, peer = ?l.remote,
                "this link has taught as many {what} as one link may; further new ones \
                 from it are dropped until some are forgotten"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::config::{Config, LinkConfig, LinkKind};
    use crate::id::NodeId;
    use crate::node::Input;
    use crate::wire::{RouteUpdate, ServiceAdvert};

    /// Plays peer `p` on link 1 of node `me`.
    struct Peer {
        node: Node,
        now: Instant,
        seq: u64,
        ids: u64,
        /// p's own connections, sent again every 5 s of `wait` to keep the link up.
        conns: Vec<&'static str>,
        up: bool,
    }

    impl Peer {
        fn new(tweak: impl FnOnce(&mut Config)) -> Self {
            let now = Instant::now();
            let mut cfg = Config::new(
                NodeId::new("me").unwrap(),
                1,
                Duration::from_secs(1_760_000_000),
            );
            tweak(&mut cfg);
            let mut node = Node::new(Arc::new(cfg), now).unwrap();
            node.handle_input(
                now,
                Input::LinkUp {
                    link: LinkId(1),
                    config: Arc::new(LinkConfig::new(LinkKind::Stream)),
                },
            );
            let mut p = Self {
                node,
                now,
                seq: 0,
                ids: 0,
                conns: vec!["me"],
                up: true,
            };
            p.update("p", &[]);
            p.update("p", &["me"]);
            p.drain();
            p
        }

        fn send(&mut self, msg: &[u8]) {
            let mut v = (msg.len() as u16).to_le_bytes().to_vec();
            v.extend_from_slice(msg);
            self.node.handle_input(
                self.now,
                Input::Received {
                    link: LinkId(1),
                    data: Bytes::from(v),
                },
            );
        }

        /// An update from `origin`, forwarded by `p`.
        fn update(&mut self, origin: &str, conns: &[&str]) {
            self.seq += 1;
            self.ids += 1;
            let r = RouteUpdate {
                node_id: origin.into(),
                update_id: format!("u{}", self.ids),
                epoch: 7,
                sequence: self.seq,
                connections: conns.iter().map(|c| (c.to_string(), 1.0)).collect(),
                forwarding_node: "p".into(),
                suspected_duplicate: 0,
            };
            self.send(r.encode().unwrap().message());
        }

        fn advert(&mut self, node: &str, service: &str) {
            self.ids += 1;
            let ad = ServiceAdvert {
                node_id: node.into(),
                service: service.into(),
                time: i128::from(self.ids) * 1_000_000_000,
                ..Default::default()
            };
            self.send(ad.encode().unwrap().message());
        }

        /// p's own update, listing `conns`, from now on.
        fn lists(&mut self, conns: &[&'static str]) {
            self.conns = conns.to_vec();
            self.update("p", conns);
        }

        fn wait(&mut self, d: Duration) {
            let end = self.now + d;
            let mut keepalive = self.now;
            loop {
                let next = self.node.poll_timeout().filter(|&t| t <= end);
                let step = (keepalive + Duration::from_secs(5)).min(end);
                let at = next.map_or(step, |t| t.min(step));
                self.now = at.max(self.now);
                if self.up && self.now >= keepalive + Duration::from_secs(5) {
                    keepalive = self.now;
                    let conns = self.conns.clone();
                    self.update("p", &conns);
                }
                self.node.handle_input(self.now, Input::Timeout);
                self.drain();
                if self.now >= end {
                    break;
                }
            }
        }

        fn drain(&mut self) {
            while self.node.poll_transmit().is_some() {}
            while self.node.poll_event().is_some() {}
        }

        fn known(&self) -> Vec<String> {
            let g = self.node.router.graph();
            (0..g.len() as u32)
                .filter_map(|i| g.name(i))
                .map(|n| n.to_string())
                .collect()
        }

        fn ads(&self) -> Vec<String> {
            self.node
                .advertisements()
                .map(|a| format!("{}:{}", a.node_id, a.service))
                .collect()
        }

        fn learned(&self) -> (u32, u32) {
            let l = &self.node.links[&LinkId(1)];
            (l.learned_nodes, l.learned_ads)
        }
    }

    #[test]
    fn one_link_teaches_a_bounded_number_of_names_and_ads() {
        let mut p = Peer::new(|c| {
            c.max_nodes_per_link = 3;
            c.max_ads_per_link = 2;
        });
        // p itself is known from the handshake, not taught.
        assert_eq!(p.learned(), (0, 0));
        p.update("a", &["b"]);
        p.update("c", &["d", "e"]);
        // c fits; d and e have no room and are left out of c's connections.
        assert_eq!(p.known(), ["me", "p", "a", "b", "c"]);
        assert_eq!(p.node.stats().names_refused, 2);
        // Known nodes still update; unknown ones are refused (and not forwarded).
        p.update("f", &[]);
        p.update("a", &["c"]);
        assert!(p.node.router.known("f").is_none());
        assert_eq!(p.node.router.known("a"), Some((7, 6)));
        assert_eq!(p.node.stats().names_refused, 3);
        p.advert("a", "x");
        p.advert("c", "y");
        p.advert("c", "z");
        assert_eq!(p.ads(), ["a:x", "c:y"]);
        // A newer copy of a held one still passes.
        p.advert("a", "x");
        assert_eq!(p.node.stats().ads_refused, 1);
        assert_eq!(p.learned(), (3, 2));
    }

    #[test]
    fn long_update_ids_are_dropped() {
        let mut p = Peer::new(|_| {});
        p.ids = 0;
        let r = RouteUpdate {
            node_id: "a".into(),
            update_id: "u".repeat(crate::config::MAX_UPDATE_ID_LEN + 1),
            epoch: 7,
            sequence: 9,
            forwarding_node: "p".into(),
            ..Default::default()
        };
        p.send(r.encode().unwrap().message());
        assert!(p.node.router.known("a").is_none());
        assert_eq!(p.node.stats().malformed, 1);
    }

    #[test]
    fn invalid_adverts_are_dropped() {
        let mut p = Peer::new(|_| {});
        p.advert("a", "toolongname");
        p.advert("", "x");
        p.advert(&"n".repeat(crate::id::MAX_NODE_ID_LEN + 1), "x");
        p.advert("a", "ok");
        assert_eq!(p.ads(), ["a:ok"]);
        assert_eq!(p.node.stats().malformed, 3);
    }

    /// Nodes and adverts no route reaches are forgotten after `forget_after`, with their
    /// room given back; reachable ones stay; a forgotten node is learned again from scratch.
    #[test]
    fn state_no_route_reaches_is_forgotten_and_learned_again() {
        let after = Duration::from_secs(60);
        let mut p = Peer::new(|c| c.forget_after = after);
        // p lists r, and r lists p: r is reachable. g names h, and nobody lists g.
        p.lists(&["me", "r"]);
        p.update("r", &["p"]);
        p.update("g", &["h"]);
        p.advert("r", "x");
        p.advert("g", "y");
        p.advert("ghost", "z");
        p.wait(Duration::from_secs(1));
        assert_eq!(p.node.routes().len(), 2);
        assert_eq!(p.known(), ["me", "p", "r", "g", "h"]);
        assert_eq!(p.learned(), (3, 3));
        // Marked at the first sweep (15 s), forgotten 60 s later.
        p.wait(Duration::from_secs(70));
        assert_eq!(p.known().len(), 5);
        p.wait(Duration::from_secs(10));
        assert_eq!(p.known(), ["me", "p", "r"]);
        assert_eq!(p.ads(), ["r:x"]);
        assert_eq!(p.learned(), (1, 1));
        assert_eq!(p.node.stats().nodes_forgotten, 1);
        assert_eq!(p.node.stats().ads_forgotten, 2);
        assert!(p.node.known_connection_costs().contains_key("r"));
        // g comes back with an older sequence than it had: new again, so accepted, and we
        // flood our own update for it as for any new node.
        let seq = p.seq;
        p.seq = 1;
        p.update("g", &["p"]);
        p.seq = seq;
        assert_eq!(p.node.router.known("g"), Some((7, 2)));
        let g = NodeId::new("g").unwrap();
        assert!(p.node.names.contains_key(&g.hash()));
        assert!(p.node.timers[super::super::Timer::Flood as usize].is_some());
        // p goes: everything it taught goes after the forget time, the links' counts too.
        p.node
            .handle_input(p.now, Input::LinkDown { link: LinkId(1) });
        p.wait(after * 2);
        assert_eq!(p.known(), ["me"]);
        assert!(p.ads().is_empty());
        let m: BTreeMap<_, _> = p.node.known_connection_costs();
        assert_eq!(m.len(), 1);
    }
}
