//! Mesh streams that cannot open fail fast and say why: a firewall on the way that rejects
//! or drops the packets (`connect` and remote work), and TLS mismatches, reported on the
//! dialing side and logged on the refusing node. Real processes: A -tcp- B -tcp- C.

mod support;

use std::time::{Duration, Instant};

use support::certs::Ca;
use support::*;

/// A -tcp- B -tcp- C with `rules` as B's firewall and `extra` added to A's and C's YAML.
struct Mesh {
    dir: TempDir,
    a: Proc,
    _b: Proc,
    c: Proc,
}

impl Mesh {
    fn start(dir: TempDir, b_rules: &str, a_extra: &str, c_extra: &str) -> Self {
        let c_extra = format!("- work-command:\n    worktype: echo\n    command: cat\n{c_extra}");
        let [a, b, c] = line_mesh_yaml(&dir, free_port(), a_extra, "", &c_extra);
        let b = b.replace("    id: B\n", &format!("    id: B\n{b_rules}"));
        let b = start_yaml(&dir, "B", &b);
        let a = start_yaml(&dir, "A", &a);
        let c = start_yaml(&dir, "C", &c);
        let m = Self { dir, a, _b: b, c };
        for n in ["A", "B", "C"] {
            wait_for_path(&m.sock(n), Duration::from_secs(5));
        }
        eventually(Duration::from_secs(15), "A to have a route to C", || {
            status_json(&m.sock("A"))["RoutingTable"]["C"].is_string()
        });
        m
    }

    fn sock(&self, n: &str) -> std::path::PathBuf {
        self.dir.path(&format!("{n}.sock"))
    }

    /// `connect NODE SERVICE [TLS]` on A's control socket: the reply line and how long it took.
    fn connect(&self, args: &str) -> (String, Duration) {
        let mut c = RawControl::new(&self.sock("A"));
        let start = Instant::now();
        let reply = c.line(&format!("connect {args}"));
        (reply, start.elapsed())
    }

    /// Waits for `text` in a node's log.
    fn wait_log(&self, p: &Proc, text: &str) {
        eventually(
            Duration::from_secs(5),
            &format!("{text:?} in {}'s log", p.name),
            || p.log_text().contains(text),
        );
    }
}

/// B's firewall with one rule on traffic from A to C.
fn a_to_c(action: &str) -> String {
    format!(
        "    firewallrules:\n      - action: {action}\n        fromnode: A\n        tonode: C\n"
    )
}

#[test]
fn a_firewall_reject_fails_connect_and_remote_work_at_once() {
    let m = Mesh::start(TempDir::new("ff-reject"), &a_to_c("reject"), "", "");
    let (reply, took) = m.connect("C control");
    assert_eq!(reply, "ERROR: blocked by firewall (reported by node B)\n");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let start = Instant::now();
    let (id, result) = work_submit(
        &m.sock("A"),
        &["--node", "C", "echo", "--payload-literal", "x"],
    );
    assert_eq!(result, "Job Submitted");
    let st = unit_status(&m.sock("A"), &id);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(st["State"], 3, "{st}");
    assert_eq!(
        st["Detail"],
        "Cannot reach remote node C: blocked by firewall (reported by node B)"
    );
    m.wait_log(&m.a, "mesh stream to C:control failed: blocked by firewall");
}

#[test]
fn a_firewall_drop_fails_within_the_handshake_timeout() {
    let m = Mesh::start(TempDir::new("ff-drop"), &a_to_c("drop"), "", "");
    let sock = m.sock("A");
    let submit = std::thread::spawn(move || {
        work_submit(&sock, &["--node", "C", "echo", "--payload-literal", "x"])
    });
    let (reply, took) = m.connect("C control");
    let why = "handshake timeout: no answer within 15s (the node is down, or a firewall drops the packets)";
    assert_eq!(reply, format!("ERROR: {why}\n"));
    assert!(
        took >= Duration::from_secs(14) && took < Duration::from_secs(25),
        "took {took:?}"
    );

    // The submit answers after the first silent handshake; the unit fails on the second in
    // a row (a node that has just come back may not know a route to us for one silence).
    let (id, result) = submit.join().unwrap();
    assert_eq!(result, "Job Submitted");
    let a = m.sock("A");
    eventually(Duration::from_secs(25), "the unit to fail", || {
        unit_status(&a, &id)["State"] == 3
    });
    let st = unit_status(&a, &id);
    assert_eq!(st["Detail"], format!("Cannot reach remote node C: {why}"));
}

#[test]
fn tls_mismatches_fail_at_once_and_are_logged_on_both_ends() {
    let dir = TempDir::new("ff-tls");
    let ca = Ca::new("mesh CA");
    let ca_file = ca.write(&dir, "ca.crt");
    let other_ca = Ca::new("another CA").write(&dir, "other.crt");
    let (a_crt, a_key) = ca.issue(&dir, "A", &["A"]);
    let (c_crt, c_key) = ca.issue(&dir, "C", &["C"]);
    let (x_crt, x_key) = ca.issue(&dir, "X", &["X"]);
    let a_extra = format!(
        "- tls-client:\n    name: good\n    cert: {a_crt}\n    key: {a_key}\n    rootcas: {ca_file}\n\
         - tls-client:\n    name: wrongca\n    cert: {a_crt}\n    key: {a_key}\n    rootcas: {other_ca}\n\
         - tls-client:\n    name: asx\n    cert: {x_crt}\n    key: {x_key}\n    rootcas: {ca_file}\n    skipreceptornamescheck: true\n"
    );
    let c_extra = format!(
        "- tls-server:\n    name: srv\n    cert: {c_crt}\n    key: {c_key}\n    clientcas: {ca_file}\n    requireclientcert: true\n\
         - tls-server:\n    name: srvx\n    cert: {x_crt}\n    key: {x_key}\n    clientcas: {ca_file}\n    requireclientcert: true\n    skipreceptornamescheck: true\n\
         - control-service:\n    service: ctls\n    tls: srv\n\
         - control-service:\n    service: cx\n    tls: srvx\n"
    );
    let m = Mesh::start(dir, "", &a_extra, &c_extra);

    // (connect arguments, what A's reply says, what C's log says after "to service S: ")
    let cases = [
        // A plain client to a service that requires TLS.
        (
            "C ctls",
            "TLS handshake failed: invalid peer certificate: Other(OtherError(insecure connection to secure service))",
            "ctls: TLS handshake refused by the peer: invalid peer certificate: Other(OtherError(insecure connection to secure service))",
        ),
        // A TLS client to a plain service.
        (
            "C control good",
            "TLS handshake failed: invalid peer certificate: Other(OtherError(the service does not use TLS (it presented the insecure mode's self-signed certificate)))",
            "control: TLS handshake refused by the peer: invalid peer certificate: Other(OtherError(the service does not use TLS",
        ),
        // C's certificate from a CA A does not trust.
        (
            "C ctls wrongca",
            "TLS handshake failed: invalid peer certificate: UnknownIssuer",
            "ctls: TLS handshake refused by the peer: invalid peer certificate: UnknownIssuer",
        ),
        // C's certificate names another node.
        (
            "C cx good",
            "TLS handshake failed: invalid peer certificate: Other(OtherError(x509: certificate is valid for Receptor node ID X, not C))",
            "cx: TLS handshake refused by the peer: invalid peer certificate: Other(OtherError(x509: certificate is valid for Receptor node ID X, not C))",
        ),
        // A's certificate names another node: C refuses it after A finished its handshake.
        (
            "C ctls asx",
            "TLS handshake refused by the peer: invalid peer certificate: Other(OtherError(x509: certificate is valid for Receptor node ID X, not A))",
            "ctls: TLS handshake failed: invalid peer certificate: Other(OtherError(x509: certificate is valid for Receptor node ID X, not A))",
        ),
    ];
    for (args, client, server) in cases {
        let (reply, took) = m.connect(args);
        assert_eq!(reply, format!("ERROR: {client}\n"), "connect {args}");
        assert!(
            took < Duration::from_secs(5),
            "connect {args} took {took:?}"
        );
        let service = args.split(' ').nth(1).unwrap();
        m.wait_log(
            &m.a,
            &format!("mesh stream to C:{service} failed: {client}"),
        );
        m.wait_log(&m.c, "refused a mesh stream from A:");
        m.wait_log(&m.c, &format!("to service {server}"));
    }

    // The right certificates still connect.
    let mut c = RawControl::new(&m.sock("A"));
    assert_eq!(c.line("connect C ctls good"), "Connecting\n");
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut c.r, &mut greeting).unwrap();
    assert_eq!(greeting, "Receptor Control, node C\n");
}
