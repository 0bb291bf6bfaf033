//! The command line of the `receptor-command-runner` program: the arguments a node gives a
//! unit's supervisor (`--node id=worker --log-level <level> --command-runner command=<c>
//! params=<p> unitdir=<d>`), read with the syntax of receptor's own command line (an argument
//! starting with `-` starts an entity, one or two dashes stripped and the name lower-cased;
//! `key=value` split at the first `=`, key case-insensitive; a bare value for `log-level`).
//!
//! Only the entities a supervisor needs are known; `--node`'s parameters are accepted and
//! ignored (the supervisor is no node). This keeps the node's whole configuration parser out of
//! the small program, which every unit starts.

use crate::config::{CommandRunnerCfg, LogLevel};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The supervisor's command, parameters and unit directory.
    pub runner: CommandRunnerCfg,
    /// From `--log-level` ([`LogLevel::Info`] without one, as receptor's default).
    pub log_level: LogLevel,
    /// `--trace` was given.
    pub trace: bool,
}

/// The entities this program knows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entity {
    Node,
    LogLevel,
    Trace,
    CommandRunner,
}

impl Entity {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "node" => Self::Node,
            "log-level" => Self::LogLevel,
            "trace" => Self::Trace,
            "command-runner" => Self::CommandRunner,
            _ => return None,
        })
    }
}

/// Parses the arguments (without the program name). Errors are worded as receptor's own
/// command-line errors.
pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut current: Option<(Entity, &str)> = None;
    let mut seen: Vec<Entity> = Vec::new();
    let mut log_level: Option<String> = None;
    let mut trace = false;
    let (mut command, mut params, mut unit_dir) = (None, None, None);
    for arg in args {
        if arg.starts_with('-') {
            let lower = arg.to_lowercase();
            let name = lower
                .strip_prefix("--")
                .or_else(|| lower.strip_prefix('-'))
                .unwrap_or(&lower);
            let entity = Entity::named(name)
                .ok_or_else(|| format!("command error: unknown config type {name}"))?;
            if seen.contains(&entity) {
                return Err(format!("directive \"{name}\" is only allowed once"));
            }
            seen.push(entity);
            if entity == Entity::LogLevel {
                log_level = Some("error".to_owned());
            }
            trace |= entity == Entity::Trace;
            current = Some((entity, arg));
            continue;
        }
        let Some((entity, label)) = current else {
            return Err("parameter specified before command".to_owned());
        };
        let (key, value) = match arg.split_once('=') {
            Some((key, value)) => (Some(key.to_lowercase()), value),
            None => (None, arg.as_str()),
        };
        let slot = match (entity, key.as_deref()) {
            (Entity::Node, Some(_)) => continue,
            (Entity::LogLevel, None | Some("level")) => &mut log_level,
            (Entity::CommandRunner, Some("command")) => &mut command,
            (Entity::CommandRunner, Some("params")) => &mut params,
            (Entity::CommandRunner, Some("unitdir")) => &mut unit_dir,
            (_, None) => {
                return Err(format!(
                    "config error: command does not allow bare values ({label} {arg:?})"
                ));
            }
            (_, Some(key)) => {
                return Err(format!(
                    "config error: unknown field name {key} for command {label}"
                ));
            }
        };
        *slot = Some(value.to_owned());
    }
    if !seen.contains(&Entity::CommandRunner) {
        return Err("command error: no --command-runner given".to_owned());
    }
    let missing: Vec<&str> = [
        ("command", &command),
        ("params", &params),
        ("unitdir", &unit_dir),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(name, _)| *name)
    .collect();
    match missing.as_slice() {
        [] => {}
        [one] => {
            return Err(format!(
                "error in --command-runner: required parameter missing: {one}"
            ));
        }
        many => {
            return Err(format!(
                "error in --command-runner: required parameters missing: {}",
                many.join(", ")
            ));
        }
    }
    let log_level = match log_level {
        Some(name) => LogLevel::from_name(&name)?,
        None => LogLevel::Info,
    };
    Ok(Invocation {
        runner: CommandRunnerCfg {
            command: command.unwrap_or_default(),
            params: params.unwrap_or_default(),
            unit_dir: unit_dir.unwrap_or_default(),
        },
        log_level,
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, String> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        parse(&args)
    }

    #[test]
    fn what_a_node_passes() {
        let inv = run(&[
            "--node",
            "id=worker",
            "--log-level",
            "warning",
            "--command-runner",
            "command=sh",
            "params=-c 'echo a=b'",
            "unitdir=/d/x=y",
        ])
        .unwrap();
        assert_eq!(
            inv,
            Invocation {
                runner: CommandRunnerCfg {
                    command: "sh".into(),
                    params: "-c 'echo a=b'".into(),
                    unit_dir: "/d/x=y".into(),
                },
                log_level: LogLevel::Warning,
                trace: false,
            }
        );
    }

    #[test]
    fn receptor_syntax() {
        // Names and keys in any case, one dash, `level=`, `--trace`, an empty params value.
        let inv = run(&[
            "-Command-Runner",
            "COMMAND=true",
            "Params=",
            "unitdir=/d",
            "--LOG-LEVEL",
            "level=Debug",
            "--trace",
            "--node",
            "id=w",
            "datadir=/x",
        ])
        .unwrap();
        assert_eq!(inv.runner.command, "true");
        assert_eq!(inv.runner.params, "");
        assert_eq!((inv.log_level, inv.trace), (LogLevel::Debug, true));
        // Without --log-level: receptor's default; a bare --log-level: error.
        let base = ["--command-runner", "command=c", "params=p", "unitdir=/d"];
        assert_eq!(run(&base).unwrap().log_level, LogLevel::Info);
        let mut bare = base.to_vec();
        bare.push("--log-level");
        assert_eq!(run(&bare).unwrap().log_level, LogLevel::Error);
    }

    #[test]
    fn bad_command_lines() {
        let err = |args: &[&str]| run(args).unwrap_err();
        assert_eq!(
            err(&["--tcp-listener"]),
            "command error: unknown config type tcp-listener"
        );
        assert_eq!(err(&["id=x"]), "parameter specified before command");
        assert_eq!(err(&[]), "command error: no --command-runner given");
        assert_eq!(
            err(&["--command-runner", "command=c"]),
            "error in --command-runner: required parameters missing: params, unitdir"
        );
        assert_eq!(
            err(&["--command-runner", "command=c", "params=", "dir=/d"]),
            "config error: unknown field name dir for command --command-runner"
        );
        assert_eq!(
            err(&["--command-runner", "command=c", "params=", "/d"]),
            "config error: command does not allow bare values (--command-runner \"/d\")"
        );
        assert_eq!(
            err(&[
                "--log-level",
                "loud",
                "--command-runner",
                "command=c",
                "params=",
                "unitdir=/d"
            ]),
            "loud is not a valid log level name"
        );
        assert_eq!(
            err(&["--trace", "--trace"]),
            "directive \"trace\" is only allowed once"
        );
        assert_eq!(
            err(&[
                "--command-runner",
                "command=c",
                "params=",
                "unitdir=/d",
                "--node",
                "w"
            ]),
            "config error: command does not allow bare values (--node \"w\")"
        );
    }
}
