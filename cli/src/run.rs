//! Starting a node from a parsed configuration (the mesh node and its TLS configs), and the
//! control service's `reload` of its backends.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use receptor_core::NodeId;
use receptor_core::control::ReloadError;
use receptor_tokio::tls::{TlsClient, TlsClientParams, TlsServer, TlsServerParams};
use receptor_tokio::{NodeHandle, spawn_node};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::backends::Backends;
use crate::config::{self, Command, Config};
use crate::control::ReloadFn;
use crate::metrics::MetricsServers;

/// TLS configs by name, loaded once at startup.
pub struct TlsConfigs {
    /// `tls-server` entries.
    pub servers: BTreeMap<String, TlsServer>,
    /// `tls-client` entries.
    pub clients: BTreeMap<String, TlsClient>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_tls(cfg: &Config) -> Result<TlsConfigs, String> {
    let id = &cfg.node.id;
    let mut servers = BTreeMap::new();
    for s in &cfg.tls_servers {
        let params = TlsServerParams {
            name: s.name.clone(),
            cert: s.cert.clone().into(),
            key: s.key.clone().into(),
            require_client_cert: s.require_client_cert,
            client_cas: s.client_cas.clone().map(Into::into),
            pinned_client_cert: s.pinned_client_cert.iter().map(|f| hex(f)).collect(),
            skip_receptor_names_check: s.skip_receptor_names_check,
            min_tls13: s.min_tls13,
            bind_node_id: s.bind_node_id,
        };
        let loaded = TlsServer::load(&params, id).map_err(|e| e.to_string())?;
        servers.insert(s.name.clone(), loaded);
    }
    let mut clients = BTreeMap::new();
    for c in &cfg.tls_clients {
        let params = TlsClientParams {
            name: c.name.clone(),
            cert: c.cert.clone().map(Into::into),
            key: c.key.clone().map(Into::into),
            root_cas: c.root_cas.clone().map(Into::into),
            insecure_skip_verify: c.insecure_skip_verify,
            pinned_server_cert: c.pinned_server_cert.iter().map(|f| hex(f)).collect(),
            skip_receptor_names_check: c.skip_receptor_names_check,
            min_tls13: c.min_tls13,
            bind_node_id: c.bind_node_id,
        };
        let loaded = TlsClient::load(&params, id).map_err(|e| e.to_string())?;
        clients.insert(c.name.clone(), loaded);
    }
    Ok(TlsConfigs { servers, clients })
}

fn core_config(cfg: &Config) -> Result<receptor_core::Config, String> {
    let id = NodeId::new(&cfg.node.id).map_err(|e| e.to_string())?;
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut c = receptor_core::Config::new(id, seed, wall);
    if let Some(d) = cfg.node.max_idle_connection_timeout {
        c.max_idle(d.max(Duration::from_secs(21)))
            .map_err(|e| e.to_string())?;
    }
    for rule in &cfg.node.firewall_rules {
        c.firewall.push(rule.to_core().map_err(|e| e.to_string())?);
    }
    c.on_duplicate = cfg.node.on_duplicate;
    Ok(c)
}

/// Starts the node (no backends yet). Returns the node handle and the TLS configs.
pub fn start_node(cfg: &Config) -> Result<(NodeHandle, Arc<TlsConfigs>), String> {
    let tls = Arc::new(load_tls(cfg)?);
    let node = spawn_node(Arc::new(core_config(cfg)?)).map_err(|e| e.to_string())?;
    Ok((node, tls))
}

/// The control service's `reload` (control-and-work.md §3.6): re-parse the command line and
/// the config file `cfg` was read from, refuse a change to anything but backends
/// (ERRORCODE 3) or a file that does not parse (ERRORCODE 4), then apply the new backends
/// to `backends` (see [`Backends::apply`]) and restart the `metrics` endpoints (a failure of
/// either is ERRORCODE 4). A refused reload changes nothing, and says why in the log as well
/// as in the reply.
pub fn reload_fn(
    node: NodeHandle,
    tls: Arc<TlsConfigs>,
    backends: Arc<Mutex<Backends>>,
    metrics: Arc<Mutex<MetricsServers>>,
    cfg: &Config,
    args: Vec<String>,
) -> ReloadFn {
    let file = cfg.config_file.clone();
    let before = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| config::file_items(&t).ok())
        .unwrap_or_default();
    let before = Arc::new(before);
    Arc::new(move || {
        let (node, tls, backends, metrics, args, file, before) = (
            node.clone(),
            tls.clone(),
            backends.clone(),
            metrics.clone(),
            args.clone(),
            file.clone(),
            before.clone(),
        );
        Box::pin(async move {
            let running = (&*backends, &*metrics);
            let r = reload(&node, &tls, running, args, file.as_deref(), &before).await;
            match &r {
                Ok(()) => {}
                // Go's log line for a refused or failed reload.
                Err(e) => warn!("Reload not successful: {}", e.message),
            }
            r
        })
    })
}

async fn reload(
    node: &NodeHandle,
    tls: &TlsConfigs,
    (backends, metrics): (&Mutex<Backends>, &Mutex<MetricsServers>),
    args: Vec<String>,
    file: Option<&str>,
    before: &[config::FileItem],
) -> Result<(), ReloadError> {
    let err4 = |message: String| ReloadError { message, code: 4 };
    let Some(file) = file else {
        return Err(err4(
            "no configuration file was provided, reload function not set".into(),
        ));
    };
    // A file that is not YAML is ERRORCODE 4, a non-reloadable change ERRORCODE 3, then the
    // whole configuration must parse (ERRORCODE 4). Go parses first; the difference shows only
    // where our parse is stricter than Go's (a malformed firewall regex in a changed `node`
    // item: 3, as Go answers for that file).
    let text = std::fs::read_to_string(file).map_err(|e| err4(e.to_string()))?;
    let after = config::file_items(&text).map_err(|e| err4(e.to_string()))?;
    config::check_reload(before, &after).map_err(|e| ReloadError {
        message: e.to_string(),
        code: 3,
    })?;
    let parsed = config::parse_args(args).and_then(|c| c.check_supported().map(|()| c));
    let Command::Run(new) = parsed.map_err(|e| err4(e.to_string()))? else {
        return Err(err4("the command line no longer runs a node".into()));
    };
    let changes = backends
        .lock()
        .await
        .apply(node, &new, tls)
        .await
        .map_err(err4)?;
    info!(
        "Reloaded backends from {file}: {} unchanged, {} stopped, {} started",
        changes.kept, changes.stopped, changes.started
    );
    (metrics.lock().await)
        .restart(&new.metrics, tls)
        .await
        .map_err(err4)
}
