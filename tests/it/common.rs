//! The test harness: a fresh HOME, cache and state directory per test, a fake Google, and the built
//! binary run with a clean environment that can reach nothing but loopback.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::fake_google::{FakeGoogle, sa_key_json};

pub const BIN: &str = env!("CARGO_BIN_EXE_iap-token");
pub const AUD: &str = "123-web.apps.googleusercontent.com";
pub const DESKTOP_CLIENT: &str = "456-desktop.apps.googleusercontent.com";
pub const DESKTOP_SECRET: &str = "desktop-s3cret-value";
/// A loopback port nothing listens on, for "no metadata server here".
pub const CLOSED_METADATA: &str = "127.0.0.1:9";

pub struct Harness {
    pub google: FakeGoogle,
    pub dir: tempfile::TempDir,
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns the single token on stdout.
    pub fn token(&self) -> String {
        assert_eq!(self.code, 0, "exit code; stderr: {}", self.stderr);
        assert!(self.stdout.ends_with('\n') && self.stdout.matches('\n').count() == 1, "stdout: {:?}", self.stdout);
        self.stdout.trim_end().to_string()
    }

    /// Asserts a failure with `code`, empty stdout, and exactly one line on stderr; returns that line.
    pub fn failure(&self, code: i32) -> String {
        assert_eq!(self.code, code, "exit code; stdout: {:?} stderr: {}", self.stdout, self.stderr);
        assert_eq!(self.stdout, "", "stdout must stay empty on failure");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr, got: {}", self.stderr);
        assert!(lines[0].starts_with("iap-token: error: "), "{}", lines[0]);
        lines[0].to_string()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        Harness { google: FakeGoogle::start(), dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes the fake service account's key file (token_uri = the fake) and returns its path.
    pub fn key_file(&self) -> PathBuf {
        let path = self.path("sa-key.json");
        if !path.exists() {
            std::fs::write(&path, sa_key_json(&self.google.token_uri())).expect("write key");
        }
        path
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// The binary with a clean environment: its own HOME, cache and state dirs, the file store, no
    /// metadata server, every Google endpoint at the fake, and no proxy for loopback.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("GCE_METADATA_HOST", CLOSED_METADATA)
            .env("IAP_TOKEN_CACHE_DIR", self.cache_dir())
            .env("IAP_TOKEN_STATE_DIR", self.state_dir())
            .env("IAP_TOKEN_STORE", "file")
            .env("IAP_TOKEN_SYSTEM_CONFIG", self.path("etc/iap-token/config.toml"))
            .env("IAP_TOKEN_AUTH_URI", self.google.auth_uri())
            .env("IAP_TOKEN_REVOKE_URI", self.google.revoke_uri())
            .env("IAP_TOKEN_SECRET_MANAGER_ENDPOINT", self.google.url())
            .env("IAP_TOKEN_IAM_CREDENTIALS_ENDPOINT", self.google.url())
            .stdin(Stdio::null());
        command
    }

    /// The environment [`Harness::command`] gives the binary, for the real clients that run it (kubectl,
    /// git, flytekit, `script`, `strace`), so that it reaches them unchanged.
    pub fn env_vars(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let command = self.command(&[]);
        command.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect()
    }

    /// Makes every cached entry stale: fetched an hour ago with 10 s left, inside the 300 s margin.
    pub fn age_entries(&self) {
        self.age_entries_where(|_| true);
    }

    /// Makes the cached entries that `select` picks stale.
    pub fn age_entries_where(&self, select: impl Fn(&Value) -> bool) {
        for (path, mut entry) in self.cache_entries().into_iter().filter(|(_, e)| select(e)) {
            entry["fetched_at"] = (now() - 3590).into();
            entry["expires_at"] = (now() + 10).into();
            std::fs::write(path, serde_json::to_vec(&entry).unwrap()).unwrap();
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        for (name, value) in env {
            command.env(name, value);
        }
        Run::from_output(command.output().expect("run iap-token"))
    }

    /// `token` for AUD with the service-account key.
    pub fn key_token(&self, extra: &[&str]) -> Run {
        let key = self.key_file();
        let mut args = vec!["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The cache entries on disk.
    pub fn cache_entries(&self) -> Vec<(PathBuf, Value)> {
        let Ok(dir) = std::fs::read_dir(self.cache_dir()) else { return Vec::new() };
        dir.filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| {
                let value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                (p, value)
            })
            .collect()
    }
}

/// Validates `instance` against `schemas/<name>`.
pub fn assert_schema(name: &str, instance: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).expect("schema file")).expect("schema JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(name, schema).expect("add schema");
    let index = compiler.compile(name, &mut schemas).expect("compile schema");
    if let Err(error) = schemas.validate(instance, index) {
        panic!("{instance} does not match {name}: {error:#}");
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Parses an RFC 3339 UTC timestamp (`2026-01-02T15:04:05Z`) to Unix seconds.
pub fn parse_rfc3339(text: &str) -> i64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').expect("RFC 3339");
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + t[0] * 3600 + t[1] * 60 + t[2]
}
