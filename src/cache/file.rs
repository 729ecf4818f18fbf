//! Private files on disk: directories created 0700 and files written 0600 (whatever the umask) through a
//! temporary file in the same directory that is synced and renamed over the target, so a reader sees the
//! old or the new content, never a partial one. Also the ID-token cache directory built on that.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::entry::{CacheKey, ENTRY_VERSION, Entry};
use crate::error::{Error, Result};
use crate::log;

/// Creates `dir` (and parents) with mode 0700. A directory that already exists is used as it is if it is
/// ours and no one else can write to it; a shared or foreign directory (such as /tmp) is refused, since
/// someone else could plant or swap entries there. An existing directory's mode is never changed.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if let Ok(meta) = fs::metadata(dir)
        && meta.is_dir()
    {
        return if is_private(&meta) {
            Ok(())
        } else {
            Err(Error::config(
                format!(
                    "refusing to keep tokens in {}: it belongs to another user or others can write to it",
                    dir.display()
                ),
                "choose a directory of your own that only you can write to, or leave --cache-dir / --state-dir at their defaults",
            ))
        };
    }
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).map_err(|e| Error::io(format!("could not create {}", dir.display()), e))
}

/// Whether a file or directory is ours and not writable by anyone else: only such files are trusted to
/// hold tokens (a token planted by another user would make us act as someone else).
#[cfg(unix)]
pub fn is_private(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    meta.uid() == me && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
pub fn is_private(_meta: &fs::Metadata) -> bool {
    true
}

/// Reads a file that holds tokens, if it exists and is private (see [`is_private`]).
pub fn read_private_file(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut file = match File::open(path) {
        Ok(file) => file,
        // No such file, or a path through a file that is not a directory: nothing is stored there.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if !is_private(&file.metadata()?) {
        log::notice(format_args!("ignoring {}: it belongs to another user or others can write to it", path.display()));
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` atomically with mode 0600.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&temp)?;
        #[cfg(unix)]
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        remove_abandoned_temp_files(dir, name);
        Ok(())
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&temp);
        Error::io(format!("could not write {}", path.display()), e)
    })
}

/// A temporary file this old was left by a process that died between creating and renaming it (a live
/// writer holds its file for milliseconds).
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes the temporary files of `name` that killed processes left behind.
fn remove_abandoned_temp_files(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.filter_map(|item| item.ok()) {
        let file_name = item.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        let abandoned = item
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > ABANDONED_AFTER));
        if file_name.starts_with(&prefix) && file_name.ends_with(".tmp") && abandoned {
            let _ = fs::remove_file(item.path());
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// The ID-token cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.as_str()))
    }

    /// The entry for `key`; a missing, unreadable, corrupt or foreign entry is `None` (and will be replaced).
    pub fn read(&self, key: &CacheKey) -> Option<Entry> {
        let path = self.entry_path(key);
        let bytes = read_private_file(&path).ok()??;
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.version == ENTRY_VERSION => Some(entry),
            Ok(_) => {
                log::info(format_args!("ignoring cache entry {} of another version", path.display()));
                None
            }
            Err(_) => {
                log::info(format_args!("ignoring corrupt cache entry {}", path.display()));
                None
            }
        }
    }

    pub fn write(&self, key: &CacheKey, entry: &Entry) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(entry).expect("cache entries always serialize");
        bytes.push(b'\n');
        write_private_file(&self.entry_path(key), &bytes)
    }

    /// Removes the entry for `key`; true when there was one.
    pub fn remove(&self, key: &CacheKey) -> Result<bool> {
        match fs::remove_file(self.entry_path(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("could not remove a cache entry", e)),
        }
    }

    /// Every readable entry, with its file path.
    pub fn entries(&self) -> Vec<(PathBuf, Entry)> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut entries: Vec<(PathBuf, Entry)> = dir
            .filter_map(|item| item.ok())
            .map(|item| item.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .filter_map(|path| {
                let entry = serde_json::from_slice::<Entry>(&fs::read(&path).ok()?).ok()?;
                Some((path, entry))
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// Removes every entry (lock files are `lock::remove_idle`'s); returns how many there were.
    pub fn clear(&self) -> Result<usize> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for item in dir.filter_map(|item| item.ok()) {
            let path = item.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if matches!(ext, "json" | "tmp") {
                fs::remove_file(&path).map_err(|e| Error::io(format!("could not remove {}", path.display()), e))?;
                removed += usize::from(ext == "json");
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_removes_temp_files_abandoned_by_killed_writers() {
        let dir = tempfile_dir();
        let abandoned = dir.join(".k.json.123.456.tmp");
        let recent = dir.join(".k.json.789.012.tmp");
        let other = dir.join(".other.json.1.2.tmp");
        for path in [&abandoned, &recent, &other] {
            fs::write(path, "partial").unwrap();
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for path in [&abandoned, &other] {
            File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
        }
        write_private_file(&dir.join("k.json"), b"{}").unwrap();
        assert!(!abandoned.exists(), "an old temp file of this entry is removed");
        assert!(recent.exists(), "a live writer's temp file is left alone");
        assert!(other.exists(), "other entries' files are left alone");
        assert_eq!(fs::read(dir.join("k.json")).unwrap(), b"{}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn shared_directories_are_refused_and_never_chmod_ed() {
        let dir = tempfile_dir();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = write_private_file(&dir.join("k.json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("others can write to it"), "{err}");
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o1777);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        write_private_file(&dir.join("k.json"), b"{}").unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o755, "left as the user made it");
        let created = dir.join("new/deeper");
        write_private_file(&created.join("k.json"), b"{}").unwrap();
        assert_eq!(fs::metadata(&created).unwrap().permissions().mode() & 0o777, 0o700);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_others_can_write_are_not_trusted() {
        let dir = tempfile_dir();
        let path = dir.join("k.json");
        write_private_file(&path, b"{}").unwrap();
        assert_eq!(read_private_file(&path).unwrap().as_deref(), Some(&b"{}"[..]));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o622)).unwrap();
        assert_eq!(read_private_file(&path).unwrap(), None, "a group/world-writable file is treated as absent");
        assert_eq!(read_private_file(&dir.join("missing.json")).unwrap(), None);
        let _ = fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("iap-token-file-test-{}-{}", std::process::id(), unique()));
        ensure_private_dir(&dir).unwrap();
        dir
    }
}
