//! `ip-router` (Linux): IP packets between the tun interfaces of nodes, over mesh datagrams,
//! interoperable with Go's ip-router.
//!
//! * Wire format: each datagram to the service named `networkname` is one bare IP packet (the
//!   tun device's `IFF_NO_PI` framing), sent from the same service name.
//! * Advertisement: datagram service `networkname`, tags `type: IP Router`,
//!   `network: <networkname>`, `route_local: <localnet>` and `route_<i>: <i-th of routes>`
//!   (networks as Go prints them, host bits cleared).
//! * Locally: a tun interface with address `<localnet>+1` and peer `<localnet>+2`, both /32,
//!   up. Go ignores `interface` (the kernel always picks `tunN`); here it names the interface.
//! * Routes: the networks that reachable ip-routers of the same network advertise are routed
//!   into the interface via the peer address; other routes out of it (main table, outside
//!   `localnet` and `fe80::/10`) are deleted. Go does this every 10 s; here advertisements are
//!   read every second and the kernel is set when they change, and every 10 s as in Go.
//! * A packet read from the interface goes to the cheapest node advertising a network that
//!   holds its destination; one with no such node, or that is not IPv4 or IPv6, is dropped.
//!   Every datagram received is written to the interface as it is.

mod cidr;
mod netlink;
mod tun;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use receptor_core::{Advertise, ServiceName};
use receptor_tokio::{NodeHandle, ServiceEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info};

use self::cidr::{AD_TYPE, Cidr, Route, destination, known_routes, pick};
use self::netlink::Netlink;
use self::tun::Tun;
use super::CONN_DATAGRAM;
use crate::config::IpRouterCfg;

/// How often advertisements are read for route changes.
const WATCH: Duration = Duration::from_secs(1);
/// How often the kernel's routes are set even when nothing changed (Go's period).
const RECONCILE: Duration = Duration::from_secs(10);
/// Largest packet read from the interface (Go's `NormalBufferSize`).
const PACKET: usize = 65536;

/// The parts of the configuration, checked as Go checks them.
struct Plan {
    network: String,
    local: Cidr,
    /// `<localnet>+1`, this end of the point-to-point link.
    link_ip: Ipv4Addr,
    /// `<localnet>+2`, the gateway of every route into the interface.
    peer_ip: Ipv4Addr,
    routes: Vec<Cidr>,
}

impl Plan {
    fn new(cfg: &IpRouterCfg) -> Result<Self, String> {
        let parse = |s: &str| {
            Cidr::parse(s).ok_or_else(|| format!("could not parse {s} as a CIDR address"))
        };
        let local = parse(&cfg.local_net)?;
        if local.len() != 30 {
            return Err(format!(
                "local network {} must be a /30 CIDR",
                cfg.local_net
            ));
        }
        let IpAddr::V4(base) = local.addr() else {
            return Err(format!("local network {} must be IPv4", cfg.local_net));
        };
        let base = u32::from(base);
        let routes = cfg
            .routes
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            network: cfg.network_name.clone(),
            local,
            link_ip: Ipv4Addr::from(base + 1),
            peer_ip: Ipv4Addr::from(base + 2),
            routes,
        })
    }

    /// Go's tags: `type`, `network`, `route_local`, `route_<i>`.
    fn advertise(&self) -> Advertise {
        let mut tags = BTreeMap::from([
            ("type".to_owned(), AD_TYPE.to_owned()),
            ("network".to_owned(), self.network.clone()),
            ("route_local".to_owned(), self.local.to_string()),
        ]);
        for (i, r) in self.routes.iter().enumerate() {
            tags.insert(format!("route_{i}"), r.to_string());
        }
        Advertise {
            conn_type: CONN_DATAGRAM,
            tags,
            work_commands: None,
        }
    }
}

/// Starts an `ip-router`: the interface, its address, the mesh service and the forwarding.
/// Any failure is a startup error with Go's text.
pub(super) async fn service(
    node: &NodeHandle,
    cfg: &IpRouterCfg,
) -> Result<JoinHandle<()>, String> {
    let plan = Plan::new(cfg)?;
    let name = cfg.interface.as_deref().unwrap_or_default();
    let tun = Tun::open(name).map_err(|e| format!("error opening tun device: {e}"))?;
    let index = tun
        .index()
        .map_err(|e| format!("error accessing link for tun device: {e}"))?;
    let mut nl =
        Netlink::open(index).map_err(|e| format!("error accessing link for tun device: {e}"))?;
    nl.add_peer_address(plan.link_ip, plan.peer_ip)
        .map_err(|e| format!("error adding IP address to link: {e}"))?;
    nl.set_up()
        .map_err(|e| format!("error setting link up: {e}"))?;
    let (service, rx) = node
        .listen(Some(&plan.network), Some(plan.advertise()))
        .await
        .map_err(|e| format!("error listening for service {}: {e}", plan.network))?;
    info!(
        "Running IP router on network {} with interface {} ({} peer {})",
        plan.network,
        tun.name(),
        plan.link_ip,
        plan.peer_ip
    );
    let tun = Arc::new(tun);
    let (table_tx, table) = watch::channel(Arc::new(Vec::new()));
    let watcher = watch_routes(node.clone(), plan, Arc::new(Mutex::new(nl)), table_tx);
    let out = tun_to_mesh(node.clone(), tun.clone(), service, table);
    let inn = mesh_to_tun(tun, rx);
    Ok(tokio::spawn(async move {
        tokio::join!(watcher, out, inn);
    }))
}

/// Keeps `table` (for forwarding) and the kernel's routes in line with the advertisements.
async fn watch_routes(
    node: NodeHandle,
    plan: Plan,
    nl: Arc<Mutex<Netlink>>,
    table: watch::Sender<Arc<Vec<Route>>>,
) {
    let plan = Arc::new(plan);
    let mut applied: Option<BTreeSet<Cidr>> = None;
    let mut last = Instant::now();
    loop {
        let Ok(status) = node.status().await else {
            return;
        };
        let routes = known_routes(&status, &plan.network);
        let dests: BTreeSet<Cidr> = routes.iter().map(|r| r.dest).collect();
        table.send_replace(Arc::new(routes));
        if applied.as_ref() != Some(&dests) || last.elapsed() >= RECONCILE {
            let (nl, plan, want) = (nl.clone(), plan.clone(), dests.clone());
            let done = tokio::task::spawn_blocking(move || match nl.lock() {
                Ok(mut nl) => reconcile(&mut nl, &plan, &want),
                Err(_) => error!("ip-router {}: netlink state lost", plan.network),
            });
            let _ = done.await;
            applied = Some(dests);
            last = Instant::now();
        }
        tokio::time::sleep(WATCH).await;
    }
}

/// Adds the missing routes into the interface and deletes the ones no router advertises.
fn reconcile(nl: &mut Netlink, plan: &Plan, want: &BTreeSet<Cidr>) {
    let kernel = match nl.routes() {
        Ok(r) => r,
        Err(e) => {
            error!("error retrieving kernel routes list: {e}");
            return;
        }
    };
    let list = |c: &mut dyn Iterator<Item = Cidr>| c.map(|c| c.to_string()).collect::<Vec<_>>();
    debug!(
        "ip-router {}: advertised {:?}, in the kernel {:?}",
        plan.network,
        list(&mut want.iter().copied()),
        list(&mut kernel.iter().map(|k| k.dest))
    );
    for dest in want {
        if !kernel.iter().any(|k| k.dest == *dest) {
            debug!("Adding route to {dest}");
            if let Err(e) = nl.add_route(*dest, plan.peer_ip) {
                error!("error adding kernel route to {dest}: {e}");
            }
        }
    }
    let link_local = Cidr::parse("fe80::/10");
    for k in &kernel {
        let ip = k.dest.addr();
        if plan.local.contains(ip) || link_local.is_some_and(|l| l.contains(ip)) {
            continue;
        }
        if !want.contains(&k.dest) {
            debug!("Removing route to {}", k.dest);
            if let Err(e) = nl.delete_route(k.dest) {
                error!("error deleting kernel route to {}: {e}", k.dest);
            }
        }
    }
}

/// Packets the kernel routed into the interface, to the node that takes them. Per-packet
/// failures are logged at debug level only: a busy link would flood the log.
async fn tun_to_mesh(
    node: NodeHandle,
    tun: Arc<Tun>,
    service: ServiceName,
    table: watch::Receiver<Arc<Vec<Route>>>,
) {
    let mut buf = vec![0u8; PACKET];
    loop {
        let n = match tun.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                error!("Error reading from tun device: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let packet = buf.get(..n).unwrap_or_default();
        let Some(dst) = destination(packet) else {
            debug!("ip-router: dropped a packet that is not IPv4 or IPv6");
            continue;
        };
        let to = pick(&table.borrow(), dst).cloned();
        let Some(to) = to else { continue };
        let payload = Bytes::copy_from_slice(packet);
        if let Err(e) = node.send_to(service, to.as_str(), service, payload).await {
            debug!("Error writing to Receptor network: {e}");
        }
    }
}

/// Datagrams from other routers, into the interface as they are.
async fn mesh_to_tun(tun: Arc<Tun>, mut rx: mpsc::Receiver<ServiceEvent>) {
    while let Some(event) = rx.recv().await {
        match event {
            ServiceEvent::Datagram {
                payload, from_node, ..
            } => {
                if let Err(e) = tun.write(&payload).await {
                    debug!("Error writing to tun device a packet from {from_node}: {e}");
                }
            }
            ServiceEvent::Unreachable { reporter, notice } => {
                debug!("ip-router: unreachable from {reporter}: {notice:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(local: &str, routes: &str) -> IpRouterCfg {
        IpRouterCfg {
            network_name: "net".into(),
            interface: None,
            local_net: local.into(),
            routes: routes.into(),
        }
    }

    #[test]
    fn plans_check_what_go_checks_and_advertise_its_tags() {
        let p = Plan::new(&cfg("10.200.1.1/30", "10.9.0.0/16,192.168.7.1/24")).unwrap();
        assert_eq!(
            (p.link_ip, p.peer_ip),
            ("10.200.1.1".parse().unwrap(), "10.200.1.2".parse().unwrap())
        );
        let ad = p.advertise();
        assert_eq!(ad.conn_type, 0);
        let tags: Vec<String> = ad.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            tags,
            [
                "network=net",
                "route_0=10.9.0.0/16",
                "route_1=192.168.7.0/24",
                "route_local=10.200.1.0/30",
                "type=IP Router"
            ]
        );
        let err = |l: &str, r: &str| Plan::new(&cfg(l, r)).err().unwrap_or_default();
        assert_eq!(
            err("10.0.0.0/29", ""),
            "local network 10.0.0.0/29 must be a /30 CIDR"
        );
        assert_eq!(err("fd00::/30", ""), "local network fd00::/30 must be IPv4");
        assert_eq!(
            err("10.0.0.0", ""),
            "could not parse 10.0.0.0 as a CIDR address"
        );
        assert_eq!(
            err("10.0.0.0/30", "10.1.0.0/16,x"),
            "could not parse x as a CIDR address"
        );
    }
}
