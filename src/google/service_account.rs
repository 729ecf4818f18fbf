//! Service-account keys: an RS256 JWT-bearer assertion, signed with the key's private key, exchanged at
//! the token URI for an ID token (`target_audience`) or an access token (`scope`).

use serde::Deserialize;

use super::AccessToken;
use crate::error::{Error, Result};
use crate::google::adc::ServiceAccountKey;
use crate::http::{Http, Retry};
use crate::jwt;
use crate::secret::Secret;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Deserialize)]
struct IdTokenAnswer {
    id_token: Secret<String>,
}

#[derive(Deserialize)]
struct AccessTokenAnswer {
    access_token: Secret<String>,
    expires_in: Option<i64>,
}

/// An ID token for `audience`, signed by Google for the key's service account.
pub fn id_token(
    http: &Http,
    key: &ServiceAccountKey,
    token_uri: &str,
    audience: &str,
    now: i64,
) -> Result<Secret<String>> {
    let assertion = assertion(key, token_uri, "target_audience", audience, now)?;
    let answer: IdTokenAnswer = exchange(http, token_uri, &assertion)?;
    Ok(answer.id_token)
}

/// An access token for `scope`, for calls to Google APIs (Secret Manager, IAM Credentials).
pub fn access_token(
    http: &Http,
    key: &ServiceAccountKey,
    token_uri: &str,
    scope: &str,
    now: i64,
) -> Result<AccessToken> {
    let assertion = assertion(key, token_uri, "scope", scope, now)?;
    let answer: AccessTokenAnswer = exchange(http, token_uri, &assertion)?;
    Ok(AccessToken { token: answer.access_token, expires_at: now + answer.expires_in.unwrap_or(3600) })
}

fn assertion(key: &ServiceAccountKey, token_uri: &str, claim: &str, value: &str, now: i64) -> Result<Secret<String>> {
    let mut claims = serde_json::json!({
        "iss": key.client_email,
        "aud": token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    claims[claim] = value.into();
    jwt::sign_rs256(key.private_key_id.as_deref(), &claims, &key.private_key)
}

fn exchange<T: serde::de::DeserializeOwned>(http: &Http, token_uri: &str, assertion: &Secret<String>) -> Result<T> {
    let response =
        http.post_form(token_uri, &[("grant_type", JWT_BEARER), ("assertion", assertion.expose())], Retry::Allowed)?;
    if response.status == 400 && response.error_code().as_deref() == Some("invalid_grant") {
        let error = response.into_error();
        return Err(match error {
            Error::Provider { url, status, detail, .. } => Error::Provider {
                url,
                status,
                detail,
                hint: "the key may be deleted or disabled (IAM > Service accounts > Keys), or this machine's clock may be wrong".into(),
            },
            other => other,
        });
    }
    response.json()
}
