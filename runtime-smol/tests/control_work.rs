//! The `work` commands of a smol node's control service, driven by the real `receptorctl`:
//! submit (with and without payload, with runtime parameters, following and releasing),
//! list, results, cancel, release and force-release of command units run through core's
//! engine, and the refusals (unknown type, parameters not allowed, remote work without a
//! node); and remote units, submitted on one smol node to run on another.

use std::sync::Arc;
use std::time::SystemTime;

use receptor_core::LinkKind;
use receptor_core::control::WorkSubmit;
use receptor_core::stream::{ServerTls, server_config};
use receptor_smol::backends::{tcp_dial, tcp_listen};
use receptor_smol::control::{ControlOptions, serve_control_mesh, serve_control_unix};
use receptor_smol::spawn_node;
use receptor_smol::tls::insecure::insecure_server_config;
use receptor_smol::work::{CommandWorkType, Work};

mod common;
use common::{
    TempDir, config_seeded, dial_spec, listen_spec, receptorctl, unit_id, wait_route, within,
};

#[test]
fn receptorctl_drives_work_on_a_smol_node() {
    let dir = TempDir::new("ctlwork");
    let sock = dir.path("w.sock");
    let units = dir.path("units");
    let node = spawn_node(config_seeded("w", 5)).unwrap();
    let work = Arc::new(Work::new(units.clone(), 9).with_node(node.clone(), None));
    work.register("cat", "cat", "");
    work.register("lines", "sh", "-c 'echo one; echo two'");
    work.register("sleep", "sleep", "30");
    work.register("fail", "sh", "-c 'echo oops; exit 3'");
    work.register_type(
        "echo",
        CommandWorkType {
            command: "echo".into(),
            params: "base".into(),
            allow_runtime_params: true,
            ..CommandWorkType::default()
        },
    );
    let options = ControlOptions {
        version: "0.0-test".into(),
        connect_tls: None,
        work: Some(work.clone()),
    };
    let _control = serve_control_unix(&node, &sock, options.clone()).unwrap();
    let ctl = |args: &[&str]| {
        let (ok, out, err) = receptorctl(&sock, args);
        (ok, out, err)
    };

    // Followed and released: the output, then the release; nothing is left.
    let (ok, out, err) = ctl(&["work", "submit", "lines", "--no-payload", "-f", "--rm"]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("one\ntwo\n"), "{out}{err}");
    assert!(out.contains("released"), "{out}{err}");
    let (ok, out, err) = ctl(&["work", "list"]);
    assert!(ok && out.trim() == "{}", "{out}{err}");

    // A payload goes to the command's stdin.
    let (ok, out, err) = ctl(&["work", "submit", "cat", "-l", "hello smol", "-f"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "hello smol\n", "{err}");

    // Runtime parameters where the type allows them.
    let (ok, out, err) = ctl(&[
        "work",
        "submit",
        "echo",
        "--no-payload",
        "-f",
        "-a",
        "params=and more",
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "base and more\n", "{err}");
    let (ok, out, err) = ctl(&["work", "submit", "cat", "--no-payload", "-a", "params=x"]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("extra params provided but not allowed"),
        "{out}{err}"
    );

    // A failed unit: its output, then receptorctl reports the failure.
    let (ok, out, err) = ctl(&["work", "submit", "fail", "--no-payload", "-f"]);
    assert!(!ok, "{out}{err}");
    assert!(out.starts_with("oops\n"), "{out}{err}");
    assert!(err.contains("exit status 3"), "{out}{err}");

    // Started, listed Running, cancelled (its process killed), listed Canceled, released.
    let (ok, out, err) = ctl(&["work", "submit", "sleep", "--no-payload"]);
    assert!(ok && out.contains("Result: Job Started"), "{out}{err}");
    let long = unit_id(&out);
    let (ok, out, err) = ctl(&["work", "list", "--unit_id", &long]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"StateName\": \"Running\""), "{out}");
    assert!(out.contains("\"WorkType\": \"sleep\""), "{out}");
    let (ok, out, err) = ctl(&["work", "cancel", &long]);
    assert!(
        ok && out.contains(&format!("({long}, cancelled)")),
        "{out}{err}"
    );
    let (ok, out, err) = ctl(&["work", "list"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"StateName\": \"Canceled\""), "{out}");
    assert!(out.contains("\"StateName\": \"Failed\""), "{out}");
    let (ok, out, err) = ctl(&["work", "release", &long]);
    assert!(
        ok && out.contains(&format!("({long}, released)")),
        "{out}{err}"
    );
    assert!(!units.join(&long).exists());
    let (ok, out, err) = ctl(&["work", "release", &long]);
    assert!(!ok && err.contains("unknown work unit"), "{out}{err}");
    let (ok, out, err) = ctl(&["work", "release", "--force", &long]);
    assert!(ok, "{out}{err}");

    // Results of a finished unit, again, from the start.
    let (ok, out, err) = ctl(&["work", "submit", "cat", "-l", "again", "-f"]);
    assert!(ok && out == "again\n", "{out}{err}");
    let ids = work.list(None).unwrap();
    let again = ids
        .iter()
        .find(|(_, st)| st.work_type == "cat" && st.stdout_size == 6)
        .map(|(id, _)| id.clone())
        .unwrap();
    let (ok, out, err) = ctl(&["work", "results", &again]);
    assert!(ok && out == "again\n", "{out}{err}");
    let (ok, out, err) = ctl(&["work", "results", "nosuch"]);
    assert!(
        !ok && err.contains("unknown work unit nosuch"),
        "{out}{err}"
    );

    // The exit is recorded in the status file without anyone asking (a node killed now
    // would find the unit finished).
    let (ok, out, err) = ctl(&["work", "submit", "cat", "-l", "quiet"]);
    assert!(ok, "{out}{err}");
    let status_file = units.join(unit_id(&out)).join("status");
    let recorded = (0..100).any(|_| {
        let on_disk = std::fs::read_to_string(&status_file).unwrap_or_default();
        let done = on_disk.starts_with("{\"State\":2,\"Detail\":\"exit status 0\"");
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        done
    });
    assert!(
        recorded,
        "{}",
        std::fs::read_to_string(&status_file).unwrap_or_default()
    );

    // Refusals.
    let (ok, out, err) = ctl(&["work", "submit", "nope", "--no-payload"]);
    assert!(!ok && err.contains("unknown work type nope"), "{out}{err}");
    // A Work without a node runs no remote work.
    let alone = Work::new(dir.path("alone"), 1);
    let far = WorkSubmit {
        node: "far".into(),
        work_type: "cat".into(),
        ..WorkSubmit::default()
    };
    assert_eq!(
        alone.create_remote(&far).map_err(|e| e.to_string()),
        Err("remote work needs a running node".to_owned())
    );

    // The work types are advertised with the control service on the mesh, as Go does.
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    let server = ServerTls::Fixed(server_config((*tls).clone()).unwrap());
    let mesh = serve_control_mesh(&node, "control", server, 1, options);
    let _mesh = async_io::block_on(mesh).unwrap();
    let advertised = (0..100).any(|_| {
        let (_, out, _) = ctl(&["status", "--json"]);
        let found = out.contains("\"WorkType\": \"sleep\"");
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        found
    });
    assert!(advertised, "{}", ctl(&["status", "--json"]).1);

    // Everything released: the directory is empty.
    let (ok, out, err) = ctl(&["work", "release", "--all"]);
    assert!(ok, "{out}{err}");
    assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);
}

/// a -tcp- b, both smol: `work submit --node b` on a runs the work on b through core's
/// remote-unit machine, over mesh streams to b's control service; output, cancel and release
/// reach b.
#[test]
fn remote_units_from_one_smol_node_to_another() {
    let dir = TempDir::new("remotework");
    let sock = dir.path("a.sock");
    let (a, b) = (
        spawn_node(config_seeded("a", 21)).unwrap(),
        spawn_node(config_seeded("b", 22)).unwrap(),
    );
    let (addr_b, _listen) =
        async_io::block_on(tcp_listen(&b, listen_spec(LinkKind::Stream))).unwrap();
    let _dial = tcp_dial(&a, dial_spec(addr_b, LinkKind::Stream));
    async_io::block_on(within(20, "route a -> b", wait_route(&a, "b")));
    async_io::block_on(within(20, "route b -> a", wait_route(&b, "a")));

    let on_b = Arc::new(Work::new(dir.path("b-units"), 3));
    on_b.register("cat", "cat", "");
    on_b.register("lines", "sh", "-c 'echo one; echo two'");
    on_b.register("sleep", "sleep", "30");
    on_b.register("seq", "seq", "1 60000");
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    let server = ServerTls::Fixed(server_config((*tls).clone()).unwrap());
    let b_options = ControlOptions {
        work: Some(on_b.clone()),
        ..ControlOptions::default()
    };
    let _b_control =
        async_io::block_on(serve_control_mesh(&b, "control", server, 1, b_options)).unwrap();

    let a_units = dir.path("a-units");
    let on_a = Arc::new(Work::new(a_units.clone(), 4).with_node(a.clone(), None));
    let a_options = ControlOptions {
        work: Some(on_a.clone()),
        ..ControlOptions::default()
    };
    let _a_control = serve_control_unix(&a, &sock, a_options).unwrap();
    let ctl = |args: &[&str]| receptorctl(&sock, args);

    // A payload to b and the output back.
    let (ok, out, err) = ctl(&[
        "work",
        "submit",
        "cat",
        "--node",
        "b",
        "-l",
        "over the mesh",
        "-f",
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "over the mesh\n", "{err}");
    let (ok, out, err) = ctl(&["work", "list"]);
    assert!(ok && out.contains("\"WorkType\": \"remote\""), "{out}{err}");
    assert!(out.contains("\"RemoteNode\": \"b\""), "{out}");
    assert!(out.contains("\"StateName\": \"Succeeded\""), "{out}");

    // An output of many reads (the read sizes grow) comes back whole, through b's results
    // stream and this node's connection reader.
    let (ok, out, err) = ctl(&["work", "submit", "seq", "--node", "b", "--no-payload", "-f"]);
    assert!(ok, "{err}");
    let want: String = (1..=60000).map(|i| format!("{i}\n")).collect();
    assert!(out == want, "{} bytes of {}: {err}", out.len(), want.len());

    // Followed and released: released on b too.
    let before = on_b.list(None).unwrap().len();
    let (ok, out, err) = ctl(&[
        "work",
        "submit",
        "lines",
        "--node",
        "b",
        "--no-payload",
        "-f",
        "--rm",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("one\ntwo\n"), "{out}{err}");
    assert!(out.contains("released"), "{out}{err}");
    assert_eq!(on_b.list(None).unwrap().len(), before);

    // Cancelled here: cancelled there (its process killed), then released both sides.
    let (ok, out, err) = ctl(&["work", "submit", "sleep", "--node", "b", "--no-payload"]);
    assert!(ok && out.contains("Result: Job Started"), "{out}{err}");
    let long = unit_id(&out);
    let remote_id = |w: &Work| {
        w.list(None)
            .unwrap()
            .into_iter()
            .find(|(_, st)| st.work_type == "sleep")
            .map(|(id, st)| (id, st.state))
    };
    let (there, state) = remote_id(&on_b).unwrap();
    assert_eq!(state, 1, "running on b");
    let (ok, out, err) = ctl(&["work", "cancel", &long]);
    assert!(
        ok && out.contains(&format!("({long}, cancelled)")),
        "{out}{err}"
    );
    assert_eq!(on_b.unit_status(&there).unwrap().state, 4, "canceled on b");
    let (ok, out, err) = ctl(&["work", "release", &long]);
    assert!(
        ok && out.contains(&format!("({long}, released)")),
        "{out}{err}"
    );
    assert!(!a_units.join(&long).exists());
    assert!(on_b.unit_status(&there).is_err(), "released on b");

    // Refused here, by core's checks of a remote submit.
    let (ok, out, err) = ctl(&[
        "work",
        "submit",
        "cat",
        "--node",
        "b",
        "--no-payload",
        "-a",
        "secret_x=1",
    ]);
    assert!(
        !ok && err.contains("cannot send secrets over a non-TLS connection"),
        "{out}{err}"
    );
    let (ok, out, err) = ctl(&[
        "work",
        "submit",
        "cat",
        "--node",
        "b",
        "--no-payload",
        "--ttl",
        "1",
    ]);
    assert!(
        !ok && err.contains(r#"time: missing unit in duration "1""#),
        "{out}{err}"
    );

    // b refuses: the submit fails with b's reason.
    let (ok, out, err) = ctl(&["work", "submit", "nope", "--node", "b", "--no-payload"]);
    assert!(!ok && err.contains("unknown work type nope"), "{out}{err}");

    // A node with no route: the submit stays pending (retried in the background), and a
    // forced release removes it at once.
    let (ok, out, err) = ctl(&["work", "submit", "cat", "--node", "nowhere", "--no-payload"]);
    assert!(ok && out.contains("Result: Job Submitted"), "{out}{err}");
    let lost = unit_id(&out);
    let (ok, out, err) = ctl(&["work", "list", "--unit_id", &lost]);
    assert!(
        ok && out.contains("\"StateName\": \"Pending\""),
        "{out}{err}"
    );
    let (ok, out, err) = ctl(&["work", "release", "--force", &lost]);
    assert!(
        ok && out.contains(&format!("({lost}, released)")),
        "{out}{err}"
    );
    assert!(!a_units.join(&lost).exists());

    let (ok, out, err) = ctl(&["work", "release", "--all", "--force"]);
    assert!(ok, "{out}{err}");
    assert_eq!(std::fs::read_dir(&a_units).unwrap().count(), 0);
}

/// A smol node that stops while its remote unit runs on another node, and starts again over
/// the same directory, follows the unit again and gets all of its output.
#[test]
fn a_remote_unit_is_followed_again_after_a_restart() {
    let dir = TempDir::new("remoterestart");
    let (a, b) = (
        spawn_node(config_seeded("a", 31)).unwrap(),
        spawn_node(config_seeded("b", 32)).unwrap(),
    );
    let (addr_b, _listen) =
        async_io::block_on(tcp_listen(&b, listen_spec(LinkKind::Stream))).unwrap();
    let _dial = tcp_dial(&a, dial_spec(addr_b, LinkKind::Stream));
    async_io::block_on(within(20, "route a -> b", wait_route(&a, "b")));
    async_io::block_on(within(20, "route b -> a", wait_route(&b, "a")));
    let on_b = Arc::new(Work::new(dir.path("b-units"), 5));
    on_b.register("slow", "sh", "-c 'echo first; sleep 2; echo second'");
    let tls = insecure_server_config(SystemTime::now()).unwrap();
    let server = ServerTls::Fixed(server_config((*tls).clone()).unwrap());
    let b_options = ControlOptions {
        work: Some(on_b.clone()),
        ..ControlOptions::default()
    };
    let _b_control =
        async_io::block_on(serve_control_mesh(&b, "control", server, 1, b_options)).unwrap();

    let a_units = dir.path("a-units");
    let on_a = Work::new(a_units.clone(), 6).with_node(a.clone(), None);
    let req = WorkSubmit {
        node: "b".into(),
        work_type: "slow".into(),
        ..WorkSubmit::default()
    };
    let id = on_a.create_remote(&req).unwrap();
    assert_eq!(async_io::block_on(on_a.start(&id)), Ok(false));
    let running = async {
        while on_a.status(&id).unwrap().state != 1 {
            async_io::Timer::after(std::time::Duration::from_millis(20)).await;
        }
    };
    async_io::block_on(within(10, "running", running));
    // The node stops while the unit runs there.
    drop(on_a);

    let again = Work::new(a_units, 7).with_node(a.clone(), None);
    again.scan();
    let done = async_io::block_on(within(30, "the unit", again.wait(&id))).unwrap();
    assert_eq!((done.state, done.detail.as_str()), (2, "exit status 0"));
    let output = async_io::block_on(within(10, "its output", async {
        loop {
            let out = again.results(&id).unwrap_or_default();
            if out.len() >= 13 {
                return out;
            }
            async_io::Timer::after(std::time::Duration::from_millis(20)).await;
        }
    }));
    // Each byte once: the stopped node's job wrote nothing after the new one started.
    assert_eq!(String::from_utf8_lossy(&output), "first\nsecond\n");
    async_io::block_on(again.release(&id, false)).unwrap();
    assert!(on_b.list(None).unwrap().is_empty(), "released on b too");
}
