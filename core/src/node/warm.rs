//! Warming the cache for frames about to arrive ([`Node::warm`]).
//!
//! In a large mesh each routing update looks up its ID in the seen set and its origin's
//! name in the graph: each lookup lands on a random line of a table far from the cache.
//! Processed one after another the misses come one at a time. Told the frames in advance,
//! the node computes where those lookups will land, then reads those places in one tight
//! loop, so the misses overlap. (Going further, to the origin's record and the names of
//! the connections, cost more than it saved in the simulator.)

use crate::id::LinkId;
use crate::wire::{MSG_ROUTE, RouteHead, whole_frame};

use super::Node;

/// Frames looked at per round: enough misses to fill the memory pipeline.
const ROUND: usize = 16;

impl Node {
    /// A hint that `frames` are about to arrive as [`crate::Input::Received`], in this
    /// order. Reads the parts of the node's state they will look up; changes nothing, and
    /// skips what it cannot read in place (split frames, anything but routing updates).
    pub fn warm<'a>(&self, frames: impl Iterator<Item = (LinkId, &'a [u8])>) {
        let mut heads: [Option<RouteHead<'a>>; ROUND] = [None; ROUND];
        let mut frames = frames.peekable();
        while frames.peek().is_some() {
            let mut n = 0;
            for (slot, (link, data)) in heads.iter_mut().zip(frames.by_ref()) {
                *slot = self.route_body(link, data).and_then(RouteHead::peek);
                n += 1;
            }
            self.warm_round(heads.get(..n).unwrap_or_default());
        }
    }

    /// The body of the routing update `data` carries whole, on an established link.
    fn route_body<'a>(&self, link: LinkId, data: &'a [u8]) -> Option<&'a [u8]> {
        let l = self.links.get(&link)?;
        l.peer()?;
        let msg = match &l.deframer {
            Some(d) if d.buffered() > 0 => return None,
            Some(_) => whole_frame(data)?,
            None => data,
        };
        match msg.split_first()? {
            (&MSG_ROUTE, body) => Some(body),
            _ => None,
        }
    }

    fn warm_round(&self, heads: &[Option<RouteHead<'_>>]) {
        let graph = self.router.graph();
        let mut at = [(0usize, 0usize); ROUND];
        for (a, h) in at.iter_mut().zip(heads) {
            if let Some(h) = h {
                *a = (self.seen.home(h.update_id), graph.home(h.node_id));
            }
        }
        let mut x = 0u64;
        for &(s, g) in &at {
            x ^= self.seen.touch(s) ^ graph.touch_slot(g);
        }
        std::hint::black_box(x);
    }
}
