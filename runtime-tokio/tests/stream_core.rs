//! The core stream layer driven by hand: two `Streams` exchanging QUIC datagrams directly.

use std::time::{Instant, SystemTime};

use receptor_core::stream::{Read, ServerTls, StreamEvent, Streams, client_config, server_config};
use receptor_core::{Addr, NodeId, ServiceName};
use receptor_tokio::tls::insecure::{insecure_client_config, insecure_server_config};

fn addr(n: &str, s: &str) -> Addr {
    Addr {
        node: NodeId::new(n).unwrap(),
        service: ServiceName::new(s).unwrap(),
    }
}

/// Moves datagrams both ways until quiet; returns the events each side produced.
fn pump(a: &mut Streams, b: &mut Streams, now: Instant) -> (Vec<StreamEvent>, Vec<StreamEvent>) {
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
        while let Some(e) = a.poll_event() {
            ea.push(e);
        }
        while let Some(e) = b.poll_event() {
            eb.push(e);
        }
        if !moved {
            return (ea, eb);
        }
    }
}

#[test]
fn server_writes_first_and_client_reads_it() {
    let now = Instant::now();
    let mut a = Streams::new(1);
    let mut b = Streams::new(2);
    let srv = insecure_server_config(SystemTime::now()).unwrap();
    b.listen(
        ServiceName::new("svc").unwrap(),
        ServerTls::Fixed(server_config((*srv).clone()).unwrap()),
    );
    let cli = client_config((*insecure_client_config().unwrap()).clone()).unwrap();
    let id = a
        .dial(
            now,
            ServiceName::new("eph").unwrap(),
            addr("b", "svc"),
            cli,
            "a",
        )
        .unwrap();
    let (ea, eb) = pump(&mut a, &mut b, now);
    assert!(
        ea.contains(&StreamEvent::Connected { stream: id }),
        "{ea:?}"
    );
    let sid = eb
        .iter()
        .find_map(|e| match e {
            StreamEvent::Accepted { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap_or_else(|| panic!("not accepted: {eb:?}"));
    assert_eq!(b.write(now, sid, b"hello").unwrap(), 5);
    let (ea, _) = pump(&mut a, &mut b, now);
    assert!(ea.contains(&StreamEvent::Readable { stream: id }), "{ea:?}");
    assert_eq!(
        a.read(now, id, 100).unwrap(),
        Read::Data(bytes::Bytes::from_static(b"hello"))
    );
}
