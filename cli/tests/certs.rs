//! `--cert-init`, `--cert-makereq`, `--cert-signreq`: outputs pinned field by field against
//! files Go receptor's commands made (`tests/vectors/certs`, see its README), Go's and our
//! commands signing each other's requests, Go's error texts, and a mutual-TLS mesh run on
//! certificates made by our commands alone.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/certs")
        .join(name)
}

/// Runs `receptor ARGS`, feeding `input` on stdin.
fn receptor(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(receptor_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed silently.
fn ok(args: &[&str]) {
    let o = receptor(args, "");
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "", "{args:?}");
}

/// Runs a command that must fail with `Error: <want>`.
fn fails(args: &[&str], want: &str) {
    let o = receptor(args, "");
    assert_eq!(o.status.code(), Some(1), "{args:?}");
    assert_eq!(stdout(&o), format!("Error: {want}\n"), "{args:?}");
}

/// The one PEM block of a file: its label and DER. The text must be laid out as Go's
/// `pem.Encode` does: LF endings, 64-column base64, a final newline.
fn pem_file(path: &Path) -> (String, Vec<u8>) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.contains('\r'), "{}", path.display());
    assert!(text.ends_with("-----\n"), "{}", path.display());
    let lines: Vec<&str> = text.lines().collect();
    let body = &lines[1..lines.len() - 1];
    assert!(body[..body.len() - 1].iter().all(|l| l.len() == 64));
    assert!(body[body.len() - 1].len() <= 64);
    let block = pem::parse(&text).unwrap();
    assert_eq!(pem::parse_many(&text).unwrap().len(), 1);
    (block.tag().to_owned(), block.into_contents())
}

/// Label and DER of our file, after checking its label and mode are those of Go's file.
fn same_label(ours: &Path, go: &Path) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt as _;
    let (label, der) = pem_file(ours);
    assert_eq!(label, pem_file(go).0, "{}", ours.display());
    let mode = std::fs::metadata(ours).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", ours.display());
    der
}

fn cert(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

fn req(der: &[u8]) -> X509CertificationRequest<'_> {
    X509CertificationRequest::from_der(der).unwrap().1
}

/// (OID, critical, value) of each extension; key identifiers reduced to their length, as
/// they depend on the key.
fn extensions(c: &X509Certificate<'_>) -> Vec<(String, bool, Vec<u8>)> {
    c.extensions()
        .iter()
        .map(|e| {
            let oid = e.oid.to_id_string();
            let value = match oid.as_str() {
                "2.5.29.14" | "2.5.29.35" => vec![e.value.len() as u8],
                _ => e.value.to_vec(),
            };
            (oid, e.critical, value)
        })
        .collect()
}

fn key_id(c: &X509Certificate<'_>, oid: &str) -> Vec<u8> {
    let e = c.extensions().iter().find(|e| e.oid.to_id_string() == oid);
    let v = e.unwrap().value;
    v[v.len() - 20..].to_vec()
}

/// A PKCS#1 RSAPrivateKey: version 0 and eight integers; returns the modulus length in bits.
fn pkcs1_modulus_bits(der: &[u8]) -> usize {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            assert_eq!(r.next().read_u8()?, 0);
            let (modulus, _) = r.next().read_bigint_bytes()?;
            for _ in 0..7 {
                r.next().read_bigint_bytes()?;
            }
            Ok(modulus.len() * 8)
        })
    })
    .unwrap()
}

/// Whole years between the two validity dates, which must otherwise be equal.
fn validity_years(c: &X509Certificate<'_>) -> i32 {
    let (nb, na) = (
        c.validity().not_before.to_datetime(),
        c.validity().not_after.to_datetime(),
    );
    assert_eq!(
        (nb.month(), nb.day(), nb.time()),
        (na.month(), na.day(), na.time())
    );
    na.year() - nb.year()
}

fn compare_certs(ours: &X509Certificate<'_>, go: &X509Certificate<'_>) {
    assert_eq!(ours.version(), go.version());
    assert_eq!(ours.signature_algorithm, go.signature_algorithm);
    assert_eq!(ours.tbs_certificate.signature, go.tbs_certificate.signature);
    assert_eq!(ours.subject().as_raw(), go.subject().as_raw());
    assert_eq!(ours.issuer().as_raw(), go.issuer().as_raw());
    assert_eq!(extensions(ours), extensions(go));
    let serial = ours.raw_serial();
    assert!(serial.len() == 16 && serial[0] & 0x80 == 0, "{serial:02x?}");
}

#[test]
fn outputs_match_go_field_by_field() {
    let dir = TempDir::new("certs-format");
    let p = |n: &str| dir.path(n).display().to_string();
    let (ca_crt, ca_key) = (p("ca.crt"), p("ca.key"));
    ok(&[
        "--cert-init",
        "commonname=Receptor Test CA",
        "bits=2048",
        &format!("outcert={ca_crt}"),
        &format!("outkey={ca_key}"),
    ]);
    ok(&[
        "--cert-makereq",
        "bits=2048",
        "commonname=node1",
        "dnsname=localhost",
        "ipaddress=127.0.0.1",
        "nodeid=node1",
        &format!("outreq={}", p("node1.csr")),
        &format!("outkey={}", p("node1.key")),
    ]);
    ok(&[
        "--cert-signreq",
        &format!("req={}", p("node1.csr")),
        &format!("cacert={ca_crt}"),
        &format!("cakey={ca_key}"),
        &format!("outcert={}", p("node1.crt")),
        "verify=true",
    ]);
    ok(&[
        "--cert-makereq",
        "bits=2048",
        "commonname=multi node",
        "dnsname=a.example",
        "dnsname=b.example",
        "ipaddress=::1",
        "ipaddress=10.1.2.3",
        "nodeid=n1",
        "nodeid=n2",
        &format!("outreq={}", p("multi.csr")),
        &format!("outkey={}", p("multi.key")),
    ]);
    ok(&[
        "--cert-signreq",
        &format!("req={}", p("multi.csr")),
        &format!("cacert={ca_crt}"),
        &format!("cakey={ca_key}"),
        &format!("outcert={}", p("multi.crt")),
        "notbefore=2024-01-02T03:04:05Z",
        "notafter=2051-01-01T00:00:00Z",
        "verify=true",
    ]);

    for key in ["ca.key", "node1.key", "multi.key"] {
        let ours = same_label(&dir.path(key), &vector(key));
        let go = pem_file(&vector(key)).1;
        assert_eq!(pkcs1_modulus_bits(&ours), pkcs1_modulus_bits(&go), "{key}");
    }
    for csr in ["node1.csr", "multi.csr"] {
        let (ours, go) = (
            same_label(&dir.path(csr), &vector(csr)),
            pem_file(&vector(csr)).1,
        );
        let (ours, go) = (req(&ours), req(&go));
        let (oi, gi) = (
            &ours.certification_request_info,
            &go.certification_request_info,
        );
        assert_eq!(oi.version, gi.version);
        assert_eq!(oi.subject.as_raw(), gi.subject.as_raw(), "{csr}");
        assert_eq!(oi.subject_pki.algorithm, gi.subject_pki.algorithm);
        // The extension request with the subjectAltName, byte for byte.
        assert_eq!(oi.attributes(), gi.attributes(), "{csr}");
        assert_eq!(ours.signature_algorithm, go.signature_algorithm);
    }
    let go_ca_der = pem_file(&vector("ca.crt")).1;
    let ours_ca_der = same_label(&dir.path("ca.crt"), &vector("ca.crt"));
    let (go_ca, ours_ca) = (cert(&go_ca_der), cert(&ours_ca_der));
    compare_certs(&ours_ca, &go_ca);
    assert_eq!((validity_years(&ours_ca), validity_years(&go_ca)), (10, 10));
    ours_ca.verify_signature(None).unwrap();
    for crt in ["node1.crt", "multi.crt"] {
        let (ours_der, go_der) = (
            same_label(&dir.path(crt), &vector(crt)),
            pem_file(&vector(crt)).1,
        );
        let (ours, go) = (cert(&ours_der), cert(&go_der));
        compare_certs(&ours, &go);
        assert_eq!(key_id(&ours, "2.5.29.35"), key_id(&ours_ca, "2.5.29.14"));
        assert_eq!(key_id(&go, "2.5.29.35"), key_id(&go_ca, "2.5.29.14"));
        ours.verify_signature(Some(ours_ca.public_key())).unwrap();
    }
    let (ours, go) = (
        same_label(&dir.path("node1.crt"), &vector("node1.crt")),
        pem_file(&vector("node1.crt")).1,
    );
    assert_eq!(
        (validity_years(&cert(&ours)), validity_years(&cert(&go))),
        (1, 1)
    );
    let (ours, go) = (
        same_label(&dir.path("multi.crt"), &vector("multi.crt")),
        pem_file(&vector("multi.crt")).1,
    );
    assert_eq!(cert(&ours).validity(), cert(&go).validity());
    assert_eq!(
        receptor_tokio::tls::node_ids_in_cert(&ours).unwrap(),
        ["n1", "n2"]
    );
}

#[test]
fn go_requests_and_keys_work_with_our_commands() {
    let dir = TempDir::new("certs-cross");
    let p = |n: &str| dir.path(n).display().to_string();
    let v = |n: &str| vector(n).display().to_string();
    // Go's CA signs with our command; the request's subjectAltName is copied verbatim.
    let sign = |req: &str, out: &str, input: &str| {
        receptor(
            &[
                "--cert-signreq",
                &format!("req={req}"),
                &format!("cacert={}", v("ca.crt")),
                &format!("cakey={}", v("ca.key")),
                &format!("outcert={out}"),
            ],
            input,
        )
    };
    let o = sign(&v("multi.csr"), &p("multi.crt"), "yes\n");
    assert!(o.status.success(), "{}", stdout(&o));
    // Go's prompt, as its command printed it for this request.
    assert_eq!(
        stdout(&o),
        "Requested certificate:\n  Subject: CN=multi node\n  Encryption Algorithm: RSA (2048 bits)\n  \
         Signature Algorithm: SHA256-RSA\n  Names:\n    DNS Name: a.example\n    DNS Name: b.example\n    \
         IP Address: ::1\n    IP Address: 10.1.2.3\n    Receptor Node ID: n1\n    Receptor Node ID: n2\n\
         Sign certificate (yes/no)? "
    );
    let ours = pem_file(&dir.path("multi.crt")).1;
    let go = pem_file(&vector("multi.crt")).1;
    let go_ca = pem_file(&vector("ca.crt")).1;
    cert(&ours)
        .verify_signature(Some(cert(&go_ca).public_key()))
        .unwrap();
    let san = |der: &[u8]| {
        let c = cert(der);
        let e = c
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.17");
        e.unwrap().value.to_vec()
    };
    assert_eq!(san(&ours), san(&go));
    assert_eq!(cert(&ours).public_key().raw, cert(&go).public_key().raw);

    let o = sign(&v("node1.csr"), &p("x.crt"), "No\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).ends_with("(yes/no)? Error: user declined\n"));
    let o = sign(&v("node1.csr"), &p("x.crt"), "");
    assert!(stdout(&o).ends_with("(yes/no)? Error: EOF\n"));
    assert!(!dir.path("x.crt").exists());

    // A request for Go's key, from our command, carries that key.
    ok(&[
        "--cert-makereq",
        "commonname=node1",
        "nodeid=node1",
        &format!("inkey={}", v("node1.key")),
        &format!("outreq={}", p("again.csr")),
    ]);
    let again = pem_file(&dir.path("again.csr")).1;
    let go_req = pem_file(&vector("node1.csr")).1;
    assert_eq!(
        req(&again).certification_request_info.subject_pki.raw,
        req(&go_req).certification_request_info.subject_pki.raw
    );
}

#[test]
fn errors_are_gos() {
    let dir = TempDir::new("certs-errors");
    let p = |n: &str| dir.path(n).display().to_string();
    let v = |n: &str| vector(n).display().to_string();
    let out = format!("outreq={}", p("r.csr"));
    fails(
        &["--cert-makereq", "commonname=x", &out],
        "must provide either InKey or OutKey",
    );
    let inkey = format!("inkey={}", v("node1.key"));
    let outkey = format!("outkey={}", p("k.key"));
    fails(
        &["--cert-makereq", "commonname=x", &out, &inkey, &outkey],
        "cannot use both InKey and OutKey",
    );
    fails(
        &["--cert-makereq", "commonname=x", &out, &inkey, "bits=2048"],
        "cannot specify key bits when reading an already-existing key",
    );
    fails(
        &["--cert-makereq", "commonname=x", &out, &outkey],
        "must specify key bits when creating a new key",
    );
    fails(
        &["--cert-makereq", "commonname=x", &out, &outkey, "bits=1024"],
        "unsupported RSA key size 1024 bits: use 2048, 3072 or 4096",
    );
    fails(
        &[
            "--cert-makereq",
            "commonname=x",
            &out,
            &inkey,
            "ipaddress=1.2.3",
        ],
        "invalid IP address: 1.2.3",
    );
    fails(
        &[
            "--cert-makereq",
            "commonname=x",
            &out,
            &format!("inkey={}", v("ca.crt")),
        ],
        &format!("no private keys in file {}", v("ca.crt")),
    );
    // A request with no names is made, and refused at signing.
    ok(&["--cert-makereq", "commonname=x", &out, &inkey]);
    let signreq = |req: &str, cacert: &str, cakey: &str| {
        vec![
            "--cert-signreq".to_owned(),
            format!("req={req}"),
            format!("cacert={cacert}"),
            format!("cakey={cakey}"),
            format!("outcert={}", p("c.crt")),
            "verify=true".to_owned(),
        ]
    };
    let run = |a: Vec<String>, want: &str| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        fails(&a, want);
    };
    run(
        signreq(&p("r.csr"), &v("ca.crt"), &v("ca.key")),
        "cannot sign: no names found in certificate",
    );
    run(
        signreq(&v("node1.csr"), &v("ca.crt"), &v("node1.key")),
        "x509: provided PrivateKey doesn't match parent's PublicKey",
    );
    run(
        signreq(&v("ca.crt"), &v("ca.crt"), &v("ca.key")),
        "certificate request file does not contain certificate request data",
    );
    run(
        signreq(&v("node1.csr"), &v("ca.key"), &v("ca.key")),
        "certificate file does not contain certificate data",
    );
    run(
        signreq(&p("missing.csr"), &v("ca.crt"), &v("ca.key")),
        &format!("open {}: no such file or directory", p("missing.csr")),
    );
    // A request whose signature does not verify (one byte of its key changed) is refused.
    let mut bad = pem_file(&vector("node1.csr")).1;
    let at = bad.len() / 2;
    bad[at] ^= 1;
    std::fs::write(
        dir.path("bad.csr"),
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", bad)),
    )
    .unwrap();
    let o = receptor(
        &signreq(&p("bad.csr"), &v("ca.crt"), &v("ca.key"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).starts_with("Error: "), "{}", stdout(&o));
    fails(
        &[
            "--cert-init",
            "commonname=x",
            "bits=2048",
            "notbefore=2020-01-01",
            &format!("outcert={}", p("ca.crt")),
            &format!("outkey={}", p("ca.key")),
        ],
        "parsing time \"2020-01-01\": not an RFC 3339 date/time such as 2006-01-02T15:04:05Z07:00",
    );
}

/// Starts a node whose TLS server and client use `name`'s certificate from our commands.
fn tls_node(dir: &TempDir, name: &str, ca: &str, backend: &str) -> Proc {
    let (crt, key) = (
        dir.path(&format!("{name}.crt")),
        dir.path(&format!("{name}.key")),
    );
    let (crt, key) = (crt.display(), key.display());
    let sock = dir.path(&format!("{name}.sock"));
    start_yaml(
        dir,
        name,
        &format!(
            "- node:\n    id: {name}\n- log-level: debug\n\
             - tls-server:\n    name: srv\n    cert: {crt}\n    key: {key}\n    requireclientcert: true\n    clientcas: {ca}\n\
             - tls-client:\n    name: cli\n    cert: {crt}\n    key: {key}\n    rootcas: {ca}\n\
             - control-service:\n    filename: {}\n\
             - control-service:\n    service: tlsctl\n    tls: srv\n{backend}",
            sock.display()
        ),
    )
}

#[test]
fn certificates_from_our_commands_run_a_mutual_tls_mesh() {
    let dir = TempDir::new("certs-mesh");
    let p = |n: &str| dir.path(n).display().to_string();
    let ca = p("ca.crt");
    ok(&[
        "--cert-init",
        "commonname=Mesh CA",
        "bits=2048",
        &format!("outcert={ca}"),
        &format!("outkey={}", p("ca.key")),
    ]);
    for n in ["A", "B"] {
        ok(&[
            "--cert-makereq",
            "bits=2048",
            &format!("commonname={n}"),
            "dnsname=localhost",
            &format!("nodeid={n}"),
            &format!("outreq={}", p(&format!("{n}.csr"))),
            &format!("outkey={}", p(&format!("{n}.key"))),
        ]);
        ok(&[
            "--cert-signreq",
            &format!("req={}", p(&format!("{n}.csr"))),
            &format!("cacert={ca}"),
            &format!("cakey={}", p("ca.key")),
            &format!("outcert={}", p(&format!("{n}.crt"))),
            "verify=yes",
        ]);
    }
    let port = free_port();
    let b = tls_node(
        &dir,
        "B",
        &ca,
        &format!("- tcp-listener:\n    bindaddr: 127.0.0.1\n    port: {port}\n    tls: srv\n"),
    );
    let a = tls_node(
        &dir,
        "A",
        &ca,
        &format!("- tcp-peer:\n    address: localhost:{port}\n    tls: cli\n"),
    );
    let (a_sock, b_sock) = (dir.path("A.sock"), dir.path("B.sock"));
    wait_for_path(&a_sock, Duration::from_secs(10));
    wait_for_path(&b_sock, Duration::from_secs(10));
    eventually(
        Duration::from_secs(20),
        "A and B to connect over TLS",
        || status_json(&a_sock)["RoutingTable"]["B"] == "B",
    );
    // Each dials the other's TLS control service over the mesh: both ends check the other's
    // node ID in its certificate.
    for (from, to) in [(&a_sock, "B"), (&b_sock, "A")] {
        let mut c = RawControl::new(from);
        assert_eq!(c.line(&format!("connect {to} tlsctl cli")), "Connecting\n");
        let mut greeting = String::new();
        std::io::BufRead::read_line(&mut c.r, &mut greeting).unwrap();
        assert_eq!(
            greeting,
            format!("Receptor Control, node {to}\n"),
            "{}",
            a.log_text()
        );
    }
    drop((a, b));
}
