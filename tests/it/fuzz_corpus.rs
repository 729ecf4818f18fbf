//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same property checks as the
//! fuzz targets (`fuzz/checks.rs`), so every `cargo test` re-checks the seeds and every reproducer of a
//! past finding on stable Rust, without cargo-fuzz or nightly features. See `docs/fuzzing.md`.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[test]
fn fuzz_corpus_passes_every_check() {
    // The stores' notices about the unreadable inputs in the corpus are expected; keep the output quiet.
    iap_token::log::set_verbosity(0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, check) in checks::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the corpus directory {} is missing: {e}", dir.display()))
            .map(|item| item.expect("the corpus directory can be listed").path())
            // Hidden files are libFuzzer's bookkeeping and are not committed (.gitignore).
            .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "the corpus directory {} is empty", dir.display());
        for path in files {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failures.push(format!("{target}: {}: {message}", path.display()));
            }
            replayed += 1;
        }
    }
    checks::remove_scratch();
    assert!(
        failures.is_empty(),
        "{} of {replayed} corpus inputs fail their checks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
