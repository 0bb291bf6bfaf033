//! The table of every entity Go receptor's v1 configuration knows (control-and-work.md §3.4).
//!
//! Order, names, parameter order, defaults, descriptions and flags follow the Go registrations
//! (`cmd/config.go` then each package's `init`), because `--help` prints them in that order and
//! ghjm/cmdline fills defaults from these strings with the same conversions as user values.

/// The Go type of a parameter, which decides how values convert (see `value.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Go `string`.
    Str,
    /// Go `int` (64-bit; strings parse with base prefixes).
    Int,
    /// Go `float64`.
    Float,
    /// Go `bool`.
    Bool,
    /// Go `[]string`.
    StrList,
    /// Go `map[string]float64`.
    FloatMap,
    /// Go `map[string]interface{}`.
    AnyMap,
    /// Go `[]netceptor.FirewallRuleData` (a list of maps).
    Rules,
}

impl Kind {
    /// The Go type name, as in cmdline's `type error (expected ...)`.
    pub fn go_type(self) -> &'static str {
        match self {
            Self::Str => "string",
            Self::Int => "int",
            Self::Float => "float64",
            Self::Bool => "bool",
            Self::StrList => "[]string",
            Self::FloatMap => "map[string]float64",
            Self::AnyMap => "map[string]interface {}",
            Self::Rules => "[]netceptor.FirewallRuleData",
        }
    }

    /// The type as cmdline's help prints it (`printableTypeName`).
    pub fn help_type(self) -> &'static str {
        match self {
            Self::StrList => "[]string (may be repeated)",
            Self::FloatMap => "JSON dict of string to float64",
            Self::AnyMap => "JSON dict with string keys",
            Self::Rules => "JSON list of JSON dict of JSON data to JSON data",
            other => other.go_type(),
        }
    }
}

/// One parameter of an entity.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// Lower-case name, matched case-insensitively.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Must be given (`required:"true"`).
    pub required: bool,
    /// Receives a bare value (`--log-level debug`, `- tcp-peer: host:port`).
    pub bare: bool,
    /// Default as Go's `default:` tag string, converted like a user value when the param is unset.
    pub default: Option<&'static str>,
    /// One-line help text.
    pub description: &'static str,
}

impl ParamSpec {
    const fn new(name: &'static str, kind: Kind, description: &'static str) -> Self {
        Self {
            name,
            kind,
            required: false,
            bare: false,
            default: None,
            description,
        }
    }
    const fn req(mut self) -> Self {
        self.required = true;
        self
    }
    const fn bare(mut self) -> Self {
        self.bare = true;
        self
    }
    const fn def(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }
}

/// A group of entities in `--help`, in Go's section order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// No heading: node, logging, control service, version.
    General,
    /// TLS configurations.
    Resources,
    /// Mesh backends (listeners and peers).
    Backends,
    /// Services on top of the mesh (proxies, command service, IP router).
    Services,
    /// Workers (units of work).
    Workers,
    /// Certificate helpers.
    Certificates,
}

impl Section {
    /// The heading Go prints before the section (empty for [`Section::General`]).
    pub fn heading(self) -> &'static str {
        match self {
            Self::General => "",
            Self::Resources => "Commands that configure resources used by other commands:",
            Self::Backends => {
                "Commands to configure back-ends, which connect Receptor nodes together:"
            }
            Self::Services => {
                "Commands to configure services that run on top of the Receptor mesh:"
            }
            Self::Workers => "Commands to configure workers that process units of work:",
            Self::Certificates => {
                "Commands to generate certificates and run a certificate authority"
            }
        }
    }
}

/// One entity (Go "config type"): `--<name> param=value ...` or `- <name>: {...}`.
#[derive(Clone, Copy, Debug)]
pub struct EntitySpec {
    /// Lower-case name.
    pub name: &'static str,
    /// One-line help text (work-python's has a second line, as in Go).
    pub description: &'static str,
    /// Parameters in Go struct order.
    pub params: &'static [ParamSpec],
    /// Given at most once.
    pub singleton: bool,
    /// Must be the only entity (`version`, `cert-*`); it runs and the process exits.
    pub exclusive: bool,
    /// Always present; added with defaults when missing (`node`).
    pub required: bool,
    /// Left out of `--help` (`command-runner`).
    pub hidden: bool,
    /// Help section.
    pub section: Section,
    /// This implementation can run it; other entities parse but are refused (`not supported yet`).
    pub supported: bool,
}

impl EntitySpec {
    const fn new(
        name: &'static str,
        section: Section,
        description: &'static str,
        params: &'static [ParamSpec],
    ) -> Self {
        Self {
            name,
            description,
            params,
            singleton: false,
            exclusive: false,
            required: false,
            hidden: false,
            section,
            supported: false,
        }
    }
    const fn singleton(mut self) -> Self {
        self.singleton = true;
        self
    }
    const fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }
    const fn supported(mut self) -> Self {
        self.supported = true;
        self
    }

    /// The index of a parameter, by case-insensitive name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The parameter that takes bare values, if any.
    pub fn bare_param(&self) -> Option<usize> {
        self.params.iter().position(|p| p.bare)
    }

    /// Whether `reload` may restart it (control-and-work.md §3.6: name starts with a backend name).
    pub fn reloadable(&self) -> bool {
        is_reloadable_name(self.name)
    }
}

/// The `reload` rule: an item whose name starts with one of these can change without a restart.
pub(crate) fn is_reloadable_name(name: &str) -> bool {
    const RELOADABLE: [&str; 8] = [
        "tcp-peer",
        "tcp-listener",
        "ws-peer",
        "ws-listener",
        "udp-peer",
        "udp-listener",
        "local-only",
        // Not in Go receptor: restarted with the backends.
        "metrics",
    ];
    RELOADABLE.iter().any(|r| name.starts_with(r))
}

/// Finds an entity by its exact lower-case name (the caller lower-cases command-line names; YAML
/// names must already be lower case, as in Go).
pub fn lookup(name: &str) -> Option<&'static EntitySpec> {
    ENTITIES.iter().find(|e| e.name == name)
}

use Kind::{AnyMap, Bool, Float, FloatMap, Int, Rules, Str, StrList};
use Section::{Backends, Certificates, General, Resources, Services, Workers};

const fn p(name: &'static str, kind: Kind, description: &'static str) -> ParamSpec {
    ParamSpec::new(name, kind, description)
}

const COST: ParamSpec = p("cost", Float, "Connection cost (weight)").def("1.0");
const NODECOST: ParamSpec = p("nodecost", FloatMap, "Per-node costs");
const ALLOWEDPEERS: ParamSpec = p(
    "allowedpeers",
    StrList,
    "Peer node IDs to allow via this connection",
);
const BINDADDR: ParamSpec = p("bindaddr", Str, "Local address to bind to").def("0.0.0.0");
const REDIAL: ParamSpec = p("redial", Bool, "Keep redialing on lost connection").def("true");
const MINTLS13: ParamSpec = p(
    "mintls13",
    Bool,
    "Set minimum TLS version to 1.3. Otherwise the minimum is 1.2",
)
.def("false");
const REMOTENODE: ParamSpec = p("remotenode", Str, "Receptor node to connect to").req();
const REMOTESERVICE: ParamSpec =
    p("remoteservice", Str, "Receptor service name to connect to").req();
const BIND_SERVICE: ParamSpec = p("service", Str, "Receptor service name to bind to").req();
const WORKTYPE: ParamSpec = p("worktype", Str, "Name for this worker type").req();
const VERIFYSIGNATURE: ParamSpec =
    p("verifysignature", Bool, "Verify a signed work submission").def("false");
const COMMONNAME: ParamSpec = p(
    "commonname",
    Str,
    "Common name to assign to the certificate",
)
.req();
const NOTBEFORE: ParamSpec = p(
    "notbefore",
    Str,
    "Effective (NotBefore) date/time, in RFC3339 format",
);
const NOTAFTER: ParamSpec = p(
    "notafter",
    Str,
    "Expiration (NotAfter) date/time, in RFC3339 format",
);

/// Every entity, in Go's registration order.
pub static ENTITIES: &[EntitySpec] = &[
    EntitySpec::new("node", General, "Specifies the node configuration of this instance", &[
        p("id", Str, "Node ID. Defaults to the local hostname.").bare(),
        p("datadir", Str, "Directory in which to store node data.").def("/tmp/receptor"),
        p("firewallrules", Rules, "Firewall rules, see documentation for syntax."),
        p("maxidleconnectiontimeout", Str, "Maximum duration with no traffic before a backend connection is timed out and refreshed."),
        p("duplicateid", Str, "When a routing update says another instance has this node ID: exit (as Go), or refuselink (reject the link it came through and keep running)").def("exit"),
        p("receptorkubesupportreconnect", Str, ""),
        p("receptorkubeclientsetqps", Str, ""),
        p("receptorkubeclientsetburst", Str, ""),
        p("receptorkubeclientsetratelimiter", Str, ""),
    ])
    .required()
    .singleton()
    .supported(),
    EntitySpec::new("local-only", General, "Runs a self-contained node with no backend", &[
        p("local", Bool, ""),
    ])
    .singleton()
    .supported(),
    EntitySpec::new("version", General, "Displays the Receptor version.", &[])
        .exclusive()
        .supported(),
    EntitySpec::new("log-level", General, "Specifies the verbosity level for command output", &[
        p("level", Str, "Log level: Error, Warning, Info or Debug").bare().def("error"),
    ])
    .singleton()
    .supported(),
    EntitySpec::new("trace", General, "Enables packet tracing output", &[])
        .singleton()
        .supported(),
    EntitySpec::new("tls-server", Resources, "Define a TLS server configuration", &[
        p("name", Str, "Name of this TLS server configuration").req(),
        p("cert", Str, "Server certificate filename").req(),
        p("key", Str, "Server private key filename").req(),
        p("requireclientcert", Bool, "Require client certificates").def("false"),
        p("clientcas", Str, "Filename of CA bundle to verify client certs with"),
        p("pinnedclientcert", StrList, "Pinned fingerprint of required client certificate"),
        p("skipreceptornamescheck", Bool, "Skip verifying ReceptorNames OIDs in certificate at startup").def("false"),
        MINTLS13,
        p("bindnodeid", Bool, "Not in Go: on tcp/ws backends, refuse a client whose certificate does not carry the node ID it announces").def("false"),
    ])
    .supported(),
    EntitySpec::new("tls-client", Resources, "Define a TLS client configuration", &[
        p("name", Str, "Name of this TLS client configuration").req(),
        p("cert", Str, "Client certificate filename").req(),
        p("key", Str, "Client private key filename").req(),
        p("rootcas", Str, "Root CA bundle to use instead of system trust"),
        p("insecureskipverify", Bool, "Accept any server cert").def("false"),
        p("pinnedservercert", StrList, "Pinned fingerprint of required server certificate"),
        p("skipreceptornamescheck", Bool, "if true, skip verifying ReceptorNames OIDs in certificate at startup"),
        MINTLS13,
        p("bindnodeid", Bool, "Not in Go: on tcp/ws backends, refuse a server whose certificate does not carry the node ID it announces").def("false"),
    ])
    .supported(),
    EntitySpec::new("cert-init", Certificates, "Initialize PKI CA", &[
        COMMONNAME,
        p("bits", Int, "Bit length of the encryption keys of the certificate").req(),
        NOTBEFORE,
        NOTAFTER,
        p("outcert", Str, "File to save the CA certificate to").req(),
        p("outkey", Str, "File to save the CA private key to").req(),
    ])
    .exclusive()
    .supported(),
    EntitySpec::new("cert-makereq", Certificates, "Create certificate request", &[
        COMMONNAME,
        p("bits", Int, "Bit length of the encryption keys of the certificate"),
        p("dnsname", StrList, "DNS names to add to the certificate"),
        p("ipaddress", StrList, "IP addresses to add to the certificate"),
        p("nodeid", StrList, "Receptor node IDs to add to the certificate"),
        p("outreq", Str, "File to save the certificate request to").req(),
        p("inkey", Str, "Private key to use for the request"),
        p("outkey", Str, "File to save the private key to (new key will be generated)"),
    ])
    .exclusive()
    .supported(),
    EntitySpec::new("cert-signreq", Certificates, "Sign request and produce certificate", &[
        p("req", Str, "Certificate Request PEM filename").req(),
        p("cacert", Str, "CA certificate PEM filename").req(),
        p("cakey", Str, "CA private key PEM filename").req(),
        NOTBEFORE,
        NOTAFTER,
        p("outcert", Str, "File to save the signed certificate to").req(),
        p("verify", Bool, "If true, do not prompt the user for verification").def("False"),
    ])
    .exclusive()
    .supported(),
    EntitySpec::new("control-service", General, "Runs a control service", &[
        p("service", Str, "Receptor service name to listen on").def("control"),
        p("filename", Str, "Specifies the filename of a local Unix socket to bind to the service."),
        p("permissions", Int, "Socket file permissions").def("0600"),
        p("tls", Str, "Name of TLS server config for the Receptor listener"),
        p("tcplisten", Str, "Local TCP port or host:port to bind to the control service"),
        p("tcptls", Str, "Name of TLS server config for the TCP listener"),
    ])
    .supported(),
    // Not in Go receptor.
    EntitySpec::new("metrics", General, "Serves Prometheus metrics and a picture of the mesh over HTTP (not in Go receptor)", &[
        p("bindaddr", Str, "Local address to bind to").def("127.0.0.1"),
        p("port", Int, "Local TCP port to serve HTTP on").bare().req(),
        p("tls", Str, "Name of TLS server config (serves HTTPS)"),
    ])
    .supported(),
    EntitySpec::new("command-service", Services, "Run an interactive command via a Receptor service", &[
        BIND_SERVICE,
        p("command", Str, "Command to execute on a connection").req(),
        p("tls", Str, "Name of TLS server config"),
    ])
    .supported(),
    EntitySpec::new("ip-router", Services, "Run an IP router using a tun interface", &[
        p("networkname", Str, "Name of this network and service.").req(),
        p("interface", Str, "Name of the local tun interface"),
        p("localnet", Str, "Local /30 CIDR address").req(),
        p("routes", Str, "Comma separated list of CIDR subnets to advertise"),
    ])
    .supported(),
    EntitySpec::new("tcp-server", Services, "Listen for TCP and forward via Receptor", &[
        p("port", Int, "Local TCP port to bind to").req(),
        p("bindaddr", Str, "Address to bind TCP listener to").def("0.0.0.0"),
        REMOTENODE,
        REMOTESERVICE,
        p("tlsserver", Str, "Name of TLS server config for the TCP listener"),
        p("tlsclient", Str, "Name of TLS client config for the Receptor connection"),
    ])
    .supported(),
    EntitySpec::new("tcp-client", Services, "Listen on a Receptor service and forward via TCP", &[
        BIND_SERVICE,
        p("address", Str, "Address for outbound TCP connection").req(),
        p("tlsserver", Str, "Name of TLS server config for the Receptor service"),
        p("tlsclient", Str, "Name of TLS client config for the TCP connection"),
    ])
    .supported(),
    EntitySpec::new("udp-server", Services, "Listen for UDP and forward via Receptor", &[
        p("port", Int, "Local UDP port to bind to").req(),
        p("bindaddr", Str, "Address to bind UDP listener to").def("0.0.0.0"),
        REMOTENODE,
        REMOTESERVICE,
    ])
    .supported(),
    EntitySpec::new("udp-client", Services, "Listen on a Receptor service and forward via UDP", &[
        BIND_SERVICE,
        p("address", Str, "Address for outbound UDP connection").req(),
    ])
    .supported(),
    EntitySpec::new("unix-socket-server", Services, "Listen on a Unix socket and forward via Receptor", &[
        p("filename", Str, "Socket filename, which will be overwritten").req(),
        p("permissions", Int, "Socket file permissions").def("0600"),
        REMOTENODE,
        REMOTESERVICE,
        p("tls", Str, "Name of TLS client config for the Receptor connection"),
    ])
    .supported(),
    EntitySpec::new("unix-socket-client", Services, "Listen via Receptor and forward to a Unix socket", &[
        BIND_SERVICE,
        p("filename", Str, "Socket filename, which must already exist").req(),
        p("tls", Str, "Name of TLS server config for the Receptor connection"),
    ])
    .supported(),
    EntitySpec::new("tcp-listener", Backends, "Run a backend listener on a TCP port", &[
        BINDADDR,
        p("port", Int, "Local TCP port to listen on").bare().req(),
        p("tls", Str, "Name of TLS server config"),
        COST,
        NODECOST,
        ALLOWEDPEERS,
    ])
    .supported(),
    EntitySpec::new("tcp-peer", Backends, "Make an outbound backend connection to a TCP peer", &[
        p("address", Str, "Remote address (Host:Port) to connect to").bare().req(),
        REDIAL,
        p("tls", Str, "Name of TLS client config"),
        COST,
        ALLOWEDPEERS,
    ])
    .supported(),
    // Registered in Go as "UDP-listener"/"UDP-peer"; names are matched lower-cased.
    EntitySpec::new("udp-listener", Backends, "Run a backend listener on a UDP port", &[
        BINDADDR,
        p("port", Int, "Local UDP port to listen on").bare().req(),
        COST,
        NODECOST,
        ALLOWEDPEERS,
    ])
    .supported(),
    EntitySpec::new("udp-peer", Backends, "Make an outbound backend connection to a UDP peer", &[
        p("address", Str, "Host:Port to connect to").bare().req(),
        REDIAL,
        COST,
        ALLOWEDPEERS,
    ])
    .supported(),
    EntitySpec::new("ws-listener", Backends, "Run an http server that accepts websocket connections", &[
        BINDADDR,
        p("port", Int, "Local TCP port to run http server on").bare().req(),
        p("path", Str, "URI path to the websocket server").def("/"),
        p("tls", Str, "Name of TLS server config"),
        COST,
        NODECOST,
        ALLOWEDPEERS,
    ])
    .supported(),
    EntitySpec::new("ws-peer", Backends, "Connect outbound to a websocket peer", &[
        p("address", Str, "URL to connect to").bare().req(),
        REDIAL,
        p("extraheader", Str, "Sends extra HTTP header on initial connection"),
        p("tls", Str, "Name of TLS client config"),
        COST,
        ALLOWEDPEERS,
    ])
    .supported(),
    EntitySpec::new("work-signing", Workers, "Private key to sign work submissions", &[
        p("privatekey", Str, "Private key to sign work submissions").bare(),
        p("tokenexpiration", Str, "Expiration of the signed json web token, e.g. 3h or 3h30m"),
    ])
    .singleton()
    .supported(),
    EntitySpec::new("work-verification", Workers, "Public key to verify work submissions", &[
        p("publickey", Str, "Public key to verify signed work submissions").bare(),
    ])
    .singleton()
    .supported(),
    // Not in Go receptor.
    EntitySpec::new("work-remote", Workers, "Settings for units of work submitted to other nodes (not in Go receptor)", &[
        p("unreachabletimeout", Str, "Fail a remote unit whose node stays unreachable this long, e.g. 5m or 1h; 0 waits forever").bare().def("5m"),
    ])
    .singleton()
    .supported(),
    EntitySpec::new("work-command", Workers, "Run a worker using an external command", &[
        WORKTYPE,
        p("command", Str, "Command to run to process units of work").req(),
        p("params", Str, "Command-line parameters"),
        p("allowruntimeparams", Bool, "Allow users to add more parameters").def("false"),
        VERIFYSIGNATURE,
    ])
    .supported(),
    EntitySpec::new("command-runner", Workers, "Wrapper around a process invocation", &[
        p("command", Str, "").req(),
        p("params", Str, "").req(),
        p("unitdir", Str, "").req(),
    ])
    .hidden()
    .supported(),
    EntitySpec::new("work-kubernetes", Workers, "Run a worker using Kubernetes", &[
        WORKTYPE,
        p("namespace", Str, "Kubernetes namespace to create pods in"),
        p("image", Str, "Container image to use for the worker pod"),
        p("command", Str, "Command to run in the container (overrides entrypoint)"),
        p("params", Str, "Command-line parameters to pass to the entrypoint"),
        p("authmethod", Str, "One of: kubeconfig, incluster").def("incluster"),
        p("kubeconfig", Str, "Kubeconfig filename (for authmethod=kubeconfig)"),
        p("pod", Str, "Pod definition filename, in json or yaml format"),
        p("allowruntimeauth", Bool, "Allow passing API parameters at runtime").def("false"),
        p("allowruntimecommand", Bool, "Allow specifying image & command at runtime").def("false"),
        p("allowruntimeparams", Bool, "Allow adding command parameters at runtime").def("false"),
        p("allowruntimepod", Bool, "Allow passing Pod at runtime").def("false"),
        p("deletepodonrestart", Bool, "On restart, delete the pod if in pending state").def("true"),
        p("streammethod", Str, "Method for connecting to worker pods: logger or tcp").def("logger"),
        VERIFYSIGNATURE,
    ]),
    EntitySpec::new("work-python", Workers, "Run a worker using a Python plugin\n[DEPRECATION WARNING] This option is not currently being used. This feature will be removed from receptor in a future release.", &[
        WORKTYPE,
        p("plugin", Str, "Python module name of the worker plugin").req(),
        p("function", Str, "Receptor-exported function to call").req(),
        p("config", AnyMap, "Plugin-specific configuration"),
    ]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lower_case_with_at_most_one_bare_param() {
        for (i, e) in ENTITIES.iter().enumerate() {
            assert_eq!(e.name, e.name.to_ascii_lowercase());
            assert!(
                ENTITIES.iter().skip(i + 1).all(|o| o.name != e.name),
                "{}",
                e.name
            );
            assert!(
                e.params.iter().filter(|p| p.bare).count() <= 1,
                "{}",
                e.name
            );
            for (j, p) in e.params.iter().enumerate() {
                assert_eq!(p.name, p.name.to_ascii_lowercase());
                assert_eq!(e.param_index(p.name), Some(j));
            }
        }
    }

    #[test]
    fn udp_names_match_case_insensitively_on_lookup_of_lowered_name() {
        assert!(lookup("udp-listener").is_some());
        assert!(lookup("UDP-listener").is_none());
    }
}
