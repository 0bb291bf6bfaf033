//! quinn-proto addresses its peers by `SocketAddr`; the mesh by (node, service). Each mesh
//! address gets a synthetic IPv6 socket address, stable for the life of the layer.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::id::Addr;

/// A two-way map between mesh addresses and synthetic socket addresses.
#[derive(Debug, Default)]
pub(crate) struct AddrMap {
    to_sock: HashMap<Addr, SocketAddr>,
    to_mesh: HashMap<SocketAddr, Addr>,
    next: u64,
}

impl AddrMap {
    /// The socket address standing for `addr`, made on first use.
    pub(crate) fn sock(&mut self, addr: &Addr) -> SocketAddr {
        if let Some(s) = self.to_sock.get(addr) {
            return *s;
        }
        self.next += 1;
        // fd00::/8 is private use; the counter makes each address unique. Port 1: quinn refuses 0.
        let ip = Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(self.next));
        let s = SocketAddr::V6(SocketAddrV6::new(ip, 1, 0, 0));
        self.to_sock.insert(addr.clone(), s);
        self.to_mesh.insert(s, addr.clone());
        s
    }

    /// The mesh address behind a synthetic socket address.
    pub(crate) fn mesh(&self, sock: &SocketAddr) -> Option<&Addr> {
        self.to_mesh.get(sock)
    }
}
