//! The applications' side of a node, shared by every runtime: the requests applications
//! make ([`AppCommand`]) and the bookkeeping that routes answers, probe results and service
//! datagrams back to whoever waits for them ([`Apps`]).
//!
//! Runtimes differ only in their channels; [`Channels`] names them. Nothing here waits: a
//! runtime's `reply` and `feed` must hand the value over at once or drop it (a full service
//! queue drops the datagram, as the network could).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::report::{ServiceEvent, TraceEvent};
use crate::{
    Advertise, Event, ListenError, MeshStatus, Node, PingId, PingResult, SendError, ServiceName,
};

/// A runtime's channels to applications.
pub trait Channels {
    /// Carries exactly one answer.
    type Reply<T>;
    /// Carries a sequence of values (datagrams, traceroute hops).
    type Feed<T>;

    /// Hands over the one answer; an application that stopped waiting loses it.
    fn reply<T>(tx: Self::Reply<T>, value: T);

    /// Hands over one value without waiting; a full or closed feed drops it.
    fn feed<T>(tx: &Self::Feed<T>, value: T);
}

/// A request from an application to the node.
pub enum AppCommand<C: Channels> {
    /// A snapshot of the mesh.
    Status(C::Reply<MeshStatus>),
    /// Ping a node (by ID).
    Ping(String, C::Reply<Result<PingResult, SendError>>),
    /// Trace the route to a node: one event per hop, then `Done`.
    Traceroute(String, C::Feed<TraceEvent>),
    /// Bind a service (a fresh ephemeral name when `service` is `None`).
    Listen {
        /// The name to bind.
        service: Option<String>,
        /// What to advertise for it, if anything.
        advertise: Option<Advertise>,
        /// Where its datagrams and notices go.
        deliver: C::Feed<ServiceEvent>,
        /// The bound name, or why not.
        reply: C::Reply<Result<ServiceName, ListenError>>,
    },
    /// Unbind a service.
    Unlisten(ServiceName),
    /// Send a datagram from a bound service.
    Send {
        /// The local service it comes from.
        from: ServiceName,
        /// The destination node.
        to_node: String,
        /// The destination service.
        to_service: ServiceName,
        /// The datagram.
        payload: Bytes,
        /// Whether it left.
        reply: C::Reply<Result<(), SendError>>,
    },
}

impl<C: Channels> AppCommand<C> {
    /// Ping `target`.
    pub fn ping(target: &str, reply: C::Reply<Result<PingResult, SendError>>) -> Self {
        Self::Ping(target.to_owned(), reply)
    }

    /// Trace the route to `target`.
    pub fn traceroute(target: &str, hops: C::Feed<TraceEvent>) -> Self {
        Self::Traceroute(target.to_owned(), hops)
    }

    /// Bind `service` (ephemeral when `None`).
    pub fn listen(
        service: Option<&str>,
        advertise: Option<Advertise>,
        deliver: C::Feed<ServiceEvent>,
        reply: C::Reply<Result<ServiceName, ListenError>>,
    ) -> Self {
        Self::Listen {
            service: service.map(str::to_owned),
            advertise,
            deliver,
            reply,
        }
    }

    /// Send `payload` from `from` to `to_node:to_service`.
    pub fn send(
        from: ServiceName,
        to_node: &str,
        to_service: ServiceName,
        payload: Bytes,
        reply: C::Reply<Result<(), SendError>>,
    ) -> Self {
        Self::Send {
            from,
            to_node: to_node.to_owned(),
            to_service,
            payload,
            reply,
        }
    }
}

/// What an application settles for when the node stopped before answering its request.
pub trait Unanswered {
    /// The answer of a stopped node.
    fn node_stopped() -> Self;
}

impl Unanswered for Result<ServiceName, ListenError> {
    /// `InUse`: [`ListenError`] has no "stopped" case.
    fn node_stopped() -> Self {
        Err(ListenError::InUse(ServiceName::default()))
    }
}

impl Unanswered for Result<(), SendError> {
    fn node_stopped() -> Self {
        Err(SendError::ShutDown)
    }
}

/// Who waits for what: bound services, pings and traceroutes in flight.
pub struct Apps<C: Channels> {
    services: BTreeMap<ServiceName, C::Feed<ServiceEvent>>,
    pings: BTreeMap<PingId, C::Reply<Result<PingResult, SendError>>>,
    traces: BTreeMap<PingId, C::Feed<TraceEvent>>,
}

impl<C: Channels> Default for Apps<C> {
    fn default() -> Self {
        Self {
            services: BTreeMap::new(),
            pings: BTreeMap::new(),
            traces: BTreeMap::new(),
        }
    }
}

impl<C: Channels> Apps<C> {
    /// Carries out one application request on `node`.
    pub fn command(&mut self, node: &mut Node, now: Instant, cmd: AppCommand<C>) {
        match cmd {
            AppCommand::Status(reply) => C::reply(reply, node.mesh_status()),
            AppCommand::Ping(target, reply) => match node.ping(now, &target) {
                Ok(id) => {
                    self.pings.insert(id, reply);
                }
                Err(e) => C::reply(reply, Err(e)),
            },
            AppCommand::Traceroute(target, tx) => match node.traceroute(now, &target) {
                Ok(id) => {
                    self.traces.insert(id, tx);
                }
                Err(e) => {
                    let hop = PingResult {
                        from: None,
                        rtt: Duration::ZERO,
                        error: Some(e.to_string()),
                    };
                    C::feed(&tx, TraceEvent::Hop(0, hop));
                    C::feed(&tx, TraceEvent::Done);
                }
            },
            AppCommand::Listen {
                service,
                advertise,
                deliver,
                reply,
            } => {
                let r = node.listen(now, service.as_deref(), advertise);
                if let Ok(name) = &r {
                    self.services.insert(*name, deliver);
                }
                C::reply(reply, r);
            }
            AppCommand::Unlisten(s) => {
                self.services.remove(&s);
                node.unlisten(now, s);
            }
            AppCommand::Send {
                from,
                to_node,
                to_service,
                payload,
                reply,
            } => C::reply(
                reply,
                node.send(now, from, &to_node, to_service, payload, None),
            ),
        }
    }

    /// Hands an application event (datagram, notice, probe result) to whoever waits for it;
    /// any other event comes back for the runtime to handle.
    pub fn event(&mut self, ev: Event) -> Option<Event> {
        match ev {
            Event::Datagram {
                service,
                from,
                payload,
            } => {
                let ev = ServiceEvent::Datagram {
                    from_node: from.node,
                    from_service: from.service,
                    payload,
                };
                self.to_service(service, ev);
            }
            Event::Unreachable {
                service,
                reporter,
                notice,
            } => self.to_service(service, ServiceEvent::Unreachable { reporter, notice }),
            Event::Ping { id, result } => {
                if let Some(tx) = self.pings.remove(&id) {
                    C::reply(tx, Ok(result));
                }
            }
            Event::TraceHop { id, hop, result } => {
                if let Some(tx) = self.traces.get(&id) {
                    C::feed(tx, TraceEvent::Hop(hop, result));
                }
            }
            Event::TraceDone { id } => {
                if let Some(tx) = self.traces.remove(&id) {
                    C::feed(&tx, TraceEvent::Done);
                }
            }
            other => return Some(other),
        }
        None
    }

    fn to_service(&self, service: ServiceName, ev: ServiceEvent) {
        if let Some(tx) = self.services.get(&service) {
            C::feed(tx, ev);
        }
    }
}
