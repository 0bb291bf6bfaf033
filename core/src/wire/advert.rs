//! Service advertisement (message type 2): Go's `ServiceAdvertisement` plus `Cancel`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::gojson::{FieldIndex, write_str};
use super::time::{UnixNanos, format_rfc3339_nano_in, parse_rfc3339, parse_rfc3339_zoned};
use super::{DecodeError, Encoded, MSG_SERVICE_AD};

/// A work type a node offers, as listed in its control service advertisement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkCommand {
    /// The work type name.
    pub work_type: String,
    /// Whether submissions must be signed.
    pub secure: bool,
}

/// A service advertisement: which node offers which service, of what kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAdvert {
    /// The node offering the service.
    pub node_id: String,
    /// The service name.
    pub service: String,
    /// When the advertisement was made (nanoseconds since the Unix epoch).
    pub time: UnixNanos,
    /// The sender's zone, seconds east of UTC, kept so the time re-encodes as it came.
    pub utc_offset: i32,
    /// 0 datagram, 1 stream with the insecure certificate, 2 stream with user TLS.
    pub conn_type: u8,
    /// Free-form tags, `None` for Go's `null`.
    pub tags: Option<BTreeMap<String, String>>,
    /// Work types offered, `None` for Go's `null`.
    pub work_commands: Option<Vec<WorkCommand>>,
    /// Withdraws the advertisement.
    pub cancel: bool,
}

impl ServiceAdvert {
    /// Encodes the message (type byte + JSON) as Go does; `Time` in UTC.
    pub fn encode(&self) -> Option<Encoded> {
        let mut s = String::with_capacity(200);
        s.push_str("{\"NodeID\":");
        write_str(&mut s, &self.node_id);
        s.push_str(",\"Service\":");
        write_str(&mut s, &self.service);
        s.push_str(",\"Time\":");
        write_str(&mut s, &format_rfc3339_nano_in(self.time, self.utc_offset));
        s.push_str(",\"ConnType\":");
        s.push_str(&self.conn_type.to_string());
        s.push_str(",\"Tags\":");
        match &self.tags {
            None => s.push_str("null"),
            Some(tags) => {
                s.push('{');
                for (i, (k, v)) in tags.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    write_str(&mut s, k);
                    s.push(':');
                    write_str(&mut s, v);
                }
                s.push('}');
            }
        }
        s.push_str(",\"WorkCommands\":");
        match &self.work_commands {
            None => s.push_str("null"),
            Some(wcs) => {
                s.push('[');
                for (i, wc) in wcs.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str("{\"WorkType\":");
                    write_str(&mut s, &wc.work_type);
                    s.push_str(",\"Secure\":");
                    s.push_str(if wc.secure { "true" } else { "false" });
                    s.push('}');
                }
                s.push(']');
            }
        }
        s.push_str(",\"Cancel\":");
        s.push_str(if self.cancel { "true" } else { "false" });
        s.push('}');
        let mut b = Encoded::builder(s.len() + 1);
        b.extend_from_slice(&[MSG_SERVICE_AD]);
        b.extend_from_slice(s.as_bytes());
        Encoded::finish(b)
    }

    /// Decodes the JSON body leniently, as Go does. An invalid `Time` fails the whole ad.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let ad = de.deserialize_map(AdVisitor).map_err(DecodeError::json)?;
        de.end().map_err(DecodeError::json)?;
        Ok(ad)
    }
}

const FIELDS: &[&str] = &[
    "NodeID",
    "Service",
    "Time",
    "ConnType",
    "Tags",
    "WorkCommands",
    "Cancel",
];

struct AdVisitor;

impl<'de> Visitor<'de> for AdVisitor {
    type Value = ServiceAdvert;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a service advertisement object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServiceAdvert, A::Error> {
        use serde::de::Error;
        // Go's zero time.Time is 0001-01-01T00:00:00Z.
        let mut ad = ServiceAdvert {
            time: parse_rfc3339("0001-01-01T00:00:00Z").unwrap_or_default(),
            ..ServiceAdvert::default()
        };
        while let Some(field) = map.next_key_seed(FieldIndex(FIELDS))? {
            match field {
                Some(0) => ad.node_id = map.next_value::<Option<String>>()?.unwrap_or_default(),
                Some(1) => ad.service = map.next_value::<Option<String>>()?.unwrap_or_default(),
                Some(2) => {
                    if let Some(t) = map.next_value::<Option<String>>()? {
                        (ad.time, ad.utc_offset) = parse_rfc3339_zoned(&t)
                            .ok_or_else(|| A::Error::custom(format!("bad time {t:?}")))?;
                    }
                }
                Some(3) => ad.conn_type = map.next_value::<Option<u8>>()?.unwrap_or_default(),
                Some(4) => ad.tags = map.next_value()?,
                Some(5) => {
                    ad.work_commands = map.next_value::<Option<WorkCommands>>()?.map(|w| w.0);
                }
                Some(6) => ad.cancel = map.next_value::<Option<bool>>()?.unwrap_or_default(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ad)
    }
}

/// `WorkCommands` in either form: `[{"WorkType":..,"Secure":..}]` or, from nodes <= 1.0.x,
/// `["type", ..]`.
struct WorkCommands(Vec<WorkCommand>);

impl<'de> serde::Deserialize<'de> for WorkCommands {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(WorkCommandsVisitor)
    }
}

struct WorkCommandsVisitor;

impl<'de> Visitor<'de> for WorkCommandsVisitor {
    type Value = WorkCommands;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of work commands")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<WorkCommands, S::Error> {
        let mut out = Vec::new();
        while let Some(wc) = seq.next_element::<OneWorkCommand>()? {
            out.push(wc.0);
        }
        Ok(WorkCommands(out))
    }
}

struct OneWorkCommand(WorkCommand);

impl<'de> serde::Deserialize<'de> for OneWorkCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneWorkCommandVisitor)
    }
}

struct OneWorkCommandVisitor;

const WC_FIELDS: &[&str] = &["WorkType", "Secure"];

impl<'de> Visitor<'de> for OneWorkCommandVisitor {
    type Value = OneWorkCommand;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a work command object or string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneWorkCommand, E> {
        Ok(OneWorkCommand(WorkCommand {
            work_type: v.to_owned(),
            secure: false,
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OneWorkCommand, A::Error> {
        let mut wc = WorkCommand {
            work_type: String::new(),
            secure: false,
        };
        while let Some(field) = map.next_key_seed(FieldIndex(WC_FIELDS))? {
            match field {
                Some(0) => wc.work_type = map.next_value::<Option<String>>()?.unwrap_or_default(),
                Some(1) => wc.secure = map.next_value::<Option<bool>>()?.unwrap_or_default(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(OneWorkCommand(wc))
    }
}
