//! Typed configuration of entities that parse today but run later (services, workers, certs).
//!
//! Field meanings follow control-and-work.md §2, §3.4 and §4. Plain Go strings stay `String`
//! (empty = unset) where later code needs Go's exact behaviour; optional references are `Option`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::value::Value;

/// `tcp-server`: a local TCP listener whose connections are bridged to a mesh service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpServerCfg {
    /// Local port.
    pub port: u16,
    /// Bind address (default `0.0.0.0`).
    pub bind_addr: String,
    /// Mesh node to dial.
    pub remote_node: String,
    /// Mesh service to dial.
    pub remote_service: String,
    /// `tls-server` for the local TCP listener.
    pub tls_server: Option<String>,
    /// `tls-client` for the mesh connection.
    pub tls_client: Option<String>,
}

/// `tcp-client`: a mesh service whose connections are bridged to an outbound TCP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpClientCfg {
    /// Mesh service to listen on.
    pub service: String,
    /// `host:port` to connect to.
    pub address: String,
    /// `tls-server` for the mesh service.
    pub tls_server: Option<String>,
    /// `tls-client` for the TCP connection.
    pub tls_client: Option<String>,
}

/// `udp-server`: local UDP datagrams forwarded to a mesh service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpServerCfg {
    /// Local port.
    pub port: u16,
    /// Bind address (default `0.0.0.0`).
    pub bind_addr: String,
    /// Mesh node.
    pub remote_node: String,
    /// Mesh service.
    pub remote_service: String,
}

/// `udp-client`: a mesh datagram service forwarded to a UDP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpClientCfg {
    /// Mesh service to listen on.
    pub service: String,
    /// `host:port` to send to.
    pub address: String,
}

/// `unix-socket-server`: a local Unix socket bridged to a mesh service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixSocketServerCfg {
    /// Socket path (overwritten).
    pub filename: String,
    /// Socket mode (default 0o600).
    pub permissions: u32,
    /// Mesh node.
    pub remote_node: String,
    /// Mesh service.
    pub remote_service: String,
    /// `tls-client` for the mesh connection.
    pub tls: Option<String>,
}

/// `unix-socket-client`: a mesh service bridged to an existing Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixSocketClientCfg {
    /// Mesh service to listen on.
    pub service: String,
    /// Existing socket path.
    pub filename: String,
    /// `tls-server` for the mesh service.
    pub tls: Option<String>,
}

/// `command-service`: each mesh connection runs a command on a pty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandServiceCfg {
    /// Mesh service to listen on.
    pub service: String,
    /// Command line (shell-split).
    pub command: String,
    /// `tls-server` for the mesh service.
    pub tls: Option<String>,
}

/// `ip-router`: tun-based IP routing over the mesh (Linux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRouterCfg {
    /// Network and service name.
    pub network_name: String,
    /// Local tun interface name.
    pub interface: Option<String>,
    /// Local /30 CIDR.
    pub local_net: String,
    /// Comma-separated CIDRs to advertise (empty when unset).
    pub routes: String,
}

/// `work-command`: a work type run by an external command (§2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkCommandCfg {
    /// Work type name.
    pub work_type: String,
    /// Command to run.
    pub command: String,
    /// Command-line parameters (empty when unset).
    pub params: String,
    /// Allow submitters to append parameters.
    pub allow_runtime_params: bool,
    /// Require signed submissions (needs `work-verification`).
    pub verify_signature: bool,
}

/// `work-kubernetes`: a work type run as a Kubernetes pod (§2.8). Strings are as given (empty =
/// unset); the combinations are validated when the worker is prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkKubernetesCfg {
    /// Work type name.
    pub work_type: String,
    /// Namespace for pods.
    pub namespace: String,
    /// Container image.
    pub image: String,
    /// Command overriding the entrypoint.
    pub command: String,
    /// Entrypoint parameters.
    pub params: String,
    /// `kubeconfig`, `incluster` (default) or `runtime`.
    pub auth_method: String,
    /// Kubeconfig file for `authmethod=kubeconfig`.
    pub kube_config: String,
    /// Pod definition file.
    pub pod: String,
    /// Allow API parameters at runtime.
    pub allow_runtime_auth: bool,
    /// Allow image and command at runtime.
    pub allow_runtime_command: bool,
    /// Allow extra parameters at runtime.
    pub allow_runtime_params: bool,
    /// Allow a pod definition at runtime.
    pub allow_runtime_pod: bool,
    /// Delete a pending pod on restart (default true).
    pub delete_pod_on_restart: bool,
    /// `logger` (default) or `tcp`.
    pub stream_method: String,
    /// Require signed submissions.
    pub verify_signature: bool,
}

/// `work-python` (deprecated in Go; startup fails there).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkPythonCfg {
    /// Work type name.
    pub work_type: String,
    /// Python module of the plugin.
    pub plugin: String,
    /// Function to call.
    pub function: String,
    /// Plugin-specific settings.
    pub config: BTreeMap<String, Value>,
}

/// `work-signing`: the private key that signs work submissions (§2.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkSigningCfg {
    /// Private key file (must exist; checked when prepared).
    pub private_key: String,
    /// Lifetime of signed tokens; `None` when not configured.
    pub token_expiration: Option<Duration>,
}

/// `work-remote` (not in Go receptor): settings for remote units of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkRemoteCfg {
    /// How long a remote unit's node may stay unreachable before the unit fails; `None`
    /// (`0`) waits forever, as Go does.
    pub unreachable_timeout: Option<Duration>,
}

/// `metrics` (not in Go receptor): an HTTP endpoint with Prometheus metrics and the mesh
/// topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsCfg {
    /// Address to bind to (default `127.0.0.1`).
    pub bind_addr: String,
    /// TCP port.
    pub port: u16,
    /// `tls-server` config to serve HTTPS with.
    pub tls: Option<String>,
}

/// `work-verification`: the public key that verifies signed submissions (§2.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkVerificationCfg {
    /// Public key file (must exist; checked when prepared).
    pub public_key: String,
}

/// The hidden `command-runner` entity: the supervisor process of a `work-command` unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRunnerCfg {
    /// Command to run.
    pub command: String,
    /// Its parameters.
    pub params: String,
    /// The unit directory.
    pub unit_dir: String,
}

/// `cert-init`: create a CA (§4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInitCfg {
    /// Subject common name.
    pub common_name: String,
    /// RSA key size.
    pub bits: u32,
    /// RFC 3339 start of validity (now when unset).
    pub not_before: Option<String>,
    /// RFC 3339 end of validity (now + 10 years when unset).
    pub not_after: Option<String>,
    /// Output certificate file.
    pub out_cert: String,
    /// Output key file.
    pub out_key: String,
}

/// `cert-makereq`: create a certificate request (§4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertMakeReqCfg {
    /// Subject common name.
    pub common_name: String,
    /// RSA key size for a new key (0 when reading `in_key`).
    pub bits: u32,
    /// DNS SANs.
    pub dns_name: Vec<String>,
    /// IP SANs.
    pub ip_address: Vec<String>,
    /// Receptor node-ID SANs.
    pub node_id: Vec<String>,
    /// Output request file.
    pub out_req: String,
    /// Existing key file.
    pub in_key: Option<String>,
    /// New key output file.
    pub out_key: Option<String>,
}

/// `cert-signreq`: sign a request with a CA (§4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSignReqCfg {
    /// Request file.
    pub req: String,
    /// CA certificate file.
    pub ca_cert: String,
    /// CA key file.
    pub ca_key: String,
    /// RFC 3339 start of validity.
    pub not_before: Option<String>,
    /// RFC 3339 end of validity.
    pub not_after: Option<String>,
    /// Output certificate file.
    pub out_cert: String,
    /// Sign without asking.
    pub verify: bool,
}
