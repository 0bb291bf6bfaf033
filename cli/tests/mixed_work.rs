//! Remote units of work between the runtimes, in separate processes: a smol node
//! (`runtime-smol/examples/node.rs`) peers with the tokio `receptor`. The real receptorctl on
//! the smol node submits work to run on the tokio node (its output comes back; a cancel and a
//! release reach it), and on the tokio node submits work to run on the smol node, both through
//! core's remote-unit machine and engine. Signed work crosses between them both ways: each
//! verifies the other's tokens where its work type has `verifysignature`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("\n--- {}:\n{}", p.name, p.log_text()))
        .collect()
}

/// The units listed on the control socket `sock`.
fn units(sock: &Path) -> serde_json::Map<String, serde_json::Value> {
    let o = receptorctl(sock, &["work", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str::<serde_json::Value>(&stdout(&o))
        .unwrap()
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn remote_work_between_smol_and_tokio_nodes() {
    let smol = example_bin("receptor-smol", "node");
    let dir = TempDir::new("mixed-work");
    let port = free_port();
    let hub_sock = dir.path("hub.sock");
    let hub = start_yaml(
        &dir,
        "hub",
        &format!(
            "- node:\n    id: hub\n    datadir: {}\n- log-level: debug\n\
             - control-service:\n    filename: {}\n\
             - tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n\
             - work-command:\n    worktype: cat\n    command: cat\n\
             - work-command:\n    worktype: sleep\n    command: sleep\n    params: 30\n",
            dir.path("data").display(),
            hub_sock.display()
        ),
    );
    let s1_sock = dir.path("s1.sock");
    let mut cmd = Command::new(&smol);
    cmd.args(["--id", "s1", "--bind", "127.0.0.1", "--tcp-peer"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--control")
        .arg(&s1_sock)
        .arg("--data-dir")
        .arg(dir.path("data"))
        .args([
            "--work-command",
            "worktype=upper",
            "command=tr",
            "params=a-z A-Z",
        ]);
    let s1 = spawn_logged(&dir, "s1", cmd);
    let procs = [&hub, &s1];

    wait_for_path(&s1_sock, WAIT);
    wait_for_path(&hub_sock, WAIT);
    let routed = wait_until(WAIT, || {
        status_json(&s1_sock)["RoutingTable"]["hub"] == "hub"
            && status_json(&hub_sock)["RoutingTable"]["s1"] == "s1"
    });
    assert!(routed, "s1 and hub never routed{}", logs(&procs));

    // smol submits, tokio runs: the payload goes there, the output comes back.
    let o = receptorctl(
        &s1_sock,
        &[
            "work",
            "submit",
            "cat",
            "--node",
            "hub",
            "-l",
            "smol to tokio",
            "-f",
        ],
    );
    assert!(
        o.status.success() && stdout(&o) == "smol to tokio\n",
        "{}{}{}",
        stdout(&o),
        stderr(&o),
        logs(&procs)
    );

    // tokio submits, smol runs.
    let o = receptorctl(
        &hub_sock,
        &[
            "work",
            "submit",
            "upper",
            "--node",
            "s1",
            "-l",
            "tokio to smol",
            "-f",
        ],
    );
    assert!(
        o.status.success() && stdout(&o) == "TOKIO TO SMOL\n",
        "{}{}{}",
        stdout(&o),
        stderr(&o),
        logs(&procs)
    );

    // A cancel and a release on the smol node reach the unit on the tokio node.
    let (id, result) = work_submit(&s1_sock, &["sleep", "--node", "hub", "--no-payload"]);
    assert_eq!(result, "Job Started");
    let on_hub = || {
        units(&hub_sock)
            .into_iter()
            .find(|(_, st)| st["WorkType"] == "sleep")
    };
    let (there, st) = on_hub().expect("the unit on the hub");
    assert_eq!(st["StateName"], "Running", "{st}");
    let o = receptorctl(&s1_sock, &["work", "cancel", &id]);
    assert!(
        o.status.success() && stdout(&o).contains(&format!("({id}, cancelled)")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(unit_status(&hub_sock, &there)["StateName"], "Canceled");
    let o = receptorctl(&s1_sock, &["work", "release", &id]);
    assert!(
        o.status.success() && stdout(&o).contains(&format!("({id}, released)")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(on_hub().is_none(), "released on the hub too");
    assert!(!units(&s1_sock).contains_key(&id));
}

/// A work-signing key pair of core's tests.
fn testdata(name: &str) -> String {
    format!(
        "{}/../core/src/work/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn signed_work_between_smol_and_tokio_nodes() {
    let smol = example_bin("receptor-smol", "node");
    let dir = TempDir::new("mixed-signed");
    let port = free_port();
    let hub_sock = dir.path("hub.sock");
    let hub = start_yaml(
        &dir,
        "hub",
        &format!(
            "- node:\n    id: hub\n    datadir: {}\n- log-level: debug\n\
             - control-service:\n    filename: {}\n\
             - tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n\
             - work-signing:\n    privatekey: {}\n    tokenexpiration: 1m\n\
             - work-verification:\n    publickey: {}\n\
             - work-command:\n    worktype: secure\n    command: cat\n    verifysignature: true\n",
            dir.path("data").display(),
            hub_sock.display(),
            testdata("sign_a_pkcs8.pem"),
            testdata("sign_a_pub.pem"),
        ),
    );
    let s1_sock = dir.path("s1.sock");
    let mut cmd = Command::new(&smol);
    cmd.args(["--id", "s1", "--bind", "127.0.0.1", "--tcp-peer"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--control")
        .arg(&s1_sock)
        .arg("--data-dir")
        .arg(dir.path("data"))
        .args([
            "--work-command",
            "worktype=upper",
            "command=tr",
            "params=a-z A-Z",
            "verifysignature=true",
            "--work-signing",
        ])
        .arg(format!("privatekey={}", testdata("sign_a_pkcs1.pem")))
        .args(["tokenexpiration=2m", "--work-verification"])
        .arg(format!("publickey={}", testdata("sign_a_pub.pem")));
    let s1 = spawn_logged(&dir, "s1", cmd);
    let procs = [&hub, &s1];

    wait_for_path(&s1_sock, WAIT);
    wait_for_path(&hub_sock, WAIT);
    let routed = wait_until(WAIT, || {
        status_json(&s1_sock)["RoutingTable"]["hub"] == "hub"
            && status_json(&hub_sock)["RoutingTable"]["s1"] == "s1"
    });
    assert!(routed, "s1 and hub never routed{}", logs(&procs));

    // smol signs, tokio verifies and runs.
    let o = receptorctl(
        &s1_sock,
        &[
            "work",
            "submit",
            "secure",
            "--node",
            "hub",
            "--signwork",
            "-l",
            "signed",
            "-f",
        ],
    );
    assert!(
        o.status.success() && stdout(&o) == "signed\n",
        "{}{}{}",
        stdout(&o),
        stderr(&o),
        logs(&procs)
    );
    // Unsigned from smol: tokio refuses it.
    let o = receptorctl(
        &s1_sock,
        &["work", "submit", "secure", "--node", "hub", "-l", "x"],
    );
    assert!(
        !o.status.success()
            && stderr(&o).contains("could not verify signature: signature is empty"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );

    // tokio signs, smol verifies and runs; unsigned, smol refuses it.
    let o = receptorctl(
        &hub_sock,
        &[
            "work",
            "submit",
            "upper",
            "--node",
            "s1",
            "--signwork",
            "-l",
            "signed",
            "-f",
        ],
    );
    assert!(
        o.status.success() && stdout(&o) == "SIGNED\n",
        "{}{}{}",
        stdout(&o),
        stderr(&o),
        logs(&procs)
    );
    let o = receptorctl(
        &hub_sock,
        &["work", "submit", "upper", "--node", "s1", "-l", "x"],
    );
    assert!(
        !o.status.success()
            && stderr(&o).contains("could not verify signature: signature is empty"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}
