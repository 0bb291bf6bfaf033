//! The typed configuration of the entities this implementation runs.
//!
//! Field values already carry Go's defaults and conversions. Optional names and paths are
//! `Option<String>`: Go treats an empty string as "not configured", so `""` becomes `None`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::extra::{
    CertInitCfg, CertMakeReqCfg, CertSignReqCfg, CommandRunnerCfg, CommandServiceCfg, IpRouterCfg,
    MetricsCfg, TcpClientCfg, TcpServerCfg, UdpClientCfg, UdpServerCfg, UnixSocketClientCfg,
    UnixSocketServerCfg, WorkCommandCfg, WorkKubernetesCfg, WorkPythonCfg, WorkRemoteCfg,
    WorkSigningCfg, WorkVerificationCfg,
};
use super::raw::Source;

/// The whole configuration for a running node (everything but the exclusive commands).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The `node` entity (added with defaults when absent).
    pub node: NodeCfg,
    /// From `log-level`; [`LogLevel::Info`] when the entity is absent.
    pub log_level: LogLevel,
    /// `local-only` was given: run the null backend so the node lives without peers.
    pub local_only: bool,
    /// `trace` was given: data messages sent, received and forwarded are logged, as Go does.
    pub trace: bool,
    /// `tls-server` entities, in order. A repeated name: the later one wins, as in Go.
    pub tls_servers: Vec<TlsServerCfg>,
    /// `tls-client` entities, in order.
    pub tls_clients: Vec<TlsClientCfg>,
    /// `control-service` entities, in order.
    pub control_services: Vec<ControlServiceCfg>,
    /// `tcp-listener` entities.
    pub tcp_listeners: Vec<ListenerCfg>,
    /// `tcp-peer` entities.
    pub tcp_peers: Vec<PeerCfg>,
    /// `udp-listener` entities (`tls` is always `None`).
    pub udp_listeners: Vec<ListenerCfg>,
    /// `udp-peer` entities (`tls` is always `None`).
    pub udp_peers: Vec<PeerCfg>,
    /// `ws-listener` entities.
    pub ws_listeners: Vec<WsListenerCfg>,
    /// `ws-peer` entities.
    pub ws_peers: Vec<WsPeerCfg>,
    /// `tcp-server` entities.
    pub tcp_servers: Vec<TcpServerCfg>,
    /// `tcp-client` entities.
    pub tcp_clients: Vec<TcpClientCfg>,
    /// `udp-server` entities.
    pub udp_servers: Vec<UdpServerCfg>,
    /// `udp-client` entities.
    pub udp_clients: Vec<UdpClientCfg>,
    /// `unix-socket-server` entities.
    pub unix_socket_servers: Vec<UnixSocketServerCfg>,
    /// `unix-socket-client` entities.
    pub unix_socket_clients: Vec<UnixSocketClientCfg>,
    /// `command-service` entities.
    pub command_services: Vec<CommandServiceCfg>,
    /// `ip-router` entities.
    pub ip_routers: Vec<IpRouterCfg>,
    /// `work-command` entities.
    pub work_commands: Vec<WorkCommandCfg>,
    /// `work-kubernetes` entities (not supported yet).
    pub work_kubernetes: Vec<WorkKubernetesCfg>,
    /// `work-python` entities (not supported yet; Go refuses them at startup too).
    pub work_python: Vec<WorkPythonCfg>,
    /// `work-signing`.
    pub work_signing: Option<WorkSigningCfg>,
    /// `work-verification`.
    pub work_verification: Option<WorkVerificationCfg>,
    /// `work-remote` (not in Go receptor).
    pub work_remote: Option<WorkRemoteCfg>,
    /// `metrics` entities (not in Go receptor).
    pub metrics: Vec<MetricsCfg>,
    /// The hidden `command-runner` entity: this process is a unit's supervisor.
    pub command_runner: Option<CommandRunnerCfg>,
    /// The path after the first literal `--config`/`-c` argument: enables `reload` (§3.6).
    pub config_file: Option<String>,
    /// Entity names in configuration order, with where each came from.
    pub entities: Vec<(&'static str, Source)>,
    /// Certificate commands of a version 2 file (`cert-init`, `cert-makereqs`,
    /// `cert-signreqs`), run in this order before the node starts.
    pub cert_commands: Vec<Command>,
}

impl Config {
    /// Names of the entities in this config that are recognised but not implemented yet, each
    /// once, in order of first appearance. A caller refuses each with `<entity>: not supported yet`
    /// (see [`Config::check_supported`]).
    pub fn unsupported(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (name, _) in &self.entities {
            let supported = super::entity::lookup(name).is_some_and(|e| e.supported);
            if !supported && !out.contains(name) {
                out.push(name);
            }
        }
        out
    }

    /// Fails with `<entity>: not supported yet` for the first unsupported entity, if any.
    pub fn check_supported(&self) -> Result<(), super::ConfigError> {
        match self.unsupported().first() {
            Some(name) => Err(super::ConfigError::not_supported(name)),
            None => Ok(()),
        }
    }

    /// Whether nothing but the implicit `node` is configured (a version 2 file holding only
    /// certificate commands: Go runs them and exits).
    pub fn is_empty(&self) -> bool {
        self.entities.iter().all(|(_, s)| *s == Source::Implicit)
    }

    /// Whether any backend would run (listener, peer or `local-only`); Go exits 1 with
    /// `Nothing to do - no backends are running.` otherwise. Control services do not count.
    pub fn has_backends(&self) -> bool {
        self.local_only
            || !self.tcp_listeners.is_empty()
            || !self.tcp_peers.is_empty()
            || !self.udp_listeners.is_empty()
            || !self.udp_peers.is_empty()
            || !self.ws_listeners.is_empty()
            || !self.ws_peers.is_empty()
    }
}

/// What to do, as decided by the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Print [`help_text`](super::help_text) and exit 0 (`--help`, `-h`, or no arguments).
    Help,
    /// Print [`bash_completion`](super::bash_completion) and exit 0.
    BashCompletion,
    /// Print [`VERSION`](super::VERSION) and a newline, exit 0 (`--version`).
    Version,
    /// `cert-init`: make a CA.
    CertInit(CertInitCfg),
    /// `cert-makereq`: make a certificate request.
    CertMakeReq(CertMakeReqCfg),
    /// `cert-signreq`: sign a certificate request.
    CertSignReq(CertSignReqCfg),
    /// Run a node.
    Run(Box<Config>),
}

impl Command {
    /// Fails with `<entity>: not supported yet` if this command, or any entity of the config it
    /// runs, is recognised but not implemented.
    pub fn check_supported(&self) -> Result<(), super::ConfigError> {
        match self {
            Self::Run(config) => config.check_supported(),
            Self::Help
            | Self::BashCompletion
            | Self::Version
            | Self::CertInit(_)
            | Self::CertMakeReq(_)
            | Self::CertSignReq(_) => Ok(()),
        }
    }
}

/// The `node` entity.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCfg {
    /// Node ID: as given, or the host name when not given. Never `localhost` (any case).
    pub id: String,
    /// Whether `id` came from the host name.
    pub id_from_hostname: bool,
    /// Directory for work unit data (default `/tmp/receptor`).
    pub data_dir: String,
    /// Firewall rules, in evaluation order.
    pub firewall_rules: Vec<FirewallRule>,
    /// Idle timeout for backend connections; `None` means the 21 s default. Always ≥ 21 s.
    pub max_idle_connection_timeout: Option<Duration>,
    /// `duplicateid`: what to do when named as a duplicate instance (not in Go, which exits).
    pub on_duplicate: receptor_core::DuplicatePolicy,
    /// Passed through to the Kubernetes worker (empty when unset).
    pub receptor_kube_support_reconnect: String,
    /// Passed through to the Kubernetes worker (empty when unset).
    pub receptor_kube_clientset_qps: String,
    /// Passed through to the Kubernetes worker (empty when unset).
    pub receptor_kube_clientset_burst: String,
    /// Passed through to the Kubernetes worker (empty when unset).
    pub receptor_kube_clientset_rate_limiter: String,
}

/// Log verbosity (`log-level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only (the value of a `log-level` entity given without a level).
    Error,
    /// Errors and warnings.
    Warning,
    /// The default when no `log-level` entity is given.
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    /// Parses a level name case-insensitively; the error is Go's `<x> is not a valid log level name`.
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name.to_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "warning" => Ok(Self::Warning),
            "info" => Ok(Self::Info),
            "debug" => Ok(Self::Debug),
            _ => Err(format!("{name} is not a valid log level name")),
        }
    }
}

/// What a firewall rule does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirewallAction {
    /// Deliver the message.
    Accept,
    /// Drop it and send an unreachable notice (`blocked by firewall`).
    Reject,
    /// Drop it silently.
    Drop,
}

/// One firewall rule as configured (netceptor.md §6.4). Match values are kept as written: a
/// value `/re/` is an anchored regex, anything else an exact match. Compiling them is the
/// core's job ([`FirewallRule::to_core`]); a malformed `/...` or an invalid regex is refused
/// (Go drops it silently from the rule, which then matches more than written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallRule {
    /// The action.
    pub action: FirewallAction,
    /// Match on the source node.
    pub from_node: Option<String>,
    /// Match on the destination node.
    pub to_node: Option<String>,
    /// Match on the source service.
    pub from_service: Option<String>,
    /// Match on the destination service.
    pub to_service: Option<String>,
}

impl FirewallRule {
    /// The rule as the core evaluates it, its regexes compiled.
    pub fn to_core(
        &self,
    ) -> Result<receptor_core::firewall::FirewallRule, receptor_core::ConfigError> {
        let action = match self.action {
            FirewallAction::Accept => "accept",
            FirewallAction::Reject => "reject",
            FirewallAction::Drop => "drop",
        };
        let mut m = BTreeMap::from([("action".to_owned(), action.to_owned())]);
        for (k, v) in [
            ("fromnode", &self.from_node),
            ("tonode", &self.to_node),
            ("fromservice", &self.from_service),
            ("toservice", &self.to_service),
        ] {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.clone());
            }
        }
        receptor_core::firewall::FirewallRule::parse(&m)
    }
}

/// A `tls-server` configuration, referred to by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsServerCfg {
    /// The name other entities use.
    pub name: String,
    /// Certificate file (PEM).
    pub cert: String,
    /// Private key file (PEM).
    pub key: String,
    /// Require and verify client certificates.
    pub require_client_cert: bool,
    /// CA bundle to verify client certificates with.
    pub client_cas: Option<String>,
    /// Decoded pinned client-certificate fingerprints (32 or 64 bytes each).
    pub pinned_client_cert: Vec<Vec<u8>>,
    /// Skip the startup check that the certificate names this node.
    pub skip_receptor_names_check: bool,
    /// Minimum TLS 1.3 instead of 1.2.
    pub min_tls13: bool,
    /// `bindnodeid` (not in Go): tcp/ws backends refuse a client whose certificate does not
    /// carry the node ID it announces.
    pub bind_node_id: bool,
}

/// A `tls-client` configuration, referred to by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsClientCfg {
    /// The name other entities use.
    pub name: String,
    /// Client certificate file; `Some` exactly when `key` is.
    pub cert: Option<String>,
    /// Client private key file; `Some` exactly when `cert` is.
    pub key: Option<String>,
    /// CA bundle replacing the system roots.
    pub root_cas: Option<String>,
    /// Skip all server verification, pinned fingerprints included.
    pub insecure_skip_verify: bool,
    /// Decoded pinned server-certificate fingerprints (32 or 64 bytes each).
    pub pinned_server_cert: Vec<Vec<u8>>,
    /// Skip the startup check that the certificate names this node.
    pub skip_receptor_names_check: bool,
    /// Minimum TLS 1.3 instead of 1.2.
    pub min_tls13: bool,
    /// `bindnodeid` (not in Go): tcp/ws backends refuse a server whose certificate does not
    /// carry the node ID it announces.
    pub bind_node_id: bool,
}

/// A `control-service` entity (control-and-work.md §1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlServiceCfg {
    /// Mesh service name (default `control`).
    pub service: String,
    /// Unix socket path.
    pub filename: Option<String>,
    /// Unix socket mode (default 0o600).
    pub permissions: u32,
    /// `tls-server` name for the mesh service.
    pub tls: Option<String>,
    /// TCP listener: `host:port`, or a port bound on `0.0.0.0`.
    pub tcp_listen: Option<String>,
    /// `tls-server` name for the TCP listener.
    pub tcp_tls: Option<String>,
}

/// A `tcp-listener` or `udp-listener` backend.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerCfg {
    /// Bind address (default `0.0.0.0`).
    pub bind_addr: String,
    /// Port (0 picks one).
    pub port: u16,
    /// `tls-server` name (TCP only).
    pub tls: Option<String>,
    /// Link cost, > 0 (default 1.0).
    pub cost: f64,
    /// Per-remote-node cost overrides, each > 0.
    pub node_cost: BTreeMap<String, f64>,
    /// `None`: any peer. `Some(list)`: only these node IDs; an empty list admits nobody (Go).
    pub allowed_peers: Option<Vec<String>>,
}

/// A `tcp-peer` or `udp-peer` backend.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerCfg {
    /// `host:port` to dial.
    pub address: String,
    /// Redial after failure or close (default true).
    pub redial: bool,
    /// `tls-client` name (TCP only).
    pub tls: Option<String>,
    /// Link cost, > 0 (default 1.0).
    pub cost: f64,
    /// As for [`ListenerCfg::allowed_peers`].
    pub allowed_peers: Option<Vec<String>>,
}

/// A `ws-listener` backend.
#[derive(Clone, Debug, PartialEq)]
pub struct WsListenerCfg {
    /// Bind address, port, TLS server name, costs and allowed peers.
    pub listener: ListenerCfg,
    /// HTTP path for the upgrade (default `/`).
    pub path: String,
}

/// A `ws-peer` backend.
#[derive(Clone, Debug, PartialEq)]
pub struct WsPeerCfg {
    /// `ws://` or `wss://` URL (in `address`), redial, TLS client name, cost, allowed peers.
    pub peer: PeerCfg,
    /// Extra HTTP header `Name:value` sent on connect.
    pub extra_header: Option<String>,
}
