//! A library API for Rust programs, shaped like the Python `GCPIdentityAwareProxyAuthenticator` it
//! replaces: build it from the audience, the desktop client id and secret and TLS settings; ask for
//! credentials (cached), refresh them, and get the gRPC metadata pair Flyte sends.
//!
//! ```no_run
//! use iap_token::authenticator::IapAuthenticator;
//!
//! let auth = IapAuthenticator::new(
//!     "123-web.apps.googleusercontent.com",
//!     "456-desktop.apps.googleusercontent.com",
//!     "desktop-client-secret",
//! )
//! .with_ca_file("/etc/ssl/corp-ca.pem");
//! let credential = auth.get_credentials()?;
//! let (key, value) = auth.fetch_grpc_call_auth_metadata()?;
//! assert_eq!(key, "proxy-authorization");
//! assert!(value.starts_with("Bearer "));
//! # Ok::<(), iap_token::error::Error>(())
//! ```

use std::path::PathBuf;

use crate::cli::{AuthArgs, CacheArgs, Cli, Command, LoginArgs, NetArgs, OutputArgs, SourceArg, StoreArgs, TokenArgs};
use crate::config::{Action, Config, ProcessEnv, Settings};
use crate::credential::Credential;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// ID tokens of a signed-in user for one IAP audience.
#[derive(Debug, Clone)]
pub struct IapAuthenticator {
    audience: String,
    client_id: String,
    client_secret: Secret<String>,
    ca_file: Option<PathBuf>,
    auth_uri: Option<String>,
    token_uri: Option<String>,
    cache_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
}

impl IapAuthenticator {
    pub fn new(audience: &str, client_id: &str, client_secret: &str) -> IapAuthenticator {
        IapAuthenticator {
            audience: audience.into(),
            client_id: client_id.into(),
            client_secret: Secret::new(client_secret.into()),
            ca_file: None,
            auth_uri: None,
            token_uri: None,
            cache_dir: None,
            state_dir: None,
        }
    }

    /// Other OAuth endpoints (Private Service Connect, a proxy, tests): full authorization and token URLs.
    pub fn with_endpoints(mut self, auth_uri: &str, token_uri: &str) -> IapAuthenticator {
        self.auth_uri = Some(auth_uri.into());
        self.token_uri = Some(token_uri.into());
        self
    }

    /// Where ID tokens are cached and the file store keeps refresh tokens (defaults as for the CLI).
    pub fn with_dirs(mut self, cache_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> IapAuthenticator {
        self.cache_dir = Some(cache_dir.into());
        self.state_dir = Some(state_dir.into());
        self
    }

    /// Extra CA certificates (PEM) to trust besides the system roots (the Python `verify=path`).
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> IapAuthenticator {
        self.ca_file = Some(path.into());
        self
    }

    fn settings(&self, force_refresh: bool) -> Result<Settings> {
        let cli = Cli {
            verbose: 0,
            quiet: true,
            command: Command::Token(TokenArgs {
                auth: AuthArgs {
                    audience: Some(self.audience.clone()),
                    source: SourceArg::User,
                    client_id: Some(self.client_id.clone()),
                    client_secret: Some(self.client_secret.clone()),
                    ..AuthArgs::default()
                },
                output: OutputArgs::default(),
                cache: CacheArgs {
                    force_refresh,
                    dirs: StoreArgs {
                        cache_dir: self.cache_dir.clone(),
                        state_dir: self.state_dir.clone(),
                        ..StoreArgs::default()
                    },
                    ..CacheArgs::default()
                },
                login: LoginArgs::default(),
                net: NetArgs {
                    ca_file: self.ca_file.clone(),
                    auth_uri: self.auth_uri.clone(),
                    token_uri: self.token_uri.clone(),
                    ..NetArgs::default()
                },
            }),
        };
        match Config::from_cli(cli, &ProcessEnv)?.action {
            Action::Token { settings, .. } => Ok(settings),
            _ => Err(Error::Usage("unexpected configuration".into())),
        }
    }

    /// A valid ID token: cached, refreshed, or after a browser sign-in.
    pub fn get_credentials(&self) -> Result<Credential> {
        crate::get_credential(&self.settings(false)?)
    }

    /// A new ID token, ignoring the cached one (the stored refresh token is still used).
    pub fn refresh_credentials(&self) -> Result<Credential> {
        crate::get_credential(&self.settings(true)?)
    }

    /// The gRPC metadata Flyte sends through IAP: `("proxy-authorization", "Bearer <token>")`.
    pub fn fetch_grpc_call_auth_metadata(&self) -> Result<(String, String)> {
        let credential = self.get_credentials()?;
        Ok(("proxy-authorization".into(), format!("Bearer {}", credential.token.expose())))
    }
}
