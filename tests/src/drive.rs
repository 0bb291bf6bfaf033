//! Driving one node by the core's polling contract, and carrying what it transmits over the
//! modelled links.

use std::collections::VecDeque;

use bytes::Bytes;
use rand_core::RngCore;
use receptor_core::{Event, Input, LinkId, LinkKind, Node};

use crate::link::DirState;
use crate::sim::{Recorded, Sim, SimEvent, end_id, split};

impl Sim {
    /// Feeds `input` (if any) to node `n`, then drains its outputs, feeding it the
    /// `LinkDown`s its own closes cause, and finally schedules its next timeout.
    pub(crate) fn feed(&mut self, n: u32, input: Option<Input>) {
        let mut work = std::mem::take(&mut self.work);
        match input {
            Some(i) => work.push_back(i),
            None => self.drain(n, &mut work),
        }
        while let Some(input) = work.pop_front() {
            let now = self.instant();
            if let Input::LinkDown { link } = input {
                let (s, e) = split(link);
                self.sessions[s].gone[e] = true;
            }
            let Some(node) = self.nodes[n as usize].node.as_mut() else {
                break;
            };
            node.handle_input(now, input);
            self.drain(n, &mut work);
        }
        work.clear();
        self.work = work;
        self.schedule_timer(n);
    }

    fn drain(&mut self, n: u32, work: &mut VecDeque<Input>) {
        let mut count = 0usize;
        while let Some(tx) = self.nodes[n as usize]
            .node
            .as_mut()
            .and_then(Node::poll_transmit)
        {
            count += 1;
            self.on_transmit(n, tx.link, tx.frame, work);
        }
        while let Some(ev) = self.nodes[n as usize]
            .node
            .as_mut()
            .and_then(Node::poll_event)
        {
            count += 1;
            self.on_event(n, ev, work);
        }
        let bound = 1000 + 64 * self.nodes[n as usize].links.len();
        if count > bound {
            self.violation(&format!(
                "node {} produced {count} outputs for one input",
                self.nodes[n as usize].name
            ));
        }
    }

    fn schedule_timer(&mut self, n: u32) {
        let t = self.nodes[n as usize]
            .node
            .as_ref()
            .and_then(Node::poll_timeout)
            .map(|t| self.vtime(t).max(self.now));
        let sn = &mut self.nodes[n as usize];
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

    fn draw_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.rng.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn on_transmit(&mut self, n: u32, link: LinkId, frame: Bytes, work: &mut VecDeque<Input>) {
        let (s, e) = split(link);
        let owner = self.sessions.get(s).map(|sess| sess.link as usize);
        if owner.is_none_or(|l| self.links[l].ends[e] != n) {
            self.violation(&format!("transmit on {link}, which node {n} does not own"));
        }
        let l = self.sessions[s].link as usize;
        if self.sessions[s].gone[e] {
            self.violation(&format!("node {n} transmits on {link} after its LinkDown"));
        }
        if !self.sessions[s].open[e] {
            // The network reset it in this very drain; the node hears of it next.
            self.stats.dropped_closed += 1;
            return;
        }
        self.stats.messages += 1;
        self.stats.bytes += frame.len() as u64;
        self.hash.u64(self.now);
        self.hash.u64(u64::from(n));
        self.hash.u64(link.0);
        self.hash.bytes(&frame);
        let max_hops = self.nodes[n as usize].config.max_hops;
        if let Err(what) = check_frame(self.links[l].model.kind, &frame, max_hops) {
            self.violation(&format!("node {n} sent a bad frame on {link}: {what}"));
        }
        let model = &self.links[l].model;
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
        if self.chance(loss) {
            if ordered {
                self.reset(s, e, work);
            } else {
                self.stats.dropped_loss += 1;
            }
            return;
        }
        let to = end_id(s, 1 - e);
        let node = self.links[l].ends[1 - e];
        let mut at = self.now + latency + self.draw_below(jitter);
        if ordered {
            at = at.max(self.sessions[s].last_at[e]);
            self.sessions[s].last_at[e] = at;
        }
        if split_frames && frame.len() >= 2 {
            let cut = 1 + self.draw_below(frame.len() as u64 - 1) as usize;
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
        if !ordered && self.chance(dup) {
            let again = self.now + latency + self.draw_below(jitter);
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
    fn reset(&mut self, s: usize, e: usize, work: &mut VecDeque<Input>) {
        self.stats.resets += 1;
        let input = self.end_down(s, e);
        work.push_back(input);
        let x = 1 - e;
        if self.sessions[s].open[x] {
            let l = self.sessions[s].link as usize;
            let at = self.now + self.links[l].model.latency.as_nanos() as u64;
            self.schedule(at, SimEvent::Closed { to: end_id(s, x) });
        }
    }

    /// Closes end `e` of session `s` from its own side (a close or a crash): the other end
    /// hears of it after the data already in flight, unless the direction is partitioned.
    pub(crate) fn send_close(&mut self, s: usize, e: usize) {
        let x = 1 - e;
        let l = self.sessions[s].link as usize;
        let link = &self.links[l];
        if !self.sessions[s].open[x] || link.dir[e] == DirState::Partitioned {
            return;
        }
        let mut at = self.now + link.model.latency.as_nanos() as u64;
        if link.model.ordered() {
            at = at.max(self.sessions[s].last_at[e]);
        }
        self.schedule(at, SimEvent::Closed { to: end_id(s, x) });
    }

    fn on_event(&mut self, n: u32, ev: Event, work: &mut VecDeque<Input>) {
        // Mesh streams: what is for the node's stream layer goes there (`streams.rs`).
        let Some(ev) = self.stream_intercept(n, ev) else {
            return;
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
                if self.sessions[s].open[e] {
                    let input = self.end_down(s, e);
                    work.push_back(input);
                    self.send_close(s, e);
                }
            }
            Event::RoutesChanged => self.conv.mark(n),
            Event::Shutdown { .. } => self.conv.invalidate(),
            _ => {}
        }
        if self.record {
            let at = self.now();
            self.nodes[n as usize]
                .events
                .push(Recorded { at, event: ev });
        }
    }
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
