//! The one place that talks HTTP. It builds the ureq agent (timeouts, no redirects, the system roots plus
//! `--ca-file`, proxy variables), refuses `http://` except to loopback, retries transient failures (connect
//! errors, 429, 5xx) at most twice with backoff and `Retry-After` inside an overall budget, and turns error
//! answers into [`Error::Provider`] with Google's own `error` / `error_description` kept for the user.
//! It logs URLs and statuses at `-vv`, never a request or response body.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::de::DeserializeOwned;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::error::{Error, Result, clean};
use crate::log;

/// How many times a transient failure is retried after the first attempt.
const MAX_RETRIES: u32 = 2;
/// How long resolving and connecting to the metadata server may take before we conclude it is not there.
const METADATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest `Retry-After` we are willing to honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Network settings from the command line.
#[derive(Debug, Clone)]
pub struct NetSettings {
    pub timeout: Duration,
    pub ca_file: Option<std::path::PathBuf>,
}

/// An HTTP client with a time budget shared by every request it makes.
pub struct Http {
    agent: ureq::Agent,
    timeout: Duration,
    deadline: Cell<Instant>,
}

/// A complete answer: status, the `Retry-After` header, and the body as text.
#[derive(Debug)]
pub struct Response {
    pub url: String,
    pub status: u16,
    pub content_type: String,
    pub body: String,
    headers: Vec<(String, String)>,
    retry_after: Option<Duration>,
}

/// Whether a request may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Allowed,
    /// Retry error statuses, but not a failed connection (the metadata server: off Google Cloud it
    /// is simply not there, and the answer should come fast).
    OnlyAnswers,
    /// For requests that must not be repeated, like the single-use authorization-code exchange.
    Never,
}

impl Http {
    pub fn new(settings: &NetSettings) -> Result<Http> {
        let roots = root_certs(settings.ca_file.as_deref())?;
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(settings.timeout.min(Duration::from_secs(10))))
            .timeout_global(Some(settings.timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .user_agent(concat!("iap-token/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(Http { agent, timeout: settings.timeout, deadline: Cell::new(Instant::now() + budget(settings.timeout)) })
    }

    /// Starts a fresh overall budget, after a wait that is not the network's (a browser sign-in).
    pub fn renew_budget(&self) {
        self.deadline.set(Instant::now() + budget(self.timeout));
    }

    /// `POST` a form (`application/x-www-form-urlencoded`).
    pub fn post_form(&self, url: &str, form: &[(&str, &str)], retry: Retry) -> Result<Response> {
        check_url(url)?;
        self.send(url, retry, |agent, timeout| {
            agent.post(url).config().timeout_global(Some(timeout)).build().send_form(form.iter().copied())
        })
    }

    /// `POST` a JSON body with a bearer token.
    pub fn post_json(&self, url: &str, bearer: &str, body: &serde_json::Value) -> Result<Response> {
        let authorization = format!("Bearer {bearer}");
        check_url(url)?;
        let body = body.to_string();
        self.send(url, Retry::Allowed, |agent, timeout| {
            agent
                .post(url)
                .header("Authorization", &authorization)
                .header("Content-Type", "application/json")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(body.as_str())
        })
    }

    /// `GET` with extra headers.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response> {
        check_url(url)?;
        self.get_unchecked(url, headers, true)
    }

    /// `GET` for what the status and headers say (a redirect, IAP's verdict): at most the first
    /// [`HEAD_BODY_LIMIT`] bytes of the body are kept, the rest is never read, so a huge answer costs nothing.
    pub fn get_head(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response> {
        check_url(url)?;
        self.send_limited(url, Retry::Allowed, BodyLimit::Truncate(HEAD_BODY_LIMIT), |agent, timeout| {
            let mut request = agent.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.config().timeout_global(Some(timeout)).build().call()
        })
    }

    /// `GET` that also allows plain `http://` to a link-local host: cloud instance metadata services
    /// (Azure's, for a federated subject token) live at 169.254.169.254 and speak only http.
    /// Such a service is reached directly, never through a proxy.
    pub fn get_allowing_link_local(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response> {
        let link_local = is_link_local_http(url);
        if !link_local {
            check_url(url)?;
        }
        self.get_unchecked(url, headers, !link_local)
    }

    fn get_unchecked(&self, url: &str, headers: &[(&str, &str)], proxied: bool) -> Result<Response> {
        self.send(url, Retry::Allowed, |agent, timeout| {
            let mut request = agent.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let config = request.config().timeout_global(Some(timeout));
            let config = if proxied { config } else { config.proxy(None) };
            config.build().call()
        })
    }

    /// `GET` from the metadata server: plain `http://` to the host the environment names (it is a
    /// link-local service, never behind a proxy), a short resolve and connect timeout so that off Google
    /// Cloud the answer comes fast, and no retry of a failed connection.
    pub fn get_metadata(&self, url: &str) -> Result<Response> {
        if !url.starts_with("http://") {
            return Err(Error::Usage(format!("the metadata server URL {} is not http://", display_url(url))));
        }
        self.send(url, Retry::OnlyAnswers, |agent, timeout| {
            agent
                .get(url)
                .header("Metadata-Flavor", "Google")
                .config()
                .timeout_global(Some(timeout))
                .timeout_resolve(Some(METADATA_CONNECT_TIMEOUT))
                .timeout_connect(Some(METADATA_CONNECT_TIMEOUT))
                .proxy(None)
                .build()
                .call()
        })
    }

    fn send(
        &self,
        url: &str,
        retry: Retry,
        call: impl Fn(&ureq::Agent, Duration) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response> {
        self.send_limited(url, retry, BodyLimit::Strict(MAX_BODY), call)
    }

    fn send_limited(
        &self,
        url: &str,
        retry: Retry,
        limit: BodyLimit,
        call: impl Fn(&ureq::Agent, Duration) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response> {
        let shown = display_url(url);
        let mut attempt = 0;
        loop {
            let remaining = self.deadline.get().saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Network { url: shown, detail: "the time budget for network calls ran out".into() });
            }
            let timeout = self.timeout.min(remaining);
            log::debug(format_args!("HTTP {shown} (attempt {})", attempt + 1));
            let outcome = call(&self.agent, timeout).map_err(|e| e.to_string()).and_then(|mut response| {
                read_response(&shown, &mut response, limit).map_err(|e| format!("while reading the answer: {e}"))
            });
            let connect_failed = outcome.is_err();
            let wait = match &outcome {
                Ok(response) => {
                    log::debug(format_args!("HTTP {shown} -> {}", response.status));
                    if !(response.status == 429 || response.status >= 500) {
                        return outcome.map_err(|_| unreachable!());
                    }
                    response.retry_after
                }
                Err(detail) => {
                    log::debug(format_args!("HTTP {shown} failed: {}", clean(detail, 200)));
                    None
                }
            };
            let wait = wait.unwrap_or(Duration::from_millis(300 << attempt));
            let fits = Instant::now() + wait + Duration::from_millis(100) < self.deadline.get();
            let allowed = match retry {
                Retry::Allowed => true,
                Retry::OnlyAnswers => !connect_failed,
                Retry::Never => false,
            };
            if !allowed || attempt >= MAX_RETRIES || wait > MAX_RETRY_AFTER || !fits {
                let via = self.proxy_for(url).map(|proxy| format!(" (through the proxy {proxy})")).unwrap_or_default();
                return outcome
                    .map_err(|detail| Error::Network { url: shown, detail: format!("{}{via}", clean(&detail, 200)) });
            }
            log::debug(format_args!("retrying {shown} in {} ms", wait.as_millis()));
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

impl Http {
    /// The proxy a request to `url` goes through, as host:port (never its credentials).
    fn proxy_for(&self, url: &str) -> Option<String> {
        let proxy = self.agent.config().proxy()?;
        let uri: ureq::http::Uri = url.parse().ok()?;
        (!proxy.is_no_proxy(&uri)).then(|| format!("{}:{}", proxy.host(), proxy.port()))
    }
}

impl Response {
    /// A response header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as `T` on a 2xx answer; otherwise the provider's error, with a hint for the status.
    pub fn json<T: DeserializeOwned>(self) -> Result<T> {
        if !(200..300).contains(&self.status) {
            return Err(self.into_error());
        }
        serde_json::from_str(&self.body).map_err(|e| self.unexpected_body(&e.to_string()))
    }

    /// An error for a 2xx answer whose content is not what the protocol promises.
    pub fn unexpected_body(&self, problem: &str) -> Error {
        let detail = if looks_like_html(&self.content_type, &self.body) {
            "an HTML page instead of the expected answer".to_string()
        } else {
            format!("an unreadable answer ({})", clean(problem, 120))
        };
        Error::Provider {
            url: self.url.clone(),
            status: self.status,
            detail,
            hint: "a proxy or captive portal may be in the way, or an endpoint override points at the wrong server; check HTTPS_PROXY and the --*-uri options".into(),
        }
    }

    /// The provider's error code (`invalid_grant`, `PERMISSION_DENIED`, ...), when the body names one.
    pub fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        match &value["error"] {
            serde_json::Value::String(code) => Some(code.clone()),
            serde_json::Value::Object(api) => api.get("status").and_then(|s| s.as_str()).map(str::to_string),
            _ => None,
        }
    }

    /// Turns an error answer into an [`Error::Provider`], keeping the provider's own explanation.
    pub fn into_error(self) -> Error {
        let detail = describe_error_body(&self.content_type, &self.body);
        let hint = match (self.status, self.error_code().as_deref()) {
            (_, Some("invalid_client")) => {
                "check the client id and client secret (the secret may have been rotated)".into()
            }
            (_, Some("invalid_grant")) => "the credential was refused: it may be revoked, expired or disabled, or this machine's clock may be wrong".into(),
            (300..=399, _) => "the endpoint redirected (redirects are not followed): a proxy, or IAP itself, is answering instead of the API; check the endpoint overrides".into(),
            (401 | 403, _) => "check that the credentials are valid and hold the role needed for this call".into(),
            (404, _) => "check the names (project, secret, service account) and the endpoint overrides".into(),
            (429 | 500..=599, _) => "Google is busy or failing; try again in a minute".into(),
            _ => "run with -vv for details".into(),
        };
        Error::Provider { url: self.url, status: self.status, detail, hint }
    }
}

fn budget(timeout: Duration) -> Duration {
    (timeout * 2).max(Duration::from_secs(5))
}

/// How much of a body is read: all of it up to a limit (more is an error), or only its beginning.
#[derive(Debug, Clone, Copy)]
enum BodyLimit {
    Strict(u64),
    Truncate(u64),
}

/// The largest answer read from Google's APIs.
const MAX_BODY: u64 = 1 << 20;

/// How much of a body [`Http::get_head`] keeps.
pub const HEAD_BODY_LIMIT: u64 = 64 << 10;

fn read_response(
    shown: &str,
    response: &mut ureq::http::Response<ureq::Body>,
    limit: BodyLimit,
) -> Result<Response, ureq::Error> {
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
    let content_type = header("content-type").unwrap_or_default();
    let status = response.status().as_u16();
    let body = match limit {
        BodyLimit::Strict(max) => response.body_mut().with_config().limit(max).read_to_string()?,
        BodyLimit::Truncate(max) => {
            use std::io::Read;
            let mut bytes = Vec::new();
            response.body_mut().as_reader().take(max).read_to_end(&mut bytes)?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    Ok(Response { url: shown.to_string(), status, content_type, body, headers, retry_after })
}

fn describe_error_body(content_type: &str, body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        match &value["error"] {
            serde_json::Value::String(code) => {
                return match value["error_description"].as_str() {
                    Some(description) => {
                        format!("{} ({})", clean(code, 60), clean(description, 200))
                    }
                    None => clean(code, 60),
                };
            }
            serde_json::Value::Object(api) => {
                let status = api.get("status").and_then(|s| s.as_str()).unwrap_or("error");
                let message = api.get("message").and_then(|s| s.as_str()).unwrap_or("");
                return format!("{} ({})", clean(status, 60), clean(message, 200));
            }
            _ => {}
        }
    }
    if looks_like_html(content_type, body) {
        "an HTML page".into()
    } else if body.trim().is_empty() {
        "an empty body".into()
    } else {
        clean(body, 200)
    }
}

fn looks_like_html(content_type: &str, body: &str) -> bool {
    content_type.contains("html") && body.trim_start().starts_with('<')
        || body.trim_start().to_ascii_lowercase().starts_with("<!doctype")
        || body.trim_start().to_ascii_lowercase().starts_with("<html")
}

/// A URL split without the `url` crate, for the warm path: `scheme://host[:port][/path]` in plain
/// lowercase ASCII, nothing that needs the full parser (no user info, query, fragment, percent sign,
/// IPv6 literal or non-ASCII host). `None` means "use the full parser", never "invalid".
#[derive(Debug, PartialEq, Eq)]
pub struct SimpleUrl<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
}

impl SimpleUrl<'_> {
    pub fn parse(url: &str) -> Option<SimpleUrl<'_>> {
        let (scheme, rest) = url.split_once("://")?;
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, port.parse().ok()?)
            }
            Some(_) => return None,
            None => (authority, default_port),
        };
        let host_ok = !host.is_empty()
            && !host.starts_with(['.', '-'])
            && !host.ends_with('.')
            && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let path_ok = path.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%' | b'\\' | b'@'))
            && !path.split('/').any(|segment| segment == "." || segment == "..");
        (host_ok && path_ok && port != 0).then_some(SimpleUrl { scheme, host, port, path })
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.starts_with("127.") && self.host.split('.').count() == 4
    }
}

/// Refuses anything but `https://`, or `http://` to a loopback host.
pub fn check_url(url: &str) -> Result<()> {
    if let Some(simple) = SimpleUrl::parse(url)
        && (simple.scheme == "https" || simple.is_loopback())
    {
        return Ok(());
    }
    let parsed =
        url::Url::parse(url).map_err(|e| Error::Usage(format!("'{}' is not a valid URL ({e})", clean(url, 200))))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(Error::Usage(format!(
            "refusing to send credentials over plain http to {}: use https (http:// is allowed only to 127.0.0.1, [::1] or localhost)",
            display_url(url)
        ))),
        other => Err(Error::Usage(format!("unsupported URL scheme '{}' in {}", clean(other, 20), display_url(url)))),
    }
}

fn is_link_local_http(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    parsed.scheme() == "http"
        && match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_link_local(),
            Some(url::Host::Ipv6(ip)) => (ip.segments()[0] & 0xffc0) == 0xfe80,
            _ => false,
        }
}

pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The URL as shown in messages: without query string or fragment (they may carry codes or tokens).
pub fn display_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    clean(&url[..end], 200)
}

fn root_certs(ca_file: Option<&Path>) -> Result<RootCerts> {
    let certs: Vec<Certificate<'static>> =
        ca_certificates(ca_file)?.iter().map(|der| Certificate::from_der(der.as_ref()).to_owned()).collect();
    if certs.is_empty() {
        log::debug(format_args!("no system CA certificates found; using the built-in Mozilla roots"));
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The system's CA certificates plus those of `--ca-file` (DER); empty when the system has none and no
/// file is given (callers then use the built-in Mozilla roots).
pub fn ca_certificates(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>> {
    let mut certs: Vec<CertificateDer<'static>> = rustls_native_certs::load_native_certs().certs;
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| Error::io(format!("could not read --ca-file {}", path.display()), e))?;
        let before = certs.len();
        certs.extend(CertificateDer::pem_slice_iter(&pem).filter_map(|item| item.ok()));
        if certs.len() == before {
            return Err(Error::config(
                format!("--ca-file {} holds no PEM certificate", path.display()),
                "give a file with one or more '-----BEGIN CERTIFICATE-----' blocks",
            ));
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_url("http://127.0.0.1:8080/token").is_ok());
        assert!(check_url("http://[::1]:8080/token").is_ok());
        assert!(check_url("http://localhost/token").is_ok());
        assert!(check_url("https://oauth2.googleapis.com/token").is_ok());
        let err = check_url("http://oauth2.googleapis.com/token").unwrap_err();
        assert!(err.to_string().contains("refusing to send credentials over plain http"));
        assert!(check_url("http://127.0.0.1.evil.example/").is_err());
        assert!(check_url("ftp://127.0.0.1/").is_err());
        assert!(is_link_local_http("http://169.254.169.254/metadata/identity/oauth2/token"));
        assert!(is_link_local_http("http://[fe80::1]/x"));
        assert!(!is_link_local_http("http://10.0.0.1/x"));
        assert!(!is_link_local_http("https://169.254.169.254/x"));
    }

    #[test]
    fn the_simple_split_agrees_with_the_url_crate_or_declines() {
        for url in [
            "https://flyte.example.com",
            "https://flyte.example.com/console/x",
            "http://127.0.0.1:8080/a",
            "https://h.example.com:8443/",
            "http://localhost:1/",
            "https://x.example.com/a/../b",
            "https://X.example.com/",
            "https://u:p@x.example.com/",
            "https://x.example.com/?q=1",
            "https://[::1]:8/",
            "http://flyte.example.com/",
            "ftp://x.example.com/",
            "https://x.example.com:99999/",
        ] {
            let Ok(full) = url::Url::parse(url) else {
                assert!(SimpleUrl::parse(url).is_none() && check_url(url).is_err(), "{url}");
                continue;
            };
            if let Some(simple) = SimpleUrl::parse(url) {
                assert_eq!(simple.scheme, full.scheme(), "{url}");
                assert_eq!(Some(simple.host), full.host_str(), "{url}");
                assert_eq!(Some(simple.port), full.port_or_known_default(), "{url}");
                assert_eq!(if simple.path.is_empty() { "/" } else { simple.path }, full.path(), "{url}");
            }
            let by_crate = matches!(full.scheme(), "https") || full.scheme() == "http" && is_loopback(&full);
            assert_eq!(check_url(url).is_ok(), by_crate, "{url}");
        }
    }

    #[test]
    fn display_url_drops_query() {
        assert_eq!(display_url("https://x/token?code=secret#frag"), "https://x/token");
    }

    #[test]
    fn error_bodies_keep_googles_words() {
        assert_eq!(
            describe_error_body(
                "application/json",
                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#
            ),
            "invalid_grant (Token has been expired or revoked.)"
        );
        assert_eq!(
            describe_error_body(
                "application/json",
                r#"{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}"#
            ),
            "PERMISSION_DENIED (Permission denied)"
        );
        assert_eq!(describe_error_body("text/html", "<html><body>x</body></html>"), "an HTML page");
    }
}
