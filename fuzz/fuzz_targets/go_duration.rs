#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| receptor_core::fuzzing::go_duration(data));
