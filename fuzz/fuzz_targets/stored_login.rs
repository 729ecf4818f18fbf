//! Fuzz target `stored_login`: the properties live in `fuzz/checks.rs` (`check_stored_login`), shared with
//! the corpus replay test `tests/it/fuzz_corpus.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(
    // The store logs every unreadable login it skips: keep stderr for libFuzzer's own report.
    init: iap_token::log::set_verbosity(0),
    |data: &[u8]| checks::check_stored_login(data)
);
