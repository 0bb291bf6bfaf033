//! Replays the committed fuzz corpus (and any regression inputs) of the CLI's and the tokio
//! runtime's targets through the entry points the cargo-fuzz targets call, plus seeded
//! mutations of them, so CI covers them without libFuzzer (`--features fuzzing`).

use receptor_cli::fuzzing;
use receptor_tests::fuzz_replay::{self, FuzzTarget};

const TARGETS: &[(&str, FuzzTarget)] = &[
    ("config_yaml", fuzzing::config_yaml),
    ("cmdline", fuzzing::cmdline),
    ("metrics_http", fuzzing::metrics_http),
    ("certs", fuzzing::certs),
    ("ws_upgrade", receptor_tokio::fuzzing::ws_upgrade),
];

#[test]
fn corpus_replays_without_panic() {
    fuzz_replay::replay(TARGETS);
}

/// Corpus inputs with random bytes changed, and plain random inputs, seeded (`FUZZ_SEED`).
#[test]
fn mutated_inputs_never_panic() {
    fuzz_replay::mutate(TARGETS, 200);
}
