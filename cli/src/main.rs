//! The `receptor` binary: Go receptor's command line and YAML config, running a mesh node.

use std::process::ExitCode;

use receptor_cli::config::{self, Command};
use receptor_cli::{logging, run};
use tracing::{error, info};

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
    let cfg = match command {
        Command::Help => {
            print!("{}", config::help_text(&progname));
            return ExitCode::SUCCESS;
        }
        Command::BashCompletion => {
            print!("{}", config::bash_completion(&progname));
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("{}", config::VERSION);
            return ExitCode::SUCCESS;
        }
        Command::Run(cfg) if !cfg.has_backends() && cfg.control_services.is_empty() => {
            println!("WARNING Nothing to do - no backends are running.");
            println!("Run {argv0} --help for command line instructions.");
            return ExitCode::FAILURE;
        }
        Command::Run(cfg) => cfg,
        _ => {
            println!("Error: not supported yet");
            return ExitCode::FAILURE;
        }
    };
    logging::init(cfg.log_level);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let (node, _tls) = match run::start(&cfg).await {
            Ok(x) => x,
            Err(e) => {
                error!("{e}");
                println!("Error: {e}");
                return ExitCode::FAILURE;
            }
        };
        info!("Initialization complete");
        let code = wait_for_exit(&node).await;
        node.shutdown().await;
        code
    })
}

/// Runs until SIGINT/SIGTERM (exit 0) or until the node stops itself (exit 1).
async fn wait_for_exit(node: &receptor_tokio::NodeHandle) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return ExitCode::FAILURE;
    };
    tokio::select! {
        _ = term.recv() => ExitCode::SUCCESS,
        _ = int.recv() => ExitCode::SUCCESS,
        reason = node.stopped() => {
            if let Some(r) = reason {
                error!("{r}");
            }
            ExitCode::FAILURE
        }
    }
}
