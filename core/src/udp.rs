//! A UDP listener's sessions (`udp-listener`, netceptor.md §2): one per remote address,
//! started by its first datagram, as Go's UDP listener keeps them. The runtimes keep the
//! socket and one datagram queue per session; the table and its limits are the same for
//! both and live here.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tracing::debug;

/// Datagrams queued per UDP session before further ones are dropped.
pub const SESSION_QUEUE: usize = 256;
/// Most concurrent sessions a UDP listener keeps (one per remote address).
pub const MAX_SESSIONS: usize = 4096;

/// Where a datagram that just arrived goes.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a, Q> {
    /// Into the queue of the remote's running session.
    Session(&'a Q),
    /// Into a new session: start one and insert its queue. A session that ended is replaced
    /// this way (the datagram begins a new handshake).
    Start,
    /// Nowhere: the listener has as many sessions as it keeps (the datagram is dropped).
    Full,
}

/// A UDP listener's sessions by remote address; `Q` is the runtime's queue into a session.
#[derive(Debug)]
pub struct Sessions<Q> {
    by_remote: BTreeMap<SocketAddr, Q>,
    max: usize,
}

impl<Q> Default for Sessions<Q> {
    fn default() -> Self {
        Self::with_limit(MAX_SESSIONS)
    }
}

impl<Q> Sessions<Q> {
    /// A table that keeps at most `max` sessions.
    pub fn with_limit(max: usize) -> Self {
        Self {
            by_remote: BTreeMap::new(),
            max,
        }
    }

    /// Where a datagram from `remote` goes. `running` says whether a session's queue is
    /// still read (its session has not ended); ended sessions are forgotten when their
    /// remote sends again, or when the table is full.
    fn route(&mut self, remote: SocketAddr, running: impl Fn(&Q) -> bool) -> Route<'_, Q> {
        if self.by_remote.get(&remote).is_some_and(|q| !running(q)) {
            self.by_remote.remove(&remote);
        }
        if self.by_remote.contains_key(&remote) {
            return match self.by_remote.get(&remote) {
                Some(q) => Route::Session(q),
                None => Route::Start,
            };
        }
        if self.by_remote.len() >= self.max {
            self.by_remote.retain(|_, q| running(q));
            if self.by_remote.len() >= self.max {
                return Route::Full;
            }
        }
        Route::Start
    }

    /// Hands a datagram from `remote` to its session, through `send`; starts the session
    /// first when there is none (or it ended), with `start` making its queue: returns what
    /// else `start` made (the session's end of the queue) for the runtime to run it on. A
    /// full table drops the datagram.
    pub fn deliver<R, D>(
        &mut self,
        remote: SocketAddr,
        data: D,
        running: impl Fn(&Q) -> bool,
        send: impl Fn(&Q, D),
        start: impl FnOnce() -> (Q, R),
    ) -> Option<R> {
        match self.route(remote, running) {
            Route::Session(q) => {
                send(q, data);
                None
            }
            Route::Full => {
                debug!("udp listener: too many sessions, dropping a datagram from {remote}");
                None
            }
            Route::Start => {
                let (q, r) = start();
                send(&q, data);
                self.insert(remote, q);
                Some(r)
            }
        }
    }

    /// The queue of the session just started for `remote`.
    fn insert(&mut self, remote: SocketAddr, queue: Q) {
        self.by_remote.insert(remote, queue);
    }

    /// Sessions in the table (ended ones not yet forgotten included).
    pub fn len(&self) -> usize {
        self.by_remote.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_remote.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A queue: its id, and whether its session still runs.
    type Q = (u32, bool);

    #[test]
    fn first_datagram_starts_a_session_later_ones_join_it() {
        let mut s: Sessions<Q> = Sessions::default();
        assert_eq!(s.route(addr(1), |q| q.1), Route::Start);
        s.insert(addr(1), (1, true));
        assert_eq!(s.route(addr(1), |q| q.1), Route::Session(&(1, true)));
        assert_eq!(s.route(addr(2), |q| q.1), Route::Start);
    }

    #[test]
    fn an_ended_session_is_replaced_by_the_next_datagram() {
        let mut s: Sessions<Q> = Sessions::default();
        s.insert(addr(1), (1, false));
        assert_eq!(s.route(addr(1), |q| q.1), Route::Start);
        assert!(s.is_empty());
    }

    #[test]
    fn deliver_starts_sends_and_drops() {
        let mut s: Sessions<std::sync::mpsc::Sender<u8>> = Sessions::with_limit(1);
        let start = || std::sync::mpsc::channel();
        let send = |q: &std::sync::mpsc::Sender<u8>, d| {
            let _ = q.send(d);
        };
        let rx = s.deliver(addr(1), 1, |_| true, send, start).unwrap();
        assert!(s.deliver(addr(1), 2, |_| true, send, start).is_none());
        assert!(s.deliver(addr(2), 3, |_| true, send, start).is_none());
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_full_table_drops_new_remotes_until_a_session_ends() {
        let mut s: Sessions<Q> = Sessions::with_limit(2);
        s.insert(addr(1), (1, true));
        s.insert(addr(2), (2, true));
        assert_eq!(s.route(addr(3), |q| q.1), Route::Full);
        assert_eq!(s.route(addr(1), |q| q.1), Route::Session(&(1, true)));
        s.insert(addr(2), (2, false));
        assert_eq!(s.route(addr(3), |q| q.1), Route::Start);
        assert_eq!(s.len(), 1);
    }
}
