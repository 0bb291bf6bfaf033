//! `ip-router` end to end: two nodes in network namespaces of their own, linked by a veth
//! pair that carries only the mesh; a ping between their tun addresses crosses the mesh.
//!
//! Needs root, iproute2 and /dev/net/tun; without them the test says why and passes.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// An ICMP echo to `argv[1]` on a raw socket; exit 0 on the matching reply within 1 s.
const PING: &str = r#"
import os, socket, struct, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1)
ident = os.getpid() & 0xffff
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff
body = b'receptor-ip-router'
c = csum(struct.pack('!BBHHH', 8, 0, 0, ident, 1) + body)
s.sendto(struct.pack('!BBHHH', 8, 0, c, ident, 1) + body, (dst, 0))
end = time.time() + 1
while time.time() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        break
    h = (data[0] & 15) * 4
    kind, _, _, i, _ = struct.unpack('!BBHHH', data[h:h + 8])
    if kind == 0 and i == ident and addr[0] == dst:
        sys.exit(0)
sys.exit(1)
"#;

/// Network namespaces, deleted (with their interfaces) on drop.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two namespaces joined by a veth pair (10.99.0.1/24 and 10.99.0.2/24), or why not.
fn namespaces() -> Result<Namespaces, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("no /dev/net/tun".into());
    }
    let id = std::process::id();
    let (a, b) = (format!("rcpt{id}a"), format!("rcpt{id}b"));
    let mut ns = Namespaces(Vec::new());
    for n in [&a, &b] {
        ip(&["netns", "add", n])?;
        ns.0.push(n.clone());
    }
    ip(&[
        "link", "add", "va", "netns", &a, "type", "veth", "peer", "name", "vb", "netns", &b,
    ])?;
    for (n, dev, addr) in [(&a, "va", "10.99.0.1/24"), (&b, "vb", "10.99.0.2/24")] {
        ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
        ip(&["-n", n, "link", "set", dev, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
    }
    // A tun device can be made in these namespaces (a container may forbid it).
    let probe = format!("rcpt{id}t");
    ip(&["-n", &a, "tuntap", "add", "dev", &probe, "mode", "tun"])?;
    ip(&["-n", &a, "tuntap", "del", "dev", &probe, "mode", "tun"])?;
    Ok(ns)
}

/// Starts `receptor -c <dir>/<name>.yml` inside namespace `ns`.
fn start_in(ns: &str, dir: &TempDir, name: &str, yaml: &str) -> Proc {
    let cfg = dir.path(&format!("{name}.yml"));
    std::fs::write(&cfg, yaml).unwrap();
    // `ip netns exec` execs the program: the PID is receptor's.
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(receptor_bin())
        .arg("-c")
        .arg(&cfg);
    spawn_logged(dir, name, cmd)
}

fn pings(ns: &str, dst: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", PING, dst])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn routes(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "route"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_ping_crosses_the_mesh_between_two_namespaces() {
    let ns = match namespaces() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED ip-router test: cannot make namespaces with a tun device: {why}");
            return;
        }
    };
    let (na, nb) = (ns.0[0].clone(), ns.0[1].clone());
    let dir = TempDir::new("iprouter");
    let node = |id: &str| {
        format!(
            "---\n- node:\n    id: {id}\n    datadir: {}\n- log-level: debug\n",
            dir.path("data").display()
        )
    };
    let a_yaml = node("A")
        + "- tcp-listener:\n    bindaddr: 10.99.0.1\n    port: 7000\n\
           - ip-router:\n    networkname: ipnet\n    localnet: 10.200.1.0/30\n    routes: 10.50.0.0/16\n";
    let b_yaml = node("B")
        + "- tcp-peer:\n    address: 10.99.0.1:7000\n\
           - ip-router:\n    networkname: ipnet\n    interface: meshtun\n    localnet: 10.200.2.1/30\n";
    let a = start_in(&na, &dir, "A", &a_yaml);
    let b = start_in(&nb, &dir, "B", &b_yaml);
    let logs = || format!("A:\n{}\nB:\n{}", a.log_text(), b.log_text());
    let until = |what: &str, cond: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    until("routes to each other's network", &|| {
        routes(&na).contains("10.200.2.0/30 via 10.200.1.2 dev tun")
            && routes(&nb).contains("10.200.1.0/30 via 10.200.2.2 dev meshtun")
    });
    // A's extra advertised network is routed into B's interface too.
    assert!(
        routes(&nb).contains("10.50.0.0/16 via 10.200.2.2 dev meshtun"),
        "{}\n{}",
        routes(&nb),
        logs()
    );
    // The veth carries only 10.99.0.0/24: these echoes go through the tun devices and the mesh.
    until("a ping from A's namespace to B's tun address", &|| {
        pings(&na, "10.200.2.1")
    });
    assert!(pings(&nb, "10.200.1.1"), "{}", logs());
    drop((a, b));
}
