//! Replays the committed fuzz corpus (and any regression inputs) of the CLI's and the tokio
//! runtime's targets through the entry points the cargo-fuzz targets call, plus seeded
//! mutations of them, so CI covers them without libFuzzer (`--features fuzzing`).

use std::path::PathBuf;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use receptor_cli::fuzzing;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("config_yaml", fuzzing::config_yaml),
    ("cmdline", fuzzing::cmdline),
    ("metrics_http", fuzzing::metrics_http),
    ("certs", fuzzing::certs),
    ("ws_upgrade", receptor_tokio::fuzzing::ws_upgrade),
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(bytes) = std::fs::read(e.path()) {
                out.push((e.path(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn corpus_replays_without_panic() {
    for (name, f) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "no corpus for {name}");
        for (path, bytes) in inputs {
            let r = std::panic::catch_unwind(|| f(&bytes));
            assert!(r.is_ok(), "{name}: {} panics", path.display());
        }
    }
}

/// Corpus inputs with random bytes changed, and plain random inputs, seeded (`FUZZ_SEED`).
#[test]
fn mutated_inputs_never_panic() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, f) in TARGETS {
        let inputs = corpus(name);
        for round in 0..200 {
            let mut data = match inputs.get(round % inputs.len().max(1)) {
                Some((_, b)) if round % 3 != 0 => b.clone(),
                _ => {
                    let mut v = vec![0u8; (rng.next_u32() % 512) as usize];
                    rng.fill_bytes(&mut v);
                    v
                }
            };
            for _ in 0..(1 + rng.next_u32() % 8) {
                if data.is_empty() {
                    break;
                }
                let i = (rng.next_u32() as usize) % data.len();
                data[i] = rng.next_u32() as u8;
            }
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(
                r.is_ok(),
                "{name}: panic on seed {seed} round {round}: {data:02x?}"
            );
        }
    }
}
