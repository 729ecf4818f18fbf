//! What Identity-Aware Proxy tells a client that has no credential: its sign-in redirect. An
//! unauthenticated `GET` of a resource behind IAP is answered with a 302 to Google's sign-in page whose
//! `client_id` is IAP's OAuth client, the audience its ID tokens must carry. [`discover`] makes that one
//! request (no redirect followed, no cookie, no credential) and reads the id; anything else is explained.

use crate::error::{Error, Result, clean};
use crate::http::{Http, display_url};
use crate::log;

/// Google's sign-in host, where IAP sends browsers without a credential.
pub const GOOGLE_SIGN_IN_HOST: &str = "accounts.google.com";

/// The header IAP puts on the answers it generates itself (not the application's).
pub const IAP_GENERATED_HEADER: &str = "x-goog-iap-generated-response";

/// IAP's OAuth client id for `url`, from its sign-in redirect. `sign_in_hosts` are the hosts a redirect
/// may point to (Google's, or the `--auth-uri` host in tests).
pub fn discover(http: &Http, url: &str, sign_in_hosts: &[String]) -> Result<String> {
    let shown = display_url(url);
    let not_iap = |what: String| {
        Error::config(
            format!("{shown} {what}: it did not redirect to Google sign-in"),
            "is it behind IAP? Check the URL, or pass --audience (the IAP OAuth client id)",
        )
    };
    let response = http.get_head(url, &[("Accept", "text/html")])?;
    if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        let from = if response.header(IAP_GENERATED_HEADER) == Some("true") { "IAP" } else { "the server" };
        return Err(not_iap(format!("answered HTTP {} (from {from})", response.status)));
    }
    let Some(location) = response.header("location") else {
        return Err(not_iap(format!("answered HTTP {} without a Location", response.status)));
    };
    let Ok(target) = url::Url::parse(location) else {
        return Err(not_iap(format!("redirected to '{}', which is not an absolute URL", clean(location, 120))));
    };
    let host = target.host_str().unwrap_or_default();
    let secure = target.scheme() == "https" || target.scheme() == "http" && crate::http::is_loopback(&target);
    if !secure || !sign_in_hosts.iter().any(|allowed| host.eq_ignore_ascii_case(allowed)) {
        return Err(not_iap(format!("redirected to {}", display_url(location))));
    }
    let client_id = target.query_pairs().find(|(name, _)| name == "client_id").map(|(_, value)| value.into_owned());
    match client_id {
        Some(id) if is_client_id(&id) => {
            log::info(format_args!("IAP of {shown} uses the OAuth client {id}"));
            Ok(id)
        }
        Some(other) => Err(not_iap(format!(
            "redirected to Google sign-in with client_id '{}', which is not an OAuth client id",
            clean(&other, 80)
        ))),
        None => Err(not_iap("redirected to Google sign-in without a client_id".to_string())),
    }
}

/// Whether `id` looks like an OAuth client id: `NUMBER-NAME.apps.googleusercontent.com`.
pub fn is_client_id(id: &str) -> bool {
    let Some(name) = id.strip_suffix(".apps.googleusercontent.com") else { return false };
    project_number(id).is_some()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.ends_with('-')
}

/// The project number an OAuth client id begins with (`123-abc.apps...` -> `123`).
pub fn project_number(client_id: &str) -> Option<&str> {
    let number = client_id.split('-').next()?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && number.len() < client_id.len())
        .then_some(number)
}

/// Whether IAP's client belongs to another project than the desktop client: then it is IAP's
/// Google-managed OAuth client, whose tokens no desktop client can get.
pub fn is_google_managed(iap_client: &str, desktop_client: &str) -> bool {
    project_number(iap_client) != project_number(desktop_client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_their_projects() {
        assert!(is_client_id("123-abc.apps.googleusercontent.com"));
        assert_eq!(project_number("123-abc.apps.googleusercontent.com"), Some("123"));
        for not_one in
            ["abc.apps.googleusercontent.com", "123-abc.example.com", "123-a b.apps.googleusercontent.com", ""]
        {
            assert!(!is_client_id(not_one), "{not_one}");
        }
        assert!(is_google_managed("999-iap.apps.googleusercontent.com", "123-desk.apps.googleusercontent.com"));
        assert!(!is_google_managed("123-iap.apps.googleusercontent.com", "123-desk.apps.googleusercontent.com"));
    }
}
