//! What a runtime's connection task reports to a remote unit's job, and what the job asks it
//! to write: the same for every runtime, so a job's glue only moves these between its tasks
//! and the machine ([`RemoteUnit::handle_event`]).

use std::time::Instant;

use bytes::Bytes;

use super::{ConnId, ConnectFailure, RemoteUnit};

/// One thing that happened on one of a unit's connections.
#[derive(Debug)]
pub enum ConnEvent {
    /// The dial reached the other node's control service.
    Connected(ConnId),
    /// A parked session was attached instead of a dial.
    Reused(ConnId),
    /// The dial failed.
    ConnectFailed(ConnId, ConnectFailure),
    /// Bytes arrived.
    Bytes(ConnId, Bytes),
    /// The payload was written and its half-close acknowledged.
    HalfClosed(ConnId),
    /// The stream ended (either side, or an error).
    Ended(ConnId),
}

impl ConnEvent {
    /// The connection it is about.
    pub fn conn(&self) -> ConnId {
        match self {
            Self::Connected(c)
            | Self::Reused(c)
            | Self::ConnectFailed(c, _)
            | Self::Bytes(c, _)
            | Self::HalfClosed(c)
            | Self::Ended(c) => *c,
        }
    }

    /// Whether the connection's task is over after it (the job forgets the connection).
    pub fn ends_conn(&self) -> bool {
        matches!(self, Self::ConnectFailed(..) | Self::Ended(_))
    }
}

/// What a connection task is asked to write.
#[derive(Debug)]
pub enum ConnWrite {
    /// A command line.
    Line(String),
    /// The unit's stdin file, then a half-close.
    Payload,
    /// Hand the session to the pool and end.
    Park,
}

impl RemoteUnit {
    /// Feeds one connection event to the machine.
    pub fn handle_event(&mut self, now: Instant, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected(c) => self.handle_connected(now, c),
            ConnEvent::Reused(c) => self.handle_reused(now, c),
            ConnEvent::ConnectFailed(c, why) => self.handle_connect_failed(now, c, why),
            ConnEvent::Bytes(c, b) => self.handle_bytes(now, c, &b),
            ConnEvent::HalfClosed(c) => self.handle_half_closed(now, c),
            ConnEvent::Ended(c) => self.handle_stream_ended(now, c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_and_ends_end_a_connection() {
        let c = ConnId(7);
        let ends = [
            ConnEvent::Connected(c),
            ConnEvent::Reused(c),
            ConnEvent::ConnectFailed(c, ConnectFailure::NoRoute),
            ConnEvent::Bytes(c, Bytes::from_static(b"x")),
            ConnEvent::HalfClosed(c),
            ConnEvent::Ended(c),
        ]
        .map(|e| (e.conn(), e.ends_conn()));
        assert!(ends.iter().all(|(id, _)| *id == c));
        assert_eq!(
            ends.map(|(_, end)| end),
            [false, false, true, false, false, true]
        );
    }
}
