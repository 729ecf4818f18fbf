//! `iap-token logout`: forget the cached ID tokens and signed JWTs of a configuration and its stored
//! sign-in (every one with `--all`), revoking refresh tokens at Google with `--revoke`.

use std::process::ExitCode;

use crate::cache::file::Cache;
use crate::cache::lock;
use crate::config::Settings;
use crate::credential::SourceKind;
use crate::error::{Result, clean};
use crate::secret::Secret;
use crate::session::Session;
use crate::source::{self, Source};
use crate::store::TokenStore;
use crate::{cache_key, google, log, signed_jwt, url_cache_key, user};

pub fn run(settings: &Settings, all: bool, revoke: bool) -> Result<ExitCode> {
    let cache = Cache::new(settings.cache.dir.clone());
    let store = TokenStore::open(settings.cache.state_dir.clone(), settings.cache.store)?;
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
        lock::remove_idle(cache.dir())?;
        log::notice(format_args!("forgot {forgotten} sign-in(s) and {removed} cached token(s)"));
        return Ok(ExitCode::SUCCESS);
    }
    let source = source::resolve(settings)?;
    let mut removed = 0;
    if let Some(audience) = &settings.audience {
        removed += usize::from(cache.remove(&cache_key(&source, audience))?);
    }
    // The token for a URL goes with its discovered audience: the next call discovers it again.
    if let Some(url) = &settings.url {
        removed += usize::from(cache.remove(&url_cache_key(&source, url))?);
    }
    // So does the signed JWT for that URL or https audience.
    if let Ok(audience) = signed_jwt::audience(settings) {
        removed += usize::from(cache.remove(&signed_jwt::key(&source, &audience))?);
    }
    let login_lock = match &source {
        Source::User { client_id, account } => user::lock_login(settings, client_id, account.as_deref())?,
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
            if entry.source == Some(SourceKind::User) && entry.principal.is_some() && entry.principal == login.principal
            {
                removed += usize::from(std::fs::remove_file(path).is_ok());
            }
        }
        drop(login_lock);
        lock::remove_idle(cache.dir())?;
        log::notice(format_args!(
            "forgot the sign-in of {} and {removed} cached token(s)",
            clean(login.principal.as_deref().unwrap_or(client_id), 100)
        ));
        return Ok(ExitCode::SUCCESS);
    }
    drop(login_lock);
    lock::remove_idle(cache.dir())?;
    log::notice(format_args!("forgot {removed} cached token(s)"));
    Ok(ExitCode::SUCCESS)
}

fn revoke_at_google(session: &Session, settings: &Settings, refresh_token: &Secret<String>) {
    let revoke_uri = settings.endpoints.revoke_uri.clone().unwrap_or_else(|| crate::config::DEFAULT_REVOKE_URI.into());
    match session.http().and_then(|http| google::oauth::revoke(http, &revoke_uri, refresh_token)) {
        Ok(()) => log::notice(format_args!("revoked the refresh token at Google")),
        Err(e) => log::notice(format_args!("warning: could not revoke the refresh token at Google: {e}")),
    }
}
