//! Turns the raw command line ([`crate::cli`]) and the environment into one validated [`Config`] before
//! any work starts. This is the only module that reads environment variables (besides clap's
//! `IAP_TOKEN_*`): `KUBERNETES_EXEC_INFO`, `GOOGLE_APPLICATION_CREDENTIALS`, `CLOUDSDK_CONFIG`,
//! `GCE_METADATA_HOST`, `CI`, `BROWSER`, `DISPLAY`/`WAYLAND_DISPLAY`, and the external-account opt-in.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{self, AuthArgs, CacheArgs, Cli, Command, FormatArg, LoginArgs, NetArgs, SourceArg, StoreArg};
use crate::error::{Error, Result, clean};
use crate::http::NetSettings;
use crate::output::{ExecApiVersion, Format};

/// Google's default endpoints.
pub const DEFAULT_AUTH_URI: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_REVOKE_URI: &str = "https://oauth2.googleapis.com/revoke";
pub const DEFAULT_SECRET_MANAGER: &str = "https://secretmanager.googleapis.com";
pub const DEFAULT_IAM_CREDENTIALS: &str = "https://iamcredentials.googleapis.com";
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Upper bounds of the timeouts: an hour per request, a day for a sign-in.
const MAX_TIMEOUT_SECS: u64 = 3600;
const MAX_LOGIN_TIMEOUT_SECS: u64 = 86_400;

/// The validated configuration of one run.
#[derive(Debug)]
pub struct Config {
    pub verbosity: u8,
    pub action: Action,
}

#[derive(Debug)]
pub enum Action {
    Token { settings: Settings, format: Format },
    Login(Settings),
    Logout { settings: Settings, all: bool, revoke: bool },
    Status { settings: Settings, json: bool },
    GitCredential { settings: Settings, action: String },
    Completions(clap_complete::Shell),
}

/// Everything a credential lookup needs: what to ask for, from where, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    pub audience: Option<String>,
    pub source: SourceArg,
    pub client_id: Option<String>,
    pub account: Option<String>,
    pub client_secret: Option<ClientSecretSource>,
    pub key_file: Option<PathBuf>,
    pub impersonate: Option<String>,
    pub adc: AdcEnv,
    pub endpoints: Endpoints,
    pub cache: CacheSettings,
    pub login: LoginSettings,
    pub net: NetSettings,
}

/// Where the desktop client's secret comes from (the first one set wins).
#[derive(Debug, Clone)]
pub enum ClientSecretSource {
    Inline(crate::secret::Secret<String>),
    File(PathBuf),
    SecretManager(String),
}

/// Application Default Credentials as the environment describes them.
#[derive(Debug, Clone, Default)]
pub struct AdcEnv {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    pub explicit_file: Option<PathBuf>,
    /// Where gcloud keeps `application_default_credentials.json` (checked for existence only when needed).
    pub well_known_file: Option<PathBuf>,
    /// `GCE_METADATA_HOST` or the default.
    pub metadata_host: String,
    /// `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`.
    pub allow_executables: bool,
}

/// Endpoint overrides; `None` means the credential file's value or Google's default.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub auth_uri: Option<String>,
    pub token_uri: Option<String>,
    pub revoke_uri: Option<String>,
    pub secret_manager: String,
    pub iam_credentials: String,
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub min_ttl: i64,
    pub force_refresh: bool,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub store: StoreArg,
    pub dirs_given: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub no_browser: bool,
    pub browser: Option<String>,
    pub listen_port: u16,
    pub timeout: Duration,
    non_interactive: bool,
    ci: bool,
    has_display: bool,
    kubectl_gives_no_stdin: bool,
}

/// How a sign-in may run, decided only when one is needed (it looks for a terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInMode {
    /// Open a browser on the loopback listener.
    Browser,
    /// Print the URL and read the pasted redirect URL or code from the terminal.
    Paste,
    /// No sign-in may run; the reason says why.
    Forbidden(String),
}

impl LoginSettings {
    pub fn mode(&self) -> SignInMode {
        let can_paste = !self.kubectl_gives_no_stdin && crate::terminal::available();
        let can_open_browser = self.browser.is_some() || self.has_display;
        if self.non_interactive {
            SignInMode::Forbidden("a sign-in is needed but --non-interactive is set".into())
        } else if self.ci {
            SignInMode::Forbidden("a sign-in is needed but CI is set, which means non-interactive".into())
        } else if self.no_browser || !can_open_browser {
            if can_paste {
                SignInMode::Paste
            } else if self.no_browser && self.kubectl_gives_no_stdin {
                SignInMode::Forbidden(
                    "a sign-in is needed but --no-browser needs a terminal to paste the code into, and kubectl runs this plugin without one (interactive: false)".into(),
                )
            } else if self.no_browser {
                SignInMode::Forbidden(
                    "a sign-in is needed but --no-browser needs a terminal to paste the code into, and there is none"
                        .into(),
                )
            } else {
                SignInMode::Forbidden(
                    "a sign-in is needed but no browser can be opened (no --browser, $BROWSER or display) and there is no terminal".into(),
                )
            }
        } else {
            SignInMode::Browser
        }
    }
}

/// What `KUBERNETES_EXEC_INFO` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo {
    pub api_version: ExecApiVersion,
    pub interactive: Option<bool>,
    pub cluster: ClusterConfig,
}

/// Per-cluster defaults from the kubeconfig cluster extension `client.authentication.k8s.io/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    pub audience: Option<String>,
    pub client_id: Option<String>,
    pub account: Option<String>,
    pub impersonate_service_account: Option<String>,
}

/// A read-only view of the process environment, so that tests can build configs without touching it.
pub trait Environment {
    /// The variable's value; `None` when it is unset, empty, or not UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// Whether the variable is present at all, even empty.
    fn is_set(&self, name: &str) -> bool;
}

/// The real process environment.
pub struct ProcessEnv;

#[allow(clippy::disallowed_methods, reason = "the one place that reads the process environment")]
impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some()
    }
}

impl Config {
    pub fn from_cli(cli: Cli, env: &dyn Environment) -> Result<Config> {
        let verbosity = if cli.quiet { 0 } else { 1 + cli.verbose };
        let exec_info = match env.var("KUBERNETES_EXEC_INFO") {
            Some(text) => Some(parse_exec_info(&text)?),
            None => None,
        };
        let action = match cli.command {
            Command::Token(cli::TokenArgs { auth, output, cache, login, net }) => {
                let format = output_format(&output, exec_info.as_ref())?;
                let settings = settings(auth, cache, Some(login), net, exec_info.as_ref(), env)?;
                require_audience(&settings)?;
                Action::Token { settings, format }
            }
            Command::Login(cli::LoginCommandArgs { auth, cache, login, net }) => {
                let settings = settings(auth, cache, Some(login), net, exec_info.as_ref(), env)?;
                if settings.client_id.is_none() {
                    return Err(Error::Usage(
                        "login needs --client-id (the desktop OAuth client id): the browser sign-in is for the user source only".into(),
                    ));
                }
                Action::Login(settings)
            }
            Command::Logout(cli::LogoutArgs { auth, cache, all, revoke, net }) => {
                let settings = settings(auth, cache, None, net, exec_info.as_ref(), env)?;
                Action::Logout { settings, all, revoke }
            }
            Command::Status(cli::StatusArgs { auth, cache, format }) => {
                let settings = settings(auth, cache, None, NetArgs::default(), exec_info.as_ref(), env)?;
                Action::Status { settings, json: format == cli::StatusFormat::Json }
            }
            Command::GitCredential(cli::GitCredentialArgs { auth, cache, login, net, action }) => {
                let settings = settings(auth, cache, Some(login), net, exec_info.as_ref(), env)?;
                Action::GitCredential { settings, action }
            }
            Command::GenerateUserIdToken(cli::GenerateUserIdTokenArgs {
                desktop_client_id,
                desktop_client_secret_gcp_secret_name,
                webapp_client_id,
                project,
                cache,
                login,
                net,
            }) => {
                let auth = AuthArgs {
                    audience: Some(webapp_client_id),
                    source: SourceArg::User,
                    client_id: Some(desktop_client_id),
                    client_secret_from_secret_manager: Some(format!(
                        "projects/{project}/secrets/{desktop_client_secret_gcp_secret_name}/versions/latest"
                    )),
                    ..AuthArgs::default()
                };
                let settings = settings(auth, cache, Some(login), net, None, env)?;
                Action::Token { settings, format: Format::Token }
            }
            Command::GenerateServiceAccountIdToken(cli::GenerateServiceAccountIdTokenArgs {
                webapp_client_id,
                service_account_key,
                cache,
                net,
            }) => {
                let auth = AuthArgs { audience: Some(webapp_client_id), service_account_key, ..AuthArgs::default() };
                let settings = settings(auth, cache, None, net, None, env)?;
                Action::Token { settings, format: Format::Token }
            }
            Command::Completions(cli::CompletionsArgs { shell }) => Action::Completions(shell),
        };
        Ok(Config { verbosity, action })
    }
}

fn require_audience(settings: &Settings) -> Result<()> {
    if settings.audience.is_none() {
        return Err(Error::Usage(
            "--audience is required: the OAuth client id of the IAP-protected service (or set it in the kubeconfig cluster extension)".into(),
        ));
    }
    Ok(())
}

fn output_format(output: &cli::OutputArgs, exec_info: Option<&ExecInfo>) -> Result<Format> {
    let api_version = exec_info.map(|info| info.api_version).unwrap_or(ExecApiVersion::V1);
    let header = output.header_name.trim();
    if output.format == FormatArg::Header
        && (header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(Error::Usage(format!("--header-name '{}' is not a valid HTTP header name", clean(header, 80))));
    }
    Ok(match output.format {
        FormatArg::Auto if exec_info.is_some() => Format::ExecCredential(api_version),
        FormatArg::Auto | FormatArg::Token => Format::Token,
        FormatArg::ExecCredential => Format::ExecCredential(api_version),
        FormatArg::Json => Format::Json,
        FormatArg::Header => Format::Header(header.to_string()),
    })
}

fn settings(
    auth: AuthArgs,
    cache: CacheArgs,
    login: Option<LoginArgs>,
    net: NetArgs,
    exec_info: Option<&ExecInfo>,
    env: &dyn Environment,
) -> Result<Settings> {
    let cluster = exec_info.map(|info| info.cluster.clone()).unwrap_or_default();
    let non_empty = |value: Option<String>| value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let audience = non_empty(auth.audience).or(non_empty(cluster.audience));
    let client_id = non_empty(auth.client_id).or(non_empty(cluster.client_id));
    let account = non_empty(auth.account).or(non_empty(cluster.account));
    let impersonate = non_empty(auth.impersonate_service_account).or(non_empty(cluster.impersonate_service_account));

    let client_secret = if let Some(secret) = auth.client_secret {
        Some(ClientSecretSource::Inline(secret))
    } else if let Some(path) = auth.client_secret_file {
        Some(ClientSecretSource::File(path))
    } else if let Some(name) = auth.client_secret_from_secret_manager {
        Some(ClientSecretSource::SecretManager(secret_version_name(&name)?))
    } else {
        None
    };

    let endpoints = Endpoints {
        auth_uri: checked_url(net.auth_uri, "--auth-uri")?,
        token_uri: checked_url(net.token_uri, "--token-uri")?,
        revoke_uri: checked_url(net.revoke_uri, "--revoke-uri")?,
        secret_manager: base_url(net.secret_manager_endpoint, DEFAULT_SECRET_MANAGER, "--secret-manager-endpoint")?,
        iam_credentials: base_url(net.iam_credentials_endpoint, DEFAULT_IAM_CREDENTIALS, "--iam-credentials-endpoint")?,
    };
    if !(1..=MAX_TIMEOUT_SECS).contains(&net.timeout) {
        return Err(Error::Usage(format!("--timeout must be between 1 and {MAX_TIMEOUT_SECS} seconds")));
    }
    let net = NetSettings { timeout: Duration::from_secs(net.timeout), ca_file: net.ca_file };

    let adc = AdcEnv {
        explicit_file: env.var("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
        well_known_file: well_known_adc(env),
        metadata_host: env.var("GCE_METADATA_HOST").unwrap_or_else(|| DEFAULT_METADATA_HOST.into()),
        allow_executables: env.var("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES").as_deref() == Some("1"),
    };

    let mut dirs_given = Vec::new();
    if let Some(dir) = &cache.cache_dir {
        dirs_given.push(format!("--cache-dir {}", shell_word(&dir.display().to_string())));
    }
    if let Some(dir) = &cache.state_dir {
        dirs_given.push(format!("--state-dir {}", shell_word(&dir.display().to_string())));
    }
    if cache.store != StoreArg::Auto {
        dirs_given.push(format!("--store {}", if cache.store == StoreArg::File { "file" } else { "keyring" }));
    }
    let cache = CacheSettings {
        min_ttl: i64::try_from(cache.min_ttl).map_err(|_| Error::Usage("--min-ttl is too large".into()))?,
        force_refresh: cache.force_refresh,
        dir: match cache.cache_dir {
            Some(dir) => dir,
            None => default_dir(dirs::cache_dir(), "cache", "--cache-dir")?,
        },
        state_dir: match cache.state_dir {
            Some(dir) => dir,
            None => default_dir(dirs::state_dir().or_else(dirs::data_local_dir), "state", "--state-dir")?,
        },
        store: cache.store,
        dirs_given,
    };

    let login = login_settings(login.unwrap_or_default(), exec_info, env)?;
    Ok(Settings {
        audience,
        source: auth.source,
        client_id,
        account,
        client_secret,
        key_file: auth.service_account_key,
        impersonate,
        adc,
        endpoints,
        cache,
        login,
        net,
    })
}

fn login_settings(login: LoginArgs, exec_info: Option<&ExecInfo>, env: &dyn Environment) -> Result<LoginSettings> {
    if !(1..=MAX_LOGIN_TIMEOUT_SECS).contains(&login.login_timeout) {
        return Err(Error::Usage(format!("--login-timeout must be between 1 and {MAX_LOGIN_TIMEOUT_SECS} seconds")));
    }
    Ok(LoginSettings {
        no_browser: login.no_browser,
        browser: login.browser.or_else(|| env.var("BROWSER")),
        listen_port: login.listen_port,
        timeout: Duration::from_secs(login.login_timeout),
        non_interactive: login.non_interactive,
        ci: env.var("CI").is_some(),
        has_display: env.var("DISPLAY").is_some()
            || env.var("WAYLAND_DISPLAY").is_some()
            || env.var("WSL_DISTRO_NAME").is_some()
            || !cfg!(target_os = "linux"),
        kubectl_gives_no_stdin: exec_info.and_then(|info| info.interactive) == Some(false),
    })
}

fn default_dir(base: Option<PathBuf>, what: &str, flag: &str) -> Result<PathBuf> {
    base.map(|dir| dir.join("iap-token")).ok_or_else(|| {
        Error::config(format!("could not find this user's {what} directory (is HOME set?)"), format!("set {flag}"))
    })
}

fn well_known_adc(env: &dyn Environment) -> Option<PathBuf> {
    let config_dir = match env.var("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None if cfg!(windows) => PathBuf::from(env.var("APPDATA")?).join("gcloud"),
        None => PathBuf::from(env.var("HOME")?).join(".config").join("gcloud"),
    };
    Some(config_dir.join("application_default_credentials.json"))
}

fn checked_url(url: Option<String>, flag: &str) -> Result<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    crate::http::check_url(&url).map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
    Ok(Some(url))
}

/// A base URL override, checked; Google's default needs no check (and the cache-hit path no URL parser).
fn base_url(url: Option<String>, default: &str, flag: &str) -> Result<String> {
    let Some(url) = url else { return Ok(default.to_string()) };
    crate::http::check_url(&url).map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
    Ok(url.trim_end_matches('/').to_string())
}

/// `projects/P/secrets/S` or `projects/P/secrets/S/versions/V`, completed to a version name.
pub fn secret_version_name(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.trim().split('/').collect();
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match parts.as_slice() {
        ["projects", p, "secrets", s] if valid(p) && valid(s) => {
            Ok(format!("projects/{p}/secrets/{s}/versions/latest"))
        }
        ["projects", p, "secrets", s, "versions", v] if valid(p) && valid(s) && valid(v) => Ok(name.trim().to_string()),
        _ => Err(Error::Usage(format!(
            "--client-secret-from-secret-manager '{}' is not projects/PROJECT/secrets/SECRET[/versions/VERSION]",
            clean(name, 200)
        ))),
    }
}

/// Parses `KUBERNETES_EXEC_INFO` as kubectl sets it.
pub fn parse_exec_info(text: &str) -> Result<ExecInfo> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        #[serde(default)]
        spec: Spec,
    }
    #[derive(Deserialize, Default)]
    struct Spec {
        interactive: Option<bool>,
        cluster: Option<Cluster>,
    }
    #[derive(Deserialize)]
    struct Cluster {
        config: Option<serde_json::Value>,
    }
    let fix = "KUBERNETES_EXEC_INFO is set by kubectl; if you set it by hand, unset it, else check the kubeconfig's exec stanza";
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        Error::config(
            format!("KUBERNETES_EXEC_INFO is not a valid ExecCredential ({})", clean(&e.to_string(), 120)),
            fix,
        )
    })?;
    let api_version = match raw.api_version.as_deref() {
        None | Some("client.authentication.k8s.io/v1") => ExecApiVersion::V1,
        Some("client.authentication.k8s.io/v1beta1") => ExecApiVersion::V1beta1,
        Some(other) => {
            return Err(Error::config(
                format!("KUBERNETES_EXEC_INFO asks for apiVersion '{}', which is not supported", clean(other, 80)),
                "use apiVersion client.authentication.k8s.io/v1 (or v1beta1) in the kubeconfig's exec stanza",
            ));
        }
    };
    let cluster = match raw.spec.cluster.and_then(|c| c.config) {
        None | Some(serde_json::Value::Null) => ClusterConfig::default(),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            Error::config(
                format!(
                    "the kubeconfig cluster extension client.authentication.k8s.io/exec is not usable ({})",
                    clean(&e.to_string(), 120)
                ),
                "give it string keys audience, clientId, account, impersonateServiceAccount",
            )
        })?,
    };
    Ok(ExecInfo { api_version, interactive: raw.spec.interactive, cluster })
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@=,+".contains(&b)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_info_versions_and_cluster_config() {
        let info = parse_exec_info(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#).unwrap();
        assert_eq!(info.api_version, ExecApiVersion::V1beta1);
        assert_eq!(info.interactive, Some(false));
        let info = parse_exec_info(
            r#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true,"cluster":{"server":"https://x","config":{"audience":"aud-1","clientId":"cid"}}}}"#,
        )
        .unwrap();
        assert_eq!(info.cluster.audience.as_deref(), Some("aud-1"));
        assert_eq!(info.cluster.client_id.as_deref(), Some("cid"));
        assert!(parse_exec_info("junk").unwrap_err().to_string().contains("not a valid ExecCredential"));
        let err = parse_exec_info(r#"{"apiVersion":"client.authentication.k8s.io/v2"}"#).unwrap_err();
        assert!(err.to_string().contains("'client.authentication.k8s.io/v2', which is not supported"));
    }

    #[test]
    fn secret_names() {
        assert_eq!(secret_version_name("projects/p/secrets/s").unwrap(), "projects/p/secrets/s/versions/latest");
        assert_eq!(secret_version_name("projects/p/secrets/s/versions/3").unwrap(), "projects/p/secrets/s/versions/3");
        assert!(secret_version_name("projects/p/secrets/../x").is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("abc.apps.googleusercontent.com"), "abc.apps.googleusercontent.com");
        assert_eq!(shell_word("a b'c"), r"'a b'\''c'");
    }
}
