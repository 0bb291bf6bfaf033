//! quinn-proto addresses its peers by `SocketAddr`; the mesh by (node, service). Each mesh
//! address gets a synthetic IPv6 socket address, kept while a connection of ours uses it.
//!
//! A mesh address lives as long as the connections held on it ([`AddrMap::hold`], from a
//! connection's creation until [`Streams`](super::Streams) forgets it, which is after quinn
//! drained it: a closing connection still sends its close, to the address it holds). A
//! datagram from a peer with no connection here (a first Initial, a stray packet) gets an
//! address only for the time quinn handles it ([`AddrMap::sock`], then [`AddrMap::prune`]).
//! So a long-running node with many short connections keeps only its live peers.
//!
//! The counter behind the addresses never goes back, so an address that went is never handed
//! to another peer: anything quinn still says to an old address maps to no peer (see
//! [`AddrMap::mesh`]) rather than to the wrong one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::id::Addr;

/// One mesh address's socket address and how many connections hold it.
#[derive(Debug)]
struct Held {
    sock: SocketAddr,
    conns: usize,
}

/// A two-way map between mesh addresses and synthetic socket addresses.
#[derive(Debug, Default)]
pub(crate) struct AddrMap {
    to_sock: HashMap<Addr, Held>,
    to_mesh: HashMap<SocketAddr, Addr>,
    next: u64,
}

impl AddrMap {
    /// The socket address standing for `addr`, and whether it was made now (unheld: it goes
    /// at the next [`Self::prune`] unless a connection holds it by then).
    pub(crate) fn sock(&mut self, addr: &Addr) -> (SocketAddr, bool) {
        if let Some(h) = self.to_sock.get(addr) {
            return (h.sock, false);
        }
        self.next += 1;
        // fd00::/8 is private use; the counter makes each address unique. Port 1: quinn refuses 0.
        let ip = Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(self.next));
        let s = SocketAddr::V6(SocketAddrV6::new(ip, 1, 0, 0));
        self.to_sock
            .insert(addr.clone(), Held { sock: s, conns: 0 });
        self.to_mesh.insert(s, addr.clone());
        (s, true)
    }

    /// A connection with `addr` begins: its socket address stays until [`Self::release`].
    pub(crate) fn hold(&mut self, addr: &Addr) -> SocketAddr {
        let (sock, _) = self.sock(addr);
        if let Some(h) = self.to_sock.get_mut(addr) {
            h.conns += 1;
        }
        sock
    }

    /// A connection with `addr` is gone: the address goes with the last one.
    pub(crate) fn release(&mut self, addr: &Addr) {
        if let Entry::Occupied(mut e) = self.to_sock.entry(addr.clone()) {
            let h = e.get_mut();
            h.conns = h.conns.saturating_sub(1);
            if h.conns == 0 {
                self.to_mesh.remove(&h.sock);
                e.remove();
            }
        }
    }

    /// Drops `sock` if no connection holds it (it was made for one datagram).
    pub(crate) fn prune(&mut self, sock: SocketAddr) {
        let Some(addr) = self.to_mesh.get(&sock) else {
            return;
        };
        if self.to_sock.get(addr).is_some_and(|h| h.conns == 0) {
            self.to_sock.remove(addr);
            self.to_mesh.remove(&sock);
        }
    }

    /// The mesh address behind a synthetic socket address, while it is kept.
    pub(crate) fn mesh(&self, sock: &SocketAddr) -> Option<&Addr> {
        self.to_mesh.get(sock)
    }

    /// The socket address kept for `addr`.
    #[cfg(test)]
    pub(crate) fn get(&self, addr: &Addr) -> Option<SocketAddr> {
        self.to_sock.get(addr).map(|h| h.sock)
    }

    /// How many mesh addresses are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(self.to_sock.len(), self.to_mesh.len());
        self.to_sock.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{NodeId, ServiceName};

    fn addr(node: &str, service: &str) -> Addr {
        Addr {
            node: NodeId::new(node).unwrap(),
            service: ServiceName::new(service).unwrap(),
        }
    }

    #[test]
    fn an_address_lives_as_long_as_its_connections() {
        let mut m = AddrMap::default();
        let (a, b) = (addr("a", "x"), addr("b", "y"));
        let s = m.hold(&a);
        assert_eq!(m.hold(&a), s);
        assert_eq!(m.sock(&a), (s, false));
        let t = m.hold(&b);
        assert_ne!(s, t);
        assert_eq!(m.mesh(&s), Some(&a));
        assert_eq!(m.len(), 2);
        m.release(&a);
        assert_eq!(m.mesh(&s), Some(&a), "one connection still holds it");
        m.prune(s);
        assert_eq!(m.len(), 2, "a held address is not pruned");
        m.release(&a);
        assert_eq!((m.mesh(&s), m.len()), (None, 1));
        m.release(&b);
        assert_eq!(m.len(), 0);
        // Back again: a new socket address, never an old one.
        let s2 = m.hold(&a);
        assert!(s2 != s && s2 != t);
        assert_eq!(m.mesh(&s), None);
    }

    #[test]
    fn an_unheld_address_lasts_one_datagram() {
        let mut m = AddrMap::default();
        let a = addr("a", "x");
        let (s, made) = m.sock(&a);
        assert!(made);
        m.prune(s);
        assert_eq!((m.len(), m.mesh(&s)), (0, None));
        // Held before the prune (an accepted connection): it stays.
        let (s, _) = m.sock(&a);
        m.hold(&a);
        m.prune(s);
        assert_eq!(m.mesh(&s), Some(&a));
        // Releasing what is not held changes nothing.
        m.release(&addr("b", "y"));
        assert_eq!(m.len(), 1);
    }
}
