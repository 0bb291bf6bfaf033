//! A Linux tun device as Go's ip-router opens it (songgao/water: `IFF_TUN | IFF_NO_PI`, so one
//! read or write is one bare IP packet), read and written through the tokio reactor. The
//! interface goes away when the device is closed.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{Opcode, Updater, ioctl, opcode};
use tokio::io::unix::AsyncFd;

const IFF_TUN: u16 = 0x0001;
const IFF_NO_PI: u16 = 0x1000;
/// linux/if_tun.h: `_IOW('T', 202, int)` (the argument is really a `struct ifreq`).
const TUNSETIFF: Opcode = opcode::write::<std::ffi::c_int>(b'T', 202);
/// Longest interface name, with its terminating NUL (`IFNAMSIZ`).
const IFNAMSIZ: usize = 16;

/// `struct ifreq` with the `ifr_flags` member of its union; sized for 64-bit targets, which
/// is at least what the kernel reads anywhere.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: u16,
    _pad: [u8; 22],
}

/// An open tun device.
pub(super) struct Tun {
    fd: AsyncFd<OwnedFd>,
    name: String,
}

impl Tun {
    /// Creates a tun interface named `name` (the kernel picks `tunN` for an empty name).
    pub(super) fn open(name: &str) -> io::Result<Self> {
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            flags: IFF_TUN | IFF_NO_PI,
            _pad: [0; 22],
        };
        if name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {name:?} is too long or malformed"),
            ));
        }
        req.name
            .get_mut(..name.len())
            .unwrap_or_default()
            .copy_from_slice(name.as_bytes());
        let fd = rustix::fs::open(
            "/dev/net/tun",
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, whose leading name and flags
        // `IfReq` lays out as C does, with room for the whole union after them.
        unsafe { ioctl(&fd, Updater::<'_, TUNSETIFF, IfReq>::new(&mut req)) }?;
        let len = req.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        let name = String::from_utf8_lossy(req.name.get(..len).unwrap_or_default()).into_owned();
        // SAFETY: `fd` is an open descriptor that the AsyncFd owns (and closes) from here on.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(Self { fd, name })
    }

    /// The interface's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The interface's index.
    pub(super) fn index(&self) -> io::Result<u32> {
        // SIOCGIFINDEX works on any socket.
        let sock = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::DGRAM,
            None,
        )?;
        Ok(rustix::net::netdevice::name_to_index(&sock, &self.name)?)
    }

    /// Reads one packet.
    pub(super) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(Into::into)) {
                Ok(r) => return r,
                Err(_would_block) => {}
            }
        }
    }

    /// Writes one packet.
    pub(super) async fn write(&self, packet: &[u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|fd| rustix::io::write(fd.get_ref(), packet).map_err(Into::into)) {
                Ok(r) => return r,
                Err(_would_block) => {}
            }
        }
    }
}
