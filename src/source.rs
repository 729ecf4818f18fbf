//! Where tokens come from. [`resolve`] picks the source from the configuration (first match wins with
//! `--source auto`: user, impersonation, the ADC file's kind, the metadata server), reading at most small
//! JSON credential files; [`Source::cache_identity`] names what the cache key hashes. Minting a token
//! from a source is the use case's job (`crate::mint_id_token`); this module makes no request.

use std::path::{Path, PathBuf};

use crate::cache::CacheKey;
use crate::cli::SourceArg;
use crate::config::Settings;
use crate::credential::SourceKind;
use crate::error::{Error, Result};
use crate::google::adc::{self, CredentialFile, ExternalAccount, ServiceAccountKey};

/// A configured source of ID tokens.
#[derive(Debug, Clone)]
pub enum Source {
    User {
        client_id: String,
        account: Option<String>,
    },
    Impersonation {
        target: String,
        delegates: Vec<String>,
        via: Box<Credentials>,
    },
    ExternalAccount {
        path: PathBuf,
        account: Box<ExternalAccount>,
    },
    ServiceAccountKey {
        key: Box<ServiceAccountKey>,
    },
    /// `auto` tells whether it was picked because nothing else is configured (then a failure to reach it
    /// means "no credentials found"); `skipped_adc` says why gcloud's ADC file could not be used.
    Metadata {
        host: String,
        auto: bool,
        skipped_adc: Option<String>,
    },
}

/// Credentials that yield access tokens for Google APIs (Secret Manager, IAM Credentials).
#[derive(Debug, Clone)]
pub enum Credentials {
    File { path: PathBuf, file: Box<CredentialFile> },
    Metadata { host: String },
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::User { .. } => SourceKind::User,
            Source::Impersonation { .. } => SourceKind::Impersonation,
            Source::ExternalAccount { .. } => SourceKind::ExternalAccount,
            Source::ServiceAccountKey { .. } => SourceKind::ServiceAccountKey,
            Source::Metadata { .. } => SourceKind::Metadata,
        }
    }

    /// What, besides the source kind and the audience, decides which token this source yields.
    pub fn cache_identity(&self) -> Vec<String> {
        match self {
            Source::User { client_id, account } => {
                vec![client_id.clone(), account.clone().unwrap_or_default()]
            }
            Source::Impersonation { target, delegates, via } => {
                vec![target.clone(), delegates.join(","), via.identity()]
            }
            Source::ExternalAccount { account, .. } => {
                vec![account.audience.clone(), account.service_account_impersonation_url.clone().unwrap_or_default()]
            }
            Source::ServiceAccountKey { key, .. } => vec![key.client_email.clone()],
            Source::Metadata { host, .. } => vec![host.clone()],
        }
    }
}

impl Credentials {
    /// What identifies these credentials in a cache key.
    pub fn identity(&self) -> String {
        match self {
            Credentials::File { file, .. } => file_identity(file),
            Credentials::Metadata { host } => format!("metadata:{host}"),
        }
    }
}

/// Who a credential file acts as, as far as the file tells. gcloud writes every `authorized_user` file
/// with the same client id, so that kind is told apart by (a hash of) its refresh token: after
/// `gcloud auth application-default login` as someone else, the old account's tokens are not reused.
fn file_identity(file: &CredentialFile) -> String {
    match file {
        CredentialFile::ServiceAccount(key) => key.client_email.clone(),
        CredentialFile::AuthorizedUser(user) => {
            format!("authorized_user:{}:{}", user.client_id, CacheKey::new(&[user.refresh_token.expose()]).as_str())
        }
        CredentialFile::Impersonated(imp) => format!("impersonated:{}:{}", imp.target, file_identity(&imp.source)),
        CredentialFile::ExternalAccount(account) => format!(
            "external_account:{}:{}",
            account.audience,
            account.service_account_impersonation_url.as_deref().unwrap_or_default()
        ),
    }
}

/// The token URI: `--token-uri`, else the credential file's, else Google's.
pub fn token_uri(settings: &Settings, from_file: Option<&str>) -> String {
    settings
        .endpoints
        .token_uri
        .clone()
        .or_else(|| from_file.map(str::to_string))
        .unwrap_or_else(|| crate::config::DEFAULT_TOKEN_URI.to_string())
}

const AUTHORIZED_USER_FIX: &str = "an authorized_user file (from 'gcloud auth application-default login') cannot mint ID tokens for IAP; \
use the browser sign-in (--client-id with a desktop OAuth client) or a service account (--impersonate-service-account EMAIL, or a key)";

/// Picks the source for this configuration.
pub fn resolve(settings: &Settings) -> Result<Source> {
    let user =
        || settings.client_id.clone().map(|client_id| Source::User { client_id, account: settings.account.clone() });
    let explicit_file = settings.key_file.as_ref().or(settings.adc.explicit_file.as_ref());
    match settings.source {
        SourceArg::User => {
            user().ok_or_else(|| Error::Usage("--source user needs --client-id (the desktop OAuth client id)".into()))
        }
        SourceArg::Metadata => {
            Ok(Source::Metadata { host: settings.adc.metadata_host.clone(), auto: false, skipped_adc: None })
        }
        SourceArg::ServiceAccountKey => {
            let path = explicit_file.ok_or_else(|| {
                Error::Usage(
                    "--source service-account-key needs --service-account-key PATH or GOOGLE_APPLICATION_CREDENTIALS"
                        .into(),
                )
            })?;
            match adc::load(path)? {
                CredentialFile::ServiceAccount(key) => Ok(Source::ServiceAccountKey { key: Box::new(key) }),
                other => Err(wrong_type(path, &other, "service_account")),
            }
        }
        SourceArg::Impersonation => {
            if let Some(target) = &settings.impersonate {
                return impersonate(settings, target);
            }
            let missing = || {
                Error::Usage("--source impersonation needs --impersonate-service-account EMAIL or an impersonated_service_account ADC file".into())
            };
            let path = explicit_file.or(well_known_file(settings)).ok_or_else(missing)?;
            match adc::load(path)? {
                file @ CredentialFile::Impersonated(_) => from_file(path.clone(), file),
                other => Err(wrong_type(path, &other, "impersonated_service_account")),
            }
        }
        SourceArg::ExternalAccount => {
            let path = explicit_file.or(well_known_file(settings)).ok_or_else(|| {
                Error::Usage("--source external-account needs GOOGLE_APPLICATION_CREDENTIALS pointing at an external_account file".into())
            })?;
            match adc::load(path)? {
                CredentialFile::ExternalAccount(account) => Ok(Source::ExternalAccount { path: path.clone(), account }),
                other => Err(wrong_type(path, &other, "external_account")),
            }
        }
        SourceArg::Auto => {
            if let Some(source) = user() {
                return Ok(source);
            }
            if let Some(target) = &settings.impersonate {
                return impersonate(settings, target);
            }
            if let Some(path) = explicit_file {
                return from_file(path.clone(), adc::load(path)?);
            }
            let mut skipped_adc = None;
            if let Some(path) = well_known_file(settings) {
                match adc::load(path) {
                    Ok(CredentialFile::AuthorizedUser(_)) => {
                        skipped_adc =
                            Some(format!("{} is an authorized_user file, which cannot mint ID tokens", path.display()));
                    }
                    Err(error) => skipped_adc = Some(error.to_string()),
                    Ok(file) => return from_file(path.clone(), file),
                }
            }
            Ok(Source::Metadata { host: settings.adc.metadata_host.clone(), auto: true, skipped_adc })
        }
    }
}

/// gcloud's ADC file, when it exists.
fn well_known_file(settings: &Settings) -> Option<&PathBuf> {
    settings.adc.well_known_file.as_ref().filter(|path| path.is_file())
}

fn from_file(path: PathBuf, file: CredentialFile) -> Result<Source> {
    match file {
        CredentialFile::ServiceAccount(key) => Ok(Source::ServiceAccountKey { key: Box::new(key) }),
        CredentialFile::ExternalAccount(account) => Ok(Source::ExternalAccount { path, account }),
        CredentialFile::Impersonated(imp) => Ok(Source::Impersonation {
            target: imp.target,
            delegates: imp.delegates,
            via: Box::new(Credentials::File { path, file: imp.source }),
        }),
        CredentialFile::AuthorizedUser(_) => Err(Error::config(
            format!("the credential file {} is of type authorized_user", path.display()),
            AUTHORIZED_USER_FIX,
        )),
    }
}

/// `--impersonate-service-account TARGET`, authorized by the ADC chain; an impersonated_service_account
/// ADC file lends its source credentials and delegates.
fn impersonate(settings: &Settings, target: &str) -> Result<Source> {
    let (via, delegates) = match access_credentials(settings)? {
        Credentials::File { path, file } => match *file {
            CredentialFile::Impersonated(imp) => (Credentials::File { path, file: imp.source }, imp.delegates),
            file => (Credentials::File { path, file: Box::new(file) }, Vec::new()),
        },
        other => (other, Vec::new()),
    };
    Ok(Source::Impersonation { target: target.to_string(), delegates, via: Box::new(via) })
}

/// The Application Default Credentials chain, for access tokens: `--service-account-key`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known file, then the metadata server.
pub fn access_credentials(settings: &Settings) -> Result<Credentials> {
    let explicit_file = settings.key_file.as_ref().or(settings.adc.explicit_file.as_ref());
    if let Some(path) = explicit_file.or(well_known_file(settings)) {
        return Ok(Credentials::File { path: path.clone(), file: Box::new(adc::load(path)?) });
    }
    Ok(Credentials::Metadata { host: settings.adc.metadata_host.clone() })
}

fn wrong_type(path: &Path, file: &CredentialFile, expected: &str) -> Error {
    let fix = if matches!(file, CredentialFile::AuthorizedUser(_)) {
        AUTHORIZED_USER_FIX.to_string()
    } else {
        format!("point it at a file of type {expected}, or use --source auto")
    };
    Error::config(format!("the credential file {} is of type {}, not {expected}", path.display(), file.kind()), fix)
}

pub fn not_on_google_cloud(error: Error, skipped_adc: Option<&str>) -> Error {
    if !matches!(error.root(), Error::Network { .. }) {
        return error;
    }
    let skipped = skipped_adc.map(|why| format!(" ({why})")).unwrap_or_default();
    Error::config(
        format!(
            "no credentials found: no --client-id, no --impersonate-service-account, no --service-account-key, \
no GOOGLE_APPLICATION_CREDENTIALS{skipped}, and no metadata server ({error})"
        ),
        "configure one: --client-id for a browser sign-in, --service-account-key PATH, --impersonate-service-account EMAIL, \
or run on Google Cloud (see 'iap-token token --help')",
    )
}
