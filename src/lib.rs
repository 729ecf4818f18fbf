//! # iap-token
//!
//! Google OIDC ID tokens for services behind Identity-Aware Proxy, printed in the form the caller speaks.
//!
//! The architecture in a paragraph: [`cli`] holds the raw command line; [`config`] turns it and the
//! environment into one validated [`config::Settings`]; [`source`] picks where tokens come from (a
//! signed-in user, impersonation, Workload Identity Federation, a service-account key, the metadata
//! server); [`get_credential`] is the use case every command shares: cache key, read the cache, serve,
//! or take the per-key lock, read again, fetch through [`google`] over [`http`], check the token
//! ([`jwt`]), save, serve. [`output`] is the only code that writes stdout. Secrets travel inside
//! [`secret::Secret`]. [`authenticator`] offers the same to Rust programs.

#![deny(clippy::print_stdout)]

pub mod authenticator;
pub mod browser;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fast_path;
pub mod google;
pub mod http;
pub mod jwt;
pub mod log;
pub mod output;
pub mod secret;
pub mod session;
pub mod source;
pub mod terminal;
pub mod user;

use std::time::Duration;

use cache::file::Cache;
use cache::{CacheKey, ENTRY_VERSION, Entry, Served, TokenKind};
use config::Settings;
use error::{Error, Result};
use output::Credential;
use session::Session;
use source::Source;

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The cache key of the ID token `source` yields for `audience`.
pub fn cache_key(source: &Source, audience: &str) -> CacheKey {
    let identity = source.cache_identity();
    let mut parts = vec!["id_token", source.kind().as_str(), audience];
    parts.extend(identity.iter().map(String::as_str));
    CacheKey::new(&parts)
}

/// The use case: an ID token for the configured audience, from the cache when it is fresh, else fetched
/// once across all concurrent processes, checked, and cached.
pub fn get_credential(settings: &Settings) -> Result<Credential> {
    let audience = settings.audience.as_deref().ok_or_else(|| Error::Usage("--audience is required".into()))?;
    let source = source::resolve(settings)?;
    let key = cache_key(&source, audience);
    let cache = Cache::new(settings.cache.dir.clone());
    let min_ttl = settings.cache.min_ttl;
    let fresh = |entry: &Entry| {
        entry.kind == TokenKind::IdToken && entry.audience == audience && entry.is_fresh(unix_now(), min_ttl)
    };
    let wait = settings.login.timeout + settings.net.timeout * 4 + Duration::from_secs(5);
    let (entry, served) = cache::single_flight(&cache, &key, settings.cache.force_refresh, wait, fresh, || {
        log::info(format_args!("fetching a new ID token ({} source)", source.kind().as_str()));
        fetch_id_token(settings, &source, audience)
    })?;
    match served {
        Served::Cache => log::info(format_args!("serving the cached ID token ({})", cache.entry_path(&key).display())),
        Served::Peer => log::info(format_args!("another process refreshed the ID token meanwhile")),
        Served::Fetched => log::info(format_args!(
            "new ID token for {} valid until {}",
            error::clean(entry.principal.as_deref().unwrap_or("(no email claim)"), 100),
            output::rfc3339(entry.expires_at)
        )),
    }
    Ok(credential(entry, min_ttl, source.kind()))
}

/// A new ID token from `source`, checked before anyone sees it.
fn fetch_id_token(settings: &Settings, source: &Source, audience: &str) -> Result<Entry> {
    let session = Session::new(settings);
    let token = source.fetch(&session, audience).map_err(|e| match e {
        // A configuration problem explains itself; the source's name would only add noise.
        Error::Config { .. } => e,
        e => e.context(format!("could not get an ID token from the {} source", source.kind().as_str())),
    })?;
    let fetched_at = unix_now();
    let claims = jwt::decode_claims(token.expose())?;
    let expires_at = jwt::check_id_token(&claims, audience, fetched_at)?;
    Ok(Entry {
        version: ENTRY_VERSION,
        kind: TokenKind::IdToken,
        source: source.kind().as_str().into(),
        audience: audience.into(),
        principal: claims.email,
        token,
        expires_at,
        fetched_at,
    })
}

fn credential(entry: Entry, min_ttl: i64, kind: source::SourceKind) -> Credential {
    Credential {
        expires_at: entry.serve_until(min_ttl),
        audience: entry.audience,
        principal: entry.principal,
        token: entry.token,
        source: kind,
    }
}
