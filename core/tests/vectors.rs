//! The byte vectors of netceptor.md §10 and the captures of real Go nodes in
//! `../shared/vectors/`: every frame decodes, and re-encoding gives the same bytes.

use std::path::PathBuf;

use bytes::Bytes;
use receptor_core::id::{ServiceName, name_hash};
use receptor_core::wire::{
    DataHeader, Deframer, Message, RouteUpdate, ServiceAdvert, UnreachableNotice, WorkCommand,
    encode_reject,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

/// Re-encodes a decoded message; `None` for messages whose encoding is not ours to pin.
fn reencode(msg: &Message) -> Vec<u8> {
    match msg {
        Message::Data { header, payload } => header.encode(payload).unwrap().message().to_vec(),
        Message::Route(r) => r.encode().unwrap().message().to_vec(),
        Message::ServiceAd(ad, _) => ad.encode().unwrap().message().to_vec(),
        Message::Reject => encode_reject().message().to_vec(),
        Message::Unknown(t) => panic!("unknown message type {t}"),
    }
}

#[test]
fn go_captures_decode_and_reencode_byte_exact() {
    let dir = vectors_dir();
    let mut checked = 0;
    for name in [
        "01-passive.frames.jsonl",
        "02-handshake.frames.jsonl",
        "03-relay.frames.jsonl",
    ] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (is ../shared beside the repo?)", path.display()));
        for (i, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let wire = hex(v["hex"].as_str().unwrap());
            let dir = v["dir"].as_str().unwrap();
            // Each capture line is one TCP frame: the deframer must yield exactly one message.
            let mut d = Deframer::new();
            let mut out = Vec::new();
            d.push(Bytes::from(wire.clone()), &mut out);
            assert_eq!(out.len(), 1, "{name}#{i}");
            assert_eq!(d.buffered(), 0);
            let msg = Message::decode(out[0].clone()).unwrap();
            let ty = v["decoded"]["type"].as_u64().unwrap() as u8;
            assert_eq!(wire[2], ty);
            // Frames that the Python test peer wrote are not Go's encoding (it sent `1.0`):
            // they must decode, but only Go's own frames must re-encode byte for byte.
            let from_go = matches!(dir, "recv" | "A->B" | "B->A");
            if from_go {
                assert_eq!(reencode(&msg), &wire[2..], "{name}#{i} ({dir})");
            }
            if let Message::Route(r) = &msg {
                let j = &v["decoded"]["json"];
                assert_eq!(
                    r.epoch,
                    j["UpdateEpoch"].as_u64().unwrap(),
                    "epoch > 2^53 kept exact"
                );
                assert_eq!(r.node_id, j["NodeID"].as_str().unwrap());
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "only {checked} frames checked");
}

#[test]
fn captured_ping_hashes_match_node_names() {
    // 03-relay #6/#7: A:"pNb4q4Id" -> B:"ping" and the reply.
    let req = hex("00 1d 0000 2ca5969f27d057fd 6cc29299673d18eb 704e623471344964 70696e6700000000");
    let Message::Data { header, payload } = Message::decode(Bytes::from(req)).unwrap() else {
        panic!("not data");
    };
    assert!(payload.is_empty());
    assert_eq!(header.hops_to_live, 29);
    assert_eq!(header.from_node, name_hash("A"));
    assert_eq!(header.to_node, name_hash("B"));
    assert_eq!(header.from_service, ServiceName::new("pNb4q4Id").unwrap());
    assert_eq!(header.to_service, ServiceName::PING);
}

/// netceptor.md §10.2.
#[test]
fn spec_data_messages() {
    let h = DataHeader {
        hops_to_live: 29,
        from_node: name_hash("foo"),
        to_node: name_hash("bar"),
        from_service: ServiceName::new("abc").unwrap(),
        to_service: ServiceName::PING,
    };
    let enc = h.encode(b"hello").unwrap();
    let want = hex(
        "00 1d 00 00  ef 7a 78 b6 7f 92 bd f7  14 ef 88 ca 52 28 94 d1
         61 62 63 00 00 00 00 00  70 69 6e 67 00 00 00 00  68 65 6c 6c 6f",
    );
    assert_eq!(enc.message(), &want[..]);
    assert_eq!(&enc.stream()[..2], &[0x29, 0x00]);

    let req =
        hex("00 1d 00 00 ef7a78b67f92bdf7 14ef88ca522894d1 4162336445366748 70696e6700000000");
    let reply =
        hex("00 1d 00 00 14ef88ca522894d1 ef7a78b67f92bdf7 70696e6700000000 4162336445366748");
    for v in [req, reply] {
        let m = Message::decode(Bytes::from(v.clone())).unwrap();
        assert_eq!(reencode(&m), v);
    }

    let notice = UnreachableNotice {
        from_node: "foo".into(),
        to_node: "bar".into(),
        from_service: "Ab3dE6gH".into(),
        to_service: "nosuch".into(),
        problem: "service unknown".into(),
    };
    let json = notice.encode();
    assert_eq!(
        json,
        r#"{"FromNode":"foo","ToNode":"bar","FromService":"Ab3dE6gH","ToService":"nosuch","Problem":"service unknown"}"#
    );
    assert_eq!(json.len(), 107);
    let h = DataHeader {
        hops_to_live: 29,
        from_node: name_hash("bar"),
        to_node: name_hash("foo"),
        from_service: ServiceName::UNREACH,
        to_service: ServiceName::UNREACH,
    };
    let enc = h.encode(json.as_bytes()).unwrap();
    assert_eq!(enc.message().len(), 143);
    assert_eq!(&enc.stream()[..2], &[0x8f, 0x00]);
    assert_eq!(
        &enc.message()[..36],
        &hex("00 1d 00 00 14ef88ca522894d1 ef7a78b67f92bdf7 756e726561636800 756e726561636800")[..]
    );
    assert_eq!(UnreachableNotice::decode(json.as_bytes()).unwrap(), notice);
}

/// netceptor.md §10.3.
#[test]
fn spec_json_messages() {
    let cases: &[&str] = &[
        r#"{"NodeID":"foo","UpdateID":"k3Xw9QbZ","UpdateEpoch":28988856750757511,"UpdateSequence":1,"Connections":{},"ForwardingNode":"foo","SuspectedDuplicate":0}"#,
        r#"{"NodeID":"foo","UpdateID":"k3Xw9QbZ","UpdateEpoch":28988856750757511,"UpdateSequence":2,"Connections":{"bar":1,"fish":2.5,"zed":1.6},"ForwardingNode":"foo","SuspectedDuplicate":0}"#,
    ];
    for (i, json) in cases.iter().enumerate() {
        let mut wire = vec![1u8];
        wire.extend_from_slice(json.as_bytes());
        let m = Message::decode(Bytes::from(wire.clone())).unwrap();
        let Message::Route(r) = &m else { panic!() };
        assert_eq!(r.epoch, 1727870509 * (1 << 24) + 1234567);
        assert_eq!(reencode(&m), wire);
        if i == 0 {
            assert_eq!(wire.len(), 153);
            assert_eq!(&r.encode().unwrap().stream()[..2], &[0x99, 0x00]);
        }
    }
    let ads: &[&str] = &[
        r#"{"NodeID":"foo","Service":"control","Time":"2024-10-02T07:41:49.1234567-04:00","ConnType":1,"Tags":{"type":"Control Service"},"WorkCommands":[{"WorkType":"echo","Secure":false}],"Cancel":false}"#,
        r#"{"NodeID":"foo","Service":"abc","Time":"2024-10-02T11:41:49Z","ConnType":0,"Tags":null,"WorkCommands":null,"Cancel":true}"#,
    ];
    for json in ads {
        let mut wire = vec![2u8];
        wire.extend_from_slice(json.as_bytes());
        let m = Message::decode(Bytes::from(wire.clone())).unwrap();
        assert_eq!(reencode(&m), wire);
    }
    assert_eq!(encode_reject().stream().as_ref(), &[3, 0, 3, 0x5b, 0x5d]);
}

/// Go's decoder: keys case-insensitive, unknown keys and nulls ignored, integers strict.
#[test]
fn go_json_leniency() {
    let r = RouteUpdate::decode(
        br#"{"nodeid":"a","UPDATEID":"x","updateEpoch":5,"Extra":[1,{"z":null}],"Connections":null,"SuspectedDuplicate":null}"#,
    )
    .unwrap();
    assert_eq!(r.node_id, "a");
    assert_eq!(r.update_id, "x");
    assert_eq!(r.epoch, 5);
    assert!(r.connections.is_empty());
    assert!(RouteUpdate::decode(br#"{"UpdateEpoch":1.0}"#).is_err());
    assert!(RouteUpdate::decode(br#"{"UpdateEpoch":-1}"#).is_err());
    assert!(RouteUpdate::decode(br#"{"Connections":{"a":"1"}}"#).is_err());
    assert!(RouteUpdate::decode(b"[]").is_err());
    assert!(RouteUpdate::decode(br#"{"NodeID":"a"} x"#).is_err());
    // Old nodes (<= 1.0.x) sent WorkCommands as strings.
    let ad = ServiceAdvert::decode(
        br#"{"NodeID":"n","Service":"control","Time":"2024-10-02T11:41:49Z","WorkCommands":["echo"]}"#,
    )
    .unwrap();
    assert_eq!(
        ad.work_commands,
        Some(vec![WorkCommand {
            work_type: "echo".into(),
            secure: false
        }])
    );
    assert!(ServiceAdvert::decode(br#"{"Time":"yesterday"}"#).is_err());
    assert!(Message::decode(Bytes::new()).is_err());
    assert!(Message::decode(Bytes::from_static(&[0; 35])).is_err());
}
