//! Replays the committed fuzz corpus (and any regression inputs) through the same entry points
//! the cargo-fuzz targets call, plus seeded random inputs, so CI covers them without libFuzzer.

use std::path::PathBuf;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use receptor_core::fuzzing;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("frame_decode", fuzzing::message_decode),
    ("deframer", fuzzing::deframer),
    ("route_update", fuzzing::route_update_json),
    ("node_inputs", fuzzing::node_inputs),
    ("control_session", fuzzing::control_session),
    ("work_status", fuzzing::work_status),
    ("remote_reply", fuzzing::remote_reply),
    ("jwt", fuzzing::jwt),
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
    let mut total = 0;
    for (name, f) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "no corpus for {name}");
        for (path, bytes) in inputs {
            let r = std::panic::catch_unwind(|| f(&bytes));
            assert!(r.is_ok(), "{name}: {} panics", path.display());
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

/// Corpus inputs with random bytes flipped, and plain random inputs, seeded.
#[test]
fn mutated_inputs_never_panic() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, f) in TARGETS {
        let inputs = corpus(name);
        for round in 0..300 {
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
