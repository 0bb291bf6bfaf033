use std::time::Duration;

use super::*;
use crate::NodeId;
use crate::wire::parse_rfc3339_zoned;

fn time(s: &str) -> (UnixNanos, i32) {
    parse_rfc3339_zoned(s).unwrap()
}

fn ad(
    node: &str,
    service: &str,
    at: &str,
    conn_type: u8,
    tags: Option<&[(&str, &str)]>,
    wcs: Option<&[(&str, bool)]>,
) -> ServiceAdvert {
    let (time, utc_offset) = time(at);
    ServiceAdvert {
        node_id: node.into(),
        service: service.into(),
        time,
        utc_offset,
        conn_type,
        tags: tags.map(|t| t.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()),
        work_commands: wcs.map(|w| {
            w.iter()
                .map(|(t, s)| WorkCommand {
                    work_type: (*t).into(),
                    secure: *s,
                })
                .collect()
        }),
        cancel: false,
    }
}

fn snapshot() -> StatusSnapshot {
    let control = [("type", "Control Service")];
    let (now, utc_offset) = time("2024-10-24T16:36:52.123456789-04:00");
    let costs = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
        pairs.iter().map(|(n, c)| ((*n).into(), *c)).collect()
    };
    StatusSnapshot {
        node_id: "node1".into(),
        connections: vec![
            ConnectionStatus {
                node_id: "node2".into(),
                cost: 1.0,
            },
            ConnectionStatus {
                node_id: "node3".into(),
                cost: 2.5,
            },
        ],
        routing_table: [("node2", "node2"), ("node3", "node3"), ("node4", "node2")]
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect(),
        known_connection_costs: [
            ("node1".to_owned(), costs(&[("node2", 1.0), ("node3", 2.5)])),
            ("node2".to_owned(), costs(&[("node1", 1.0)])),
            ("node3".to_owned(), costs(&[("node1", 2.5)])),
        ]
        .into_iter()
        .collect(),
        advertisements: vec![
            // Own ad: its stored time and (absent) work commands are replaced.
            ad(
                "node1",
                "control",
                "2024-10-24T00:00:00Z",
                1,
                Some(&control),
                None,
            ),
            ad("node2", "udpp", "2024-10-24T20:36:52.5Z", 0, None, None),
            ad(
                "node3",
                "control",
                "2024-10-24T10:00:00-04:00",
                2,
                Some(&control),
                Some(&[("echo", false)]),
            ),
        ],
        host: HostInfo {
            now,
            utc_offset,
            work_commands: vec![
                WorkCommand {
                    work_type: "echo".into(),
                    secure: false,
                },
                WorkCommand {
                    work_type: "sleep".into(),
                    secure: true,
                },
            ],
            cpu_count: 8,
            memory_mib: 15876,
            version: "1.4.9".into(),
        },
    }
}

#[test]
fn status_full_reply_is_byte_exact() {
    let want = concat!(
        r#"{"Advertisements":["#,
        r#"{"NodeID":"node1","Service":"control","Time":"2024-10-24T16:36:52.123456789-04:00","ConnType":1,"Tags":{"type":"Control Service"},"WorkCommands":[{"WorkType":"echo","Secure":false},{"WorkType":"sleep","Secure":true}]},"#,
        r#"{"NodeID":"node2","Service":"udpp","Time":"2024-10-24T20:36:52.5Z","ConnType":0,"Tags":null,"WorkCommands":null},"#,
        r#"{"NodeID":"node3","Service":"control","Time":"2024-10-24T10:00:00-04:00","ConnType":2,"Tags":{"type":"Control Service"},"WorkCommands":[{"WorkType":"echo","Secure":false}]}],"#,
        r#""Connections":[{"NodeID":"node2","Cost":1},{"NodeID":"node3","Cost":2.5}],"#,
        r#""KnownConnectionCosts":{"node1":{"node2":1,"node3":2.5},"node2":{"node1":1},"node3":{"node1":2.5}},"#,
        r#""NodeID":"node1","RoutingTable":{"node2":"node2","node3":"node3","node4":"node2"},"#,
        r#""SystemCPUCount":8,"SystemMemoryMiB":15876,"Version":"1.4.9"}"#,
        "\n"
    );
    assert_eq!(format_status(&snapshot(), None), want);
}

#[test]
fn status_own_ads_keep_their_work_commands_when_none_are_local() {
    let mut s = snapshot();
    s.host.work_commands.clear();
    s.advertisements.truncate(1);
    s.advertisements[0].tags = Some([("a<b".to_owned(), "&".to_owned())].into());
    let out = format_status(&s, Some(&["Advertisements".to_owned()]));
    assert_eq!(
        out,
        concat!(
            r#"{"Advertisements":[{"NodeID":"node1","Service":"control","Time":"2024-10-24T16:36:52.123456789-04:00","#,
            r#""ConnType":1,"Tags":{"a\u003cb":"\u0026"},"WorkCommands":null}]}"#,
            "\n"
        )
    );
}

#[test]
fn status_empty_tables() {
    let s = StatusSnapshot {
        node_id: "x".into(),
        ..StatusSnapshot::default()
    };
    assert_eq!(
        format_status(&s, None),
        concat!(
            r#"{"Advertisements":[],"Connections":[],"KnownConnectionCosts":{},"NodeID":"x","#,
            r#""RoutingTable":{},"SystemCPUCount":0,"SystemMemoryMiB":0,"Version":""}"#,
            "\n"
        )
    );
}

#[test]
fn status_requested_fields() {
    let s = snapshot();
    let req = |f: &[&str]| -> String {
        let f: Vec<String> = f.iter().map(|s| (*s).to_owned()).collect();
        format_status(&s, Some(&f))
    };
    assert_eq!(req(&["Version"]), "{\"Version\":\"1.4.9\"}\n");
    assert_eq!(
        req(&["Version", "NodeID", "Bogus", "Version", "version"]),
        "{\"NodeID\":\"node1\",\"Version\":\"1.4.9\"}\n"
    );
    assert_eq!(req(&[]), "{}\n");
    assert_eq!(
        req(&["SystemMemoryMiB", "SystemCPUCount"]),
        "{\"SystemCPUCount\":8,\"SystemMemoryMiB\":15876}\n"
    );
    assert_eq!(
        req(&["Connections"]),
        "{\"Connections\":[{\"NodeID\":\"node2\",\"Cost\":1},{\"NodeID\":\"node3\",\"Cost\":2.5}]}\n"
    );
}

fn hop(from: Option<&str>, nanos: u64, error: Option<&str>) -> PingResult {
    PingResult {
        from: from.map(|f| NodeId::new(f).unwrap()),
        rtt: Duration::from_nanos(nanos),
        error: error.map(Into::into),
    }
}

#[test]
fn ping_replies() {
    assert_eq!(
        format_ping(&hop(Some("node2"), 1_234_567, None)),
        "{\"From\":\"node2\",\"Success\":true,\"Time\":1234567,\"TimeStr\":\"1.234567ms\"}\n"
    );
    assert_eq!(
        format_ping(&hop(Some("node2"), 850_000, None)),
        "{\"From\":\"node2\",\"Success\":true,\"Time\":850000,\"TimeStr\":\"850\u{b5}s\"}\n"
    );
    assert_eq!(
        format_ping(&hop(None, 10_000_000_000, Some("timeout"))),
        "{\"Error\":\"timeout\",\"Success\":false}\n"
    );
    assert_eq!(
        format_ping(&hop(Some("node2"), 3, Some("blocked by firewall"))),
        "{\"Error\":\"blocked by firewall\",\"Success\":false}\n"
    );
}

#[test]
fn traceroute_replies() {
    let hops = [
        hop(Some("controller"), 210_000, None),
        hop(Some("node5"), 1_200_000, None),
        hop(Some("node7"), 2_500_000, None),
    ];
    assert_eq!(
        format_traceroute(&hops),
        concat!(
            "{\"0\":{\"From\":\"controller\",\"Time\":210000,\"TimeStr\":\"210\u{b5}s\"},",
            "\"1\":{\"From\":\"node5\",\"Time\":1200000,\"TimeStr\":\"1.2ms\"},",
            "\"2\":{\"From\":\"node7\",\"Time\":2500000,\"TimeStr\":\"2.5ms\"}}\n"
        )
    );
    let failing = [
        hop(Some("node1"), 100, None),
        hop(Some("node2"), 1_000_000, Some("blocked by firewall")),
    ];
    assert_eq!(
        format_traceroute(&failing),
        concat!(
            "{\"0\":{\"From\":\"node1\",\"Time\":100,\"TimeStr\":\"100ns\"},",
            "\"1\":{\"Error\":\"blocked by firewall\",\"From\":\"node2\",\"Time\":1000000,\"TimeStr\":\"1ms\"}}\n"
        )
    );
    let timeout = [hop(None, 10_000_000_000, Some("timeout"))];
    assert_eq!(
        format_traceroute(&timeout),
        "{\"0\":{\"Error\":\"timeout\",\"From\":\"\",\"Time\":10000000000,\"TimeStr\":\"10s\"}}\n"
    );
    assert_eq!(format_traceroute(&[]), "{}\n");
    // Go sorts the map keys as strings.
    let many: Vec<PingResult> = (0..12).map(|_| hop(Some("n"), 0, None)).collect();
    let out = format_traceroute(&many);
    let keys: Vec<&str> = out
        .match_indices(":{\"From\"")
        .map(|(i, _)| {
            let start = out[..i].rfind('"').unwrap();
            let open = out[..start].rfind('"').unwrap();
            &out[open + 1..start]
        })
        .collect();
    assert_eq!(
        keys,
        ["0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
}

#[test]
fn reload_replies() {
    assert_eq!(format_reload(Ok(())), "{\"Success\":true}\n");
    let e = ReloadError {
        message: "a non-reloadable config action 'control-service' was modified or added. Must restart receptor for these changes to take effect".into(),
        code: 3,
    };
    assert_eq!(
        format_reload(Err(&e)),
        "{\"Error\":\"a non-reloadable config action 'control-service' was modified or added. Must restart receptor for these changes to take effect ERRORCODE 3\",\"Success\":false}\n"
    );
}

#[test]
fn work_replies() {
    let u = UnitStatus {
        state: 2,
        detail: "exit status 0".into(),
        stdout_size: 21,
        work_type: "echo".into(),
        extra_data: None,
    };
    let want_u = r#"{"Detail":"exit status 0","ExtraData":null,"State":2,"StateName":"Succeeded","StdoutSize":21,"WorkType":"echo"}"#;
    assert_eq!(format_unit_status(&u), format!("{want_u}\n"));
    let remote = UnitStatus {
        state: 7,
        extra_data: Some(r#"{"RemoteNode":"node3"}"#.into()),
        ..u.clone()
    };
    assert_eq!(
        format_unit_status(&remote),
        "{\"Detail\":\"exit status 0\",\"ExtraData\":{\"RemoteNode\":\"node3\"},\"State\":7,\"StateName\":\"Unknown: 7\",\"StdoutSize\":21,\"WorkType\":\"echo\"}\n"
    );
    let list: BTreeMap<String, UnitStatus> =
        [("b".to_owned(), u.clone()), ("a".to_owned(), u)].into();
    assert_eq!(
        format_unit_list(&list),
        format!("{{\"a\":{want_u},\"b\":{want_u}}}\n")
    );
    assert_eq!(format_unit_list(&BTreeMap::new()), "{}\n");
    assert_eq!(format_cancelled("U1", false), "{\"cancelled\":\"U1\"}\n");
    assert_eq!(
        format_cancelled("U1", true),
        "{\"cancel pending\":\"U1\"}\n"
    );
    assert_eq!(format_released("U1", false), "{\"released\":\"U1\"}\n");
    assert_eq!(
        format_released("U1", true),
        "{\"release pending\":\"U1\"}\n"
    );
    assert_eq!(
        format_submitted("U1", false),
        "{\"result\":\"Job Started\",\"unitid\":\"U1\"}\n"
    );
    assert_eq!(
        format_submitted("U1", true),
        "{\"result\":\"Job Submitted\",\"unitid\":\"U1\"}\n"
    );
    assert_eq!(
        work_unit_created("U1"),
        "Work unit created with ID U1. Send stdin data and EOF.\n"
    );
    assert_eq!(
        streaming_results("U1"),
        "Streaming results for work unit U1\n"
    );
    for (s, name) in [
        (0, "Pending"),
        (1, "Running"),
        (2, "Succeeded"),
        (3, "Failed"),
        (4, "Canceled"),
        (-1, "Unknown: -1"),
    ] {
        assert_eq!(state_name(s), name);
    }
}

#[test]
fn fixed_lines() {
    assert_eq!(greeting("node1"), "Receptor Control, node node1\n");
    assert_eq!(error_line("Unknown command"), "ERROR: Unknown command\n");
    assert_eq!(CONNECTING, "Connecting\n");
}

#[test]
fn a_unit_failed_reading_its_payload_is_recognised() {
    let st = |state: i64, detail: &str| UnitStatus {
        state,
        detail: detail.into(),
        ..UnitStatus::default()
    };
    // Go's wording, and ours (the one place that writes it).
    assert!(st(3, "Error reading input data: EOF").failed_reading_input());
    assert!(st(3, &crate::work::input_error_detail("broken pipe")).failed_reading_input());
    assert!(!st(3, "exit status 1").failed_reading_input());
    assert!(!st(0, "Error reading input data: EOF").failed_reading_input());
    assert!(!st(3, "").failed_reading_input());
}
