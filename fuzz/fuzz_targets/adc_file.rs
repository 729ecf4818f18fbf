//! Fuzz target `adc_file`: the properties live in `fuzz/checks.rs` (`check_adc_file`), shared with the corpus replay
//! test `tests/it/fuzz_corpus.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_adc_file(data));
