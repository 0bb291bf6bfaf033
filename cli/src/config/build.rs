//! From parsed entities to the typed [`Config`], with the checks Go runs at startup.
//!
//! Go runs `Init` on every entity in order, then `Prepare`, then `Run`, and stops at the first
//! error. The checks here that need no I/O are tagged with the phase Go runs them in, and the
//! error reported is the first one of the earliest phase, so that a config with several problems
//! gets the same message as from Go. Checks that need files or sockets (certificates exist and name
//! this node, key files exist, ports are free) are left to the code that uses the config.

use std::collections::BTreeSet;

use super::error::{ConfigError, ErrorKind};
use super::extra_build;
use super::goparse::{self, GoDuration};
use super::model::{
    Config, ControlServiceCfg, FirewallAction, FirewallRule, ListenerCfg, LogLevel, NodeCfg,
    PeerCfg, TlsClientCfg, TlsServerCfg, WsListenerCfg, WsPeerCfg,
};
use super::raw::RawEntity;
use super::value::{RawRule, Value};

/// Go's `defaultMaxConnectionIdleTime`: 2 × the 10 s route update interval + 1 s.
pub(crate) const MIN_IDLE_TIMEOUT_NANOS: i64 = 21_000_000_000;

/// When Go would report a failed check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Init,
    Prepare,
    Run,
}

/// Keeps the error Go would report: the first of the earliest phase.
#[derive(Default)]
pub(crate) struct Checks {
    first: Option<(Phase, ConfigError)>,
}

impl Checks {
    pub(crate) fn fail(&mut self, phase: Phase, message: impl Into<String>) {
        if self.first.as_ref().is_none_or(|(p, _)| phase < *p) {
            self.first = Some((phase, ConfigError::new(ErrorKind::Invalid, message)));
        }
    }

    fn into_result(self) -> Result<(), ConfigError> {
        self.first.map_or(Ok(()), |(_, e)| Err(e))
    }
}

/// Names defined anywhere in the config, for Run-phase reference checks.
pub(crate) struct Known {
    pub(crate) tls_servers: BTreeSet<String>,
    pub(crate) tls_clients: BTreeSet<String>,
    pub(crate) has_verification_key: bool,
}

impl Known {
    fn scan(raws: &[RawEntity]) -> Self {
        let names = |entity: &str| {
            raws.iter()
                .filter(|r| r.spec.name == entity)
                .map(|r| r.str("name"))
                .collect()
        };
        Self {
            tls_servers: names("tls-server"),
            tls_clients: names("tls-client"),
            has_verification_key: raws.iter().any(|r| r.spec.name == "work-verification"),
        }
    }

    /// Go's `GetServerTLSConfig`/`GetClientTLSConfig` failure for an undefined name.
    pub(crate) fn check_tls(&self, checks: &mut Checks, name: Option<&String>, server: bool) {
        let known = if server {
            &self.tls_servers
        } else {
            &self.tls_clients
        };
        if let Some(name) = name.filter(|n| !known.contains(*n)) {
            checks.fail(Phase::Run, format!("unknown TLS config {name}"));
        }
    }
}

/// Reads the host name the way Go's `os.Hostname` does on Linux.
pub(crate) fn system_hostname() -> Result<String, String> {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim_end().to_owned());
    read("/proc/sys/kernel/hostname")
        .or_else(|_| read("/etc/hostname"))
        .map_err(|e| format!("could not determine the host name: {e}"))
}

/// Builds the config from the entities of a non-exclusive run (the node already added).
pub(crate) fn build(
    raws: &[RawEntity],
    hostname: &dyn Fn() -> Result<String, String>,
    config_file: Option<String>,
) -> Result<Config, ConfigError> {
    let known = Known::scan(raws);
    let mut checks = Checks::default();
    let mut work_types: Vec<String> = vec!["remote".to_owned()];
    let mut node = None;
    let mut cfg = Config {
        node: NodeCfg {
            id: String::new(),
            id_from_hostname: false,
            data_dir: String::new(),
            firewall_rules: Vec::new(),
            max_idle_connection_timeout: None,
            on_duplicate: receptor_core::DuplicatePolicy::Exit,
            receptor_kube_support_reconnect: String::new(),
            receptor_kube_clientset_qps: String::new(),
            receptor_kube_clientset_burst: String::new(),
            receptor_kube_clientset_rate_limiter: String::new(),
        },
        log_level: LogLevel::Info,
        local_only: false,
        trace: false,
        tls_servers: Vec::new(),
        tls_clients: Vec::new(),
        control_services: Vec::new(),
        tcp_listeners: Vec::new(),
        tcp_peers: Vec::new(),
        udp_listeners: Vec::new(),
        udp_peers: Vec::new(),
        ws_listeners: Vec::new(),
        ws_peers: Vec::new(),
        tcp_servers: Vec::new(),
        tcp_clients: Vec::new(),
        udp_servers: Vec::new(),
        udp_clients: Vec::new(),
        unix_socket_servers: Vec::new(),
        unix_socket_clients: Vec::new(),
        command_services: Vec::new(),
        ip_routers: Vec::new(),
        work_commands: Vec::new(),
        work_kubernetes: Vec::new(),
        work_python: Vec::new(),
        work_signing: None,
        work_verification: None,
        work_remote: None,
        metrics: Vec::new(),
        command_runner: None,
        config_file,
        entities: raws
            .iter()
            .map(|r| (r.spec.name, r.source.clone()))
            .collect(),
        cert_commands: Vec::new(),
    };
    for raw in raws {
        match raw.spec.name {
            "node" => node = Some(node_cfg(raw, hostname, &mut checks)),
            "log-level" => match LogLevel::from_name(&raw.str("level")) {
                Ok(level) => cfg.log_level = level,
                Err(e) => checks.fail(Phase::Init, e),
            },
            "local-only" => cfg.local_only = true,
            "trace" => cfg.trace = true,
            "tls-server" => cfg.tls_servers.push(tls_server(raw, &mut checks)),
            "tls-client" => cfg.tls_clients.push(tls_client(raw, &mut checks)),
            "control-service" => {
                let c = control_service(raw)?;
                known.check_tls(&mut checks, c.tls.as_ref(), true);
                if c.tcp_listen.is_some() {
                    known.check_tls(&mut checks, c.tcp_tls.as_ref(), true);
                }
                cfg.control_services.push(c);
            }
            "tcp-listener" | "udp-listener" => {
                let l = listener(raw, &mut checks)?;
                known.check_tls(&mut checks, l.tls.as_ref(), true);
                if raw.spec.name == "tcp-listener" {
                    cfg.tcp_listeners.push(l);
                } else {
                    cfg.udp_listeners.push(l);
                }
            }
            "tcp-peer" | "udp-peer" => {
                let p = peer(raw, &mut checks);
                known.check_tls(&mut checks, p.tls.as_ref(), false);
                if raw.spec.name == "tcp-peer" {
                    cfg.tcp_peers.push(p);
                } else {
                    cfg.udp_peers.push(p);
                }
            }
            "ws-listener" => {
                let listener = listener(raw, &mut checks)?;
                known.check_tls(&mut checks, listener.tls.as_ref(), true);
                cfg.ws_listeners.push(WsListenerCfg {
                    listener,
                    path: raw.str("path"),
                });
            }
            "ws-peer" => {
                let w = ws_peer(raw, &mut checks);
                known.check_tls(&mut checks, w.peer.tls.as_ref(), false);
                cfg.ws_peers.push(w);
            }
            _ => extra_build::add(&mut cfg, raw, &known, &mut checks, &mut work_types)?,
        }
    }
    if let Some(node) = node {
        cfg.node = node;
    }
    checks.into_result()?;
    Ok(cfg)
}

/// Narrows a Go `int` parameter; out-of-range values are refused here rather than at use.
pub(crate) fn narrow<T: TryFrom<i64>>(raw: &RawEntity, param: &str) -> Result<T, ConfigError> {
    let v = raw.int(param);
    T::try_from(v).map_err(|_| {
        ConfigError::new(
            ErrorKind::BadValue,
            format!("error in {}: {param} value {v} is out of range", raw.label),
        )
    })
}

fn node_cfg(
    raw: &RawEntity,
    hostname: &dyn Fn() -> Result<String, String>,
    checks: &mut Checks,
) -> NodeCfg {
    let mut id = raw.str("id");
    let id_from_hostname = id.is_empty();
    if id_from_hostname {
        match hostname() {
            Ok(host) => {
                let lower = host.to_lowercase();
                if lower == "localhost" || lower.starts_with("localhost.") {
                    checks.fail(
                        Phase::Init,
                        "no node ID specified and local host name is localhost",
                    );
                }
                id = host;
            }
            Err(e) => checks.fail(Phase::Init, e),
        }
    }
    if id.eq_ignore_ascii_case("localhost") {
        checks.fail(Phase::Init, "node ID \"localhost\" is reserved");
    }
    let mut firewall_rules = Vec::new();
    for (i, rule) in raw.rules("firewallrules").iter().enumerate() {
        match firewall_rule(rule) {
            Ok(r) => firewall_rules.push(r),
            Err(e) => checks.fail(Phase::Init, format!("error in rule {i}: {e}")),
        }
    }
    let mut max_idle_connection_timeout = None;
    if let Some(text) = raw.opt_str("maxidleconnectiontimeout") {
        match goparse::parse_duration(&text) {
            Err(_) => checks.fail(
                Phase::Init,
                "failed to parse MaxIdleConnectionTimeout from configuration file -- valid \
                 examples include '1.5h', '30m', '30m10s'",
            ),
            Ok(GoDuration { nanos }) if nanos < MIN_IDLE_TIMEOUT_NANOS => checks.fail(
                Phase::Init,
                format!(
                    "user defined maxIdleConnectionTimeout [{nanos}] is less than the default \
                     default timeout [{MIN_IDLE_TIMEOUT_NANOS}]"
                ),
            ),
            Ok(d) => max_idle_connection_timeout = d.to_std(),
        }
    }
    let on_duplicate = match raw.str("duplicateid").to_lowercase().as_str() {
        "" | "exit" => receptor_core::DuplicatePolicy::Exit,
        "refuselink" => receptor_core::DuplicatePolicy::RefuseLink,
        other => {
            checks.fail(
                Phase::Init,
                format!("invalid duplicateid {other:?}: must be exit or refuselink"),
            );
            receptor_core::DuplicatePolicy::Exit
        }
    };
    NodeCfg {
        id,
        id_from_hostname,
        on_duplicate,
        data_dir: raw.str("datadir"),
        firewall_rules,
        max_idle_connection_timeout,
        receptor_kube_support_reconnect: raw.str("receptorkubesupportreconnect"),
        receptor_kube_clientset_qps: raw.str("receptorkubeclientsetqps"),
        receptor_kube_clientset_burst: raw.str("receptorkubeclientsetburst"),
        receptor_kube_clientset_rate_limiter: raw.str("receptorkubeclientsetratelimiter"),
    }
}

/// Go's `FirewallRuleData.ParseFirewallRule` (wording, typo included).
fn firewall_rule(rule: &RawRule) -> Result<FirewallRule, String> {
    let mut action = String::new();
    let mut out = FirewallRule {
        action: FirewallAction::Accept,
        from_node: None,
        to_node: None,
        from_service: None,
        to_service: None,
    };
    for (key, value) in rule {
        // Go prints a non-string key as reflect does: `<int Value>`.
        let key = match key {
            Value::Str(k) => k.clone(),
            Value::Int(_) | Value::Uint(_) => "<int Value>".to_owned(),
            Value::Float(_) => "<float64 Value>".to_owned(),
            Value::Bool(_) => "<bool Value>".to_owned(),
            _ => "<interface {} Value>".to_owned(),
        };
        let Value::Str(value) = value else {
            return Err(format!("invalid firewall rule. {key} must be a string"));
        };
        let value = Some(value.clone()).filter(|v| !v.is_empty());
        match key.to_lowercase().as_str() {
            "action" => action = value.unwrap_or_default(),
            "fromnode" => out.from_node = value,
            "tonode" => out.to_node = value,
            "fromservice" => out.from_service = value,
            "toservice" => out.to_service = value,
            _ => return Err(format!("invalid filewall rule. unknown key: {key}")),
        }
    }
    out.action = match action.to_lowercase().as_str() {
        "accept" => FirewallAction::Accept,
        "reject" => FirewallAction::Reject,
        "drop" => FirewallAction::Drop,
        _ => return Err(format!("unknown action: {action}")),
    };
    // Compiled here, so a bad regex fails the parse: at start-up, and on reload (which parses
    // the command line and files again).
    out.to_core().map_err(|e| match e {
        receptor_core::ConfigError::Firewall(why) => why,
        other => other.to_string(),
    })?;
    Ok(out)
}

/// Go's `decodeFingerprints`.
fn fingerprints(list: Option<Vec<String>>) -> Result<Vec<Vec<u8>>, &'static str> {
    list.unwrap_or_default()
        .iter()
        .map(|f| {
            let bytes =
                goparse::decode_hex(&f.replace(':', "")).ok_or("error decoding fingerprint")?;
            if bytes.len() != 32 && bytes.len() != 64 {
                return Err("fingerprints must be 32 or 64 bytes for sha256 or sha512");
            }
            Ok(bytes)
        })
        .collect()
}

fn tls_server(raw: &RawEntity, checks: &mut Checks) -> TlsServerCfg {
    let pinned = fingerprints(raw.str_list("pinnedclientcert")).unwrap_or_else(|e| {
        checks.fail(
            Phase::Prepare,
            format!("error preparing tls server config: error decoding fingerprints: {e}"),
        );
        Vec::new()
    });
    let name = raw.str("name");
    if name.is_empty() {
        checks.fail(Phase::Prepare, "must provide a name");
    }
    TlsServerCfg {
        name,
        cert: raw.str("cert"),
        key: raw.str("key"),
        require_client_cert: raw.bool("requireclientcert"),
        client_cas: raw.opt_str("clientcas"),
        pinned_client_cert: pinned,
        skip_receptor_names_check: raw.bool("skipreceptornamescheck"),
        min_tls13: raw.bool("mintls13"),
        bind_node_id: raw.bool("bindnodeid"),
    }
}

fn tls_client(raw: &RawEntity, checks: &mut Checks) -> TlsClientCfg {
    let (cert, key) = (raw.opt_str("cert"), raw.opt_str("key"));
    if cert.is_some() != key.is_some() {
        checks.fail(
            Phase::Prepare,
            "error preparing tls client config: cert and key must both be supplied or neither",
        );
    }
    let pinned = fingerprints(raw.str_list("pinnedservercert")).unwrap_or_else(|e| {
        checks.fail(
            Phase::Prepare,
            format!("error preparing tls client config: error decoding fingerprints: {e}"),
        );
        Vec::new()
    });
    let name = raw.str("name");
    if name.is_empty() {
        checks.fail(Phase::Prepare, "must provide a name");
    }
    TlsClientCfg {
        name,
        cert,
        key,
        root_cas: raw.opt_str("rootcas"),
        insecure_skip_verify: raw.bool("insecureskipverify"),
        pinned_server_cert: pinned,
        skip_receptor_names_check: raw.bool("skipreceptornamescheck"),
        min_tls13: raw.bool("mintls13"),
        bind_node_id: raw.bool("bindnodeid"),
    }
}

fn control_service(raw: &RawEntity) -> Result<ControlServiceCfg, ConfigError> {
    Ok(ControlServiceCfg {
        service: raw.str("service"),
        filename: raw.opt_str("filename"),
        permissions: narrow(raw, "permissions")?,
        tls: raw.opt_str("tls"),
        tcp_listen: raw.opt_str("tcplisten"),
        tcp_tls: raw.opt_str("tcptls"),
    })
}

/// The backends' `Prepare`: `cost` must be positive (NaN is refused too, unlike Go).
fn check_cost(cost: f64, checks: &mut Checks) {
    if cost.is_nan() || cost <= 0.0 {
        checks.fail(Phase::Prepare, "connection cost must be positive");
    }
}

fn listener(raw: &RawEntity, checks: &mut Checks) -> Result<ListenerCfg, ConfigError> {
    let l = ListenerCfg {
        bind_addr: raw.str("bindaddr"),
        port: narrow(raw, "port")?,
        tls: if raw.spec.name == "udp-listener" {
            None
        } else {
            raw.opt_str("tls")
        },
        cost: raw.float("cost"),
        node_cost: raw.float_map("nodecost"),
        allowed_peers: raw.str_list("allowedpeers"),
    };
    check_cost(l.cost, checks);
    for (node, cost) in &l.node_cost {
        if cost.is_nan() || *cost <= 0.0 {
            checks.fail(
                Phase::Prepare,
                format!("connection cost must be positive for {node}"),
            );
        }
    }
    Ok(l)
}

fn peer(raw: &RawEntity, checks: &mut Checks) -> PeerCfg {
    let p = PeerCfg {
        address: raw.str("address"),
        redial: raw.bool("redial"),
        tls: if raw.spec.name == "udp-peer" {
            None
        } else {
            raw.opt_str("tls")
        },
        cost: raw.float("cost"),
        allowed_peers: raw.str_list("allowedpeers"),
    };
    check_cost(p.cost, checks);
    p
}

fn ws_peer(raw: &RawEntity, checks: &mut Checks) -> WsPeerCfg {
    let peer = peer(raw, checks);
    if let Err(reason) = check_url(&peer.address) {
        let a = &peer.address;
        checks.fail(
            Phase::Prepare,
            format!("address {a} is not a valid URL: parse {a:?}: {reason}"),
        );
    }
    let extra_header = raw.opt_str("extraheader");
    if extra_header.as_ref().is_some_and(|h| !h.contains(':')) {
        checks.fail(Phase::Prepare, "extra header must be in the form key:value");
    }
    WsPeerCfg { peer, extra_header }
}

/// The failures of Go's lenient `url.Parse` that a config can plausibly hit.
fn check_url(url: &str) -> Result<(), &'static str> {
    if url.chars().any(|c| c < ' ' || c == '\x7f') {
        return Err("net/url: invalid control character in URL");
    }
    if url.starts_with(':') {
        return Err("missing protocol scheme");
    }
    let bytes = url.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !hex(i + 1) || !hex(i + 2) {
                return Err("invalid URL escape");
            }
        }
    }
    Ok(())
}

/// Shared by `extra_build`: a duration parameter that Go parses at Prepare.
pub(crate) fn token_expiration(
    raw: &RawEntity,
    checks: &mut Checks,
) -> Option<std::time::Duration> {
    let text = raw.opt_str("tokenexpiration")?;
    match goparse::parse_duration(&text)
        .ok()
        .and_then(GoDuration::to_std)
    {
        Some(d) => Some(d),
        None => {
            checks.fail(
                Phase::Prepare,
                "failed to parse TokenExpiration -- valid examples include '1.5h', '30m', '30m10s'",
            );
            None
        }
    }
}
