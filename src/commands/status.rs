//! `iap-token status`: whether this configuration can serve a token now without a browser, and what from.
//! Ready (exit 0) only when it really can: a fresh cached token, a stored refresh token, a service-account
//! key that parses, a metadata server that answers within a second. Otherwise exit 3 when a sign-in is
//! what is missing, else exit 1 with the reason. No token is minted and nothing is written.

use std::process::ExitCode;
use std::time::Duration;

use crate::cache::file::Cache;
use crate::cache::{Entry, TokenKind};
use crate::cache_key;
use crate::clock::unix_now;
use crate::config::Settings;
use crate::error::{EXIT_SIGN_IN_REQUIRED, Error, Result};
use crate::google::adc::{CredentialFile, ExternalAccount};
use crate::google::metadata;
use crate::http::{Http, NetSettings};
use crate::output::status::{Readiness, Status, StatusEntry};
use crate::output::{self, rfc3339};
use crate::source::{self, Credentials, Source};
use crate::store::TokenStore;
use crate::{jwt, user};

/// How long a metadata server has to answer before `status` calls it absent.
const METADATA_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn run(settings: &Settings, json: bool) -> Result<ExitCode> {
    let cache = Cache::new(settings.cache.dir.clone());
    let now = unix_now();
    let min_ttl = settings.cache.min_ttl;
    let describe = |entry: Entry| StatusEntry {
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
    // With an audience: the one entry this configuration is served from. Without: the ID tokens cached
    // for this source kind (other sources' tokens say nothing about this configuration).
    let entries: Vec<StatusEntry> = match &settings.audience {
        Some(audience) => cache.read(&cache_key(&source, audience)).into_iter().map(describe).collect(),
        None => cache
            .entries()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| entry.kind == TokenKind::IdToken && entry.source == Some(source.kind()))
            .map(describe)
            .collect(),
    };
    let readiness = if settings.audience.is_some() && entries.iter().any(|e| e.fresh) {
        Readiness::Ready
    } else {
        readiness(settings, &source, signed_in)
    };
    let code = match &readiness {
        Readiness::Ready => ExitCode::SUCCESS,
        Readiness::SignInNeeded { .. } => ExitCode::from(EXIT_SIGN_IN_REQUIRED),
        Readiness::NotReady(_) => ExitCode::FAILURE,
    };
    let report = Status::new(source.kind().as_str(), signed_in, entries, readiness);
    if json {
        output::write_json(&report)?;
    } else {
        output::write_text(&output::status::text(&report))?;
    }
    Ok(code)
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
