//! One control connection from the runtime's point of view: a [`Session`] plus the client
//! bytes read ahead of it, reduced to one question, "what next?" ([`Connection::poll_step`]).
//!
//! Every runtime's control driver is then the same small loop over [`Step`]s, doing only the
//! I/O: write, read, perform an action, copy a payload, or hand the connection over.

use bytes::{Buf, Bytes, BytesMut};

use super::reply::{ConnectionStatus, HostInfo, StatusSnapshot};
use super::reply_codec::Reply;
use super::session::{Action, CompleteError, Phase, Session};
use crate::{MeshStatus, PingResult, SendError, TraceEvent};

/// How long a `connect` bridge holds the remote side's first bytes after `Connecting`:
/// receptorctl reads that line through a buffered file and then selects on the raw socket, so
/// bytes that arrive with the line are lost in its buffer. Go's remote greeting comes a round
/// trip later by construction; ours could come at once.
pub const BRIDGE_HOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// What the runtime does next for a [`Connection`].
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write these bytes to the client, then ask again.
    Write(Bytes),
    /// Perform the action, answer it with [`Connection::complete`], then ask again.
    Perform(Action),
    /// Read from the client: give the bytes to [`Connection::received`], or a read of 0 bytes
    /// to [`Connection::received_eof`]. On a read error just close.
    Read,
    /// `work submit` payload: write `kept`, then (unless `eof`) every further client byte up
    /// to EOF, into the unit's stdin; start the unit and [`Connection::complete`] with
    /// [`Reply::WorkStarted`] or [`Reply::Error`]. The connection counts the client's input
    /// as ended from here on.
    Payload {
        /// Client bytes read past the command line.
        kept: Bytes,
        /// Whether the client's EOF was already read.
        eof: bool,
    },
    /// The session switched the connection (`connect`, `work results`): bridge it to the
    /// dialled stream (`kept` goes to the stream first; `eof`: the client's side has already
    /// ended) or stream results, then close.
    Switched {
        /// Client bytes read past the command line.
        kept: Bytes,
        /// Whether the client's EOF was already read.
        eof: bool,
    },
    /// Flush, shut down the writing side and close.
    Close,
}

/// The server side of one control connection: a [`Session`] and the client bytes it has
/// not consumed yet.
///
/// ```
/// use receptor_core::control::{Action, Connection, Reply, Step};
///
/// let mut c = Connection::new("node1");
/// assert_eq!(c.poll_step(), Step::Write("Receptor Control, node node1\n".into()));
/// assert_eq!(c.poll_step(), Step::Read);
/// c.received(b"ping node2\nstatus");
/// let Step::Perform(Action::Ping { target }) = c.poll_step() else { unreachable!() };
/// assert_eq!(target, "node2");
/// c.complete(Reply::Error("no route to node".into())).unwrap();
/// assert_eq!(c.poll_step(), Step::Write("ERROR: no route to node\n".into()));
/// assert_eq!(c.poll_step(), Step::Read); // "status" is not a whole line yet
/// c.received_eof();
/// // A last line without a newline still runs.
/// assert!(matches!(c.poll_step(), Step::Perform(Action::Status { .. })));
/// ```
#[derive(Debug)]
pub struct Connection {
    session: Session,
    input: BytesMut,
    eof: bool,
}

impl Connection {
    /// A connection to this node's control service; the greeting is the first step.
    pub fn new(node_id: &str) -> Self {
        Self::with_session(Session::new(node_id))
    }

    /// A connection around a session made otherwise (e.g. [`Session::with_max_line`]).
    pub fn with_session(session: Session) -> Self {
        Self {
            session,
            input: BytesMut::new(),
            eof: false,
        }
    }

    /// The session, for its [`phase`](Session::phase).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Bytes read from the client.
    pub fn received(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// The client closed its side.
    pub fn received_eof(&mut self) {
        self.eof = true;
    }

    /// Answers the action of the last [`Step::Perform`] (or the payload of [`Step::Payload`]).
    pub fn complete(&mut self, reply: Reply) -> Result<(), CompleteError> {
        self.session.complete(reply)
    }

    /// What to do next. Call again after each step is done.
    #[must_use]
    pub fn poll_step(&mut self) -> Step {
        loop {
            if let Some(out) = self.session.poll_output() {
                return Step::Write(out);
            }
            if let Some(action) = self.session.poll_action() {
                return Step::Perform(action);
            }
            match self.session.phase() {
                Phase::Reading => {
                    if !self.input.is_empty() {
                        let used = self.session.handle_bytes(&self.input);
                        self.input.advance(used);
                        if used > 0 {
                            continue;
                        }
                    }
                    if !self.eof {
                        return Step::Read;
                    }
                    if self.session.saw_eof() {
                        return Step::Close;
                    }
                    self.session.handle_eof();
                }
                Phase::Payload => {
                    let eof = std::mem::replace(&mut self.eof, true);
                    let kept = self.input.split().freeze();
                    return Step::Payload { kept, eof };
                }
                Phase::Switched => {
                    let kept = self.input.split().freeze();
                    return Step::Switched {
                        kept,
                        eof: self.eof,
                    };
                }
                // Awaiting with no action out: the runtime skipped `complete`; nothing sane
                // is left to do but close.
                Phase::Finished | Phase::Awaiting => return Step::Close,
            }
        }
    }
}

/// A ping result for a ping that could not be made (the node stopped, ...).
pub fn failed_ping(error: impl Into<String>) -> PingResult {
    PingResult {
        from: None,
        rtt: std::time::Duration::ZERO,
        error: Some(error.into()),
    }
}

/// The `ping` reply for the node's answer to a ping request. Go reports a ping that could not
/// be sent by its bare reason.
pub fn ping_reply(sent: Result<PingResult, SendError>) -> Reply {
    Reply::Ping(match sent {
        Ok(r) => r,
        Err(SendError::NoRoute(_)) => failed_ping("no route to node"),
        Err(other) => failed_ping(other.to_string()),
    })
}

/// Collects a traceroute's hop events into its reply.
#[derive(Debug, Default)]
pub struct TraceHops(Vec<PingResult>);

impl TraceHops {
    /// Takes one event; `false` once the trace is done.
    pub fn push(&mut self, event: TraceEvent) -> bool {
        match event {
            TraceEvent::Hop(_, r) => {
                self.0.push(r);
                true
            }
            TraceEvent::Done => false,
        }
    }

    /// The `traceroute` reply with the hops so far.
    pub fn into_reply(self) -> Reply {
        Reply::Traceroute(self.0)
    }
}

impl StatusSnapshot {
    /// The snapshot for a node's [`MeshStatus`] (as the runtimes' handles return it).
    pub fn from_mesh_status(st: MeshStatus, host: HostInfo) -> Self {
        Self {
            node_id: st.node_id.to_string(),
            connections: st
                .connections
                .into_iter()
                .map(|(n, cost)| ConnectionStatus {
                    node_id: n.to_string(),
                    cost,
                })
                .collect(),
            routing_table: st
                .routes
                .into_iter()
                .map(|(d, h)| (d.to_string(), h.to_string()))
                .collect(),
            known_connection_costs: st
                .known_connection_costs
                .into_iter()
                .map(|(a, m)| {
                    let peers = m.into_iter().map(|(b, c)| (b.to_string(), c)).collect();
                    (a.to_string(), peers)
                })
                .collect(),
            advertisements: st.advertisements,
            host,
        }
    }
}

/// The node `connect` dials: `localhost` (any case) is this node.
pub fn connect_target<'a>(node: &'a str, self_id: &'a str) -> &'a str {
    if node.eq_ignore_ascii_case("localhost") {
        self_id
    } else {
        node
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
