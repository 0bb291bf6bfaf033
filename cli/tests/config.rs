//! Configuration parser: both syntaxes agree, defaults, exclusive commands, sample configs.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use receptor_cli::config::{Command, ErrorKind, FirewallAction, FirewallRule, LogLevel, Source};

#[test]
fn brief_example_yaml_equals_command_line() {
    let from_yaml = ok_yaml(BRIEF_EXAMPLE);
    let from_args = ok_args(&[
        "--node",
        "id=foo",
        "--log-level",
        "debug",
        "--tcp-listener",
        "port=2222",
        r#"nodecost={"bar": 2.5}"#,
        "--tcp-peer",
        "localhost:2223",
        "redial=true",
        "--control-service",
        "service=control",
        "filename=/tmp/foo.sock",
    ]);
    assert_eq!(typed(from_yaml.clone()), typed(from_args));

    let c = from_yaml;
    assert_eq!(c.node.id, "foo");
    assert!(!c.node.id_from_hostname);
    assert_eq!(c.log_level, LogLevel::Debug);
    let l = &c.tcp_listeners[0];
    assert_eq!(
        (l.bind_addr.as_str(), l.port, l.cost),
        ("0.0.0.0", 2222, 1.0)
    );
    assert_eq!(l.node_cost, BTreeMap::from([("bar".to_owned(), 2.5)]));
    assert_eq!(c.tcp_peers[0].address, "localhost:2223");
    assert!(c.tcp_peers[0].redial);
    let cs = &c.control_services[0];
    assert_eq!(cs.filename.as_deref(), Some("/tmp/foo.sock"));
    assert_eq!(cs.permissions, 0o600);
    assert!(c.config_file.is_some());
    assert_eq!(c.unsupported(), Vec::<&str>::new());
    assert!(c.has_backends());
}

#[test]
fn larger_config_yaml_equals_command_line() {
    let yaml = r#"
- node:
    id: n1
    datadir: /var/lib/receptor
    maxidleconnectiontimeout: 1m30s
    duplicateid: RefuseLink
    firewallrules:
      - action: accept
        fromnode: n2
      - {Action: Reject, ToNode: "/(?i)a.*b/"}
- local-only
- trace
- tls-server:
    name: srv
    cert: /c.pem
    key: /k.pem
    requireclientcert: yes
    pinnedclientcert: ["00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"]
- tls-client: {name: cli, cert: "", key: "", insecureskipverify: true}
- udp-listener: "3000"   # a bare int is "invalid config format" in Go
- udp-peer:
    address: h:3000
    cost: 2
    allowedpeers: [a, b]
- ws-listener:
    port: 8080
    path: /ws
    tls: srv
- ws-peer:
    address: wss://h:8080/ws
    extraheader: "X-Auth: t"
    tls: cli
    redial: false
- tcp-listener:
    port: 0
    allowedpeers: []
- control-service:
    service: ctl
    tcplisten: 11113
    tcptls: srv
    permissions: '0660'
"#;
    let from_yaml = ok_yaml(yaml);
    let from_args = ok_args(&[
        "--node",
        "n1",
        "datadir=/var/lib/receptor",
        "MaxIdleConnectionTimeout=1m30s",
        "duplicateid=refuselink",
        r#"firewallrules=[{"action":"accept","fromnode":"n2"},{"Action":"Reject","ToNode":"/(?i)a.*b/"}]"#,
        "--local-only",
        "--trace",
        "--tls-server",
        "name=srv",
        "cert=/c.pem",
        "key=/k.pem",
        "requireclientcert=YES",
        "pinnedclientcert=00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
        "--tls-client",
        "name=cli",
        "cert=",
        "key=",
        "insecureskipverify=t",
        "--UDP-listener",
        "3000",
        "--udp-peer",
        "address=h:3000",
        "cost=2",
        "allowedpeers=a",
        "allowedpeers=b",
        "--ws-listener",
        "port=8080",
        "path=/ws",
        "tls=srv",
        "--ws-peer",
        "wss://h:8080/ws",
        "extraheader=X-Auth: t",
        "tls=cli",
        "redial=false",
        "--tcp-listener",
        "port=0",
        "allowedpeers=[]",
        "--control-service",
        "service=ctl",
        "tcplisten=11113",
        "tcptls=srv",
        "permissions=0660",
    ]);
    assert_eq!(typed(from_yaml.clone()), typed(from_args));

    let c = from_yaml;
    assert_eq!(c.node.data_dir, "/var/lib/receptor");
    assert_eq!(
        c.node.max_idle_connection_timeout,
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        c.node.on_duplicate,
        receptor_core::DuplicatePolicy::RefuseLink
    );
    assert_eq!(
        c.node.firewall_rules,
        [
            FirewallRule {
                action: FirewallAction::Accept,
                from_node: Some("n2".into()),
                to_node: None,
                from_service: None,
                to_service: None,
            },
            FirewallRule {
                action: FirewallAction::Reject,
                from_node: None,
                to_node: Some("/(?i)a.*b/".into()),
                from_service: None,
                to_service: None,
            },
        ]
    );
    assert!(c.local_only && c.trace);
    assert!(c.tls_servers[0].require_client_cert);
    assert_eq!(c.tls_servers[0].pinned_client_cert[0].len(), 32);
    assert_eq!(
        (
            c.tls_clients[0].cert.as_ref(),
            c.tls_clients[0].key.as_ref()
        ),
        (None, None)
    );
    assert_eq!(c.udp_listeners[0].port, 3000);
    assert_eq!(c.udp_peers[0].cost, 2.0);
    assert_eq!(
        c.udp_peers[0].allowed_peers,
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(c.ws_listeners[0].path, "/ws");
    assert_eq!(c.ws_listeners[0].listener.tls.as_deref(), Some("srv"));
    assert_eq!(c.ws_peers[0].extra_header.as_deref(), Some("X-Auth: t"));
    assert!(!c.ws_peers[0].peer.redial);
    // `allowedpeers: []` admits nobody, unlike an absent list (Go's nil-vs-empty slice).
    assert_eq!(c.tcp_listeners[0].allowed_peers, Some(vec![]));
    assert_eq!(c.udp_listeners[0].allowed_peers, None);
    let cs = &c.control_services[0];
    assert_eq!(
        (cs.tcp_listen.as_deref(), cs.permissions),
        (Some("11113"), 0o660)
    );
}

#[test]
fn defaults_of_implemented_entities() {
    let c = ok_args(&[
        "--tcp-listener",
        "1",
        "--tcp-peer",
        "h:1",
        "--udp-listener",
        "2",
        "--udp-peer",
        "h:2",
        "--ws-listener",
        "3",
        "--ws-peer",
        "ws://h:3",
        "--control-service",
        "--tls-server",
        "name=s",
        "cert=c",
        "key=k",
        "--tls-client",
        "name=c",
        "cert=c",
        "key=k",
    ]);
    // Implicit node: id from the host name, default data dir, no rules, default idle timeout.
    assert_eq!(c.node.id, "testhost");
    assert!(c.node.id_from_hostname);
    assert_eq!(c.node.data_dir, "/tmp/receptor");
    assert!(c.node.firewall_rules.is_empty());
    assert_eq!(c.node.max_idle_connection_timeout, None);
    assert_eq!(c.node.on_duplicate, receptor_core::DuplicatePolicy::Exit);
    assert_eq!(c.entities.last(), Some(&("node", Source::Implicit)));
    assert_eq!(c.log_level, LogLevel::Info);
    assert!(!c.local_only && !c.trace);
    for l in c
        .tcp_listeners
        .iter()
        .chain(&c.udp_listeners)
        .chain(c.ws_listeners.iter().map(|w| &w.listener))
    {
        assert_eq!(l.bind_addr, "0.0.0.0");
        assert_eq!(l.cost, 1.0);
        assert!(l.node_cost.is_empty());
        assert_eq!(l.allowed_peers, None);
        assert_eq!(l.tls, None);
    }
    assert_eq!(c.ws_listeners[0].path, "/");
    for p in c
        .tcp_peers
        .iter()
        .chain(&c.udp_peers)
        .chain(c.ws_peers.iter().map(|w| &w.peer))
    {
        assert!(p.redial);
        assert_eq!(p.cost, 1.0);
        assert_eq!(p.allowed_peers, None);
        assert_eq!(p.tls, None);
    }
    assert_eq!(c.ws_peers[0].extra_header, None);
    let cs = &c.control_services[0];
    assert_eq!(cs.service, "control");
    assert_eq!(cs.permissions, 0o600);
    assert_eq!(
        (&cs.filename, &cs.tls, &cs.tcp_listen, &cs.tcp_tls),
        (&None, &None, &None, &None)
    );
    let s = &c.tls_servers[0];
    assert!(!s.require_client_cert && !s.skip_receptor_names_check && !s.min_tls13);
    assert!(s.pinned_client_cert.is_empty() && s.client_cas.is_none());
    let t = &c.tls_clients[0];
    assert!(!t.insecure_skip_verify && !t.skip_receptor_names_check && !t.min_tls13);
    assert_eq!(
        (t.cert.as_deref(), t.key.as_deref(), t.root_cas.as_deref()),
        (Some("c"), Some("k"), None)
    );
}

#[test]
fn log_level_forms() {
    assert_eq!(ok_args(&["--log-level"]).log_level, LogLevel::Error);
    assert_eq!(
        ok_args(&["--log-level", "Warning"]).log_level,
        LogLevel::Warning
    );
    assert_eq!(
        ok_args(&["--log-level", "level=INFO"]).log_level,
        LogLevel::Info
    );
    assert_eq!(ok_yaml("- log-level:\n").log_level, LogLevel::Error);
    assert_eq!(
        ok_yaml("- log-level: {level: debug}").log_level,
        LogLevel::Debug
    );
    assert_eq!(
        err_args(&["--log-level", "loud"]),
        "loud is not a valid log level name"
    );
}

#[test]
fn defaults_of_entities_not_supported_yet() {
    let c = ok_yaml(
        "- work-command: {workType: w, command: c}
- work-kubernetes: {worktype: k}
- tcp-server: {port: 1, remotenode: n, remoteservice: s}
- udp-server: {port: 2, remotenode: n, remoteservice: s}
- unix-socket-server: {filename: /s, remotenode: n, remoteservice: s}
- work-signing: /key.pem
- work-python: {worktype: p, plugin: m, function: f, config: {a: 1}}
",
    );
    let w = &c.work_commands[0];
    assert_eq!((w.work_type.as_str(), w.params.as_str()), ("w", ""));
    assert!(!w.allow_runtime_params && !w.verify_signature);
    let k = &c.work_kubernetes[0];
    assert_eq!(
        (k.auth_method.as_str(), k.stream_method.as_str()),
        ("incluster", "logger")
    );
    assert!(k.delete_pod_on_restart && !k.allow_runtime_pod && !k.verify_signature);
    assert_eq!(c.tcp_servers[0].bind_addr, "0.0.0.0");
    assert_eq!(c.udp_servers[0].bind_addr, "0.0.0.0");
    assert_eq!(c.unix_socket_servers[0].permissions, 0o600);
    let signing = c
        .work_signing
        .as_ref()
        .map(|s| (s.private_key.as_str(), s.token_expiration));
    assert_eq!(signing, Some(("/key.pem", None)));
    assert_eq!(c.unsupported(), ["work-kubernetes", "work-python"]);
    let refused = c.check_supported().map_err(|e| (e.kind(), e.to_string()));
    assert_eq!(
        refused,
        Err((
            ErrorKind::NotSupported,
            "work-kubernetes: not supported yet".to_owned()
        ))
    );
}

#[test]
fn exclusive_commands() {
    assert_eq!(parser().parse_args(["--version"]), Ok(Command::Version));
    assert_eq!(parser().parse_args(["-VERSION"]), Ok(Command::Version));
    assert_eq!(parser().parse_args(Vec::<String>::new()), Ok(Command::Help));
    assert_eq!(parser().parse_args(["--node", "-h"]), Ok(Command::Help));
    assert_eq!(
        parser().parse_args(["--bash-completion"]),
        Ok(Command::BashCompletion)
    );
    assert_eq!(
        err_args(&["--version", "--node", "id=a"]),
        "cannot specify any other options with version"
    );
    assert_eq!(
        err_args(&[
            "--local-only",
            "--cert-init",
            "commonname=x",
            "bits=2048",
            "outcert=a",
            "outkey=b"
        ]),
        "cannot specify any other options with cert-init"
    );
    let cmd = parser().parse_args([
        "--cert-makereq",
        "bits=2048",
        "commonname=foo test cert",
        "dnsname=localhost",
        "dnsname=foo",
        "nodeid=foo",
        "outreq=foo.csr",
        "outkey=foo.key",
    ]);
    let Ok(Command::CertMakeReq(req)) = &cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(req.dns_name, ["localhost", "foo"]);
    assert_eq!((req.bits, req.in_key.as_deref()), (2048, None));
    assert!(cmd.as_ref().is_ok_and(|c| c.check_supported().is_ok()));
    let sign = parser().parse_args([
        "--cert-signreq",
        "req=r",
        "cacert=c",
        "cakey=k",
        "outcert=o",
    ]);
    assert!(matches!(sign, Ok(Command::CertSignReq(s)) if !s.verify));
}

#[test]
fn yaml_scalars_follow_yaml_v2() {
    let c = ok_yaml(
        "- node: {id: yes}
- control-service: {permissions: 0660, tcplisten: 2.5}
- tcp-peer: {address: h, redial: off}
",
    );
    // yaml.v2 reads `yes` as a bool, which Go prints into the string field.
    assert_eq!(c.node.id, "true");
    assert_eq!(c.control_services[0].permissions, 0o660);
    assert_eq!(
        c.control_services[0].tcp_listen.as_deref(),
        Some("2.500000")
    );
    assert!(!c.tcp_peers[0].redial);
}

#[test]
fn parse_yaml_without_files() {
    let c = parser().parse_yaml(BRIEF_EXAMPLE).map(typed);
    assert_eq!(c, Ok(typed(ok_yaml(BRIEF_EXAMPLE))));
    let e = parser().parse_yaml("- version").map_err(|e| e.kind());
    assert_eq!(e, Err(ErrorKind::Exclusive));
}

/// Sample configs from the Go tree (receptorctl tests, examples, reload tests).
#[test]
fn sample_configs_from_go() {
    let mesh1_node1 = "---
- node:
    id: node1

- tcp-listener:
    port: 11111

- control-service:
    filename: /tmp/receptorctltest/mesh1/node1.sock

- tcp-server:
    port: 11112
    remotenode: localhost
    remoteservice: control

- tls-server:
    name: tlsserver
    key: /tmp/receptorctltest/mesh1/server.key
    cert: /tmp/receptorctltest/mesh1/server.crt
    requireclientcert: true
    clientcas: /tmp/receptorctltest/mesh1/ca.crt

- control-service:
    service: ctltls
    tcplisten: 11113
    tcptls: tlsserver
...
";
    let c = ok_yaml(mesh1_node1);
    assert_eq!(c.control_services.len(), 2);
    assert_eq!(c.control_services[1].tcp_tls.as_deref(), Some("tlsserver"));
    assert_eq!(c.tcp_servers[0].remote_node, "localhost");
    assert!(c.unsupported().is_empty());

    let access_control_node2 = "---
- node:
    id: node2

- log-level: debug

- tcp-peer:
    address: localhost:12111

- tcp-listener:
    port: 12121

- control-service:
    filename: /tmp/receptorctltest/access_control/node2.sock
...
";
    let c = ok_yaml(access_control_node2);
    assert_eq!(
        (c.node.id.as_str(), c.log_level),
        ("node2", LogLevel::Debug)
    );

    let arceus = "---
- node:
    id: arceus

- tcp-listener:
    port: 2223

- work-command:
    worktype: echo
    command: echo
    params: arceus
    allowruntimeparams: true
";
    let c = ok_yaml(arceus);
    assert!(c.work_commands[0].allow_runtime_params);

    // Go's own reload fixture puts `allowedpeers` on the node; the real parser refuses it.
    let reload_init = "---
- node:
    id: foo
    allowedpeers: bar

- log-level: Info
- trace
";
    assert_eq!(
        err_yaml(reload_init),
        "error loading config file: field allowedpeers not defined for command node: unknown field name allowedpeers"
    );
}
