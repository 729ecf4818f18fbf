//! The audience of a service URL: IAP's OAuth client, read from its sign-in redirect ([`google::iap`]),
//! except for a person signing in through a desktop client of another project (IAP's Google-managed
//! OAuth client, whose tokens no desktop client can get): then the desktop client id itself, which IAP
//! accepts once its admin allowlists it. Runs only on a cache miss; the result is cached with the token.

use crate::cache::Entry;
use crate::config::Settings;
use crate::error::{Error, Result, clean};
use crate::google::iap;
use crate::http::{Http, display_url};
use crate::log;
use crate::source::Source;

/// The audience for `url` as `source` needs it. `stale` is the entry cached for this URL before, if any:
/// a changed audience is said in one line.
pub fn audience(settings: &Settings, source: &Source, url: &str, stale: Option<&Entry>) -> Result<String> {
    let http = Http::new(&settings.net)?;
    let iap_client = iap::discover(&http, url, &sign_in_hosts(settings)).map_err(|e| match e {
        Error::Config { .. } => e,
        e => e.context(format!("could not discover the audience of {}", display_url(url))),
    })?;
    let audience = match source {
        Source::User { client_id, .. } if iap::is_google_managed(&iap_client, client_id) => {
            log::info(format_args!(
                "IAP of {} uses {iap_client}, an OAuth client of another project (IAP's Google-managed client): the audience is the desktop client {client_id}, which IAP accepts once its admin allowlists it for programmatic access",
                display_url(url)
            ));
            client_id.clone()
        }
        _ => iap_client,
    };
    if let Some(old) = stale.filter(|entry| entry.discovered.is_some()).map(|entry| &entry.audience)
        && *old != audience
    {
        log::notice(format_args!(
            "the audience of {} changed from {} to {} (IAP's OAuth client was replaced)",
            display_url(url),
            clean(old, 100),
            clean(&audience, 100)
        ));
    }
    Ok(audience)
}

/// The hosts IAP may send a browser to for sign-in: Google's, and the `--auth-uri` host when one is set.
pub fn sign_in_hosts(settings: &Settings) -> Vec<String> {
    let mut hosts = vec![iap::GOOGLE_SIGN_IN_HOST.to_string()];
    if let Some(host) =
        settings.endpoints.auth_uri.as_deref().and_then(|uri| url::Url::parse(uri).ok()?.host_str().map(str::to_string))
    {
        hosts.push(host);
    }
    hosts
}
