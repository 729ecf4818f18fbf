//! The token cache: one versioned JSON entry per cache key, holding an ID token (or an access token used
//! to mint one) with its expiry and the local time it was fetched. A cache hit is decided from the
//! configuration alone and reads one small file: no network, no keyring, no key parsing. This module
//! owns the serve-or-refresh policy (the margin rule); `file` owns the bytes on disk, `lock` the
//! cross-process single flight. Refresh tokens are not a cache: they live in [`crate::store`].

pub mod entry;
pub mod file;
pub mod lock;

pub use entry::{CacheKey, Discovery, ENTRY_VERSION, Entry, TokenKind};

use std::time::Duration;

use crate::error::{Error, Result};
use crate::log;

/// Where a served entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Cache,
    /// Refreshed by another process while this one waited for the lock.
    Peer,
    Fetched,
}

/// The policy every cached token goes through. Serve a `fresh` entry without locking. Otherwise take the
/// key's lock (waiting at most `wait`), serve what another process refreshed meanwhile (with `force`,
/// only a token that differs from the one seen before), or else `fetch` a new entry (given the stale one,
/// if any), cache it and serve it. A cache that cannot be written is a notice, never a failure: when the lock cannot even be created
/// (a read-only or full file system, a path taken by a file, no permission), the token is fetched without
/// the lock and not cached; when only the write fails, the fetched token is still served.
pub fn single_flight(
    cache: &file::Cache,
    key: &CacheKey,
    force: bool,
    wait: Duration,
    fresh: impl Fn(&Entry) -> bool,
    fetch: impl FnOnce(Option<&Entry>) -> Result<Entry>,
) -> Result<(Entry, Served)> {
    let before = match cache.read(key) {
        Some(entry) if !force && fresh(&entry) => return Ok((entry, Served::Cache)),
        before => before,
    };
    let _lock = match lock::KeyLock::acquire(cache.dir(), key, wait) {
        Ok(lock) => lock,
        Err(e @ Error::Io { .. }) => {
            log::notice(format_args!("warning: the cache cannot be used ({e}); fetching a token on every call"));
            return Ok((fetch(before.as_ref())?, Served::Fetched));
        }
        Err(e) => return Err(e),
    };
    let renewed = |entry: &Entry| before.as_ref().is_none_or(|old| old.token != entry.token);
    let current = cache.read(key);
    if let Some(entry) = current.as_ref().filter(|entry| fresh(entry) && (!force || renewed(entry))) {
        return Ok((entry.clone(), Served::Peer));
    }
    let entry = fetch(current.as_ref())?;
    if let Err(e) = cache.write(key, &entry) {
        log::notice(format_args!("warning: the token could not be cached: {e}"));
    }
    Ok((entry, Served::Fetched))
}
