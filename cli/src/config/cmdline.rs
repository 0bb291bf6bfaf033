//! The command-line syntax: `receptor --node id=foo --tcp-listener port=2222 --config f.yml`.
//!
//! A faithful re-reading of ghjm/cmdline's `ParseAndRun` argument loop (control-and-work.md §3.1):
//! * an argument starting with `-` starts a new entity; one or two dashes are stripped and the
//!   rest lower-cased (`--TCP-Listener` works); `config`/`c` mean "the next plain argument is a
//!   YAML file";
//! * other arguments are `key=value` (split at the first `=`, key case-insensitive) or a bare
//!   value for the entity's barevalue parameter;
//! * `-h`/`--help` (any case) and `--bash-completion` stop parsing as soon as they are reached.
//!
//! Deviations, all on inputs where Go misbehaves: an empty argument is a (bare) value rather than
//! an index panic, and a singleton repeated in a file after the command line is refused too.

use super::entity::{self, EntitySpec};
use super::error::{ConfigError, ErrorKind};
use super::raw::{RawEntity, Source};
use super::value::Value;

/// What the argument loop found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `-h`/`--help` was reached, or there were no arguments.
    Help,
    /// `--bash-completion` was reached.
    BashCompletion,
    /// The entities, in order, with their parameters assigned (not yet defaulted).
    Entities(Vec<RawEntity>),
}

/// Loads a `--config` file and returns its entities; given the entities seen so far so it can
/// refuse a repeated singleton.
pub(crate) type FileLoader<'a> =
    dyn FnMut(&str, &[RawEntity]) -> Result<Vec<RawEntity>, ConfigError> + 'a;

/// Runs the argument loop over `args` (without the program name).
pub(crate) fn parse(args: &[String], load: &mut FileLoader<'_>) -> Result<Outcome, ConfigError> {
    if args.is_empty() {
        return Ok(Outcome::Help);
    }
    let mut done: Vec<RawEntity> = Vec::new();
    let mut current: Option<RawEntity> = None;
    let mut expect_file = false;
    for arg in args {
        let lower = arg.to_lowercase();
        if lower == "-h" || lower == "--help" {
            return Ok(Outcome::Help);
        }
        if lower == "--bash-completion" {
            return Ok(Outcome::BashCompletion);
        }
        if lower.starts_with('-') {
            let name = lower
                .strip_prefix("--")
                .or_else(|| lower.strip_prefix('-'))
                .unwrap_or(&lower);
            if let Some(finished) = current.take() {
                finished.check_required()?;
                done.push(finished);
            }
            if name == "config" || name == "c" {
                expect_file = true;
                continue;
            }
            let spec = entity::lookup(name).ok_or_else(|| {
                ConfigError::new(
                    ErrorKind::UnknownEntity,
                    format!("command error: unknown config type {name}"),
                )
            })?;
            check_singleton_cmdline(spec, &done)?;
            current = Some(RawEntity::new(spec, arg.clone(), Source::CommandLine));
            continue;
        }
        if expect_file {
            expect_file = false;
            let loaded = load(arg, &done)?;
            done.extend(loaded);
            // Go keeps its "current command type" but drops the accumulator here, so a
            // following `key=value` is "parameter specified before command".
            continue;
        }
        let Some(entity) = current.as_mut() else {
            return Err(ConfigError::new(
                ErrorKind::Syntax,
                "parameter specified before command",
            ));
        };
        assign(entity, arg)?;
    }
    if let Some(finished) = current.take() {
        finished.check_required()?;
        done.push(finished);
    }
    Ok(Outcome::Entities(done))
}

fn check_singleton_cmdline(spec: &EntitySpec, done: &[RawEntity]) -> Result<(), ConfigError> {
    if spec.singleton && done.iter().any(|e| std::ptr::eq(e.spec, spec)) {
        return Err(ConfigError::new(
            ErrorKind::Singleton,
            format!("directive \"{}\" is only allowed once", spec.name),
        ));
    }
    Ok(())
}

/// Assigns one `key=value` or bare-value argument to the entity being built.
fn assign(entity: &mut RawEntity, arg: &str) -> Result<(), ConfigError> {
    let label = entity.label.clone();
    let (index, name, value) = match arg.split_once('=') {
        Some((key, value)) => {
            let key = key.to_lowercase();
            let index = entity.spec.param_index(&key).ok_or_else(|| {
                ConfigError::new(
                    ErrorKind::UnknownParam,
                    format!("config error: unknown field name {key} for command {label}"),
                )
            })?;
            (index, key, value)
        }
        None => {
            let index = entity.spec.bare_param().ok_or_else(|| {
                ConfigError::new(
                    ErrorKind::Syntax,
                    format!("config error: command does not allow bare values ({label} {arg:?})"),
                )
            })?;
            let name = entity
                .spec
                .params
                .get(index)
                .map_or_else(String::new, |p| p.name.to_owned());
            (index, name, arg)
        }
    };
    entity
        .set(index, &Value::Str(value.to_owned()))
        .map_err(|e| {
            ConfigError::new(
                ErrorKind::BadValue,
                format!("error setting config value for field {name} in command {label}: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Outcome, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        parse(&args, &mut |path: &str, _: &[RawEntity]| {
            Err(ConfigError::new(ErrorKind::File, format!("no file {path}")))
        })
    }

    fn entities(args: &[&str]) -> Vec<RawEntity> {
        match run(args) {
            Ok(Outcome::Entities(e)) => e,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match run(args) {
            Err(e) => e.to_string(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn names_and_keys_are_case_insensitive() {
        let e = entities(&["--TCP-Listener", "PORT=2222", "-udp-PEER", "host:1"]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].spec.name, "tcp-listener");
        assert_eq!(e[0].label, "--TCP-Listener");
        assert_eq!(e[0].int("port"), 2222);
        assert_eq!(e[1].str("address"), "host:1");
    }

    #[test]
    fn value_split_at_first_equals() {
        let e = entities(&["--ws-peer", "address=ws://h/?a=b", "extraheader=X-A:b=c"]);
        assert_eq!(e[0].str("address"), "ws://h/?a=b");
        assert_eq!(e[0].str("extraheader"), "X-A:b=c");
    }

    #[test]
    fn help_wins_when_reached() {
        assert!(matches!(run(&[]), Ok(Outcome::Help)));
        assert!(matches!(run(&["--node", "--HELP"]), Ok(Outcome::Help)));
        assert!(matches!(run(&["-h", "--bogus"]), Ok(Outcome::Help)));
        assert!(matches!(
            run(&["--bash-completion"]),
            Ok(Outcome::BashCompletion)
        ));
        assert_eq!(
            err(&["--bogus", "--help"]),
            "command error: unknown config type bogus"
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(err(&["id=foo"]), "parameter specified before command");
        assert_eq!(
            err(&["--node", "id=a", "--node", "id=b"]),
            "directive \"node\" is only allowed once"
        );
        assert_eq!(
            err(&["--tcp-listener", "bindaddr=x"]),
            "error in --tcp-listener: required parameter missing: port"
        );
        assert_eq!(
            err(&["--tls-server", "name=a"]),
            "error in --tls-server: required parameters missing: cert, key"
        );
        assert_eq!(
            err(&["--tcp-listener", "prot=1"]),
            "config error: unknown field name prot for command --tcp-listener"
        );
        assert_eq!(
            err(&["--trace", "x"]),
            "config error: command does not allow bare values (--trace \"x\")"
        );
        assert_eq!(
            err(&["--tcp-listener", "port=abc"]),
            "error setting config value for field port in command --tcp-listener: \
             strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            err(&["---node"]),
            "command error: unknown config type -node"
        );
    }

    #[test]
    fn config_file_argument_then_parameter_is_misplaced() {
        let args: Vec<String> = ["--node", "--config", "f.yml", "id=x"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut seen = Vec::new();
        let r = parse(&args, &mut |path: &str, _: &[RawEntity]| {
            seen.push(path.to_owned());
            Ok(Vec::new())
        });
        assert_eq!(seen, ["f.yml"]);
        assert!(r.is_err_and(|e| e.message() == "parameter specified before command"));
    }
}
