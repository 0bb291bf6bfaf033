//! Address arithmetic of `ip-router`: CIDR networks as Go's `net.ParseCIDR` reads and prints
//! them, the destination of an IP packet, and the choice of the node a packet goes to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use receptor_core::{MeshStatus, NodeId};

/// The `type` tag of an ip-router's service advertisement.
pub(super) const AD_TYPE: &str = "IP Router";

/// An IP network: its address with the host bits cleared, and the prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `addr/len` as Go's `net.ParseCIDR` does (the host bits are dropped).
    pub(super) fn parse(s: &str) -> Option<Self> {
        let (addr, len) = s.split_once('/')?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let addr: IpAddr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        Self::new(addr, len)
    }

    /// The network of `addr` with prefix length `len`; `None` if `len` is too long.
    pub(super) fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let addr = match addr {
            IpAddr::V4(a) if len <= 32 => IpAddr::V4(Ipv4Addr::from(mask32(u32::from(a), len))),
            IpAddr::V6(a) if len <= 128 => IpAddr::V6(Ipv6Addr::from(mask128(u128::from(a), len))),
            _ => return None,
        };
        Some(Self { addr, len })
    }

    /// The network address.
    pub(super) fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub(super) fn len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` is in this network (an IPv4 address is never in an IPv6 network).
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask32(u32::from(a), self.len) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask128(u128::from(a), self.len) == u128::from(n),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask32(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// The destination address of an IPv4 or IPv6 packet; `None` for anything else.
pub(super) fn destination(packet: &[u8]) -> Option<IpAddr> {
    let first = *packet.first()?;
    match first >> 4 {
        4 => {
            let header = usize::from(first & 0x0f) * 4;
            if header < 20 || header > packet.len() {
                return None;
            }
            let d: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(d.into()))
        }
        6 => {
            let d: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(d.into()))
        }
        _ => None,
    }
}

/// A network some ip-router of our network advertises, and what reaching that node costs.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Route {
    /// The network.
    pub(super) dest: Cidr,
    /// The node whose ip-router takes packets for it.
    pub(super) via: NodeId,
    /// The cost of the path to `via`.
    pub(super) cost: f64,
}

/// The routes that the reachable ip-routers of `network` advertise (Go: every tag whose key
/// starts with `route` of an ad tagged `type: IP Router`, `network: <network>`). This node's
/// own ad is left out, as it is not in the routing table.
pub(super) fn known_routes(status: &MeshStatus, network: &str) -> Vec<Route> {
    let mut routes = Vec::new();
    for ad in &status.advertisements {
        let Some(tags) = &ad.tags else { continue };
        if tags.get("type").map(String::as_str) != Some(AD_TYPE)
            || tags.get("network").map(String::as_str) != Some(network)
        {
            continue;
        }
        let Some((via, &cost)) = status
            .path_costs
            .iter()
            .find(|(n, _)| n.as_str() == ad.node_id)
        else {
            continue;
        };
        for (key, value) in tags {
            if let Some(dest) = key
                .starts_with("route")
                .then(|| Cidr::parse(value))
                .flatten()
            {
                routes.push(Route {
                    dest,
                    via: via.clone(),
                    cost,
                });
            }
        }
    }
    routes
}

/// The node to send a packet for `dst` to: the cheapest of those advertising a network that
/// holds it (the first of equals).
pub(super) fn pick(routes: &[Route], dst: IpAddr) -> Option<&NodeId> {
    let mut best: Option<&Route> = None;
    for r in routes {
        if r.dest.contains(dst) && best.is_none_or(|b| r.cost < b.cost) {
            best = Some(r);
        }
    }
    best.map(|r| &r.via)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cidrs_parse_and_print_like_go() {
        let c = Cidr::parse("10.200.1.5/30").unwrap();
        assert_eq!(c.to_string(), "10.200.1.4/30");
        assert!(c.contains("10.200.1.7".parse().unwrap()));
        assert!(!c.contains("10.200.1.8".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(
            Cidr::parse("1.2.3.4/0")
                .unwrap()
                .contains("9.9.9.9".parse().unwrap())
        );
        assert_eq!(Cidr::parse("fe80::1/10").unwrap().to_string(), "fe80::/10");
        assert_eq!(Cidr::parse("10.0.0.0/030").unwrap().len(), 30);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0/8",
            "x/8",
            "::/129",
            "1.2.3.4/",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn packet_destinations() {
        let mut v4 = vec![0u8; 20];
        v4[0] = 0x45;
        v4[16..20].copy_from_slice(&[10, 0, 0, 9]);
        assert_eq!(destination(&v4), Some("10.0.0.9".parse().unwrap()));
        v4[0] = 0x46; // header longer than the packet
        assert_eq!(destination(&v4), None);
        v4[0] = 0x44; // header shorter than the minimum
        assert_eq!(destination(&v4), None);
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        v6[39] = 1;
        assert_eq!(destination(&v6), Some("::1".parse().unwrap()));
        assert_eq!(destination(&v6[..39]), None);
        assert_eq!(destination(&[]), None);
        assert_eq!(destination(&[0x70; 60]), None);
    }

    #[test]
    fn the_cheapest_router_wins() {
        let id = |s: &str| NodeId::new(s).unwrap();
        let route = |dest: &str, via: &str, cost| Route {
            dest: Cidr::parse(dest).unwrap(),
            via: id(via),
            cost,
        };
        let routes = [
            route("10.0.0.0/8", "far", 3.0),
            route("10.1.0.0/16", "near", 1.0),
            route("10.1.0.0/16", "tie", 1.0),
        ];
        assert_eq!(
            pick(&routes, "10.1.2.3".parse().unwrap()),
            Some(&id("near"))
        );
        assert_eq!(pick(&routes, "10.2.0.1".parse().unwrap()), Some(&id("far")));
        assert_eq!(pick(&routes, "11.0.0.1".parse().unwrap()), None);
    }

    proptest! {
        #[test]
        fn any_packet_is_handled(p in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = destination(&p);
        }

        #[test]
        fn any_cidr_text_is_handled(s in "[0-9a-f.:/+]{0,24}") {
            if let Some(c) = Cidr::parse(&s) {
                prop_assert_eq!(Cidr::parse(&c.to_string()), Some(c));
            }
        }
    }
}
