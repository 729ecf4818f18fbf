//! The clock: the one place that reads the wall time, in Unix seconds. Everything that compares
//! expiries takes its "now" from here (or is handed one), so the rule "a token is served while
//! `now < exp - margin`" reads the same everywhere.

/// Now, in Unix seconds (0 for a clock before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
