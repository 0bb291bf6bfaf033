//! Unreachable notice: the JSON payload of a data message to service `unreach`.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::DecodeError;
use super::gojson::{FieldIndex, write_str};

/// Why a data message could not be delivered (Go `UnreachableMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnreachableNotice {
    /// The failed message's source node.
    pub from_node: String,
    /// The failed message's destination node.
    pub to_node: String,
    /// The failed message's source service.
    pub from_service: String,
    /// The failed message's destination service.
    pub to_service: String,
    /// `service unknown`, `message expired` or `blocked by firewall`.
    pub problem: String,
}

/// Problem string: no listener on the destination service.
pub const PROBLEM_SERVICE_UNKNOWN: &str = "service unknown";
/// Problem string: hops-to-live ran out.
pub const PROBLEM_EXPIRED: &str = "message expired";
/// Problem string: a firewall rule rejected the message.
pub const PROBLEM_FIREWALL: &str = "blocked by firewall";

/// An unreachable notice's problem, typed. Go sends one of three texts; any other is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Problem {
    /// No listener on the destination service.
    ServiceUnknown,
    /// Hops-to-live ran out on the way.
    Expired,
    /// A firewall rule on the way rejected the message.
    Firewall,
    /// A problem text no known node sends.
    Other(String),
}

impl Problem {
    /// The problem a notice's text names.
    pub fn from_text(text: &str) -> Self {
        match text {
            PROBLEM_SERVICE_UNKNOWN => Self::ServiceUnknown,
            PROBLEM_EXPIRED => Self::Expired,
            PROBLEM_FIREWALL => Self::Firewall,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Go's text for it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ServiceUnknown => PROBLEM_SERVICE_UNKNOWN,
            Self::Expired => PROBLEM_EXPIRED,
            Self::Firewall => PROBLEM_FIREWALL,
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl UnreachableNotice {
    /// The JSON payload, as Go marshals it.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(128);
        s.push_str("{\"FromNode\":");
        write_str(&mut s, &self.from_node);
        s.push_str(",\"ToNode\":");
        write_str(&mut s, &self.to_node);
        s.push_str(",\"FromService\":");
        write_str(&mut s, &self.from_service);
        s.push_str(",\"ToService\":");
        write_str(&mut s, &self.to_service);
        s.push_str(",\"Problem\":");
        write_str(&mut s, &self.problem);
        s.push('}');
        s
    }

    /// Parses the JSON payload leniently, as Go does.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let n = de
            .deserialize_map(NoticeVisitor)
            .map_err(DecodeError::json)?;
        de.end().map_err(DecodeError::json)?;
        Ok(n)
    }
}

const FIELDS: &[&str] = &["FromNode", "ToNode", "FromService", "ToService", "Problem"];

struct NoticeVisitor;

impl<'de> Visitor<'de> for NoticeVisitor {
    type Value = UnreachableNotice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unreachable notice object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UnreachableNotice, A::Error> {
        let mut n = UnreachableNotice::default();
        while let Some(field) = map.next_key_seed(FieldIndex(FIELDS))? {
            let slot = match field {
                Some(0) => &mut n.from_node,
                Some(1) => &mut n.to_node,
                Some(2) => &mut n.from_service,
                Some(3) => &mut n.to_service,
                Some(4) => &mut n.problem,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value::<Option<String>>()?.unwrap_or_default();
        }
        Ok(n)
    }
}
