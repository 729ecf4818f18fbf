//! Service-account signed JWTs (`--token-type signed-jwt`): signed locally with a key file (no request
//! at all), by IAM Credentials `signJwt` for impersonation and the metadata server, cached apart from ID
//! tokens, accepted by the fake IAP; a person cannot sign, and an audience that is no URL is refused.

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;
use crate::iap_front::{IapConfig, IapFront};

const TARGET: &str = "deployer@test-project.iam.gserviceaccount.com";

/// `command` for https://flyte.example.com with `--token-type signed-jwt`, then `rest`.
fn signed<'a>(command: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    [&[command, "--url", "https://flyte.example.com", "--token-type", "signed-jwt"], rest].concat()
}

/// `token` for flyte.example.com as a signed JWT of TARGET, impersonated with the key at `key`.
fn impersonating(key: &str) -> Vec<&str> {
    signed("token", &["--impersonate-service-account", TARGET, "--service-account-key", key])
}

fn front(h: &Harness) -> IapFront {
    IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()))
}

fn json_of(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_schema("token-json.schema.json", &value);
    value
}

/// GETs `url` with the token as IAP's clients send it; the status and body.
fn through_iap(url: &str, token: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().new_agent();
    let mut answer = agent.get(url).header("Authorization", &format!("Bearer {token}")).call().unwrap();
    (answer.status().as_u16(), answer.body_mut().read_to_string().unwrap())
}

#[test]
fn a_key_file_signs_locally_with_no_request_and_iap_lets_it_through() {
    let h = Harness::new();
    let iap = front(&h);
    let key = h.key_file();
    let url = format!("{}/", iap.url());
    let args = ["token", "--url", &url, "--token-type", "signed-jwt", "--service-account-key", key.to_str().unwrap()];
    let run = h.run(&[&args[..], &["--format", "json"]].concat());
    let out = json_of(&run);
    assert_eq!(run.stderr, "");
    assert_eq!(out["token_type"], "signed-jwt");
    assert_eq!(out["source"], "service-account-key");
    assert_eq!(out["principal"], SA_EMAIL);
    let audience = format!("{}/*", iap.url());
    assert_eq!(out["audience"], audience, "the URL without its trailing slash, with /*");
    let token = out["token"].as_str().unwrap();
    let (header, claims) = verify_sa_jwt(token).expect("signed by the service account's key");
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str(), header["kid"].as_str()),
        (Some("RS256"), Some("JWT"), Some(SA_KEY_ID))
    );
    assert_eq!(claims["iss"], SA_EMAIL);
    assert_eq!(claims["sub"], SA_EMAIL);
    assert_eq!(claims["aud"], audience);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert!((iat - now()).abs() < 60, "iat is now");
    // No request to Google, none to the URL (a signed JWT needs no discovery).
    assert_eq!(h.google.requests().len(), 0);
    assert_eq!(iap.seen().len(), 0);
    // IAP accepts it on any path, gRPC-style ones included.
    for path in ["/api/v1/projects", "/flyteidl.service.AdminService/ListProjects"] {
        let (status, body) = through_iap(&format!("{}{path}", iap.url()), token);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["principal"], SA_EMAIL);
    }
    // Warm: the same token from the cache; the entry says what it is.
    let again = h.run(&args);
    assert_eq!(again.token(), token);
    let entries = h.cache_entries();
    assert_eq!(entries.len(), 1);
    assert_schema("cache-entry.schema.json", &entries[0].1);
    assert_eq!(entries[0].1["kind"], "signed_jwt");
    // The ID token for the same URL is another entry, and another kind of token.
    let id = h.run(&["token", "--url", &url, "--service-account-key", key.to_str().unwrap(), "--format", "json"]);
    let id = json_of(&id);
    assert_eq!(id["token_type"], "id-token");
    assert_eq!(id["audience"], AUD);
    assert_ne!(id["token"], out["token"]);
    assert_eq!(h.cache_entries().len(), 2);
    // A stale signed JWT is signed anew, still without a request.
    h.age_entries_where(|e| e["kind"] == "signed_jwt");
    h.google.reset_counts();
    let fresh = h.run(&args).token();
    assert!(jwt_claims(&fresh)["exp"].as_i64().unwrap() > now() + 3000, "a new hour");
    let entry = h.cache_entries().into_iter().find(|(_, e)| e["kind"] == "signed_jwt").unwrap().1;
    assert!(entry["expires_at"].as_i64().unwrap() > now() + 3000, "{entry}");
    assert_eq!(h.google.requests().len(), 0);
    // logout for the URL forgets both.
    let run = h.run(&["logout", "--url", &url, "--service-account-key", key.to_str().unwrap()]);
    assert_eq!((run.code, run.stderr.as_str()), (0, "iap-token: forgot 2 cached token(s)\n"));
    assert!(h.cache_entries().is_empty());
}

#[test]
fn an_https_audience_is_used_as_given_and_a_wildcard_url_too() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let run = h.run(&[
        "token",
        "--audience",
        "https://flyte.example.com/api/*",
        "--token-type",
        "signed-jwt",
        "--service-account-key",
        key,
    ]);
    assert_eq!(jwt_claims(&run.token())["aud"], "https://flyte.example.com/api/*");
    let run = h.run(&[
        "token",
        "--url",
        "https://flyte.example.com/*",
        "--token-type",
        "signed-jwt",
        "--service-account-key",
        key,
    ]);
    assert_eq!(jwt_claims(&run.token())["aud"], "https://flyte.example.com/*");
    // A profile's token-type picks it too.
    let config = h.path("home/.config/iap-token/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[profile.flyte]\nurl = \"https://flyte.example.com\"\ntoken-type = \"signed-jwt\"\n")
        .unwrap();
    let run = h.run(&["token", "--profile", "flyte", "--service-account-key", key]);
    assert_eq!(jwt_claims(&run.token())["aud"], "https://flyte.example.com/*");
}

#[test]
fn impersonation_and_the_metadata_server_have_google_sign_with_sign_jwt() {
    let h = Harness::new();
    let iap = front(&h);
    let key = h.key_file();
    h.google.allow_impersonation(SA_EMAIL, TARGET);
    let run = h.run(&[
        "token",
        "--url",
        &iap.url(),
        "--token-type",
        "signed-jwt",
        "--impersonate-service-account",
        TARGET,
        "--service-account-key",
        key.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let out = json_of(&run);
    assert_eq!((out["source"].as_str(), out["principal"].as_str()), (Some("impersonation"), Some(TARGET)));
    let token = out["token"].as_str().unwrap();
    let (header, claims) = verify_sa_jwt(token).unwrap();
    assert_eq!(header["kid"], MANAGED_KEY_ID);
    assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some(TARGET), Some(TARGET)));
    let sign = h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::SignJwt).expect("signJwt called");
    assert!(sign.path.contains(&format!("/serviceAccounts/{TARGET}:signJwt")), "{}", sign.path);
    let body: Value = serde_json::from_str(&sign.body).unwrap();
    let payload: Value = serde_json::from_str(body["payload"].as_str().expect("payload is a JSON string")).unwrap();
    assert_eq!(payload["aud"], format!("{}/*", iap.url()));
    assert_eq!(h.google.count(Endpoint::GenerateIdToken), 0);
    let (status, body) = through_iap(&format!("{}/api", iap.url()), token);
    assert_eq!(status, 200, "{body}");

    // The metadata server: its email, an access token, then signJwt on that email.
    h.google.reset_counts();
    let metadata = h.google.metadata_host();
    let run = h.run_with(
        &["token", "--url", &iap.url(), "--token-type", "signed-jwt", "--format", "json"],
        &[("GCE_METADATA_HOST", &metadata)],
    );
    let out = json_of(&run);
    assert_eq!((out["source"].as_str(), out["principal"].as_str()), (Some("metadata"), Some(VM_EMAIL)));
    assert_eq!(verify_sa_jwt(out["token"].as_str().unwrap()).unwrap().1["sub"], VM_EMAIL);
    assert_eq!(
        (
            h.google.count(Endpoint::MetadataEmail),
            h.google.count(Endpoint::MetadataToken),
            h.google.count(Endpoint::SignJwt)
        ),
        (1, 1, 1)
    );
    assert_eq!(h.google.count(Endpoint::MetadataIdentity), 0);
    // Warm: nothing at all.
    h.google.reset_counts();
    h.run_with(&["token", "--url", &iap.url(), "--token-type", "signed-jwt"], &[("GCE_METADATA_HOST", &metadata)])
        .token();
    assert_eq!(h.google.requests().len(), 0);
}

#[test]
fn what_cannot_sign_or_has_no_url_audience_is_one_clear_line() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    // A person cannot sign: exit 2, nothing asked of anyone.
    // Nothing configured off Google Cloud: the same line an ID token gets, saying what to configure.
    let line = h.run(&signed("token", &[])).failure(1);
    assert!(line.starts_with("iap-token: error: no credentials found: no --client-id"), "{line}");
    let line = h.run(&signed("token", &["--client-id", "desktop.apps.googleusercontent.com"])).failure(2);
    assert_eq!(
        line,
        "iap-token: error: --token-type signed-jwt needs a service account: a person cannot sign a JWT; use service-account-key, impersonation, external-account or metadata; see 'iap-token --help'"
    );
    // A client-id audience is no URL.
    let line =
        h.run(&["token", "--audience", AUD, "--token-type", "signed-jwt", "--service-account-key", key]).failure(2);
    assert_eq!(
        line,
        "iap-token: error: --token-type signed-jwt needs --url (or an https:// --audience): a signed JWT's audience is the service's URL; see 'iap-token --help'"
    );
    // Plain http to a host that is not loopback is refused like any --url.
    let line = h
        .run(&[
            "token",
            "--url",
            "http://flyte.example.com",
            "--token-type",
            "signed-jwt",
            "--service-account-key",
            key,
        ])
        .failure(2);
    assert!(line.starts_with("iap-token: error: --url: "), "{line}");
    assert_eq!(h.google.requests().len(), 0);
    assert!(h.cache_entries().is_empty());

    // signJwt denied, then answering HTML: exit 1, one line, nothing cached.
    let impersonate = impersonating(key);
    let line = h.run(&impersonate).failure(1);
    assert!(line.contains("answered HTTP 403: PERMISSION_DENIED"), "{line}");
    assert!(line.contains(TARGET), "{line}");
    h.google.allow_impersonation(SA_EMAIL, TARGET);
    h.google.set_fault(Some(Fault::Html));
    let line = h.run(&impersonate).failure(1);
    assert!(line.contains("HTML"), "{line}");
    h.google.set_fault(None);
    assert!(h.cache_entries().iter().all(|(_, e)| e["kind"] != "signed_jwt"));
    // And once Google answers, the JWT comes.
    assert_eq!(jwt_claims(&h.run(&impersonate).token())["sub"], TARGET);
}

#[test]
fn a_signed_jwt_never_shows_at_vv() {
    let h = Harness::new();
    let key = h.key_file();
    let run = h.run(&signed("token", &["-vv", "--service-account-key", key.to_str().unwrap()]));
    let token = run.token();
    assert!(!run.stderr.contains(&token), "{}", run.stderr);
    let signature = token.rsplit('.').next().unwrap();
    assert!(!run.stderr.contains(signature), "{}", run.stderr);
    assert!(run.stderr.contains("signing a new JWT"), "{}", run.stderr);
}

#[test]
fn doctor_checks_a_signed_jwt_against_iap_and_explains_an_aud_that_does_not_cover_the_url() {
    let h = Harness::new();
    let iap = front(&h);
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let url = iap.url();
    let doctor = |extra: &[&str]| {
        let args = [
            &["doctor", "--url", &url, "--token-type", "signed-jwt", "--service-account-key", key][..],
            extra,
            &["--format", "json"],
        ]
        .concat();
        let run = h.run(&args);
        let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        assert_schema("doctor.schema.json", &report);
        let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "iap").cloned().unwrap();
        (run.code, check)
    };
    let (code, check) = doctor(&[]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["detail"], format!("IAP let {SA_EMAIL} in; the application answered HTTP 200"));
    let (code, check) = doctor(&["--audience", "https://other.example.com/*"]);
    assert_eq!(code, 1);
    assert_eq!(check["status"], "fail");
    assert_eq!(
        check["detail"],
        format!(
            "IAP refused the signed JWT: its aud https://other.example.com/* does not cover this URL, IAP expects {url}/*: pass the service's own --url, or --audience {url}/*"
        )
    );
}

#[test]
fn delegates_are_sent_and_each_link_of_the_chain_must_be_allowed() {
    let h = Harness::new();
    const ADMIN: &str = "admin@example.com";
    const MIDDLE: &str = "middle@test-project.iam.gserviceaccount.com";
    let gcloud = "764086051850-gcloud.apps.googleusercontent.com";
    h.google.add_user_client(gcloud, "gcloud-secret");
    let refresh = h.google.issue_refresh_token(gcloud, ADMIN);
    let file = h.write(
        "impersonated.json",
        &serde_json::json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"),
            "delegates": [MIDDLE],
            "source_credentials": {"type": "authorized_user", "client_id": gcloud, "client_secret": "gcloud-secret", "refresh_token": refresh},
        })
        .to_string(),
    );
    let token_uri = h.google.token_uri();
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap()), ("IAP_TOKEN_TOKEN_URI", token_uri.as_str())];
    let args = signed("token", &[]);
    // ADMIN may act as MIDDLE, but MIDDLE not yet as TARGET: denied, one line.
    h.google.allow_impersonation(ADMIN, MIDDLE);
    let line = h.run_with(&args, &env).failure(1);
    assert!(
        line.contains("answered HTTP 403: PERMISSION_DENIED") && line.contains("iam.serviceAccounts.signJwt"),
        "{line}"
    );
    h.google.allow_impersonation(MIDDLE, TARGET);
    let token = h.run_with(&args, &env).token();
    assert_eq!(verify_sa_jwt(&token).unwrap().1["sub"], TARGET);
    let sign = h.google.requests().into_iter().rfind(|r| r.endpoint == Endpoint::SignJwt).unwrap();
    let body: Value = serde_json::from_str(&sign.body).unwrap();
    assert_eq!(body["delegates"], serde_json::json!([format!("projects/-/serviceAccounts/{MIDDLE}")]));
}

#[test]
fn sign_jwt_answering_garbage_or_failing_is_one_line_and_nothing_is_cached() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    h.google.allow_impersonation(SA_EMAIL, TARGET);
    let args = impersonating(key);
    // The access token that authorizes signJwt is cached by a first call, so the faults below meet signJwt.
    let other = [&args[..2], &["https://other.example.com"], &args[3..]].concat();
    h.run(&other).token();
    let signed_jwts = |h: &Harness| h.cache_entries().iter().filter(|(_, e)| e["kind"] == "signed_jwt").count();
    for fault in [Fault::TruncatedJson, Fault::Html, Fault::Status(500), Fault::Drop] {
        h.google.reset_counts();
        h.google.set_fault(Some(fault.clone()));
        let line = h.run(&args).failure(1);
        assert_eq!(h.google.count(Endpoint::Token), 0, "{fault:?}: the access token came from the cache");
        assert!(h.google.count(Endpoint::SignJwt) >= 1, "{fault:?}");
        let expected = match fault {
            Fault::TruncatedJson => "answered HTTP 200: an unreadable answer",
            Fault::Html => "an HTML page",
            Fault::Status(_) => "answered HTTP 500",
            _ => "no answer from",
        };
        assert!(line.contains(":signJwt") && line.contains(expected), "{fault:?}: {line}");
        assert_eq!(signed_jwts(&h), 1, "{fault:?}: only the first call's JWT is cached");
    }
    h.google.set_fault(None);
    h.run(&args).token();
}

#[test]
fn a_key_without_private_key_id_signs_without_kid_and_says_so_at_v() {
    let h = Harness::new();
    let mut key: Value = serde_json::from_str(&sa_key_json(&h.google.token_uri())).unwrap();
    key.as_object_mut().unwrap().remove("private_key_id");
    let path = h.write("no-kid.json", &key.to_string());
    let run = h.run(&signed("token", &["-v", "--service-account-key", path.to_str().unwrap()]));
    let token = run.token();
    let (header, _) = verify_sa_jwt(&token).unwrap();
    assert_eq!(header.get("kid"), None, "{header}");
    assert!(
        run.stderr.contains("the key file has no private_key_id: the JWT is signed without a kid"),
        "{}",
        run.stderr
    );
    assert_eq!(h.google.requests().len(), 0);
}

#[test]
fn the_fake_iap_refuses_a_jwt_for_another_url_or_living_over_an_hour() {
    let h = Harness::new();
    let iap = front(&h);
    let now = now();
    let jwt = |aud: String, life: i64| {
        sa_assertion(&serde_json::json!({"iss": SA_EMAIL, "sub": SA_EMAIL, "aud": aud, "iat": now, "exp": now + life}))
    };
    let (status, body) = through_iap(&format!("{}/api", iap.url()), &jwt(format!("{}/*", iap.url()), 3600));
    assert_eq!(status, 200, "{body}");
    let (status, body) = through_iap(&format!("{}/api", iap.url()), &jwt("https://other.example.com/*".into(), 3600));
    assert_eq!(status, 401);
    assert!(body.contains("JWT audience doesn't match"), "{body}");
    let (status, body) = through_iap(&format!("{}/api", iap.url()), &jwt(format!("{}/*", iap.url()), 7200));
    assert_eq!(status, 401, "{body}");
}

#[test]
fn status_tells_the_token_type_and_which_sources_can_sign() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let args = signed("status", &["--service-account-key", key, "--format", "json"]);
    let status = |h: &Harness| {
        let run = h.run(&args);
        let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
        assert_schema("status.schema.json", &report);
        (run.code, report)
    };
    let (code, report) = status(&h);
    assert_eq!((code, report["ready"].as_bool(), report["token_type"].as_str()), (0, Some(true), Some("signed-jwt")));
    assert_eq!(report["entries"], serde_json::json!([]));
    h.run(&signed("token", &["--service-account-key", key])).token();
    let (_, report) = status(&h);
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{report}");
    assert_eq!(entries[0]["token_type"], "signed-jwt");
    assert_eq!(entries[0]["audience"], "https://flyte.example.com/*");
    assert_eq!(entries[0]["fresh"], true);
    let text = h.run(&signed("status", &["--service-account-key", key])).stdout;
    assert!(text.contains("token type: signed-jwt\n"), "{text}");
    // A person's configuration cannot sign: not ready, and why.
    let run = h.run(&signed("status", &["--client-id", "desktop.apps.googleusercontent.com", "--format", "json"]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_schema("status.schema.json", &report);
    assert_eq!(
        report["reason"],
        "--token-type signed-jwt needs a service account: a person cannot sign a JWT; use service-account-key, impersonation, external-account or metadata"
    );
}

#[test]
fn doctor_says_when_an_id_token_meets_a_google_managed_client_and_signed_jwt_gets_through() {
    let h = Harness::new();
    // IAP's own client is Google's; only an allowlisted desktop client passes for ID tokens.
    let managed = "999-iap-managed.apps.googleusercontent.com";
    let mut config = IapConfig::new(managed, &h.google.auth_uri());
    config.accepted = vec!["123-desktop.apps.googleusercontent.com".into()];
    let iap = IapFront::start(config);
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let url = iap.url();
    let doctor = |extra: &[&str]| {
        let args =
            [&["doctor", "--url", &url, "--service-account-key", key][..], extra, &["--format", "json"]].concat();
        let run = h.run(&args);
        let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "iap").cloned().unwrap();
        (run.code, check)
    };
    let (code, check) = doctor(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        check["detail"],
        format!(
            "IAP refused an ID token for its own OAuth client {managed}: a Google-managed client accepts only the client ids allowlisted for programmatic access; a service account can use --token-type signed-jwt instead, a person --audience with an allowlisted desktop client id"
        )
    );
    let (code, check) = doctor(&["--token-type", "signed-jwt"]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["status"], "ok");
}
