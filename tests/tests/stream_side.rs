//! The core's node-plus-streams glue (`receptor_core::stream::side`), as every runtime uses
//! it, between two nodes wired back to back: the behaviour the runtimes once disagreed on
//! (a stream the application side cannot take; the shutdown order) and the writer's
//! acknowledgement.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use receptor_core::stream::app::AppEnd;
use receptor_core::stream::side::{Output, StreamPorts, StreamSide};
use receptor_core::stream::{DialFailure, ServerTls, StreamHandle};
use receptor_core::{Addr, Config, Event, Input, LinkConfig, LinkId, LinkKind, Node, NodeId};
use receptor_tests::stream_tls;

/// What one stream's application end saw.
#[derive(Debug, Default)]
struct Seen {
    read: Vec<u8>,
    /// `Some(None)`: EOF; `Some(Some(e))`: a read error.
    end: Option<Option<String>>,
    writes_failed: bool,
    acked: bool,
}

struct End(Arc<Mutex<Seen>>);

impl AppEnd for End {
    fn room(&mut self) -> bool {
        true
    }
    fn push(&mut self, data: Bytes) {
        self.0.lock().unwrap().read.extend_from_slice(&data);
    }
    fn end(&mut self, error: Option<String>) {
        self.0.lock().unwrap().end.get_or_insert(error);
    }
    fn add_credit(&mut self, _n: usize) {}
    fn fail_writes(&mut self, _why: &str) {
        self.0.lock().unwrap().writes_failed = true;
    }
    fn acked(&mut self) {
        self.0.lock().unwrap().acked = true;
    }
}

struct Channels;

impl receptor_core::Channels for Channels {
    type Reply<T> = mpsc::Sender<T>;
    type Feed<T> = mpsc::Sender<T>;
    fn reply<T>(tx: mpsc::Sender<T>, value: T) {
        let _ = tx.send(value);
    }
    fn feed<T>(tx: &mpsc::Sender<T>, value: T) {
        let _ = tx.send(value);
    }
}

#[derive(Default)]
struct Ports {
    /// The application side is going away: no stream can be handed over.
    refuse: bool,
    seen: Vec<(StreamHandle, Arc<Mutex<Seen>>)>,
    accepted: Vec<StreamHandle>,
}

impl Ports {
    fn seen(&self, s: StreamHandle) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .iter()
            .find(|(h, _)| *h == s)
            .unwrap()
            .1
            .lock()
            .unwrap()
    }
}

impl StreamPorts for Ports {
    type Channels = Channels;
    type End = End;
    type Stream = StreamHandle;
    type Accept = ();

    fn open(
        &mut self,
        stream: StreamHandle,
        _remote: Option<&Addr>,
    ) -> Option<(End, StreamHandle)> {
        if self.refuse {
            return None;
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        self.seen.push((stream, seen.clone()));
        Some((End(seen), stream))
    }
    fn offer(&mut self, (): &(), stream: StreamHandle) -> bool {
        self.accepted.push(stream);
        true
    }
}

struct Side {
    node: Node,
    side: StreamSide<Ports>,
    events: Vec<Event>,
    /// The link closed (by this node).
    closed: bool,
}

impl Side {
    fn new(id: &str, now: Instant) -> Self {
        let cfg = Config::new(
            NodeId::new(id).unwrap(),
            5,
            Duration::from_secs(1_760_000_000),
        );
        let seed = cfg.stream_rng_seed();
        let mut node = Node::new(Arc::new(cfg), now).unwrap();
        let link = Arc::new(LinkConfig::new(LinkKind::Message));
        node.handle_input(
            now,
            Input::LinkUp {
                link: LinkId(1),
                config: link,
            },
        );
        Self {
            node,
            side: StreamSide::new(seed, Ports::default()),
            events: Vec::new(),
            closed: false,
        }
    }

    /// Drains the glue; returns the frames for the link (those polled before its close).
    fn drain(&mut self, now: Instant) -> Vec<Bytes> {
        let mut frames = Vec::new();
        while let Some(out) = self.side.poll_output(&mut self.node, now) {
            match out {
                Output::Transmit(t) if !self.closed => frames.push(t.into_bytes()),
                Output::Transmit(_) => {}
                Output::Event(ev) => {
                    self.closed |= matches!(ev, Event::CloseLink { .. });
                    self.events.push(ev);
                }
            }
        }
        frames
    }
}

/// Moves frames both ways until quiet, then runs timers, for `for_`.
fn run(a: &mut Side, b: &mut Side, now: &mut Instant, for_: Duration) {
    let until = *now + for_;
    loop {
        let (fa, fb) = (a.drain(*now), b.drain(*now));
        let moved = !fa.is_empty() || !fb.is_empty();
        for data in fa {
            b.node.handle_input(
                *now,
                Input::Received {
                    link: LinkId(1),
                    data,
                },
            );
        }
        for data in fb {
            a.node.handle_input(
                *now,
                Input::Received {
                    link: LinkId(1),
                    data,
                },
            );
        }
        if moved {
            continue;
        }
        let next = [a.side.poll_timeout(&a.node), b.side.poll_timeout(&b.node)]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= until => {
                *now = (*now).max(t);
                a.side.handle_timeout(&mut a.node, *now);
                b.side.handle_timeout(&mut b.node, *now);
            }
            _ => {
                *now = until;
                return;
            }
        }
    }
}

type Answer = Result<StreamHandle, DialFailure>;

/// a and b with routes to each other; b listens on `svc`; a dials it.
fn dialed(a_refuses: bool) -> (Side, Side, Instant, Option<StreamHandle>, Vec<Answer>) {
    let mut now = Instant::now();
    let (mut a, mut b) = (Side::new("a", now), Side::new("b", now));
    run(&mut a, &mut b, &mut now, Duration::from_secs(2));
    assert!(a.node.routes().contains_key("b"), "no route");
    let (server, client) = stream_tls(3);
    let tls = ServerTls::Fixed(server);
    b.side
        .listen(&mut b.node, now, "svc", tls, None, ())
        .unwrap();
    a.side.ports_mut().refuse = a_refuses;
    let (tx, rx) = mpsc::channel();
    let dialed = a.side.dial(&mut a.node, now, "b", "svc", client, "x", tx);
    let id = dialed.map(|(id, _)| id);
    run(&mut a, &mut b, &mut now, Duration::from_secs(1));
    (a, b, now, id, rx.try_iter().collect())
}

/// A dial that completes when the application side can no longer take the stream (tokio
/// once only closed it): the stream is closed, the dialer hears that the node stopped, and
/// the dial's ephemeral service is released at once, not left bound on the node.
#[test]
fn a_stream_nobody_can_take_is_closed_and_its_service_released() {
    let (mut a, mut b, mut now, id, answers) = dialed(true);
    assert!(id.is_some());
    assert_eq!(answers, vec![Err(DialFailure::NodeStopped)]);
    assert_eq!(a.side.services(), 0, "the dial's service stayed bound");
    run(&mut a, &mut b, &mut now, Duration::from_secs(1));
    assert!(a.side.streams().is_empty(), "a still holds the connection");
    // b accepted it and heard the close at once (no idle timeout).
    let s = b.side.ports().accepted[0];
    assert!(b.side.ports().seen(s).end.is_some());
}

/// Shutting down closes every stream before the node closes its links (smol's order; tokio
/// once closed only the node): the close goes out on the link ahead of its `CloseLink`, so
/// the peer's stream ends at once rather than at its idle timeout.
#[test]
fn shutdown_closes_streams_before_the_node() {
    let (mut a, mut b, now, _, answers) = dialed(false);
    let [Ok(sa)] = answers[..] else {
        panic!("{answers:?}");
    };
    let sb = b.side.ports().accepted[0];
    a.side.close(now);
    let frames = a.drain(now);
    assert!(a.closed, "the node did not close: {:?}", a.events);
    assert!(
        !frames.is_empty(),
        "no stream close went out before the link closed"
    );
    for data in frames {
        b.node.handle_input(
            now,
            Input::Received {
                link: LinkId(1),
                data,
            },
        );
    }
    b.drain(now);
    {
        let seen = b.side.ports().seen(sb);
        assert_eq!(seen.end, Some(None), "b's stream did not end: {seen:?}");
        assert!(seen.writes_failed);
    }
    assert!(b.side.services() == 1, "b's listener stays");
    a.side.shut_down();
    let seen = a.side.ports().seen(sa);
    assert!(seen.end.is_some() && seen.writes_failed, "{seen:?}");
}

/// The writer hears `acked` once the peer acknowledged everything, FIN included, and not
/// before it finished.
#[test]
fn writer_hears_when_everything_is_acknowledged() {
    let (mut a, mut b, mut now, _, answers) = dialed(false);
    let [Ok(sa)] = answers[..] else {
        panic!("{answers:?}");
    };
    a.side.write(now, sa, Bytes::from_static(b"payload"));
    run(&mut a, &mut b, &mut now, Duration::from_secs(1));
    assert!(!a.side.ports().seen(sa).acked, "acked before the FIN");
    a.side.finish(now, sa);
    run(&mut a, &mut b, &mut now, Duration::from_secs(1));
    assert!(a.side.ports().seen(sa).acked);
    let sb = b.side.ports().accepted[0];
    let seen = b.side.ports().seen(sb);
    assert_eq!(
        (seen.read.as_slice(), &seen.end),
        (&b"payload"[..], &Some(None))
    );
}
