//! Version 2 configs (`receptor --config-v2 --config FILE`): the examples of Go's user guide
//! (basic usage, connecting nodes, TLS, firewall, workceptor), written in the same shape with our
//! own ports and paths, parse to the same config as their version 1 equivalents and run; a
//! `version: 2` file needs no flag; a file of the other format gets a one-line error; `reload`
//! works on a version 2 file.

mod common;
mod support;

use std::time::Duration;

use common::{ok_args, ok_yaml, temp_yaml, typed};
use support::*;

/// Parses a version 2 text with the flag and checks it equals the version 1 text.
fn same_as_v1(v2: &str, v1: &str) {
    let path = temp_yaml(v2);
    let p = path.to_string_lossy().into_owned();
    let with_flag = typed(ok_args(&["--config-v2", "--config", &p]));
    assert_eq!(with_flag, typed(ok_yaml(v1)), "{v2}");
    if v2.contains("version: 2") {
        assert_eq!(typed(ok_args(&["--config", &p])), with_flag, "{v2}");
    }
    let _ = std::fs::remove_file(&path);
}

const BASIC: &str = "---\nversion: 2\nnode:\n  id: foo\n\nlocal-only:\n  local: true\n\nlog-level:\n  level: Debug\n";

fn foo_listener(port: u16) -> String {
    format!(
        "---\nversion: 2\nnode:\n  id: foo\n\nlog-level:\n  level: Debug\n\ntcp-listeners:\n  - port: {port}\n"
    )
}

fn peer(id: &str, port: u16) -> String {
    format!(
        "---\nversion: 2\nnode:\n  id: {id}\n\nlog-level:\n  level: Debug\n\ntcp-peers:\n  - address: localhost:{port}\n"
    )
}

const FIREWALL_RULES: &str = "    - action: \"accept\"\n    - action: \"drop\"\n      fromnode: \"foo\"\n      tonode: \"bar\"\n      toservice: \"control\"\n    - action: \"reject\"\n      fromnode: \"/a.*b/\"\n    - action: \"reject\"\n      tonode: \"/(?i)a.*b/\"\n";

fn workceptor_foo(port: u16, sock: &str) -> String {
    format!(
        "---\nversion: 2\nnode:\n  id: foo\n\nlog-level:\n  level: Debug\n\ntcp-listeners:\n  - port: {port}\n\n\
         control-services:\n  - service: control\n    filename: {sock}\n\n\
         work-commands:\n  - workType: echoint\n    command: bash\n    params:  \"-c \\\"for i in {{1..5}}; do echo $i; sleep 0.1; done\\\"\"\n"
    )
}

fn workceptor_bar(port: u16) -> String {
    format!(
        "---\nversion: 2\nnode:\n  id: bar\n\nlog-level:\n  level: Debug\n\ntcp-peer:\n  address: localhost:{port}\n\n\
         control-services:\n  - service: control\n\n\
         work-commands:\n  - worktype: echoint\n    command: bash\n    params:  \"-c \\\"for i in {{1..10}}; do echo $i; sleep 0.1; done\\\"\"\n  \
         - workType: echopayload\n    command: bash\n    params: \"-c \\\"while read -r line; do echo ${{line^^}}; sleep 0.1; done\\\"\"\n"
    )
}

#[test]
fn user_guide_examples_parse_as_their_version_1_equivalents() {
    same_as_v1(
        BASIC,
        "- node: {id: foo}\n- local-only: {local: true}\n- log-level: {level: Debug}\n",
    );
    same_as_v1(
        &foo_listener(2222),
        "- node: {id: foo}\n- log-level: {level: Debug}\n- tcp-listener: {port: 2222}\n",
    );
    same_as_v1(
        &peer("bar", 2222),
        "- node: {id: bar}\n- log-level: {level: Debug}\n- tcp-peer: {address: 'localhost:2222'}\n",
    );
    same_as_v1(
        "version: 2\ntcp-listeners:\n  - port: 2222\n    cost: 1.0\n    nodecost:\n      bar: 1.6\n      fish: 2.0\n",
        "- tcp-listener: {port: 2222, cost: 1.0, nodecost: {bar: 1.6, fish: 2.0}}\n",
    );
    same_as_v1(
        "---\nversion: 2\nnode:\n  id: foo\n\ntls-servers:\n  - name: myserver\n    cert: /full/path/foo.crt\n    \
         key: /full/path/foo.key\n    requireclientcert: true\n    clientcas: /full/path/ca.crt\n    pinnedclientcert:\n      \
         - E6:9B:98:A7:A5:DB:17:D6:E4:2C:DE:76:45:42:A8:79:A3:0A:C5:6D:10:42:7A:6A:C4:54:57:83:F1:0F:E2:95\n    \
         skipreceptornamescheck: true\n\ntls-clients:\n  - name: myclient\n    rootcas: /full/path/ca.crt\n    \
         insecureskipverify: false\n    cert: /full/path/bar.crt\n    key: /full/path/bar.key\n    skipreceptornamescheck: true\n\n\
         tcp-peers:\n  - address: localhost:2222\n    tls: myclient\n",
        "- node: {id: foo}\n- tls-server: {name: myserver, cert: /full/path/foo.crt, key: /full/path/foo.key, \
         requireclientcert: true, clientcas: /full/path/ca.crt, pinnedclientcert: \
         ['E6:9B:98:A7:A5:DB:17:D6:E4:2C:DE:76:45:42:A8:79:A3:0A:C5:6D:10:42:7A:6A:C4:54:57:83:F1:0F:E2:95'], \
         skipreceptornamescheck: true}\n- tls-client: {name: myclient, rootcas: /full/path/ca.crt, \
         insecureskipverify: false, cert: /full/path/bar.crt, key: /full/path/bar.key, skipreceptornamescheck: true}\n\
         - tcp-peer: {address: 'localhost:2222', tls: myclient}\n",
    );
    same_as_v1(
        &format!("node:\n  id: foo\n  firewallrules:\n{FIREWALL_RULES}local-only:\n"),
        "- node: {id: foo, firewallrules: [{action: accept}, {action: drop, fromnode: foo, tonode: bar, \
         toservice: control}, {action: reject, fromnode: '/a.*b/'}, {action: reject, tonode: '/(?i)a.*b/'}]}\n\
         - local-only\n",
    );
    same_as_v1(
        &workceptor_bar(2222),
        "- node: {id: bar}\n- log-level: {level: Debug}\n- tcp-peer: {address: 'localhost:2222'}\n\
         - control-service: {service: control}\n\
         - work-command: {worktype: echoint, command: bash, params: '-c \"for i in {1..10}; do echo $i; sleep 0.1; done\"'}\n\
         - work-command: {worktype: echopayload, command: bash, params: '-c \"while read -r line; do echo ${line^^}; sleep 0.1; done\"'}\n",
    );
}

#[test]
fn the_other_format_gets_a_one_line_error() {
    let dir = TempDir::new("v2-errors");
    let v1 = dir.path("v1.yml");
    std::fs::write(&v1, "- node: {id: a}\n- local-only\n").unwrap();
    let v2 = dir.path("v2.yml");
    std::fs::write(&v2, "node: {id: a}\nlocal-only:\n").unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(receptor_bin())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let out = stdout(&o);
        assert_eq!(out.lines().count(), 1, "{out}");
        out
    };
    let out = run(&["--config-v2", "--config", v1.to_str().unwrap()]);
    assert!(
        out.contains("--config-v2 expects a version 2 config"),
        "{out}"
    );
    assert!(out.contains("version 1 list"), "{out}");
    let out = run(&["--config", v2.to_str().unwrap()]);
    assert!(
        out.contains("put version: 2 at its top or run with --config-v2"),
        "{out}"
    );
}

/// Starts `receptor --config-v2 --config <name>.yml`, with extra command-line entities.
fn start_v2(dir: &TempDir, name: &str, yaml: &str, extra: &[&str]) -> Proc {
    let cfg = dir.path(&format!("{name}.yml"));
    std::fs::write(&cfg, yaml).unwrap();
    let mut args = vec!["--config-v2", "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    start_args(dir, name, &args)
}

#[test]
fn connecting_nodes_and_basic_usage_examples_run() {
    let dir = TempDir::new("v2-connect");
    let port = free_port();
    let sock = |n: &str| dir.path(&format!("{n}.sock")).display().to_string();
    let ctl = |n: &str| format!("filename={}", sock(n));
    let basic = start_v2(&dir, "basic", BASIC, &["--control-service", &ctl("basic")]);
    let foo = start_v2(
        &dir,
        "foo",
        &foo_listener(port),
        &["--control-service", &ctl("foo")],
    );
    let bar = start_v2(
        &dir,
        "bar",
        &peer("bar", port),
        &["--control-service", &ctl("bar")],
    );
    let fish = start_v2(
        &dir,
        "fish",
        &peer("fish", port),
        &["--control-service", &ctl("fish")],
    );
    for n in ["basic", "foo", "bar", "fish"] {
        wait_for_path(&dir.path(&format!("{n}.sock")), Duration::from_secs(10));
    }
    eventually(
        Duration::from_secs(20),
        "bar to route to fish via foo",
        || status_json(&dir.path("bar.sock"))["RoutingTable"]["fish"] == "foo",
    );
    let basic_status = status_json(&dir.path("basic.sock"));
    assert_eq!(basic_status["NodeID"], "foo", "{basic_status}");
    assert!(
        basic.log_text().contains("Initialization complete"),
        "{}",
        basic.log_text()
    );
    drop((basic, foo, bar, fish));
}

#[test]
fn tls_example_runs_on_certificates_from_our_commands() {
    let dir = TempDir::new("v2-tls");
    let p = |n: &str| dir.path(n).display().to_string();
    let run = |args: &[String]| {
        let o = std::process::Command::new(receptor_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stdout(&o));
    };
    // The guide's makecerts.sh.
    run(&[
        "--cert-init".into(),
        "commonname=test CA".into(),
        "bits=2048".into(),
        format!("outcert={}", p("ca.crt")),
        format!("outkey={}", p("ca.key")),
    ]);
    for node in ["foo", "bar"] {
        run(&[
            "--cert-makereq".into(),
            "bits=2048".into(),
            format!("commonname={node} test cert"),
            "dnsname=localhost".into(),
            format!("nodeid={node}"),
            format!("outreq={}", p(&format!("{node}.csr"))),
            format!("outkey={}", p(&format!("{node}.key"))),
        ]);
        run(&[
            "--cert-signreq".into(),
            format!("req={}", p(&format!("{node}.csr"))),
            format!("cacert={}", p("ca.crt")),
            format!("cakey={}", p("ca.key")),
            format!("outcert={}", p(&format!("{node}.crt"))),
            "verify=yes".into(),
        ]);
    }
    // bar's certificate pinned on foo, as in the guide's pinned-certificate example.
    let bar_pem = std::fs::read_to_string(dir.path("bar.crt")).unwrap();
    let bar_der = pem::parse(&bar_pem).unwrap().into_contents();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bar_der);
    let fingerprint: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    let port = free_port();
    let foo = format!(
        "---\nversion: 2\nnode:\n  id: foo\n\nlog-level:\n  level: Debug\n\ntls-servers:\n  - name: myserver\n    \
         cert: {}\n    key: {}\n    requireclientcert: true\n    clientcas: {}\n    pinnedclientcert:\n      - {}\n\n\
         tcp-listeners:\n  - port: {port}\n    tls: myserver\n",
        p("foo.crt"),
        p("foo.key"),
        p("ca.crt"),
        fingerprint.join(":")
    );
    let bar = format!(
        "---\nversion: 2\nnode:\n  id: bar\n\nlog-level:\n  level: Debug\n\ntls-clients:\n  - name: myclient\n    \
         rootcas: {}\n    insecureskipverify: false\n    cert: {}\n    key: {}\n\ntcp-peers:\n  - address: localhost:{port}\n    tls: myclient\n",
        p("ca.crt"),
        p("bar.crt"),
        p("bar.key")
    );
    let ctl = |n: &str| format!("filename={}", p(&format!("{n}.sock")));
    let foo = start_v2(&dir, "foo", &foo, &["--control-service", &ctl("foo")]);
    let bar = start_v2(&dir, "bar", &bar, &["--control-service", &ctl("bar")]);
    let bar_sock = dir.path("bar.sock");
    wait_for_path(&bar_sock, Duration::from_secs(10));
    eventually(Duration::from_secs(20), "bar to reach foo over TLS", || {
        status_json(&bar_sock)["RoutingTable"]["foo"] == "foo"
    });
    drop((foo, bar));
}

#[test]
fn workceptor_example_runs_remote_work_and_reloads() {
    let dir = TempDir::new("v2-work");
    let port = free_port();
    let foo_sock = dir.path("foo.sock");
    // Our own data directory under the node's id, the rest as in the guide.
    let with_data = |yaml: String, n: &str| {
        yaml.replace(
            &format!("  id: {n}\n"),
            &format!("  id: {n}\n  datadir: {}\n", dir.path("data").display()),
        )
    };
    let firewall = format!(
        "---\nversion: 2\nnode:\n  id: fish\n  firewallrules:\n{FIREWALL_RULES}\ntcp-peers:\n  - address: localhost:{port}\n"
    );
    let foo_yaml = |port| with_data(workceptor_foo(port, &foo_sock.display().to_string()), "foo");
    let foo = start_v2(&dir, "foo", &foo_yaml(port), &[]);
    let bar = start_v2(&dir, "bar", &with_data(workceptor_bar(port), "bar"), &[]);
    let fish = start_v2(&dir, "fish", &with_data(firewall, "fish"), &[]);
    wait_for_path(&foo_sock, Duration::from_secs(10));
    eventually(
        Duration::from_secs(20),
        "foo to see bar's work types",
        || {
            let s = status_json(&foo_sock);
            s["Advertisements"].as_array().is_some_and(|ads| {
                ads.iter().any(|a| {
                    a["NodeID"] == "bar"
                        && a["WorkCommands"]
                            .as_array()
                            .is_some_and(|w| w.iter().any(|c| c["WorkType"] == "echopayload"))
                })
            }) && s["RoutingTable"]["fish"] == "fish"
        },
    );
    let o = receptorctl(
        &foo_sock,
        &[
            "work",
            "submit",
            "echopayload",
            "--node",
            "bar",
            "--payload-literal",
            "hi\ni am foo",
            "-f",
        ],
    );
    assert_eq!(stdout(&o), "HI\nI AM FOO\n", "{}", stderr(&o));
    // reload: a backend may change, a work command may not.
    let foo_cfg = dir.path("foo.yml");
    let moved = free_port();
    std::fs::write(&foo_cfg, foo_yaml(moved)).unwrap();
    let o = receptorctl(&foo_sock, &["reload"]);
    assert!(
        stdout(&o).contains("Reload successful"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let changed = foo_yaml(moved).replace("echoint", "echoint2");
    std::fs::write(&foo_cfg, changed).unwrap();
    let o = receptorctl(&foo_sock, &["reload"]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        text.contains("a non-reloadable config action 'work-command' was modified or added"),
        "{text}"
    );
    drop((foo, bar, fish));
}

#[test]
fn certificate_keys_run_before_the_node_as_in_go() {
    let dir = TempDir::new("v2-certs");
    let p = |n: &str| dir.path(n).display().to_string();
    let cfg = dir.path("certs.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 2\ncert-init:\n  commonname: test CA\n  bits: 2048\n  outcert: {}\n  outkey: {}\n\
             cert-makereqs:\n  - commonname: foo\n    bits: 2048\n    nodeid: [foo]\n    outreq: {}\n    outkey: {}\n\
             cert-signreqs:\n  - req: {}\n    cacert: {}\n    cakey: {}\n    outcert: {}\n    verify: true\n",
            p("ca.crt"),
            p("ca.key"),
            p("foo.csr"),
            p("foo.key"),
            p("foo.csr"),
            p("ca.crt"),
            p("ca.key"),
            p("foo.crt"),
        ),
    )
    .unwrap();
    let o = std::process::Command::new(receptor_bin())
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(stdout(&o), "empty receptor config, skipping...\n");
    let crt = std::fs::read_to_string(dir.path("foo.crt")).unwrap();
    let der = pem::parse(&crt).unwrap().into_contents();
    assert_eq!(
        receptor_tokio::tls::node_ids_in_cert(&der).unwrap(),
        ["foo"]
    );
}
