//! Fuzz target `callback`: the properties live in `fuzz/checks.rs` (`check_callback`), shared with the corpus replay
//! test `tests/it/fuzz_corpus.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_callback(data));
