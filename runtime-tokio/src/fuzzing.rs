//! Entry points for fuzz targets and their corpus replay tests (feature `fuzzing`).

use std::io::{Read, Write};

use tokio_tungstenite::tungstenite;

/// A connection whose peer sent `input` and then closed; what we write is dropped.
struct Replay<'a> {
    input: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `ws-listener` connection that sent `data` (after a first byte choosing the listener's
/// path): the upgrade request through tungstenite's handshake with our path and origin
/// checks and our session settings, then, if it was accepted, every frame until the stream
/// fails or ends. No message may be larger than a netceptor message.
pub fn ws_upgrade(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    let path = ["/", "/ws", "/receptor/"][usize::from(which % 3)];
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let check = |req: &tungstenite::handshake::server::Request,
                 resp: tungstenite::handshake::server::Response| {
        crate::backends::check_upgrade(path, req, resp)
    };
    let config = Some(crate::backends::ws_config());
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(Replay { input }, check, config) else {
        return;
    };
    let mut n = 0usize;
    while let Ok(m) = ws.read() {
        n += 1;
        assert!(n <= input.len(), "more messages than bytes");
        assert!(
            m.len() <= receptor_core::wire::MAX_MESSAGE_LEN,
            "oversized message"
        );
    }
}
