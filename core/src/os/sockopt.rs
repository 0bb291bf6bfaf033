//! Socket options of the TCP connections that carry links, for any runtime's sockets.

use std::os::fd::{AsFd, AsRawFd};

/// Sets up a TCP connection that carries a link: no Nagle delay (the node batches its own
/// writes), and on a short path a bounded send buffer ([`crate::config::tcp_send_buffer`]
/// says why). Failures leave the kernel's defaults, which work, only slower.
pub fn prepare_link_socket(sock: &impl AsFd) {
    let on: libc::c_int = 1;
    set_int_option(sock, libc::IPPROTO_TCP, libc::TCP_NODELAY, on);
    bound_send_buffer(sock);
}

/// `setsockopt` with an int value; the result is ignored (see [`prepare_link_socket`]).
fn set_int_option(sock: &impl AsFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the option value is a c_int that lives across the call, and its size is given;
    // the descriptor is borrowed, so it is open.
    unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(target_os = "linux")]
fn bound_send_buffer(sock: &impl AsFd) {
    if let Some(bytes) = handshake_rtt(sock).and_then(crate::config::tcp_send_buffer) {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        set_int_option(sock, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes);
    }
}

#[cfg(not(target_os = "linux"))]
fn bound_send_buffer(_: &impl AsFd) {}

/// Widens a bound listener's accept queue to [`crate::config::LISTEN_BACKLOG`] (capped by
/// the kernel): a second `listen` on a listening socket only changes its backlog. On failure
/// the queue stays as it was (128), which works, only with longer waits in a burst.
#[cfg(target_os = "linux")]
pub fn widen_backlog(listener: &impl AsFd) {
    // SAFETY: `listen` takes a descriptor and an int; the descriptor is a bound socket.
    unsafe {
        libc::listen(listener.as_fd().as_raw_fd(), crate::config::LISTEN_BACKLOG);
    }
}

/// Elsewhere the standard library's queue stays.
#[cfg(not(target_os = "linux"))]
pub fn widen_backlog(_: &impl AsFd) {}

/// The round trip the kernel measured for a connected TCP socket: right after the handshake,
/// the handshake's own. `None` if the kernel cannot tell.
#[cfg(target_os = "linux")]
fn handshake_rtt(sock: &impl AsFd) -> Option<std::time::Duration> {
    let (info, len) = tcp_info(sock).ok()?;
    // An older kernel may fill less than the whole struct; the round trip must be in it.
    if len < std::mem::offset_of!(libc::tcp_info, tcpi_rttvar) {
        return None;
    }
    Some(std::time::Duration::from_micros(info.tcpi_rtt.into()))
}

/// The kernel's `TCP_INFO` of a socket, and how many bytes of it the kernel filled (the rest
/// stays zero).
#[cfg(target_os = "linux")]
fn tcp_info(sock: &impl AsFd) -> std::io::Result<(libc::tcp_info, usize)> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is valid for writes of `len` bytes, and the kernel writes at most `len`.
    let got = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if got != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the struct is plain integers, zeroed and then partly filled by the kernel.
    Ok((unsafe { info.assume_init() }, len as usize))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn send_buffer(sock: &impl AsFd) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` is a writable c_int and `len` its size.
        let r = unsafe {
            libc::getsockopt(
                sock.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&raw mut v).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        usize::try_from(v).unwrap()
    }

    /// A listening socket's accept-queue bound: Linux reports it in `tcpi_sacked`.
    fn backlog(sock: &impl AsFd) -> u32 {
        tcp_info(sock).unwrap().0.tcpi_sacked
    }

    /// Go's queue: as long as the kernel allows (somaxconn), not the standard library's 128.
    #[test]
    fn listeners_get_gos_accept_queue() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let want = somaxconn.min(crate::config::LISTEN_BACKLOG as u32);
        assert_eq!(backlog(&listener), 128.min(want));
        widen_backlog(&listener);
        assert_eq!(backlog(&listener), want);
    }

    #[test]
    fn loopback_links_get_no_delay_and_a_bounded_send_buffer_both_ways() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let dialed = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // The kernel grants twice what is asked, up to twice net.core.wmem_max.
        let max = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap();
        let want = 2 * crate::config::SHORT_PATH_SEND_BUFFER.min(max);
        for sock in [&dialed, &accepted] {
            // Loopback handshakes take tens of microseconds, even on a busy machine: the
            // kernel runs both ends of it inside connect().
            let rtt = handshake_rtt(sock).unwrap();
            assert!(rtt <= crate::config::SHORT_PATH_RTT, "{rtt:?}");
            assert!(!sock.nodelay().unwrap());
            prepare_link_socket(sock);
            assert!(sock.nodelay().unwrap());
            assert_eq!(send_buffer(sock), want);
        }
    }
}
