//! Cross-process single flight: an exclusive lock on `<key>.lock` beside the cache entry, taken only on a
//! cache miss. The kernel drops the lock when its holder exits, however it dies, so a killed process never
//! blocks the next one. Waiting is bounded; whoever gets the lock second re-reads the entry first.
//! Lock files are removed by `logout` ([`remove_idle`]) only while locked, and a process that got a lock
//! checks that its file is still the one at the path (else it locks the new one), so removing a lock file
//! never lets two processes hold the same key.

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
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut said = false;
        let mut file = open_lock_file(&path)?;
        loop {
            match file.try_lock() {
                // Locked, but `logout` may have removed this file meanwhile: then lock the one now there.
                Ok(()) if is_current(&file, &path) => return Ok(KeyLock { _file: file }),
                Ok(()) => {
                    file = open_lock_file(&path)?;
                    continue;
                }
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

fn open_lock_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).map_err(|e| Error::io(format!("could not open the lock file {}", path.display()), e))
}

/// Whether `file` is still the file at `path` (not removed or replaced since it was opened).
#[cfg(unix)]
fn is_current(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_current(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Removes the lock files in `dir` that no process holds (each locked while it is unlinked); returns how
/// many went. A held lock stays: its holder is refreshing or signing in right now.
pub fn remove_idle(dir: &Path) -> Result<usize> {
    let Ok(items) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for path in items.filter_map(|item| item.ok()).map(|item| item.path()) {
        if path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else { continue };
        if file.try_lock().is_ok() && is_current(&file, &path) {
            std::fs::remove_file(&path).map_err(|e| Error::io(format!("could not remove {}", path.display()), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}
