//! The core stream layer driven by hand: two `Streams` exchanging QUIC datagrams directly.

use std::time::{Instant, SystemTime};

use receptor_core::ServiceName;
use receptor_core::stream::{Read, ServerTls, StreamEvent, Streams, client_config, server_config};
use receptor_tests::pair::{addr, pump};
use receptor_tokio::tls::insecure::{insecure_client_config, insecure_server_config};

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

/// The first QUIC packet a real Go node (quic-go) sent to a `control` service (capture
/// 03-relay #8, A -> B): our listener takes it and answers with its own handshake packets.
#[test]
fn go_client_initial_gets_a_server_handshake() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/03-relay.frames.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().nth(8).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let hex = v["hex"].as_str().unwrap();
    let frame: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // 2-byte length prefix, 36-byte data header, then the QUIC packet.
    let quic = &frame[2 + 36..];
    assert_eq!(quic.len(), 1200);
    assert_eq!(&quic[1..5], &[0, 0, 0, 1], "QUIC v1 long header");
    let now = Instant::now();
    let mut b = Streams::new(3);
    let srv = insecure_server_config(SystemTime::now()).unwrap();
    let control = ServiceName::new("control").unwrap();
    b.listen(
        control,
        ServerTls::Fixed(server_config((*srv).clone()).unwrap()),
    );
    b.handle_datagram(
        now,
        control,
        addr("A", "tfqiJk2e"),
        bytes::Bytes::copy_from_slice(quic),
    );
    let mut out = Vec::new();
    while let Some(d) = b.poll_datagram() {
        out.push(d);
    }
    assert!(!out.is_empty(), "no answer to Go's Initial");
    for d in &out {
        assert_eq!(d.to, addr("A", "tfqiJk2e"));
        assert!(
            d.payload.len() <= 1200,
            "we must never send Go more than 1200 bytes"
        );
    }
    // The answer starts with a long-header QUIC v1 packet (Initial, then Handshake).
    assert_eq!(out[0].payload[0] & 0x80, 0x80, "{:02x}", out[0].payload[0]);
    assert_eq!(&out[0].payload[1..5], &[0, 0, 0, 1]);
}
