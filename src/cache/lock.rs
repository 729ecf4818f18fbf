//! Cross-process single flight: an exclusive lock on `<key>.lock` beside the cache entry, taken only on a
//! cache miss. The kernel drops the lock when its holder exits, however it dies, so a killed process never
//! blocks the next one. Waiting is bounded; whoever gets the lock second re-reads the entry first.

use std::fs::{File, OpenOptions, TryLockError};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::entry::CacheKey;
use super::file::ensure_private_dir;
use crate::error::{Error, Result};
use crate::log;

/// Held while one process refreshes a key; released on drop (or when the process dies).
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

impl KeyLock {
    /// Waits at most `wait` for the lock of `key` in `dir`.
    pub fn acquire(dir: &Path, key: &CacheKey, wait: Duration) -> Result<KeyLock> {
        ensure_private_dir(dir)?;
        let path = dir.join(format!("{}.lock", key.as_str()));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options
            .open(&path)
            .map_err(|e| Error::io(format!("could not open the lock file {}", path.display()), e))?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(KeyLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io(format!("could not lock {}", path.display()), e));
                }
            }
            if !said && start.elapsed() >= Duration::from_secs(1) {
                log::notice(format_args!(
                    "waiting for another iap-token process (a sign-in or refresh of the same token) to finish"
                ));
                said = true;
            }
            if start.elapsed() >= wait {
                return Err(Error::config(
                    format!("another iap-token process held {} for more than {} s", path.display(), wait.as_secs()),
                    "another iap-token is signing in or refreshing the same token: finish that sign-in, or end that process, and try again",
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
