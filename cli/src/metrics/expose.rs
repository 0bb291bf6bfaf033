//! `GET /metrics`: the node's numbers as `receptor_*` series, in the Prometheus text format
//! or OpenMetrics (whichever the scraper asks for), encoded by `prometheus-client`.
//!
//! Every scrape reads a fresh snapshot and builds a registry from it: the counters live in the
//! node task (plain numbers, no atomics on the data path), not in long-lived metric objects.

use std::collections::BTreeMap;

use prometheus_client::encoding::{prometheus_text, text as openmetrics_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use receptor_tokio::Metrics;

/// Everything one scrape reports.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The build version (`receptor --version`).
    pub version: String,
    /// This node's ID.
    pub node_id: String,
    /// The node task's numbers.
    pub node: Metrics,
    /// Units of work by (work type, state name).
    pub units: BTreeMap<(String, String), u64>,
    /// Control sessions open now.
    pub control_open: u64,
    /// Control sessions started since the node started.
    pub control_started: u64,
}

/// The media type of each exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: what a scraper gets unless it asks for OpenMetrics.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, as Prometheus's scrapers do.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

fn counter(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

type Labels = Vec<(&'static str, String)>;

fn register_family<M>(reg: &mut Registry, name: &str, help: &str, unit: Option<Unit>, family: M)
where
    M: prometheus_client::registry::Metric,
{
    match unit {
        Some(u) => reg.register_with_unit(name, help, u, family),
        None => reg.register(name, help, family),
    }
}

fn counters(
    reg: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) {
    let family: Family<Labels, Counter> = Family::default();
    for (labels, v) in rows {
        family.get_or_create(&labels).inc_by(v);
    }
    register_family(reg, name, help, unit, family);
}

fn gauges(
    reg: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) {
    let family: Family<Labels, Gauge> = Family::default();
    for (labels, v) in rows {
        family
            .get_or_create(&labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    register_family(reg, name, help, None, family);
}

/// The registry for one scrape.
fn registry(s: &Snapshot) -> Registry {
    let mut reg = Registry::with_prefix("receptor");
    let st = &s.node.node.stats;
    reg.register(
        "build",
        "Build information of this receptor",
        Info::new(vec![
            ("version", s.version.clone()),
            ("node_id", s.node_id.clone()),
        ]),
    );
    let conns = s.node.node.connections;
    gauges(
        &mut reg,
        "connections",
        "Established connections to neighbour nodes, by backend",
        [
            (vec![("backend", "tcp".to_owned())], conns.stream),
            (vec![("backend", "udp".to_owned())], conns.datagram),
            (vec![("backend", "ws".to_owned())], conns.message),
        ],
    );
    counter(
        &mut reg,
        "connections_established",
        "Connections whose handshake completed",
        st.connections_established,
    );
    counter(
        &mut reg,
        "sessions_rejected",
        "Sessions this node rejected (allowed peers, cost disagreement, duplicate)",
        st.rejects_sent,
    );
    counters(
        &mut reg,
        "link",
        "Bytes received from and queued for neighbours",
        Some(Unit::Bytes),
        [
            (vec![("direction", "in".to_owned())], st.bytes_in),
            (vec![("direction", "out".to_owned())], st.bytes_out),
        ],
    );
    counters(
        &mut reg,
        "messages",
        "Mesh messages (data, routing updates, advertisements) received and queued",
        None,
        [
            (vec![("direction", "in".to_owned())], st.messages_in),
            (vec![("direction", "out".to_owned())], st.messages_out),
        ],
    );
    let dropped = [
        ("malformed", st.malformed),
        ("unknown_node", st.unknown_hash),
        ("no_route", st.no_route),
        ("hops_exceeded", st.expired),
        ("firewall", st.firewalled),
        ("too_large", st.oversized),
        ("queue_full", s.node.frames_dropped_queue_full),
    ];
    counters(
        &mut reg,
        "frames_dropped",
        "Messages dropped, by reason",
        None,
        dropped.map(|(r, v)| (vec![("reason", r.to_owned())], v)),
    );
    counter(
        &mut reg,
        "forwarded_messages",
        "Data messages forwarded for other nodes",
        st.forwarded,
    );
    counter(
        &mut reg,
        "delivered_datagrams",
        "Datagrams delivered to services on this node",
        st.delivered,
    );
    counter(
        &mut reg,
        "route_updates_received",
        "Routing updates received",
        st.route_updates_in,
    );
    counter(
        &mut reg,
        "route_updates_stale",
        "Routing updates ignored as already seen or stale",
        st.route_updates_stale,
    );
    gauge(
        &mut reg,
        "known_nodes",
        "Nodes whose connections this node knows, itself included",
        s.node.node.known_nodes,
    );
    gauge(
        &mut reg,
        "routes",
        "Destinations in the routing table",
        s.node.node.routes,
    );
    counter(
        &mut reg,
        "route_recomputations",
        "Times the routing table was computed",
        st.route_recomputations,
    );
    counter(
        &mut reg,
        "route_changes",
        "Route computations that changed a route",
        st.route_changes,
    );
    gauge(
        &mut reg,
        "mesh_streams",
        "Mesh streams (QUIC over the mesh) open on this node",
        s.node.mesh_streams,
    );
    gauges(
        &mut reg,
        "work_units",
        "Units of work on this node, by work type and state",
        s.units.iter().map(|((work_type, state), n)| {
            (
                vec![("work_type", work_type.clone()), ("state", state.clone())],
                *n,
            )
        }),
    );
    gauge(
        &mut reg,
        "control_sessions_open",
        "Control service sessions open",
        s.control_open,
    );
    counter(
        &mut reg,
        "control_sessions_started",
        "Control service sessions started",
        s.control_started,
    );
    reg
}

/// The exposition of `s` in `format`.
pub fn render(s: &Snapshot, format: Format) -> String {
    let reg = registry(s);
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail; an encoder error would mean a bad metric name, and a
    // partial page is still better than none.
    let _ = match format {
        Format::Prometheus => prometheus_text::encode(&mut out, &reg),
        Format::OpenMetrics => openmetrics_text::encode(&mut out, &reg),
    };
    out
}

/// A few headline numbers for the HTML page.
pub fn summary(s: &Snapshot) -> Vec<(&'static str, String)> {
    let n = &s.node.node;
    vec![
        ("version", s.version.clone()),
        (
            "connections (tcp / udp / ws)",
            format!(
                "{} / {} / {}",
                n.connections.stream, n.connections.datagram, n.connections.message
            ),
        ),
        ("known nodes", n.known_nodes.to_string()),
        ("routes", n.routes.to_string()),
        (
            "messages in / out",
            format!("{} / {}", n.stats.messages_in, n.stats.messages_out),
        ),
        (
            "bytes in / out",
            format!("{} / {}", n.stats.bytes_in, n.stats.bytes_out),
        ),
        ("mesh streams open", s.node.mesh_streams.to_string()),
        ("work units", s.units.values().sum::<u64>().to_string()),
        ("control sessions open", s.control_open.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot {
            version: "1.2.3".into(),
            node_id: "A".into(),
            control_open: 1,
            control_started: 4,
            ..Snapshot::default()
        };
        s.node.node.connections.stream = 2;
        s.node.node.stats.bytes_in = 100;
        s.node.node.stats.no_route = 3;
        s.node.mesh_streams = 5;
        s.units.insert(("echo".into(), "Succeeded".into()), 7);
        s
    }

    #[test]
    fn prometheus_text_names_every_series_with_the_receptor_prefix() {
        let text = render(&snapshot(), Format::Prometheus);
        for line in [
            "receptor_build_info{version=\"1.2.3\",node_id=\"A\"} 1",
            "receptor_connections{backend=\"tcp\"} 2",
            "receptor_link_bytes_total{direction=\"in\"} 100",
            "receptor_frames_dropped_total{reason=\"no_route\"} 3",
            "receptor_mesh_streams 5",
            "receptor_work_units{work_type=\"echo\",state=\"Succeeded\"} 7",
            "receptor_control_sessions_open 1",
            "receptor_control_sessions_started_total 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(!text.contains("# EOF"));
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("receptor_"), "{l}");
        }
    }

    #[test]
    fn openmetrics_when_asked_for() {
        let f = Format::from_accept(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        ));
        assert_eq!(f, Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        let text = render(&snapshot(), f);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# UNIT receptor_link_bytes bytes"), "{text}");
    }
}
