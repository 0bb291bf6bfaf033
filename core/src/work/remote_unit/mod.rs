//! One remote unit as seen from the node that submitted it (control-and-work.md §2.6): a
//! sans-IO state machine that speaks the control protocol to the executing node's `control`
//! service over mesh streams, which the runtime opens, reads and writes for it.
//!
//! The unit goes through these phases:
//!
//! * **submit**: dial, check the greeting, `work submit`, read the unit ID, send the payload
//!   (the unit's stdin, by the runtime), half-close, read the final reply. A stream cut before
//!   the unit ID came is submitted again. One cut after the half-close was acknowledged is
//!   followed (the unit may be running there). One cut in between leaves the payload
//!   unconfirmed: it may have arrived whole although its acknowledgement did not. Then the
//!   other node is asked the unit's status on a new connection (`unconfirmed.rs`), and only a
//!   unit that never ran is submitted again, so the work never runs twice there;
//! * **follow**: two streams. One asks `work status` over and over, with the long-poll
//!   extension ([`crate::control::StatusWait`]) that our nodes hold until State or Detail
//!   change; Go answers at once, and the next poll then waits out the rest of an interval
//!   that starts at 250 ms and doubles up to 1 s while nothing changes. The other asks
//!   `work results` from the local output size and appends what streams in; after any break
//!   it asks again from the new local size, so no byte is lost or doubled. The unit is done
//!   when it is complete there (or Canceled there after a local cancel) with all its output
//!   here;
//! * **cancel / release**: sent until the other node hears it; a cancelled unit is followed
//!   on, a released one forgotten once the other node no longer knows it.
//!
//! Connection failures are retried with [`Backoff`] (1 s growing ×1.5 up to 20 s). A unit not
//! started there fails at once when retrying cannot help: TLS refused, a firewall rejecting
//! the packets, or a second handshake in a row left unanswered although a route existed (a
//! firewall dropping them; one silence is not enough, as a node that has just come back
//! drops our handshake until our next routing update reaches it). Beyond Go, a unit whose
//! node stays unreachable for longer than [`RemoteUnitConfig::unreachable_timeout`] fails.
//!
//! Where it lives: settings in `config.rs`, connections in `conns.rs`, the local commands
//! (start, resume, cancel, release) in `commands.rs`, the submit and the reading of replies
//! in `replies.rs`, status following in `follow.rs`, output in `output.rs`, failed
//! connections and retries in `failures.rs`, an unconfirmed payload in `unconfirmed.rs`, and
//! the unit's end here in `outcome.rs`.
//!
//! Polling order (as [`crate::Node`]): after any `handle_*` call or command, drain
//! [`RemoteUnit::poll_output`], then wait until [`RemoteUnit::poll_timeout`] or the next
//! input. The runtime carries out the outputs of one connection in order.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use tracing::{debug, warn};

use super::remote::RemoteExtraData;
use crate::backoff::Backoff;

/// Longest reply line read before the connection is given up.
const MAX_LINE: usize = 1 << 20;

/// What the runtime must do for the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteOutput {
    /// Open a mesh stream to the unit's node's `control` service (TLS config
    /// [`RemoteExtraData::tls_client`]); answer with [`RemoteUnit::handle_connected`] or
    /// [`RemoteUnit::handle_connect_failed`], or attach a session parked by
    /// [`RemoteOutput::Park`] for the same node and TLS config and answer with
    /// [`RemoteUnit::handle_reused`]. Deliver every byte read with
    /// [`RemoteUnit::handle_bytes`] and the stream's end with [`RemoteUnit::handle_stream_ended`].
    Dial(ConnId),
    /// Write this line.
    SendLine(ConnId, String),
    /// Write the unit's stdin file, then half-close; report with
    /// [`RemoteUnit::handle_half_closed`] once the other side has it all.
    SendPayload(ConnId),
    /// Close the stream; report nothing more about it.
    Close(ConnId),
    /// The stream is a greeted control session with nothing asked and nothing to read: keep
    /// it for another unit's [`RemoteOutput::Dial`] to the same node (or close it). Report
    /// nothing more about it.
    Park(ConnId),
    /// Append output to the local `stdout`; `offset` is where it starts (the local size).
    AppendOutput {
        /// The local size before these bytes.
        offset: i64,
        /// The bytes.
        data: Bytes,
    },
    /// Store the unit's remote data (its ID there, started, cancelled, released).
    SaveRemote(RemoteExtraData),
    /// Set the unit's State and Detail, and its stdout size unless `None`.
    SetStatus {
        /// One of the `STATE_*` numbers.
        state: i64,
        /// Detail.
        detail: String,
        /// Stdout size, or leave it.
        stdout_size: Option<i64>,
    },
    /// Set only the Detail.
    SetDetail(String),
    /// The answer to the command ([`RemoteUnit::start`], [`RemoteUnit::cancel`]) the local
    /// client waits for: `Ok(pending)`, where `pending`
    /// says the other node has not heard yet (`Job Submitted`, `cancel pending`).
    Answer(Result<bool, String>),
    /// The unit is released: delete it here.
    Forget,
}

/// Where the unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemotePhase {
    /// Created, nothing asked yet.
    Idle,
    /// Submitting to the other node.
    Submit,
    /// Started there: following status and output.
    Follow,
    /// Sending a cancel (`release` false) or a release until the other node hears it.
    Cancel {
        /// A release rather than a cancel.
        release: bool,
        /// One attempt only (force-release).
        force: bool,
    },
    /// Released there with `release pending`: polling until the other node forgets it.
    AwaitGone,
    /// Nothing more to do (terminal here with all output, failed, or forgotten).
    Done,
}

/// A remote unit, from the submitting node's side. See the [module docs](self).
#[derive(Debug)]
pub struct RemoteUnit {
    config: RemoteUnitConfig,
    data: RemoteExtraData,
    /// State as stored here (the last status read, or what this machine set).
    state: i64,
    /// Stdout size the other node reported last.
    remote_size: i64,
    /// Bytes of output here.
    local_size: i64,
    phase: RemotePhase,
    seen: Option<Seen>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    out: VecDeque<RemoteOutput>,
    answer_owed: bool,
    signature: Option<String>,
    backoff: Backoff,
    rng: ChaCha8Rng,
    /// When to dial the control connection again.
    control_retry: Option<Instant>,
    /// When to dial the results connection again.
    results_retry: Option<Instant>,
    /// When to send the next status poll.
    poll_at: Option<Instant>,
    poll_interval: Duration,
    /// A results stream ended or was refused: the next one waits for a status reply.
    results_wait_news: bool,
    last_output: Instant,
    unreachable_since: Option<Instant>,
    unanswered: u32,
    /// An unstarted unit fails then with this Detail (`ttl`); not while its payload is
    /// unconfirmed (it may run there), only once the other node says it never ran.
    expiry: Option<(Instant, String)>,
    /// Since when the payload of `data.remote_unit_id` is unconfirmed: the submit was cut
    /// after the unit was created there but before its payload was acknowledged.
    unconfirmed: Option<Instant>,
    /// The unconfirmed unit was resumed after a restart here: its payload is gone, so a unit
    /// that did not run there fails instead of being submitted again.
    payload_gone: bool,
}

impl RemoteUnit {
    /// A unit with its remote data, its stored State and stdout size (as reported), and the
    /// bytes of output already here.
    pub fn new(
        data: RemoteExtraData,
        state: i64,
        stdout_size: i64,
        local_size: i64,
        config: RemoteUnitConfig,
        now: Instant,
    ) -> Self {
        let seed = config.rng_seed;
        let backoff = Backoff::new(config.retry_first, config.retry_max);
        let poll_interval = config.poll_fast;
        Self {
            config,
            data,
            state,
            local_size,
            remote_size: stdout_size,
            phase: RemotePhase::Idle,
            seen: None,
            conns: BTreeMap::new(),
            next_conn: 0,
            out: VecDeque::new(),
            answer_owed: false,
            signature: None,
            backoff,
            rng: ChaCha8Rng::seed_from_u64(seed),
            control_retry: None,
            results_retry: None,
            poll_at: None,
            poll_interval,
            results_wait_news: false,
            last_output: now,
            unreachable_since: None,
            unanswered: 0,
            expiry: None,
            unconfirmed: None,
            payload_gone: false,
        }
    }

    // ---- getters ----

    /// Where the unit stands.
    pub fn phase(&self) -> RemotePhase {
        self.phase
    }

    /// The remote data as this machine knows it.
    pub fn data(&self) -> &RemoteExtraData {
        &self.data
    }

    /// Bytes of output here.
    pub fn local_size(&self) -> i64 {
        self.local_size
    }

    /// Whether the machine has nothing more to do.
    pub fn is_done(&self) -> bool {
        self.phase == RemotePhase::Done
    }

    // ---- inputs ----

    /// The stream `conn` is open.
    pub fn handle_connected(&mut self, _now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.stage == Stage::Dialing
        {
            c.stage = Stage::Greeting;
        }
    }

    /// The runtime attached a parked session to `conn` (instead of dialing).
    pub fn handle_reused(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.stage != Stage::Dialing {
            return;
        }
        c.reused = true;
        let purpose = c.purpose;
        self.greeted(now, conn, purpose, false);
        let mut within = self.config.reused_reply_timeout;
        if let Some(c) = self.conns.get_mut(&conn) {
            if matches!(c.stage, Stage::AwaitStatus { .. }) {
                within += self.config.status_wait;
            }
            c.deadline = Some(now + within);
        }
    }

    /// Opening `conn` failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, why: ConnectFailure) {
        if let Some(c) = self.conns.remove(&conn) {
            self.connect_failed(c.purpose, &why, now);
        }
    }

    /// Bytes read from `conn`.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.stage == Stage::Streaming {
            self.append(now, Bytes::copy_from_slice(data));
            return;
        }
        c.buf.extend_from_slice(data);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.stage == Stage::Streaming {
                let rest = std::mem::take(&mut c.buf);
                if !rest.is_empty() {
                    self.append(now, Bytes::from(rest));
                }
                return;
            }
            let Some(end) = c.buf.iter().position(|b| *b == b'\n') else {
                if c.buf.len() > MAX_LINE {
                    warn!(
                        "[{}] reply line too long from {}",
                        self.tag(),
                        self.data.remote_node
                    );
                    self.lost(now, conn);
                }
                return;
            };
            let line: Vec<u8> = c.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).into_owned();
            self.line(now, conn, &line);
        }
    }

    /// The runtime wrote the payload and half-closed `conn`, and the other side has it all.
    pub fn handle_half_closed(&mut self, _now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.stage == Stage::SendingPayload
        {
            c.stage = Stage::AwaitStarted;
        }
    }

    /// `conn` ended: end of stream, or a read or write error.
    pub fn handle_stream_ended(&mut self, now: Instant, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.lost(now, conn);
        }
    }

    /// Time passed; safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((at, detail)) = &self.expiry
            && now >= *at
            && self.expirable()
        {
            let detail = detail.clone();
            self.expiry = None;
            warn!("[{}] {detail}", self.tag());
            self.fail(detail, 0);
            self.answer(Ok(true));
            return;
        }
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| now >= d))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(c) = self.conns.get(&id) else {
                continue;
            };
            if c.reused {
                self.redial_fresh(now, id);
                continue;
            }
            match c.stage {
                Stage::Dialing | Stage::Greeting => {
                    let purpose = c.purpose;
                    self.close(id);
                    self.connect_failed(purpose, &ConnectFailure::Timeout, now);
                }
                Stage::AwaitCheck | Stage::AwaitCheckRelease => {
                    debug!(
                        "[{}] no answer about unit {} from {}: reconnecting",
                        self.tag(),
                        self.data.remote_unit_id,
                        self.data.remote_node
                    );
                    self.lost(now, id);
                }
                Stage::AwaitStatus { .. } => {
                    debug!(
                        "[{}] no status reply from {}: reconnecting",
                        self.tag(),
                        self.data.remote_node
                    );
                    self.lost(now, id);
                }
                Stage::Streaming => {
                    if self.more_output_there() {
                        debug!(
                            "[{}] results stream from {} stalled",
                            self.tag(),
                            self.data.remote_node
                        );
                        self.lost(now, id);
                    } else if let Some(c) = self.conns.get_mut(&id) {
                        c.deadline = None;
                    }
                }
                _ => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.deadline = None;
                    }
                }
            }
        }
        if self.control_retry.is_some_and(|t| now >= t) {
            self.control_retry = None;
            if !self.has(Purpose::Control) && self.phase != RemotePhase::Done {
                self.dial(Purpose::Control, now);
            }
        }
        if self.results_retry.is_some_and(|t| now >= t) {
            self.results_retry = None;
            self.maybe_results(now);
        }
        if self.poll_at.is_some_and(|t| now >= t) {
            self.poll_at = None;
            self.poll_now(now);
        }
    }

    // ---- outputs ----

    /// The next thing for the runtime to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<RemoteOutput> {
        self.out.pop_front()
    }

    /// When to call [`Self::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|c| c.deadline);
        let expiry = self
            .expiry
            .as_ref()
            .filter(|_| self.expirable())
            .map(|(at, _)| *at);
        [self.control_retry, self.results_retry, self.poll_at, expiry]
            .into_iter()
            .flatten()
            .chain(conns)
            .min()
    }
}

mod commands;
mod config;
mod conn_event;
mod conns;
mod failures;
mod follow;
mod outcome;
mod output;
mod replies;
mod unconfirmed;

pub use config::RemoteUnitConfig;
pub use conn_event::{ConnEvent, ConnWrite};
pub use conns::ConnId;
use conns::{Conn, Purpose, Stage};
pub use failures::ConnectFailure;
use follow::Seen;

// The tests take these through `use super::*`.
#[cfg(test)]
use super::remote::status_command;
#[cfg(test)]
use super::status::{STATE_CANCELED, STATE_FAILED, is_complete};

#[cfg(test)]
mod against_session;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod tests;
