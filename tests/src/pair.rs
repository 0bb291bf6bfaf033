//! Two core stream layers wired back to back, with no mesh between them: for behaviour of
//! `Streams` itself that a whole simulated mesh would only provoke by chance.

use std::time::Instant;

use receptor_core::stream::{StreamEvent, Streams};
use receptor_core::{Addr, NodeId, ServiceName};

/// The address `(node, service)`.
///
/// # Panics
/// If either name is not a valid ID (test input only).
pub fn addr(node: &str, service: &str) -> Addr {
    Addr {
        node: NodeId::new(node).expect("valid node ID"),
        service: ServiceName::new(service).expect("valid service name"),
    }
}

/// Moves datagrams both ways between `a` (node "a") and `b` (node "b") until neither has any
/// left; returns the events each side produced meanwhile.
pub fn pump(
    a: &mut Streams,
    b: &mut Streams,
    now: Instant,
) -> (Vec<StreamEvent>, Vec<StreamEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(d) = a.poll_datagram() {
            moved = true;
            b.handle_datagram(now, d.to.service, addr("a", &d.from.to_string()), d.payload);
        }
        while let Some(d) = b.poll_datagram() {
            moved = true;
            a.handle_datagram(now, d.to.service, addr("b", &d.from.to_string()), d.payload);
        }
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if !moved {
            return (ea, eb);
        }
    }
}
