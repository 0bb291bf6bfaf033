//! Helpers shared by the configuration integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use receptor_cli::config::{Command, Config, ConfigError, Parser, Source};

pub fn parser() -> Parser {
    Parser::new().with_hostname("testhost")
}

/// Writes `text` to a fresh temporary file and returns its path.
pub fn temp_yaml(text: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("receptor-cli-test-{}-{n}.yml", std::process::id()));
    std::fs::write(&path, text).expect("write temp config");
    path
}

pub fn run_args(args: &[&str]) -> Result<Config, ConfigError> {
    match parser().parse_args(args)? {
        Command::Run(c) => Ok(*c),
        other => panic!("expected a run config, got {other:?}"),
    }
}

pub fn run_yaml(text: &str) -> Result<Config, ConfigError> {
    let path = temp_yaml(text);
    let p = path.to_string_lossy().into_owned();
    let result = run_args(&["--config", &p]);
    let _ = std::fs::remove_file(&path);
    result
}

pub fn ok_args(args: &[&str]) -> Config {
    run_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub fn ok_yaml(text: &str) -> Config {
    run_yaml(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn err_args(args: &[&str]) -> String {
    match parser().parse_args(args) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("{args:?}: expected an error, got {c:?}"),
    }
}

pub fn err_yaml(text: &str) -> String {
    match run_yaml(text) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("{text}: expected an error, got {c:?}"),
    }
}

/// The config without provenance, so both syntaxes compare equal.
pub fn typed(mut c: Config) -> Config {
    c.entities = c
        .entities
        .iter()
        .map(|(n, _)| (*n, Source::CommandLine))
        .collect();
    c.config_file = None;
    c
}

/// The YAML example from the task brief (Go docs style).
pub const BRIEF_EXAMPLE: &str = "---
- node:
    id: foo
- log-level: debug
- tcp-listener:
    port: 2222
    nodecost: {bar: 2.5}
- tcp-peer:
    address: localhost:2223
    redial: true
- control-service:
    service: control
    filename: /tmp/foo.sock
";
