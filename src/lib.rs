//! # iap-token
//!
//! Google OIDC ID tokens for services behind Identity-Aware Proxy, printed in the form the caller speaks.
//!
//! The architecture in a paragraph: [`cli`] holds the raw command line; [`config`] turns it and the
//! environment into one validated [`config::Settings`]; [`commands`] runs what was asked, and every
//! credential command goes through [`get_credential`], the use case: cache key, read the cache, serve, or
//! take the per-key lock, read again, mint a token ([`mint_id_token`]) from the source [`source`] picked,
//! check it ([`jwt`]), save, serve. Minting uses the [`session`] (HTTP client, access tokens for Google
//! APIs), the user sign-in ([`user`]) and the wire clients of [`google`] over [`http`]. [`cache`] keeps ID
//! and access tokens, [`store`] the refresh tokens. [`output`] is the only code that writes stdout.
//! Secrets travel inside [`secret::Secret`]. [`authenticator`] offers the same to Rust programs.
//! Layers point one way: see docs/architecture.md.

#![deny(clippy::print_stdout)]

pub mod authenticator;
pub mod browser;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credential;
pub mod discovery;
pub mod error;
pub mod fast_path;
pub mod google;
pub mod http;
pub mod jwt;
pub mod log;
pub mod output;
pub mod profiles;
pub mod proxy;
pub mod secret;
pub mod session;
pub mod signed_jwt;
pub mod source;
pub mod store;
pub mod terminal;
pub mod user;

use cache::file::Cache;
use cache::{CacheKey, Discovery, ENTRY_VERSION, Entry, Served, TokenKind};
use clock::unix_now;
use config::Settings;
use credential::{Credential, TokenType};
use error::{Error, Result};
use google::{iam, metadata, service_account};
use secret::Secret;
use session::Session;
use source::Source;

/// The cache key of the ID token `source` yields for `audience`.
pub fn cache_key(source: &Source, audience: &str) -> CacheKey {
    let identity = source.cache_identity();
    let mut parts = vec!["id_token", source.kind().as_str(), audience];
    parts.extend(identity.iter().map(String::as_str));
    CacheKey::new(&parts)
}

/// The cache key of the ID token `source` yields for the service at `url` (its audience discovered).
pub fn url_cache_key(source: &Source, url: &str) -> CacheKey {
    let identity = source.cache_identity();
    let mut parts = vec!["id_token", source.kind().as_str(), "url", url];
    parts.extend(identity.iter().map(String::as_str));
    CacheKey::new(&parts)
}

/// What a call asks a token for: an audience it names, or the service at a URL (audience discovered).
#[derive(Debug, Clone, Copy)]
enum Wanted<'a> {
    Audience(&'a str),
    Url(&'a str),
}

impl Wanted<'_> {
    fn of(settings: &Settings) -> Result<Wanted<'_>> {
        match (&settings.audience, &settings.url) {
            (Some(audience), _) => Ok(Wanted::Audience(audience)),
            (None, Some(url)) => Ok(Wanted::Url(url)),
            (None, None) => Err(Error::Usage(
                "--audience or --url is required: the IAP OAuth client id of the service, or its URL".into(),
            )),
        }
    }

    fn key(self, source: &Source) -> CacheKey {
        match self {
            Wanted::Audience(audience) => cache_key(source, audience),
            Wanted::Url(url) => url_cache_key(source, url),
        }
    }

    /// Whether `entry` answers this call (before freshness): the same audience, or a recent discovery.
    fn answered_by(self, entry: &Entry, now: i64) -> bool {
        match self {
            Wanted::Audience(audience) => entry.audience == audience,
            Wanted::Url(url) => entry.discovered.as_ref().is_some_and(|d| d.holds_for(url, now)),
        }
    }
}

/// The use case: an ID token for the configured audience (or the one discovered for the URL), from the
/// cache when it is fresh, else fetched once across all concurrent processes, checked, and cached.
pub fn get_credential(settings: &Settings) -> Result<Credential> {
    if settings.token_type == TokenType::SignedJwt {
        return signed_jwt::get(settings);
    }
    let wanted = Wanted::of(settings)?;
    let source = source::resolve(settings)?;
    let key = wanted.key(&source);
    let cache = Cache::new(settings.cache.dir.clone());
    let min_ttl = settings.cache.min_ttl;
    let now = unix_now();
    let fresh = |entry: &Entry| {
        entry.kind == TokenKind::IdToken && wanted.answered_by(entry, now) && entry.is_fresh(now, min_ttl)
    };
    let (entry, served) =
        cache::single_flight(&cache, &key, settings.cache.force_refresh, settings.lock_wait(), fresh, |stale| {
            let audience = match wanted {
                Wanted::Audience(audience) => audience.to_string(),
                Wanted::Url(url) => discovery::audience(settings, &source, url, stale)?,
            };
            log::info(format_args!("fetching a new ID token ({} source)", source.kind().as_str()));
            let mut entry = fetch_id_token(settings, &source, &audience)?;
            if let Wanted::Url(url) = wanted {
                entry.discovered = Some(Discovery { url: url.to_string(), at: now });
            }
            Ok(entry)
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
    Ok(entry.into_credential(source.kind(), settings.url.clone(), TokenType::IdToken, min_ttl))
}

/// A new ID token from `source`, checked before anyone sees it.
fn fetch_id_token(settings: &Settings, source: &Source, audience: &str) -> Result<Entry> {
    let session = Session::new(settings);
    let token = mint_id_token(&session, source, audience).map_err(|e| match e {
        // A configuration problem explains itself; the source's name would only add noise.
        Error::Config { .. } => e,
        e => e.context(format!("could not get an ID token from the {} source", source.kind().as_str())),
    })?;
    let fetched_at = unix_now();
    let claims = jwt::decode_claims(token.expose())?;
    let checked = jwt::check_id_token(&claims, audience, fetched_at)?;
    if let Some(behind) = checked.clock_behind_secs {
        log::notice(format_args!(
            "warning: this machine's clock is about {behind} s behind Google's; the token is served, but fix the time (e.g. 'timedatectl set-ntp true')"
        ));
    }
    Ok(Entry {
        version: ENTRY_VERSION,
        kind: TokenKind::IdToken,
        source: Some(source.kind()),
        audience: audience.into(),
        principal: claims.email,
        token,
        expires_at: checked.expires_at,
        fetched_at,
        discovered: None,
    })
}

/// How each source mints an ID token for `audience` (network).
pub fn mint_id_token(session: &Session, source: &Source, audience: &str) -> Result<Secret<String>> {
    let settings = session.settings();
    let iam_endpoint = settings.endpoints.iam_credentials.as_str();
    match source {
        Source::ServiceAccountKey { key } => {
            let token_uri = source::token_uri(settings, key.token_uri.as_deref());
            service_account::id_token(session.http()?, key, &token_uri, audience, session.now())
        }
        Source::Metadata { host, auto, skipped_adc } => metadata::id_token(session.http()?, host, audience)
            .map_err(|e| if *auto { source::not_on_google_cloud(e, skipped_adc.as_deref()) } else { e }),
        Source::User { .. } => user::id_token(session, audience),
        Source::Impersonation { target, delegates, via } => {
            let bearer = session.impersonating_bearer(target, via)?;
            iam::generate_id_token(session.http()?, iam_endpoint, &bearer, target, delegates, audience)
        }
        Source::ExternalAccount { path, account } => {
            let (target, federated) = session.federated_bearer(path, account)?;
            iam::generate_id_token(session.http()?, iam_endpoint, &federated, &target, &[], audience)
        }
    }
}
