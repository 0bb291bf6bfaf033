//! Fixtures: temp dirs, files of CAs and leaves with Receptor node-ID SANs (from
//! `receptor_tests::pki`), and an
//! in-memory handshake pump between a rustls client and server.

pub(crate) use std::path::PathBuf;
pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
pub(crate) use std::time::{Duration, SystemTime};

pub(crate) use rcgen::{CertificateParams, DnType, KeyPair};
pub(crate) use receptor_core::tls::insecure::{self, INSECURE_COMMON_NAME};
pub(crate) use receptor_core::tls::{
    self, ALPN_HTTP11, ALPN_NETCEPTOR, ClientAuthMode, Fingerprint, PemMemory, TlsClient,
    TlsClientParams, TlsError, TlsServer, TlsServerParams,
};
pub(crate) use receptor_tests::pki::{Ca, Eku, Leaf, both};
pub(crate) use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
pub(crate) use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection,
};

// ---------------------------------------------------------------------------------------
// Fixtures

/// A temporary directory removed on drop (std only, to keep dev-dependencies small).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "receptor-tls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One test world: a CA, a second unrelated CA, and files for a server and a client leaf.
pub(crate) struct World {
    pub(crate) dir: TempDir,
    pub(crate) ca: PathBuf,
    pub(crate) other_ca: PathBuf,
    pub(crate) server: Leaf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client: Leaf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
    pub(crate) ca_issuer: Ca,
}

impl World {
    pub(crate) fn new() -> Self {
        let dir = TempDir::new();
        let ca_issuer = Ca::new("receptor test CA");
        let other = Ca::new("someone else's CA");
        let server = ca_issuer.leaf(&["server-node"], both());
        let client = ca_issuer.leaf(&["client-node"], both());
        Self {
            ca: dir.write("ca.crt", &ca_issuer.cert.pem()),
            other_ca: dir.write("other-ca.crt", &other.cert.pem()),
            server_cert: dir.write("server.crt", &server.cert.pem()),
            server_key: dir.write("server.key", &server.key.serialize_pem()),
            client_cert: dir.write("client.crt", &client.cert.pem()),
            client_key: dir.write("client.key", &client.key.serialize_pem()),
            server,
            client,
            ca_issuer,
            dir,
        }
    }

    pub(crate) fn server_params(&self) -> TlsServerParams {
        TlsServerParams {
            name: "srv".into(),
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            ..Default::default()
        }
    }

    pub(crate) fn client_params(&self) -> TlsClientParams {
        TlsClientParams {
            name: "cli".into(),
            cert: Some(self.client_cert.clone()),
            key: Some(self.client_key.clone()),
            root_cas: Some(self.ca.clone()),
            ..Default::default()
        }
    }

    /// Writes an extra leaf's files and returns (cert, key) paths.
    pub(crate) fn write_leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        (
            self.dir.write(&format!("{name}.crt"), &leaf.cert.pem()),
            self.dir
                .write(&format!("{name}.key"), &leaf.key.serialize_pem()),
        )
    }
}

pub(crate) fn server(params: &TlsServerParams) -> TlsServer {
    TlsServer::load(params, "server-node").unwrap()
}

pub(crate) fn client(params: &TlsClientParams) -> TlsClient {
    TlsClient::load(params, "client-node").unwrap()
}

pub(crate) fn sha256_hex(der: &[u8]) -> String {
    Fingerprint::sha256_of(der)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---------------------------------------------------------------------------------------
// In-memory handshake pump

pub(crate) struct Done {
    pub(crate) client: ClientConnection,
    pub(crate) server: ServerConnection,
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handshake completed")
    }
}

/// Runs a handshake to completion (or first error, prefixed with the failing side), then
/// sends one application message each way.
pub(crate) fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> Result<Done, String> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = ClientConnection::new(client, name).map_err(|e| format!("client: {e}"))?;
    let mut s = ServerConnection::new(server).map_err(|e| format!("server: {e}"))?;
    fn pump<A, B>(from: &mut ConnectionCommon<A>, to: &mut ConnectionCommon<B>) -> usize {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
        }
        buf.len()
    }
    for _ in 0..32 {
        let moved_c = pump(&mut c, &mut s);
        s.process_new_packets()
            .map_err(|e| format!("server: {e}"))?;
        let moved_s = pump(&mut s, &mut c);
        c.process_new_packets()
            .map_err(|e| format!("client: {e}"))?;
        if moved_c == 0 && moved_s == 0 && !c.is_handshaking() && !s.is_handshaking() {
            use std::io::{Read, Write};
            c.writer().write_all(b"ping").unwrap();
            pump(&mut c, &mut s);
            s.process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
            let mut got = [0u8; 4];
            s.reader().read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
            return Ok(Done {
                client: c,
                server: s,
            });
        }
    }
    Err("handshake did not finish".into())
}

pub(crate) fn backend(srv: &TlsServer, cli: &TlsClient, host: &str) -> Result<Done, String> {
    handshake(
        cli.backend_config(&[]).unwrap(),
        srv.backend_config(&[]).unwrap(),
        host,
    )
}

pub(crate) fn sha512_hex(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A plain rustls server with the world's server leaf and a tweaked aws-lc-rs provider.
pub(crate) fn raw_server(
    w: &World,
    tweak: impl FnOnce(&mut rustls::crypto::CryptoProvider),
    tls12: bool,
) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    tweak(&mut provider);
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(w.server.key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![w.server.der().clone()], key)
        .unwrap();
    Arc::new(config)
}
