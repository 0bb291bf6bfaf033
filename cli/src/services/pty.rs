//! A pseudo-terminal for `command-service`: the master side read and written asynchronously,
//! the slave side given to a child as its stdio and controlling terminal (what Go's
//! `creack/pty.Start` does: a new session, the slave as controlling tty, no window size set).

use std::io;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};

/// The master side of a pty. Dropping it hangs the terminal up: the kernel sends SIGHUP to
/// the session whose controlling terminal it is.
pub(super) struct Pty {
    master: AsyncFd<OwnedFd>,
}

impl Pty {
    /// Starts `argv` on a new pty. The slave side is open only in the child once this returns,
    /// so reads end (EOF) when the child and whatever it left on the terminal are gone.
    pub(super) fn spawn(argv: &[String]) -> io::Result<(Self, Child)> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let name = rustix::pty::ptsname(&master, Vec::new())?;
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::io::ioctl_fionbio(&master, true)?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: the closure runs in the child between fork and exec and only makes two
        // system calls (no allocation, no locks), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                // stdin is the slave by now: make it this new session's controlling terminal.
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // `cmd` still holds the slave descriptors: let them go, so only the child has them.
        drop(cmd);
        // SAFETY: `master` is an open descriptor that the AsyncFd owns (and closes) from here
        // on; nothing else closes or replaces it.
        let master = unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?;
        Ok((Self { master }, child))
    }

    /// Reads what the child wrote; `Ok(0)` once the slave side is closed everywhere (Linux
    /// reports that as EIO).
    pub(super) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.master.readable().await?;
            match ready.try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(Into::into)) {
                Ok(Err(e)) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Ok(0);
                }
                Ok(r) => return r,
                Err(_would_block) => {}
            }
        }
    }

    /// Writes all of `data` as the terminal's input.
    pub(super) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut ready = self.master.writable().await?;
            match ready.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(Into::into)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => data = data.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_runs_on_a_terminal_and_its_end_is_eof() {
        let argv = [
            "sh",
            "-c",
            "test -t 0 && test -t 1 && read x && echo got:$x",
        ]
        .map(str::to_owned);
        let (pty, mut child) = Pty::spawn(&argv).unwrap();
        pty.write_all(b"hello\n").await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = pty.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&out);
        // The terminal echoes the input, then the output's newline becomes CR LF.
        assert!(text.contains("hello\r\n"), "{text:?}");
        assert!(text.contains("got:hello\r\n"), "{text:?}");
        assert!(child.wait().await.unwrap().success());
    }

    #[test]
    fn an_empty_command_is_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(async { Pty::spawn(&[]).map(|_| ()) });
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
