use super::support::*;

// ---------------------------------------------------------------------------------------
// Mesh-stream (QUIC) user TLS: node-ID binding

#[test]
fn stream_client_requires_target_node_id_not_dns() {
    let w = World::new();
    let srv = server(&w.server_params());
    let cli = client(&w.client_params());
    // The dial name is irrelevant: no DNS check, no SNI.
    let done = handshake(
        cli.stream_config("server-node").unwrap(),
        srv.stream_config().unwrap(),
        "not.the.host",
    )
    .unwrap();
    assert_eq!(done.server.server_name(), None);
    assert_eq!(done.client.alpn_protocol(), Some(ALPN_NETCEPTOR));
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let err = handshake(
        cli.stream_config("other-node").unwrap(),
        srv.stream_config().unwrap(),
        "localhost",
    )
    .unwrap_err();
    assert!(
        err.contains("x509: certificate is valid for Receptor node ID server-node, not other-node"),
        "{err}"
    );
    // Wrong CA still fails in stream mode.
    let cli = client(&TlsClientParams {
        root_cas: Some(w.other_ca.clone()),
        ..w.client_params()
    });
    assert!(
        handshake(
            cli.stream_config("server-node").unwrap(),
            srv.stream_config().unwrap(),
            "x"
        )
        .is_err()
    );
}

#[test]
fn stream_server_binds_client_cert_to_remote_node() {
    let w = World::new();
    let srv = server(&TlsServerParams {
        require_client_cert: true,
        client_cas: Some(w.ca.clone()),
        ..w.server_params()
    });
    let cli = client(&w.client_params());
    let cfg = || cli.stream_config("server-node").unwrap();
    handshake(
        cfg(),
        srv.stream_config_for_peer("client-node").unwrap(),
        "x",
    )
    .unwrap();
    let err = handshake(cfg(), srv.stream_config_for_peer("impostor").unwrap(), "x").unwrap_err();
    assert!(
        err.starts_with("server:") && err.contains("not impostor"),
        "{err}"
    );
    // With only clientcas, node IDs are not checked on the server side.
    let srv = server(&TlsServerParams {
        client_cas: Some(w.ca.clone()),
        ..w.server_params()
    });
    let done = handshake(cfg(), srv.stream_config_for_peer("impostor").unwrap(), "x").unwrap();
    // The post-handshake helper gives the same answer as the per-connection verifier.
    let chain = done.server.peer_certificates();
    tls::check_peer_node_id(chain, "client-node").unwrap();
    assert!(matches!(
        tls::check_peer_node_id(chain, "impostor"),
        Err(TlsError::CertName(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Startup node-ID check and loading errors

/// Configs built from PEM bytes held in memory (no file read) verify node IDs as the ones
/// loaded from files do; a path the source lacks fails as an unreadable file.
#[test]
fn configs_from_memory() {
    let w = World::new();
    let mut mem = PemMemory::new();
    mem.insert("s.crt", w.server.cert.pem())
        .insert("s.key", w.server.key.serialize_pem())
        .insert("ca.crt", w.ca_issuer.cert.pem());
    let params = TlsServerParams {
        name: "srv".into(),
        cert: "s.crt".into(),
        key: "s.key".into(),
        ..Default::default()
    };
    let server = TlsServer::from_source(&params, "server-node", &mut mem).unwrap();
    let client_params = TlsClientParams {
        name: "cli".into(),
        root_cas: Some("ca.crt".into()),
        ..Default::default()
    };
    let client = TlsClient::from_source(&client_params, "anyone", &mut mem).unwrap();
    let done = handshake(
        client.stream_config("server-node").unwrap(),
        server.stream_config().unwrap(),
        "ignored",
    )
    .unwrap();
    assert_eq!(done.client.alpn_protocol(), Some(ALPN_NETCEPTOR));
    let err = handshake(
        client.stream_config("elsewhere").unwrap(),
        server.stream_config().unwrap(),
        "ignored",
    )
    .unwrap_err();
    assert!(err.contains("not elsewhere"), "{err}");
    let missing = TlsServerParams {
        key: "absent.key".into(),
        ..params
    };
    assert!(matches!(
        TlsServer::from_source(&missing, "server-node", &mut mem),
        Err(TlsError::ReadFile { param: "key", .. })
    ));
}

#[test]
fn startup_check_requires_own_node_id() {
    let w = World::new();
    let err = TlsServer::load(&w.server_params(), "another-node").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "nodeID=another-node not found in certificate name(s); names found=[server-node]; cfg section=srv; server cert={}",
            w.server_cert.display()
        )
    );
    TlsServer::load(
        &TlsServerParams {
            skip_receptor_names_check: true,
            ..w.server_params()
        },
        "another-node",
    )
    .unwrap();
    assert!(TlsClient::load(&w.client_params(), "server-node").is_err());
    // A client without a certificate has nothing to check.
    TlsClient::load(
        &TlsClientParams {
            cert: None,
            key: None,
            ..w.client_params()
        },
        "anyone",
    )
    .unwrap();
    receptor_core::os::tls::check_own_cert_names("srv", &w.server_cert, "server-node", false)
        .unwrap();
    receptor_core::os::tls::check_own_cert_names("srv", &w.server_cert, "nope", true).unwrap();
    assert!(matches!(
        receptor_core::os::tls::check_own_cert_names("srv", &w.server_cert, "nope", false),
        Err(TlsError::NodeIdNotInCert { .. })
    ));
}

#[test]
fn node_ids_extracted_from_generated_cert() {
    let ca = Ca::new("ca");
    let leaf = ca.leaf(&["node1", "node-2", "foobar"], both());
    assert_eq!(
        tls::node_ids_in_cert(leaf.der()).unwrap(),
        ["node1", "node-2", "foobar"]
    );
    // rcgen encodes the SAN entry byte for byte like Go (netceptor spec §2.6).
    let foobar: &[u8] = &[
        0xa0, 0x15, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x92, 0x08, 0x13, 0x01, 0xa0, 0x08,
        0x0c, 0x06, 0x66, 0x6f, 0x6f, 0x62, 0x61, 0x72,
    ];
    assert!(leaf.der().windows(foobar.len()).any(|w| w == foobar));
    let none = ca.leaf(&[], both());
    assert!(tls::node_ids_in_cert(none.der()).unwrap().is_empty());
    assert!(tls::node_ids_in_cert(ca.cert.der()).unwrap().is_empty());
}

#[test]
fn loading_errors_name_the_file() {
    let w = World::new();
    let missing = w.dir.0.join("missing.crt");
    let err = TlsServer::load(
        &TlsServerParams {
            cert: missing.clone(),
            ..w.server_params()
        },
        "server-node",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cert") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    let err = TlsServer::load(
        &TlsServerParams {
            key: w.client_key.clone(),
            ..w.server_params()
        },
        "server-node",
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    let err = TlsServer::load(
        &TlsServerParams {
            key: w.server_cert.clone(),
            ..w.server_params()
        },
        "server-node",
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
    let err = TlsClient::load(
        &TlsClientParams {
            key: None,
            ..w.client_params()
        },
        "client-node",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cert and key must both be supplied or neither"
    );
    let err = TlsClient::load(
        &TlsClientParams {
            root_cas: Some(missing),
            ..w.client_params()
        },
        "client-node",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("error reading rootcas file"), "{err}");
    let err = TlsClient::load(
        &TlsClientParams {
            pinned_server_cert: vec!["abcd".into()],
            skip_receptor_names_check: true,
            ..w.client_params()
        },
        "c",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("fingerprints must be 32 or 64 bytes"), "{err}");
    let garbage = w.dir.write(
        "garbage.crt",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let err = TlsServer::load(
        &TlsServerParams {
            cert: garbage,
            ..w.server_params()
        },
        "server-node",
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::Pem { param: "cert", .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Insecure mesh-stream mode

#[test]
fn insecure_mode_accepts_its_cn_even_when_expired() {
    let insecure_client = insecure::insecure_client_config().unwrap();
    let done = handshake(
        insecure_client.clone(),
        insecure::insecure_server_config(SystemTime::now()).unwrap(),
        "dialer",
    )
    .unwrap();
    let chain = done.client.peer_certificates().unwrap();
    assert!(insecure::chain_has_insecure_cn(chain));
    assert_eq!(done.client.alpn_protocol(), Some(ALPN_NETCEPTOR));
    // Go's order, AES-128-GCM first: it seals every byte of a mesh stream.
    assert_eq!(
        done.client.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    assert!(
        done.server.peer_certificates().is_none(),
        "no client certificate requested"
    );
    // A certificate generated three days ago expired two days ago: still accepted.
    let old = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    handshake(
        insecure_client,
        insecure::insecure_server_config(old).unwrap(),
        "dialer",
    )
    .unwrap();
}

#[test]
fn insecure_mode_rejects_other_cn_and_cross_mode() {
    let w = World::new();
    let insecure_client = insecure::insecure_client_config().unwrap();
    // A user-TLS server (real cert, different CN) is refused by an insecure client.
    let srv = server(&w.server_params());
    let err = handshake(
        insecure_client.clone(),
        srv.stream_config().unwrap(),
        "dialer",
    )
    .unwrap_err();
    assert!(
        err.contains("insecure connection to secure service"),
        "{err}"
    );
    // A self-signed cert with another CN is refused too.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "netceptor-insecure-common-name-not");
    let cert = params.self_signed(&key).unwrap();
    let other = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let mut other = other;
    other.alpn_protocols = vec![ALPN_NETCEPTOR.to_vec()];
    assert!(handshake(insecure_client, Arc::new(other), "dialer").is_err());
    // And a user-TLS client refuses the self-signed insecure cert.
    let cli = client(&w.client_params());
    let err = handshake(
        cli.stream_config("server-node").unwrap(),
        insecure::insecure_server_config(SystemTime::now()).unwrap(),
        "x",
    )
    .unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
}

#[test]
fn insecure_cert_matches_go_template() {
    let now = SystemTime::now();
    let (cert, _key) = insecure::generate_insecure_cert(now).unwrap();
    assert!(insecure::chain_has_insecure_cn([&cert]));
    assert!(tls::node_ids_in_cert(&cert).unwrap().is_empty());
    // Serial number 1: INTEGER 02 01 01 right after the [0] version field.
    let der: &[u8] = &cert;
    let pos = der
        .windows(5)
        .position(|w| w == [0xa0, 0x03, 0x02, 0x01, 0x02])
        .unwrap();
    assert_eq!(&der[pos + 5..pos + 8], &[0x02, 0x01, 0x01]);
    assert_eq!(INSECURE_COMMON_NAME, "netceptor-insecure-common-name");
}

/// A server that presents `cert` but signs the handshake with an unrelated key.
fn impostor_server(cert: CertificateDer<'static>) -> Arc<ServerConfig> {
    let wrong_key = KeyPair::generate().unwrap();
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
        wrong_key.serialize_der().into(),
    ))
    .unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![cert], signer);
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN_NETCEPTOR.to_vec()];
    Arc::new(config)
}

#[test]
fn handshake_signature_is_checked_even_without_cert_checks() {
    // Insecure mode: the right CN is not enough without the matching key.
    let (cert, _key) = insecure::generate_insecure_cert(SystemTime::now()).unwrap();
    let insecure_client = insecure::insecure_client_config().unwrap();
    let err = handshake(insecure_client, impostor_server(cert), "dialer").unwrap_err();
    assert!(err.contains("BadSignature"), "{err}");
    // insecureskipverify: same.
    let w = World::new();
    let cli = client(&TlsClientParams {
        insecure_skip_verify: true,
        ..w.client_params()
    });
    let err = handshake(
        cli.stream_config("server-node").unwrap(),
        impostor_server(w.server.der().clone()),
        "x",
    )
    .unwrap_err();
    assert!(err.contains("BadSignature"), "{err}");
}
