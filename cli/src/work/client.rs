//! A control-service client over a mesh stream, for remote units: dial the executing node's
//! `control` service, check its greeting, then send command lines and read reply lines (and,
//! after `work results`, raw bytes) on the same stream.

use std::sync::Arc;
use std::time::Duration;

use receptor_core::control::ControlReply;
use receptor_tokio::{DialFailure, MeshStream, NodeHandle};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::run::TlsConfigs;
use crate::streamtls::client_for;

/// How long the greeting may take (Go: 5 s).
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a dial may take. Go's QUIC handshake gives up after 15 s.
const DIAL_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest reply line accepted.
const MAX_LINE: usize = 1 << 20;

/// How this node reaches others: the node and its TLS configs.
#[derive(Clone)]
pub struct Mesh {
    /// The node.
    pub node: NodeHandle,
    /// TLS configs by name (`tlsclient` of a remote unit).
    pub tls: Arc<TlsConfigs>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("node", &self.node.id())
            .finish()
    }
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The mesh stream could not be opened.
    #[error(transparent)]
    Dial(#[from] DialFailure),
    /// This node has no route to the other one (checked before dialing).
    #[error("no route to node")]
    NoRoute,
    /// The handshake did not complete in time.
    #[error("timeout: handshake did not complete in time")]
    Timeout,
    /// Anything else (a TLS config that cannot be used, a bad greeting, this node stopping).
    #[error("{0}")]
    Other(String),
}

impl ConnectError {
    /// The TLS handshake failed (Go looks for `CRYPTO_ERROR`): retrying will not help.
    pub fn is_tls(&self) -> bool {
        matches!(
            self.failure(),
            Some(receptor_core::stream::StreamFailure::Tls { .. })
        )
    }

    /// A new attempt would fail the same way (TLS refused, a firewall rejecting the packets).
    pub fn is_lasting(&self) -> bool {
        matches!(self, Self::Dial(d) if d.is_lasting())
    }

    /// The stream failure underneath, if the dial got that far.
    pub fn failure(&self) -> Option<&receptor_core::stream::StreamFailure> {
        match self {
            Self::Dial(d) => d.failure(),
            _ => None,
        }
    }
}

/// A control session on the other node.
pub struct Client<S = MeshStream> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Wraps a stream whose greeting has been read.
    pub fn new(stream: S) -> Self {
        Self {
            io: BufReader::new(stream),
        }
    }

    /// Sends one command line (with its `\n`).
    pub async fn send(&mut self, line: &str) -> std::io::Result<()> {
        let s = self.io.get_mut();
        s.write_all(line.as_bytes()).await?;
        s.flush().await
    }

    /// Sends raw bytes.
    pub async fn send_from<R: AsyncRead + Unpin>(&mut self, from: &mut R) -> std::io::Result<u64> {
        tokio::io::copy(from, self.io.get_mut()).await
    }

    /// Ends our sending side; the other node reads EOF.
    pub async fn half_close(&mut self) -> std::io::Result<()> {
        self.io.get_mut().shutdown().await
    }

    /// Reads one line including its `\n`. End of stream before the `\n` is an error (`EOF`),
    /// as Go's `ReadString`.
    pub async fn read_line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        let mut limited = (&mut self.io).take(MAX_LINE as u64);
        limited.read_until(b'\n', &mut buf).await?;
        if buf.last() != Some(&b'\n') {
            let text = if buf.len() >= MAX_LINE {
                "reply line too long"
            } else {
                "EOF"
            };
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, text));
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads raw bytes (what was buffered after the last line first); 0 at end of stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.io.read(buf).await
    }
}

impl Mesh {
    /// Go's `connectToRemote`: dials `control` on `node` (TLS with config `tls_client` when not
    /// empty) and reads its greeting, which must name `node`.
    ///
    /// A node without a route is refused at once instead of waiting for the QUIC handshake to
    /// time out.
    pub async fn connect(&self, node: &str, tls_client: &str) -> Result<Client, ConnectError> {
        let me = self.node.id().as_str();
        let (cfg, sni) =
            client_for(&self.tls, Some(tls_client), node, me).map_err(ConnectError::Other)?;
        if node != me {
            let st = self
                .node
                .status()
                .await
                .map_err(|_| ConnectError::Dial(DialFailure::NodeStopped))?;
            if !st.routes.iter().any(|(dest, _)| dest.as_str() == node) {
                return Err(ConnectError::NoRoute);
            }
        }
        let stream = tokio::time::timeout(DIAL_TIMEOUT, self.node.dial(node, "control", cfg, &sni))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let mut client = Client::new(stream);
        let hello = tokio::time::timeout(GREETING_TIMEOUT, client.read_line())
            .await
            .map_err(|_| ConnectError::Other("context deadline exceeded".into()))?
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        let greeted = matches!(
            ControlReply::decode(&hello),
            Ok(ControlReply::Greeting { node_id }) if node_id == node
        );
        if !greeted {
            return Err(ConnectError::Other(format!(
                "while expecting node ID {node}, got message: {}",
                hello.trim_end_matches('\n')
            )));
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_and_raw_bytes() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = Client::new(a);
        b.write_all(b"first\nsecond\nraw bytes").await.unwrap();
        drop(b);
        assert_eq!(c.read_line().await.unwrap(), "first\n");
        assert_eq!(c.read_line().await.unwrap(), "second\n");
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"raw bytes");
        assert_eq!(c.read(&mut buf).await.unwrap(), 0);
        assert_eq!(c.read_line().await.unwrap_err().to_string(), "EOF");
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = Client::new(a);
        b.write_all(b"partial").await.unwrap();
        drop(b);
        assert_eq!(c.read_line().await.unwrap_err().to_string(), "EOF");
    }

    #[test]
    fn lasting_failures_are_recognised() {
        use receptor_core::stream::StreamFailure;
        let tls = ConnectError::Dial(DialFailure::Failed(StreamFailure::Tls {
            by_peer: true,
            reason: "error 42".into(),
        }));
        assert!(tls.is_tls() && tls.is_lasting());
        let firewall = ConnectError::Dial(DialFailure::Failed(StreamFailure::Unreachable {
            reporter: receptor_core::NodeId::new("B").unwrap(),
            problem: receptor_core::wire::Problem::Firewall,
        }));
        assert!(!firewall.is_tls() && firewall.is_lasting());
        assert!(!ConnectError::NoRoute.is_lasting());
    }
}
