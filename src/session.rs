//! One run's working context for a cache miss: the settings, the clock reading, the HTTP client (built
//! lazily, so the cache-hit path never loads CA certificates), and access tokens for Google APIs, cached
//! like ID tokens under the same margin rule. The session is what chooses credentials for a Google API
//! call; the API clients in [`crate::google`] take the bearer it hands them.

use std::cell::OnceCell;

use crate::cache::file::Cache;
use crate::cache::{CacheKey, ENTRY_VERSION, Entry, TokenKind, single_flight};
use crate::clock::unix_now;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::google::adc::{CredentialFile, ExternalAccount, impersonation_target};
use crate::google::{AccessToken, CLOUD_PLATFORM_SCOPE, iam, metadata, oauth, secret_manager, service_account, sts};
use crate::http::Http;
use crate::secret::Secret;
use crate::source::{Credentials, access_credentials, token_uri};

pub struct Session<'a> {
    settings: &'a Settings,
    http: OnceCell<Http>,
    now: i64,
}

impl<'a> Session<'a> {
    pub fn new(settings: &'a Settings) -> Session<'a> {
        Session { settings, http: OnceCell::new(), now: unix_now() }
    }

    pub fn settings(&self) -> &'a Settings {
        self.settings
    }

    /// The time this session started, Unix seconds.
    pub fn now(&self) -> i64 {
        self.now
    }

    pub fn cache(&self) -> Cache {
        Cache::new(self.settings.cache.dir.clone())
    }

    pub fn http(&self) -> Result<&Http> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = Http::new(&self.settings.net)?;
        Ok(self.http.get_or_init(|| http))
    }

    /// The text of a Secret Manager secret version, read with the Application Default Credentials.
    pub fn secret_manager_secret(&self, name: &str) -> Result<Secret<String>> {
        let bearer = self.access_token(&access_credentials(self.settings)?)?;
        secret_manager::access(self.http()?, &self.settings.endpoints.secret_manager, &bearer, name)
    }

    /// An access token (scope cloud-platform) of `credentials`, from the cache when fresh.
    /// An access token of the principal that impersonates `target` (its source credentials `via`); when
    /// those were left to a metadata server that is not there, says which credentials are missing.
    pub fn impersonating_bearer(&self, target: &str, via: &Credentials) -> Result<Secret<String>> {
        self.access_token(via).map_err(|error| match (via, error.root()) {
            (Credentials::Metadata { host }, Error::Network { .. }) => Error::config(
                format!(
                    "impersonating {target} needs source credentials, and none were found: no --service-account-key, no GOOGLE_APPLICATION_CREDENTIALS, no gcloud ADC file, and no metadata server at {host} ({error})"
                ),
                "run 'gcloud auth application-default login' (as someone allowed to impersonate it), or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key, or run on Google Cloud",
            ),
            _ => error,
        })
    }

    /// The service account the external account in `path` acts as, and a federated access token that
    /// may act as it.
    pub fn federated_bearer(
        &self,
        path: &std::path::Path,
        account: &ExternalAccount,
    ) -> Result<(String, Secret<String>)> {
        let url = account.service_account_impersonation_url.as_deref().ok_or_else(|| {
            Error::config(
                format!("the external_account file {} has no service_account_impersonation_url, and a federated identity cannot get tokens for IAP by itself", path.display()),
                "recreate it with 'gcloud iam workload-identity-pools create-cred-config ... --service-account=EMAIL' and grant the federated principal roles/iam.workloadIdentityUser on that service account",
            )
        })?;
        let target = impersonation_target(url)?;
        let federated = self.access_token(&Credentials::File {
            path: path.to_path_buf(),
            file: Box::new(CredentialFile::ExternalAccount(Box::new(account.clone()))),
        })?;
        Ok((target, federated))
    }

    pub fn access_token(&self, credentials: &Credentials) -> Result<Secret<String>> {
        let key = CacheKey::new(&["access_token", &credentials.identity(), CLOUD_PLATFORM_SCOPE]);
        let min_ttl = self.settings.cache.min_ttl;
        let fresh = |entry: &Entry| entry.kind == TokenKind::AccessToken && entry.is_fresh(unix_now(), min_ttl);
        let (entry, _) = single_flight(&self.cache(), &key, false, self.settings.net.timeout * 4, fresh, |_| {
            let access = self.mint_access_token(credentials).map_err(|e| {
                e.context(format!("could not get an access token for Google APIs from {}", describe(credentials)))
            })?;
            Ok(Entry {
                version: ENTRY_VERSION,
                kind: TokenKind::AccessToken,
                source: None,
                audience: CLOUD_PLATFORM_SCOPE.into(),
                principal: None,
                token: access.token,
                expires_at: access.expires_at,
                fetched_at: unix_now(),
                discovered: None,
            })
        })?;
        Ok(entry.token)
    }

    fn mint_access_token(&self, credentials: &Credentials) -> Result<AccessToken> {
        let http = self.http()?;
        match credentials {
            Credentials::Metadata { host } => metadata::access_token(http, host, self.now),
            Credentials::File { path, file } => match &**file {
                CredentialFile::ServiceAccount(key) => {
                    let uri = token_uri(self.settings, key.token_uri.as_deref());
                    service_account::access_token(http, key, &uri, CLOUD_PLATFORM_SCOPE, self.now)
                }
                CredentialFile::AuthorizedUser(user) => {
                    let uri = token_uri(self.settings, user.token_uri.as_deref());
                    let answer = oauth::refresh(
                        http,
                        &uri,
                        &user.client_id,
                        Some(&user.client_secret),
                        &user.refresh_token,
                        None,
                    )?;
                    Ok(AccessToken {
                        token: answer.access_token,
                        expires_at: self.now + answer.expires_in.unwrap_or(3600),
                    })
                }
                CredentialFile::Impersonated(imp) => {
                    let source = Credentials::File { path: path.clone(), file: imp.source.clone() };
                    let bearer = self.access_token(&source)?;
                    let endpoint = &self.settings.endpoints.iam_credentials;
                    iam::generate_access_token(http, endpoint, &bearer, &imp.target, &imp.delegates, self.now)
                }
                CredentialFile::ExternalAccount(account) => {
                    let subject = sts::subject_token(http, account, self.settings.adc.allow_executables, self.now)?;
                    sts::exchange(http, account, &subject, self.now)
                }
            },
        }
    }
}

fn describe(credentials: &Credentials) -> String {
    match credentials {
        Credentials::Metadata { .. } => "the metadata server".into(),
        Credentials::File { path, file } => format!("the {} file {}", file.kind(), path.display()),
    }
}
