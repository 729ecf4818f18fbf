//! Google credential files: service-account keys, `authorized_user` files from
//! `gcloud auth application-default login`, `impersonated_service_account` and `external_account`
//! (Workload Identity Federation) configurations. This module only reads and checks them; the RSA key
//! inside a service-account key stays an opaque PEM string until a token is actually minted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, clean};
use crate::secret::Secret;

/// A parsed credential file.
#[derive(Debug, Clone)]
pub enum CredentialFile {
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
    Impersonated(Impersonated),
    ExternalAccount(Box<ExternalAccount>),
}

/// A service-account JSON key (`type: service_account`).
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key: Secret<String>,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
}

/// User credentials of `gcloud auth application-default login` (`type: authorized_user`).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub refresh_token: Secret<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
}

/// `type: impersonated_service_account`: source credentials that may act as `target`.
#[derive(Debug, Clone)]
pub struct Impersonated {
    pub target: String,
    pub delegates: Vec<String>,
    pub source: Box<CredentialFile>,
}

/// `type: external_account`: Workload Identity Federation.
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalAccount {
    pub audience: String,
    pub subject_token_type: String,
    #[serde(default = "default_sts_url")]
    pub token_url: String,
    #[serde(default)]
    pub service_account_impersonation_url: Option<String>,
    pub credential_source: CredentialSource,
}

/// Where an external account's subject token comes from.
#[derive(Debug, Clone, Deserialize)]
pub struct CredentialSource {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub format: Option<SubjectTokenFormat>,
    #[serde(default)]
    pub executable: Option<ExecutableSource>,
    #[serde(default)]
    pub environment_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubjectTokenFormat {
    #[serde(rename = "type", default = "default_format_type")]
    pub kind: String,
    #[serde(default)]
    pub subject_token_field_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExecutableSource {
    pub command: String,
    #[serde(default)]
    pub timeout_millis: Option<u64>,
    #[serde(default)]
    pub output_file: Option<PathBuf>,
}

fn default_sts_url() -> String {
    "https://sts.googleapis.com/v1/token".into()
}

fn default_format_type() -> String {
    "text".into()
}

#[derive(Deserialize)]
struct ImpersonatedRaw {
    service_account_impersonation_url: String,
    #[serde(default)]
    delegates: Vec<String>,
    source_credentials: serde_json::Value,
}

impl CredentialFile {
    /// The file's `type`, as Google spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialFile::ServiceAccount(_) => "service_account",
            CredentialFile::AuthorizedUser(_) => "authorized_user",
            CredentialFile::Impersonated(_) => "impersonated_service_account",
            CredentialFile::ExternalAccount(_) => "external_account",
        }
    }
}

/// Reads and parses a credential file; every failure names the file and how to fix it.
pub fn load(path: &Path) -> Result<CredentialFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            format!("could not read the credential file {}: {e}", path.display()),
            "check the path given by --service-account-key or GOOGLE_APPLICATION_CREDENTIALS",
        )
    })?;
    parse(&text).map_err(|e| e.context(format!("the credential file {} is not usable", path.display())))
}

const DOWNLOAD_AGAIN: &str = "download the JSON file again (a service-account key, or a configuration from 'gcloud iam workload-identity-pools create-cred-config')";

/// Parses the JSON of a credential file; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<CredentialFile> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::config(format!("not valid JSON ({e})"), DOWNLOAD_AGAIN))?;
    parse_value(value, 0)
}

fn parse_value(value: serde_json::Value, depth: u8) -> Result<CredentialFile> {
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| Error::config("it has no \"type\" field", DOWNLOAD_AGAIN))?
        .to_string();
    match kind.as_str() {
        "service_account" => Ok(CredentialFile::ServiceAccount(fields(value, &kind)?)),
        "authorized_user" => Ok(CredentialFile::AuthorizedUser(fields(value, &kind)?)),
        "external_account" => {
            let account: ExternalAccount = fields(value, &kind)?;
            Ok(CredentialFile::ExternalAccount(Box::new(account)))
        }
        "impersonated_service_account" if depth == 0 => {
            let raw: ImpersonatedRaw = fields(value, &kind)?;
            let target = impersonation_target(&raw.service_account_impersonation_url)?;
            let source =
                parse_value(raw.source_credentials, depth + 1).map_err(|e| e.context("its source_credentials"))?;
            Ok(CredentialFile::Impersonated(Impersonated {
                target,
                delegates: raw.delegates,
                source: Box::new(source),
            }))
        }
        "impersonated_service_account" => {
            Err(Error::config("impersonation chains nest only one level", DOWNLOAD_AGAIN))
        }
        other => Err(Error::config(
            format!(
                "type '{}' is not supported (expected service_account, authorized_user, impersonated_service_account or external_account)",
                clean(other, 60)
            ),
            DOWNLOAD_AGAIN,
        )),
    }
}

fn fields<T: DeserializeOwned>(value: serde_json::Value, kind: &str) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| Error::config(format!("a '{kind}' file {}", clean(&e.to_string(), 160)), DOWNLOAD_AGAIN))
}

/// The service-account email in `.../serviceAccounts/EMAIL:generateAccessToken`.
pub fn impersonation_target(url: &str) -> Result<String> {
    let email = url.rsplit_once("/serviceAccounts/").map(|(_, rest)| rest.split(':').next().unwrap_or_default());
    match email {
        Some(email) if !email.is_empty() && !email.contains('/') => Ok(email.to_string()),
        _ => Err(Error::config(
            format!("service_account_impersonation_url '{}' names no service account", clean(url, 200)),
            "fix service_account_impersonation_url in the file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        let sa = parse(r#"{"type":"service_account","client_email":"a@b","private_key":"PEM","private_key_id":"k"}"#)
            .unwrap();
        assert!(matches!(sa, CredentialFile::ServiceAccount(ref k) if k.client_email == "a@b"));
        let user =
            parse(r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#).unwrap();
        assert_eq!(user.kind(), "authorized_user");
        let imp = parse(
            r#"{"type":"impersonated_service_account","delegates":["d@x"],
                "service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/t@p.iam.gserviceaccount.com:generateAccessToken",
                "source_credentials":{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}}"#,
        )
        .unwrap();
        let CredentialFile::Impersonated(imp) = imp else { panic!() };
        assert_eq!(imp.target, "t@p.iam.gserviceaccount.com");
        assert_eq!(imp.delegates, vec!["d@x"]);
    }

    #[test]
    fn explains_bad_files() {
        let problem = |text: &str| parse(text).unwrap_err().to_string();
        assert!(problem("{").contains("not valid JSON"));
        assert!(problem("{}").contains("no \"type\""));
        assert!(problem(r#"{"type":"gdch"}"#).contains("type 'gdch' is not supported"));
        assert!(problem(r#"{"type":"service_account","private_key":"x"}"#).contains("client_email"));
    }
}
