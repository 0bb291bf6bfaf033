//! Go-compatible configuration for the `receptor` binary (control-and-work.md §3).
//!
//! Receptor is configured by *entities*, given on the command line
//! (`receptor --node id=foo --tcp-listener port=2222 cost=2`) or in YAML files
//! (`receptor -c receptor.yml`, a list of `- <entity>: {params}` items), or both. A file may
//! also be Go's version 2 format (a mapping with plural keys, `receptor --config-v2 -c FILE`,
//! or any mapping that starts `version: 2`; see `v2`). This module
//! parses both forms exactly as Go's ghjm/cmdline v0.1.2 + yaml.v2 do, applies Go's defaults and
//! value conversions, runs the startup checks Go runs that need no I/O, and returns a typed
//! [`Config`] (or another [`Command`]: help, version, certificate helpers).
//!
//! ```
//! use receptor_cli::config::{Command, Parser};
//!
//! let cmd = Parser::new()
//!     .with_hostname("myhost")
//!     .parse_args(["--tcp-listener", "port=2222", "nodecost={\"b\":2.5}", "--log-level", "debug"])?;
//! let Command::Run(config) = cmd else { unreachable!() };
//! assert_eq!(config.node.id, "myhost");
//! assert_eq!(config.tcp_listeners[0].port, 2222);
//! assert_eq!(config.tcp_listeners[0].cost, 1.0);
//! # Ok::<(), receptor_cli::config::ConfigError>(())
//! ```
//!
//! Entities this implementation cannot run yet still parse into typed structs; a caller refuses
//! them with [`Command::check_supported`], which fails with `<entity>: not supported yet`.
//!
//! Layout: `entity` (the table), `cmdline` and `yaml` (the two syntaxes), `value`/`goparse`
//! (Go's conversions), `raw` (an entity being filled), `build`/`extra_build` (typed config and
//! checks), `model`/`extra` (the typed structs), `help`, `reload`, `v2` (version 2 files).

mod build;
mod cmdline;
mod entity;
mod error;
mod extra;
mod extra_build;
mod goparse;
mod help;
mod model;
mod raw;
mod reload;
mod v2;
mod value;
mod yaml;

pub use entity::{ENTITIES, EntitySpec, Kind, ParamSpec, Section, lookup};
pub use error::{ConfigError, ErrorKind};
pub use extra::{
    CertInitCfg, CertMakeReqCfg, CertSignReqCfg, CommandRunnerCfg, CommandServiceCfg, IpRouterCfg,
    MetricsCfg, TcpClientCfg, TcpServerCfg, UdpClientCfg, UdpServerCfg, UnixSocketClientCfg,
    UnixSocketServerCfg, WorkCommandCfg, WorkKubernetesCfg, WorkPythonCfg, WorkRemoteCfg,
    WorkSigningCfg, WorkVerificationCfg,
};
pub use help::{bash_completion, help_text};
pub use model::{
    Command, Config, ControlServiceCfg, FirewallAction, FirewallRule, ListenerCfg, LogLevel,
    NodeCfg, PeerCfg, TlsClientCfg, TlsServerCfg, WsListenerCfg, WsPeerCfg,
};
pub use raw::Source;
pub use reload::{FileItem, check_reload, file_items};
pub use value::Value;
pub use yaml::parse_document;

use raw::RawEntity;

/// The Go receptor release whose wire protocol, control protocol and configuration this
/// implementation matches (checked against Go receptor v1.4.9+git52be401 and receptorctl).
macro_rules! go_release {
    () => {
        "1.4.9"
    };
}

/// The Go release this build is a drop-in replacement for (see [`VERSION`]).
pub const GO_RELEASE: &str = go_release!();

/// The version `--version` prints and `status` reports as `Version`:
/// `<Go release>+rs.<our release>`, for example `1.4.9+rs.0.1.0` (a SemVer build tag, so tools
/// that read Go receptor's version see the Go release first). `RECEPTOR_VERSION` at build
/// time replaces it whole.
pub const VERSION: &str = match option_env!("RECEPTOR_VERSION") {
    Some(v) => v,
    None => concat!(go_release!(), "+rs.", env!("CARGO_PKG_VERSION")),
};

/// Parses receptor configuration. Holds the few environment inputs, so tests can fix them.
#[derive(Clone, Debug, Default)]
pub struct Parser {
    hostname: Option<String>,
}

impl Parser {
    /// A parser that reads the host name from the system when `node id` is not given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `hostname` as the default node ID instead of the system's host name.
    #[must_use]
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Parses command-line arguments (without the program name), loading `--config` files.
    pub fn parse_args<I, S>(&self, args: I) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.parse_args_reading(args, &mut read_config_file)
    }

    /// [`Parser::parse_args`] with `--config` files read by `read` (a path to its text, or an
    /// error already worded for the user) instead of from the file system.
    pub fn parse_args_reading<I, S>(
        &self,
        args: I,
        read: &mut dyn FnMut(&str) -> Result<String, ConfigError>,
    ) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        // Go drops every `--config-v2` before parsing anything else.
        let format = if args.iter().any(|a| a == "--config-v2") {
            args.retain(|a| a != "--config-v2");
            yaml::Format::V2
        } else {
            yaml::Format::V1OrDeclared
        };
        let mut v2_seen = false;
        let outcome = cmdline::parse(&args, &mut |path: &str, prior: &[RawEntity]| {
            let text = read(path)?;
            let (raws, v2) = yaml::entities_from_text(&text, path, prior, format)
                .map_err(|e| e.prefixed("error loading config file: "))?;
            v2_seen |= v2;
            Ok(raws)
        })?;
        let raws = match outcome {
            cmdline::Outcome::Help => return Ok(Command::Help),
            cmdline::Outcome::BashCompletion => return Ok(Command::BashCompletion),
            cmdline::Outcome::Entities(raws) => raws,
        };
        // Go enables `reload` from the file after the first literal `--config` or `-c`.
        let config_file = args
            .iter()
            .position(|a| a == "--config" || a == "-c")
            .and_then(|i| args.get(i + 1))
            .cloned();
        self.finish(raws, config_file, v2_seen)
    }

    /// Parses the text of one YAML config file on its own (as `receptor -c FILE` would, but
    /// without `reload` support).
    pub fn parse_yaml(&self, text: &str) -> Result<Config, ConfigError> {
        let (raws, v2) = yaml::entities_from_text(text, "<yaml>", &[], yaml::Format::V1OrDeclared)
            .map_err(|e| e.prefixed("error loading config file: "))?;
        match self.finish(raws, None, v2)? {
            Command::Run(config) => Ok(*config),
            other => Err(ConfigError::new(
                ErrorKind::Exclusive,
                format!("the file holds a command, not a node config: {other:?}"),
            )),
        }
    }

    /// Exclusive entities, the implicit node, defaults, then the typed config and its checks.
    /// A version 2 file may hold certificate commands beside a node: they run first, as in Go.
    fn finish(
        &self,
        mut raws: Vec<RawEntity>,
        config_file: Option<String>,
        v2: bool,
    ) -> Result<Command, ConfigError> {
        let mut cert_commands = Vec::new();
        if v2 && raws.iter().any(|r| r.spec.name.starts_with("cert-")) {
            let (certs, rest): (Vec<RawEntity>, Vec<RawEntity>) = raws
                .into_iter()
                .partition(|r| r.spec.name.starts_with("cert-"));
            // Go's order: the CA, then requests, then signatures.
            for name in ["cert-init", "cert-makereq", "cert-signreq"] {
                for mut raw in certs.iter().filter(|r| r.spec.name == name).cloned() {
                    raw.apply_defaults()?;
                    cert_commands.push(extra_build::exclusive(&raw)?);
                }
            }
            raws = rest;
        }
        let mut command = self.finish_entities(raws, config_file)?;
        if let Command::Run(config) = &mut command {
            config.cert_commands = cert_commands;
        }
        Ok(command)
    }

    fn finish_entities(
        &self,
        mut raws: Vec<RawEntity>,
        config_file: Option<String>,
    ) -> Result<Command, ConfigError> {
        if let Some(excl) = raws.iter().find(|r| r.spec.exclusive)
            && raws.len() > 1
        {
            return Err(ConfigError::new(
                ErrorKind::Exclusive,
                format!("cannot specify any other options with {}", excl.spec.name),
            ));
        }
        if let [only] = raws.as_mut_slice()
            && only.spec.exclusive
        {
            only.apply_defaults()?;
            return extra_build::exclusive(only);
        }
        if !raws.iter().any(|r| r.spec.name == "node")
            && let Some(spec) = lookup("node")
        {
            let node = RawEntity::new(spec, "implicit node".to_owned(), Source::Implicit);
            node.check_required()?;
            raws.push(node);
        }
        for raw in &mut raws {
            raw.apply_defaults()?;
        }
        let hostname = || match &self.hostname {
            Some(h) => Ok(h.clone()),
            None => build::system_hostname(),
        };
        build::build(&raws, &hostname, config_file).map(|c| Command::Run(Box::new(c)))
    }
}

/// Parses command-line arguments (without the program name) with a default [`Parser`].
pub fn parse_args<I, S>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Parser::new().parse_args(args)
}

/// Reads a config file; errors are worded like Go's `ioutil.ReadFile` ones, already prefixed.
fn read_config_file(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
            std::io::ErrorKind::PermissionDenied => format!("open {path}: permission denied"),
            std::io::ErrorKind::IsADirectory => format!("read {path}: is a directory"),
            std::io::ErrorKind::InvalidData => "yaml: input is not valid UTF-8".to_owned(),
            _ => format!("open {path}: {e}"),
        };
        ConfigError::new(
            ErrorKind::File,
            format!("error loading config file: {reason}"),
        )
    })
}

/// Go's `time.ParseDuration` (core's [`receptor_core::control::parse_go_duration`]), in
/// nanoseconds; the error is Go's text (`time: invalid duration "x"`).
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    receptor_core::control::parse_go_duration(s).map_err(|e| e.to_string())
}
