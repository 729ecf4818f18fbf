//! Where refresh tokens (and a client secret fetched from Secret Manager) live, keyed by client id and
//! account hint, so one sign-in serves every audience of that client: the OS keyring through the keyring
//! project's crates (Secret Service on Linux; Keychain and Credential Manager behind cfg, which these
//! Linux machines cannot build), or a 0600 JSON file in the 0700 state directory. Every keyring call runs
//! on a helper thread with a deadline, so a keyring that would prompt or hang counts as not answering.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::CacheKey;
use crate::cache::file::{read_private_file, write_private_file};
use crate::error::{Error, Result, clean};
use crate::log;
use crate::secret::Secret;

/// The keyring service name of every stored login.
pub const KEYRING_SERVICE: &str = "iap-token";
const STORE_VERSION: u32 = 1;
const KEYRING_DEADLINE: Duration = Duration::from_secs(3);

/// One signed-in user of one desktop client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredLogin {
    pub version: u32,
    pub client_id: String,
    pub account: Option<String>,
    pub principal: Option<String>,
    pub refresh_token: Secret<String>,
    /// The client secret when it came from Secret Manager, so refreshes need no Secret Manager call.
    pub client_secret: Option<Secret<String>>,
    pub created_at: i64,
}

impl StoredLogin {
    pub fn new(client_id: &str, account: Option<&str>, refresh_token: Secret<String>, now: i64) -> StoredLogin {
        StoredLogin {
            version: STORE_VERSION,
            client_id: client_id.to_string(),
            account: account.map(str::to_string),
            principal: None,
            refresh_token,
            client_secret: None,
            created_at: now,
        }
    }
}

/// Where `--store` says refresh tokens go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// The OS keyring when it answers, else the file store (with a notice).
    Auto,
    Keyring,
    File,
}

/// A refresh-token store.
pub enum TokenStore {
    /// The 0600 file store; `fell_back` says why the keyring was not used under `--store auto`.
    File { dir: PathBuf, fell_back: Option<String> },
    /// The OS keyring; under `--store auto`, `fallback` is the file store that takes over when the
    /// keyring fails after all (a collection that would prompt to unlock) and that may hold older logins.
    Keyring { store: Arc<keyring_core::CredentialStore>, fallback: Option<PathBuf> },
}

impl TokenStore {
    /// Opens the store `choice` names, with the file store in `dir`; `auto` takes the keyring when it
    /// answers, else the file store.
    pub fn open(dir: PathBuf, choice: StoreChoice) -> Result<TokenStore> {
        match choice {
            StoreChoice::File => Ok(TokenStore::File { dir, fell_back: None }),
            StoreChoice::Keyring => match keyring() {
                Ok(store) => Ok(TokenStore::Keyring { store, fallback: None }),
                Err(why) => Err(Error::config(
                    format!("the OS keyring is not usable: {why}"),
                    "unlock or start the keyring, or use --store file",
                )),
            },
            StoreChoice::Auto => match keyring() {
                Ok(store) => Ok(TokenStore::Keyring { store, fallback: Some(dir) }),
                Err(why) => {
                    log::debug(format_args!("the OS keyring is not usable ({why}); using the file store"));
                    Ok(TokenStore::File { dir, fell_back: Some(why.to_string()) })
                }
            },
        }
    }

    /// Where logins are kept, for messages.
    pub fn describe(&self) -> String {
        match self {
            TokenStore::File { dir, .. } => format!("{} (mode 0600)", dir.display()),
            TokenStore::Keyring { .. } => format!("the OS keyring (service '{KEYRING_SERVICE}')"),
        }
    }

    pub fn load(&self, client_id: &str, account: Option<&str>) -> Result<Option<StoredLogin>> {
        let parse = |bytes: Option<Vec<u8>>, place: &str| {
            let bytes = bytes?;
            match serde_json::from_slice::<StoredLogin>(&bytes) {
                Ok(login) if login.version == STORE_VERSION && login.client_id == client_id => Some(login),
                _ => {
                    log::notice(format_args!("ignoring an unreadable stored sign-in in {place}"));
                    None
                }
            }
        };
        match self {
            TokenStore::File { dir, .. } => Ok(parse(file_load(dir, client_id, account)?, &self.describe())),
            TokenStore::Keyring { store, fallback } => {
                let in_keyring = match keyring_load(store, client_id, account) {
                    Ok(bytes) => parse(bytes, &self.describe()),
                    Err(e) if fallback.is_some() => {
                        log::notice(format_args!("the OS keyring did not answer ({e}); reading the file store"));
                        None
                    }
                    Err(e) => return Err(keyring_failure("read", e)),
                };
                let in_file = match fallback {
                    Some(dir) => parse(file_load(dir, client_id, account)?, &format!("{}", dir.display())),
                    None => None,
                };
                // Under --store auto a login may be in both (the keyring failed once): the newer one wins.
                Ok(match (in_keyring, in_file) {
                    (Some(a), Some(b)) => Some(if b.created_at > a.created_at { b } else { a }),
                    (a, b) => a.or(b),
                })
            }
        }
    }

    pub fn save(&self, login: &StoredLogin) -> Result<()> {
        let bytes = serde_json::to_vec(login).expect("stored logins always serialize");
        let to_file = |dir: &Path, why: &str| {
            log::notice(format_args!(
                "the OS keyring is not available ({}); keeping the refresh token in {} (mode 0600)",
                clean(why, 120),
                dir.display()
            ));
            write_private_file(&file_path(dir, &login.client_id, login.account.as_deref()), &bytes)
        };
        match self {
            TokenStore::File { dir, fell_back: Some(why) } => to_file(dir, why),
            TokenStore::File { dir, fell_back: None } => {
                write_private_file(&file_path(dir, &login.client_id, login.account.as_deref()), &bytes)
            }
            TokenStore::Keyring { store, fallback } => {
                let user = keyring_user(&login.client_id, login.account.as_deref());
                let (store, secret) = (store.clone(), bytes.clone());
                match bounded(move || store.build(KEYRING_SERVICE, &user, None)?.set_secret(&secret)) {
                    Ok(()) => {
                        // A login kept in the file store before the keyring answered is now stale.
                        if let Some(dir) = fallback {
                            file_delete(dir, &login.client_id, login.account.as_deref())?;
                        }
                        Ok(())
                    }
                    Err(e) => match fallback {
                        Some(dir) => to_file(dir, &e.to_string()),
                        None => Err(keyring_failure("write to", e)),
                    },
                }
            }
        }
    }

    /// Forgets one login (from both stores under `--store auto`); true when there was one.
    pub fn delete(&self, client_id: &str, account: Option<&str>) -> Result<bool> {
        match self {
            TokenStore::File { dir, .. } => file_delete(dir, client_id, account),
            TokenStore::Keyring { store, fallback } => {
                let user = keyring_user(client_id, account);
                let store = store.clone();
                let in_keyring = match bounded(move || store.build(KEYRING_SERVICE, &user, None)?.delete_credential()) {
                    Ok(()) => true,
                    Err(KeyringError::NoEntry) => false,
                    Err(e) if fallback.is_some() => {
                        log::notice(format_args!("could not delete the sign-in from the OS keyring ({e})"));
                        false
                    }
                    Err(e) => return Err(keyring_failure("delete from", e)),
                };
                let in_file = match fallback {
                    Some(dir) => file_delete(dir, client_id, account)?,
                    None => false,
                };
                Ok(in_keyring || in_file)
            }
        }
    }

    /// Every stored login (for `logout --all`).
    pub fn all(&self) -> Result<Vec<StoredLogin>> {
        let blobs: Vec<Vec<u8>> = match self {
            TokenStore::File { dir, .. } => file_all(dir),
            TokenStore::Keyring { store, fallback } => {
                let store = store.clone();
                let mut blobs = bounded(move || {
                    let spec = std::collections::HashMap::from([("service", KEYRING_SERVICE)]);
                    store
                        .search(&spec)?
                        .iter()
                        .map(|entry| entry.get_secret())
                        .collect::<keyring_core::Result<Vec<_>>>()
                })
                .map_err(|e| keyring_failure("search", e))?;
                blobs.extend(fallback.as_deref().map(file_all).unwrap_or_default());
                blobs
            }
        };
        let mut logins: Vec<StoredLogin> = blobs
            .iter()
            .filter_map(|bytes| serde_json::from_slice::<StoredLogin>(bytes).ok())
            .filter(|login| login.version == STORE_VERSION)
            .collect();
        // A login kept in both stores counts once.
        logins.sort_by(|a, b| (&a.client_id, &a.account).cmp(&(&b.client_id, &b.account)));
        logins.dedup_by(|a, b| a.client_id == b.client_id && a.account == b.account);
        Ok(logins)
    }

    /// Forgets every login; returns how many there were.
    pub fn delete_all(&self) -> Result<usize> {
        let logins = self.all()?;
        for login in &logins {
            self.delete(&login.client_id, login.account.as_deref())?;
        }
        Ok(logins.len())
    }
}

fn file_load(dir: &Path, client_id: &str, account: Option<&str>) -> Result<Option<Vec<u8>>> {
    read_private_file(&file_path(dir, client_id, account))
        .map_err(|e| Error::io("could not read the stored sign-in", e))
}

fn file_delete(dir: &Path, client_id: &str, account: Option<&str>) -> Result<bool> {
    match std::fs::remove_file(file_path(dir, client_id, account)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("could not remove the stored sign-in", e)),
    }
}

fn file_all(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(items) = std::fs::read_dir(dir) else { return Vec::new() };
    items
        .filter_map(|item| item.ok())
        .map(|item| item.path())
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("login-") && n.ends_with(".json"))
        })
        .filter_map(|path| read_private_file(&path).ok().flatten())
        .collect()
}

fn keyring_load(
    store: &Arc<keyring_core::CredentialStore>,
    client_id: &str,
    account: Option<&str>,
) -> Result<Option<Vec<u8>>, KeyringError> {
    let user = keyring_user(client_id, account);
    let store = store.clone();
    match bounded(move || store.build(KEYRING_SERVICE, &user, None)?.get_secret()) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(KeyringError::NoEntry) => Ok(None),
        Err(e) => Err(e),
    }
}

fn file_path(dir: &Path, client_id: &str, account: Option<&str>) -> PathBuf {
    let key = CacheKey::new(&["login", client_id, account.unwrap_or_default()]);
    dir.join(format!("login-{}.json", key.as_str()))
}

fn keyring_user(client_id: &str, account: Option<&str>) -> String {
    match account {
        Some(account) => format!("{client_id}/{account}"),
        None => client_id.to_string(),
    }
}

#[derive(Debug)]
enum KeyringError {
    NoEntry,
    TimedOut,
    Failed(String),
}

impl std::fmt::Display for KeyringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyringError::NoEntry => f.write_str("no such entry"),
            KeyringError::TimedOut => {
                write!(f, "no answer within {} s (locked, or waiting for a prompt)", KEYRING_DEADLINE.as_secs())
            }
            KeyringError::Failed(why) => f.write_str(why),
        }
    }
}

fn keyring_failure(action: &str, error: KeyringError) -> Error {
    Error::config(
        format!("could not {action} the OS keyring: {}", clean(&error.to_string(), 200)),
        "unlock the keyring, or use --store file",
    )
}

/// Runs a keyring call on a helper thread and waits at most [`KEYRING_DEADLINE`].
fn bounded<T: Send + 'static>(
    call: impl FnOnce() -> keyring_core::Result<T> + Send + 'static,
) -> Result<T, KeyringError> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(call());
    });
    match receiver.recv_timeout(KEYRING_DEADLINE) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(keyring_core::Error::NoEntry)) => Err(KeyringError::NoEntry),
        Ok(Err(e)) => Err(KeyringError::Failed(e.to_string())),
        Err(_) => Err(KeyringError::TimedOut),
    }
}

/// The platform keyring, if it answers.
fn keyring() -> std::result::Result<Arc<keyring_core::CredentialStore>, KeyringError> {
    let store = bounded(platform_store)?;
    // A store can be created while its collection is locked; a search proves it answers without a prompt.
    let probe = store.clone();
    bounded(move || probe.search(&std::collections::HashMap::from([("service", KEYRING_SERVICE)])).map(|_| ()))?;
    Ok(store)
}

#[cfg(target_os = "linux")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> = dbus_secret_service_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore("no OS keyring support on this platform".into()))
}
