//! The names a certificate is for (Go's `CertNames`): DNS names, IP addresses and Receptor node
//! IDs, in a subjectAltName in that order.

use std::net::IpAddr;

use rcgen::{Ia5String, SanType};
use receptor_tokio::tls::{RECEPTOR_NODE_ID_OID_ARCS, node_ids_in_san};
use x509_parser::extensions::{GeneralName, SubjectAlternativeName};
use x509_parser::prelude::FromDer;

use super::CertError;

/// DNS names, IP addresses and node IDs of a certificate or request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Names {
    /// `dNSName` entries.
    pub(super) dns: Vec<String>,
    /// `iPAddress` entries (IPv4-mapped IPv6 addresses as IPv4, as Go's `To4`).
    pub(super) ips: Vec<IpAddr>,
    /// Receptor node IDs (otherName 1.3.6.1.4.1.2312.19.1).
    pub(super) node_ids: Vec<String>,
}

impl Names {
    /// The names `cert-makereq` was given; an `ipaddress` that does not parse is an error.
    pub(super) fn from_args(
        dns: &[String],
        ips: &[String],
        node_ids: &[String],
    ) -> Result<Self, CertError> {
        let ips = ips
            .iter()
            .map(|s| {
                s.parse::<IpAddr>()
                    .map(|ip| ip.to_canonical())
                    .map_err(|_| CertError::IpAddress(s.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            dns: dns.to_vec(),
            ips,
            node_ids: node_ids.to_vec(),
        })
    }

    /// Reads the value of a subjectAltName extension (as a request carries it).
    pub(super) fn from_san(value: &[u8]) -> Result<Self, CertError> {
        let bad = |reason: String| CertError::Parse {
            what: "x509: malformed subjectAltName",
            reason,
        };
        let (_, san) = SubjectAlternativeName::from_der(value).map_err(|e| bad(e.to_string()))?;
        let mut names = Self {
            node_ids: node_ids_in_san(value).map_err(|e| bad(e.to_string()))?,
            ..Self::default()
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(dns) => names.dns.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                        _ => None,
                    };
                    let ip = ip.ok_or_else(|| bad(format!("invalid IP length {}", bytes.len())))?;
                    names.ips.push(ip.to_canonical());
                }
                _ => {}
            }
        }
        Ok(names)
    }

    /// No name at all: `cert-signreq` refuses such a request.
    pub(super) fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty() && self.node_ids.is_empty()
    }

    /// The names as rcgen subjectAltName entries, in Go's order.
    pub(super) fn san_types(&self) -> Result<Vec<SanType>, CertError> {
        let mut out = Vec::with_capacity(self.dns.len() + self.ips.len() + self.node_ids.len());
        for dns in &self.dns {
            let ia5 =
                Ia5String::try_from(dns.as_str()).map_err(|_| CertError::DnsName(dns.clone()))?;
            out.push(SanType::DnsName(ia5));
        }
        out.extend(self.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        out.extend(self.node_ids.iter().map(|id| {
            SanType::OtherName((RECEPTOR_NODE_ID_OID_ARCS.to_vec(), id.as_str().into()))
        }));
        Ok(out)
    }

    /// The `Names:` lines of `cert-signreq`'s prompt.
    pub(super) fn describe(&self) -> String {
        let mut out = String::new();
        for dns in &self.dns {
            out.push_str(&format!("    DNS Name: {dns}\n"));
        }
        for ip in &self.ips {
            out.push_str(&format!("    IP Address: {ip}\n"));
        }
        for id in &self.node_ids {
            out.push_str(&format!("    Receptor Node ID: {id}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_parse_like_go() {
        let n = Names::from_args(
            &strings(&["localhost"]),
            &strings(&["127.0.0.1", "::ffff:10.0.0.1", "fe80::1"]),
            &strings(&["node1"]),
        )
        .unwrap();
        assert_eq!(n.ips[1], "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            n.describe(),
            "    DNS Name: localhost\n    IP Address: 127.0.0.1\n    IP Address: 10.0.0.1\n    \
             IP Address: fe80::1\n    Receptor Node ID: node1\n"
        );
        let err = Names::from_args(&[], &strings(&["1.2.3"]), &[]).unwrap_err();
        assert_eq!(err.to_string(), "invalid IP address: 1.2.3");
        assert!(Names::default().is_empty());
    }
}
