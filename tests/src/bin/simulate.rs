//! `simulate`: builds a random connected mesh, runs it until every routing table is correct
//! (or a virtual deadline passes) and reports what it took.
//!
//! ```text
//! simulate --nodes N --seed S [--loss P] [--degree D] [--deadline SECS] [--no-batch]
//!          [--threads 1|2] [--json]
//! ```
//! Links have 5-20 ms latency, as between sites. Events are processed in windows as long as
//! the shortest latency (nothing sent inside a window can arrive inside it), node by node
//! ([`Sim::set_batching`]; `--no-batch` processes them one at a time in time order), so the
//! trace differs from an unbatched run of the same seed. The nodes of a window are split
//! between two threads where the machine has two cores (`--threads 1` keeps to one); the
//! run is the same either way. Without `--loss` they are a seeded mix of stream and
//! datagram links; with it every link is datagram with that per-message loss (loss on a
//! stream link would mean resets). Exit code 0 when converged, 1 when not, 2 on bad
//! arguments.
#![allow(clippy::disallowed_methods)] // wall_ms is the one clock read, and only reported

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use receptor_tests::{LinkModel, Sim, Topology};

const USAGE: &str = "usage: simulate --nodes N --seed S [--loss P] [--degree D] [--deadline SECS] [--no-batch] [--threads 1|2] [--json]";

#[derive(Debug)]
struct Args {
    nodes: usize,
    seed: u64,
    loss: f64,
    degree: f64,
    deadline: Duration,
    json: bool,
    batch: bool,
    threads: Option<usize>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut nodes = None;
    let mut seed = None;
    let mut args = Args {
        nodes: 0,
        seed: 0,
        loss: 0.0,
        degree: 3.0,
        deadline: Duration::from_secs(120),
        json: false,
        batch: true,
        threads: None,
    };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--nodes" => nodes = Some(number::<usize>("--nodes", &value("--nodes")?)?),
            "--seed" => seed = Some(number::<u64>("--seed", &value("--seed")?)?),
            "--loss" => args.loss = number("--loss", &value("--loss")?)?,
            "--degree" => args.degree = number("--degree", &value("--degree")?)?,
            "--deadline" => {
                let secs: f64 = number("--deadline", &value("--deadline")?)?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err("--deadline must be a positive number of seconds".into());
                }
                args.deadline = Duration::from_secs_f64(secs);
            }
            "--json" => args.json = true,
            "--no-batch" => args.batch = false,
            "--threads" => {
                let t: usize = number("--threads", &value("--threads")?)?;
                if !(1..=2).contains(&t) {
                    return Err("--threads must be 1 or 2".into());
                }
                args.threads = Some(t);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    args.nodes = nodes.ok_or("--nodes is required")?;
    args.seed = seed.ok_or("--seed is required")?;
    if args.nodes < 2 {
        return Err("--nodes must be at least 2".into());
    }
    if !(0.0..1.0).contains(&args.loss) {
        return Err("--loss must be in [0, 1)".into());
    }
    if !(args.degree.is_finite() && args.degree >= 1.0) {
        return Err("--degree must be at least 1".into());
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{flag}: {s:?} is not a valid number"))
}

/// Result of one run.
struct Outcome {
    converged_at: Option<Duration>,
    sim: Sim,
}

fn run(args: &Args) -> Outcome {
    let topo = Topology::random(args.nodes, args.degree, args.seed);
    let mut sim = Sim::new(args.seed);
    sim.set_record_events(false);
    sim.set_batching(args.batch);
    if let Some(t) = args.threads {
        sim.set_threads(t);
    }
    // Link parameters come from their own stream, so they do not shift the sim's draws.
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0x6c69_6e6b);
    topo.build(&mut sim, |_| {
        // The shortest latency is the window: 5 ms windows give each node a few dozen
        // messages per visit while its tables are in cache; 1 ms windows took 1.5x as long.
        let latency = Duration::from_millis(5 + rng.next_u64() % 16);
        let datagram = args.loss > 0.0 || rng.next_u64() % 2 == 0;
        let model = if datagram {
            LinkModel::datagram().loss(args.loss)
        } else {
            LinkModel::stream()
        };
        model.latency(latency).jitter(latency / 10)
    });
    let converged_at = sim
        .run_until_converged(args.deadline)
        .ok()
        .map(|()| sim.now());
    Outcome { converged_at, sim }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("simulate: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let Outcome { converged_at, sim } = run(&args);
    let wall_ms = started.elapsed().as_millis() as u64;
    let stats = sim.stats();
    let converged_ms = converged_at.map(|d| d.as_millis() as u64);
    if args.json {
        // Written by hand to keep the keys in this order.
        let line = format!(
            "{{\"nodes\":{},\"seed\":{},\"converged\":{},\"converged_at_ms\":{},\"messages\":{},\"bytes\":{},\"trace_hash\":\"{:016x}\",\"wall_ms\":{}}}",
            args.nodes,
            args.seed,
            converged_at.is_some(),
            converged_ms.map_or("null".to_owned(), |ms| ms.to_string()),
            stats.messages,
            stats.bytes,
            sim.trace_hash(),
            wall_ms,
        );
        println!("{line}");
    } else {
        match converged_ms {
            Some(ms) => println!("{} nodes converged at {ms} ms virtual", args.nodes),
            None => {
                println!(
                    "{} nodes did not converge by {:?}",
                    args.nodes, args.deadline
                );
                for (node, why) in sim.wrong_tables().iter().take(10) {
                    println!("  {node}: {why}");
                }
            }
        }
        println!(
            "{} messages, {} bytes, {} resets, {} dropped by loss; trace {:016x}; {wall_ms} ms wall",
            stats.messages,
            stats.bytes,
            stats.resets,
            stats.dropped_loss,
            sim.trace_hash()
        );
        let (mut fresh, mut stale) = (0, 0);
        for name in sim.node_names() {
            if let Some(s) = sim.node(name).map(receptor_core::Node::stats) {
                fresh += s.route_updates_in - s.route_updates_stale;
                stale += s.route_updates_stale;
            }
        }
        println!("route updates: {fresh} fresh, {stale} seen or stale");
    }
    let code = if converged_at.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    // Freeing a large mesh node by node takes about a second; the process is ending anyway.
    std::mem::forget(sim);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses() {
        let a = args("--nodes 10 --seed 3 --loss 0.05 --degree 4 --json").unwrap();
        assert_eq!(
            (a.nodes, a.seed, a.loss, a.degree, a.json, a.batch),
            (10, 3, 0.05, 4.0, true, true)
        );
        assert!(!args("--nodes 10 --seed 3 --no-batch").unwrap().batch);
        assert_eq!(
            args("--nodes 10 --seed 3 --threads 1").unwrap().threads,
            Some(1)
        );
        assert!(args("--nodes 10 --seed 3 --threads 3").is_err());
        assert!(args("--nodes 10").is_err());
        assert!(args("--nodes x --seed 1").is_err());
        assert!(args("--nodes 10 --seed 1 --loss 1.5").is_err());
        assert!(args("--nodes 10 --seed 1 --bogus").is_err());
        assert!(args("--nodes 10 --seed").is_err());
    }
}
