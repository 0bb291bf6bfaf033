//! Remote units from a smol node with a `ttl` and with signed work, driven by the real
//! `receptorctl`: a unit that cannot start before its `ttl` fails with Go's detail (and one
//! whose node stays unreachable past the node's limit fails too); a node
//! with a `work-signing` key signs the commands of `--signwork` units, which a node whose
//! work type has `verifysignature` accepts (and runs), while it refuses unsigned ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use receptor_core::LinkKind;
use receptor_core::control::WorkSubmit;
use receptor_core::os::work_keys::WorkKeys;
use receptor_core::stream::{ServerTls, server_config};
use receptor_core::work::remote::expired_detail;
use receptor_core::work::signing::DEFAULT_TOKEN_EXPIRATION;
use receptor_smol::backends::{tcp_dial, tcp_listen};
use receptor_smol::control::{ControlOptions, serve_control_mesh, serve_control_unix};
use receptor_smol::tls::insecure::insecure_server_config;
use receptor_smol::work::{CommandWorkType, Work};
use receptor_smol::{NodeHandle, Task, spawn_node};

mod common;
use common::{
    TempDir, config_seeded, dial_spec, listen_spec, receptorctl, unit_id, wait_route, within,
};

/// A work-signing key pair of core's tests.
fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/src/work/testdata")
        .join(name)
}

/// Two routed nodes: `a` submits (its work on a unix socket), `b` runs work with its control
/// service on the mesh (and on its own unix socket).
struct Pair {
    dir: TempDir,
    on_a: Arc<Work>,
    on_b: Arc<Work>,
    _tasks: Vec<Task<()>>,
    _nodes: (NodeHandle, NodeHandle),
}

impl Pair {
    fn start(tag: &str, seed: u64, a_keys: WorkKeys, b_keys: WorkKeys) -> Self {
        let dir = TempDir::new(tag);
        let (a, b) = (
            spawn_node(config_seeded("a", seed)).unwrap(),
            spawn_node(config_seeded("b", seed + 1)).unwrap(),
        );
        let (addr_b, listen) =
            async_io::block_on(tcp_listen(&b, listen_spec(LinkKind::Stream))).unwrap();
        let dial = tcp_dial(&a, dial_spec(addr_b, LinkKind::Stream));
        async_io::block_on(within(20, "route a -> b", wait_route(&a, "b")));
        async_io::block_on(within(20, "route b -> a", wait_route(&b, "a")));

        let on_b = Arc::new(Work::new(dir.path("b-units"), seed).with_keys(b_keys));
        on_b.register("cat", "cat", "");
        on_b.register_type(
            "secure",
            CommandWorkType {
                command: "cat".into(),
                verify_signature: true,
                ..CommandWorkType::default()
            },
        );
        on_b.register_type(
            "slow",
            CommandWorkType {
                command: "sleep".into(),
                params: "30".into(),
                verify_signature: true,
                ..CommandWorkType::default()
            },
        );
        let tls = insecure_server_config(SystemTime::now()).unwrap();
        let server = ServerTls::Fixed(server_config((*tls).clone()).unwrap());
        let b_options = ControlOptions {
            work: Some(on_b.clone()),
            ..ControlOptions::default()
        };
        let b_mesh = async_io::block_on(serve_control_mesh(
            &b,
            "control",
            server,
            1,
            b_options.clone(),
        ))
        .unwrap();
        let b_unix = serve_control_unix(&b, &dir.path("b.sock"), b_options).unwrap();

        let on_a = Arc::new(
            Work::new(dir.path("a-units"), seed + 2)
                .with_node(a.clone(), None)
                .with_keys(a_keys),
        );
        let a_options = ControlOptions {
            work: Some(on_a.clone()),
            ..ControlOptions::default()
        };
        let a_unix = serve_control_unix(&a, &dir.path("a.sock"), a_options).unwrap();
        Self {
            dir,
            on_a,
            on_b,
            _tasks: vec![listen, dial, b_mesh, b_unix, a_unix],
            _nodes: (a, b),
        }
    }

    /// receptorctl on a's socket.
    fn a(&self, args: &[&str]) -> (bool, String, String) {
        receptorctl(&self.dir.path("a.sock"), args)
    }

    /// receptorctl on b's socket.
    fn b(&self, args: &[&str]) -> (bool, String, String) {
        receptorctl(&self.dir.path("b.sock"), args)
    }
}

#[test]
fn a_remote_unit_that_cannot_start_before_its_ttl_fails() {
    let p = Pair::start("ttl", 41, WorkKeys::default(), WorkKeys::default());

    // Not a Go duration: refused with Go's words.
    let (ok, out, err) = p.a(&[
        "work", "submit", "cat", "--node", "b", "--ttl", "5x", "-l", "x",
    ]);
    assert!(
        !ok && err.contains(r#"time: unknown unit "x" in duration "5x""#),
        "{out}{err}"
    );

    // Reachable within its ttl: it runs.
    let (ok, out, err) = p.a(&[
        "work", "submit", "cat", "--node", "b", "--ttl", "1m", "-l", "in time", "-f",
    ]);
    assert!(ok && out == "in time\n", "{out}{err}");

    // A node with no route: the unit waits, then fails once its ttl has passed.
    let (ok, out, err) = p.a(&[
        "work",
        "submit",
        "cat",
        "--node",
        "nowhere",
        "--no-payload",
        "--ttl",
        "1.5s",
    ]);
    assert!(ok && out.contains("Result: Job Submitted"), "{out}{err}");
    let id = unit_id(&out);
    let rec = p.on_a.status(&id).unwrap();
    let expiration = rec
        .remote()
        .and_then(|r| r.expiration)
        .expect("an expiration");
    let failed = async_io::block_on(within(15, "the unit expires", p.on_a.wait(&id))).unwrap();
    assert_eq!(failed.state, 3, "Failed: {failed:?}");
    assert_eq!(failed.detail, expired_detail(expiration, 0));
    assert!(
        failed.detail.starts_with("Work unit expired on "),
        "{failed:?}"
    );
    let (ok, out, err) = p.a(&["work", "list", "--unit_id", &id]);
    assert!(
        ok && out.contains("\"StateName\": \"Failed\""),
        "{out}{err}"
    );
    let (ok, out, err) = p.a(&["work", "release", &id]);
    assert!(
        ok && out.contains(&format!("({id}, released)")),
        "{out}{err}"
    );
}

#[test]
fn signed_remote_work_is_verified_where_the_type_asks() {
    let a_keys = WorkKeys {
        signing: Some((testdata("sign_a_pkcs8.pem"), DEFAULT_TOKEN_EXPIRATION)),
        verifying: None,
    };
    let b_keys = WorkKeys {
        signing: None,
        verifying: Some(testdata("sign_a_pub.pem")),
    };
    let p = Pair::start("signed", 51, a_keys, b_keys);

    // Signed: b verifies the token and runs the work; the output comes back.
    let (ok, out, err) = p.a(&[
        "work",
        "submit",
        "secure",
        "--node",
        "b",
        "--signwork",
        "-l",
        "signed",
        "-f",
    ]);
    assert!(ok && out == "signed\n", "{out}{err}");
    let (ok, out, err) = p.a(&["work", "list"]);
    assert!(ok && out.contains("\"SignWork\": true"), "{out}{err}");

    // Unsigned: b refuses it, the submit here fails with b's reason.
    let (ok, out, err) = p.a(&["work", "submit", "secure", "--node", "b", "-l", "x"]);
    assert!(
        !ok && err.contains("could not verify signature: signature is empty"),
        "{out}{err}"
    );
    // Signed for a type that does not verify: refused too.
    let (ok, out, err) = p.a(&[
        "work",
        "submit",
        "cat",
        "--node",
        "b",
        "--signwork",
        "-l",
        "x",
    ]);
    assert!(
        !ok && err.contains("work type did not expect a signature"),
        "{out}{err}"
    );
    // On b's own unix socket no signature is needed.
    let (ok, out, err) = p.b(&["work", "submit", "secure", "-l", "local", "-f"]);
    assert!(ok && out == "local\n", "{out}{err}");

    // A signed unit's cancel and release are signed too, and reach b.
    let (ok, out, err) = p.a(&[
        "work",
        "submit",
        "slow",
        "--node",
        "b",
        "--signwork",
        "--no-payload",
    ]);
    assert!(ok && out.contains("Result: Job Started"), "{out}{err}");
    let id = unit_id(&out);
    let there = p
        .on_b
        .list(None)
        .unwrap()
        .into_iter()
        .find(|(_, st)| st.work_type == "slow")
        .map(|(id, _)| id)
        .expect("the unit on b");
    let (ok, out, err) = p.a(&["work", "cancel", &id]);
    assert!(
        ok && out.contains(&format!("({id}, cancelled)")),
        "{out}{err}"
    );
    assert_eq!(
        p.on_b.unit_status(&there).unwrap().state,
        4,
        "canceled on b"
    );
    let (ok, out, err) = p.a(&["work", "release", &id]);
    assert!(
        ok && out.contains(&format!("({id}, released)")),
        "{out}{err}"
    );
    assert!(p.on_b.unit_status(&there).is_err(), "released on b");

    // The type is advertised as needing signatures.
    assert!(
        p.on_b
            .work_commands()
            .iter()
            .any(|c| c.work_type == "secure" && c.secure)
    );
}

/// A unit whose node stays unreachable longer than the node's `unreachable_timeout` fails.
#[test]
fn a_remote_unit_whose_node_stays_unreachable_fails() {
    let dir = TempDir::new("unreachable");
    let a = spawn_node(config_seeded("a", 71)).unwrap();
    let on_a = Work::new(dir.path("a-units"), 72)
        .with_node(a.clone(), None)
        .with_unreachable_timeout(Some(Duration::from_millis(500)));
    let req = WorkSubmit {
        node: "nowhere".into(),
        work_type: "cat".into(),
        ..WorkSubmit::default()
    };
    let id = on_a.create_remote(&req).unwrap();
    assert_eq!(async_io::block_on(on_a.start(&id)), Ok(true), "pending");
    let failed = async_io::block_on(within(15, "the unit fails", on_a.wait(&id))).unwrap();
    assert_eq!(
        (failed.state, failed.detail.as_str()),
        (3, "Remote node nowhere was unreachable for 500ms")
    );
}

/// A node without a work-signing key cannot make a signed unit run: the submit fails with
/// Go's reason.
#[test]
fn signed_work_needs_a_signing_key() {
    let b_keys = WorkKeys {
        signing: None,
        verifying: Some(testdata("sign_a_pub.pem")),
    };
    let p = Pair::start("nokey", 61, WorkKeys::default(), b_keys);
    let (ok, out, err) = p.a(&[
        "work",
        "submit",
        "secure",
        "--node",
        "b",
        "--signwork",
        "-l",
        "x",
    ]);
    assert!(
        !ok && err.contains("cannot sign work: signing key is empty"),
        "{out}{err}"
    );
}
