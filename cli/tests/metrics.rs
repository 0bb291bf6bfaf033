//! The `metrics` entity end to end: A -tcp- B -tcp- C with `metrics` on A. `/metrics` is read
//! by the Prometheus project's own Python parsers (both formats), the topology endpoints and
//! the page must name A, B, C and the links between, garbage HTTP gets a 4xx, and `reload`
//! moves the endpoint.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The venv's Python, with `prometheus_client` (installed by `.ci/run`).
fn python() -> PathBuf {
    let py = receptorctl_bin()
        .parent()
        .map(|d| d.join("python3"))
        .unwrap();
    let ok = Command::new(&py)
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import prometheus_client: `.ci/run` installs it into .venv",
        py.display()
    );
    py
}

/// Parses an exposition with prometheus_client's parser for `format` ("prometheus" or
/// "openmetrics"); returns `[[name, labels, value], ...]` of every sample.
fn parse_exposition(format: &str, text: &str) -> Vec<(String, Value, f64)> {
    let script = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value, fam.type])
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", script, format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the {format} parser refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].clone(),
                r[2].as_f64().unwrap(),
            )
        })
        .collect()
}

/// One sample's value, by name and (a subset of) labels.
fn sample(rows: &[(String, Value, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    rows.iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|r| r.2)
}

/// Sends raw bytes, returns (status, headers+body text).
fn raw_http(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// GET `path`; panics unless 200. Returns the body.
fn get(port: u16, path: &str, accept: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\n\r\n");
    let (status, text) = raw_http(port, req.as_bytes());
    assert_eq!(status, 200, "{path}: {text}");
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    body.to_owned()
}

#[test]
fn metrics_topology_and_page_of_a_three_node_line() {
    let dir = TempDir::new("metrics");
    let (port, http) = (free_port(), free_port());
    let metrics = |p: u16| format!("- metrics:\n    port: {p}\n");
    let work = "- work-command:\n    worktype: echo\n    command: cat\n";
    let [a, b, c] = line_mesh_yaml(&dir, port, &metrics(http), "", work);
    let _b = start_yaml(&dir, "B", &b);
    let _a = start_yaml(&dir, "A", &a);
    let _c = start_yaml(&dir, "C", &c);
    let a_sock = dir.path("A.sock");
    wait_for_path(&a_sock, Duration::from_secs(10));
    eventually(Duration::from_secs(20), "A to route to B and C", || {
        let s = status_json(&a_sock);
        s["RoutingTable"]["C"] == "B" && s["KnownConnectionCosts"]["C"]["B"].is_number()
    });
    // A unit of work run on C from A: a `remote` unit on A.
    let (_, result) = work_submit(&a_sock, &["--node", "C", "echo", "--payload-literal", "hi"]);
    assert_eq!(result, "Job Started");
    eventually(
        Duration::from_secs(20),
        "the remote unit to succeed",
        || {
            let text = get(http, "/metrics", "text/plain");
            text.contains("receptor_work_units{work_type=\"remote\",state=\"Succeeded\"} 1")
        },
    );

    for (format, accept) in [
        ("prometheus", "text/plain;version=0.0.4"),
        ("openmetrics", "application/openmetrics-text;version=1.0.0"),
    ] {
        let text = get(http, "/metrics", accept);
        let rows = parse_exposition(format, &text);
        let v = |name: &str, labels: &[(&str, &str)]| {
            sample(&rows, name, labels).unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        };
        assert_eq!(v("receptor_connections", &[("backend", "tcp")]), 1.0);
        assert_eq!(v("receptor_connections", &[("backend", "udp")]), 0.0);
        assert_eq!(v("receptor_known_nodes", &[]), 3.0);
        assert_eq!(v("receptor_routes", &[]), 2.0);
        assert!(v("receptor_route_recomputations_total", &[]) >= 1.0);
        for direction in ["in", "out"] {
            assert!(v("receptor_link_bytes_total", &[("direction", direction)]) > 0.0);
            assert!(v("receptor_messages_total", &[("direction", direction)]) > 0.0);
        }
        // Present (a gauge); how many are open depends on the remote unit's pooled session.
        assert!(v("receptor_mesh_streams", &[]) >= 0.0);
        assert_eq!(
            v("receptor_frames_dropped_total", &[("reason", "malformed")]),
            0.0
        );
        assert_eq!(
            v(
                "receptor_work_units",
                &[("work_type", "remote"), ("state", "Succeeded")]
            ),
            1.0
        );
        assert!(v("receptor_control_sessions_started_total", &[]) >= 2.0);
        let version = receptor_cli::config::VERSION;
        assert_eq!(
            v(
                "receptor_build_info",
                &[("version", version), ("node_id", "A")]
            ),
            1.0
        );
        assert!(rows.iter().all(|(n, _, _)| n.starts_with("receptor_")));
    }

    let topo: Value = serde_json::from_str(&get(http, "/topology.json", "*/*")).unwrap();
    assert_eq!(topo["node"], "A");
    let nodes: Vec<&str> = topo["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["A", "B", "C"]);
    let links: Vec<(String, String, f64)> = topo["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["a"].as_str().unwrap().to_owned(),
                l["b"].as_str().unwrap().to_owned(),
                l["cost"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        links,
        [("A".into(), "B".into(), 1.0), ("B".into(), "C".into(), 1.0)]
    );
    assert_eq!(topo["routes"]["C"], "B");
    eventually(
        Duration::from_secs(20),
        "C's control service advert",
        || {
            let t: Value = serde_json::from_str(&get(http, "/topology.json", "*/*")).unwrap();
            t["services"].as_array().unwrap().iter().any(|s| {
                s["node"] == "C" && s["service"] == "control" && s["work_types"][0] == "echo"
            })
        },
    );

    let dot = get(http, "/topology.dot", "*/*");
    for want in [
        "\"A\" [shape=doublecircle];",
        "\"A\" -- \"B\"",
        "\"B\" -- \"C\"",
    ] {
        assert!(dot.contains(want), "{want} not in {dot}");
    }

    let page = get(http, "/", "text/html");
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    for n in ["A", "B", "C"] {
        assert!(
            svg.contains(&format!(">{n}</text>")),
            "{n} not drawn:\n{svg}"
        );
    }
    assert!(svg.contains("<title>A - B cost 1</title>"), "{svg}");
    assert!(svg.contains("<title>B - C cost 1</title>"), "{svg}");
    assert!(!page.contains("<script"));

    // Garbage gets a 4xx, and the endpoint keeps serving.
    let tls_hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n";
    assert_eq!(raw_http(http, tls_hello).0, 400);
    assert_eq!(raw_http(http, b"GET /nope HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(raw_http(http, b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    let mut huge = b"GET /".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(raw_http(http, &huge).0, 431);
    assert_eq!(raw_http(http, b"HEAD /metrics HTTP/1.0\r\n\r\n").0, 200);
    // A client that leaves mid-request.
    drop(TcpStream::connect(("127.0.0.1", http)).unwrap());
    get(http, "/metrics", "*/*");

    // `reload` moves the endpoint to a new port.
    let moved = free_port();
    let a_new = a.replace(&metrics(http), &metrics(moved));
    std::fs::write(dir.path("A.yml"), a_new).unwrap();
    let o = receptorctl(&a_sock, &["reload"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    get(moved, "/metrics", "*/*");
    assert!(TcpStream::connect(("127.0.0.1", http)).is_err());
}
