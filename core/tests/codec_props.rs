//! Property tests: every message we encode decodes to the same value, and no input panics.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use receptor_core::id::ServiceName;
use receptor_core::wire::{
    DataHeader, Message, RouteUpdate, ServiceAdvert, UnreachableNotice, WorkCommand,
};

fn cost() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1.0),
        (1u32..1000).prop_map(f64::from),
        (1e-12f64..1e25f64),
        any::<u64>()
            .prop_map(|b| f64::from_bits(b >> 2).abs())
            .prop_filter("positive finite", |f| f.is_finite() && *f > 0.0),
    ]
}

fn route() -> impl Strategy<Value = RouteUpdate> {
    (
        ".{0,20}",
        "[0-9a-zA-Z]{8}",
        any::<u64>(),
        any::<u64>(),
        proptest::collection::btree_map(".{1,12}", cost(), 0..8),
        ".{0,20}",
        any::<u64>(),
    )
        .prop_map(
            |(node_id, update_id, epoch, sequence, connections, fwd, sd)| RouteUpdate {
                node_id,
                update_id,
                epoch,
                sequence,
                connections,
                forwarding_node: fwd,
                suspected_duplicate: sd,
            },
        )
}

fn advert() -> impl Strategy<Value = ServiceAdvert> {
    (
        ".{0,20}",
        ".{0,8}",
        // 0001-01-01 .. 9999-12-31 in nanoseconds
        -62_135_596_800_000_000_000i128..253_402_300_799_000_000_000i128,
        -1439i32..1440,
        any::<u8>(),
        proptest::option::of(proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..4)),
        proptest::option::of(proptest::collection::vec((".{0,8}", any::<bool>()), 0..3)),
        any::<bool>(),
    )
        .prop_map(
            |(node_id, service, time, off_min, conn_type, tags, wcs, cancel)| ServiceAdvert {
                node_id,
                service,
                time,
                utc_offset: off_min * 60,
                conn_type,
                tags,
                work_commands: wcs.map(|v| {
                    v.into_iter()
                        .map(|(work_type, secure)| WorkCommand { work_type, secure })
                        .collect()
                }),
                cancel,
            },
        )
}

proptest! {
    #[test]
    fn route_round_trip(r in route()) {
        let enc = r.encode().unwrap();
        let Message::Route(back) = Message::decode(Bytes::copy_from_slice(enc.message())).unwrap() else {
            panic!("not a route");
        };
        prop_assert_eq!(&back.node_id, &r.node_id);
        prop_assert_eq!(back.epoch, r.epoch);
        let bits = |m: &BTreeMap<String, f64>| m.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back.connections), bits(&r.connections));
        prop_assert_eq!(back.encode().unwrap(), enc);
    }

    #[test]
    fn advert_round_trip(ad in advert()) {
        let enc = ad.encode().unwrap();
        let Message::ServiceAd(back, raw) = Message::decode(Bytes::copy_from_slice(enc.message())).unwrap() else {
            panic!("not an advert");
        };
        prop_assert_eq!(&back, &ad);
        prop_assert_eq!(raw.as_ref(), enc.message());
    }

    #[test]
    fn data_round_trip(htl in any::<u8>(), f in any::<u64>(), t in any::<u64>(),
                       fs in "[a-z]{1,8}", ts in "[a-z]{1,8}", payload in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let h = DataHeader {
            hops_to_live: htl, from_node: f, to_node: t,
            from_service: ServiceName::new(&fs).unwrap(), to_service: ServiceName::new(&ts).unwrap(),
        };
        let enc = h.encode(&payload).unwrap();
        let Message::Data { header, payload: p } = Message::decode(Bytes::copy_from_slice(enc.message())).unwrap() else {
            panic!("not data");
        };
        prop_assert_eq!(header, h);
        prop_assert_eq!(p.as_ref(), &payload[..]);
    }

    #[test]
    fn notice_round_trip(a in ".{0,10}", b in ".{0,10}", c in ".{0,10}", d in ".{0,10}", p in ".{0,20}") {
        let n = UnreachableNotice { from_node: a, to_node: b, from_service: c, to_service: d, problem: p };
        prop_assert_eq!(UnreachableNotice::decode(n.encode().as_bytes()).unwrap(), n);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::decode(Bytes::from(data));
    }

    #[test]
    fn json_shaped_bytes_never_panic(ty in 1u8..3, s in r#"\{("[A-Za-z]{1,14}":(null|-?[0-9]{1,22}(\.[0-9]+)?|"[^"]{0,10}"|\{\}|\[\]|true),?){0,8}\}"#) {
        let mut v = vec![ty];
        v.extend_from_slice(s.as_bytes());
        let _ = Message::decode(Bytes::from(v));
    }
}
