//! The `receptor` binary: Go receptor's command line and YAML config, running a mesh node.

use std::process::ExitCode;
use std::sync::Arc;

use receptor_cli::backends::Backends;
use receptor_cli::config::{self, Command, Config};
use receptor_cli::control::{ControlContext, serve_mesh, serve_tcp, serve_unix};
use receptor_cli::logging;
use receptor_cli::metrics::{MetricsServers, Sources};
use receptor_cli::run;
use receptor_cli::work::{
    DEFAULT_TOKEN_EXPIRATION, Keys, Mesh, RunnerSpec, Workceptor, check_exists,
    default_unreachable_timeout, runner,
};
use receptor_tokio::NodeHandle;
use tokio::sync::Mutex;
use tracing::{debug, error, info, warn};

/// Freed heap glibc keeps for reuse: see [`keep_freed_memory`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEEP_FREED: usize = 8 << 20;

/// How often [`return_freed_memory`] looks at the allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Mesh streams allocate and free 64 KiB packets and 256 KiB read buffers by the thousand
/// per second. glibc's defaults hand blocks that large back to the kernel as soon as they are
/// freed (mmap for blocks over 128 KiB, and a heap top with over 128 KiB free is trimmed, both
/// thresholds then moving with the sizes seen), so the next buffer page-faults in fresh zeroed
/// pages: in the stream benchmark that was a third of the relay node's CPU. Fixed, larger
/// thresholds keep up to 8 MiB of freed heap for reuse (with 2 MiB the sending node, whose
/// unacknowledged packets are freed in bursts, still faulted 35 pages per MiB sent). Called
/// before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters, and no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREED as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// glibc gives back only the free top of its heap; memory freed below a live block stays in
/// the process. After a flood of connections (each one's buffers and task scattered through
/// the heap) that was 108 MiB of RSS kept for good once all of them had closed: 118.6 MiB
/// against an idle 10.7 MiB (benches/e2e/flood_bench.py). Every [`TRIM_EVERY`], once more
/// than twice [`KEEP_FREED`] is free, the free pages go back (`malloc_trim` keeps
/// [`KEEP_FREED`] at the top for reuse): the same node was at 12.0 MiB 30 s after the flood.
/// The first trim took 6.5 ms, later ones 70 us. Nothing is done while less is free, so an
/// idle or streaming node keeps its reused buffers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn return_freed_memory() {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // SAFETY: both only read and adjust the allocator's own state, under its locks.
        let free = unsafe { libc::mallinfo2() }.fordblks;
        if free > 2 * KEEP_FREED {
            let t = std::time::Instant::now();
            // SAFETY: as above.
            unsafe { libc::malloc_trim(KEEP_FREED) };
            debug!(free, took = ?t.elapsed(), "freed memory returned to the system");
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
async fn return_freed_memory() {}

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_else(|| "receptor".to_owned());
    let args: Vec<String> = args.collect();
    let progname = std::path::Path::new(&argv0)
        .file_name()
        .map_or_else(|| argv0.clone(), |n| n.to_string_lossy().into_owned());
    let command =
        match config::parse_args(args.clone()).and_then(|c| c.check_supported().map(|()| c)) {
            Ok(c) => c,
            Err(e) => {
                println!("Error: {e}");
                return ExitCode::FAILURE;
            }
        };
    // A version 2 file's certificate commands run first; with nothing else in it, Go exits.
    if let Command::Run(cfg) = &command
        && !cfg.cert_commands.is_empty()
    {
        for cert in &cfg.cert_commands {
            if let Err(e) = run_cert_command(cert) {
                println!("Error: {e}");
                return ExitCode::FAILURE;
            }
        }
        if cfg.is_empty() {
            println!("empty receptor config, skipping...");
            return ExitCode::SUCCESS;
        }
    }
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
        // Started as a unit's supervisor (`--command-runner`) by a Go node, or by one of ours
        // without `receptor-command-runner` beside it: the same supervisor as that program's.
        Command::Run(cfg) if cfg.command_runner.is_some() => {
            logging::init(cfg.log_level, cfg.trace);
            return runner::exit_status(cfg.command_runner.as_ref().map_or(0, runner::run));
        }
        Command::Run(cfg) if !cfg.has_backends() && cfg.control_services.is_empty() => {
            println!("WARNING Nothing to do - no backends are running.");
            println!("Run {argv0} --help for command line instructions.");
            return ExitCode::FAILURE;
        }
        Command::Run(cfg) => cfg,
        cert => return cert_outcome(run_cert_command(&cert)),
    };
    keep_freed_memory();
    logging::init(cfg.log_level, cfg.trace);
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
        let node = match start(*cfg, args).await {
            Ok(n) => n,
            Err(e) => {
                error!("{e}");
                println!("Error: {e}");
                return ExitCode::FAILURE;
            }
        };
        info!("Initialization complete");
        tokio::spawn(return_freed_memory());
        let code = wait_for_exit(&node).await;
        node.shutdown().await;
        code
    })
}

/// Runs `--cert-init`, `--cert-makereq` or `--cert-signreq` (the latter may prompt on stdin).
fn run_cert_command(cmd: &Command) -> Result<(), receptor_cli::certs::CertError> {
    match cmd {
        Command::CertInit(c) => receptor_cli::certs::init(c),
        Command::CertMakeReq(c) => receptor_cli::certs::make_req(c),
        Command::CertSignReq(c) => {
            let stdin = std::io::stdin();
            receptor_cli::certs::sign_req(c, &mut stdin.lock(), &mut std::io::stdout())
        }
        _ => Ok(()),
    }
}

/// Exit status of a certificate command; its error is printed as Go prints it.
fn cert_outcome(result: Result<(), receptor_cli::certs::CertError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the node, its control services and backends.
async fn start(cfg: Config, args: Vec<String>) -> Result<NodeHandle, String> {
    let (node, tls) = run::start_node(&cfg)?;
    // Control sockets first: clients poll for the socket file right after start.
    let backends = Arc::new(Mutex::new(Backends::default()));
    let metrics = Arc::new(Mutex::new(MetricsServers::default()));
    let reload = run::reload_fn(
        node.clone(),
        tls.clone(),
        backends.clone(),
        metrics.clone(),
        &cfg,
        args,
    );
    let work = Arc::new(
        Workceptor::new(
            &cfg.node.id,
            &cfg.node.data_dir,
            &cfg.work_commands,
            RunnerSpec {
                exe: std::env::current_exe()
                    .unwrap_or_else(|_| std::env::args().next().unwrap_or_default().into()),
                log_level: format!("{:?}", cfg.log_level).to_lowercase(),
            },
        )?
        .with_mesh(Mesh {
            node: node.clone(),
            tls: tls.clone(),
        })
        .with_keys(work_keys(&cfg)?)
        .with_unreachable_timeout(match &cfg.work_remote {
            Some(r) => r.unreachable_timeout,
            None => default_unreachable_timeout(),
        }),
    );
    work.scan();
    let sources = Sources {
        node: node.clone(),
        work: work.clone(),
        version: config::VERSION.to_owned(),
    };
    let ctx = ControlContext {
        node: node.clone(),
        reload,
        version: config::VERSION.to_owned(),
        tls: tls.clone(),
        work,
    };
    for c in &cfg.control_services {
        if let Some(path) = &c.filename {
            serve_unix(std::path::Path::new(path), c.permissions, ctx.clone())?;
            info!("Running control service {} on {path}", c.service);
        }
        if let Some(listen) = &c.tcp_listen {
            if c.tls.is_some() && c.tcp_tls.is_none() {
                warn!("control-service tls is set but tcptls is not: the TCP listener is plain");
            }
            let tls_cfg = match &c.tcp_tls {
                None => None,
                Some(name) => Some(
                    tls.servers
                        .get(name)
                        .ok_or_else(|| format!("unknown TLS config {name}"))?
                        .backend_config(&[])
                        .map_err(|e| e.to_string())?,
                ),
            };
            let (addr, _) = serve_tcp(listen, tls_cfg, ctx.clone()).await?;
            info!("Running control service {} on TCP {addr}", c.service);
        }
        serve_mesh(&c.service, c.tls.as_deref(), ctx.clone()).await?;
    }
    (metrics.lock().await)
        .start(&cfg.metrics, &tls, Arc::new(sources))
        .await?;
    receptor_cli::services::start_services(&node, &cfg, &tls).await?;
    backends.lock().await.apply(&node, &cfg, &tls).await?;
    Ok(node)
}

/// The `work-signing` and `work-verification` keys; their files must exist (Go checks only
/// that at startup and reads them on each use).
fn work_keys(cfg: &Config) -> Result<Keys, String> {
    let mut keys = Keys::default();
    if let Some(s) = &cfg.work_signing {
        check_exists(&s.private_key)?;
        let lifetime = s.token_expiration.unwrap_or(DEFAULT_TOKEN_EXPIRATION);
        keys.signing = Some((s.private_key.clone().into(), lifetime));
    }
    if let Some(v) = &cfg.work_verification {
        check_exists(&v.public_key)?;
        keys.verifying = Some(v.public_key.clone().into());
    }
    Ok(keys)
}

/// Runs until SIGINT/SIGTERM (exit 0) or until the node stops itself (exit 1).
async fn wait_for_exit(node: &NodeHandle) -> ExitCode {
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
