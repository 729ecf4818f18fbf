//! Starting from the service URL: the audience discovered from IAP's sign-in redirect with one
//! unauthenticated GET, remembered with the token (a warm call makes no request at all), discovered again
//! after --force-refresh, logout or seven days, IAP's Google-managed OAuth client, and every way a URL can
//! fail to be IAP, each one clear line.

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;
use crate::iap_front::{IapConfig, IapFront, Mode};
use crate::tls_front::TlsFront;

fn front(h: &Harness) -> IapFront {
    IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()))
}

fn key_url_token(h: &Harness, url: &str, extra: &[&str]) -> Run {
    let key = h.key_file();
    let mut args = vec!["token", "--url", url, "--service-account-key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    h.run(&args)
}

/// GETs `url` with the token as IAP's clients send it; the status and body.
fn through_iap(url: &str, token: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().new_agent();
    let mut answer = agent.get(url).header("Authorization", &format!("Bearer {token}")).call().unwrap();
    (answer.status().as_u16(), answer.body_mut().read_to_string().unwrap())
}

#[test]
fn the_audience_is_discovered_once_and_the_warm_path_makes_no_request() {
    let h = Harness::new();
    let iap = front(&h);
    let run = key_url_token(&h, &iap.url(), &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_schema("token-json.schema.json", &out);
    assert_eq!(out["audience"], AUD);
    assert_eq!(out["url"], iap.url());
    let token = out["token"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["aud"], AUD);
    // Discovery was one GET without any credential.
    let seen = iap.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].authorization.as_deref(), seen[0].proxy_authorization.as_deref()), (None, None));
    assert_eq!(seen[0].status, 302);
    // IAP lets the token through.
    let (status, body) = through_iap(&format!("{}/api", iap.url()), token);
    assert_eq!(status, 200, "{body}");
    // Warm: no request to IAP, none to Google.
    h.google.reset_counts();
    let again = key_url_token(&h, &iap.url(), &[]);
    assert_eq!(again.token(), token);
    assert_eq!(again.stderr, "");
    assert_eq!(iap.seen().len(), 2, "only the test's own request was added");
    assert_eq!(h.google.requests().len(), 0);
    let entries = h.cache_entries();
    assert_eq!(entries.len(), 1);
    assert_schema("cache-entry.schema.json", &entries[0].1);
    assert_eq!(entries[0].1["discovered"]["url"], iap.url());
}

#[test]
fn force_refresh_logout_and_age_discover_again_and_a_changed_client_is_said_once() {
    let h = Harness::new();
    let iap = front(&h);
    key_url_token(&h, &iap.url(), &[]).token();
    let discoveries = || iap.seen().iter().filter(|s| s.status == 302).count();
    assert_eq!(discoveries(), 1);
    // --force-refresh discovers again; IAP's client was replaced meanwhile: one line says so.
    let new_client = "123-rotated.apps.googleusercontent.com";
    iap.reconfigure(|c| {
        c.client_id = new_client.into();
        c.accepted = vec![new_client.into()];
    });
    let run = key_url_token(&h, &iap.url(), &["--force-refresh"]);
    let token = run.token();
    assert_eq!(
        run.stderr,
        format!(
            "iap-token: the audience of {} changed from {AUD} to {new_client} (IAP's OAuth client was replaced)\n",
            iap.url()
        )
    );
    assert_eq!(jwt_claims(&token)["aud"], new_client);
    assert_eq!(discoveries(), 2);
    // Older than seven days: discovered again (and the token refetched with it).
    let (path, mut entry) = h.cache_entries().remove(0);
    entry["discovered"]["at"] = (now() - 8 * 24 * 3600).into();
    std::fs::write(&path, entry.to_string()).unwrap();
    assert_eq!(key_url_token(&h, &iap.url(), &[]).stderr, "");
    assert_eq!(discoveries(), 3);
    // logout --url forgets it: the next call discovers again.
    let key = h.key_file();
    let logout = h.run(&["logout", "--url", &iap.url(), "--service-account-key", key.to_str().unwrap()]);
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert!(h.cache_entries().is_empty());
    key_url_token(&h, &iap.url(), &[]).token();
    assert_eq!(discoveries(), 4);
}

#[test]
fn an_explicit_audience_wins_and_makes_no_discovery() {
    let h = Harness::new();
    let iap = front(&h);
    let token = key_url_token(&h, &iap.url(), &["--audience", "789-explicit.apps.googleusercontent.com"]).token();
    assert_eq!(jwt_claims(&token)["aud"], "789-explicit.apps.googleusercontent.com");
    assert!(iap.seen().is_empty(), "no request to the service");
}

#[test]
fn discovery_over_https_with_a_ca_file() {
    let h = Harness::new();
    let iap = front(&h);
    let tls = TlsFront::start(iap.addr());
    let ca = h.write("ca.pem", &tls.ca_pem);
    let without = key_url_token(&h, &tls.url(), &[]).failure(1);
    assert!(without.contains("could not discover the audience of"), "{without}");
    let token = key_url_token(&h, &tls.url(), &["--ca-file", ca.to_str().unwrap()]).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
}

#[test]
fn a_google_managed_oauth_client_makes_the_desktop_client_the_audience() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    crate::user_flow::seed_login(&h, &h.google.issue_refresh_token(DESKTOP_CLIENT, "user@example.com"));
    // IAP's client belongs to Google's project, not to the desktop client's (456).
    let managed = "999999-google-managed.apps.googleusercontent.com";
    let iap = IapFront::start(IapConfig {
        accepted: vec![managed.into(), DESKTOP_CLIENT.into()],
        ..IapConfig::new(managed, &h.google.auth_uri())
    });
    let args = [
        "token",
        "--url",
        &iap.url(),
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret",
        DESKTOP_SECRET,
        "--non-interactive",
        "-v",
    ];
    let run = h.run_with(&args, &[("IAP_TOKEN_TOKEN_URI", &h.google.token_uri())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim();
    assert_eq!(jwt_claims(token)["aud"], DESKTOP_CLIENT);
    assert!(run.stderr.contains(&format!("uses {managed}, an OAuth client of another project (IAP's Google-managed client): the audience is the desktop client {DESKTOP_CLIENT}")), "{}", run.stderr);
    assert_eq!(through_iap(&iap.url(), token).0, 200);
}

#[test]
fn a_url_that_is_not_behind_iap_fails_in_one_line_naming_what_came_back() {
    let h = Harness::new();
    let cases: Vec<(Mode, String)> = vec![
        (Mode::PlainApp, "answered HTTP 200 (from the server): it did not redirect to Google sign-in".into()),
        (Mode::Html401, "answered HTTP 401 (from the server): it did not redirect to Google sign-in".into()),
        (Mode::Huge(50 << 20), "answered HTTP 200 (from the server): it did not redirect to Google sign-in".into()),
        (
            Mode::RedirectElsewhere,
            "redirected to https://login.example.com/sso: it did not redirect to Google sign-in".into(),
        ),
    ];
    for (mode, said) in cases {
        let iap = IapFront::start(IapConfig { mode: mode.clone(), ..IapConfig::new(AUD, &h.google.auth_uri()) });
        let line = key_url_token(&h, &iap.url(), &[]).failure(1);
        assert_eq!(
            line,
            format!(
                "iap-token: error: {} {said}; is it behind IAP? Check the URL, or pass --audience (the IAP OAuth client id)",
                iap.url()
            ),
            "{mode:?}"
        );
        assert_eq!(iap.seen().len(), 1, "{mode:?}: one request, no retry");
    }
    assert_eq!(h.google.count(Endpoint::Token), 0, "no token is minted for a URL that is not IAP's");
    assert!(h.cache_entries().is_empty());
}

#[test]
fn bad_urls_are_usage_errors_and_a_dead_one_a_network_error() {
    let h = Harness::new();
    let line = key_url_token(&h, "http://flyte.example.com", &[]).failure(2);
    assert_eq!(
        line,
        "iap-token: error: --url: refusing to send credentials over plain http to http://flyte.example.com: use https (http:// is allowed only to 127.0.0.1, [::1] or localhost); see 'iap-token --help'"
    );
    let line = key_url_token(&h, "flyte.example.com", &[]).failure(2);
    assert!(line.starts_with("iap-token: error: --url: 'flyte.example.com' is not a valid URL"), "{line}");
    let line = key_url_token(&h, "http://127.0.0.1:9/", &[]).failure(1);
    assert!(
        line.starts_with("iap-token: error: could not discover the audience of http://127.0.0.1:9/: no answer from"),
        "{line}"
    );
}
