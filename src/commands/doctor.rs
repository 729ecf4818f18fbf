//! `iap-token doctor [AUTH] [--url URL]`: each step from the configuration to IAP's answer, one line
//! each, in order: the config files and profile, the source and why, the store and the cache, a token
//! (never by a sign-in: a needed one is a `fail` naming the command), the local clock against Google's
//! `Date`, and with a URL, discovery and one request with the token. Only an answer that IAP marks
//! `X-Goog-IAP-Generated-Response: true` is IAP's verdict, and each is explained; any other came from the
//! application, so IAP let the principal in. Exit 0 when nothing failed, else 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cache::file::ensure_private_dir;
use crate::config::Settings;
use crate::credential::TokenType;
use crate::error::{Error, clean};
use crate::google::{iap, metadata};
use crate::http::{Http, NetSettings, display_url};
use crate::output::doctor::{Check, DoctorReport, Verdict};
use crate::output::{self, rfc3339};
use crate::source::{self, Source};
use crate::store::TokenStore;
use crate::{clock, get_credential};

/// How far the local clock may be from Google's before it is worth a warning.
const CLOCK_WARN_SECS: i64 = 60;

pub fn run(
    settings: &Settings,
    header_name: &str,
    json: bool,
    config_files: &[PathBuf],
) -> crate::error::Result<ExitCode> {
    let mut settings = settings.clone();
    settings.login.forbid_sign_in();
    let checks = checks(&settings, header_name, config_files);
    let report = DoctorReport::new(checks);
    if json {
        output::write_json(&report)?;
    } else {
        output::write_text(&output::doctor::text(&report))?;
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn check(name: &'static str, status: Verdict, detail: impl Into<String>) -> Check {
    Check { name, status, detail: detail.into() }
}

fn checks(settings: &Settings, header_name: &str, config_files: &[PathBuf]) -> Vec<Check> {
    let mut checks = vec![config_check(settings, config_files)];
    let source = match source::resolve(settings) {
        Ok(source) => source,
        Err(e) => {
            checks.push(check("source", Verdict::Fail, e.render_plain()));
            return checks;
        }
    };
    checks.push(source_check(settings, &source));
    checks.push(store_check(settings, &source));
    checks.push(cache_check(settings));
    let token = match get_credential(settings) {
        Ok(credential) => {
            let left = credential.expires_at - clock::unix_now();
            let what = match credential.token_type {
                TokenType::IdToken => "an ID token",
                TokenType::SignedJwt => "a signed JWT",
            };
            let detail = format!(
                "{what} of {} for audience {}, {left} s left (until {})",
                clean(credential.principal.as_deref().unwrap_or("(no email)"), 100),
                clean(&credential.audience, 120),
                rfc3339(credential.expires_at)
            );
            checks.push(check("token", Verdict::Ok, detail));
            Some(credential)
        }
        Err(e) => {
            checks.push(check("token", Verdict::Fail, e.render_plain()));
            None
        }
    };
    checks.push(clock_check(settings));
    if let Some(url) = &settings.url {
        checks.push(discovery_check(settings, &source, url));
        if let Some(credential) = &token {
            checks.push(iap_check(
                settings,
                url,
                header_name,
                credential.token.expose(),
                credential.principal.as_deref(),
            ));
        }
    }
    checks
}

fn config_check(settings: &Settings, files: &[PathBuf]) -> Check {
    let files = if files.is_empty() {
        "no config file".to_string()
    } else {
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    let profile = match &settings.profile {
        Some(name) => format!("profile '{}'", clean(name, 60)),
        None => "no profile".into(),
    };
    check("config", Verdict::Ok, format!("{files}; {profile}"))
}

fn source_check(settings: &Settings, source: &Source) -> Check {
    let why = match source {
        Source::User { client_id, .. } => format!("user (the desktop client {})", clean(client_id, 100)),
        Source::Impersonation { target, .. } => format!("impersonation of {}", clean(target, 100)),
        Source::ExternalAccount { path, .. } => format!("external-account ({})", path.display()),
        Source::ServiceAccountKey { key } => format!("service-account-key ({})", clean(&key.client_email, 100)),
        Source::Metadata { host, auto: false, .. } => format!("metadata ({host}), as asked"),
        Source::Metadata { host, auto: true, .. } => {
            let net = NetSettings { timeout: Duration::from_secs(1), ca_file: settings.net.ca_file.clone() };
            return match Http::new(&net).and_then(|http| metadata::email(&http, host)) {
                Ok(email) => check(
                    "source",
                    Verdict::Warn,
                    format!(
                        "metadata: nothing else is configured, so this acts as this machine's service account {}, not as you",
                        clean(&email, 100)
                    ),
                ),
                Err(_) => check(
                    "source",
                    Verdict::Fail,
                    format!(
                        "nothing is configured and no metadata server answers at {host}: sign in with --client-id, or set --service-account-key / GOOGLE_APPLICATION_CREDENTIALS"
                    ),
                ),
            };
        }
    };
    check("source", Verdict::Ok, why)
}

fn store_check(settings: &Settings, source: &Source) -> Check {
    let Source::User { client_id, account } = source else {
        return check("store", Verdict::Ok, "not needed: this source keeps no refresh token");
    };
    match TokenStore::open(settings.cache.state_dir.clone(), settings.cache.store)
        .and_then(|store| Ok((store.load(client_id, account.as_deref())?, store.describe())))
    {
        Ok((Some(_), place)) => check("store", Verdict::Ok, format!("a sign-in is stored in {place}")),
        Ok((None, place)) => check("store", Verdict::Ok, format!("{place} is usable; no sign-in is stored yet")),
        Err(e) => check("store", Verdict::Fail, e.render_plain()),
    }
}

fn cache_check(settings: &Settings) -> Check {
    let dir = &settings.cache.dir;
    let probe = dir.join(format!(".doctor.{}.tmp", std::process::id()));
    let usable = ensure_private_dir(dir).and_then(|()| {
        std::fs::write(&probe, b"").map_err(|e| Error::io(format!("could not write in {}", dir.display()), e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    });
    match usable {
        Ok(()) => check("cache", Verdict::Ok, format!("{} is usable", dir.display())),
        Err(e) => check("cache", Verdict::Warn, format!("{}; tokens are then fetched on every call", e.render_plain())),
    }
}

/// The local clock against the `Date` of an answer from Google's token endpoint.
fn clock_check(settings: &Settings) -> Check {
    let url = settings.endpoints.token_uri.clone().unwrap_or_else(|| crate::config::DEFAULT_TOKEN_URI.to_string());
    let answer = Http::new(&settings.net).and_then(|http| http.get_head(&url, &[]));
    let date = answer.as_ref().ok().and_then(|r| r.header("date")).and_then(parse_http_date);
    match date {
        Some(google) => {
            let skew = clock::unix_now() - google;
            let detail = format!("this machine is {skew:+} s from {}'s clock", display_url(&url));
            if skew.abs() > CLOCK_WARN_SECS {
                check("clock", Verdict::Warn, format!("{detail}: fix the time (e.g. 'timedatectl set-ntp true')"))
            } else {
                check("clock", Verdict::Ok, detail)
            }
        }
        None => check("clock", Verdict::Warn, format!("could not read the time of {}", display_url(&url))),
    }
}

fn discovery_check(settings: &Settings, source: &Source, url: &str) -> Check {
    let hosts = crate::discovery::sign_in_hosts(settings);
    let found = Http::new(&settings.net).and_then(|http| iap::discover(&http, url, &hosts));
    match (found, source) {
        (Err(e), _) => check("discovery", Verdict::Fail, e.render_plain()),
        (Ok(client), Source::User { client_id, .. }) if iap::is_google_managed(&client, client_id) => check(
            "discovery",
            Verdict::Warn,
            format!(
                "IAP of {} uses {client}, IAP's Google-managed OAuth client (another project than {}): a person's token is for the desktop client itself, which IAP accepts only once an admin adds it to IAP's programmatic clients (allowlist); service accounts can use --token-type signed-jwt instead",
                display_url(url),
                clean(client_id, 100)
            ),
        ),
        (Ok(client), _) => {
            check("discovery", Verdict::Ok, format!("IAP of {} uses the OAuth client {client}", display_url(url)))
        }
    }
}

/// One request to the service with the token, and what the answer means.
fn iap_check(settings: &Settings, url: &str, header_name: &str, token: &str, principal: Option<&str>) -> Check {
    let bearer = format!("Bearer {token}");
    let answer = Http::new(&settings.net).and_then(|http| http.get_head(url, &[(header_name, bearer.as_str())]));
    let response = match answer {
        Ok(response) => response,
        Err(e) => return check("iap", Verdict::Fail, e.render_plain()),
    };
    let who = clean(principal.unwrap_or("the principal"), 100);
    if response.header(iap::IAP_GENERATED_HEADER) != Some("true") {
        return check(
            "iap",
            Verdict::Ok,
            format!("IAP let {who} in; the application answered HTTP {}", response.status),
        );
    }
    let first_line = clean(response.body.lines().find(|l| !l.trim().is_empty()).unwrap_or(""), 200);
    match response.status {
        401 => match audience_mismatch(&response.body) {
            Some((theirs, expected)) if settings.token_type == TokenType::SignedJwt => check(
                "iap",
                Verdict::Fail,
                format!(
                    "IAP refused the signed JWT: its aud {theirs} does not cover this URL, IAP expects {expected}: pass the service's own --url, or --audience {expected}"
                ),
            ),
            // IAP refusing a token for its own client: a Google-managed OAuth client.
            Some((theirs, expected)) if theirs == expected => check(
                "iap",
                Verdict::Fail,
                format!(
                    "IAP refused an ID token for its own OAuth client {theirs}: a Google-managed client accepts only the client ids allowlisted for programmatic access; a service account can use --token-type signed-jwt instead, a person --audience with an allowlisted desktop client id"
                ),
            ),
            Some((theirs, expected)) => check(
                "iap",
                Verdict::Fail,
                format!(
                    "IAP refused the token: its audience is {theirs}, IAP expects {expected}: set audience = \"{expected}\" in the profile, or pass --audience {expected}"
                ),
            ),
            None => check(
                "iap",
                Verdict::Fail,
                format!(
                    "IAP answered 401: \"{first_line}\"; usual causes: a wrong audience, a Google-managed OAuth client whose programmatic clients do not list this client id, or a signed JWT whose aud does not cover the URL"
                ),
            ),
        },
        403 => check(
            "iap",
            Verdict::Fail,
            format!(
                "IAP knows {who} but does not let them in: grant roles/iap.httpsResourceAccessor on the resource (IAP > the service > Add principal)"
            ),
        ),
        301 | 302 | 303 | 307 => check(
            "iap",
            Verdict::Fail,
            format!(
                "IAP redirected to sign-in despite the token: it ignored the credential in {}; IAP reads Authorization or Proxy-Authorization",
                clean(header_name, 60)
            ),
        ),
        status => check("iap", Verdict::Warn, format!("IAP answered HTTP {status}: \"{first_line}\"")),
    }
}

/// `(the token's aud, the one IAP expects)` from IAP's audience-mismatch 401.
fn audience_mismatch(body: &str) -> Option<(String, String)> {
    let rest = body.split("'aud' claim (").nth(1)?;
    let (theirs, rest) = rest.split_once(") doesn't match expected value (")?;
    let expected = rest.split(')').next()?;
    Some((clean(theirs, 200), clean(expected, 200)))
}

/// Unix seconds of an HTTP date (`Tue, 03 Dec 2026 08:00:00 GMT`).
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else { return None };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|n| n.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iaps_audience_mismatch_and_http_dates() {
        let body = "Invalid IAP credentials: JWT audience doesn't match this application ('aud' claim (1-a.apps.googleusercontent.com) doesn't match expected value (2-b.apps.googleusercontent.com))";
        assert_eq!(
            audience_mismatch(body),
            Some(("1-a.apps.googleusercontent.com".into(), "2-b.apps.googleusercontent.com".into()))
        );
        assert_eq!(audience_mismatch("Invalid IAP credentials: empty token"), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT"), Some(1_796_205_600));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
