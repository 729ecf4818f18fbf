//! IAM Credentials: `generateIdToken` (an ID token of a service account for an audience, with its email),
//! `signJwt` (a JWT signed by the service account's Google-managed key) and `generateAccessToken`, each
//! authorized by an access token of a principal that may act as that service account
//! (roles/iam.serviceAccountTokenCreator, or roles/iam.workloadIdentityUser for federated principals).
//! Each call takes the HTTP client, the API's base URL and the bearer; which credentials authorize it is
//! the caller's choice.

use serde::Deserialize;

use super::{AccessToken, CLOUD_PLATFORM_SCOPE};
use crate::error::{Error, Result};
use crate::http::Http;
use crate::secret::Secret;

fn url(endpoint: &str, target: &str, method: &str) -> String {
    format!("{endpoint}/v1/projects/-/serviceAccounts/{target}:{method}")
}

/// Delegates as the API wants them: `projects/-/serviceAccounts/EMAIL`.
fn delegate_names(delegates: &[String]) -> Vec<String> {
    delegates
        .iter()
        .map(|d| if d.starts_with("projects/") { d.clone() } else { format!("projects/-/serviceAccounts/{d}") })
        .collect()
}

fn denied_hint(error: Error, target: &str) -> Error {
    error.with_hint_for_status(|status| matches!(status, 401 | 403), || {
        format!(
            "the caller needs roles/iam.serviceAccountTokenCreator (or roles/iam.workloadIdentityUser for a federated identity) on {target}"
        )
    })
}

/// An ID token of `target` for `audience`, with its email.
pub fn generate_id_token(
    http: &Http,
    endpoint: &str,
    bearer: &Secret<String>,
    target: &str,
    delegates: &[String],
    audience: &str,
) -> Result<Secret<String>> {
    #[derive(Deserialize)]
    struct Answer {
        token: Secret<String>,
    }
    let mut body = serde_json::json!({"audience": audience, "includeEmail": true});
    if !delegates.is_empty() {
        body["delegates"] = delegate_names(delegates).into();
    }
    let response = http.post_json(&url(endpoint, target, "generateIdToken"), bearer.expose(), &body)?;
    let answer: Answer = response.json().map_err(|e| denied_hint(e, target))?;
    Ok(answer.token)
}

/// A JWT with `claims` (a JSON object), signed by `target`'s Google-managed key (`signJwt`).
pub fn sign_jwt(
    http: &Http,
    endpoint: &str,
    bearer: &Secret<String>,
    target: &str,
    delegates: &[String],
    claims: &serde_json::Value,
) -> Result<Secret<String>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        signed_jwt: Secret<String>,
    }
    let mut body = serde_json::json!({"payload": claims.to_string()});
    if !delegates.is_empty() {
        body["delegates"] = delegate_names(delegates).into();
    }
    let response = http.post_json(&url(endpoint, target, "signJwt"), bearer.expose(), &body)?;
    let answer: Answer = response.json().map_err(|e| denied_hint(e, target))?;
    Ok(answer.signed_jwt)
}

/// An access token of `target` (scope cloud-platform); `now` dates an answer without a readable expiry.
pub fn generate_access_token(
    http: &Http,
    endpoint: &str,
    bearer: &Secret<String>,
    target: &str,
    delegates: &[String],
    now: i64,
) -> Result<AccessToken> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        access_token: Secret<String>,
        expire_time: String,
    }
    let mut body = serde_json::json!({"scope": [CLOUD_PLATFORM_SCOPE]});
    if !delegates.is_empty() {
        body["delegates"] = delegate_names(delegates).into();
    }
    let response = http.post_json(&url(endpoint, target, "generateAccessToken"), bearer.expose(), &body)?;
    let answer: Answer = response.json().map_err(|e| denied_hint(e, target))?;
    let expires_at = time::OffsetDateTime::parse(&answer.expire_time, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(now + 3000);
    Ok(AccessToken { token: answer.access_token, expires_at })
}
