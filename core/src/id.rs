//! Identifiers: node IDs, service names, link IDs and the name hash.

use std::fmt;
use std::sync::Arc;

use highway::{HighwayHash, HighwayHasher, Key};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidId {
    /// Node IDs and bound service names must not be empty.
    #[error("name must not be empty")]
    Empty,
    /// `localhost` (any case) is reserved: it maps to the local node.
    #[error("node ID {0:?} is reserved")]
    Reserved(String),
    /// Service names are at most 8 bytes on the wire.
    #[error("service name {0:?} is longer than 8 bytes")]
    TooLong(String),
    /// Node IDs are at most [`MAX_NODE_ID_LEN`] bytes.
    #[error("node ID is {0} bytes long, more than {MAX_NODE_ID_LEN}")]
    NodeIdTooLong(usize),
    /// NUL bytes would be stripped as padding on the wire.
    #[error("name {0:?} contains a NUL byte")]
    Nul(String),
}

/// The longest node ID accepted, in bytes, from configuration and from the network alike.
///
/// Go sets no bound. Node IDs are host names or short labels (a DNS name is at most 253
/// bytes); a longer one in a routing update is treated as any invalid ID: the update is
/// dropped, or the name left out of its connections, and a peer announcing one in its
/// handshake is rejected. Without a bound, every node of the mesh would hold, forward and
/// hash whatever a peer chose to call a node, up to a whole 64 KiB message per name.
pub const MAX_NODE_ID_LEN: usize = 255;

/// The ID of a node in the mesh: a non-empty UTF-8 string of at most [`MAX_NODE_ID_LEN`]
/// bytes, cheap to clone.
///
/// Compares, orders and hashes as its string.
#[derive(Clone)]
pub struct NodeId(Repr);

/// IDs up to this long are kept inline.
const SHORT: usize = 22;

/// Short IDs (most are) live inline: a node keeps every other node's ID several times
/// over (routing database, table, indexes), and inline ones clone without touching a
/// shared reference count or another allocation.
#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the ID (checked UTF-8); the rest is zero.
    Short {
        len: u8,
        bytes: [u8; SHORT],
    },
    Long(Arc<str>),
}

impl NodeId {
    /// Validates a node ID for local use (configuration, commands).
    ///
    /// `localhost` is refused: Go maps it to the local node before hashing.
    pub fn new(id: &str) -> Result<Self, InvalidId> {
        if id.eq_ignore_ascii_case("localhost") {
            return Err(InvalidId::Reserved(id.to_owned()));
        }
        Self::from_wire(id)
    }

    /// Accepts a node ID that arrived from the network: only emptiness, NUL and length over
    /// [`MAX_NODE_ID_LEN`] are refused.
    pub fn from_wire(id: &str) -> Result<Self, InvalidId> {
        if id.is_empty() {
            return Err(InvalidId::Empty);
        }
        if id.len() > MAX_NODE_ID_LEN {
            return Err(InvalidId::NodeIdTooLong(id.len()));
        }
        if id.contains('\0') {
            return Err(InvalidId::Nul(id.to_owned()));
        }
        let mut bytes = [0u8; SHORT];
        match bytes.get_mut(..id.len()) {
            Some(dst) => {
                dst.copy_from_slice(id.as_bytes());
                Ok(Self(Repr::Short {
                    len: id.len() as u8,
                    bytes,
                }))
            }
            None => Ok(Self(Repr::Long(Arc::from(id)))),
        }
    }

    /// The ID as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Checked UTF-8 when made, so this never falls back.
            Repr::Short { len, bytes } => bytes
                .get(..*len as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Repr::Long(s) => s,
        }
    }

    /// The HighwayHash-64 of this ID, as carried in data message headers.
    pub fn hash(&self) -> u64 {
        name_hash(self.as_str())
    }
}

impl NodeId {
    /// The bytes of the ID, without the UTF-8 check `as_str` makes for inline IDs: what
    /// comparisons use (byte order is `str` order).
    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Short { len, bytes } => bytes.get(..*len as usize).unwrap_or_default(),
            Repr::Long(s) => s.as_bytes(),
        }
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for NodeId {}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// HighwayHash-64 with a 32-byte zero key over the UTF-8 bytes of `name` (netceptor.md §3.2).
pub fn name_hash(name: &str) -> u64 {
    HighwayHasher::new(Key([0; 4])).hash64(name.as_bytes())
}

/// A service name: at most 8 bytes, stored NUL-padded exactly as on the wire. `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceName {
    bytes: [u8; 8],
}

impl ServiceName {
    /// The reserved ping responder service.
    pub const PING: Self = Self {
        bytes: *b"ping\0\0\0\0",
    };
    /// The reserved unreachable-notice service.
    pub const UNREACH: Self = Self {
        bytes: *b"unreach\0",
    };

    /// Validates a service name for binding or sending: 1 to 8 bytes, no NUL.
    pub fn new(name: &str) -> Result<Self, InvalidId> {
        if name.is_empty() {
            return Err(InvalidId::Empty);
        }
        if name.len() > 8 {
            return Err(InvalidId::TooLong(name.to_owned()));
        }
        if name.contains('\0') {
            return Err(InvalidId::Nul(name.to_owned()));
        }
        let mut bytes = [0u8; 8];
        if let Some(dst) = bytes.get_mut(..name.len()) {
            dst.copy_from_slice(name.as_bytes());
        }
        Ok(Self { bytes })
    }

    /// Builds a name from the 8 raw header bytes (trailing NULs are padding).
    pub fn from_wire(bytes: [u8; 8]) -> Self {
        Self { bytes }
    }

    /// The 8 NUL-padded bytes as they go on the wire.
    pub fn wire_bytes(&self) -> [u8; 8] {
        self.bytes
    }

    /// The name without its padding.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self
            .bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |p| p + 1);
        self.bytes.get(..len).unwrap_or_default()
    }

    /// The name as text (invalid UTF-8 from the wire is replaced).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// Whether the name is reserved (`ping`, `unreach`) and cannot be bound.
    pub fn is_reserved(&self) -> bool {
        *self == Self::PING || *self == Self::UNREACH
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_string_lossy(), f)
    }
}

/// A node and a service on it: the address of a datagram endpoint.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Addr {
    /// The node.
    pub node: NodeId,
    /// The service on that node.
    pub service: ServiceName,
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.service)
    }
}

/// A backend session (one TCP/WS connection or one UDP peer), allocated by the runtime.
///
/// Runtimes allocate these from a counter and never reuse them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LinkId(pub u64);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline and shared IDs behave as their strings, around the inline limit too.
    #[test]
    fn short_and_long_ids_act_as_strings() {
        use std::collections::BTreeSet;
        use std::hash::{BuildHasher, RandomState};
        let names = [
            "a",
            "é-ü",
            &"x".repeat(SHORT),
            &"x".repeat(SHORT + 1),
            &"y".repeat(40),
        ];
        let ids: Vec<NodeId> = names.iter().map(|n| NodeId::new(n).unwrap()).collect();
        let h = RandomState::new();
        for (n, id) in names.iter().zip(&ids) {
            assert_eq!(id.as_str(), *n);
            assert_eq!(id.clone(), *id);
            assert_eq!(h.hash_one(id), h.hash_one(*n));
            assert_eq!(id.hash(), name_hash(n));
            assert_eq!(format!("{id}"), *n);
        }
        let by_id: Vec<&str> = ids
            .iter()
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|i| i.as_str())
            .collect();
        let by_str: Vec<&str> = names
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(by_id, by_str);
        assert_ne!(ids[2], ids[3]);
    }

    /// netceptor.md §10.1.
    #[test]
    fn name_hash_vectors() {
        let cases: &[(&str, u64)] = &[
            ("", 0x7035da75b9d54469),
            ("foo", 0xef7a78b67f92bdf7),
            ("bar", 0x14ef88ca522894d1),
            ("fish", 0xc5d363d31fa4c961),
            ("node1", 0x61052d2b582eb15e),
            ("node2", 0x51bcc6e14eb3fee1),
            ("controller", 0xbac03aa9a8a96ddc),
            ("hop", 0x8667f24b53be4848),
            ("execution", 0x5521d8e95de72e88),
            ("localhost", 0x99c4380a442ae062),
            ("receptor-node-with-a-long-name", 0xe38260b5d696f4c7),
            (
                "a-node-id-that-is-longer-than-32-bytes-x",
                0xc766c6627bafe332,
            ),
            ("A", 0x2ca5969f27d057fd),
            ("B", 0x6cc29299673d18eb),
            ("gonode", 0xfc9393bd9ab34eba),
            ("py", 0x79f9deb91716ea30),
        ];
        for (name, want) in cases {
            assert_eq!(name_hash(name), *want, "{name}");
        }
    }

    #[test]
    fn service_names() {
        assert_eq!(ServiceName::new("ping").unwrap(), ServiceName::PING);
        assert!(ServiceName::new("123456789").is_err());
        assert!(ServiceName::new("").is_err());
        let s = ServiceName::new("12345678").unwrap();
        assert_eq!(s.as_bytes(), b"12345678");
        assert_eq!(ServiceName::from_wire(*b"ab\0\0\0\0\0\0").as_bytes(), b"ab");
        assert!(NodeId::new("LocalHost").is_err());
        assert!(NodeId::from_wire("").is_err());
        let longest = "n".repeat(MAX_NODE_ID_LEN);
        assert_eq!(NodeId::from_wire(&longest).unwrap().as_str(), longest);
        assert_eq!(
            NodeId::new(&format!("{longest}x")),
            Err(InvalidId::NodeIdTooLong(MAX_NODE_ID_LEN + 1))
        );
    }
}
