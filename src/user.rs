//! The user source: a person signs in once in the browser (loopback redirect, PKCE S256, a random state),
//! the refresh token is stored, and every later ID token comes from one refresh grant with
//! `audience=AUD`. A refused refresh token (`invalid_grant`, `invalid_rapt`) is dropped and the sign-in
//! runs again, or exit 3 tells the user to run `iap-token login` where a sign-in may not run. A client
//! secret from Secret Manager is fetched only for a sign-in (or after `invalid_client`) and kept with the
//! refresh token.

use std::path::Path;
use std::time::Instant;

use serde::Deserialize;

use crate::cache::CacheKey;
use crate::cache::lock::KeyLock;
use crate::config::{
    ClientSecretSource, DEFAULT_AUTH_URI, DEFAULT_REVOKE_URI, DEFAULT_TOKEN_URI, Settings, SignInMode, shell_word,
};
use crate::error::{Error, Result, clean};
use crate::google::loopback::{Callback, Listener, parse_callback};
use crate::google::oauth::{self, RefreshError};
use crate::secret::Secret;
use crate::session::Session;
use crate::store::{StoredLogin, TokenStore};
use crate::{browser, jwt, log, terminal};

/// The desktop OAuth client, resolved from the settings and, when given, Google's client JSON file.
pub struct UserClient {
    pub client_id: String,
    pub account: Option<String>,
    pub auth_uri: String,
    pub token_uri: String,
    pub revoke_uri: String,
    configured_secret: Option<Secret<String>>,
    secret_manager_name: Option<String>,
}

#[derive(Deserialize)]
struct ClientFile {
    #[serde(alias = "web")]
    installed: InstalledClient,
}

#[derive(Deserialize)]
struct InstalledClient {
    client_secret: Secret<String>,
    #[serde(default)]
    auth_uri: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

impl UserClient {
    pub fn from_settings(settings: &Settings) -> Result<UserClient> {
        let client_id =
            settings.client_id.clone().ok_or_else(|| Error::Usage("the user source needs --client-id".into()))?;
        let mut file_auth_uri = None;
        let mut file_token_uri = None;
        let mut configured_secret = None;
        let mut secret_manager_name = None;
        match &settings.client_secret {
            Some(ClientSecretSource::Inline(secret)) => configured_secret = Some(secret.clone()),
            Some(ClientSecretSource::File(path)) => {
                let (secret, auth_uri, token_uri) = read_client_secret_file(path)?;
                configured_secret = Some(secret);
                file_auth_uri = auth_uri;
                file_token_uri = token_uri;
            }
            Some(ClientSecretSource::SecretManager(name)) => secret_manager_name = Some(name.clone()),
            None => {}
        }
        let endpoints = &settings.endpoints;
        let auth_uri = endpoints.auth_uri.clone().or(file_auth_uri).unwrap_or_else(|| DEFAULT_AUTH_URI.into());
        let token_uri = endpoints.token_uri.clone().or(file_token_uri).unwrap_or_else(|| DEFAULT_TOKEN_URI.into());
        crate::http::check_url(&auth_uri)?;
        crate::http::check_url(&token_uri)?;
        Ok(UserClient {
            client_id,
            account: settings.account.clone(),
            auth_uri,
            token_uri,
            revoke_uri: endpoints.revoke_uri.clone().unwrap_or_else(|| DEFAULT_REVOKE_URI.into()),
            configured_secret,
            secret_manager_name,
        })
    }
}

/// Reads `--client-secret-file`: Google's client JSON, or a file holding just the secret.
fn read_client_secret_file(path: &Path) -> Result<(Secret<String>, Option<String>, Option<String>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!("could not read --client-secret-file {}: {e}", path.display()), "check the path")
    })?;
    if text.trim_start().starts_with('{') {
        let file: ClientFile = serde_json::from_str(&text).map_err(|e| {
            Error::config(
                format!(
                    "--client-secret-file {} is JSON but not a Google OAuth client file ({})",
                    path.display(),
                    clean(&e.to_string(), 120)
                ),
                "download the client JSON again (APIs & Services > Credentials > the desktop client > Download JSON)",
            )
        })?;
        return Ok((file.installed.client_secret, file.installed.auth_uri, file.installed.token_uri));
    }
    let secret = text.strip_suffix('\n').unwrap_or(&text).to_string();
    if secret.is_empty() {
        return Err(Error::config(
            format!("--client-secret-file {} is empty", path.display()),
            "put the client secret in it",
        ));
    }
    Ok((Secret::new(secret), None, None))
}

/// An ID token for `audience` of the signed-in user: refresh, or sign in first.
pub fn id_token(session: &Session, audience: &str) -> Result<Secret<String>> {
    let settings = session.settings();
    let client = UserClient::from_settings(settings)?;
    let _login = lock_login(settings, &client.client_id, client.account.as_deref())?;
    let store = TokenStore::open(settings.cache.state_dir.clone(), settings.cache.store)?;
    if let Some(login) = store.load(&client.client_id, client.account.as_deref())? {
        match refresh(session, &client, &store, login, audience) {
            Ok(token) => return Ok(token),
            Err(RefreshError::InvalidGrant(error)) => {
                store.delete(&client.client_id, client.account.as_deref())?;
                if let SignInMode::Forbidden(reason) = settings.login.mode() {
                    return Err(Error::SignInRequired {
                        reason: format!("Google refused the stored sign-in (revoked or expired), and {reason}"),
                        command: login_command(settings),
                    });
                }
                log::notice(format_args!("the stored sign-in was refused ({error}); a new sign-in is needed"));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let login = sign_in(session, &client)?;
    if let Err(e) = keep_login(&store, &login) {
        log::notice(format_args!(
            "warning: signed in, but the sign-in could not be kept ({e}); this token is served, the next refresh signs in again"
        ));
    }
    refresh(session, &client, &store, login, audience).map_err(|e| match e {
        RefreshError::InvalidGrant(error) => error.context("the fresh sign-in was refused at once"),
        other => other.into(),
    })
}

/// Serialises everything that reads or replaces the stored login of this client and account across
/// processes (refreshes for other audiences, sign-ins), so that two processes never sign in twice nor
/// drop a login the other just stored. Taken only on a cache miss. A cache directory that cannot hold the
/// lock file (read-only, full, not a directory) leaves the login unlocked: the cache has said so already.
pub fn lock_login(settings: &Settings, client_id: &str, account: Option<&str>) -> Result<Option<KeyLock>> {
    let key = CacheKey::new(&["login", client_id, account.unwrap_or_default()]);
    match KeyLock::acquire(&settings.cache.dir, &key, settings.lock_wait()) {
        Ok(lock) => Ok(Some(lock)),
        Err(e @ Error::Io { .. }) => {
            log::debug(format_args!("signing in without the login lock: {e}"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The refresh grant for `audience`, with the client secret from the configuration, the store, or
/// Secret Manager (fetched again once when Google answers `invalid_client`).
fn refresh(
    session: &Session,
    client: &UserClient,
    store: &TokenStore,
    mut login: StoredLogin,
    audience: &str,
) -> std::result::Result<Secret<String>, RefreshError> {
    let mut fetched_now = false;
    if let Some(name) = &client.secret_manager_name
        && client.configured_secret.is_none()
        && login.client_secret.is_none()
    {
        login.client_secret = Some(fetch_secret(session, name).map_err(RefreshError::Other)?);
        keep_secret(store, &login);
        fetched_now = true;
    }
    loop {
        let secret = client.configured_secret.as_ref().or(login.client_secret.as_ref());
        let http = session.http().map_err(RefreshError::Other)?;
        match oauth::refresh(http, &client.token_uri, &client.client_id, secret, &login.refresh_token, Some(audience)) {
            Ok(answer) => {
                return answer.id_token.ok_or_else(|| {
                    RefreshError::Other(Error::Provider {
                        url: client.token_uri.clone(),
                        status: 200,
                        detail: "the refresh answer carries no id_token".into(),
                        hint: format!(
                            "check that the sign-in asked for the openid scope; run '{}' again",
                            login_command(session.settings())
                        ),
                    })
                });
            }
            Err(RefreshError::InvalidClient(error)) if !fetched_now && let Some(name) = &client.secret_manager_name => {
                log::notice(format_args!(
                    "the client secret was refused ({error}); fetching it again from Secret Manager"
                ));
                login.client_secret = Some(fetch_secret(session, name).map_err(RefreshError::Other)?);
                keep_secret(store, &login);
                fetched_now = true;
            }
            Err(other) => return Err(other),
        }
    }
}

/// Stores the client secret fetched beside the login; one that cannot be kept is fetched again next time.
fn keep_secret(store: &TokenStore, login: &StoredLogin) {
    if let Err(e) = store.save(login) {
        log::notice(format_args!("warning: the client secret could not be kept with the sign-in ({e})"));
    }
}

fn fetch_secret(session: &Session, name: &str) -> Result<Secret<String>> {
    session
        .secret_manager_secret(name)
        .map_err(|e| e.context(format!("could not read the client secret {name} from Secret Manager")))
}

/// The browser sign-in, start to refresh token; [`keep_login`] stores it. A failed sign-in says the exact
/// command that tries again.
pub fn sign_in(session: &Session, client: &UserClient) -> Result<StoredLogin> {
    run_sign_in(session, client).map_err(|e| match e {
        Error::SignIn(problem) => {
            Error::config(problem, format!("run '{}' to try again", login_command(session.settings())))
        }
        e => e,
    })
}

fn run_sign_in(session: &Session, client: &UserClient) -> Result<StoredLogin> {
    let settings = session.settings();
    let paste = match settings.login.mode() {
        SignInMode::Forbidden(reason) => {
            return Err(Error::SignInRequired { reason, command: login_command(settings) });
        }
        SignInMode::Browser => false,
        SignInMode::Paste => true,
    };
    let secret = match (&client.configured_secret, &client.secret_manager_name) {
        (Some(secret), _) => Some(secret.clone()),
        (None, Some(name)) => Some(fetch_secret(session, name)?),
        (None, None) => None,
    };
    let listener = Listener::bind(settings.login.listen_port)?;
    let authorization =
        oauth::authorization(&client.auth_uri, &client.client_id, &listener.redirect_uri(), client.account.as_deref())?;
    let deadline = Instant::now() + settings.login.timeout;
    let code = if paste {
        // Nothing answers on the port: a browser on this machine fails fast instead of hanging.
        drop(listener);
        paste_code(&authorization.url, &authorization.state)?
    } else {
        terminal::say("iap-token: opening the browser to sign in to Google; waiting for it to finish.");
        terminal::say(&format!("iap-token: if no browser opens, visit: {}", authorization.url));
        // A browser that cannot start is reported at once; with a terminal, the paste flow takes over.
        let answer = match browser::open(settings.login.browser.as_deref(), &authorization.url) {
            Ok(mut browser) => listener
                .wait_for_code(&authorization.state, deadline, || browser.check())
                .map_err(|e| (e, browser.failed())),
            Err(e) => Err((e, true)),
        };
        match answer {
            Ok(code) => code,
            Err((why, true)) if settings.login.can_paste() => {
                log::notice(format_args!("{why}; sign in by pasting instead"));
                drop(listener);
                paste_code(&authorization.url, &authorization.state)?
            }
            Err((e, _)) => return Err(e),
        }
    };
    let http = session.http()?;
    http.renew_budget();
    let oauth_client =
        oauth::Client { token_uri: &client.token_uri, client_id: &client.client_id, client_secret: secret.as_ref() };
    let answer = oauth::exchange_code(http, &oauth_client, &code, &authorization.redirect_uri, authorization.verifier)
        .map_err(|e| e.context("could not exchange the sign-in code"))?;
    let refresh_token = answer.refresh_token.ok_or_else(|| Error::Provider {
        url: client.token_uri.clone(),
        status: 200,
        detail: "the sign-in answer carries no refresh token".into(),
        hint: "remove this app's access at https://myaccount.google.com/permissions and sign in again".into(),
    })?;
    let mut login = StoredLogin::new(&client.client_id, client.account.as_deref(), refresh_token, session.now());
    login.principal = answer.id_token.as_ref().and_then(|t| jwt::decode_claims(t.expose()).ok()).and_then(|c| c.email);
    if client.secret_manager_name.is_some() {
        login.client_secret = secret;
    }
    Ok(login)
}

/// Stores a new sign-in and tells the person where it went.
pub fn keep_login(store: &TokenStore, login: &StoredLogin) -> Result<()> {
    store.save(login)?;
    terminal::say(&format!(
        "iap-token: signed in{}; refresh token stored in {}",
        login.principal.as_deref().map(|p| format!(" as {}", clean(p, 100))).unwrap_or_default(),
        store.describe()
    ));
    Ok(())
}

/// Reads the redirected URL (or the bare code) the person pastes.
fn paste_code(url: &str, state: &Secret<String>) -> Result<Secret<String>> {
    terminal::say("iap-token: open this URL in a browser and sign in:");
    terminal::say(url);
    terminal::say(
        "iap-token: the browser then fails to load a http://127.0.0.1 page; copy that page's address (or the code) and paste it here.",
    );
    let answer = terminal::ask("Address or code: ").ok_or_else(|| Error::SignIn("nothing was pasted".into()))?;
    if !answer.contains("://") && !answer.contains('=') {
        return Ok(Secret::new(answer));
    }
    let query = answer.split_once('?').map(|(_, q)| q).unwrap_or(&answer);
    match parse_callback(query.split('#').next().unwrap_or_default()) {
        Callback::Code { state: got, .. } if got != *state.expose() => {
            Err(Error::SignIn("the pasted address belongs to another sign-in (its state does not match)".into()))
        }
        Callback::Code { code, .. } => Ok(Secret::new(code)),
        Callback::Error { error, .. } => {
            Err(Error::SignIn(format!("the sign-in was not completed ({})", clean(&error, 60))))
        }
        Callback::Stray => Err(Error::SignIn("the pasted address carries no code".into())),
    }
}

/// The exact command that signs in for this configuration.
pub fn login_command(settings: &Settings) -> String {
    let mut words = vec!["iap-token".to_string(), "login".into()];
    if let Some(id) = &settings.client_id {
        words.push(format!("--client-id {}", shell_word(id)));
    }
    if let Some(account) = &settings.account {
        words.push(format!("--account {}", shell_word(account)));
    }
    match &settings.client_secret {
        Some(ClientSecretSource::File(path)) => {
            words.push(format!("--client-secret-file {}", shell_word(&path.display().to_string())))
        }
        Some(ClientSecretSource::SecretManager(name)) => {
            words.push(format!("--client-secret-from-secret-manager {}", shell_word(name)))
        }
        Some(ClientSecretSource::Inline(_)) => words.push("--client-secret <SECRET>".into()),
        None => {}
    }
    if let Some(audience) = &settings.audience {
        words.push(format!("--audience {}", shell_word(audience)));
    }
    let endpoints = [("--auth-uri", &settings.endpoints.auth_uri), ("--token-uri", &settings.endpoints.token_uri)];
    for (flag, value) in endpoints {
        if let Some(value) = value {
            words.push(format!("{flag} {}", shell_word(value)));
        }
    }
    if matches!(settings.client_secret, Some(ClientSecretSource::SecretManager(_))) {
        // What reading the secret needs: the credentials and the endpoint it was configured with.
        if let Some(key) = &settings.key_file {
            words.push(format!("--service-account-key {}", shell_word(&key.display().to_string())));
        }
        if settings.endpoints.secret_manager != crate::config::DEFAULT_SECRET_MANAGER {
            words.push(format!("--secret-manager-endpoint {}", shell_word(&settings.endpoints.secret_manager)));
        }
    }
    if let Some(ca_file) = &settings.net.ca_file {
        words.push(format!("--ca-file {}", shell_word(&ca_file.display().to_string())));
    }
    words.extend(settings.cache.dirs_given.iter().cloned());
    words.join(" ")
}
