//! The core stream layer driven by hand (two `Streams`, no mesh), for behaviour the
//! simulator cannot easily provoke.

use std::time::{Duration, Instant};

use receptor_core::ServiceName;
use receptor_core::stream::{Read, ServerTls, StreamEvent, StreamHandle, Streams};
use receptor_tests::pair::{addr, pump};
use receptor_tests::stream_tls;

fn read_all(s: &mut Streams, now: Instant, id: StreamHandle) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    loop {
        match s.read(now, id, usize::MAX) {
            Ok(Read::Data(b)) => got.extend_from_slice(&b),
            Ok(Read::Eof) => return (got, true),
            Ok(Read::Blocked) | Err(_) => return (got, false),
        }
    }
}

/// Both sides exchange data and FINs; the side that read the last FIN does not close (its
/// application is slow, or gone): the other side's `close_at` closes at the deadline, and
/// its application hears `Closed` (normal) so it can let go of the stream.
#[test]
fn lingering_close_tells_the_application() {
    let mut now = Instant::now();
    let (server, client) = stream_tls(1);
    let (mut a, mut b) = (Streams::new(1), Streams::new(2));
    b.listen(ServiceName::new("svc").unwrap(), ServerTls::Fixed(server));
    let ia = a
        .dial(
            now,
            ServiceName::new("eph").unwrap(),
            addr("b", "svc"),
            client,
            "x",
        )
        .unwrap();
    let (_, eb) = pump(&mut a, &mut b, now);
    let ib = eb
        .iter()
        .find_map(|e| match e {
            StreamEvent::Accepted { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap();
    assert_eq!(a.write(now, ia, b"ping").unwrap(), 4);
    a.finish(now, ia).unwrap();
    pump(&mut a, &mut b, now);
    assert_eq!(read_all(&mut b, now, ib), (b"ping".to_vec(), true));
    assert_eq!(b.write(now, ib, b"pong").unwrap(), 4);
    b.finish(now, ib).unwrap();
    // "pong" and the FIN leave in one packet, which a acknowledges after its ACK delay.
    let (_, mut eb) = pump(&mut a, &mut b, now);
    for _ in 0..5 {
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
        eb.extend(pump(&mut a, &mut b, now).1);
    }
    assert!(eb.contains(&StreamEvent::Finished { stream: ib }), "{eb:?}");
    // b is done both ways; a has not read b's FIN yet: b lingers.
    b.close_at(ib, now + Duration::from_secs(1));
    let mut events = Vec::new();
    for _ in 0..50 {
        now += Duration::from_millis(100);
        a.handle_timeout(now);
        b.handle_timeout(now);
        let (_, eb) = pump(&mut a, &mut b, now);
        events.extend(eb);
    }
    assert!(
        events.contains(&StreamEvent::Closed {
            stream: ib,
            error: None
        }),
        "b's application never heard of the close: {events:?}"
    );
    assert!(b.is_empty(), "b still holds the connection");
    // a hears the normal close, and still reads what b sent.
    assert_eq!(read_all(&mut a, now, ia), (b"pong".to_vec(), true));
}

/// A dial that cannot start (a server name TLS refuses) leaves no endpoint behind on its
/// service.
#[test]
fn failed_dial_leaves_nothing_behind() {
    let (_, client) = stream_tls(2);
    let mut a = Streams::new(3);
    let eph = ServiceName::new("eph").unwrap();
    let r = a.dial(Instant::now(), eph, addr("b", "svc"), client, "not a name!");
    assert!(r.is_err(), "{r:?}");
    assert!(!a.has_service(eph), "the failed dial's endpoint stayed");
    assert!(a.is_empty());
}
