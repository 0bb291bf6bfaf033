//! `GET /`: a small HTML page with a picture of the mesh the node draws itself (SVG, no
//! script), its routes and the advertised services.
//!
//! The layout is deterministic: this node in the middle, the others on rings by their
//! number of hops from it (breadth first over the links), each ring ordered by the angle of
//! the node's parent on the ring inside and then by name, so the same mesh always gives the
//! same picture and branches stay together. Nodes no link reaches go on an outer ring.

use std::collections::{BTreeMap, VecDeque};
use std::f64::consts::TAU;
use std::fmt::Write as _;

use super::topology::{Topology, format_cost};

/// Distance between rings, in pixels.
const RING_STEP: f64 = 120.0;
/// The least room a node takes on its ring, so labels do not overlap.
const NODE_ROOM: f64 = 70.0;
const MARGIN: f64 = 70.0;
/// Above this many links, costs are left off the picture (they are in the tables and JSON).
const MAX_COST_LABELS: usize = 80;

/// Where each node goes, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Centre of each node.
    pub pos: BTreeMap<String, (f64, f64)>,
    /// Width and height of the picture.
    pub size: f64,
}

/// Hops from `this` over the links, breadth first; the parent of each node is its
/// first-named neighbour one hop nearer.
fn rings(t: &Topology) -> (Vec<Vec<String>>, BTreeMap<&str, &str>, Vec<String>) {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in &t.links {
        adj.entry(&l.a).or_default().push(&l.b);
        adj.entry(&l.b).or_default().push(&l.a);
    }
    for v in adj.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    let mut hops: BTreeMap<&str, usize> = BTreeMap::new();
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([t.this.as_str()]);
    hops.insert(&t.this, 0);
    while let Some(u) = queue.pop_front() {
        let h = hops.get(u).copied().unwrap_or(0);
        for &v in adj.get(u).into_iter().flatten() {
            if !hops.contains_key(v) {
                hops.insert(v, h + 1);
                parent.insert(v, u);
                queue.push_back(v);
            }
        }
    }
    let depth = hops.values().copied().max().unwrap_or(0);
    let mut by_ring: Vec<Vec<String>> = vec![Vec::new(); depth + 1];
    let mut unlinked = Vec::new();
    for n in &t.nodes {
        match hops.get(n.as_str()) {
            Some(&h) => {
                if let Some(r) = by_ring.get_mut(h) {
                    r.push(n.clone());
                }
            }
            None => unlinked.push(n.clone()),
        }
    }
    (by_ring, parent, unlinked)
}

/// Places `count` nodes evenly on a ring of at least `radius`, grown so each has its room.
fn ring_radius(count: usize, radius: f64) -> f64 {
    radius.max(count as f64 * NODE_ROOM / TAU)
}

/// Lays the mesh out around this node.
pub fn layout(t: &Topology) -> Layout {
    let (by_ring, parent, unlinked) = rings(t);
    let mut angle: BTreeMap<String, f64> = BTreeMap::new();
    let mut polar: Vec<(String, f64, f64)> = Vec::new();
    let mut radius = 0.0;
    for (k, ring) in by_ring.iter().enumerate() {
        if k == 0 {
            for n in ring {
                angle.insert(n.clone(), 0.0);
                polar.push((n.clone(), 0.0, 0.0));
            }
            continue;
        }
        radius = ring_radius(ring.len(), radius + RING_STEP);
        let mut order: Vec<(f64, &String)> = ring
            .iter()
            .map(|n| {
                let a = parent
                    .get(n.as_str())
                    .and_then(|p| angle.get(*p))
                    .copied()
                    .unwrap_or(0.0);
                (a, n)
            })
            .collect();
        order.sort_by(|x, y| x.0.total_cmp(&y.0).then_with(|| x.1.cmp(y.1)));
        let step = TAU / ring.len() as f64;
        // The first ring starts at the top; outer rings start beside their parents.
        let start = order.first().map_or(0.0, |(a, _)| *a) - if k == 1 { TAU / 4.0 } else { 0.0 };
        for (i, (_, n)) in order.iter().enumerate() {
            let a = start + step * i as f64;
            angle.insert((*n).clone(), a);
            polar.push(((*n).clone(), radius, a));
        }
    }
    if !unlinked.is_empty() {
        radius = ring_radius(unlinked.len(), radius + RING_STEP);
        let step = TAU / unlinked.len() as f64;
        for (i, n) in unlinked.iter().enumerate() {
            polar.push((n.clone(), radius, -TAU / 4.0 + step * i as f64));
        }
    }
    let half = radius + MARGIN;
    let pos = polar
        .into_iter()
        .map(|(n, r, a)| (n, (half + r * a.cos(), half + r * a.sin())))
        .collect();
    Layout {
        pos,
        size: 2.0 * half,
    }
}

/// Escapes text for HTML and XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The picture: links (this node's own drawn bold, costs at their middles), then nodes with
/// their names; hovering a node shows its services.
pub fn svg(t: &Topology) -> String {
    let l = layout(t);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{s:.0}\" height=\"{s:.0}\" \
         viewBox=\"0 0 {s:.0} {s:.0}\" font-family=\"sans-serif\" font-size=\"12\">",
        s = l.size
    );
    let labels = t.links.len() <= MAX_COST_LABELS;
    for link in &t.links {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (l.pos.get(&link.a), l.pos.get(&link.b)) else {
            continue;
        };
        let own = link.a == t.this || link.b == t.this;
        let half_known = link.advertised_by.len() < 2;
        let _ = writeln!(
            out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#888\" \
             stroke-width=\"{}\"{}><title>{} - {} cost {}</title></line>",
            if own { "3" } else { "1.5" },
            if half_known {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            escape(&link.a),
            escape(&link.b),
            format_cost(link.cost)
        );
        if labels {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0 - 4.0,
                format_cost(link.cost)
            );
        }
    }
    for (name, &(x, y)) in &l.pos {
        let (fill, r) = if *name == t.this {
            ("#2f6fd6", 16)
        } else if t.routes.contains_key(name) {
            ("#3a9d5d", 12)
        } else {
            ("#aaa", 12)
        };
        let services: Vec<String> = t.services_of(name).map(|s| escape(&s.service)).collect();
        let title = if services.is_empty() {
            escape(name)
        } else {
            format!("{}: {}", escape(name), services.join(", "))
        };
        let _ = writeln!(
            out,
            "<g><title>{title}</title><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" \
             fill=\"{fill}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
            y + f64::from(r) + 14.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The whole page. `counters` are name/value rows shown under the picture.
pub fn page(t: &Topology, counters: &[(&str, String)]) -> String {
    let me = escape(&t.this);
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>receptor {me}</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;\
         margin-bottom:1.5em}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}\
         </style></head><body>\n<h1>Node {me}</h1>\n<p>The mesh as {me} knows it: {} nodes, \
         {} links. Blue: this node; green: reachable; grey: no route. Dashed: a link only \
         one end advertises. Reload the page to redraw. Also: <a href=\"/metrics\">metrics</a>, \
         <a href=\"/topology.json\">topology.json</a>, <a href=\"/topology.dot\">topology.dot\
         </a>.</p>\n",
        t.nodes.len(),
        t.links.len()
    );
    out.push_str(&svg(t));
    out.push_str("<h2>Routes</h2>\n<table><tr><th>to</th><th>via</th></tr>\n");
    for (to, via) in &t.routes {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(to),
            escape(via)
        );
    }
    out.push_str(
        "</table>\n<h2>Services</h2>\n<table><tr><th>node</th><th>service</th><th>type</th>\
         <th>work types</th></tr>\n",
    );
    for s in &t.services {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.node),
            escape(&s.service),
            escape(s.kind.as_deref().unwrap_or("")),
            escape(&s.work_types.join(", "))
        );
    }
    out.push_str("</table>\n<h2>Counters</h2>\n<table>\n");
    for (name, value) in counters {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::topology::tests::line;

    #[test]
    fn this_node_sits_in_the_middle_and_rings_follow_hops() {
        let t = Topology::from_status(&line());
        let l = layout(&t);
        let c = l.size / 2.0;
        let dist = |n: &str| {
            let (x, y) = l.pos[n];
            ((x - c).powi(2) + (y - c).powi(2)).sqrt()
        };
        assert!(dist("A") < 1e-9);
        assert!((dist("B") - RING_STEP).abs() < 1e-9);
        assert!((dist("C") - 2.0 * RING_STEP).abs() < 1e-9);
        // The same mesh, the same picture.
        assert_eq!(svg(&t), svg(&Topology::from_status(&line())));
    }

    #[test]
    fn big_rings_grow_and_unlinked_nodes_go_outside() {
        let mut st = line();
        let star: Vec<String> = (0..200).map(|i| format!("n{i:03}")).collect();
        let a = receptor_core::NodeId::new("A").unwrap();
        for n in &star {
            let n = receptor_core::NodeId::new(n).unwrap();
            st.known_connection_costs
                .entry(a.clone())
                .or_default()
                .insert(n, 1.0);
        }
        st.routes.insert(
            receptor_core::NodeId::new("lonely").unwrap(),
            receptor_core::NodeId::new("B").unwrap(),
        );
        let t = Topology::from_status(&st);
        let l = layout(&t);
        let (x0, y0) = l.pos["n000"];
        let (x1, y1) = l.pos["n001"];
        assert!(((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt() > NODE_ROOM * 0.9);
        let c = l.size / 2.0;
        let r = |n: &str| ((l.pos[n].0 - c).powi(2) + (l.pos[n].1 - c).powi(2)).sqrt();
        assert!(r("lonely") > r("C"));
        assert!(
            l.pos
                .values()
                .all(|&(x, y)| x > 0.0 && y > 0.0 && x < l.size && y < l.size)
        );
    }

    #[test]
    fn page_escapes_names_and_has_no_script() {
        let mut st = line();
        st.advertisements[0].service = "<b>&".into();
        let t = Topology::from_status(&st);
        let p = page(&t, &[("x<y", "1".into())]);
        assert!(p.contains("&lt;b&gt;&amp;"), "{p}");
        assert!(p.contains("x&lt;y"));
        assert!(!p.contains("<script"));
        assert!(p.contains("<svg"));
    }
}
