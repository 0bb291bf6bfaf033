//! The control service's replies, byte for byte (control-and-work.md §1.4, §1.5, Appendix A).
//!
//! Replies are Go maps marshalled by `encoding/json`: keys sorted, no spaces, one line. Structs
//! inside them (advertisements, connections) keep their field order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::duration::{go_duration_nanos, go_duration_string};
use crate::Node;
use crate::ping::PingResult;
use crate::wire::{
    ServiceAdvert, UnixNanos, WorkCommand, format_rfc3339_nano_in, write_f64, write_str,
};
use crate::work::{INPUT_ERROR_DETAIL, STATE_FAILED};

/// The greeting written as soon as a session starts.
pub fn greeting(node_id: &str) -> String {
    format!("Receptor Control, node {node_id}\n")
}

/// An error reply. The message is written raw, not JSON-escaped.
pub fn error_line(msg: &str) -> String {
    format!("ERROR: {msg}\n")
}

/// Written before a `connect` session is bridged to the dialled service.
pub const CONNECTING: &str = "Connecting\n";

/// Written once a submitted unit exists; the client then sends its payload and half-closes.
pub fn work_unit_created(unit_id: &str) -> String {
    format!("Work unit created with ID {unit_id}. Send stdin data and EOF.\n")
}

/// Written before a unit's stdout is streamed raw.
pub fn streaming_results(unit_id: &str) -> String {
    format!("Streaming results for work unit {unit_id}\n")
}

/// One directly connected peer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStatus {
    /// The peer's node ID.
    pub node_id: String,
    /// The link cost.
    pub cost: f64,
}

/// What a `status` reply needs besides the mesh tables: facts about this host and process.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostInfo {
    /// Wall-clock time now; this node's own ads are reported with it.
    pub now: UnixNanos,
    /// The local zone, seconds east of UTC (Go prints local times with their offset).
    pub utc_offset: i32,
    /// Work types offered by this node; put on every one of its own ads when non-empty.
    pub work_commands: Vec<WorkCommand>,
    /// Logical CPUs usable by the process.
    pub cpu_count: u64,
    /// Total physical memory in MiB (bytes / 1048576, rounded down).
    pub memory_mib: u64,
    /// The build version string (empty if unknown).
    pub version: String,
}

/// Everything a `status` reply reports, as Go's `Netceptor.Status()` plus the host facts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusSnapshot {
    /// This node's ID.
    pub node_id: String,
    /// Directly connected peers, in the order to report them.
    pub connections: Vec<ConnectionStatus>,
    /// Destination -> next hop.
    pub routing_table: BTreeMap<String, String>,
    /// Every node's connections and costs, as known.
    pub known_connection_costs: BTreeMap<String, BTreeMap<String, f64>>,
    /// Every service advertisement in force, this node's own included (`cancel` is ignored).
    pub advertisements: Vec<ServiceAdvert>,
    /// Host facts, and the time and work types for this node's own ads.
    pub host: HostInfo,
}

impl StatusSnapshot {
    /// Takes the mesh tables from `node`.
    pub fn from_node(node: &Node, host: HostInfo) -> Self {
        Self {
            node_id: node.id().to_string(),
            connections: node
                .connections()
                .into_iter()
                .map(|(n, cost)| ConnectionStatus {
                    node_id: n.to_string(),
                    cost,
                })
                .collect(),
            routing_table: node
                .routes()
                .iter()
                .map(|(d, h)| (d.to_string(), h.to_string()))
                .collect(),
            known_connection_costs: node
                .known_connection_costs()
                .into_iter()
                .map(|(a, peers)| {
                    let peers = peers.into_iter().map(|(b, c)| (b.to_string(), c)).collect();
                    (a.to_string(), peers)
                })
                .collect(),
            advertisements: node.advertisements().cloned().collect(),
            host,
        }
    }
}

/// The eight `status` fields, in Go's (sorted) output order.
pub const STATUS_FIELDS: [&str; 8] = [
    "Advertisements",
    "Connections",
    "KnownConnectionCosts",
    "NodeID",
    "RoutingTable",
    "SystemCPUCount",
    "SystemMemoryMiB",
    "Version",
];

/// The `status` reply line. With `requested` only those fields appear (unknown names are
/// skipped, duplicates collapse; an empty list gives `{}`).
pub fn format_status(s: &StatusSnapshot, requested: Option<&[String]>) -> String {
    let mut out = String::with_capacity(512);
    out.push('{');
    let mut first = true;
    for field in STATUS_FIELDS {
        if let Some(req) = requested
            && !req.iter().any(|r| r == field)
        {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_str(&mut out, field);
        out.push(':');
        match field {
            "Advertisements" => write_ads(&mut out, s),
            "Connections" => {
                out.push('[');
                for (i, c) in s.connections.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"NodeID\":");
                    write_str(&mut out, &c.node_id);
                    out.push_str(",\"Cost\":");
                    write_f64(&mut out, c.cost);
                    out.push('}');
                }
                out.push(']');
            }
            "KnownConnectionCosts" => {
                write_map(&mut out, &s.known_connection_costs, |out, peers| {
                    write_map(out, peers, |out, c| write_f64(out, *c));
                });
            }
            "NodeID" => write_str(&mut out, &s.node_id),
            "RoutingTable" => write_map(&mut out, &s.routing_table, |out, v| write_str(out, v)),
            "SystemCPUCount" => {
                let _ = write!(out, "{}", s.host.cpu_count);
            }
            "SystemMemoryMiB" => {
                let _ = write!(out, "{}", s.host.memory_mib);
            }
            _ => write_str(&mut out, &s.host.version),
        }
    }
    out.push_str("}\n");
    out
}

fn write_map<V>(out: &mut String, map: &BTreeMap<String, V>, mut f: impl FnMut(&mut String, &V)) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        f(out, v);
    }
    out.push('}');
}

/// Go's `ServiceAdvertisement` struct (no `Cancel`), with this node's own ads stamped with the
/// current time and the local work types, as `Netceptor.Status()` does.
fn write_ads(out: &mut String, s: &StatusSnapshot) {
    out.push('[');
    for (i, ad) in s.advertisements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let own = ad.node_id == s.node_id;
        let (time, offset) = if own {
            (s.host.now, s.host.utc_offset)
        } else {
            (ad.time, ad.utc_offset)
        };
        let work_commands = if own && !s.host.work_commands.is_empty() {
            Some(s.host.work_commands.as_slice())
        } else {
            ad.work_commands.as_deref()
        };
        out.push_str("{\"NodeID\":");
        write_str(out, &ad.node_id);
        out.push_str(",\"Service\":");
        write_str(out, &ad.service);
        out.push_str(",\"Time\":");
        write_str(out, &format_rfc3339_nano_in(time, offset));
        let _ = write!(out, ",\"ConnType\":{}", ad.conn_type);
        out.push_str(",\"Tags\":");
        match &ad.tags {
            None => out.push_str("null"),
            Some(tags) => write_map(out, tags, |out, v| write_str(out, v)),
        }
        out.push_str(",\"WorkCommands\":");
        match work_commands {
            None => out.push_str("null"),
            Some(wcs) => {
                out.push('[');
                for (j, wc) in wcs.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"WorkType\":");
                    write_str(out, &wc.work_type);
                    let _ = write!(out, ",\"Secure\":{}}}", wc.secure);
                }
                out.push(']');
            }
        }
        out.push('}');
    }
    out.push(']');
}

/// The `ping` reply: `{"From":..,"Success":true,"Time":ns,"TimeStr":..}` or, on failure,
/// `{"Error":..,"Success":false}`.
pub fn format_ping(r: &PingResult) -> String {
    let mut out = String::with_capacity(96);
    match &r.error {
        Some(e) => {
            out.push_str("{\"Error\":");
            write_str(&mut out, e);
            out.push_str(",\"Success\":false}\n");
        }
        None => {
            out.push_str("{\"From\":");
            write_str(&mut out, r.from.as_ref().map_or("", |n| n.as_str()));
            let _ = write!(
                out,
                ",\"Success\":true,\"Time\":{}",
                go_duration_nanos(r.rtt)
            );
            out.push_str(",\"TimeStr\":");
            write_str(&mut out, &go_duration_string(r.rtt));
            out.push_str("}\n");
        }
    }
    out
}

/// The `traceroute` reply: hops keyed `"0"`, `"1"`, ... in Go's sorted key order (so `"10"`
/// comes before `"2"`), each `{"Error"?,"From","Time","TimeStr"}`.
pub fn format_traceroute(hops: &[PingResult]) -> String {
    let mut keyed: Vec<(String, &PingResult)> = hops
        .iter()
        .enumerate()
        .map(|(i, h)| (i.to_string(), h))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(64 * hops.len() + 4);
    out.push('{');
    for (i, (key, hop)) in keyed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, key);
        out.push_str(":{");
        if let Some(e) = &hop.error {
            out.push_str("\"Error\":");
            write_str(&mut out, e);
            out.push(',');
        }
        out.push_str("\"From\":");
        write_str(&mut out, hop.from.as_ref().map_or("", |n| n.as_str()));
        let _ = write!(out, ",\"Time\":{}", go_duration_nanos(hop.rtt));
        out.push_str(",\"TimeStr\":");
        write_str(&mut out, &go_duration_string(hop.rtt));
        out.push('}');
    }
    out.push_str("}\n");
    out
}

/// A failed reload: the message and receptorctl's exit code hint (3: a non-reloadable item
/// changed, 4: the configuration could not be parsed or applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ERRORCODE {code}")]
pub struct ReloadError {
    /// What went wrong.
    pub message: String,
    /// 3 or 4, as Go uses them.
    pub code: u8,
}

/// The `reload` reply: `{"Success":true}` or `{"Error":"<msg> ERRORCODE <n>","Success":false}`.
pub fn format_reload(r: Result<(), &ReloadError>) -> String {
    match r {
        Ok(()) => "{\"Success\":true}\n".to_owned(),
        Err(e) => {
            let mut out = String::from("{\"Error\":");
            write_str(&mut out, &e.to_string());
            out.push_str(",\"Success\":false}\n");
            out
        }
    }
}

/// A unit's status as `work status` and `work list` report it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitStatus {
    /// 0 Pending, 1 Running, 2 Succeeded, 3 Failed, 4 Canceled.
    pub state: i64,
    /// Human-readable detail (`exit status 0`, `Running: PID 4242`, ...).
    pub detail: String,
    /// Bytes of stdout as last recorded.
    pub stdout_size: i64,
    /// The unit's work type.
    pub work_type: String,
    /// `ExtraData` already encoded as JSON (Go struct order, secrets removed); `None` is `null`.
    pub extra_data: Option<String>,
}

impl UnitStatus {
    /// The unit failed because its `work submit` payload could not be read (the stream
    /// carrying it broke): it never ran.
    pub fn failed_reading_input(&self) -> bool {
        self.state == STATE_FAILED && self.detail.starts_with(INPUT_ERROR_DETAIL)
    }
}

/// Go's `WorkStateToString`.
pub fn state_name(state: i64) -> String {
    match state {
        0 => "Pending".into(),
        1 => "Running".into(),
        2 => "Succeeded".into(),
        3 => "Failed".into(),
        4 => "Canceled".into(),
        n => format!("Unknown: {n}"),
    }
}

fn write_unit_status(out: &mut String, u: &UnitStatus) {
    out.push_str("{\"Detail\":");
    write_str(out, &u.detail);
    out.push_str(",\"ExtraData\":");
    out.push_str(u.extra_data.as_deref().unwrap_or("null"));
    let _ = write!(out, ",\"State\":{},\"StateName\":", u.state);
    write_str(out, &state_name(u.state));
    let _ = write!(out, ",\"StdoutSize\":{},\"WorkType\":", u.stdout_size);
    write_str(out, &u.work_type);
    out.push('}');
}

/// The `work status` reply.
pub fn format_unit_status(u: &UnitStatus) -> String {
    let mut out = String::with_capacity(160);
    write_unit_status(&mut out, u);
    out.push('\n');
    out
}

/// The `work list` reply: `{"<id>":STATUS,...}`, `{}` when empty.
pub fn format_unit_list(units: &BTreeMap<String, UnitStatus>) -> String {
    let mut out = String::with_capacity(160 * units.len() + 3);
    write_map(&mut out, units, write_unit_status);
    out.push('\n');
    out
}

/// A one-key reply such as `{"cancelled":"<id>"}`.
fn one_key(key: &str, value: &str) -> String {
    let mut out = String::from("{");
    write_str(&mut out, key);
    out.push(':');
    write_str(&mut out, value);
    out.push_str("}\n");
    out
}

/// The `work cancel` reply.
pub fn format_cancelled(unit_id: &str, pending: bool) -> String {
    one_key(
        if pending {
            "cancel pending"
        } else {
            "cancelled"
        },
        unit_id,
    )
}

/// The `work release` / `work force-release` reply.
pub fn format_released(unit_id: &str, pending: bool) -> String {
    one_key(
        if pending {
            "release pending"
        } else {
            "released"
        },
        unit_id,
    )
}

/// The final `work submit` reply: `{"result":"Job Started","unitid":..}`, or `Job Submitted`
/// when the start is pending (a remote node not yet reachable).
pub fn format_submitted(unit_id: &str, pending: bool) -> String {
    let mut out = String::from("{\"result\":");
    write_str(
        &mut out,
        if pending {
            "Job Submitted"
        } else {
            "Job Started"
        },
    );
    out.push_str(",\"unitid\":");
    write_str(&mut out, unit_id);
    out.push_str("}\n");
    out
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
