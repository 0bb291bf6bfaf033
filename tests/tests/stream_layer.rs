//! The core stream layer driven by hand (two `Streams`, no mesh), for behaviour the
//! simulator cannot easily provoke.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use receptor_core::ServiceName;
use receptor_core::stream::app::{AppEnd, AppStreams};
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

/// An application end that takes everything at once: the bytes, and whether they ended
/// cleanly.
#[derive(Default, Clone)]
struct Reader(Rc<RefCell<(Vec<u8>, bool)>>);

impl AppEnd for Reader {
    fn room(&mut self) -> bool {
        true
    }
    fn push(&mut self, data: Bytes) {
        self.0.borrow_mut().0.extend_from_slice(&data);
    }
    fn end(&mut self, error: Option<String>) {
        self.0.borrow_mut().1 = error.is_none();
    }
    fn add_credit(&mut self, _: usize) {}
    fn fail_writes(&mut self, _: &str) {}
}

/// Moves datagrams both ways as [`pump`] does, dropping those larger than `cap` bytes (a
/// path, or a peer, that takes no more: Go's quic-go takes 1452).
fn pump_capped(
    a: &mut Streams,
    b: &mut Streams,
    now: Instant,
    cap: usize,
) -> (Vec<StreamEvent>, Vec<StreamEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(d) = a.poll_datagram() {
            moved = true;
            if d.payload.len() <= cap {
                b.handle_datagram(now, d.to.service, addr("a", &d.from.to_string()), d.payload);
            }
        }
        while let Some(d) = b.poll_datagram() {
            moved = true;
            if d.payload.len() <= cap {
                a.handle_datagram(now, d.to.service, addr("b", &d.from.to_string()), d.payload);
            }
        }
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if !moved {
            return (ea, eb);
        }
    }
}

/// Two ends that write and finish at the same moment, so that each reads the other's FIN
/// before its own is acknowledged, over a path carrying packets up to `cap` bytes. Returns
/// the connections left at each end 1 s later, after checking that both read everything.
fn crossing_fins(cap: usize) -> (usize, usize) {
    let mut now = Instant::now();
    let (server, client) = stream_tls(3);
    let (mut a, mut b) = (Streams::new(5), Streams::new(6));
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
    let mut eb = Vec::new();
    // The handshake, then each end's path MTU probe.
    for _ in 0..20 {
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
        eb.extend(pump_capped(&mut a, &mut b, now, cap).1);
    }
    let ib = eb
        .iter()
        .find_map(|e| match e {
            StreamEvent::Accepted { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap();
    let ours = cap > 1452;
    assert_eq!(a.peer_keeps_unread(ia), ours);
    assert_eq!(b.peer_keeps_unread(ib), ours);
    let (mut apps_a, mut apps_b) = (AppStreams::default(), AppStreams::default());
    let (read_a, read_b) = (Reader::default(), Reader::default());
    apps_a.insert(ia, read_a.clone(), None);
    apps_b.insert(ib, read_b.clone(), None);
    apps_a.write(&mut a, now, ia, Bytes::from_static(b"request"));
    apps_a.shutdown(&mut a, now, ia);
    apps_b.write(&mut b, now, ib, Bytes::from_static(b"reply"));
    apps_b.shutdown(&mut b, now, ib);
    for _ in 0..100 {
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
        let (ea, eb) = pump_capped(&mut a, &mut b, now, cap);
        for ev in &ea {
            apps_a.handle_event(&mut a, now, ev);
        }
        for ev in &eb {
            apps_b.handle_event(&mut b, now, ev);
        }
    }
    assert_eq!(*read_a.0.borrow(), (b"reply".to_vec(), true));
    assert_eq!(*read_b.0.borrow(), (b"request".to_vec(), true));
    (a.len(), b.len())
}

/// Crossing FINs between two of our nodes: both ends then waited out the idle timeout
/// before closing (after 200 remote units, 500 such connections at each end, 55 KB each).
/// A peer whose path carried large packets is one of ours and keeps what arrived before a
/// close readable, so the connection closes once both directions are done.
#[test]
fn crossing_fins_between_our_nodes_close_at_once() {
    assert_eq!(
        crossing_fins(usize::MAX),
        (0, 0),
        "connections left 1 s after both FINs"
    );
}

/// The same with a peer that never took a packet over 1452 bytes (as Go's quic-go, which
/// discards unread data on a close): both ends linger as before, leaving the close to the
/// other or to the idle timeout.
#[test]
fn crossing_fins_with_a_peer_not_known_as_ours_linger() {
    assert_eq!(crossing_fins(1452), (1, 1));
}
