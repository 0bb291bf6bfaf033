#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| receptor_cli::fuzzing::config_yaml(data));
