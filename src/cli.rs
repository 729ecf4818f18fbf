//! The command line as users type it: clap derive types, help texts and the `IAP_TOKEN_*` environment
//! names. Nothing here validates or acts; `config.rs` turns these raw values into a checked `Config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AUDIENCE_HELP: &str = "The audience of the ID token: the OAuth client id that IAP uses for the service, \
like 123-abc.apps.googleusercontent.com. Find it in the Google Cloud console under Security > Identity-Aware \
Proxy: the service's menu > 'Edit OAuth client' (or APIs & Services > Credentials, the 'IAP-...' web \
application client). With IAP's Google-managed OAuth client, use the desktop client id that is allowlisted in \
IAP's programmatic clients.";

const CLIENT_ID_HELP: &str = "The desktop OAuth client id used for the browser sign-in (APIs & Services > \
Credentials > OAuth 2.0 Client IDs, type 'Desktop app'). Selects the user source.";

const TOKEN_EXAMPLES: &str = "Examples:
  iap-token token --audience WEB_CLIENT_ID --client-id DESKTOP_CLIENT_ID --client-secret-file client.json
  iap-token token --audience WEB_CLIENT_ID --service-account-key key.json --format header
  iap-token token --audience WEB_CLIENT_ID --impersonate-service-account robot@PROJECT.iam.gserviceaccount.com
  curl -H \"$(iap-token token --format header --audience WEB_CLIENT_ID)\" https://app.example.com/

Sources, first match wins with --source auto: --client-id (browser sign-in once, then refreshes),
--impersonate-service-account, the GOOGLE_APPLICATION_CREDENTIALS file (service_account,
impersonated_service_account, external_account), gcloud's application default credentials file when it is
one of those kinds, then the metadata server on Google Cloud.
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
    #[arg(short, long, global = true, env = "IAP_TOKEN_QUIET")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a credential for the audience (the main job): from the cache, by refresh, or after a sign-in.
    #[command(after_help = TOKEN_EXAMPLES)]
    Token {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Run the browser sign-in now and store the refresh token; stdout stays empty.
    Login {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Forget cached ID tokens and the stored refresh token (and revoke it at Google with --revoke).
    Logout {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        cache: CacheArgs,
        /// Forget every cached token and every stored refresh token.
        #[arg(long, env = "IAP_TOKEN_ALL")]
        all: bool,
        /// Also revoke the refresh token at Google.
        #[arg(long, env = "IAP_TOKEN_REVOKE")]
        revoke: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show what is cached (source, audience, principal, expiry; never a secret). Exit 0 when a token can
    /// be served without a browser, 3 when a sign-in is needed.
    Status {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        cache: CacheArgs,
        /// text for people, json for scripts (no environment variable: IAP_TOKEN_FORMAT is token's).
        #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
        format: StatusFormat,
    },
    /// git credential helper: git appends get, store, erase or capability.
    GitCredential {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        net: NetArgs,
        /// The action git asks for; unknown actions are ignored.
        action: String,
    },
    /// flyte-iap drop-in: a user ID token via the browser sign-in, the client secret from Secret Manager.
    #[command(name = "generate-user-id-token")]
    GenerateUserIdToken {
        /// The desktop OAuth client id (APIs & Services > Credentials, type 'Desktop app').
        #[arg(long = "desktop_client_id", visible_alias = "desktop-client-id", env = "IAP_TOKEN_DESKTOP_CLIENT_ID")]
        desktop_client_id: String,
        /// The name of the Secret Manager secret holding the desktop client's secret.
        #[arg(
            long = "desktop_client_secret_gcp_secret_name",
            visible_alias = "desktop-client-secret-gcp-secret-name",
            env = "IAP_TOKEN_DESKTOP_CLIENT_SECRET_GCP_SECRET_NAME"
        )]
        desktop_client_secret_gcp_secret_name: String,
        #[arg(long = "webapp_client_id", visible_alias = "webapp-client-id", env = "IAP_TOKEN_WEBAPP_CLIENT_ID", help = AUDIENCE_HELP)]
        webapp_client_id: String,
        /// The Google Cloud project that holds the secret.
        #[arg(long, env = "IAP_TOKEN_PROJECT")]
        project: String,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// flyte-iap drop-in: a service-account ID token (key file, GOOGLE_APPLICATION_CREDENTIALS or the
    /// metadata server).
    #[command(name = "generate-service-account-id-token")]
    GenerateServiceAccountIdToken {
        #[arg(long = "webapp_client_id", visible_alias = "webapp-client-id", env = "IAP_TOKEN_WEBAPP_CLIENT_ID", help = AUDIENCE_HELP)]
        webapp_client_id: String,
        /// A service-account key file (JSON); default: GOOGLE_APPLICATION_CREDENTIALS, then the metadata server.
        #[arg(
            long = "service_account_key",
            visible_alias = "service-account-key",
            env = "IAP_TOKEN_SERVICE_ACCOUNT_KEY"
        )]
        service_account_key: Option<PathBuf>,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    #[arg(long, env = "IAP_TOKEN_AUDIENCE", help = AUDIENCE_HELP)]
    pub audience: Option<String>,
    /// Where tokens come from; auto picks the first that is configured (see docs).
    #[arg(long, value_enum, default_value_t = SourceArg::Auto, env = "IAP_TOKEN_SOURCE")]
    pub source: SourceArg,
    #[arg(long, env = "IAP_TOKEN_CLIENT_ID", help = CLIENT_ID_HELP)]
    pub client_id: Option<String>,
    /// The Google account to sign in with (login hint); part of the cache key.
    #[arg(long, env = "IAP_TOKEN_ACCOUNT")]
    pub account: Option<String>,
    /// The desktop client's secret.
    #[arg(long, env = "IAP_TOKEN_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// A file holding the client secret, or Google's downloaded client JSON ({"installed": {...}}).
    #[arg(long, env = "IAP_TOKEN_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Read the client secret from Secret Manager: projects/P/secrets/S[/versions/V].
    #[arg(long, env = "IAP_TOKEN_CLIENT_SECRET_FROM_SECRET_MANAGER")]
    pub client_secret_from_secret_manager: Option<String>,
    /// A service-account key file (JSON) to sign in as that service account.
    #[arg(long, env = "IAP_TOKEN_SERVICE_ACCOUNT_KEY")]
    pub service_account_key: Option<PathBuf>,
    /// Mint the ID token for this service account through IAM Credentials, authorized by your ADC.
    #[arg(long, env = "IAP_TOKEN_IMPERSONATE_SERVICE_ACCOUNT")]
    pub impersonate_service_account: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// auto: exec-credential when KUBERNETES_EXEC_INFO is set (kubectl), else token.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto, env = "IAP_TOKEN_FORMAT")]
    pub format: FormatArg,
    /// Header name for --format header; use Proxy-Authorization for apps with their own Authorization.
    #[arg(long, default_value = "Authorization", env = "IAP_TOKEN_HEADER_NAME")]
    pub header_name: String,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct CacheArgs {
    /// Serve a cached ID token only with more than this many seconds left.
    #[arg(long, default_value_t = 300, env = "IAP_TOKEN_MIN_TTL")]
    pub min_ttl: u64,
    /// Ignore the cached ID token (a stored refresh token is still used).
    #[arg(long, env = "IAP_TOKEN_FORCE_REFRESH")]
    pub force_refresh: bool,
    /// Where ID tokens are cached [default: ~/.cache/iap-token].
    #[arg(long, env = "IAP_TOKEN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Where the file store keeps refresh tokens [default: ~/.local/state/iap-token].
    #[arg(long, env = "IAP_TOKEN_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where refresh tokens live: the OS keyring, a 0600 file, or auto (keyring when it answers).
    #[arg(long, value_enum, default_value_t = StoreArg::Auto, env = "IAP_TOKEN_STORE")]
    pub store: StoreArg,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Sign-in")]
pub struct LoginArgs {
    /// Print the sign-in URL and read the redirected URL (or code) pasted on the terminal.
    #[arg(long, env = "IAP_TOKEN_NO_BROWSER")]
    pub no_browser: bool,
    /// Never start a sign-in; exit 3 with the command to run instead.
    #[arg(long, env = "IAP_TOKEN_NON_INTERACTIVE")]
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
