//! `iap-token status`: whether this configuration can serve a token now without a browser, and what from.
//! Ready (exit 0) only when it really can: a fresh cached token, a stored refresh token, a service-account
//! key that parses, a metadata server that answers within a second. Otherwise exit 3 when a sign-in is
//! what is missing, else exit 1 with the reason. No token is minted and nothing is written.

use std::process::ExitCode;
use std::time::Duration;

use crate::cache::file::Cache;
use crate::cache::{Entry, TokenKind};
use crate::clock::unix_now;
use crate::config::Settings;
use crate::credential::TokenType;
use crate::error::{EXIT_SIGN_IN_REQUIRED, Error, Result};
use crate::google::adc::{CredentialFile, ExternalAccount};
use crate::google::metadata;
use crate::http::{Http, NetSettings};
use crate::output::status::{Readiness, Status, StatusEntry};
use crate::output::{self, rfc3339};
use crate::source::{self, Credentials, Source};
use crate::store::TokenStore;
use crate::{cache_key, signed_jwt, url_cache_key};
use crate::{jwt, user};

/// How long a metadata server has to answer before `status` calls it absent.
const METADATA_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn run(settings: &Settings, json: bool) -> Result<ExitCode> {
    let report = check(settings)?;
    let code = match (&report.reason, &report.sign_in_command) {
        (None, _) => ExitCode::SUCCESS,
        (Some(_), Some(_)) => ExitCode::from(EXIT_SIGN_IN_REQUIRED),
        (Some(_), None) => ExitCode::FAILURE,
    };
    if json {
        output::write_json(&report)?;
    } else {
        output::write_text(&output::status::text(&report))?;
    }
    Ok(code)
}

/// What `status` reports for `settings`: the cached tokens it would be served from, and whether a
/// token can be served now. Also the readiness test of `profiles` and `doctor`.
pub fn check(settings: &Settings) -> Result<Status> {
    let cache = Cache::new(settings.cache.dir.clone());
    let now = unix_now();
    let min_ttl = settings.cache.min_ttl;
    let describe = |entry: Entry| StatusEntry {
        token_type: match entry.kind {
            TokenKind::SignedJwt => TokenType::SignedJwt.as_str(),
            TokenKind::IdToken | TokenKind::AccessToken => TokenType::IdToken.as_str(),
        },
        fresh: entry.is_fresh(now, min_ttl),
        expires_at: rfc3339(entry.serve_until(min_ttl)),
        source: entry.source.map(|kind| kind.as_str()).unwrap_or_default().to_string(),
        audience: entry.audience,
        principal: entry.principal,
    };
    let source = source::resolve(settings)?;
    let signed_in = match &source {
        Source::User { client_id, account } => Some(
            TokenStore::open(settings.cache.state_dir.clone(), settings.cache.store)?
                .load(client_id, account.as_deref())?
                .is_some(),
        ),
        _ => None,
    };
    // With an audience or URL: the one entry this configuration is served from. Without: the tokens of
    // this type cached for this source kind (other sources' tokens say nothing about this configuration).
    let signed = settings.token_type == TokenType::SignedJwt;
    let key = match (&settings.audience, &settings.url) {
        (None, None) => None,
        _ if signed => Some(signed_jwt::key(&source, &signed_jwt::audience(settings)?)),
        (Some(audience), _) => Some(cache_key(&source, audience)),
        (None, Some(url)) => Some(url_cache_key(&source, url)),
    };
    let kind = if signed { TokenKind::SignedJwt } else { TokenKind::IdToken };
    let entries: Vec<StatusEntry> = match &key {
        Some(key) => cache.read(key).into_iter().map(describe).collect(),
        None => cache
            .entries()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| entry.kind == kind && entry.source == Some(source.kind()))
            .map(describe)
            .collect(),
    };
    let readiness = if signed && matches!(source, Source::User { .. }) {
        Readiness::NotReady(signed_jwt::USER_CANNOT_SIGN.into())
    } else if key.is_some() && entries.iter().any(|e| e.fresh) {
        Readiness::Ready
    } else {
        readiness(settings, &source, signed_in)
    };
    Ok(Status::new(source.kind().as_str(), settings.token_type.as_str(), signed_in, entries, readiness))
}

/// Whether `source` can mint a token now without a browser, checked without minting one.
fn readiness(settings: &Settings, source: &Source, signed_in: Option<bool>) -> Readiness {
    let checked = match source {
        Source::User { .. } if signed_in == Some(true) => Ok(()),
        Source::User { .. } => return Readiness::SignInNeeded { command: user::login_command(settings) },
        Source::ServiceAccountKey { key } => jwt::check_rs256_key(&key.private_key),
        Source::Impersonation { via, .. } => match via.as_ref() {
            Credentials::File { file, .. } => file_can_mint(file),
            Credentials::Metadata { host } => probe_metadata(settings, host),
        },
        Source::ExternalAccount { account, .. } => subject_token_available(account),
        Source::Metadata { host, auto: true, skipped_adc } => probe_metadata(settings, host).map_err(|e| {
            let adc = skipped_adc.as_deref().map(|why| format!(" ({why})")).unwrap_or_default();
            Error::config(
                format!("no credentials found: nothing is configured{adc}, and {e}"),
                "sign in with --client-id, or set --service-account-key / GOOGLE_APPLICATION_CREDENTIALS, or run 'gcloud auth application-default login' and use --impersonate-service-account",
            )
        }),
        Source::Metadata { host, auto: false, .. } => probe_metadata(settings, host),
    };
    match checked {
        Ok(()) => Readiness::Ready,
        Err(e) => Readiness::NotReady(e.render_plain()),
    }
}

/// Whether a credential file can yield access tokens without a browser.
fn file_can_mint(file: &CredentialFile) -> Result<()> {
    match file {
        CredentialFile::ServiceAccount(key) => jwt::check_rs256_key(&key.private_key),
        // A refresh token is there; only Google can tell whether it still works.
        CredentialFile::AuthorizedUser(_) => Ok(()),
        CredentialFile::Impersonated(imp) => file_can_mint(&imp.source),
        CredentialFile::ExternalAccount(account) => subject_token_available(account),
    }
}

/// Whether the external account's subject token can be read: its file exists, or a URL or an allowed
/// executable provides it.
fn subject_token_available(account: &ExternalAccount) -> Result<()> {
    let source = &account.credential_source;
    if let Some(path) = &source.file {
        return std::fs::metadata(path).map(drop).map_err(|e| {
            Error::io(format!("the external account's subject token file {} cannot be read", path.display()), e)
        });
    }
    Ok(())
}

/// Whether a metadata server answers at `host` within [`METADATA_PROBE_TIMEOUT`].
fn probe_metadata(settings: &Settings, host: &str) -> Result<()> {
    let net = NetSettings { timeout: METADATA_PROBE_TIMEOUT, ca_file: settings.net.ca_file.clone() };
    metadata::email(&Http::new(&net)?, host).map(drop).map_err(|e| {
        Error::config(
            format!("no metadata server answered at {host} within 1 s ({e})"),
            "run on Google Cloud or configure another source",
        )
    })
}
