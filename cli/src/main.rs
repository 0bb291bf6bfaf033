//! The `receptor` binary. For now it parses the configuration, answers `--help`, `--version`
//! and `--bash-completion`, and reports configuration errors the way Go receptor does
//! (`Error: <message>` on stdout, exit 1). Running a node comes later.

use std::process::ExitCode;

use receptor_cli::config::{self, Command};

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_else(|| "receptor".to_owned());
    let progname = std::path::Path::new(&argv0)
        .file_name()
        .map_or_else(|| argv0.clone(), |n| n.to_string_lossy().into_owned());
    let command = match config::parse_args(args).and_then(|c| c.check_supported().map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            println!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Help => print!("{}", config::help_text(&progname)),
        Command::BashCompletion => print!("{}", config::bash_completion(&progname)),
        Command::Version => println!("{}", config::VERSION),
        Command::Run(cfg) if !cfg.has_backends() => {
            println!("WARNING Nothing to do - no backends are running.");
            println!("Run {argv0} --help for command line instructions.");
            return ExitCode::FAILURE;
        }
        _ => {
            println!("Error: running a node is not supported yet");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
