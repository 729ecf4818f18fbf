//! Diagnostics on stderr, gated by `-v` / `-q`. Callers pass only what is safe to show: URLs without
//! query strings, statuses, file paths, claims such as `email` and `exp`; never a token, secret or code.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// 0 = quiet (errors only), 1 = notices (default), 2 = `-v`, 3 and up = `-vv`.
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

fn emit(level: u8, args: std::fmt::Arguments<'_>) {
    if VERBOSITY.load(Ordering::Relaxed) >= level {
        let _ = writeln!(std::io::stderr().lock(), "iap-token: {args}");
    }
}

/// A one-line notice the user should see (a fallback taken, who signed in); silenced by `-q`.
pub fn notice(args: std::fmt::Arguments<'_>) {
    emit(1, args);
}

/// What the tool decided and why (`-v`).
pub fn info(args: std::fmt::Arguments<'_>) {
    emit(2, args);
}

/// Every request and file touched (`-vv`).
pub fn debug(args: std::fmt::Arguments<'_>) {
    emit(3, args);
}
