//! The metadata server of Google Cloud (GCE, GKE, Cloud Run): ID tokens of the attached service account
//! from the `identity` endpoint, access tokens from `token`. Plain HTTP to `GCE_METADATA_HOST` with the
//! `Metadata-Flavor: Google` header, which the answer must carry too (plain HTTP is how the metadata server
//! is reached everywhere; it never leaves the host's link-local network). Contacted only on a cache miss;
//! a connect failure is not retried, so that off Google Cloud the tool fails fast.

use serde::Deserialize;

use super::AccessToken;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::secret::Secret;

const PREFIX: &str = "/computeMetadata/v1/instance/service-accounts/default";

fn get(http: &Http, host: &str, path_and_query: &str) -> Result<crate::http::Response> {
    let url = format!("http://{host}{PREFIX}{path_and_query}");
    let response = http.get_metadata(&url)?;
    if (200..300).contains(&response.status) && response.header("metadata-flavor") != Some("Google") {
        return Err(Error::Provider {
            url: response.url.clone(),
            status: response.status,
            detail: "the answer lacks the Metadata-Flavor: Google header, so it is not a metadata server".into(),
            hint: "check GCE_METADATA_HOST".into(),
        });
    }
    Ok(response)
}

/// An ID token for `audience` (`format=full`, so it carries the instance's details).
pub fn id_token(http: &Http, host: &str, audience: &str) -> Result<Secret<String>> {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("audience", audience)
        .append_pair("format", "full")
        .finish();
    let response = get(http, host, &format!("/identity?{query}"))?;
    if !(200..300).contains(&response.status) {
        return Err(response.into_error());
    }
    let token = response.body.trim();
    if token.split('.').count() != 3 {
        return Err(response.unexpected_body("not a JWT"));
    }
    Ok(Secret::new(token.to_string()))
}

/// An access token of the attached service account.
pub fn access_token(http: &Http, host: &str, now: i64) -> Result<AccessToken> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: Secret<String>,
        expires_in: Option<i64>,
    }
    let answer: Answer = get(http, host, "/token")?.json()?;
    Ok(AccessToken { token: answer.access_token, expires_at: now + answer.expires_in.unwrap_or(300) })
}

/// The email of the attached service account; also tells that a metadata server answers at `host`.
pub fn email(http: &Http, host: &str) -> Result<String> {
    let response = get(http, host, "/email")?;
    if !(200..300).contains(&response.status) {
        return Err(response.into_error());
    }
    let email = response.body.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(response.unexpected_body("not a service account email"));
    }
    Ok(email.to_string())
}
