//! Turns the raw command line ([`crate::cli`]) and the environment into one validated [`Config`] before
//! any work starts. This is the only module that reads environment variables (besides clap's
//! `IAP_TOKEN_*`): `KUBERNETES_EXEC_INFO` ([`exec_info`]), `GOOGLE_APPLICATION_CREDENTIALS`,
//! `CLOUDSDK_CONFIG`, `GCE_METADATA_HOST`, the external-account opt-in, and what decides how a sign-in may
//! run ([`sign_in`]: `CI`, `BROWSER`, `DISPLAY`/`WAYLAND_DISPLAY`). It owns the vocabulary of a run's
//! choices (output format, git action) that the layers below take as plain values.

pub mod env;
pub mod exec_info;
pub mod proxy;
pub mod sign_in;

use std::path::PathBuf;
use std::time::Duration;

pub use env::{Environment, ProcessEnv};
pub use exec_info::{ClusterConfig, ExecApiVersion, ExecInfo, parse_exec_info};
pub use proxy::ProxyOptions;
pub use sign_in::{LoginSettings, SignInMode};

use clap::ValueEnum;

use crate::cli::{
    self, AuthArgs, CacheArgs, Cli, Command, FormatArg, NetArgs, SourceArg, StoreArg, StoreArgs, TokenTypeArg,
};
use crate::credential::TokenType;
use crate::error::{Error, Result, clean};
use crate::http::NetSettings;
use crate::profiles::{self, ConfigFiles, ProfileValues};
use crate::secret::Secret;
use crate::store::StoreChoice;

/// Google's default endpoints.
pub const DEFAULT_AUTH_URI: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_REVOKE_URI: &str = "https://oauth2.googleapis.com/revoke";
pub const DEFAULT_SECRET_MANAGER: &str = "https://secretmanager.googleapis.com";
pub const DEFAULT_IAM_CREDENTIALS: &str = "https://iamcredentials.googleapis.com";
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// The upper bound of `--timeout`: an hour per request.
const MAX_TIMEOUT_SECS: u64 = 3600;

/// The validated configuration of one run.
#[derive(Debug)]
pub struct Config {
    pub action: Action,
}

#[derive(Debug)]
pub enum Action {
    Token { settings: Settings, format: Format },
    Login(Settings),
    Logout { settings: Settings, all: bool, revoke: bool },
    Status { settings: Settings, json: bool },
    GitCredential { target: GitTarget, action: GitAction },
    Completions(clap_complete::Shell),
    SecretManagerSecret { settings: Settings, name: String },
    Setup(Box<SetupPlan>),
    Doctor { settings: Box<Settings>, header_name: String, json: bool, config_files: Vec<PathBuf> },
    Profiles { profiles: Vec<ListedProfile>, json: bool },
    Proxy { settings: Box<Settings>, options: ProxyOptions },
}

/// What `setup` writes and prints.
#[derive(Debug)]
pub struct SetupPlan {
    /// The settings to discover the audience with (the URL, the `[defaults]`, the flags).
    pub settings: Settings,
    /// The profile to write (`--profile`, else the URL's host).
    pub profile: String,
    /// The user config file.
    pub file: PathBuf,
    /// The keys to write, as (key, value) in the order of the options; the audience is added after discovery.
    pub keys: Vec<(&'static str, String)>,
    /// A literal `--client-secret` (a desktop client's, which is not confidential), written as given.
    pub client_secret: Option<Secret<String>>,
    pub print: Option<cli::SetupPrint>,
}

/// One profile as `profiles` lists it.
#[derive(Debug)]
pub struct ListedProfile {
    pub name: String,
    pub url: Option<String>,
    /// The audience the profile sets (not one discovered).
    pub audience: Option<String>,
    /// Its settings, or why they cannot be built.
    pub settings: std::result::Result<Settings, String>,
}

/// The output formats of `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Token,
    ExecCredential(ExecApiVersion),
    Json,
    Header(String),
}

/// Whom `git-credential` answers for: the configuration on its helper line, or (with no option there)
/// only the URLs a profile's `url` matches, the settings then built per request.
#[derive(Debug)]
pub enum GitTarget {
    Fixed(Box<Settings>),
    ByProfileUrl(Box<GitByUrl>),
}

/// The options of a helper line without options (what the environment set), kept until git says which
/// URL it asks for.
#[derive(Debug)]
pub struct GitByUrl {
    auth: AuthArgs,
    cache: CacheArgs,
    login: cli::LoginArgs,
    net: NetArgs,
    files: ConfigFiles,
}

impl GitByUrl {
    /// The settings for git's `url`, from the profile whose `url` matches it; `None` when none does (the
    /// next helper in git's chain then answers). Neither the environment nor `default-profile` widens this.
    pub fn settings_for(self, url: &str, env: &dyn Environment) -> Result<Option<(String, Settings)>> {
        let Some(chosen) = self.files.choose(None, Some(url), false)? else { return Ok(None) };
        let auth = AuthArgs { url: None, profile: None, ..self.auth };
        let name = chosen.name.clone();
        let settings =
            Settings::new(auth, self.cache, Some(self.login), self.net, None, env, Some(chosen.name), &chosen.values)?;
        Ok(Some((name, settings)))
    }
}

/// What git asks a credential helper to do; actions git may add later are ignored, as git's
/// documentation asks of helpers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitAction {
    Get,
    Store,
    Erase,
    Capability,
    Unknown(String),
}

impl GitAction {
    pub fn parse(action: &str) -> GitAction {
        match action {
            "get" => GitAction::Get,
            "store" => GitAction::Store,
            "erase" => GitAction::Erase,
            "capability" => GitAction::Capability,
            other => GitAction::Unknown(other.to_string()),
        }
    }
}

/// Everything a credential lookup needs: what to ask for, from where, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The service behind IAP (`--url`), checked: https, or http to loopback.
    pub url: Option<String>,
    /// The profile asked for by name (`--profile`).
    pub profile: Option<String>,
    pub audience: Option<String>,
    pub source: SourceArg,
    pub token_type: TokenType,
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

impl Settings {
    /// How long to wait for another process's lock on a token or a login: it may be running a sign-in,
    /// then a few requests.
    pub fn lock_wait(&self) -> Duration {
        self.login.timeout + self.net.timeout * 4 + Duration::from_secs(5)
    }
}

/// Where the desktop client's secret comes from (the first one set wins).
#[derive(Debug, Clone)]
pub enum ClientSecretSource {
    Inline(Secret<String>),
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
    pub store: StoreChoice,
    /// The directory and store options as given, for the `iap-token login` command a hint prints.
    pub dirs_given: Vec<String>,
}

impl Config {
    pub fn from_cli(cli: Cli, env: &dyn Environment) -> Result<Config> {
        let exec_info = match env.var("KUBERNETES_EXEC_INFO") {
            Some(text) => Some(parse_exec_info(&text)?),
            None => None,
        };
        let action = action(cli.command, exec_info.as_ref(), env)?;
        Ok(Config { action })
    }
}

fn action(command: Command, exec_info: Option<&ExecInfo>, env: &dyn Environment) -> Result<Action> {
    let settings = |auth: AuthArgs, cache: CacheArgs, login, net| {
        let (name, profile) = chosen_profile(&auth, Some(&cache.dirs), env)?;
        Settings::new(auth, cache, login, net, exec_info, env, name, &profile)
    };
    Ok(match command {
        Command::Token(cli::TokenArgs { auth, output, cache, login, net }) => {
            let (name, profile) = chosen_profile(&auth, Some(&cache.dirs), env)?;
            let format = output_format(&output, exec_info, &profile)?;
            let settings = Settings::new(auth, cache, Some(login), net, exec_info, env, name, &profile)?;
            require_audience(&settings)?;
            Action::Token { settings, format }
        }
        Command::Login(cli::LoginCommandArgs { auth, dirs, login, net }) => {
            let settings = settings(auth, CacheArgs::with_dirs(dirs), Some(login), net)?;
            if settings.client_id.is_none() {
                return Err(Error::Usage(
                    "login needs --client-id (the desktop OAuth client id): the browser sign-in is for the user source only".into(),
                ));
            }
            Action::Login(settings)
        }
        Command::Logout(cli::LogoutArgs { auth, dirs, all, revoke, net }) => {
            Action::Logout { settings: settings(auth, CacheArgs::with_dirs(dirs), None, net)?, all, revoke }
        }
        Command::Status(cli::StatusArgs { auth, cache, format }) => Action::Status {
            settings: settings(auth, cache, None, NetArgs::default())?,
            json: format == cli::StatusFormat::Json,
        },
        Command::GitCredential(cli::GitCredentialArgs { auth, cache, login, net, action, options_given }) => {
            let target = if options_given {
                GitTarget::Fixed(Box::new(settings(auth, cache, Some(login), net)?))
            } else {
                GitTarget::ByProfileUrl(Box::new(GitByUrl { auth, cache, login, net, files: ConfigFiles::load(env)? }))
            };
            Action::GitCredential { target, action: GitAction::parse(&action) }
        }
        Command::GenerateUserIdToken(args) => {
            let auth = AuthArgs {
                audience: Some(args.webapp_client_id),
                source: Some(SourceArg::User),
                client_id: Some(args.desktop_client_id),
                client_secret_from_secret_manager: Some(format!(
                    "projects/{}/secrets/{}/versions/latest",
                    args.project, args.desktop_client_secret_gcp_secret_name
                )),
                ..AuthArgs::default()
            };
            let settings = Settings::new(
                auth,
                args.cache,
                Some(args.login),
                args.net,
                None,
                env,
                None,
                &ProfileValues::default(),
            )?;
            Action::Token { settings, format: Format::Token }
        }
        Command::GenerateServiceAccountIdToken(args) => {
            let auth = AuthArgs {
                audience: Some(args.webapp_client_id),
                service_account_key: args.service_account_key,
                ..AuthArgs::default()
            };
            let settings = Settings::new(auth, args.cache, None, args.net, None, env, None, &ProfileValues::default())?;
            Action::Token { settings, format: Format::Token }
        }
        Command::Completions(cli::CompletionsArgs { shell }) => Action::Completions(shell),
        Command::Setup(args) => Action::Setup(Box::new(setup_plan(args, env)?)),
        Command::Doctor(cli::DoctorArgs { auth, cache, net, header_name, format }) => {
            let (name, profile) = chosen_profile(&auth, None, env)?;
            let header_name = header_name.or(profile.text("header-name")).unwrap_or_else(|| "Authorization".into());
            let settings = Settings::new(auth, cache, None, net, exec_info, env, name, &profile)?;
            let config_files = ConfigFiles::load(env)?.paths().iter().map(|p| p.to_path_buf()).collect();
            Action::Doctor {
                settings: Box::new(settings),
                header_name,
                json: format == cli::StatusFormat::Json,
                config_files,
            }
        }
        Command::Proxy(cli::ProxyArgs { auth, cache, net, listen, allow_remote, allow_origin, max_connections }) => {
            let options = ProxyOptions::new(listen.as_deref(), allow_remote, allow_origin, max_connections)?;
            let (name, profile) = chosen_profile(&auth, None, env)?;
            let settings = Settings::new(auth, cache, None, net, None, env, name, &profile)?;
            if settings.url.is_none() {
                return Err(Error::Usage(
                    "proxy needs --url (or a --profile with a url): the service behind IAP to forward to".into(),
                ));
            }
            Action::Proxy { settings: Box::new(settings), options }
        }
        Command::Profiles(cli::ProfilesArgs { dirs, format }) => {
            let files = ConfigFiles::load(env)?;
            let profiles = files
                .all()
                .into_iter()
                .map(|(name, values)| {
                    let auth = AuthArgs { profile: Some(name.clone()), ..AuthArgs::default() };
                    let cache = CacheArgs::with_dirs(StoreArgs { ..dirs.clone() });
                    let settings =
                        Settings::new(auth, cache, None, NetArgs::default(), None, env, Some(name.clone()), &values)
                            .map_err(|e| e.render_plain());
                    ListedProfile { name, url: values.text("url"), audience: values.text("audience"), settings }
                })
                .collect();
            Action::Profiles { profiles, json: format == cli::StatusFormat::Json }
        }
        Command::SecretManagerSecret(args) => {
            let name = format!("projects/{}/secrets/{}/versions/{}", args.project, args.secret, args.version);
            let name = secret_version_name(&name).map_err(|_| {
                Error::Usage(format!(
                    "--project, --secret and --version must be ids (letters, digits, - and _), not '{}'",
                    clean(&name, 200)
                ))
            })?;
            let auth = AuthArgs { service_account_key: args.service_account_key, ..AuthArgs::default() };
            let settings = Settings::new(auth, args.cache, None, args.net, None, env, None, &ProfileValues::default())?;
            Action::SecretManagerSecret { settings, name }
        }
    })
}

/// `setup`: the profile name, the file, and the keys the options given ask to keep.
fn setup_plan(args: cli::SetupArgs, env: &dyn Environment) -> Result<SetupPlan> {
    let cli::SetupArgs { auth, net, print } = args;
    let url = auth.url.clone().ok_or_else(|| Error::Usage("setup needs --url: the service behind IAP".into()))?;
    let url = service_url(Some(url))?.unwrap_or_default();
    let host = url::Url::parse(&url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let profile = auth.profile.clone().filter(|p| !p.trim().is_empty()).unwrap_or(host);
    if !profile.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(Error::Usage(format!(
            "--profile '{}' is not a profile name (letters, digits, '-', '_' and '.')",
            clean(&profile, 60)
        )));
    }
    let file = profiles::user_file_path(env).ok_or_else(|| {
        Error::Usage("no place for the config file: set HOME, XDG_CONFIG_HOME or IAP_TOKEN_CONFIG".into())
    })?;
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let mut keys: Vec<(&'static str, String)> = vec![("url", url.clone())];
    let mut keep = |key: &'static str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            keys.push((key, value));
        }
    };
    keep("audience", auth.audience.clone());
    keep("client-id", auth.client_id.clone());
    keep("client-secret-file", path(&auth.client_secret_file));
    keep("client-secret-from-secret-manager", auth.client_secret_from_secret_manager.clone());
    keep("account", auth.account.clone());
    keep("service-account-key", path(&auth.service_account_key));
    keep("impersonate-service-account", auth.impersonate_service_account.clone());
    keep("source", auth.source.and_then(|s| Some(s.to_possible_value()?.get_name().to_string())));
    keep("token-type", auth.token_type.and_then(|t| Some(t.to_possible_value()?.get_name().to_string())));
    // Discovery runs with the [defaults] (a company's desktop client decides the audience), never with a
    // profile's audience: setup is what finds it.
    let defaults = ConfigFiles::load(env)?.defaults()?.without("audience");
    let auth_secret = auth.client_secret.clone();
    let auth = AuthArgs { profile: None, ..auth };
    let settings = Settings::new(auth, CacheArgs::default(), None, net, None, env, Some(profile.clone()), &defaults)?;
    Ok(SetupPlan { client_secret: auth_secret, settings, profile, file, keys, print })
}

fn require_audience(settings: &Settings) -> Result<()> {
    if settings.audience.is_none() && settings.url.is_none() {
        return Err(Error::Usage(
            "--url or --audience is required: the URL of the service behind IAP, or its IAP OAuth client id (or set it in the kubeconfig cluster extension)".into(),
        ));
    }
    Ok(())
}

/// The profile this call uses and its values (see [`profiles::for_call`]). With `dirs`, the choice is
/// remembered in the cache directory (the warm path of `token`, `login`, `logout` and `status`).
fn chosen_profile(
    auth: &AuthArgs,
    dirs: Option<&StoreArgs>,
    env: &dyn Environment,
) -> Result<(Option<String>, ProfileValues)> {
    let url = auth.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let profile = auth.profile.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let memo_dir = dirs.and_then(|dirs| cache_dir(dirs).ok());
    profiles::for_call(env, profile, url, memo_dir.as_deref())
}

fn output_format(output: &cli::OutputArgs, exec_info: Option<&ExecInfo>, profile: &ProfileValues) -> Result<Format> {
    let api_version = exec_info.map(|info| info.api_version).unwrap_or(ExecApiVersion::V1);
    let header_name = output.header_name.clone().or(profile.text("header-name"));
    let header = header_name.as_deref().unwrap_or("Authorization").trim();
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

impl Settings {
    /// The settings of a credential command: the `AUTH`, `CACHE`, `LOGIN` and `NET` options, completed by
    /// the kubeconfig cluster extension, then by the chosen profile (named `profile_name`), and the
    /// environment. Precedence: flag > env > kubeconfig > profile > `[defaults]` > built-in default.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        auth: AuthArgs,
        mut cache: CacheArgs,
        login: Option<cli::LoginArgs>,
        mut net: NetArgs,
        exec_info: Option<&ExecInfo>,
        env: &dyn Environment,
        profile_name: Option<String>,
        profile: &ProfileValues,
    ) -> Result<Settings> {
        let cluster = exec_info.map(|info| info.cluster.clone()).unwrap_or_default();
        let non_empty = |value: Option<String>| value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let text = |key: &str| non_empty(profile.text(key));
        let chosen = |flag: Option<String>, key: &str| non_empty(flag).or_else(|| text(key));
        cache.min_ttl = cache.min_ttl.or(profile.integer("min-ttl"));
        cache.dirs.store = match cache.dirs.store {
            Some(store) => Some(store),
            None => profile_choice(profile, "store")?,
        };
        net.ca_file = net.ca_file.or_else(|| profile.path("ca-file"));
        net.auth_uri = chosen(net.auth_uri, "auth-uri");
        net.token_uri = chosen(net.token_uri, "token-uri");
        net.revoke_uri = chosen(net.revoke_uri, "revoke-uri");
        net.secret_manager_endpoint = chosen(net.secret_manager_endpoint, "secret-manager-endpoint");
        net.iam_credentials_endpoint = chosen(net.iam_credentials_endpoint, "iam-credentials-endpoint");
        let flag_secret = auth.client_secret.is_some()
            || auth.client_secret_file.is_some()
            || auth.client_secret_from_secret_manager.is_some();
        let client_secret = if flag_secret {
            client_secret(auth.client_secret, auth.client_secret_file, auth.client_secret_from_secret_manager)?
        } else {
            client_secret(
                profile.secret("client-secret"),
                profile.path("client-secret-file"),
                text("client-secret-from-secret-manager"),
            )?
        };
        let source = match auth.source {
            Some(source) => source,
            None => profile_choice(profile, "source")?.unwrap_or_default(),
        };
        let token_type = match auth.token_type {
            Some(token_type) => token_type,
            None => profile_choice(profile, "token-type")?.unwrap_or_default(),
        };
        Ok(Settings {
            url: service_url(chosen(auth.url, "url"))?,
            profile: profile_name,
            token_type: match token_type {
                TokenTypeArg::IdToken => TokenType::IdToken,
                TokenTypeArg::SignedJwt => TokenType::SignedJwt,
            },
            audience: non_empty(auth.audience).or(non_empty(cluster.audience)).or_else(|| text("audience")),
            source,
            client_id: non_empty(auth.client_id).or(non_empty(cluster.client_id)).or_else(|| text("client-id")),
            account: non_empty(auth.account).or(non_empty(cluster.account)).or_else(|| text("account")),
            client_secret,
            key_file: auth.service_account_key.or_else(|| profile.path("service-account-key")),
            impersonate: non_empty(auth.impersonate_service_account)
                .or(non_empty(cluster.impersonate_service_account))
                .or_else(|| text("impersonate-service-account")),
            adc: adc_env(env),
            endpoints: endpoints(&net)?,
            cache: cache_settings(cache)?,
            login: LoginSettings::new(login.unwrap_or_default(), exec_info, env)?,
            net: net_settings(net)?,
        })
    }
}

fn client_secret(
    inline: Option<Secret<String>>,
    file: Option<PathBuf>,
    secret_manager: Option<String>,
) -> Result<Option<ClientSecretSource>> {
    Ok(match (inline, file, secret_manager) {
        (Some(secret), _, _) => Some(ClientSecretSource::Inline(secret)),
        (None, Some(path), _) => Some(ClientSecretSource::File(path)),
        (None, None, Some(name)) => Some(ClientSecretSource::SecretManager(secret_version_name(&name)?)),
        (None, None, None) => None,
    })
}

fn endpoints(net: &NetArgs) -> Result<Endpoints> {
    Ok(Endpoints {
        auth_uri: checked_url(net.auth_uri.clone(), "--auth-uri")?,
        token_uri: checked_url(net.token_uri.clone(), "--token-uri")?,
        revoke_uri: checked_url(net.revoke_uri.clone(), "--revoke-uri")?,
        secret_manager: base_url(
            net.secret_manager_endpoint.clone(),
            DEFAULT_SECRET_MANAGER,
            "--secret-manager-endpoint",
        )?,
        iam_credentials: base_url(
            net.iam_credentials_endpoint.clone(),
            DEFAULT_IAM_CREDENTIALS,
            "--iam-credentials-endpoint",
        )?,
    })
}

fn net_settings(net: NetArgs) -> Result<NetSettings> {
    if !(1..=MAX_TIMEOUT_SECS).contains(&net.timeout) {
        return Err(Error::Usage(format!("--timeout must be between 1 and {MAX_TIMEOUT_SECS} seconds")));
    }
    Ok(NetSettings { timeout: Duration::from_secs(net.timeout), ca_file: net.ca_file })
}

fn adc_env(env: &dyn Environment) -> AdcEnv {
    AdcEnv {
        explicit_file: env.var("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
        well_known_file: well_known_adc(env),
        metadata_host: env.var("GCE_METADATA_HOST").unwrap_or_else(|| DEFAULT_METADATA_HOST.into()),
        allow_executables: env.var("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES").as_deref() == Some("1"),
    }
}

/// A profile's value for an option with fixed choices, checked like the flag.
fn profile_choice<T: clap::ValueEnum>(profile: &ProfileValues, key: &str) -> Result<Option<T>> {
    let Some(value) = profile.text(key) else { return Ok(None) };
    T::from_str(&value, false).map(Some).map_err(|_| {
        let choices: Vec<String> =
            T::value_variants().iter().filter_map(|v| Some(v.to_possible_value()?.get_name().to_string())).collect();
        Error::Usage(format!(
            "{}: '{key}' is '{}', not one of {}",
            profile.origin(key).unwrap_or_default(),
            clean(&value, 40),
            choices.join(", ")
        ))
    })
}

fn cache_settings(cache: CacheArgs) -> Result<CacheSettings> {
    let CacheArgs { min_ttl, force_refresh, dirs: cache } = cache;
    let min_ttl = min_ttl.unwrap_or(300);
    let mut dirs_given = Vec::new();
    if let Some(dir) = &cache.cache_dir {
        dirs_given.push(format!("--cache-dir {}", shell_word(&dir.display().to_string())));
    }
    if let Some(dir) = &cache.state_dir {
        dirs_given.push(format!("--state-dir {}", shell_word(&dir.display().to_string())));
    }
    let store = match cache.store.unwrap_or_default() {
        StoreArg::Auto => StoreChoice::Auto,
        StoreArg::Keyring => StoreChoice::Keyring,
        StoreArg::File => StoreChoice::File,
    };
    match store {
        StoreChoice::Auto => {}
        StoreChoice::Keyring => dirs_given.push("--store keyring".into()),
        StoreChoice::File => dirs_given.push("--store file".into()),
    }
    Ok(CacheSettings {
        min_ttl: i64::try_from(min_ttl).map_err(|_| Error::Usage("--min-ttl is too large".into()))?,
        force_refresh,
        dir: cache_dir(&cache)?,
        state_dir: match cache.state_dir {
            Some(dir) => dir,
            None => default_dir(dirs::state_dir().or_else(dirs::data_local_dir), "state", "--state-dir")?,
        },
        store,
        dirs_given,
    })
}

/// The ID-token cache directory: `--cache-dir`, else the user's cache directory.
fn cache_dir(dirs: &StoreArgs) -> Result<PathBuf> {
    match &dirs.cache_dir {
        Some(dir) => Ok(dir.clone()),
        None => default_dir(dirs::cache_dir(), "cache", "--cache-dir"),
    }
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

/// `--url`: an absolute https URL (http only to loopback) with a host, without credentials or fragment.
fn service_url(url: Option<String>) -> Result<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    crate::http::check_url(&url).map_err(|e| Error::Usage(format!("--url: {e}")))?;
    Ok(Some(url))
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
