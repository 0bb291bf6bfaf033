//! Work units: status files, the control lines and replies of remote units, and work-signing
//! tokens and keys.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Unstructured;

use crate::control::{Command, Reply, UnitStatus, WorkRequest, parse_line};
use crate::work::jwt::{SigningKey, VerifyingKey, b64url_encode};
use crate::work::remote::{self, RemoteExtraData};
use crate::work::{ExtraData, StatusRecord};

/// Reads `data` as a status file over a record of each kind (no extra data, a command unit's,
/// a remote unit's), as the runtime reads `<unit>/status`. Whatever was read must write out
/// as a file that reads back to the same file, and give a `work status` reply.
pub fn work_status(data: &[u8]) {
    let mut remote = RemoteExtraData::default();
    remote
        .remote_params
        .insert("secret_x".into(), "hidden".into());
    let kinds = [
        None,
        Some(ExtraData::command(7, "-n hi")),
        Some(ExtraData::Remote(remote)),
    ];
    for extra in kinds {
        let mut rec = StatusRecord::new("echo", extra.clone());
        let _ = rec.merge_json(data);
        let json = rec.to_json();
        let mut again = StatusRecord::new("echo", extra);
        assert!(
            again.merge_json(json.as_bytes()).is_ok(),
            "own file refused: {json}"
        );
        assert_eq!(again.to_json(), json, "file does not read back");
        let reply = rec.to_unit_status();
        if let Some(extra) = reply.extra_data {
            assert!(!extra.contains("hidden"), "secret in reply: {extra}");
            assert!(serde_json::from_str::<serde_json::Value>(&extra).is_ok());
        }
    }
}

/// The remote-unit protocol from both ends: a reply line read by [`Reply::decode`] must
/// encode to a line that reads back the same (and the unit ID found in it must be what Go's
/// regex finds); the control lines a node sends for a remote unit (built from fuzz-chosen
/// names, params and signatures) must parse on the other node to the same request.
pub fn remote_reply(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(line) = u.arbitrary::<String>() else {
        return;
    };
    if let Some(id) = remote::submitted_unit_id(&line) {
        assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(line.contains(&format!("with ID {id}.")));
    }
    // Whatever a reply line decodes to must encode to a line that decodes to it again.
    if let Ok(reply) = Reply::decode(&line) {
        let again = reply.encode();
        assert_eq!(Reply::decode(&again).as_ref(), Ok(&reply), "{again:?}");
    }
    // A status reply with fuzz-chosen text survives Go's escaping both ways.
    if let (Ok(state), Ok(detail), Ok(stdout_size), Ok(work_type)) = (
        u.arbitrary::<i64>(),
        u.arbitrary::<String>(),
        u.arbitrary::<i64>(),
        u.arbitrary::<String>(),
    ) {
        let st = Reply::WorkStatus(UnitStatus {
            state,
            detail,
            stdout_size,
            work_type,
            extra_data: None,
        });
        assert_eq!(Reply::decode(&st.encode()).as_ref(), Ok(&st));
    }
    let (Ok(node), Ok(work_type), Ok(tls), Ok(sig), Ok(unit_id)) = (
        u.arbitrary::<String>(),
        u.arbitrary::<String>(),
        u.arbitrary::<String>(),
        u.arbitrary::<Option<String>>(),
        u.arbitrary::<String>(),
    ) else {
        return;
    };
    let mut params = u
        .arbitrary::<BTreeMap<String, String>>()
        .unwrap_or_default();
    // Keys that are not work params would not come back as params; nor would `params`,
    // whose value holds the free-form ones.
    params.retain(|k, _| k != "params" && !crate::control::NON_PARAMS.contains(&k.as_str()));
    let sig = sig.filter(|s| !s.is_empty());

    let submit = remote::submit_command(&params, &node, &work_type, &tls, sig.as_deref());
    match sent(&submit) {
        Command::Work(WorkRequest::Submit(w)) => {
            assert_eq!(
                (&w.node, &w.work_type, &w.tls_client, &w.params),
                (&node, &work_type, &tls, &params)
            );
            assert_eq!(w.signature, sig.clone().unwrap_or_default());
        }
        other => panic!("submit read back as {other:?}"),
    }

    let state = i64::from(u.int_in_range(0u8..=4).unwrap_or(0));
    let millis = u64::from(u.arbitrary::<u32>().unwrap_or(0));
    let status = remote::status_command(&unit_id, Some((state, &line, millis)));
    match sent(&status) {
        Command::Work(WorkRequest::Status {
            unit_id: id, wait, ..
        }) => {
            assert_eq!(id, unit_id);
            let wait = wait.expect("wait extension lost");
            assert_eq!(
                (wait.state, wait.detail, wait.millis),
                (state, line, millis)
            );
        }
        other => panic!("status read back as {other:?}"),
    }

    let start = u.arbitrary::<i32>().unwrap_or(0).into();
    match sent(&remote::results_command(&unit_id, start, sig.as_deref())) {
        Command::Work(WorkRequest::Results {
            unit_id: id,
            start_pos,
            signature,
        }) => {
            assert_eq!((id, start_pos), (unit_id.clone(), start));
            assert_eq!(signature, sig.clone().unwrap_or_default());
        }
        other => panic!("results read back as {other:?}"),
    }
    match sent(&remote::unit_command("cancel", &unit_id, sig.as_deref())) {
        Command::Work(WorkRequest::Cancel { unit_id: id, .. }) => assert_eq!(id, unit_id),
        other => panic!("cancel read back as {other:?}"),
    }
}

/// What the receiving node's control service reads from one line we send.
fn sent(line: &str) -> Command {
    let body = line.strip_suffix('\n').expect("line without newline");
    assert!(!body.contains('\n'), "newline inside a line: {line:?}");
    match parse_line(body.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("{line:?} refused: {e:?}"),
    }
}

/// The node ID and time the token harness verifies for.
const NODE: &str = "fuzz";
const NOW: f64 = 1_800_000_000.0;

/// A genuine token for [`NODE`], signed once; its signature segment is reused.
fn genuine() -> &'static (VerifyingKey, String) {
    static TOKEN: OnceLock<(VerifyingKey, String)> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let signer = SigningKey::from_pem(include_bytes!("../work/testdata/sign_a_pkcs8.pem"))
            .expect("test key");
        let token = signer.sign(NODE, 1_900_000_000).expect("sign");
        let key = VerifyingKey::from_pem(include_bytes!("../work/testdata/sign_a_pub.pem"))
            .expect("test key");
        assert!(key.verify(&token, NODE, NOW).is_ok());
        (key, token)
    })
}

/// Key files and tokens. The first byte picks: parse `data` as a private and as a public key
/// file; verify `data` as a token; or verify a token whose header and claims (split at the
/// first `\n`, or just the claims under our header) are the fuzz bytes and whose signature is
/// a genuine one's. A token verifies only if it is the genuine token.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (key, token) = genuine();
    let sig = token.rsplit('.').next().unwrap_or_default();
    let candidate = match mode % 4 {
        0 => {
            let _ = SigningKey::from_pem(rest);
            let _ = VerifyingKey::from_pem(rest);
            return;
        }
        1 => String::from_utf8_lossy(rest).into_owned(),
        2 => {
            let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            format!("{}.{}.{sig}", b64url_encode(header), b64url_encode(claims))
        }
        _ => {
            let header = br#"{"alg":"RS512","typ":"JWT"}"#;
            format!("{}.{}.{sig}", b64url_encode(header), b64url_encode(rest))
        }
    };
    if key.verify(&candidate, NODE, NOW).is_ok() {
        let signed = |t: &str| t.rsplit_once('.').map(|(a, _)| a.to_owned());
        assert_eq!(signed(&candidate), signed(token), "forged token verified");
    }
}
