//! Socket options of the TCP connections that carry links (as in `receptor-tokio`, which
//! this crate does not depend on).

use std::os::fd::AsRawFd;

/// Sets up a TCP connection that carries a link: no Nagle delay (the node batches its own
/// writes), and on a short path a bounded send buffer (`receptor_core::config::tcp_send_buffer`
/// says why). Failures leave the kernel's defaults, which work, only slower.
pub(crate) fn prepare_link_socket(sock: &async_net::TcpStream) {
    let _ = sock.set_nodelay(true);
    bound_send_buffer(sock);
}

#[cfg(target_os = "linux")]
fn bound_send_buffer(sock: &impl AsRawFd) {
    if let Some(bytes) = handshake_rtt(sock).and_then(receptor_core::config::tcp_send_buffer) {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: the option value is a c_int that lives across the call, and its size is given.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&raw const bytes).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn bound_send_buffer(_: &impl AsRawFd) {}

/// Widens a bound listener's accept queue to [`receptor_core::config::LISTEN_BACKLOG`]
/// (capped by the kernel): a second `listen` on a listening socket only changes its backlog.
/// On failure the queue stays as it was (128), which works, only with longer waits in a burst.
#[cfg(target_os = "linux")]
pub(crate) fn widen_backlog(listener: &impl AsRawFd) {
    // SAFETY: `listen` takes a descriptor and an int; the descriptor is a bound socket.
    unsafe {
        libc::listen(listener.as_raw_fd(), receptor_core::config::LISTEN_BACKLOG);
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn widen_backlog(_: &impl AsRawFd) {}

/// The round trip the kernel measured for a connected TCP socket: right after the handshake,
/// the handshake's own. `None` if the kernel cannot tell.
#[cfg(target_os = "linux")]
fn handshake_rtt(sock: &impl AsRawFd) -> Option<std::time::Duration> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is valid for writes of `len` bytes, and the kernel writes at most `len`.
    let got = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // An older kernel may fill less than the whole struct; the round trip must be in it.
    if got != 0 || (len as usize) < std::mem::offset_of!(libc::tcp_info, tcpi_rttvar) {
        return None;
    }
    // SAFETY: the struct is plain integers, zeroed and then partly filled by the kernel.
    let rtt = unsafe { info.assume_init() }.tcpi_rtt;
    Some(std::time::Duration::from_micros(rtt.into()))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn send_buffer(sock: &impl AsRawFd) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` is a writable c_int and `len` its size.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
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
    fn backlog(sock: &impl AsRawFd) -> u32 {
        let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: `info` is valid for writes of `len` bytes, and the kernel writes at most `len`.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        // SAFETY: plain integers, zeroed and then filled by the kernel.
        unsafe { info.assume_init() }.tcpi_sacked
    }

    /// Go's queue: as long as the kernel allows (somaxconn), not the standard library's 128.
    fn assert_widened(listener: &impl AsRawFd) {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let want = somaxconn.min(receptor_core::config::LISTEN_BACKLOG as u32);
        assert_eq!(backlog(listener), 128.min(want));
        widen_backlog(listener);
        assert_eq!(backlog(listener), want);
    }

    #[test]
    fn listeners_get_gos_accept_queue() {
        let listener = async_io::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
        assert_widened(&listener);
    }

    #[test]
    fn loopback_links_get_a_bounded_send_buffer_both_ways() {
        let (dialed, accepted) = async_io::block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let dialed = async_net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            (dialed, listener.accept().await.unwrap().0)
        });
        // The kernel grants twice what is asked, up to twice net.core.wmem_max.
        let max = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap();
        let want = 2 * receptor_core::config::SHORT_PATH_SEND_BUFFER.min(max);
        for sock in [&dialed, &accepted] {
            // Loopback handshakes take tens of microseconds, even on a busy machine: the
            // kernel runs both ends of it inside connect().
            let rtt = handshake_rtt(sock).unwrap();
            assert!(rtt <= receptor_core::config::SHORT_PATH_RTT, "{rtt:?}");
            prepare_link_socket(sock);
            assert!(sock.nodelay().unwrap());
            assert_eq!(send_buffer(sock), want);
        }
    }
}
