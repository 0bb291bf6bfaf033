//! Picking QUIC TLS for mesh streams, as Go does: the self-signed "insecure" mode (ConnType 1)
//! when no TLS config is named, a `tls-server` / `tls-client` config (ConnType 2) otherwise.

use std::sync::Arc;
use std::time::SystemTime;

use receptor_core::stream::quinn_proto::ClientConfig;
use receptor_core::stream::{PeerTls, ServerTls, client_config, server_config};
use receptor_tokio::tls::insecure::{insecure_server_config, insecure_stream_client};
use receptor_tokio::tls::{ClientAuthMode, stream_server_name};

use crate::run::TlsConfigs;

/// ConnType of a stream service without user TLS.
pub const CONN_INSECURE: u8 = 1;
/// ConnType of a stream service with user TLS.
pub const CONN_TLS: u8 = 2;

/// The client side for dialing `target` with TLS config `name` (`None` or empty: insecure).
/// Returns the QUIC config and the server name to dial with.
pub fn client_for(
    tls: &TlsConfigs,
    name: Option<&str>,
    target: &str,
    self_id: &str,
) -> Result<(ClientConfig, String), String> {
    match name.filter(|n| !n.is_empty()) {
        None => {
            let q = insecure_stream_client().map_err(|e| e.to_string())?;
            Ok((q, stream_server_name(self_id)))
        }
        Some(n) => {
            let client = tls
                .clients
                .get(n)
                .ok_or_else(|| format!("unknown TLS config {n}"))?;
            let c = client.stream_config(target).map_err(|e| e.to_string())?;
            let q = client_config((*c).clone()).map_err(|e| e.to_string())?;
            Ok((q, stream_server_name(target)))
        }
    }
}

/// The server side of a stream listener with TLS config `name` (`None`: insecure), and the
/// ConnType to advertise.
pub fn server_for(tls: &Arc<TlsConfigs>, name: Option<&str>) -> Result<(ServerTls, u8), String> {
    match name.filter(|n| !n.is_empty()) {
        None => {
            let c = insecure_server_config(SystemTime::now()).map_err(|e| e.to_string())?;
            let q = server_config((*c).clone()).map_err(|e| e.to_string())?;
            Ok((ServerTls::Fixed(q), CONN_INSECURE))
        }
        Some(n) => {
            let server = tls
                .servers
                .get(n)
                .ok_or_else(|| format!("unknown TLS config {n}"))?;
            if server.client_auth() == ClientAuthMode::Require {
                // The client's certificate must carry the node ID its packets come from.
                let tls = tls.clone();
                let name = n.to_owned();
                let per_peer: PeerTls = Arc::new(move |peer| {
                    let s = tls.servers.get(&name)?;
                    let c = s.stream_config_for_peer(peer.as_str()).ok()?;
                    server_config((*c).clone()).ok()
                });
                // Check the config builds at all now, so a bad one fails at startup.
                server
                    .stream_config_for_peer("check")
                    .map_err(|e| e.to_string())?;
                Ok((ServerTls::PerPeer(per_peer), CONN_TLS))
            } else {
                let c = server.stream_config().map_err(|e| e.to_string())?;
                let q = server_config((*c).clone()).map_err(|e| e.to_string())?;
                Ok((ServerTls::Fixed(q), CONN_TLS))
            }
        }
    }
}
