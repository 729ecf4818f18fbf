//! The command line as users type it: clap derive types, help texts and the `IAP_TOKEN_*` environment
//! names. Nothing here validates or acts; `config.rs` turns these raw values into a checked `Config`.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::secret::Secret;

const AUDIENCE_HELP: &str = "The audience of the ID token: the OAuth client id that IAP uses for the service, \
like 123-abc.apps.googleusercontent.com. Find it in the Google Cloud console under Security > Identity-Aware \
Proxy: the service's menu > 'Edit OAuth client' (or APIs & Services > Credentials, the 'IAP-...' web \
application client). With IAP's Google-managed OAuth client, use the desktop client id that is allowlisted in \
IAP's programmatic clients.";

const CLIENT_ID_HELP: &str = "The desktop OAuth client id used for the browser sign-in (APIs & Services > \
Credentials > OAuth 2.0 Client IDs, type 'Desktop app'). Selects the user source.";

const TOKEN_EXAMPLES: &str = "Examples:
  iap-token token --audience WEB_CLIENT_ID --client-id DESKTOP_ID --client-secret-file client.json
  iap-token token --audience WEB_CLIENT_ID --service-account-key key.json --format header
  iap-token token --audience WEB_CLIENT_ID --impersonate-service-account SA_EMAIL
  curl -H \"$(iap-token token --format header --audience WEB_CLIENT_ID)\" https://app.example.com/

Sources (--source auto: the first one configured wins):
  --client-id                     a browser sign-in once, then refreshes
  --impersonate-service-account   IAM Credentials, authorized by your ADC
  GOOGLE_APPLICATION_CREDENTIALS  a service_account, impersonated_service_account or external_account file
  gcloud's ADC file               when it is one of those kinds
  the metadata server             on Google Cloud

Exit codes: 0 ok, 1 failure, 2 usage, 3 a sign-in is needed but not allowed here.";

/// Google OIDC ID tokens for services behind Identity-Aware Proxy, printed the way the caller speaks:
/// a bare token, a kubectl ExecCredential, an HTTP header, JSON, or the git credential protocol.
#[derive(Debug, Parser)]
#[command(name = "iap-token", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Start with 'iap-token token --help'. Docs: README.md and docs/ in the project.")]
pub struct Cli {
    /// More diagnostics on stderr (repeat for more); never a token, secret or code.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print nothing on stderr but errors.
    #[arg(short, long, global = true, env = "IAP_TOKEN_QUIET", value_parser = BoolishValueParser::new())]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// 0 with `--quiet`, else 1 and one more for each `-v`.
    pub fn verbosity(&self) -> u8 {
        if self.quiet { 0 } else { self.verbose.saturating_add(1) }
    }
}

/// The subcommands. Each one's options are an [`Args`] struct, built by clap only when that subcommand
/// runs (`Command::defer`): every kubectl or flytekit call starts this binary, and building the options of
/// all eight subcommands would cost more than the whole cache hit.
#[derive(Debug)]
pub enum Command {
    Token(TokenArgs),
    Login(LoginCommandArgs),
    Logout(LogoutArgs),
    Status(StatusArgs),
    GitCredential(GitCredentialArgs),
    GenerateUserIdToken(GenerateUserIdTokenArgs),
    GenerateServiceAccountIdToken(GenerateServiceAccountIdTokenArgs),
    Completions(CompletionsArgs),
    SecretManagerSecret(SecretManagerSecretArgs),
    Setup(SetupArgs),
    Doctor(DoctorArgs),
    Profiles(ProfilesArgs),
    Proxy(ProxyArgs),
}

/// The plumbing command behind the Python package's `get_gcp_secret_manager_secret`: hidden from the
/// help and the short usage (it is not a user's command), parsed like the others.
const SECRET_MANAGER_SECRET: &str = "secret-manager-secret";

/// Name, one-line help, and the option builder of each subcommand.
type Deferred = fn(clap::Command) -> clap::Command;
const SUBCOMMANDS: &[(&str, &str, Deferred)] = &[
    (
        "token",
        "Print a credential for the audience (the main job): from the cache, by refresh, or after a sign-in",
        |c| TokenArgs::augment_args(c).after_help(TOKEN_EXAMPLES),
    ),
    (
        "login",
        "Run the browser sign-in now and store the refresh token; stdout stays empty",
        LoginCommandArgs::augment_args,
    ),
    (
        "logout",
        "Forget cached ID tokens and the stored refresh token (and revoke it at Google with --revoke)",
        LogoutArgs::augment_args,
    ),
    (
        "status",
        "Tell whether a token can be served now without a browser, and from what (never a secret). Exit 0 when \
ready, 3 when a sign-in is needed, 1 with the reason otherwise",
        StatusArgs::augment_args,
    ),
    (
        "setup",
        "Write a profile for a service URL (its audience discovered) and print the Flyte, kubectl, git and curl \
snippets that use it; never signs in",
        SetupArgs::augment_args,
    ),
    (
        "doctor",
        "Check each step from configuration to IAP's answer; explain why IAP said no, never printing a secret",
        DoctorArgs::augment_args,
    ),
    (
        "profiles",
        "List the profiles of the config files, and whether each can serve a token now",
        ProfilesArgs::augment_args,
    ),
    (
        "proxy",
        "Serve the service on a local port with the credential added, for clients that cannot run a command \
(notebooks, SDKs, websockets); prints its URL, stops on Ctrl-C",
        |c| ProxyArgs::augment_args(c).after_help(PROXY_EXAMPLES),
    ),
    (
        "git-credential",
        "git credential helper: git appends get, store, erase or capability",
        GitCredentialArgs::augment_args,
    ),
    (
        "generate-user-id-token",
        "flyte-iap drop-in: a user ID token via the browser sign-in, the client secret from Secret Manager",
        GenerateUserIdTokenArgs::augment_args,
    ),
    (
        "generate-service-account-id-token",
        "flyte-iap drop-in: a service-account ID token (key file, GOOGLE_APPLICATION_CREDENTIALS or the metadata server)",
        GenerateServiceAccountIdTokenArgs::augment_args,
    ),
    ("completions", "Print a shell completion script", CompletionsArgs::augment_args),
];

/// What a bare `iap-token` prints on stderr: the commands in a few lines, and where to go next.
pub fn short_usage() -> String {
    let mut text = String::from("usage: iap-token <COMMAND> [OPTIONS]\n\ncommands:\n");
    for (name, about, _) in SUBCOMMANDS {
        let first = about.split([';', '(', ',']).next().unwrap_or(about).trim();
        text.push_str(&format!("  {name:<35} {first}\n"));
    }
    text.push_str("\nstart with: iap-token token --help\n");
    text
}

impl Subcommand for Command {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        let command = SUBCOMMANDS.iter().fold(command, |command, &(name, about, build)| {
            command.subcommand(clap::Command::new(name).about(about).defer(build))
        });
        command.subcommand(
            clap::Command::new(SECRET_MANAGER_SECRET)
                .about("Print the payload of a Secret Manager secret version, read with the Application Default Credentials")
                .hide(true)
                .disable_version_flag(true) // its --version is the secret's
                .defer(SecretManagerSecretArgs::augment_args),
        )
    }

    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        Self::augment_subcommands(command)
    }

    fn has_subcommand(name: &str) -> bool {
        name == SECRET_MANAGER_SECRET || SUBCOMMANDS.iter().any(|(known, _, _)| *known == name)
    }
}

impl clap::FromArgMatches for Command {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, sub)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        Ok(match name {
            "token" => Command::Token(TokenArgs::from_arg_matches(sub)?),
            "login" => Command::Login(LoginCommandArgs::from_arg_matches(sub)?),
            "logout" => Command::Logout(LogoutArgs::from_arg_matches(sub)?),
            "status" => Command::Status(StatusArgs::from_arg_matches(sub)?),
            "setup" => Command::Setup(SetupArgs::from_arg_matches(sub)?),
            "doctor" => Command::Doctor(DoctorArgs::from_arg_matches(sub)?),
            "profiles" => Command::Profiles(ProfilesArgs::from_arg_matches(sub)?),
            "proxy" => Command::Proxy(ProxyArgs::from_arg_matches(sub)?),
            "git-credential" => {
                let mut args = GitCredentialArgs::from_arg_matches(sub)?;
                args.options_given = sub.ids().any(|id| {
                    !matches!(id.as_str(), "action" | "verbose" | "quiet")
                        && sub.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
                });
                Command::GitCredential(args)
            }
            "generate-user-id-token" => Command::GenerateUserIdToken(GenerateUserIdTokenArgs::from_arg_matches(sub)?),
            "generate-service-account-id-token" => {
                Command::GenerateServiceAccountIdToken(GenerateServiceAccountIdTokenArgs::from_arg_matches(sub)?)
            }
            "completions" => Command::Completions(CompletionsArgs::from_arg_matches(sub)?),
            SECRET_MANAGER_SECRET => Command::SecretManagerSecret(SecretManagerSecretArgs::from_arg_matches(sub)?),
            _ => return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct LoginCommandArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub dirs: StoreArgs,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub dirs: StoreArgs,
    /// Forget every cached token and every stored refresh token.
    #[arg(long, env = "IAP_TOKEN_ALL", value_parser = BoolishValueParser::new())]
    pub all: bool,
    /// Also revoke the refresh token at Google.
    #[arg(long, env = "IAP_TOKEN_REVOKE", value_parser = BoolishValueParser::new())]
    pub revoke: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// text for people, json for scripts (no environment variable: IAP_TOKEN_FORMAT is token's).
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print only this snippet and write nothing.
    #[arg(long, value_enum)]
    pub print: Option<SetupPrint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetupPrint {
    Flyte,
    Kubectl,
    Git,
    Curl,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// The header the check request carries the token in (Proxy-Authorization for apps with their own
    /// Authorization) [default: Authorization].
    #[arg(long, env = "IAP_TOKEN_HEADER_NAME", help_heading = "Output")]
    pub header_name: Option<String>,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text, help_heading = "Output")]
    pub format: StatusFormat,
}

const PROXY_EXAMPLES: &str = "Examples:
  iap-token proxy --url https://flyte.example.com              # prints http://127.0.0.1:PORT
  iap-token proxy --profile flyte --listen 127.0.0.1:8088
  curl http://127.0.0.1:8088/api/v1/projects                   # reaches the service through IAP

Anything that can reach the port acts as you: it listens on loopback only, and refuses requests whose
Host or Origin is not its own (DNS rebinding, web pages) unless --allow-origin admits them.";

#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// The address to listen on: IP:PORT, localhost:PORT or a PORT (on 127.0.0.1); port 0 picks a free
    /// one [default: 127.0.0.1:0].
    #[arg(long, env = "IAP_TOKEN_LISTEN", value_name = "ADDR", help_heading = "Proxy")]
    pub listen: Option<String>,
    /// Allow a listen address that is not loopback: lends your identity to everyone who can reach it.
    #[arg(long, help_heading = "Proxy")]
    pub allow_remote: bool,
    /// Admit requests from a web page of this origin (e.g. http://localhost:3000); repeatable.
    #[arg(long, value_name = "ORIGIN", help_heading = "Proxy")]
    pub allow_origin: Vec<String>,
    /// Connections served at once; more get 503.
    #[arg(long, default_value_t = 64, value_name = "N", help_heading = "Proxy")]
    pub max_connections: usize,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(flatten)]
    pub dirs: StoreArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

#[derive(Debug, Args)]
pub struct GitCredentialArgs {
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// The action git asks for; unknown actions are ignored.
    #[arg(help_heading = "Arguments")]
    pub action: String,
    /// Whether any option was given on the helper line (not only in the environment): without one, the
    /// helper answers only for URLs that a profile's `url` matches.
    #[arg(skip)]
    pub options_given: bool,
}

#[derive(Debug, Args)]
pub struct GenerateUserIdTokenArgs {
    /// The desktop OAuth client id (APIs & Services > Credentials, type 'Desktop app').
    #[arg(long = "desktop_client_id", visible_alias = "desktop-client-id", env = "IAP_TOKEN_DESKTOP_CLIENT_ID")]
    pub desktop_client_id: String,
    /// The name of the Secret Manager secret holding the desktop client's secret.
    #[arg(
        long = "desktop_client_secret_gcp_secret_name",
        visible_alias = "desktop-client-secret-gcp-secret-name",
        env = "IAP_TOKEN_DESKTOP_CLIENT_SECRET_GCP_SECRET_NAME"
    )]
    pub desktop_client_secret_gcp_secret_name: String,
    #[arg(long = "webapp_client_id", visible_alias = "webapp-client-id", env = "IAP_TOKEN_WEBAPP_CLIENT_ID", help = AUDIENCE_HELP)]
    pub webapp_client_id: String,
    /// The Google Cloud project that holds the secret.
    #[arg(long, env = "IAP_TOKEN_PROJECT")]
    pub project: String,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct GenerateServiceAccountIdTokenArgs {
    #[arg(long = "webapp_client_id", visible_alias = "webapp-client-id", env = "IAP_TOKEN_WEBAPP_CLIENT_ID", help = AUDIENCE_HELP)]
    pub webapp_client_id: String,
    /// A service-account key file (JSON); default: GOOGLE_APPLICATION_CREDENTIALS, then the metadata server.
    #[arg(long = "service_account_key", visible_alias = "service-account-key", env = "IAP_TOKEN_SERVICE_ACCOUNT_KEY")]
    pub service_account_key: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct SecretManagerSecretArgs {
    /// The Google Cloud project that holds the secret.
    #[arg(long, env = "IAP_TOKEN_PROJECT")]
    pub project: String,
    /// The secret's id in that project.
    #[arg(long)]
    pub secret: String,
    /// The secret version: a number or latest.
    #[arg(long, default_value = "latest")]
    pub version: String,
    /// A service-account key file (JSON) to read it with; default: the Application Default Credentials.
    #[arg(long, env = "IAP_TOKEN_SERVICE_ACCOUNT_KEY")]
    pub service_account_key: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// The service behind IAP, like https://flyte.example.com: its audience is discovered from IAP's sign-in
    /// redirect (one unauthenticated GET, remembered with the token) when none is given. https:// only
    /// (http:// for loopback).
    #[arg(long, env = "IAP_TOKEN_URL")]
    pub url: Option<String>,
    /// The profile of the config files to use (see 'iap-token profiles'); else the one whose url matches.
    #[arg(long, env = "IAP_TOKEN_PROFILE")]
    pub profile: Option<String>,
    #[arg(long, env = "IAP_TOKEN_AUDIENCE", help = AUDIENCE_HELP)]
    pub audience: Option<String>,
    /// Where tokens come from; auto picks the first that is configured (see docs) [default: auto].
    #[arg(long, value_enum, env = "IAP_TOKEN_SOURCE")]
    pub source: Option<SourceArg>,
    /// id-token: an OIDC ID token Google signs; signed-jwt: a JWT the service account signs itself, with
    /// aud = the URL (works with IAP's Google-managed OAuth client; service accounts only) [default: id-token].
    #[arg(long, value_enum, env = "IAP_TOKEN_TOKEN_TYPE")]
    pub token_type: Option<TokenTypeArg>,
    #[arg(long, env = "IAP_TOKEN_CLIENT_ID", help = CLIENT_ID_HELP)]
    pub client_id: Option<String>,
    /// The Google account to sign in with (login hint); part of the cache key.
    #[arg(long, env = "IAP_TOKEN_ACCOUNT")]
    pub account: Option<String>,
    /// The desktop client's secret.
    #[arg(long, env = "IAP_TOKEN_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub client_secret: Option<Secret<String>>,
    /// A file holding the client secret, or Google's downloaded client JSON ({"installed": {...}}).
    #[arg(long, env = "IAP_TOKEN_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Read the client secret from Secret Manager: projects/P/secrets/S[/versions/V].
    #[arg(long, env = "IAP_TOKEN_CLIENT_SECRET_FROM_SECRET_MANAGER")]
    pub client_secret_from_secret_manager: Option<String>,
    /// Mint the ID token for this service account through IAM Credentials, authorized by your ADC.
    #[arg(long, env = "IAP_TOKEN_IMPERSONATE_SERVICE_ACCOUNT")]
    pub impersonate_service_account: Option<String>,
    /// A service-account key file (JSON) to sign in as that service account (else GOOGLE_APPLICATION_CREDENTIALS;
    /// a Workload Identity Federation external_account file there selects the external-account source).
    #[arg(long, env = "IAP_TOKEN_SERVICE_ACCOUNT_KEY")]
    pub service_account_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// auto: exec-credential when KUBERNETES_EXEC_INFO is set (kubectl), else token.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto, env = "IAP_TOKEN_FORMAT")]
    pub format: FormatArg,
    /// Header name for --format header; use Proxy-Authorization for apps with their own Authorization
    /// [default: Authorization].
    #[arg(long, env = "IAP_TOKEN_HEADER_NAME")]
    pub header_name: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct CacheArgs {
    /// Serve a cached ID token only with more than this many seconds left [default: 300].
    #[arg(long, env = "IAP_TOKEN_MIN_TTL")]
    pub min_ttl: Option<u64>,
    /// Ignore the cached ID token (a stored refresh token is still used).
    #[arg(long, env = "IAP_TOKEN_FORCE_REFRESH", value_parser = BoolishValueParser::new())]
    pub force_refresh: bool,
    #[command(flatten)]
    pub dirs: StoreArgs,
}

// Where tokens are kept: all that `login` and `logout` need of the cache options (a plain comment: a doc
// comment here would become the about text of every command that flattens it).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cache")]
pub struct StoreArgs {
    /// Where ID tokens are cached [default: ~/.cache/iap-token].
    #[arg(long, env = "IAP_TOKEN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Where the file store keeps refresh tokens [default: ~/.local/state/iap-token].
    #[arg(long, env = "IAP_TOKEN_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where refresh tokens live: the OS keyring, a 0600 file, or auto (keyring when it answers)
    /// [default: auto].
    #[arg(long, value_enum, env = "IAP_TOKEN_STORE")]
    pub store: Option<StoreArg>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Sign-in")]
pub struct LoginArgs {
    /// Print the sign-in URL and read the redirected URL (or code) pasted on the terminal.
    #[arg(long, env = "IAP_TOKEN_NO_BROWSER", value_parser = BoolishValueParser::new())]
    pub no_browser: bool,
    /// Never start a sign-in; exit 3 with the command to run instead.
    #[arg(long, env = "IAP_TOKEN_NON_INTERACTIVE", value_parser = BoolishValueParser::new())]
    pub non_interactive: bool,
    /// The command that opens the sign-in URL [default: $BROWSER, else the platform opener].
    #[arg(long, env = "IAP_TOKEN_BROWSER")]
    pub browser: Option<String>,
    /// Port of the loopback listener on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0, env = "IAP_TOKEN_LISTEN_PORT")]
    pub listen_port: u16,
    /// Give up the sign-in after this many seconds.
    #[arg(long, default_value_t = 300, env = "IAP_TOKEN_LOGIN_TIMEOUT")]
    pub login_timeout: u64,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Network")]
pub struct NetArgs {
    /// Extra CA certificates (PEM), added to the system roots.
    #[arg(long, env = "IAP_TOKEN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds allowed for each HTTP request.
    #[arg(long, default_value_t = 30, env = "IAP_TOKEN_TIMEOUT")]
    pub timeout: u64,
    /// OAuth authorization endpoint (full URL).
    #[arg(long, env = "IAP_TOKEN_AUTH_URI")]
    pub auth_uri: Option<String>,
    /// OAuth token endpoint (full URL).
    #[arg(long, env = "IAP_TOKEN_TOKEN_URI")]
    pub token_uri: Option<String>,
    /// OAuth revocation endpoint (full URL).
    #[arg(long, env = "IAP_TOKEN_REVOKE_URI")]
    pub revoke_uri: Option<String>,
    /// Secret Manager base URL (scheme://host[:port]).
    #[arg(long, env = "IAP_TOKEN_SECRET_MANAGER_ENDPOINT")]
    pub secret_manager_endpoint: Option<String>,
    /// IAM Credentials base URL (scheme://host[:port]).
    #[arg(long, env = "IAP_TOKEN_IAM_CREDENTIALS_ENDPOINT")]
    pub iam_credentials_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SourceArg {
    #[default]
    Auto,
    User,
    Impersonation,
    ExternalAccount,
    ServiceAccountKey,
    Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TokenTypeArg {
    #[default]
    IdToken,
    SignedJwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FormatArg {
    #[default]
    Auto,
    Token,
    ExecCredential,
    Json,
    Header,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StatusFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StoreArg {
    #[default]
    Auto,
    Keyring,
    File,
}

/// Wraps a secret from the command line or the environment at once, so no `Debug` shows it.
fn secret(value: &str) -> Result<Secret<String>, std::convert::Infallible> {
    Ok(Secret::new(value.to_string()))
}

/// The built-in defaults of an option group (environment variables ignored), for commands and library
/// callers that do not take that group from the command line.
fn parse_defaults<T: Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults").no_binary_name(true))
        .mut_args(|arg| arg.env(None::<&'static str>));
    let matches = command.try_get_matches_from(std::iter::empty::<String>()).expect("option groups have defaults");
    T::from_arg_matches(&matches).expect("option groups have defaults")
}

impl Default for OutputArgs {
    fn default() -> Self {
        parse_defaults()
    }
}

impl Default for CacheArgs {
    fn default() -> Self {
        parse_defaults()
    }
}

impl CacheArgs {
    /// The cache options of a command that offers only where tokens are kept (`login`, `logout`).
    pub fn with_dirs(dirs: StoreArgs) -> CacheArgs {
        CacheArgs { dirs, ..CacheArgs::default() }
    }
}

impl Default for StoreArgs {
    fn default() -> Self {
        parse_defaults()
    }
}

impl Default for LoginArgs {
    fn default() -> Self {
        parse_defaults()
    }
}

impl Default for NetArgs {
    fn default() -> Self {
        parse_defaults()
    }
}
