//! Configuration parser: every error path, with Go's wording, and the binary's exit codes.

mod common;

use std::time::Duration;

use common::*;
use receptor_cli::config::{Command, Parser, Source};

#[test]
fn parse_errors_name_entity_parameter_and_value() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "command error: unknown config type bogus"),
        (&["port=1"], "parameter specified before command"),
        (
            &["--tcp-listener"],
            "error in --tcp-listener: required parameter missing: port",
        ),
        (
            &["--tcp-listener", "port=1", "colour=red"],
            "config error: unknown field name colour for command --tcp-listener",
        ),
        (
            &["--tcp-listener", "port=http"],
            "error setting config value for field port in command --tcp-listener: strconv.ParseInt: parsing \"http\": invalid syntax",
        ),
        (
            &["--tcp-peer", "h:1", "redial=maybe"],
            "error setting config value for field redial in command --tcp-peer: could not parse maybe as boolean",
        ),
        (
            &["--tcp-peer", "h:1", "cost=cheap"],
            "error setting config value for field cost in command --tcp-peer: strconv.ParseFloat: parsing \"cheap\": invalid syntax",
        ),
        (
            &["--tcp-listener", "port=1", "nodecost={\"a\":\"x\"}"],
            "error setting config value for field nodecost in command --tcp-listener: invalid value x: must be type float64",
        ),
        (
            &["--tcp-listener", "port=70000"],
            "error in --tcp-listener: port value 70000 is out of range",
        ),
        (
            &["--node", "a", "--node", "b"],
            "directive \"node\" is only allowed once",
        ),
        (
            &["--trace", "--trace"],
            "directive \"trace\" is only allowed once",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(err_args(args), *want, "{args:?}");
    }
}

#[test]
fn yaml_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "- Node: {id: a}",
            "error loading config file: could not get config type for command Node: unknown config type Node",
        ),
        (
            "- node: {id: a, colour: red}",
            "error loading config file: field colour not defined for command node: unknown field name colour",
        ),
        (
            "- tcp-listener: {port: http}",
            "error loading config file: error setting field port in command tcp-listener: strconv.ParseInt: parsing \"http\": invalid syntax",
        ),
        (
            "- tcp-listener: {bindaddr: x}",
            "error loading config file: error in tcp-listener: required parameter missing: port",
        ),
        (
            "- tcp-listener: 2222",
            "error loading config file: invalid config format for tcp-listener",
        ),
        (
            "- tcp-peer: {address: h, redial: 1}",
            "error loading config file: error setting field redial in command tcp-peer: type error (expected bool, got 1)",
        ),
        (
            "- node: {id: ~}",
            "error loading config file: error setting field id in command node: value cannot be nil",
        ),
        (
            "- trace: x",
            "error loading config file: could not get barevalue for command trace: command does not allow bare values",
        ),
        (
            "- {node: {}, trace: }",
            "error loading config file: config format invalid: item has multiple names",
        ),
        (
            "- 5",
            "error loading config file: unknown config file format",
        ),
        (
            "- node: a\n- node: b",
            "error loading config file: only one node directive is allowed",
        ),
        (
            "node: {id: a}",
            "error loading config file: this file is a YAML mapping, but a version 1 config is a \
             list of entities (- node: ...): for the version 2 format put version: 2 at its top or \
             run with --config-v2",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(err_yaml(yaml), *want, "{yaml}");
    }
    assert!(err_yaml("- node: [").starts_with("error loading config file: yaml: line"));
    let missing = err_args(&["--config", "/nonexistent/receptor.yml"]);
    assert_eq!(
        missing,
        "error loading config file: open /nonexistent/receptor.yml: no such file or directory"
    );
}

#[test]
fn singletons_across_file_and_command_line() {
    let path = temp_yaml("- node: {id: a}\n");
    let p = path.to_string_lossy().into_owned();
    assert_eq!(
        err_args(&["-c", &p, "--node", "id=b"]),
        "directive \"node\" is only allowed once"
    );
    assert_eq!(
        err_args(&["--node", "id=b", "-c", &p]),
        "error loading config file: only one node directive is allowed"
    );
    let c = ok_args(&["-c", &p, "--tcp-listener", "1"]);
    assert_eq!(c.config_file.as_deref(), Some(p.as_str()));
    assert_eq!(c.entities[0], ("node", Source::File(p.clone())));
    assert_eq!(c.entities[1], ("tcp-listener", Source::CommandLine));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn startup_checks_use_go_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--tcp-listener", "1", "cost=-1"],
            "connection cost must be positive",
        ),
        (
            &["--tcp-listener", "1", "cost=0"],
            "connection cost must be positive",
        ),
        (
            &["--tcp-peer", "h:1", "cost=NaN"],
            "connection cost must be positive",
        ),
        (
            &["--udp-peer", "h:1", "cost=0"],
            "connection cost must be positive",
        ),
        (
            &["--ws-listener", "1", r#"nodecost={"a": 1, "b": 0}"#],
            "connection cost must be positive for b",
        ),
        (
            &["--node", "id=LocalHost"],
            "node ID \"localhost\" is reserved",
        ),
        (
            &["--node", "maxidleconnectiontimeout=10s"],
            "user defined maxIdleConnectionTimeout [10000000000] is less than the default default timeout [21000000000]",
        ),
        (
            &["--node", "maxidleconnectiontimeout=soon"],
            "failed to parse MaxIdleConnectionTimeout from configuration file -- valid examples include '1.5h', '30m', '30m10s'",
        ),
        (
            &["--node", "duplicateid=ignore"],
            "invalid duplicateid \"ignore\": must be exit or refuselink",
        ),
        (
            &["--node", r#"firewallrules=[{"action":"allow"}]"#],
            "error in rule 0: unknown action: allow",
        ),
        (
            &[
                "--node",
                r#"firewallrules=[{"action":"drop"},{"action":"drop","from":"x"}]"#,
            ],
            "error in rule 1: invalid filewall rule. unknown key: from",
        ),
        (
            &["--node", r#"firewallrules=[{"action":"drop","tonode":1}]"#],
            "error in rule 0: invalid firewall rule. tonode must be a string",
        ),
        // Go drops an invalid regex from the rule without a word (so the rule fires on every
        // message); we refuse it. The same parse runs on reload.
        (
            &[
                "--node",
                r#"firewallrules=[{"action":"reject","fromnode":"/unterminated"}]"#,
            ],
            "error in rule 0: fromnode: regex not enclosed in //: /unterminated",
        ),
        (
            &[
                "--node",
                r#"firewallrules=[{"action":"drop","ToNode":"/a(b/"}]"#,
            ],
            "error in rule 0: tonode: regex failed to compile: /a(b/: error: unclosed group",
        ),
        (
            &["--tcp-listener", "1", "tls=nope"],
            "unknown TLS config nope",
        ),
        (
            &["--tcp-peer", "h:1", "tls=nope"],
            "unknown TLS config nope",
        ),
        (
            &["--control-service", "tls=nope"],
            "unknown TLS config nope",
        ),
        (
            &["--control-service", "tcplisten=1", "tcptls=nope"],
            "unknown TLS config nope",
        ),
        (
            &[
                "--tls-server",
                "name=s",
                "cert=c",
                "key=k",
                "pinnedclientcert=abcd",
            ],
            "error preparing tls server config: error decoding fingerprints: fingerprints must be 32 or 64 bytes for sha256 or sha512",
        ),
        (
            &[
                "--tls-client",
                "name=c",
                "cert=c",
                "key=",
                "pinnedservercert=zz",
            ],
            "error preparing tls client config: cert and key must both be supplied or neither",
        ),
        (
            &["--ws-peer", "ws://h/", "extraheader=nocolon"],
            "extra header must be in the form key:value",
        ),
        (
            &["--ws-peer", "ws://h/%zz"],
            "address ws://h/%zz is not a valid URL: parse \"ws://h/%zz\": invalid URL escape",
        ),
        (
            &[
                "--work-command",
                "worktype=w",
                "command=c",
                "verifysignature=true",
            ],
            "VerifySignature for work command 'w' is true, but the work verification public key is not specified",
        ),
        (
            &[
                "--work-command",
                "worktype=w",
                "command=c",
                "--work-kubernetes",
                "worktype=w",
            ],
            "work type w already registered",
        ),
        (
            &["--work-command", "worktype=remote", "command=c"],
            "work type remote already registered",
        ),
        (
            &["--work-signing", "k.pem", "tokenexpiration=3 hours"],
            "failed to parse TokenExpiration -- valid examples include '1.5h', '30m', '30m10s'",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(err_args(args), *want, "{args:?}");
    }
    // Init-phase errors (node) win over Prepare-phase ones (cost) wherever they appear.
    assert_eq!(
        err_args(&["--tcp-listener", "1", "cost=-1", "--node", "id=localhost"]),
        "node ID \"localhost\" is reserved"
    );
    // A TLS config defined after its user is fine: all Prepare runs before any Run.
    let c = ok_args(&[
        "--tcp-listener",
        "1",
        "tls=s",
        "--tls-server",
        "name=s",
        "cert=c",
        "key=k",
    ]);
    assert_eq!(c.tcp_listeners[0].tls.as_deref(), Some("s"));
    let c = ok_args(&["--work-signing", "k.pem", "tokenexpiration=1.5h"]);
    let expiry = c.work_signing.and_then(|s| s.token_expiration);
    assert_eq!(expiry, Some(Duration::from_secs(5400)));
}

#[test]
fn hostname_defaults() {
    let localhost = Parser::new().with_hostname("localhost.localdomain");
    let e = localhost.parse_args(["--local-only"]).map(|_| ());
    assert_eq!(
        e.map_err(|e| e.to_string()),
        Err("no node ID specified and local host name is localhost".to_owned())
    );
    assert!(
        localhost
            .parse_args(["--node", "id=x", "--local-only"])
            .is_ok()
    );
    // The real host name is read without the HOSTNAME variable.
    let real = Parser::new().parse_args(["--local-only"]);
    if let Ok(Command::Run(c)) = real {
        assert!(!c.node.id.is_empty() && c.node.id_from_hostname);
    }
}

#[test]
fn go_functional_test_costs_are_accepted() {
    for cost in ["1", "1.5", "1.0", "0.2", "52", "23"] {
        let c = ok_args(&[
            "--node",
            "id=test",
            "--tcp-listener",
            "port=0",
            &format!("cost={cost}"),
        ]);
        assert!(c.tcp_listeners[0].cost > 0.0);
    }
    for nodecost in ["{}", r#"{"a": 1}"#, r#"{"a": 1.3, "b": 5.6, "c": 0.2}"#] {
        let arg = format!("nodecost={nodecost}");
        let c = ok_args(&["--node", "id=test", "--ws-listener", "port=0", &arg]);
        assert!(
            c.ws_listeners[0]
                .listener
                .node_cost
                .values()
                .all(|v| *v > 0.0)
        );
    }
}

#[test]
fn binary_exit_codes_and_output() {
    let bin = env!("CARGO_BIN_EXE_receptor");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .output()
            .expect("run receptor");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("Usage: receptor [--<action>"));
    let (code, out) = run(&["--version"]);
    assert_eq!((code, out.trim()), (Some(0), receptor_cli::config::VERSION));
    // `<Go release>+rs.<our release>`, unless RECEPTOR_VERSION replaced it at build time.
    if option_env!("RECEPTOR_VERSION").is_none() {
        assert_eq!(
            out.trim(),
            format!(
                "{}+rs.{}",
                receptor_cli::config::GO_RELEASE,
                env!("CARGO_PKG_VERSION")
            )
        );
    }
    let (code, out) = run(&["--node", "id=test", "--tcp-listener", "port=0", "cost=-1"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "Error: connection cost must be positive\n")
    );
    let (code, out) = run(&["--bogus"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "Error: command error: unknown config type bogus\n")
    );
    let (code, out) = run(&["--node", "id=a", "--work-kubernetes", "worktype=w"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "Error: work-kubernetes: not supported yet\n")
    );
    let (code, out) = run(&["--node", "id=a"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("--help for command line instructions."));
}
