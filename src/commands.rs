//! The commands besides the use case itself: `token` prints what [`crate::get_credential`] returns,
//! `login` runs the sign-in now, `logout` forgets (and revokes), `status` reports without a network call,
//! `git-credential` speaks git's helper protocol, `completions` prints a script. Each returns the exit
//! code; errors travel up to `main`, which prints them once.

use std::io::BufReader;
use std::process::ExitCode;

use clap::CommandFactory;
use serde::Serialize;

use crate::cache::file::Cache;
use crate::cache::store::TokenStore;
use crate::cache::{Entry, TokenKind};
use crate::config::{Action, Settings};
use crate::error::{Error, Result, clean};
use crate::output::{self, git, rfc3339};
use crate::session::Session;
use crate::source::{self, Source};
use crate::user::{self, UserClient};
use crate::{cache_key, get_credential, google, log, terminal, unix_now};

/// Exit code when a sign-in is needed but not allowed.
pub const SIGN_IN_REQUIRED: u8 = 3;

pub fn run(action: Action) -> Result<ExitCode> {
    match action {
        Action::Token { settings, format } => {
            let credential = get_credential(&settings)?;
            write(output::write_credential(&format, &credential))
        }
        Action::Login(settings) => login(&settings),
        Action::Logout { settings, all, revoke } => logout(&settings, all, revoke),
        Action::Status { settings, json } => status(&settings, json),
        Action::GitCredential { settings, action } => git_credential(&settings, &action),
        Action::Completions(shell) => write(output::write_completions(shell, &mut crate::cli::Cli::command())),
    }
}

/// Maps a stdout write to the exit code; a closed pipe (`| head`) is not a failure.
fn write(result: std::io::Result<()>) -> Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Error::io("could not write to stdout", e)),
    }
}

fn login(settings: &Settings) -> Result<ExitCode> {
    let session = Session::new(settings);
    let client = UserClient::from_settings(settings)?;
    {
        let _login = user::lock_login(settings, &client.client_id, client.account.as_deref())?;
        let store = TokenStore::open(&settings.cache)?;
        user::sign_in(&session, &client, &store).map_err(|e| e.context("the sign-in failed"))?;
    }
    if let Some(audience) = &settings.audience {
        let mut refreshed = settings.clone();
        refreshed.cache.force_refresh = true;
        let credential = get_credential(&refreshed)?;
        terminal::say(&format!(
            "iap-token: ID token for {} ready until {}",
            clean(audience, 100),
            rfc3339(credential.expires_at)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn logout(settings: &Settings, all: bool, revoke: bool) -> Result<ExitCode> {
    let cache = Cache::new(settings.cache.dir.clone());
    let store = TokenStore::open(&settings.cache)?;
    if all {
        let logins = store.all()?;
        if revoke {
            let session = Session::new(settings);
            for login in &logins {
                revoke_at_google(&session, settings, &login.refresh_token);
            }
        }
        let forgotten = store.delete_all()?;
        let removed = cache.clear()?;
        log::notice(format_args!("forgot {forgotten} sign-in(s) and {removed} cached token(s)"));
        return Ok(ExitCode::SUCCESS);
    }
    let source = source::resolve(settings)?;
    let mut removed = 0;
    if let Some(audience) = &settings.audience {
        removed += usize::from(cache.remove(&cache_key(&source, audience))?);
    }
    let _login_lock = match &source {
        Source::User { client_id, account } => Some(user::lock_login(settings, client_id, account.as_deref())?),
        _ => None,
    };
    if let Source::User { client_id, account } = &source
        && let Some(login) = store.load(client_id, account.as_deref())?
    {
        if revoke {
            revoke_at_google(&Session::new(settings), settings, &login.refresh_token);
        }
        store.delete(client_id, account.as_deref())?;
        for (path, entry) in cache.entries() {
            if entry.source == "user" && entry.principal.is_some() && entry.principal == login.principal {
                removed += usize::from(std::fs::remove_file(path).is_ok());
            }
        }
        log::notice(format_args!(
            "forgot the sign-in of {} and {removed} cached token(s)",
            clean(login.principal.as_deref().unwrap_or(client_id), 100)
        ));
        return Ok(ExitCode::SUCCESS);
    }
    log::notice(format_args!("forgot {removed} cached token(s)"));
    Ok(ExitCode::SUCCESS)
}

fn revoke_at_google(session: &Session, settings: &Settings, refresh_token: &crate::secret::Secret<String>) {
    let revoke_uri = settings.endpoints.revoke_uri.clone().unwrap_or_else(|| crate::config::DEFAULT_REVOKE_URI.into());
    match session.http().and_then(|http| google::oauth::revoke(http, &revoke_uri, refresh_token)) {
        Ok(()) => log::notice(format_args!("revoked the refresh token at Google")),
        Err(e) => log::notice(format_args!("warning: could not revoke the refresh token at Google: {e}")),
    }
}

#[derive(Serialize)]
struct Status {
    version: u32,
    ready: bool,
    source: &'static str,
    signed_in: Option<bool>,
    entries: Vec<StatusEntry>,
}

#[derive(Serialize)]
struct StatusEntry {
    source: String,
    audience: String,
    principal: Option<String>,
    expires_at: String,
    fresh: bool,
}

fn status(settings: &Settings, json: bool) -> Result<ExitCode> {
    let cache = Cache::new(settings.cache.dir.clone());
    let now = unix_now();
    let min_ttl = settings.cache.min_ttl;
    let describe = |entry: Entry| StatusEntry {
        fresh: entry.is_fresh(now, min_ttl),
        expires_at: rfc3339(entry.serve_until(min_ttl)),
        source: entry.source,
        audience: entry.audience,
        principal: entry.principal,
    };
    let source = source::resolve(settings)?;
    let signed_in = match &source {
        Source::User { client_id, account } => {
            Some(TokenStore::open(&settings.cache)?.load(client_id, account.as_deref())?.is_some())
        }
        _ => None,
    };
    // With an audience: the one entry this configuration is served from. Without: the ID tokens cached
    // for this source kind (other sources' tokens say nothing about this configuration).
    let entries: Vec<StatusEntry> = match &settings.audience {
        Some(audience) => cache.read(&cache_key(&source, audience)).into_iter().map(describe).collect(),
        None => cache
            .entries()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| entry.kind == TokenKind::IdToken && entry.source == source.kind().as_str())
            .map(describe)
            .collect(),
    };
    // Only the user source ever needs a browser; the others mint tokens unattended.
    let ready = signed_in != Some(false) || (settings.audience.is_some() && entries.iter().any(|e| e.fresh));
    let report = Status { version: 1, ready, source: source.kind().as_str(), signed_in, entries };
    write(if json { output::write_json(&report) } else { output::write_text(&status_text(&report)) })?;
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(SIGN_IN_REQUIRED) })
}

fn status_text(report: &Status) -> String {
    let mut text = String::new();
    text.push_str(&format!("source: {}\n", report.source));
    match report.signed_in {
        Some(true) => text.push_str("signed in: yes (a refresh token is stored)\n"),
        Some(false) => text.push_str("signed in: no (run 'iap-token login')\n"),
        None => {}
    }
    if report.entries.is_empty() {
        text.push_str("cached tokens: none\n");
    }
    for entry in &report.entries {
        text.push_str(&format!(
            "cached token: audience {} principal {} {} {}\n",
            clean(&entry.audience, 120),
            clean(entry.principal.as_deref().unwrap_or("-"), 120),
            if entry.fresh { "valid until" } else { "stale since" },
            entry.expires_at
        ));
    }
    text.push_str(if report.ready { "ready: yes\n" } else { "ready: no, a sign-in is needed\n" });
    text
}

fn git_credential(settings: &Settings, action: &str) -> Result<ExitCode> {
    match action {
        "capability" => write(output::write_text(git::CAPABILITY_ANSWER)),
        "get" => {
            let request = git::Request::read(BufReader::new(std::io::stdin().lock()));
            if !request.supports_authtype() {
                let url = match (&request.protocol, &request.host) {
                    (Some(protocol), Some(host)) => format!("{}://{}/", clean(protocol, 10), clean(host, 200)),
                    _ => "https://HOST/".into(),
                };
                let audience = settings.audience.as_deref().map(|a| clean(a, 200)).unwrap_or_else(|| "AUD".into());
                log::notice(format_args!(
                    "this git does not accept Bearer credentials from helpers; use git 2.46 or later with \
http.{url}.proactiveAuth=auto, or pass the token per command: \
git -c http.{url}.extraHeader=\"Authorization: Bearer $(iap-token token --audience {audience})\" ..."
                ));
                return Ok(ExitCode::SUCCESS);
            }
            let credential = get_credential(settings)?;
            write(output::write_text(&git::bearer_answer(credential.token.expose(), credential.expires_at)))
        }
        "erase" => {
            let _ = git::Request::read(BufReader::new(std::io::stdin().lock()));
            let audience = settings.audience.as_deref().ok_or_else(|| Error::Usage("--audience is required".into()))?;
            let source = source::resolve(settings)?;
            Cache::new(settings.cache.dir.clone()).remove(&cache_key(&source, audience))?;
            Ok(ExitCode::SUCCESS)
        }
        "store" => {
            let _ = git::Request::read(BufReader::new(std::io::stdin().lock()));
            Ok(ExitCode::SUCCESS)
        }
        other => {
            log::debug(format_args!("ignoring the unknown git credential action '{}'", clean(other, 40)));
            Ok(ExitCode::SUCCESS)
        }
    }
}
