use super::support::*;

// ---------------------------------------------------------------------------------------
// Backend (tcp/ws) TLS

#[test]
fn backend_good_ca_passes_for_dns_and_ip() {
    let w = World::new();
    let srv = server(&w.server_params());
    let cli = client(&w.client_params());
    let done = backend(&srv, &cli, "localhost").unwrap();
    assert_eq!(done.server.server_name(), Some("localhost"), "SNI is sent");
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    backend(&srv, &cli, "127.0.0.1").unwrap();
    let name = tls::server_name_for_host("[::1]").unwrap();
    assert!(matches!(name, ServerName::IpAddress(_)));
}

#[test]
fn backend_wrong_ca_or_wrong_host_refused() {
    let w = World::new();
    let srv = server(&w.server_params());
    let cli = client(&TlsClientParams {
        root_cas: Some(w.other_ca.clone()),
        ..w.client_params()
    });
    let err = backend(&srv, &cli, "localhost").unwrap_err();
    assert!(
        err.starts_with("client:") && err.contains("UnknownIssuer"),
        "{err}"
    );
    let cli = client(&w.client_params());
    let err = backend(&srv, &cli, "otherhost").unwrap_err();
    assert!(
        err.starts_with("client:") && err.contains("not valid for name"),
        "{err}"
    );
}

#[test]
fn backend_empty_rootcas_file_loads_but_rejects_everything() {
    let w = World::new();
    let empty = w.dir.write("empty.crt", "no certificates here\n");
    let cli = client(&TlsClientParams {
        root_cas: Some(empty),
        ..w.client_params()
    });
    assert!(backend(&server(&w.server_params()), &cli, "localhost").is_err());
}

#[test]
fn pinned_server_fingerprint_match_and_mismatch() {
    let w = World::new();
    let srv = server(&w.server_params());
    let good = sha256_hex(w.server.der());
    let sha512: String = sha512_hex(w.server.der());
    let cli = client(&TlsClientParams {
        pinned_server_cert: vec![sha512, good],
        ..w.client_params()
    });
    backend(&srv, &cli, "localhost").unwrap();
    let bad = sha256_hex(w.client.der());
    let cli = client(&TlsClientParams {
        pinned_server_cert: vec![bad.clone()],
        ..w.client_params()
    });
    let err = backend(&srv, &cli, "localhost").unwrap_err();
    assert!(
        err.contains("does not match any pinned fingerprint"),
        "{err}"
    );
    // Pins apply to mesh streams too.
    let err = handshake(
        cli.stream_config("server-node").unwrap(),
        srv.stream_config().unwrap(),
        "x",
    )
    .unwrap_err();
    assert!(
        err.contains("does not match any pinned fingerprint"),
        "{err}"
    );
}
#[test]
fn insecureskipverify_disables_every_check_and_sni() {
    let w = World::new();
    let srv = server(&w.server_params());
    let cli = client(&TlsClientParams {
        root_cas: Some(w.other_ca.clone()),
        insecure_skip_verify: true,
        pinned_server_cert: vec![sha256_hex(w.client.der())],
        ..w.client_params()
    });
    let done = backend(&srv, &cli, "wrong.example").unwrap();
    assert_eq!(
        done.server.server_name(),
        None,
        "Go leaves ServerName empty"
    );
    handshake(
        cli.stream_config("not-the-server").unwrap(),
        srv.stream_config().unwrap(),
        "x",
    )
    .unwrap();
}

#[test]
fn require_client_cert_with_and_without_cert() {
    let w = World::new();
    let params = TlsServerParams {
        require_client_cert: true,
        client_cas: Some(w.ca.clone()),
        ..w.server_params()
    };
    let srv = server(&params);
    assert_eq!(srv.client_auth(), ClientAuthMode::Require);
    let done = backend(&srv, &client(&w.client_params()), "localhost").unwrap();
    let presented = done.server.peer_certificates().unwrap();
    assert_eq!(presented[0], *w.client.der());
    let anonymous = client(&TlsClientParams {
        cert: None,
        key: None,
        ..w.client_params()
    });
    let err = backend(&srv, &anonymous, "localhost").unwrap_err();
    assert!(
        err.starts_with("server:") && err.contains("no certificates"),
        "{err}"
    );
    // A client cert from another CA is refused.
    let stranger = Ca::new("stranger").leaf(&["client-node"], both());
    let (cert, key) = w.write_leaf("stranger", &stranger);
    let cli = client(&TlsClientParams {
        cert: Some(cert),
        key: Some(key),
        ..w.client_params()
    });
    let err = backend(&srv, &cli, "localhost").unwrap_err();
    assert!(
        err.starts_with("server:") && err.contains("UnknownIssuer"),
        "{err}"
    );
}

#[test]
fn client_cert_needs_client_auth_eku() {
    let w = World::new();
    let srv = server(&TlsServerParams {
        require_client_cert: true,
        client_cas: Some(w.ca.clone()),
        ..w.server_params()
    });
    let server_only = w.ca_issuer.leaf(&["client-node"], vec![Eku::ServerAuth]);
    let (cert, key) = w.write_leaf("server-only", &server_only);
    let cli = client(&TlsClientParams {
        cert: Some(cert),
        key: Some(key),
        ..w.client_params()
    });
    let err = backend(&srv, &cli, "localhost").unwrap_err();
    assert!(err.starts_with("server:"), "{err}");
}

#[test]
fn server_cert_needs_server_auth_eku() {
    let w = World::new();
    let client_only = w.ca_issuer.leaf(&["server-node"], vec![Eku::ClientAuth]);
    let (cert, key) = w.write_leaf("client-only", &client_only);
    let srv = server(&TlsServerParams {
        cert,
        key,
        ..w.server_params()
    });
    let err = backend(&srv, &client(&w.client_params()), "localhost").unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
}

#[test]
fn clientcas_only_effectively_requires_a_cert() {
    let w = World::new();
    let srv = server(&TlsServerParams {
        client_cas: Some(w.ca.clone()),
        ..w.server_params()
    });
    assert_eq!(srv.client_auth(), ClientAuthMode::VerifyIfGiven);
    backend(&srv, &client(&w.client_params()), "localhost").unwrap();
    let anonymous = client(&TlsClientParams {
        cert: None,
        key: None,
        ..w.client_params()
    });
    assert!(backend(&srv, &anonymous, "localhost").is_err());
}

#[test]
fn no_client_auth_ignores_client_pins() {
    let w = World::new();
    let srv = server(&TlsServerParams {
        pinned_client_cert: vec![sha256_hex(w.server.der())],
        ..w.server_params()
    });
    assert_eq!(srv.client_auth(), ClientAuthMode::None);
    let done = backend(&srv, &client(&w.client_params()), "localhost").unwrap();
    assert!(
        done.server.peer_certificates().is_none(),
        "no certificate requested"
    );
}

#[test]
fn pinned_client_cert_match_and_mismatch() {
    let w = World::new();
    let base = TlsServerParams {
        require_client_cert: true,
        client_cas: Some(w.ca.clone()),
        ..w.server_params()
    };
    let srv = server(&TlsServerParams {
        pinned_client_cert: vec![sha256_hex(w.client.der())],
        ..base.clone()
    });
    backend(&srv, &client(&w.client_params()), "localhost").unwrap();
    let srv = server(&TlsServerParams {
        pinned_client_cert: vec![sha256_hex(w.server.der())],
        ..base
    });
    let err = backend(&srv, &client(&w.client_params()), "localhost").unwrap_err();
    assert!(
        err.starts_with("server:") && err.contains("pinned fingerprint"),
        "{err}"
    );
    // Go's per-connection stream config replaces the verify callback: no pins there.
    let cli = client(&w.client_params());
    handshake(
        cli.stream_config("server-node").unwrap(),
        srv.stream_config_for_peer("client-node").unwrap(),
        "x",
    )
    .unwrap();
}

#[test]
fn alpn_and_tls12_suites_and_groups_follow_go() {
    let w = World::new();
    let srv = server(&w.server_params());
    let cli = client(&w.client_params());
    let done = handshake(
        cli.backend_config(&[ALPN_HTTP11]).unwrap(),
        srv.backend_config(&[ALPN_HTTP11]).unwrap(),
        "localhost",
    )
    .unwrap();
    assert_eq!(done.client.alpn_protocol(), Some(ALPN_HTTP11));
    // Without mintls13 only P-384/P-256 are offered (Go: P-521/P-384/P-256, no X25519).
    let group = done.client.negotiated_key_exchange_group().unwrap().name();
    assert!(
        matches!(
            group,
            rustls::NamedGroup::secp384r1 | rustls::NamedGroup::secp256r1
        ),
        "{group:?}"
    );

    // A peer that only speaks X25519 fails, as against Go (spec §11.1 item 14).
    let x25519_only = raw_server(
        &w,
        |p| p.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
        false,
    );
    assert!(
        handshake(
            cli.backend_config(&[]).unwrap(),
            x25519_only.clone(),
            "localhost"
        )
        .is_err()
    );
    let cli13 = client(&TlsClientParams {
        min_tls13: true,
        ..w.client_params()
    });
    let done = handshake(cli13.backend_config(&[]).unwrap(), x25519_only, "localhost").unwrap();
    assert_eq!(
        done.client.negotiated_key_exchange_group().unwrap().name(),
        rustls::NamedGroup::X25519
    );

    // TLS 1.2 works without mintls13, with a suite from Go's list (ECDSA leaf: AES-128 only).
    let tls12_only = raw_server(&w, |_| {}, true);
    let done = handshake(
        cli.backend_config(&[]).unwrap(),
        tls12_only.clone(),
        "localhost",
    )
    .unwrap();
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        done.client.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
    assert!(handshake(cli13.backend_config(&[]).unwrap(), tls12_only, "localhost").is_err());
}
