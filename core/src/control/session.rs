//! One control-service session as a sans-IO state machine (control-and-work.md §1.2, §1.5a).

use std::collections::VecDeque;

use bytes::Bytes;

use super::command::{Command, parse_line};
use super::line::{LineEvent, LineReader, MAX_LINE_LEN};
use super::reply::{self, format_status};
use super::reply_codec::Reply;
use super::work::WorkRequest;

/// What the runtime must do for the session: a parsed [`Command`].
pub type Action = Command;

/// Where a session stands; tells the runtime what to do next (after draining
/// [`Session::poll_output`] and [`Session::poll_action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading command lines: feed client bytes to [`Session::handle_bytes`], then EOF to
    /// [`Session::handle_eof`].
    Reading,
    /// An action is out; answer it with [`Session::complete`]. Do not feed bytes.
    Awaiting,
    /// `work submit` created its unit: copy every further client byte (starting with the bytes
    /// `handle_bytes` did not consume) into the unit's stdin until client EOF, start the worker,
    /// then [`Session::complete`] with [`Reply::WorkStarted`] or [`Reply::Error`].
    Payload,
    /// The session handed the connection over: after writing the pending output, bridge it to
    /// the dialled stream (`connect`; client bytes `handle_bytes` did not consume go to the
    /// stream first) or stream the unit's stdout (`work results`; client input is ignored),
    /// then close.
    Switched,
    /// The session is over: write the pending output and close the connection.
    Finished,
}

/// Why [`Session::complete`] refused a reply. The session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// No action is waiting for a reply.
    #[error("no action is waiting for a reply")]
    NotAwaiting,
    /// The reply does not answer the action that is waiting.
    #[error("reply does not match the pending action")]
    Mismatch,
}

/// Which reply the session waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Status(Option<Vec<String>>),
    Ping,
    Traceroute,
    Connect,
    Reload,
    Submit,
    SubmitPayload,
    List,
    UnitStatus,
    Cancel,
    Release,
    Results,
}

impl Pending {
    fn of(cmd: &Command) -> Self {
        match cmd {
            Command::Status { requested_fields } => Self::Status(requested_fields.clone()),
            Command::Ping { .. } => Self::Ping,
            Command::Traceroute { .. } => Self::Traceroute,
            Command::Connect { .. } => Self::Connect,
            Command::Reload => Self::Reload,
            Command::Work(w) => match w {
                WorkRequest::Submit(_) => Self::Submit,
                WorkRequest::List { .. } => Self::List,
                WorkRequest::Status { .. } => Self::UnitStatus,
                WorkRequest::Cancel { .. } => Self::Cancel,
                WorkRequest::Release { .. } => Self::Release,
                WorkRequest::Results { .. } => Self::Results,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Reading,
    Awaiting(Pending),
    Switched,
    Finished,
}

/// The server side of one control connection, from greeting to close.
///
/// # Driving a session
///
/// 1. `Session::new(node_id)`; write everything [`poll_output`](Self::poll_output) yields (the
///    greeting first).
/// 2. In [`Phase::Reading`], pass received bytes to [`handle_bytes`](Self::handle_bytes). It
///    returns how many it consumed: it stops right after a command line that needs the runtime,
///    so keep the unconsumed rest; it is the next command, or payload of a `work submit`.
/// 3. Drain `poll_output` (error replies need no action), then take
///    [`poll_action`](Self::poll_action); perform it and call [`complete`](Self::complete)
///    with its [`Reply`]. Then drain `poll_output` again and go by [`phase`](Self::phase):
///    feed the kept bytes again in `Reading`, copy payload in `Payload`, hand the raw connection
///    over in `Switched`, close in `Finished`.
/// 4. On client EOF call [`handle_eof`](Self::handle_eof) (after every byte read before it was
///    accepted): a partial last line still runs. On a read error just close.
///
/// What each action needs from the runtime is documented on [`Command`] and [`Reply`].
#[derive(Debug)]
pub struct Session {
    reader: LineReader,
    out: VecDeque<Bytes>,
    action: Option<Command>,
    state: State,
    eof: bool,
}

impl Session {
    /// A session for this node; the greeting is queued at once.
    pub fn new(node_id: &str) -> Self {
        Self::with_max_line(node_id, MAX_LINE_LEN)
    }

    /// As [`Session::new`], ending the session with an error on a command line longer than
    /// `max_line` bytes (Go has no limit).
    pub fn with_max_line(node_id: &str, max_line: usize) -> Self {
        let mut out = VecDeque::new();
        out.push_back(Bytes::from(reply::greeting(node_id)));
        Self {
            reader: LineReader::new(max_line),
            out,
            action: None,
            state: State::Reading,
            eof: false,
        }
    }

    /// What the runtime should do next.
    pub fn phase(&self) -> Phase {
        match &self.state {
            State::Reading => Phase::Reading,
            State::Awaiting(Pending::SubmitPayload) => Phase::Payload,
            State::Awaiting(_) => Phase::Awaiting,
            State::Switched => Phase::Switched,
            State::Finished => Phase::Finished,
        }
    }

    /// Whether the client's EOF has been seen.
    pub fn saw_eof(&self) -> bool {
        self.eof
    }

    /// Bytes to write to the client, in order.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// The action to perform, once per command. Then answer with [`Session::complete`].
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.action.take()
    }

    /// Takes client bytes while reading commands and returns how many were consumed.
    ///
    /// Stops right after the `\n` of a command that needs the runtime (or that ends the
    /// session); the rest of `data` is not consumed. Outside [`Phase::Reading`], or after EOF,
    /// consumes nothing.
    pub fn handle_bytes(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while self.state == State::Reading && !self.eof {
            let Some(rest) = data.get(used..).filter(|r| !r.is_empty()) else {
                break;
            };
            let (n, event) = self.reader.push(rest);
            used += n;
            match event {
                None => {}
                Some(LineEvent::Line(line)) => self.execute(&line),
                Some(LineEvent::TooLong) => {
                    self.write(reply::error_line("command line too long"));
                    self.state = State::Finished;
                }
            }
        }
        used
    }

    /// The client closed its side. A buffered partial line is executed first (its reply is
    /// still written); once no action is outstanding the session finishes.
    ///
    /// In [`Phase::Payload`] this only records the EOF: the runtime, which copies the payload,
    /// ends it. In [`Phase::Switched`] it is recorded and otherwise ignored.
    pub fn handle_eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        if self.state != State::Reading {
            return;
        }
        if let Some(line) = self.reader.finish() {
            self.execute(&line);
        }
        if self.state == State::Reading {
            self.state = State::Finished;
        }
    }

    /// Answers the outstanding action with its reply and queues the reply bytes.
    pub fn complete(&mut self, reply: Reply) -> Result<(), CompleteError> {
        let State::Awaiting(pending) = &self.state else {
            return Err(CompleteError::NotAwaiting);
        };
        let next = match (pending, &reply) {
            // After the payload Go reads again, meets the client's EOF and ends the session.
            (Pending::SubmitPayload, Reply::Error(_) | Reply::WorkStarted { .. }) => {
                State::Finished
            }
            (_, Reply::Error(_))
            | (Pending::Status(_), Reply::Status(_))
            | (Pending::Ping, Reply::Ping(_))
            | (Pending::Traceroute, Reply::Traceroute(_))
            | (Pending::Reload, Reply::Reload(_))
            | (Pending::List, Reply::WorkList(_))
            | (Pending::UnitStatus, Reply::WorkStatus(_))
            | (Pending::Cancel, Reply::WorkCancelled { .. })
            | (Pending::Release, Reply::WorkReleased { .. }) => self.after_reply(),
            (Pending::Connect, Reply::Connected)
            | (Pending::Results, Reply::WorkResults { .. }) => State::Switched,
            (Pending::Submit, Reply::WorkUnitCreated { .. }) => {
                State::Awaiting(Pending::SubmitPayload)
            }
            _ => return Err(CompleteError::Mismatch),
        };
        let bytes = match (pending, &reply) {
            (Pending::Status(fields), Reply::Status(snap)) => {
                format_status(snap, fields.as_deref())
            }
            _ => reply.encode(),
        };
        self.write(bytes);
        self.state = next;
        Ok(())
    }

    /// After an ordinary reply: read the next command, unless the client already hung up.
    fn after_reply(&self) -> State {
        if self.eof {
            State::Finished
        } else {
            State::Reading
        }
    }

    fn write(&mut self, s: String) {
        self.out.push_back(Bytes::from(s));
    }

    fn execute(&mut self, line: &[u8]) {
        match parse_line(line) {
            Ok(cmd) => {
                self.state = State::Awaiting(Pending::of(&cmd));
                self.action = Some(cmd);
            }
            Err(e) => self.write(e.reply()),
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
