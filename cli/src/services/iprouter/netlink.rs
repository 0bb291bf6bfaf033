//! The few rtnetlink requests `ip-router` makes on its tun interface (what Go's ip-router does
//! through vishvananda/netlink): a point-to-point address, link up, and adding, listing and
//! deleting the interface's routes in the main table.
//!
//! Written here rather than taken from a crate: five fixed request shapes and one dump parser,
//! against the kernel's stable ABI (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, bind, recv, sendto, socket_with,
};

use super::cidr::Cidr;

// linux/netlink.h
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_NOWHERE: u8 = 255;
const RTN_UNICAST: u8 = 1;
// linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
// linux/socket.h, linux/if.h
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IFF_UP: u32 = 0x1;

/// Length of `struct nlmsghdr`.
const HEADER: usize = 16;

/// A route of the main table whose output interface is ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KernelRoute {
    /// Its destination (`0.0.0.0/0` or `::/0` for a default route).
    pub(super) dest: Cidr,
}

/// An rtnetlink socket, for one interface.
pub(super) struct Netlink {
    fd: OwnedFd,
    index: u32,
    seq: u32,
}

impl Netlink {
    /// Opens a socket for requests about the interface with index `index`.
    pub(super) fn open(index: u32) -> io::Result<Self> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )?;
        bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        // The kernel answers at once; never wait forever on it.
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(5)),
        )?;
        Ok(Self { fd, index, seq: 0 })
    }

    /// `ip addr add LOCAL peer PEER dev IF`: both addresses /32.
    pub(super) fn add_peer_address(&mut self, local: Ipv4Addr, peer: Ipv4Addr) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        m.bytes(&[AF_INET, 32, 0, RT_SCOPE_UNIVERSE]);
        m.bytes(&self.index.to_ne_bytes());
        m.attr(IFA_LOCAL, &local.octets());
        m.attr(IFA_ADDRESS, &peer.octets());
        self.call(m)
    }

    /// `ip link set IF up`.
    pub(super) fn set_up(&mut self) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_ACK);
        // struct ifinfomsg: family, pad, type, index, flags, change.
        m.bytes(&[AF_UNSPEC, 0, 0, 0]);
        m.bytes(&self.index.to_ne_bytes());
        m.bytes(&IFF_UP.to_ne_bytes());
        m.bytes(&IFF_UP.to_ne_bytes());
        self.call(m)
    }

    /// `ip route add DEST via GATEWAY dev IF`.
    pub(super) fn add_route(&mut self, dest: Cidr, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        route_head(&mut m, dest, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST);
        dst_attr(&mut m, dest);
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr(RTA_OIF, &self.index.to_ne_bytes());
        self.call(m)
    }

    /// `ip route del DEST dev IF`.
    pub(super) fn delete_route(&mut self, dest: Cidr) -> io::Result<()> {
        let mut m = Message::new(RTM_DELROUTE, NLM_F_ACK);
        route_head(&mut m, dest, 0, RT_SCOPE_NOWHERE, 0);
        dst_attr(&mut m, dest);
        m.attr(RTA_OIF, &self.index.to_ne_bytes());
        self.call(m)
    }

    /// The main table's routes out of this interface, IPv4 and IPv6.
    pub(super) fn routes(&mut self) -> io::Result<Vec<KernelRoute>> {
        let mut m = Message::new(RTM_GETROUTE, NLM_F_DUMP);
        // struct rtmsg, all zero: every family.
        m.bytes(&[0; 12]);
        let seq = self.send(m)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (n, _) = recv(&self.fd, &mut buf[..], RecvFlags::empty())?;
            for msg in messages(buf.get(..n).unwrap_or_default()) {
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => match error_code(msg.body) {
                        0 => {}
                        code => return Err(io::Error::from_raw_os_error(code)),
                    },
                    RTM_NEWROUTE => {
                        if let Some(r) = parse_route(msg.body, self.index) {
                            out.push(r);
                        }
                    }
                    _ => {}
                }
            }
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Sends a request and waits for its acknowledgement.
    fn call(&mut self, m: Message) -> io::Result<()> {
        let seq = self.send(m)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, _) = recv(&self.fd, &mut buf[..], RecvFlags::empty())?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            for msg in messages(buf.get(..n).unwrap_or_default()) {
                if msg.seq == seq && msg.kind == NLMSG_ERROR {
                    return match error_code(msg.body) {
                        0 => Ok(()),
                        code => Err(io::Error::from_raw_os_error(code)),
                    };
                }
            }
        }
    }

    fn send(&mut self, mut m: Message) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        m.finish(seq);
        sendto(
            &self.fd,
            &m.buf,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        Ok(seq)
    }
}

/// The head of a route request (`struct rtmsg`).
fn route_head(m: &mut Message, dest: Cidr, protocol: u8, scope: u8, kind: u8) {
    let family = if dest.addr().is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    // family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    m.bytes(&[
        family,
        dest.len(),
        0,
        0,
        RT_TABLE_MAIN,
        protocol,
        scope,
        kind,
    ]);
    m.bytes(&0u32.to_ne_bytes());
}

fn dst_attr(m: &mut Message, dest: Cidr) {
    if dest.len() == 0 {
        return;
    }
    match dest.addr() {
        IpAddr::V4(a) => m.attr(RTA_DST, &a.octets()),
        IpAddr::V6(a) => m.attr(RTA_DST, &a.octets()),
    }
}

/// A request being built: header first, its length and sequence filled in by `finish`.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; HEADER];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Self { buf }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A route attribute (`struct rtattr` and its value), padded to 4 bytes.
    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
    }

    fn finish(&mut self, seq: u32) {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }
}

/// One message of a netlink reply.
struct Reply<'a> {
    kind: u16,
    seq: u32,
    body: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages of one datagram from the kernel; a malformed tail ends the list.
fn messages(mut data: &[u8]) -> impl Iterator<Item = Reply<'_>> {
    std::iter::from_fn(move || {
        let len = u32_at(data, 0)? as usize;
        if len < HEADER || len > data.len() {
            return None;
        }
        let msg = Reply {
            kind: u16_at(data, 4)?,
            seq: u32_at(data, 8)?,
            body: data.get(HEADER..len)?,
        };
        data = data.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(msg)
    })
}

/// The errno of an `NLMSG_ERROR` body (0 is an acknowledgement); a short body is EIO.
fn error_code(body: &[u8]) -> i32 {
    u32_at(body, 0).map_or(5, |e| (e as i32).saturating_neg())
}

/// The attributes following a fixed header of `skip` bytes: (type, value).
fn attrs(body: &[u8], skip: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut data = body.get(skip..).unwrap_or_default();
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(data, 0)?);
        if len < 4 || len > data.len() {
            return None;
        }
        let attr = (u16_at(data, 2)?, data.get(4..len)?);
        data = data.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(attr)
    })
}

/// An `RTM_NEWROUTE` of a dump, if it is a main-table route out of interface `index`.
fn parse_route(body: &[u8], index: u32) -> Option<KernelRoute> {
    let (family, dst_len) = (*body.first()?, *body.get(1)?);
    let mut table = u32::from(*body.get(4)?);
    let (mut oif, mut dst) = (None, None);
    for (kind, value) in attrs(body, 12) {
        match kind {
            RTA_TABLE => table = u32_at(value, 0)?,
            RTA_OIF => oif = u32_at(value, 0),
            RTA_DST => dst = Some(value),
            _ => {}
        }
    }
    if table != u32::from(RT_TABLE_MAIN) || oif != Some(index) {
        return None;
    }
    let addr = match (family, dst) {
        (AF_INET, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (AF_INET6, None) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        (AF_INET, Some(d)) => IpAddr::V4(<[u8; 4]>::try_from(d).ok()?.into()),
        (AF_INET6, Some(d)) => IpAddr::V6(<[u8; 16]>::try_from(d).ok()?.into()),
        _ => return None,
    };
    Some(KernelRoute {
        dest: Cidr::new(addr, dst_len)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An RTM_NEWROUTE message as the kernel sends it in a dump.
    fn route_msg(family: u8, dst_len: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = Message::new(RTM_NEWROUTE, 0);
        m.bytes(&[family, dst_len, 0, 0, RT_TABLE_MAIN, 0, 0, RTN_UNICAST]);
        m.bytes(&[0; 4]);
        for (k, v) in attrs {
            m.attr(*k, v);
        }
        m.finish(7);
        m.buf
    }

    #[test]
    fn requests_are_laid_out_as_the_kernel_reads_them() {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_ACK);
        m.bytes(&[AF_INET, 32, 0, 0]);
        m.bytes(&3u32.to_ne_bytes());
        m.attr(IFA_LOCAL, &[10, 0, 0, 1]);
        m.finish(9);
        assert_eq!(m.buf.len(), 16 + 8 + 8);
        assert_eq!(u32_at(&m.buf, 0), Some(32));
        assert_eq!(u16_at(&m.buf, 4), Some(RTM_NEWADDR));
        assert_eq!(u16_at(&m.buf, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
        assert_eq!(u32_at(&m.buf, 8), Some(9));
        assert_eq!(&m.buf[24..32], &[8, 0, 2, 0, 10, 0, 0, 1]);
        // An odd-sized attribute is padded.
        m.attr(99, &[1]);
        assert_eq!(m.buf.len(), 40);
    }

    #[test]
    fn a_dump_yields_our_main_table_routes() {
        let mut dump = route_msg(
            AF_INET,
            16,
            &[(RTA_DST, &[10, 9, 0, 0]), (RTA_OIF, &5u32.to_ne_bytes())],
        );
        dump.extend(route_msg(AF_INET, 0, &[(RTA_OIF, &5u32.to_ne_bytes())]));
        dump.extend(route_msg(
            AF_INET,
            24,
            &[(RTA_DST, &[10, 8, 0, 0]), (RTA_OIF, &6u32.to_ne_bytes())],
        ));
        dump.extend(route_msg(
            AF_INET6,
            10,
            &[
                (
                    RTA_DST,
                    &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ),
                (RTA_OIF, &5u32.to_ne_bytes()),
                (RTA_TABLE, &255u32.to_ne_bytes()),
            ],
        ));
        let routes: Vec<String> = messages(&dump)
            .filter_map(|m| parse_route(m.body, 5))
            .map(|r| r.dest.to_string())
            .collect();
        assert_eq!(routes, ["10.9.0.0/16", "0.0.0.0/0"]);
        let mut err = Message::new(NLMSG_ERROR, 0);
        err.bytes(&(-17i32).to_ne_bytes());
        err.finish(1);
        let m = messages(&err.buf).next().unwrap();
        assert_eq!(error_code(m.body), 17);
    }

    proptest! {
        #[test]
        fn any_reply_is_handled(data in prop::collection::vec(any::<u8>(), 0..200)) {
            for m in messages(&data) {
                let _ = error_code(m.body);
                let _ = parse_route(m.body, 1);
            }
        }
    }
}
