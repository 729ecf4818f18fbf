//! Service-account signed JWTs for IAP (`--token-type signed-jwt`): `iss` = `sub` = the service
//! account, `aud` = the resource URL with `/*` (so every path and gRPC method is covered), one hour of
//! life. IAP accepts them with any OAuth client, Google-managed ones included, and with a key file they
//! cost no request at all. Other service-account sources have Google sign through IAM Credentials
//! `signJwt`; a person (the user source) cannot sign. Cached and served like ID tokens.

use crate::cache::file::Cache;
use crate::cache::{self, CacheKey, ENTRY_VERSION, Entry, TokenKind};
use crate::clock::unix_now;
use crate::config::Settings;
use crate::credential::{Credential, TokenType};
use crate::error::{Error, Result, clean};
use crate::google::{iam, metadata};
use crate::secret::Secret;
use crate::session::Session;
use crate::source::{self, Credentials, Source};
use crate::{jwt, log};

/// The lifetime of a signed JWT: IAP accepts at most an hour.
const LIFETIME_SECS: i64 = 3600;

/// The `aud` of a signed JWT: `--audience` when it is an https URL (as given), else the `--url` without
/// a trailing `/` plus `/*` (a URL already ending in `*` as given); neither is a usage error.
pub fn audience(settings: &Settings) -> Result<String> {
    if let Some(audience) = settings.audience.as_deref().filter(|a| a.starts_with("https://")) {
        return Ok(audience.to_string());
    }
    // `--url` is already checked: https, or http to loopback.
    match settings.url.as_deref() {
        Some(url) if url.ends_with('*') => Ok(url.to_string()),
        Some(url) => Ok(format!("{}/*", url.trim_end_matches('/'))),
        None => Err(Error::Usage(
            "--token-type signed-jwt needs --url (or an https:// --audience): a signed JWT's audience is the service's URL".into(),
        )),
    }
}

/// The cache key of the signed JWT `source` yields for `audience` (apart from ID tokens' keys).
pub fn key(source: &Source, audience: &str) -> CacheKey {
    let identity = source.cache_identity();
    let mut parts = vec!["signed_jwt", source.kind().as_str(), audience];
    parts.extend(identity.iter().map(String::as_str));
    CacheKey::new(&parts)
}

/// The use case for signed JWTs: from the cache when fresh, else signed once across processes.
pub fn get(settings: &Settings) -> Result<Credential> {
    let audience = audience(settings)?;
    let source = source::resolve(settings)?;
    if let Source::User { .. } = source {
        return Err(user_cannot_sign());
    }
    let key = key(&source, &audience);
    let cache = Cache::new(settings.cache.dir.clone());
    let min_ttl = settings.cache.min_ttl;
    let now = unix_now();
    let fresh = |entry: &Entry| {
        entry.kind == TokenKind::SignedJwt && entry.audience == audience && entry.is_fresh(now, min_ttl)
    };
    let (entry, _) =
        cache::single_flight(&cache, &key, settings.cache.force_refresh, settings.lock_wait(), fresh, |_| {
            log::info(format_args!(
                "signing a new JWT for {} ({} source)",
                clean(&audience, 200),
                source.kind().as_str()
            ));
            mint(settings, &source, &audience, now)
        })?;
    Ok(entry.into_credential(source.kind(), settings.url.clone(), TokenType::SignedJwt, min_ttl))
}

fn mint(settings: &Settings, source: &Source, audience: &str, now: i64) -> Result<Entry> {
    let session = Session::new(settings);
    let endpoint = settings.endpoints.iam_credentials.as_str();
    let claims = |email: &str| serde_json::json!({"iss": email, "sub": email, "aud": audience, "iat": now, "exp": now + LIFETIME_SECS});
    let (email, token) = match source {
        Source::ServiceAccountKey { key } => {
            if key.private_key_id.is_none() {
                log::info(format_args!("the key file has no private_key_id: the JWT is signed without a kid"));
            }
            let token = jwt::sign_rs256(key.private_key_id.as_deref(), &claims(&key.client_email), &key.private_key)?;
            (key.client_email.clone(), token)
        }
        Source::Impersonation { target, delegates, via } => {
            let bearer = session.impersonating_bearer(target, via)?;
            (target.clone(), iam::sign_jwt(session.http()?, endpoint, &bearer, target, delegates, &claims(target))?)
        }
        Source::ExternalAccount { path, account } => {
            let (target, federated) = session.federated_bearer(path, account)?;
            let token = iam::sign_jwt(session.http()?, endpoint, &federated, &target, &[], &claims(&target))?;
            (target, token)
        }
        Source::Metadata { host, auto, skipped_adc } => {
            // Picked because nothing else was configured: off Google Cloud, say what to configure.
            let email = metadata::email(session.http()?, host)
                .map_err(|e| if *auto { source::not_on_google_cloud(e, skipped_adc.as_deref()) } else { e })?;
            let bearer = session.access_token(&Credentials::Metadata { host: host.clone() })?;
            let token = iam::sign_jwt(session.http()?, endpoint, &bearer, &email, &[], &claims(&email))?;
            (email, token)
        }
        Source::User { .. } => return Err(user_cannot_sign()),
    };
    let expires_at = checked_expiry(&token, audience, now)?;
    Ok(Entry {
        version: ENTRY_VERSION,
        kind: TokenKind::SignedJwt,
        source: Some(source.kind()),
        audience: audience.into(),
        principal: Some(email),
        token,
        expires_at,
        fetched_at: now,
        discovered: None,
    })
}

/// Why the user source gets no signed JWT, and which sources do.
pub const USER_CANNOT_SIGN: &str = "--token-type signed-jwt needs a service account: a person cannot sign a JWT; use service-account-key, impersonation, external-account or metadata";

fn user_cannot_sign() -> Error {
    Error::Usage(USER_CANNOT_SIGN.into())
}

/// The signed JWT's `exp`, after checking that it is for `audience` and not expired.
fn checked_expiry(token: &Secret<String>, audience: &str, now: i64) -> Result<i64> {
    let claims = jwt::decode_claims(token.expose())?;
    Ok(jwt::check_id_token(&claims, audience, now)?.expires_at)
}
