//! The profiles files: the system file an admin pushes (`$IAP_TOKEN_SYSTEM_CONFIG`, else
//! /etc/iap-token/config.toml) and the user's (`$IAP_TOKEN_CONFIG`, else `$XDG_CONFIG_HOME` or
//! `~/.config`, `iap-token/config.toml`). TOML whose keys are the long option names, in `[defaults]` and
//! `[profile.NAME]` tables. For profile X a setting comes from, first found: user `[profile.X]`, system
//! `[profile.X]`, user `[defaults]`, system `[defaults]`. Strict where it matters: bad TOML, or an unknown
//! key or a wrong type in the profile in use or in `[defaults]`, is a usage error naming the file, line and
//! key; the same in another profile is only said at `-v`, so a newer company file does not break older
//! installs. A file that others can write is refused: it could send tokens elsewhere.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::config::env::Environment;
use crate::error::{Error, Result, clean};
use crate::http::SimpleUrl;
use crate::log;
use crate::secret::Secret;

mod memo;

/// Every key a profile (or `[defaults]`) may set, as (key, expected type).
pub const KEYS: &[(&str, Kind)] = &[
    ("url", Kind::Text),
    ("audience", Kind::Text),
    ("client-id", Kind::Text),
    ("client-secret", Kind::Text),
    ("client-secret-file", Kind::Path),
    ("client-secret-from-secret-manager", Kind::Text),
    ("account", Kind::Text),
    ("service-account-key", Kind::Path),
    ("impersonate-service-account", Kind::Text),
    ("source", Kind::Text),
    ("token-type", Kind::Text),
    ("header-name", Kind::Text),
    ("min-ttl", Kind::Integer),
    ("store", Kind::Text),
    ("ca-file", Kind::Path),
    ("auth-uri", Kind::Text),
    ("token-uri", Kind::Text),
    ("revoke-uri", Kind::Text),
    ("secret-manager-endpoint", Kind::Text),
    ("iam-credentials-endpoint", Kind::Text),
];

/// The type a key's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Text; a leading `~/` means the home directory.
    Path,
    Integer,
}

/// A value from a file, with where it was set (for messages).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub value: SettingValue,
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SettingValue {
    Text(String),
    Path(PathBuf),
    Integer(u64),
}

/// The settings a profile lends, by key.
#[derive(Debug, Clone, Default)]
pub struct ProfileValues {
    values: BTreeMap<&'static str, Setting>,
}

impl ProfileValues {
    pub fn text(&self, key: &str) -> Option<String> {
        match self.values.get(key).map(|s| &s.value) {
            Some(SettingValue::Text(text)) => Some(text.clone()),
            _ => None,
        }
    }

    pub fn secret(&self, key: &str) -> Option<Secret<String>> {
        self.text(key).map(Secret::new)
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        match self.values.get(key).map(|s| &s.value) {
            Some(SettingValue::Path(path)) => Some(path.clone()),
            _ => None,
        }
    }

    pub fn integer(&self, key: &str) -> Option<u64> {
        match self.values.get(key).map(|s| &s.value) {
            Some(SettingValue::Integer(n)) => Some(*n),
            _ => None,
        }
    }

    /// Where `key` was set, as `FILE:LINE`.
    pub fn origin(&self, key: &str) -> Option<String> {
        self.values.get(key).map(|s| format!("{}:{}", s.file.display(), s.line))
    }

    /// Drops `key` (the audience of a profile whose url does not match the request).
    pub fn without(mut self, key: &str) -> ProfileValues {
        self.values.remove(key);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// One parsed file.
#[derive(Debug)]
struct ConfigFile {
    path: PathBuf,
    default_profile: Option<String>,
    min_version: Option<(String, usize)>,
    defaults: Option<RawTable>,
    profiles: BTreeMap<String, RawTable>,
    /// What parsing noticed and let pass, said at `-v`.
    notes: Vec<String>,
}

/// Both files, as far as they exist.
#[derive(Debug, Default)]
pub struct ConfigFiles {
    /// System first, then user.
    files: Vec<ConfigFile>,
    /// For a leading `~/` in paths.
    home: Option<String>,
    /// Set when a table was read leniently and something in it was ignored (said at `-v`).
    noted: Cell<bool>,
}

/// A profile chosen for a call.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub name: String,
    /// Whether the profile's `url` matches the URL of the request (by prefix), or it was named (by
    /// `--profile` or `default-profile`) for a call without a URL: only then may its audience be used.
    pub audience_applies: bool,
    pub values: ProfileValues,
}

/// Where the user file lives: `$IAP_TOKEN_CONFIG`, else `$XDG_CONFIG_HOME/iap-token/config.toml`, else
/// `~/.config/iap-token/config.toml` (`%APPDATA%\iap-token\config.toml` on Windows).
pub fn user_file_path(env: &dyn Environment) -> Option<PathBuf> {
    if let Some(path) = env.var("IAP_TOKEN_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let base = if cfg!(windows) {
        env.var("APPDATA").map(PathBuf::from)
    } else {
        env.var("XDG_CONFIG_HOME")
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from)
            .or_else(|| env.var("HOME").map(|home| Path::new(&home).join(".config")))
    };
    base.map(|dir| dir.join("iap-token").join("config.toml"))
}

/// Where the system file lives: `$IAP_TOKEN_SYSTEM_CONFIG`, else /etc/iap-token/config.toml.
pub fn system_file_path(env: &dyn Environment) -> PathBuf {
    env.var("IAP_TOKEN_SYSTEM_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/iap-token/config.toml"))
}

/// The profile a call uses and the values it lends: `--profile NAME`, else the profile whose `url`
/// matches `url`, else `default-profile`; its audience only where the leak rule allows it (named for a
/// call without a URL, or its url matches). With no profile, the `[defaults]` without an audience (it
/// would go to any host). With `memo_dir`, the answer is remembered there ([`memo`]) and the next call
/// that reads the same texts with the same arguments takes it instead of parsing.
pub fn for_call(
    env: &dyn Environment,
    profile: Option<&str>,
    url: Option<&str>,
    memo_dir: Option<&Path>,
) -> Result<(Option<String>, ProfileValues)> {
    let texts = read_texts(env)?;
    let home = env.var("HOME");
    let question = memo::Question { texts: &texts, home: home.as_deref(), profile, url };
    let memo_dir = memo_dir.filter(|_| !texts.is_empty());
    if let Some(answer) = memo_dir.and_then(|dir| memo::recall::<Remembered>(dir, &question))
        && let Some(answer) = answer.into_answer()
    {
        return Ok(answer);
    }
    let files = ConfigFiles::parse(&texts, env)?;
    let answer = match files.choose(profile, url, true)? {
        Some(chosen) if chosen.audience_applies => (Some(chosen.name), chosen.values),
        Some(chosen) => (Some(chosen.name), chosen.values.without("audience")),
        None => (None, files.defaults()?.without("audience")),
    };
    if let Some(dir) = memo_dir
        && !files.noticed_anything()
    {
        memo::remember(dir, &question, &Remembered::of(&answer));
    }
    Ok(answer)
}

/// An answer of [`for_call`] as the memo keeps it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Remembered {
    name: Option<String>,
    values: BTreeMap<String, Setting>,
}

impl Remembered {
    fn of((name, values): &(Option<String>, ProfileValues)) -> Remembered {
        let values = values.values.iter().map(|(key, setting)| (key.to_string(), setting.clone())).collect();
        Remembered { name: name.clone(), values }
    }

    /// `None` when a key is not one of [`KEYS`].
    fn into_answer(self) -> Option<(Option<String>, ProfileValues)> {
        let mut values = ProfileValues::default();
        for (key, setting) in self.values {
            let (known, _) = KEYS.iter().find(|(known, _)| *known == key)?;
            values.values.insert(known, setting);
        }
        Some((self.name, values))
    }
}

impl ConfigFiles {
    /// Reads the system file, then the user file; a missing file means nothing.
    pub fn load(env: &dyn Environment) -> Result<ConfigFiles> {
        ConfigFiles::parse(&read_texts(env)?, env)
    }

    fn parse(texts: &[(PathBuf, String)], env: &dyn Environment) -> Result<ConfigFiles> {
        let files = texts.iter().map(|(path, text)| parse(path, text)).collect::<Result<Vec<_>>>()?;
        for note in files.iter().flat_map(|file| &file.notes) {
            log::info(format_args!("{note}"));
        }
        let files = ConfigFiles { files, home: env.var("HOME"), noted: Cell::new(false) };
        files.check_min_version()?;
        Ok(files)
    }

    /// Whether reading the files or a lenient look at a table noticed something and said so at `-v`.
    fn noticed_anything(&self) -> bool {
        self.noted.get() || self.files.iter().any(|file| !file.notes.is_empty())
    }

    /// The profile for a call: `--profile NAME`; else the one whose url matches `url` (longest path
    /// wins); else `default-profile` when `default_allowed` (never for git). `None` when no profile applies.
    pub fn choose(&self, by_name: Option<&str>, url: Option<&str>, default_allowed: bool) -> Result<Option<Chosen>> {
        let home = self.home();
        if let Some(name) = by_name {
            if !self.has_profile(name) {
                return Err(self.unknown_profile(name, "--profile"));
            }
            let values = self.values_of(Some(name), home.as_deref())?;
            let audience_applies = match (url, values.text("url")) {
                (None, _) => true,
                (Some(url), Some(own)) => url_matches(&own, url).is_some(),
                (Some(_), None) => false,
            };
            return Ok(Some(Chosen { name: name.to_string(), audience_applies, values }));
        }
        if let Some(url) = url
            && let Some(name) = self.matching_profile(url)
        {
            let values = self.values_of(Some(&name), home.as_deref())?;
            return Ok(Some(Chosen { name, audience_applies: true, values }));
        }
        if default_allowed && let Some(name) = self.default_profile() {
            if !self.has_profile(&name) {
                return Err(self.unknown_profile(&name, "default-profile"));
            }
            let values = self.values_of(Some(&name), home.as_deref())?;
            return Ok(Some(Chosen { name, audience_applies: url.is_none(), values }));
        }
        Ok(None)
    }

    /// The `[defaults]` alone (no profile applies).
    pub fn defaults(&self) -> Result<ProfileValues> {
        self.values_of(None, self.home().as_deref())
    }

    /// Every profile name, sorted, with its values (read leniently: this is for listing).
    pub fn all(&self) -> Vec<(String, ProfileValues)> {
        let home = self.home();
        let mut names: Vec<&String> = self.files.iter().flat_map(|f| f.profiles.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let values = self.merge(Some(name), home.as_deref(), false).unwrap_or_default();
                (name.clone(), values)
            })
            .collect()
    }

    pub fn default_profile(&self) -> Option<String> {
        self.files.iter().rev().find_map(|f| f.default_profile.clone())
    }

    /// The files read, system first.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    fn home(&self) -> Option<String> {
        self.home.clone()
    }

    fn has_profile(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.profiles.contains_key(name))
    }

    fn unknown_profile(&self, name: &str, from: &str) -> Error {
        let known: Vec<String> = self.all().into_iter().map(|(n, _)| n).collect();
        let files: Vec<String> = self.paths().iter().map(|p| p.display().to_string()).collect();
        Error::Usage(format!(
            "{from} names the profile '{}', which is not in {}; known profiles: {}",
            clean(name, 60),
            if files.is_empty() { "any config file (none exists)".to_string() } else { files.join(" or ") },
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    }

    /// The profile whose `url` matches `url` with the longest path.
    fn matching_profile(&self, url: &str) -> Option<String> {
        self.all()
            .into_iter()
            .filter_map(|(name, values)| Some((url_matches(&values.text("url")?, url)?, name)))
            .max_by_key(|(length, _)| *length)
            .map(|(_, name)| name)
    }

    /// The values of `profile` (or only the defaults), checked strictly.
    fn values_of(&self, profile: Option<&str>, home: Option<&str>) -> Result<ProfileValues> {
        self.merge(profile, home, true)
    }

    /// Later (user) files override earlier (system) ones key by key; a profile overrides the defaults.
    fn merge(&self, profile: Option<&str>, home: Option<&str>, strict: bool) -> Result<ProfileValues> {
        let mut merged = ProfileValues::default();
        let mut layer = |file: &ConfigFile, table: &RawTable, name: &str| -> Result<()> {
            for (key, setting) in read_table(file, table, name, strict, &self.noted, home)? {
                merged.values.insert(key, setting);
            }
            Ok(())
        };
        for file in &self.files {
            if let Some(defaults) = &file.defaults {
                layer(file, defaults, "defaults")?;
            }
        }
        if let Some(name) = profile {
            for file in &self.files {
                if let Some(table) = file.profiles.get(name) {
                    layer(file, table, &format!("profile.{name}"))?;
                }
            }
        }
        Ok(merged)
    }

    /// `min-version`: the higher of the two files holds; an older binary says "upgrade" (exit 2).
    fn check_min_version(&self) -> Result<()> {
        let ours = version_numbers(env!("CARGO_PKG_VERSION")).unwrap_or_default();
        for file in &self.files {
            let Some((wanted, line)) = &file.min_version else { continue };
            let Some(numbers) = version_numbers(wanted) else {
                return Err(
                    file.error(*line, &format!("min-version '{}' is not a version like 0.2.0", clean(wanted, 40)))
                );
            };
            if numbers > ours {
                return Err(file.error(
                    *line,
                    &format!(
                        "this configuration needs iap-token {} or newer, and this is {}: upgrade iap-token",
                        clean(wanted, 40),
                        env!("CARGO_PKG_VERSION")
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ConfigFile {
    fn error(&self, line: usize, what: &str) -> Error {
        Error::Usage(format!("{}:{line}: {what}", self.path.display()))
    }
}

/// The settings of one table, typed. Unknown keys and wrong types are errors when `strict`, else said at
/// -v (and `noted`).
fn read_table(
    file: &ConfigFile,
    table: &RawTable,
    name: &str,
    strict: bool,
    noted: &Cell<bool>,
    home: Option<&str>,
) -> Result<Vec<(&'static str, Setting)>> {
    let mut settings = Vec::new();
    for entry in table {
        let problem = match KEYS.iter().find(|(known, _)| *known == entry.key) {
            None => format!("unknown key '{}' in [{name}] (a newer iap-token?)", clean(&entry.key, 60)),
            Some((known, kind)) => match typed(&entry.value, *kind, home) {
                Some(value) => {
                    settings.push((*known, Setting { value, file: file.path.clone(), line: entry.line }));
                    continue;
                }
                None => format!("'{known}' in [{name}] must be {}", kind_name(*kind)),
            },
        };
        if strict {
            return Err(file.error(entry.line, &problem));
        }
        noted.set(true);
        log::info(format_args!("{}:{}: ignoring: {problem}", file.path.display(), entry.line));
    }
    Ok(settings)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Path => "a string",
        Kind::Integer => "a non-negative integer",
    }
}

fn typed(value: &RawValue, kind: Kind, home: Option<&str>) -> Option<SettingValue> {
    match (kind, value) {
        (Kind::Text, RawValue::Text(text)) => Some(SettingValue::Text(text.clone())),
        (Kind::Path, RawValue::Text(text)) => Some(SettingValue::Path(expand_home(text, home))),
        (Kind::Integer, RawValue::Integer(number)) => number.map(SettingValue::Integer),
        _ => None,
    }
}

fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The path and text of the system file, then of the user file, as far as they exist.
fn read_texts(env: &dyn Environment) -> Result<Vec<(PathBuf, String)>> {
    let mut texts = Vec::new();
    for (path, system) in [(Some(system_file_path(env)), true), (user_file_path(env), false)] {
        let Some(path) = path else { continue };
        if let Some(text) = read_text(&path, system)? {
            texts.push((path, text));
        }
    }
    Ok(texts)
}

/// Reads one file; `None` when it does not exist. A file others can write is refused.
fn read_text(path: &Path, system: bool) -> Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(None);
        }
        Err(e) => return Err(Error::Usage(format!("could not read the config file {}: {e}", path.display()))),
    };
    check_owner(path, system)?;
    Ok(Some(text))
}

/// Parses the text of one file.
fn parse(path: &Path, text: &str) -> Result<ConfigFile> {
    // Each key's line, found by a binary search over where lines start (files have dozens of keys).
    let newlines: Vec<usize> = text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i).collect();
    let line_of = |offset: usize| newlines.partition_point(|&newline| newline < offset) + 1;
    let error = |line: usize, what: &str| Error::Usage(format!("{}:{line}: {what}", path.display()));
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|span| line_of(span.start)).unwrap_or(1);
        let message = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        error(line, &format!("not valid TOML: {}", clean(&message, 200)))
    })?;
    let mut file = ConfigFile {
        path: path.to_path_buf(),
        default_profile: None,
        min_version: None,
        defaults: None,
        profiles: BTreeMap::new(),
        notes: Vec::new(),
    };
    for (key, value) in table.into_inner() {
        let line = line_of(key.span().start);
        match (key.get_ref().as_ref(), value.into_inner()) {
            ("default-profile", DeValue::String(name)) => file.default_profile = Some(name.into_owned()),
            ("min-version", DeValue::String(version)) => file.min_version = Some((version.into_owned(), line)),
            ("defaults", DeValue::Table(defaults)) => file.defaults = Some(raw_table(defaults, &line_of)),
            ("profile", DeValue::Table(profiles)) => {
                for (name, profile) in profiles {
                    let profile_line = line_of(name.span().start);
                    match profile.into_inner() {
                        DeValue::Table(profile) => {
                            file.profiles.insert(name.into_inner().into_owned(), raw_table(profile, &line_of));
                        }
                        _ => return Err(error(profile_line, "a profile must be a table: [profile.NAME]")),
                    }
                }
            }
            ("default-profile" | "min-version", _) => return Err(error(line, "must be a string")),
            ("defaults" | "profile", _) => return Err(error(line, "must be a table")),
            (other, _) => file.notes.push(format!(
                "{}:{line}: ignoring the unknown top-level key '{}' (a newer iap-token?)",
                path.display(),
                clean(other, 60)
            )),
        }
    }
    Ok(file)
}

/// A table of a file, keys in order with their lines; values reduced to what settings can be.
type RawTable = Vec<RawEntry>;

#[derive(Debug)]
struct RawEntry {
    key: String,
    line: usize,
    value: RawValue,
}

#[derive(Debug)]
enum RawValue {
    Text(String),
    /// A decimal integer that fits (`None`: another radix, negative, or too large).
    Integer(Option<u64>),
    /// Anything else, by its TOML type name.
    Other,
}

fn raw_table(table: DeTable<'_>, line_of: &dyn Fn(usize) -> usize) -> RawTable {
    table
        .into_iter()
        .map(|(key, value)| {
            let line = line_of(key.span().start);
            let value = match value.into_inner() {
                DeValue::String(text) => RawValue::Text(text.into_owned()),
                DeValue::Integer(number) => {
                    RawValue::Integer(number.as_str().parse::<u64>().ok().filter(|_| number.radix() == 10))
                }
                _ => RawValue::Other,
            };
            RawEntry { key: key.into_inner().into_owned(), line, value }
        })
        .collect()
}

/// Refuses a file that someone else may have written: not owned by us (or root, for the system file),
/// or writable by group or others.
#[cfg(unix)]
fn check_owner(path: &Path, system: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Usage(format!("could not read the config file {}: {e}", path.display())))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner_ok = meta.uid() == me || (system && meta.uid() == 0);
    if !owner_ok || meta.mode() & 0o022 != 0 {
        return Err(Error::Usage(format!(
            "refusing the config file {}: {} (such a file could send tokens elsewhere); fix it with 'chmod go-w' or remove it",
            path.display(),
            if owner_ok { "others can write to it" } else { "it belongs to another user" }
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner(_path: &Path, _system: bool) -> Result<()> {
    Ok(())
}

/// `Some(length of the profile's path)` when `profile_url` matches `url`: same scheme, host and port, and
/// the profile's path a prefix of the URL's at a `/` boundary.
pub fn url_matches(profile_url: &str, url: &str) -> Option<usize> {
    if let (Some(own), Some(asked)) = (SimpleUrl::parse(profile_url), SimpleUrl::parse(url)) {
        if (own.scheme, own.host, own.port) != (asked.scheme, asked.host, asked.port) {
            return None;
        }
        return path_prefix(own.path, asked.path);
    }
    let (own, asked) = (url::Url::parse(profile_url).ok()?, url::Url::parse(url).ok()?);
    if own.scheme() != asked.scheme()
        || !own.host_str()?.eq_ignore_ascii_case(asked.host_str()?)
        || own.port_or_known_default() != asked.port_or_known_default()
    {
        return None;
    }
    path_prefix(own.path(), asked.path())
}

/// `Some(length)` when `own` (without a trailing `/`) is a prefix of `path` at a `/` boundary.
fn path_prefix(own: &str, path: &str) -> Option<usize> {
    let prefix = own.trim_end_matches('/');
    let at_boundary = path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/') || rest.is_empty());
    at_boundary.then_some(prefix.len())
}

/// `0.2.0` -> `[0, 2, 0]`.
fn version_numbers(version: &str) -> Option<Vec<u64>> {
    let core = version.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut numbers: Vec<u64> = core.split('.').map(|n| n.parse().ok()).collect::<Option<_>>()?;
    numbers.resize(3, 0);
    Some(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_match_by_origin_and_path_prefix_at_a_slash() {
        assert_eq!(url_matches("https://flyte.example.com", "https://flyte.example.com/console"), Some(0));
        assert_eq!(url_matches("https://h.example.com/git", "https://h.example.com/git/repo.git"), Some(4));
        assert_eq!(url_matches("https://h.example.com/git/", "https://h.example.com/git"), Some(4));
        assert_eq!(url_matches("https://h.example.com/git", "https://h.example.com/gitlab"), None);
        assert_eq!(url_matches("https://h.example.com", "http://h.example.com"), None);
        assert_eq!(url_matches("https://h.example.com", "https://h.example.com:8443"), None);
        assert_eq!(url_matches("https://h.example.com:443", "https://H.example.com/x"), Some(0));
        assert_eq!(url_matches("https://h.example.com", "https://h.example.com.evil.com/"), None);
        assert_eq!(url_matches("https://h.example.com/a", "https://h.example.com/a/../b"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_numbers("0.10.0") > version_numbers("0.9.9"));
        assert_eq!(version_numbers("1.2"), Some(vec![1, 2, 0]));
        assert_eq!(version_numbers("v1.2.3-rc1"), Some(vec![1, 2, 3]));
        assert_eq!(version_numbers("one"), None);
    }
}
