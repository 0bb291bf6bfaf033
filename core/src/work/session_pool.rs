//! Idle control sessions to other nodes, parked by one remote unit's machine and reused by
//! another's: every new session is a QUIC handshake over the mesh, so a node running many
//! remote units keeps a few open. Whether a session is idle, and whether a reused one still
//! answers, is the machine's business ([`super::remote_unit`]); this is only the parking
//! lot, generic over the runtime's session type and told the time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long an idle control session to another node is kept for reuse.
pub const POOL_IDLE: Duration = Duration::from_secs(10);
/// Idle control sessions kept per node (and TLS config).
pub const POOL_PER_NODE: usize = 8;

/// Parked sessions by (node, TLS config name), oldest first.
#[derive(Debug)]
pub struct SessionPool<S> {
    idle: BTreeMap<(String, String), Vec<(S, Instant)>>,
}

impl<S> Default for SessionPool<S> {
    fn default() -> Self {
        Self {
            idle: BTreeMap::new(),
        }
    }
}

impl<S> SessionPool<S> {
    /// The most recently parked session to `node` (with TLS config `tls`, empty for none)
    /// that has been idle less than [`POOL_IDLE`]; staler ones met on the way are dropped.
    pub fn take(&mut self, node: &str, tls: &str, now: Instant) -> Option<S> {
        let key = (node.to_owned(), tls.to_owned());
        let list = self.idle.get_mut(&key)?;
        let found = loop {
            match list.pop() {
                Some((s, since)) if now.saturating_duration_since(since) < POOL_IDLE => {
                    break Some(s);
                }
                Some(_) => {}
                None => break None,
            }
        };
        if list.is_empty() {
            self.idle.remove(&key);
        }
        found
    }

    /// Parks `session`, dropping the stale ones of its node first. With [`POOL_PER_NODE`]
    /// parked already, `session` is handed back: the caller closes it.
    pub fn put(&mut self, node: &str, tls: &str, session: S, now: Instant) -> Option<S> {
        let list = self
            .idle
            .entry((node.to_owned(), tls.to_owned()))
            .or_default();
        list.retain(|(_, since)| now.saturating_duration_since(*since) < POOL_IDLE);
        if list.len() < POOL_PER_NODE {
            list.push((session, now));
            None
        } else {
            Some(session)
        }
    }

    /// How many sessions are parked, fresh or not.
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Whether no session is parked.
    pub fn is_empty(&self) -> bool {
        self.idle.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_newest_fresh_session_of_its_node_and_tls() {
        let t0 = Instant::now();
        let mut p = SessionPool::default();
        assert_eq!(p.put("c", "", 1, t0), None);
        assert_eq!(p.put("c", "", 2, t0 + Duration::from_secs(1)), None);
        assert_eq!(p.put("c", "tls1", 3, t0), None);
        assert_eq!(p.put("d", "", 4, t0), None);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(p.take("c", "", now), Some(2));
        assert_eq!(p.take("c", "", now), Some(1));
        assert_eq!(p.take("c", "", now), None);
        assert_eq!(p.take("c", "tls1", now), Some(3));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn stale_sessions_are_never_handed_out() {
        let t0 = Instant::now();
        let mut p = SessionPool::default();
        p.put("c", "", 1, t0);
        p.put("c", "", 2, t0 + Duration::from_secs(5));
        // 1 is stale, 2 is not.
        assert_eq!(
            p.take("c", "", t0 + POOL_IDLE + Duration::from_secs(1)),
            Some(2)
        );
        p.put("c", "", 3, t0);
        assert_eq!(p.take("c", "", t0 + POOL_IDLE), None);
        assert!(p.is_empty());
    }

    #[test]
    fn keeps_at_most_pool_per_node_and_hands_back_the_rest() {
        let t0 = Instant::now();
        let mut p = SessionPool::default();
        for i in 0..POOL_PER_NODE {
            assert_eq!(p.put("c", "", i, t0), None);
        }
        assert_eq!(p.put("c", "", 99, t0), Some(99));
        assert_eq!(p.put("d", "", 5, t0), None);
        // Once the parked ones are stale, they make room.
        assert_eq!(p.put("c", "", 100, t0 + POOL_IDLE), None);
        assert_eq!(p.len(), 2);
    }
}
