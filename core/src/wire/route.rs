//! Routing update (message type 1): Go's `routingUpdate` JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::gojson::{FieldIndex, write_f64, write_str};
use super::{DecodeError, Encoded, MSG_ROUTE};

/// One routing update, as built by its originator and re-sent by every forwarder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteUpdate {
    /// The originating node.
    pub node_id: String,
    /// Flood de-duplication key: 8 random alphanumerics, never changed by forwarders.
    pub update_id: String,
    /// The originator's process epoch (`unix_s * 2^24 + low bits`); above 2^53, never a float.
    pub epoch: u64,
    /// The originator's update counter.
    pub sequence: u64,
    /// The originator's established neighbours and link costs (`{}` when none).
    pub connections: BTreeMap<String, f64>,
    /// The node that put this copy on the current link.
    pub forwarding_node: String,
    /// The epoch of a suspected duplicate instance of `node_id`, or 0.
    pub suspected_duplicate: u64,
}

impl RouteUpdate {
    /// Encodes the message (type byte + JSON) exactly as Go's `encoding/json` would.
    pub fn encode(&self) -> Option<Encoded> {
        let mut s = String::with_capacity(160 + self.connections.len() * 16);
        s.push_str("{\"NodeID\":");
        write_str(&mut s, &self.node_id);
        s.push_str(",\"UpdateID\":");
        write_str(&mut s, &self.update_id);
        s.push_str(",\"UpdateEpoch\":");
        s.push_str(itoa(self.epoch).as_str());
        s.push_str(",\"UpdateSequence\":");
        s.push_str(itoa(self.sequence).as_str());
        s.push_str(",\"Connections\":{");
        for (i, (k, v)) in self.connections.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            write_str(&mut s, k);
            s.push(':');
            write_f64(&mut s, *v);
        }
        s.push_str("},\"ForwardingNode\":");
        write_str(&mut s, &self.forwarding_node);
        s.push_str(",\"SuspectedDuplicate\":");
        s.push_str(itoa(self.suspected_duplicate).as_str());
        s.push('}');
        let mut b = Encoded::builder(s.len() + 1);
        b.extend_from_slice(&[MSG_ROUTE]);
        b.extend_from_slice(s.as_bytes());
        Encoded::finish(b)
    }

    /// Decodes the JSON body (after the type byte) with Go's leniency: keys match
    /// case-insensitively, unknown keys and `null`s are ignored, integers must be integers.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        // The exact form Go and we emit parses without serde; the result is the same.
        if let Some(update) = super::route_fast::decode_canonical(body) {
            return Ok(update);
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let update = de
            .deserialize_map(RouteVisitor)
            .map_err(DecodeError::json)?;
        de.end().map_err(DecodeError::json)?;
        Ok(update)
    }
}

fn itoa(n: u64) -> String {
    n.to_string()
}

const FIELDS: &[&str] = &[
    "NodeID",
    "UpdateID",
    "UpdateEpoch",
    "UpdateSequence",
    "Connections",
    "ForwardingNode",
    "SuspectedDuplicate",
];

struct RouteVisitor;

impl<'de> Visitor<'de> for RouteVisitor {
    type Value = RouteUpdate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a routing update object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RouteUpdate, A::Error> {
        let mut u = RouteUpdate::default();
        // Go keeps the last of duplicate keys, as assigning in order does.
        while let Some(field) = map.next_key_seed(FieldIndex(FIELDS))? {
            match field {
                Some(0) => u.node_id = map.next_value::<Option<String>>()?.unwrap_or_default(),
                Some(1) => u.update_id = map.next_value::<Option<String>>()?.unwrap_or_default(),
                Some(2) => u.epoch = map.next_value::<Option<u64>>()?.unwrap_or_default(),
                Some(3) => u.sequence = map.next_value::<Option<u64>>()?.unwrap_or_default(),
                Some(4) => {
                    u.connections = map
                        .next_value::<Option<BTreeMap<String, f64>>>()?
                        .unwrap_or_default();
                }
                Some(5) => {
                    u.forwarding_node = map.next_value::<Option<String>>()?.unwrap_or_default();
                }
                Some(6) => {
                    u.suspected_duplicate = map.next_value::<Option<u64>>()?.unwrap_or_default();
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(u)
    }
}

/// Lets `serde_json` hand us a route update from a `deserialize_map` call.
impl<'de> de::Deserialize<'de> for RouteUpdate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RouteVisitor)
    }
}
