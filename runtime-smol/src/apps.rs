//! The applications' side of the node task: their commands, and the replies, services and
//! probes it keeps for them.

use std::collections::BTreeMap;
use std::time::Duration;

use async_channel::Sender;
use bytes::Bytes;
use receptor_core::{
    Advertise, Event, ListenError, MeshStatus, Node, PingId, PingResult, SendError, ServiceEvent,
    ServiceName, TraceEvent,
};

use crate::driver::now;
use crate::stream::StreamCommand;

/// A request from a handle to the node task; `reply` channels have room for one answer.
pub(crate) enum Command {
    Status(Sender<MeshStatus>),
    Ping(String, Sender<Result<PingResult, SendError>>),
    Traceroute(String, Sender<TraceEvent>),
    Listen {
        service: Option<String>,
        advertise: Option<Advertise>,
        deliver: Sender<ServiceEvent>,
        reply: Sender<Result<ServiceName, ListenError>>,
    },
    Unlisten(ServiceName),
    Send {
        from: ServiceName,
        to_node: String,
        to_service: ServiceName,
        payload: Bytes,
        reply: Sender<Result<(), SendError>>,
    },
    Shutdown,
    /// For the stream side of the node task.
    Stream(StreamCommand),
}

/// Where the node task sends what applications wait for. Every send is a `try_send`: the
/// node never waits on an application (reply channels have room; a full service queue
/// drops the datagram, as the network could).
#[derive(Default)]
pub(crate) struct Apps {
    services: BTreeMap<ServiceName, Sender<ServiceEvent>>,
    pings: BTreeMap<PingId, Sender<Result<PingResult, SendError>>>,
    traces: BTreeMap<PingId, Sender<TraceEvent>>,
}

impl Apps {
    /// Carries out one command (not `Shutdown` or `Stream`, which the loop hands elsewhere).
    pub(crate) fn command(&mut self, node: &mut Node, cmd: Command) {
        let now = now();
        match cmd {
            Command::Status(reply) => {
                let _ = reply.try_send(node.mesh_status());
            }
            Command::Ping(target, reply) => match node.ping(now, &target) {
                Ok(id) => {
                    self.pings.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.try_send(Err(e));
                }
            },
            Command::Traceroute(target, tx) => match node.traceroute(now, &target) {
                Ok(id) => {
                    self.traces.insert(id, tx);
                }
                Err(e) => {
                    let r = PingResult {
                        from: None,
                        rtt: Duration::ZERO,
                        error: Some(e.to_string()),
                    };
                    let _ = tx.try_send(TraceEvent::Hop(0, r));
                    let _ = tx.try_send(TraceEvent::Done);
                }
            },
            Command::Listen {
                service,
                advertise,
                deliver,
                reply,
            } => {
                let r = node.listen(now, service.as_deref(), advertise);
                if let Ok(name) = &r {
                    self.services.insert(*name, deliver);
                }
                let _ = reply.try_send(r);
            }
            Command::Unlisten(s) => {
                self.services.remove(&s);
                node.unlisten(now, s);
            }
            Command::Send {
                from,
                to_node,
                to_service,
                payload,
                reply,
            } => {
                let _ = reply.try_send(node.send(now, from, &to_node, to_service, payload, None));
            }
            Command::Shutdown | Command::Stream(_) => {}
        }
    }

    /// Hands an application event (datagram, notice, probe result) to whoever waits for it.
    pub(crate) fn event(&mut self, ev: Event) {
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
            } => {
                self.to_service(service, ServiceEvent::Unreachable { reporter, notice });
            }
            Event::Ping { id, result } => {
                if let Some(tx) = self.pings.remove(&id) {
                    let _ = tx.try_send(Ok(result));
                }
            }
            Event::TraceHop { id, hop, result } => {
                if let Some(tx) = self.traces.get(&id) {
                    let _ = tx.try_send(TraceEvent::Hop(hop, result));
                }
            }
            Event::TraceDone { id } => {
                if let Some(tx) = self.traces.remove(&id) {
                    let _ = tx.try_send(TraceEvent::Done);
                }
            }
            _ => {}
        }
    }

    fn to_service(&self, service: ServiceName, ev: ServiceEvent) {
        if let Some(tx) = self.services.get(&service) {
            let _ = tx.try_send(ev);
        }
    }
}
