//! Replays the committed fuzz corpus (and any regression inputs) through the same entry points
//! the cargo-fuzz targets call, plus seeded random inputs, so CI covers them without libFuzzer.

use receptor_core::fuzzing;
use receptor_tests::fuzz_replay::{self, FuzzTarget};

const TARGETS: &[(&str, FuzzTarget)] = &[
    ("frame_decode", fuzzing::message_decode),
    ("deframer", fuzzing::deframer),
    ("route_update", fuzzing::route_update_json),
    ("node_inputs", fuzzing::node_inputs),
    ("control_session", fuzzing::control_session),
    ("work_status", fuzzing::work_status),
    ("remote_reply", fuzzing::remote_reply),
    ("remote_unit", fuzzing::remote_unit),
    ("jwt", fuzzing::jwt),
    ("go_duration", fuzzing::go_duration),
];

#[test]
fn corpus_replays_without_panic() {
    assert!(fuzz_replay::replay(TARGETS) >= TARGETS.len());
}

/// Corpus inputs with random bytes flipped, and plain random inputs, seeded.
#[test]
fn mutated_inputs_never_panic() {
    fuzz_replay::mutate(TARGETS, 300);
}
