//! The OAuth wire of the user sign-in, per Google's installed-app flow: the authorization URL (PKCE S256,
//! a random `state`, `scope=openid email`, `access_type=offline`, an optional `login_hint`, all built by
//! the oauth2 crate), the code exchange (never retried: a code is single-use), the refresh grant (with
//! `audience` for an IAP ID token) and revocation. Token requests go through `http.rs`, so they share its
//! timeouts, retries and error handling.

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::{Http, Retry};
use crate::secret::Secret;

/// What the token endpoint answers to a code exchange or a refresh.
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    pub access_token: Secret<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub id_token: Option<Secret<String>>,
    #[serde(default)]
    pub refresh_token: Option<Secret<String>>,
}

/// A refresh that failed, told apart by what the caller must do next.
#[derive(Debug)]
pub enum RefreshError {
    /// `invalid_grant` (revoked, expired, or a reauthentication policy): sign in again.
    InvalidGrant(Error),
    /// `invalid_client`: the client secret may have been rotated.
    InvalidClient(Error),
    Other(Error),
}

impl From<RefreshError> for Error {
    fn from(error: RefreshError) -> Error {
        match error {
            RefreshError::InvalidGrant(e) | RefreshError::InvalidClient(e) | RefreshError::Other(e) => e,
        }
    }
}

/// One authorization request: the URL to open, and the values the callback and exchange must match.
pub struct Authorization {
    pub url: String,
    pub state: Secret<String>,
    pub verifier: PkceCodeVerifier,
    pub redirect_uri: String,
}

/// Builds the authorization URL for a loopback redirect.
pub fn authorization(
    auth_uri: &str,
    client_id: &str,
    redirect_uri: &str,
    login_hint: Option<&str>,
) -> Result<Authorization> {
    let auth_url = AuthUrl::new(auth_uri.to_string())
        .map_err(|e| Error::Usage(format!("the authorization URI is not a valid URL ({e})")))?;
    let redirect = RedirectUrl::new(redirect_uri.to_string())
        .map_err(|e| Error::Usage(format!("the redirect URI is not a valid URL ({e})")))?;
    let client =
        BasicClient::new(ClientId::new(client_id.to_string())).set_auth_uri(auth_url).set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .add_extra_param("access_type", "offline");
    if let Some(hint) = login_hint {
        request = request.add_extra_param("login_hint", hint.to_string());
    }
    let (url, state) = request.url();
    Ok(Authorization {
        url: url.to_string(),
        state: Secret::new(state.secret().clone()),
        verifier,
        redirect_uri: redirect_uri.to_string(),
    })
}

/// The client's credentials at the token endpoint.
pub struct Client<'a> {
    pub token_uri: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a Secret<String>>,
}

/// Exchanges an authorization code (once: a code is single-use, so this is never retried).
pub fn exchange_code(
    http: &Http,
    client: &Client<'_>,
    code: &Secret<String>,
    redirect_uri: &str,
    verifier: PkceCodeVerifier,
) -> Result<TokenAnswer> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose().as_str()),
        ("redirect_uri", redirect_uri),
        ("client_id", client.client_id),
        ("code_verifier", verifier.secret().as_str()),
    ];
    if let Some(secret) = client.client_secret {
        form.push(("client_secret", secret.expose().as_str()));
    }
    http.post_form(client.token_uri, &form, Retry::Never)?.json()
}

/// The refresh grant; with `audience` Google answers an ID token for that audience.
pub fn refresh(
    http: &Http,
    token_uri: &str,
    client_id: &str,
    client_secret: Option<&Secret<String>>,
    refresh_token: &Secret<String>,
    audience: Option<&str>,
) -> std::result::Result<TokenAnswer, RefreshError> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose().as_str()),
        ("client_id", client_id),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose().as_str()));
    }
    if let Some(audience) = audience {
        form.push(("audience", audience));
    }
    let response = http.post_form(token_uri, &form, Retry::Allowed).map_err(RefreshError::Other)?;
    match (response.status, response.error_code().as_deref()) {
        (400 | 401, Some("invalid_grant" | "invalid_rapt")) => Err(RefreshError::InvalidGrant(response.into_error())),
        (400 | 401, Some("invalid_client" | "unauthorized_client")) => {
            Err(RefreshError::InvalidClient(response.into_error()))
        }
        _ => response.json().map_err(RefreshError::Other),
    }
}

/// Revokes a refresh token at Google.
pub fn revoke(http: &Http, revoke_uri: &str, token: &Secret<String>) -> Result<()> {
    let response = http.post_form(revoke_uri, &[("token", token.expose().as_str())], Retry::Allowed)?;
    if (200..300).contains(&response.status) {
        return Ok(());
    }
    if response.error_code().as_deref() == Some("invalid_token") {
        return Ok(());
    }
    Err(response.into_error())
}
