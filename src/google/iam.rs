//! IAM Credentials: `generateIdToken` (an ID token of a service account for an audience, with its email)
//! and `generateAccessToken`, both authorized by an access token of a principal that may act as that
//! service account (roles/iam.serviceAccountTokenCreator, or roles/iam.workloadIdentityUser for
//! federated principals).

use serde::Deserialize;

use super::{AccessToken, CLOUD_PLATFORM_SCOPE};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::session::Session;

fn url(session: &Session, target: &str, method: &str) -> String {
    format!("{}/v1/projects/-/serviceAccounts/{target}:{method}", session.settings().endpoints.iam_credentials)
}

/// Delegates as the API wants them: `projects/-/serviceAccounts/EMAIL`.
fn delegate_names(delegates: &[String]) -> Vec<String> {
    delegates
        .iter()
        .map(|d| if d.starts_with("projects/") { d.clone() } else { format!("projects/-/serviceAccounts/{d}") })
        .collect()
}

fn denied_hint(error: Error, target: &str) -> Error {
    match error {
        Error::Provider { url, status: status @ (401 | 403), detail, .. } => Error::Provider {
            url,
            status,
            detail,
            hint: format!(
                "the caller needs roles/iam.serviceAccountTokenCreator (or roles/iam.workloadIdentityUser for a federated identity) on {target}"
            ),
        },
        other => other,
    }
}

/// An ID token of `target` for `audience`, with its email.
pub fn generate_id_token(
    session: &Session,
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
    let response = session.http()?.post_json(&url(session, target, "generateIdToken"), bearer.expose(), &body)?;
    let answer: Answer = response.json().map_err(|e| denied_hint(e, target))?;
    Ok(answer.token)
}

/// An access token of `target` (scope cloud-platform).
pub fn generate_access_token(
    session: &Session,
    bearer: &Secret<String>,
    target: &str,
    delegates: &[String],
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
    let response = session.http()?.post_json(&url(session, target, "generateAccessToken"), bearer.expose(), &body)?;
    let answer: Answer = response.json().map_err(|e| denied_hint(e, target))?;
    let expires_at = time::OffsetDateTime::parse(&answer.expire_time, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(session.now() + 3000);
    Ok(AccessToken { token: answer.access_token, expires_at })
}
