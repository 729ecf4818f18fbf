//! Fuzz target `git_input`: the properties live in `fuzz/checks.rs` (`check_git_input`), shared with the corpus replay
//! test `tests/it/fuzz_corpus.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_git_input(data));
