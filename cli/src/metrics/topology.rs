//! The mesh as this node knows it (`GET /topology.json`, `GET /topology.dot`): nodes, the
//! links between them with their costs, this node's routes and the advertised services.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use receptor_core::MeshStatus;
use serde_json::{Value, json};

/// A link between two nodes, as the nodes at its ends advertise it.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The end whose name sorts first.
    pub a: String,
    /// The other end.
    pub b: String,
    /// The cost `a` advertises, else the cost `b` does.
    pub cost: f64,
    /// Which ends list the link (both, once their routing updates have spread).
    pub advertised_by: Vec<String>,
}

/// A service some node advertises.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The node offering it.
    pub node: String,
    /// The service name.
    pub service: String,
    /// Its `type` tag (`Control Service`, ...), if any.
    pub kind: Option<String>,
    /// Go's connection type: 0 datagram, 1 stream, 2 stream with TLS.
    pub conn_type: u8,
    /// Work types offered there.
    pub work_types: Vec<String>,
}

/// A snapshot of the mesh from one node's point of view.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// This node.
    pub this: String,
    /// Every node known, by name.
    pub nodes: BTreeSet<String>,
    /// Links, each once, ordered by their ends.
    pub links: Vec<Link>,
    /// Destination -> first hop.
    pub routes: BTreeMap<String, String>,
    /// Advertised services, ordered by node and service.
    pub services: Vec<Service>,
}

impl Topology {
    /// Builds the picture from a node's status.
    pub fn from_status(st: &MeshStatus) -> Self {
        let mut nodes = BTreeSet::new();
        nodes.insert(st.node_id.as_str().to_owned());
        let mut links: BTreeMap<(String, String), Link> = BTreeMap::new();
        for (from, peers) in &st.known_connection_costs {
            nodes.insert(from.as_str().to_owned());
            for (to, &cost) in peers {
                nodes.insert(to.as_str().to_owned());
                let (a, b) = if from <= to { (from, to) } else { (to, from) };
                let key = (a.as_str().to_owned(), b.as_str().to_owned());
                let link = links.entry(key).or_insert_with(|| Link {
                    a: a.as_str().to_owned(),
                    b: b.as_str().to_owned(),
                    cost,
                    advertised_by: Vec::new(),
                });
                if from == a {
                    link.cost = cost;
                }
                link.advertised_by.push(from.as_str().to_owned());
            }
        }
        for l in links.values_mut() {
            l.advertised_by.sort();
        }
        let routes: BTreeMap<String, String> = st
            .routes
            .iter()
            .map(|(d, h)| (d.as_str().to_owned(), h.as_str().to_owned()))
            .collect();
        nodes.extend(routes.keys().cloned());
        let mut services: Vec<Service> = st
            .advertisements
            .iter()
            .map(|ad| Service {
                node: ad.node_id.clone(),
                service: ad.service.clone(),
                kind: ad.tags.as_ref().and_then(|t| t.get("type").cloned()),
                conn_type: ad.conn_type,
                work_types: ad
                    .work_commands
                    .iter()
                    .flatten()
                    .map(|w| w.work_type.clone())
                    .collect(),
            })
            .collect();
        services.sort_by(|x, y| (&x.node, &x.service).cmp(&(&y.node, &y.service)));
        nodes.extend(services.iter().map(|s| s.node.clone()));
        Self {
            this: st.node_id.as_str().to_owned(),
            nodes,
            links: links.into_values().collect(),
            routes,
            services,
        }
    }

    /// The services a node offers.
    pub fn services_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services.iter().filter(move |s| s.node == node)
    }

    /// `GET /topology.json`.
    pub fn to_json(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "id": n,
                    "this": *n == self.this,
                    "reachable": *n == self.this || self.routes.contains_key(n),
                    "services": self.services_of(n).map(|s| s.service.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let links: Vec<Value> = self
            .links
            .iter()
            .map(|l| json!({"a": l.a, "b": l.b, "cost": l.cost, "advertised_by": l.advertised_by}))
            .collect();
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                json!({
                    "node": s.node,
                    "service": s.service,
                    "type": s.kind,
                    "conn_type": s.conn_type,
                    "work_types": s.work_types,
                })
            })
            .collect();
        json!({
            "node": self.this,
            "nodes": nodes,
            "links": links,
            "routes": self.routes,
            "services": services,
        })
    }

    /// `GET /topology.dot`: a Graphviz graph, this node drawn double, links labelled with
    /// their cost.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("graph mesh {\n  node [shape=ellipse];\n");
        for n in &self.nodes {
            let shape = if *n == self.this {
                " [shape=doublecircle]"
            } else if self.routes.contains_key(n) {
                ""
            } else {
                " [style=dashed]"
            };
            let _ = writeln!(out, "  {}{shape};", dot_id(n));
        }
        for l in &self.links {
            let _ = writeln!(
                out,
                "  {} -- {} [label=\"{}\"];",
                dot_id(&l.a),
                dot_id(&l.b),
                format_cost(l.cost)
            );
        }
        out.push_str("}\n");
        out
    }
}

/// A cost as Go's status prints it (`1.00`), shorter when whole (`1`).
pub fn format_cost(cost: f64) -> String {
    if cost.fract() == 0.0 && cost.abs() < 1e15 {
        format!("{cost:.0}")
    } else {
        format!("{cost:.2}")
    }
}

/// A DOT quoted identifier.
fn dot_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use receptor_core::NodeId;
    use receptor_core::wire::{ServiceAdvert, WorkCommand};

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// A -- B -- C, seen from A, with C's advert not in yet and B offering `echo`.
    pub(crate) fn line() -> MeshStatus {
        let costs = |peers: &[(&str, f64)]| peers.iter().map(|(n, c)| (id(n), *c)).collect();
        MeshStatus {
            node_id: id("A"),
            connections: costs(&[("B", 1.0)]),
            routes: [(id("B"), id("B")), (id("C"), id("B"))].into(),
            path_costs: costs(&[("B", 1.0), ("C", 3.5)]),
            known_connection_costs: [
                (id("A"), costs(&[("B", 1.0)])),
                (id("B"), costs(&[("A", 1.0), ("C", 2.5)])),
            ]
            .into(),
            advertisements: vec![ServiceAdvert {
                node_id: "B".into(),
                service: "control".into(),
                conn_type: 1,
                tags: Some([("type".to_owned(), "Control Service".to_owned())].into()),
                work_commands: Some(vec![WorkCommand {
                    work_type: "echo".into(),
                    secure: false,
                }]),
                ..ServiceAdvert::default()
            }],
        }
    }

    #[test]
    fn links_are_listed_once_with_who_advertises_them() {
        let t = Topology::from_status(&line());
        assert_eq!(t.nodes.iter().collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(t.links.len(), 2);
        assert_eq!((t.links[0].a.as_str(), t.links[0].b.as_str()), ("A", "B"));
        assert_eq!(t.links[0].advertised_by, ["A", "B"]);
        assert_eq!(
            (t.links[1].cost, t.links[1].advertised_by.clone()),
            (2.5, vec!["B".to_owned()])
        );
        let j = t.to_json();
        assert_eq!(j["node"], "A");
        assert_eq!(j["routes"]["C"], "B");
        assert_eq!(j["services"][0]["work_types"][0], "echo");
        assert_eq!(j["nodes"][1]["services"][0], "control");
    }

    #[test]
    fn dot_quotes_names_and_labels_costs() {
        let dot = Topology::from_status(&line()).to_dot();
        assert!(dot.starts_with("graph mesh {"), "{dot}");
        assert!(dot.contains("\"A\" [shape=doublecircle];"), "{dot}");
        assert!(dot.contains("\"B\" -- \"C\" [label=\"2.50\"];"), "{dot}");
        assert!(dot.contains("\"A\" -- \"B\" [label=\"1\"];"), "{dot}");
        assert_eq!(dot_id("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
