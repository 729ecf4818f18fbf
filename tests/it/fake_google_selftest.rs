//! Self-tests of [`crate::fake_google`] through a real HTTP client.
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::fake_google::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const METADATA_ACCOUNTS: &str = "/computeMetadata/v1/instance/service-accounts/";
const IAM_PREFIX: &str = "/v1/projects/-/serviceAccounts/";

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_secs() as i64)
}

fn parse_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let (_, value) = pairs.iter().find(|(k, _)| k == name)?;
    Some(value)
}

fn pkce_challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

type Answer = (u16, Value, ureq::http::HeaderMap);

fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    ureq::Agent::new_with_config(config)
}

/// Status, body (JSON, or a JSON string when it is not JSON) and headers.
fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("an HTTP answer");
    let text = response.body_mut().read_to_string().expect("a text body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (response.status().as_u16(), body, response.headers().clone())
}

fn post_form(url: &str, form: &[(&str, &str)]) -> Answer {
    answer(agent().post(url).send_form(form.iter().copied()))
}

fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.call())
}

fn post_json(url: &str, bearer: &str, body: &Value) -> Answer {
    let request = agent()
        .post(url)
        .header("Authorization", format!("Bearer {bearer}"))
        .header("Content-Type", "application/json");
    answer(request.send(body.to_string()))
}

fn sa_claims(fake: &FakeGoogle, extra: Value) -> Value {
    let now = now();
    let mut claims = json!({"iss": SA_EMAIL, "aud": fake.token_uri(), "iat": now, "exp": now + 3600});
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    claims
}

fn jwt_bearer(fake: &FakeGoogle, assertion: &str) -> Answer {
    post_form(&fake.token_uri(), &[("grant_type", JWT_BEARER), ("assertion", assertion)])
}

fn id_token_claims(jwt: &Value) -> Value {
    let jwt = jwt.as_str().expect("a JWT string");
    let (header, claims) = verify_google_jwt(jwt).expect("signed with google-key");
    assert_eq!(header["kid"], GOOGLE_KEY_ID);
    assert_eq!(claims, jwt_claims(jwt));
    claims
}

#[test]
fn jwt_bearer_grants_id_and_access_tokens() {
    let fake = FakeGoogle::start();
    let key: Value = serde_json::from_str(&sa_key_json(&fake.token_uri())).expect("JSON");
    assert!(key["private_key"].as_str().is_some_and(|k| k.starts_with("-----BEGIN PRIVATE KEY-----\n")));
    assert_eq!(key["token_uri"], fake.token_uri().as_str());

    let claims = sa_claims(&fake, json!({"target_audience": "iap-aud"}));
    let (status, body, _) = jwt_bearer(&fake, &sa_assertion(&claims));
    assert_eq!(status, 200, "{body}");
    let id = id_token_claims(&body["id_token"]);
    assert_eq!((id["aud"].as_str(), id["email"].as_str()), (Some("iap-aud"), Some(SA_EMAIL)));
    assert_eq!(id["iss"], "https://accounts.google.com");
    assert_eq!(id["exp"].as_i64().zip(id["iat"].as_i64()).map(|(e, i)| e - i), Some(3600));

    let claims = sa_claims(&fake, json!({"scope": "https://www.googleapis.com/auth/cloud-platform"}));
    let (status, body, _) = jwt_bearer(&fake, &sa_assertion(&claims));
    assert_eq!((status, body["expires_in"].as_i64()), (200, Some(3599)), "{body}");
    let token = body["access_token"].as_str().expect("an access token");
    assert!(token.starts_with("ya29.fake-") && fake.valid_access_tokens().contains(&token.into()));
    assert_eq!(fake.count(Endpoint::Token), 2);
    let first = &fake.requests()[0];
    assert_eq!((first.method.as_str(), first.form_value("grant_type")), ("POST", Some(JWT_BEARER)));
    assert!(first.header("Content-Type").is_some_and(|t| t.contains("urlencoded")));
}

#[test]
fn jwt_bearer_rejects_bad_assertions() {
    let fake = FakeGoogle::start();
    let good = sa_assertion(&sa_claims(&fake, json!({"target_audience": "a"})));
    let other = sa_assertion(&sa_claims(&fake, json!({"target_audience": "b"})));
    let (head, _) = good.rsplit_once('.').expect("a JWT");
    let (_, other_sig) = other.rsplit_once('.').expect("a JWT");
    let expired = sa_claims(&fake, json!({"target_audience": "a", "iat": now() - 7200, "exp": now() - 3600}));
    let wrong_aud = sa_claims(&fake, json!({"target_audience": "a", "aud": "https://x.example"}));
    let cases = [
        format!("{head}.{other_sig}"),
        fake.sign_jwt(&sa_claims(&fake, json!({"target_audience": "a"}))),
        sa_assertion(&expired),
        sa_assertion(&wrong_aud),
        "not-a-jwt".to_owned(),
    ];
    for bad in cases {
        let (status, body, _) = jwt_bearer(&fake, &bad);
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    }
    let (status, body, _) = post_form(&fake.token_uri(), &[]);
    assert_eq!((status, body), (400, json!({"error": "invalid_request"})));
}

/// Runs the authorize step; returns the redirect's query.
fn authorize(fake: &FakeGoogle, challenge: &str, login_hint: Option<&str>) -> Vec<(String, String)> {
    let mut url = url::Url::parse(&fake.auth_uri()).expect("a URL");
    url.query_pairs_mut()
        .append_pair("client_id", "desktop")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("redirect_uri", "http://127.0.0.1:4444/")
        .append_pair("state", "st&te")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("access_type", "offline");
    if let Some(hint) = login_hint {
        url.query_pairs_mut().append_pair("login_hint", hint);
    }
    let (status, _, headers) = get(url.as_str(), &[]);
    assert_eq!(status, 302);
    let location = headers.get("location").and_then(|l| l.to_str().ok()).expect("a Location");
    assert!(location.starts_with("http://127.0.0.1:4444/?"), "{location}");
    let query = parse_pairs(location.split_once('?').map_or("", |(_, q)| q));
    assert_eq!(find(&query, "state"), Some("st&te"));
    query
}

fn exchange(fake: &FakeGoogle, code: &str, verifier: &str) -> Answer {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "http://127.0.0.1:4444/"),
        ("client_id", "desktop"),
        ("client_secret", "shh"),
        ("code_verifier", verifier),
    ];
    post_form(&fake.token_uri(), &form)
}

#[test]
fn authorize_and_code_exchange_with_pkce() {
    let fake = FakeGoogle::start();
    fake.add_user_client("desktop", "shh");
    let verifier = "v".repeat(43);
    let challenge = pkce_challenge(&verifier);

    let query = authorize(&fake, &challenge, None);
    let code = find(&query, "code").expect("a code");
    let (status, body, _) = exchange(&fake, code, &"w".repeat(43));
    assert_eq!((status, &body["error_description"]), (400, &json!("Invalid code verifier.")));

    let query = authorize(&fake, &challenge, Some("alice@example.com"));
    let code = find(&query, "code").expect("a code");
    let (status, body, _) = exchange(&fake, code, &verifier);
    assert_eq!(status, 200, "{body}");
    let id = id_token_claims(&body["id_token"]);
    assert_eq!((id["aud"].as_str(), id["email"].as_str()), (Some("desktop"), Some("alice@example.com")));
    let refresh_token = body["refresh_token"].as_str().expect("a refresh token");
    let (status, body, _) = exchange(&fake, code, &verifier);
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")), "a code is single use");

    assert_eq!(refresh(&fake, refresh_token, "shh", "iap").0, 200, "the new refresh token works");

    fake.set_authorize_decision(false);
    let query = authorize(&fake, &challenge, None);
    assert_eq!((find(&query, "error"), find(&query, "code")), (Some("access_denied"), None));
    let (status, _, _) = get(&format!("{}?client_id=unknown", fake.auth_uri()), &[]);
    assert_eq!(status, 400);
}

fn refresh(fake: &FakeGoogle, token: &str, secret: &str, audience: &str) -> Answer {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", "desktop"),
        ("client_secret", secret),
        ("audience", audience),
    ];
    post_form(&fake.token_uri(), &form)
}

#[test]
fn refresh_with_audience_and_revocation() {
    let fake = FakeGoogle::start();
    fake.add_user_client("desktop", "shh");
    let token = fake.issue_refresh_token("desktop", "bob@example.com");
    let (status, body, _) = refresh(&fake, &token, "shh", "iap-web-client");
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    let id = id_token_claims(&body["id_token"]);
    assert_eq!((id["aud"].as_str(), id["email"].as_str()), (Some("iap-web-client"), Some("bob@example.com")));
    assert_eq!(refresh(&fake, &token, "wrong", "a").1["error"], "invalid_client");

    let (status, _, _) = post_form(&fake.revoke_uri(), &[("token", &token)]);
    assert_eq!(status, 200);
    let (status, body, _) = refresh(&fake, &token, "shh", "a");
    assert_eq!((status, &body["error_description"]), (400, &json!("Token has been expired or revoked.")));
    assert_eq!(post_form(&fake.revoke_uri(), &[("token", "nope")]).1["error"], "invalid_token");

    let other = fake.issue_refresh_token("desktop", "carol@example.com");
    fake.revoke_all_refresh_tokens();
    assert_eq!(refresh(&fake, &other, "shh", "a").1["error"], "invalid_grant");
}

#[test]
fn metadata_requires_the_header() {
    let fake = FakeGoogle::start();
    let base = format!("http://{}{METADATA_ACCOUNTS}default", fake.metadata_host());
    let flavor = [("Metadata-Flavor", "Google")];
    let identity = format!("{base}/identity?audience=aud-1&format=full");
    assert_eq!(get(&identity, &[]).0, 403);

    let (status, body, headers) = get(&identity, &flavor);
    assert_eq!((status, headers.get("metadata-flavor").map(|v| v.as_bytes())), (200, Some(&b"Google"[..])));
    let id = id_token_claims(&body);
    assert_eq!((id["aud"].as_str(), id["email"].as_str()), (Some("aud-1"), Some(VM_EMAIL)));
    assert_eq!(id["google"]["compute_engine"]["project_id"], "test-project");
    assert_eq!(get(&format!("{base}/identity"), &flavor).0, 400);
    assert_eq!(get(&format!("{base}/email"), &flavor).1, VM_EMAIL);
    let (status, body, _) = get(&format!("{base}/token"), &flavor);
    assert_eq!((status, &body["token_type"]), (200, &json!("Bearer")));
    assert_eq!(fake.count(Endpoint::MetadataIdentity), 3);
}

#[test]
fn generate_id_token_needs_permission() {
    let fake = FakeGoogle::start();
    let url = format!("{}{IAM_PREFIX}{}:generateIdToken", fake.url(), SA_EMAIL.replace('@', "%40"));
    let bearer = fake.issue_access_token("dev@example.com");
    let request = json!({"audience": "iap-aud", "includeEmail": true});
    let (status, body, _) = post_json(&url, &bearer, &request);
    assert_eq!((status, &body["error"]["status"]), (403, &json!("PERMISSION_DENIED")));
    assert_eq!(post_json(&url, "ya29.bogus", &request).0, 401);

    fake.allow_impersonation("dev@example.com", SA_EMAIL);
    let (status, body, _) = post_json(&url, &bearer, &request);
    assert_eq!(status, 200, "{body}");
    let id = id_token_claims(&body["token"]);
    assert_eq!((id["aud"].as_str(), id["email"].as_str()), (Some("iap-aud"), Some(SA_EMAIL)));
    assert_eq!(post_json(&url, &bearer, &json!({"audience": "a"})).0, 400);
    assert_eq!(fake.count(Endpoint::GenerateIdToken), 4);
}

#[test]
fn secret_access() {
    let fake = FakeGoogle::start();
    fake.set_secret("projects/p/secrets/s/versions/latest", b"client-secret\n", Some(42));
    fake.set_secret("projects/p/secrets/t/versions/3", b"x", None);
    let bearer = fake.issue_access_token(SA_EMAIL);
    let access = |path: &str, bearer: &str| {
        get(&format!("{}/v1/{path}:access", fake.url()), &[("Authorization", &format!("Bearer {bearer}"))])
    };
    let (status, body, _) = access("projects/p/secrets/s/versions/latest", &bearer);
    assert_eq!((status, &body["name"]), (200, &json!("projects/p/secrets/s/versions/1")));
    let data = body["payload"]["data"].as_str().map(|d| STANDARD.decode(d));
    assert_eq!(data.and_then(Result::ok).as_deref(), Some(&b"client-secret\n"[..]));
    assert_eq!(body["payload"]["dataCrc32c"], "42");
    let (_, body, _) = access("projects/p/secrets/t/versions/3", &bearer);
    assert!(body["payload"].get("dataCrc32c").is_none());
    let (status, body, _) = access("projects/p/secrets/u/versions/1", &bearer);
    assert_eq!(
        (status, &body["error"]["message"]),
        (404, &json!("Secret [projects/p/secrets/u] not found or has no versions."))
    );
    assert_eq!(access("projects/p/secrets/s/versions/latest", "ya29.bogus").0, 401);
}

fn metadata(fake: &FakeGoogle, leaf: &str) -> String {
    format!("{}{METADATA_ACCOUNTS}default/{leaf}", fake.url())
}

#[test]
fn answer_faults() {
    let fake = FakeGoogle::start();
    let (email, flavor) = (metadata(&fake, "email"), [("Metadata-Flavor", "Google")]);
    fake.fail_next(1, Fault::Status(500));
    let (status, body, _) = get(&email, &flavor);
    let expected = json!({"error": "internal_error", "error_description": "fake failure"});
    assert_eq!((status, body), (500, expected));
    assert_eq!(get(&email, &flavor).0, 200, "fail_next(1, ..) fails one request");

    fake.fail_next(1, Fault::StatusRetryAfter(503, 7));
    let (status, _, headers) = get(&email, &flavor);
    let retry_after = headers.get("retry-after").map(|v| v.as_bytes());
    assert_eq!((status, retry_after), (503, Some(&b"7"[..])));

    fake.fail_next(1, Fault::Html);
    let (status, body, headers) = get(&email, &flavor);
    assert_eq!((status, body), (200, json!("<html>sign in</html>")));
    assert!(headers.get("metadata-flavor").is_none());

    fake.fail_next(1, Fault::InvalidClient);
    let (status, body, _) = get(&email, &flavor);
    assert_eq!((status, &body["error"]), (401, &json!("invalid_client")));

    fake.fail_next(1, Fault::TruncatedJson);
    let (status, body, _) = get(&metadata(&fake, "token"), &flavor);
    assert!(status == 200 && body.as_str().is_some_and(|b| b.starts_with("{\"")), "{body}");

    fake.fail_next(1, Fault::Slow(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    assert_eq!(get(&email, &flavor).0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    fake.set_fault(Some(Fault::Drop));
    for _ in 0..2 {
        let dropped = agent().get(&email).header("Metadata-Flavor", "Google").call();
        let error = dropped.expect_err("the connection is closed without an answer");
        assert!(matches!(error, ureq::Error::Io(_)), "{error:?}");
    }
    fake.set_fault(None);
    assert_eq!(get(&email, &flavor).0, 200);
    assert_eq!(fake.count(Endpoint::MetadataEmail), 9, "faulted requests are recorded");
    fake.reset_counts();
    assert!(fake.requests().is_empty());
}

#[test]
fn claims_faults_and_lifetime() {
    let fake = FakeGoogle::start();
    let identity = format!("{}?audience=aud", metadata(&fake, "identity"));
    let claims = |fault: Option<Fault>| {
        fake.set_fault(fault);
        let (status, token, _) = get(&identity, &[("Metadata-Flavor", "Google")]);
        assert_eq!(status, 200, "{token}");
        id_token_claims(&token)
    };
    let now = now();
    assert_eq!(claims(Some(Fault::WrongAud))["aud"], WRONG_AUDIENCE);
    assert!(claims(Some(Fault::NoExp)).get("exp").is_none());
    assert!(claims(Some(Fault::Expired))["exp"].as_i64() < Some(now));
    assert!(claims(Some(Fault::IatFuture))["iat"].as_i64() >= Some(now + 3600));
    fake.set_id_token_lifetime(60);
    let normal = claims(None);
    assert_eq!((normal["aud"].as_str(), normal["email"].as_str()), (Some("aud"), Some(VM_EMAIL)));
    assert_eq!(normal["exp"].as_i64().zip(normal["iat"].as_i64()).map(|(e, i)| e - i), Some(60));
}

#[test]
fn serves_a_herd() {
    let fake = FakeGoogle::start();
    let email = format!("{}{METADATA_ACCOUNTS}default/email", fake.url());
    let herd: Vec<_> = (0..128)
        .map(|_| {
            let email = email.clone();
            thread::spawn(move || get(&email, &[("Metadata-Flavor", "Google")]).0)
        })
        .collect();
    for client in herd {
        assert_eq!(client.join().ok(), Some(200));
    }
    assert_eq!(fake.count(Endpoint::MetadataEmail), 128);
}
