//! Replays committed fuzz corpora (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`)
//! through the entry points the cargo-fuzz targets call, plus seeded mutations of them, so
//! CI covers every target without libFuzzer. Used by the replay tests of this crate (core
//! targets) and of receptor-cli (its own and the tokio runtime's targets).

use std::path::PathBuf;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A fuzz target's entry point, as its cargo-fuzz target calls it.
pub type FuzzTarget = fn(&[u8]);

/// The committed inputs of one target (corpus, then regressions), sorted by path.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
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

/// Runs every committed input of every target; panics naming the input that panics, or a
/// target without a corpus. Returns how many inputs ran.
pub fn replay(targets: &[(&str, FuzzTarget)]) -> usize {
    let mut total = 0;
    for (name, f) in targets {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "no corpus for {name}");
        for (path, bytes) in inputs {
            let r = std::panic::catch_unwind(|| f(&bytes));
            assert!(r.is_ok(), "{name}: {} panics", path.display());
            total += 1;
        }
    }
    total
}

/// Feeds each target `rounds` inputs: corpus inputs with random bytes changed, and plain
/// random ones, seeded by `FUZZ_SEED` (default 1); panics with the seed, round and input.
pub fn mutate(targets: &[(&str, FuzzTarget)], rounds: usize) {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, f) in targets {
        let inputs = corpus(name);
        for round in 0..rounds {
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
