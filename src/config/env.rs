//! The process environment behind a trait, so that tests build configurations without touching it.
//! [`ProcessEnv`] is the one reader of environment variables in the crate (clippy holds that line).

/// A read-only view of the process environment, so that tests can build configs without touching it.
pub trait Environment {
    /// The variable's value; `None` when it is unset, empty, or not UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// Whether the variable is present at all, even empty.
    fn is_set(&self, name: &str) -> bool;
}

/// The real process environment.
pub struct ProcessEnv;

#[allow(clippy::disallowed_methods, reason = "the one place that reads the process environment")]
impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some()
    }
}
