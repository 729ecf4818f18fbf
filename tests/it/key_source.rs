//! The service-account key source end to end, every output format exactly, the flyte-iap drop-in, and
//! bad input: each failure exits non-zero with one clear line and an empty stdout.

use serde_json::{Value, json};

use crate::common::*;
use crate::fake_google::*;

#[test]
fn key_flag_prints_a_verified_token_and_nothing_else() {
    let h = Harness::new();
    let run = h.key_token(&[]);
    let token = run.token();
    assert_eq!(run.stderr, "");
    let (header, claims) = verify_google_jwt(&token).expect("signed by the fake Google");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["email"], SA_EMAIL);
    let requests = h.google.requests();
    assert_eq!(requests.len(), 1);
    let assertion = requests[0].form_value("assertion").expect("assertion sent");
    let assertion_claims = jwt_claims(assertion);
    assert_eq!(assertion_claims["target_audience"], AUD);
    assert_eq!(assertion_claims["aud"], h.google.token_uri());
    assert_eq!(requests[0].form_value("grant_type"), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
}

#[test]
fn google_application_credentials_is_used_in_auto() {
    let h = Harness::new();
    let key = h.key_file();
    let run = h.run_with(&["token", "--audience", AUD], &[("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap())]);
    let token = run.token();
    assert_eq!(jwt_claims(&token)["email"], SA_EMAIL);
    let json = h.run_with(
        &["token", "--audience", AUD, "--format", "json"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap())],
    );
    let value: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["source"], "service-account-key");
}

#[test]
fn token_uri_flag_wins_over_the_key_files() {
    let h = Harness::new();
    let key = h.write("key.json", &sa_key_json("http://127.0.0.1:9/token"));
    let run = h.run(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()]);
    run.failure(1);
    let token_uri = h.google.token_uri();
    let run =
        h.run(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap(), "--token-uri", &token_uri]);
    // The assertion's aud must then be the URI it is sent to.
    run.token();
}

#[test]
fn every_output_format_exactly_and_valid_against_its_schema() {
    let h = Harness::new();
    let token = h.key_token(&[]).token();
    let claims = jwt_claims(&token);
    let exp = claims["exp"].as_i64().unwrap();

    let header = h.key_token(&["--format", "header"]);
    assert_eq!(header.stdout, format!("Authorization: Bearer {token}\n"));
    let proxy = h.key_token(&["--format", "header", "--header-name", "Proxy-Authorization"]);
    assert_eq!(proxy.stdout, format!("Proxy-Authorization: Bearer {token}\n"));

    let json_run = h.key_token(&["--format", "json"]);
    let value: Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_schema("token-json.schema.json", &value);
    let expires = parse_rfc3339(value["expires_at"].as_str().unwrap());
    assert_eq!(expires, exp - 300, "reported expiry is exp minus the margin");
    assert_eq!(
        value,
        json!({"token": token, "expires_at": value["expires_at"], "audience": AUD, "principal": SA_EMAIL, "source": "service-account-key", "url": null, "token_type": "id-token"})
    );

    for (info, version) in [
        (None, "client.authentication.k8s.io/v1"),
        (
            Some(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
            ),
            "client.authentication.k8s.io/v1",
        ),
        (
            Some(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#,
            ),
            "client.authentication.k8s.io/v1beta1",
        ),
    ] {
        let key = h.key_file();
        let mut args = vec!["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()];
        let env: Vec<(&str, &str)> = info.map(|i| vec![("KUBERNETES_EXEC_INFO", i)]).unwrap_or_default();
        if info.is_none() {
            args.extend(["--format", "exec-credential"]);
        }
        let run = h.run_with(&args, &env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let value: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_schema("exec-credential.schema.json", &value);
        let expected = format!(
            "{{\"apiVersion\":\"{version}\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\",\"expirationTimestamp\":\"{}\"}}}}\n",
            value["status"]["expirationTimestamp"].as_str().unwrap()
        );
        assert_eq!(run.stdout, expected);
    }
    assert_eq!(h.google.count(Endpoint::Token), 1, "every later call was served from the cache");
}

#[test]
fn flyte_iap_drop_in_for_service_accounts() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let underscored =
        h.run(&["generate-service-account-id-token", "--webapp_client_id", AUD, "--service_account_key", key]);
    let token = underscored.token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    let kebab = h.run(&["generate-service-account-id-token", "--webapp-client-id", AUD, "--service-account-key", key]);
    assert_eq!(kebab.token(), token);
    let from_env = h.run_with(
        &["generate-service-account-id-token", "--webapp_client_id", AUD],
        &[("GOOGLE_APPLICATION_CREDENTIALS", key)],
    );
    assert_eq!(from_env.token(), token);
}

#[test]
fn bad_key_files_fail_with_one_clear_line() {
    let h = Harness::new();
    let good = sa_key_json(&h.google.token_uri());
    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated.json", good[..good.len() / 2].to_string(), "is not usable: not valid JSON"),
        ("malformed.json", "{not json".into(), "is not usable: not valid JSON"),
        ("notype.json", "{}".into(), "has no \"type\" field"),
        ("badtype.json", r#"{"type":"gdch_service_account"}"#.into(), "type 'gdch_service_account' is not supported"),
        ("nokey.json", r#"{"type":"service_account","client_email":"a@b"}"#.into(), "missing field `private_key`"),
        (
            "badpem.json",
            json!({"type":"service_account","client_email":SA_EMAIL,"private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n","token_uri":h.google.token_uri()}).to_string(),
            "private_key is not usable",
        ),
    ];
    for (name, content, expected) in cases {
        let path = h.write(name, &content);
        let run = h.run(&["token", "--audience", AUD, "--service-account-key", path.to_str().unwrap()]);
        let line = run.failure(1);
        assert!(line.contains(expected), "{name}: {line}");
    }
    let run = h.run(&["token", "--audience", AUD, "--service-account-key", "/nonexistent/key.json"]);
    assert_eq!(
        run.failure(1),
        "iap-token: error: could not read the credential file /nonexistent/key.json: No such file or directory (os error 2); \
check the path given by --service-account-key or GOOGLE_APPLICATION_CREDENTIALS"
    );
    assert_eq!(h.google.count(Endpoint::Token), 0);
}

#[test]
fn authorized_user_file_explains_the_two_ways_that_work() {
    let h = Harness::new();
    let path =
        h.write("adc.json", r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#);
    let run = h.run_with(&["token", "--audience", AUD], &[("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap())]);
    let line = run.failure(1);
    assert!(line.contains("is of type authorized_user"), "{line}");
    assert!(line.contains("cannot mint ID tokens for IAP"), "{line}");
    assert!(line.contains("--client-id") && line.contains("--impersonate-service-account"), "{line}");
}

#[test]
fn junk_kubernetes_exec_info_and_unknown_api_version() {
    let h = Harness::new();
    let key = h.key_file();
    let args = ["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()];
    let line = h.run_with(&args, &[("KUBERNETES_EXEC_INFO", "{junk")]).failure(1);
    assert!(line.contains("KUBERNETES_EXEC_INFO is not a valid ExecCredential"), "{line}");
    let line = h
        .run_with(
            &args,
            &[(
                "KUBERNETES_EXEC_INFO",
                r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"}"#,
            )],
        )
        .failure(1);
    assert!(line.contains("apiVersion 'client.authentication.k8s.io/v1alpha1', which is not supported"), "{line}");
    assert_eq!(h.google.count(Endpoint::Token), 0);
}

#[test]
fn identity_provider_failures_exit_1_with_google_words_and_empty_stdout() {
    let h = Harness::new();
    h.google.set_fault(Some(Fault::Status(500)));
    let line = h.key_token(&[]).failure(1);
    assert!(line.contains("answered HTTP 500: internal_error (fake failure)"), "{line}");
    assert!(line.contains("try again in a minute"), "{line}");
    assert_eq!(h.google.count(Endpoint::Token), 3, "one try and two retries");

    h.google.reset_counts();
    h.google.set_fault(Some(Fault::Html));
    let line = h.key_token(&[]).failure(1);
    assert!(line.contains("an HTML page instead of the expected answer"), "{line}");
    assert!(line.contains("proxy or captive portal"), "{line}");

    h.google.set_fault(Some(Fault::WrongAud));
    let line = h.key_token(&[]).failure(1);
    assert!(
        line.contains(&format!("the ID token is for audience '{WRONG_AUDIENCE}', not the requested '{AUD}'")),
        "{line}"
    );

    h.google.set_fault(Some(Fault::NoExp));
    let line = h.key_token(&[]).failure(1);
    assert!(line.contains("the ID token has no expiry"), "{line}");

    h.google.set_fault(Some(Fault::Expired));
    let line = h.key_token(&[]).failure(1);
    assert!(line.contains("had already expired"), "{line}");
    assert!(h.cache_entries().is_empty(), "a rejected token is never cached");
}

#[test]
fn slow_identity_provider_gives_up_at_the_timeout() {
    let h = Harness::new();
    h.google.set_fault(Some(Fault::Slow(std::time::Duration::from_secs(120))));
    let started = std::time::Instant::now();
    let line = h.key_token(&["--timeout", "1"]).failure(1);
    assert!(line.contains("no answer from"), "{line}");
    assert!(line.contains("check the network"), "{line}");
    // Bounded by the 1 s timeout and its 5 s budget, not the fake's 120 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let h = Harness::new();
    let key = h.write("key.json", &sa_key_json("http://oauth2.example.com/token"));
    let line = h.run(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()]).failure(2);
    assert!(line.contains("refusing to send credentials over plain http to http://oauth2.example.com/token"), "{line}");
    let line = h.run(&["token", "--audience", AUD, "--token-uri", "http://10.0.0.1/token"]).failure(2);
    assert!(line.contains("--token-uri: refusing to send credentials over plain http"), "{line}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let h = Harness::new();
    assert_eq!(
        h.run(&["token"]).failure(2),
        "iap-token: error: --url or --audience is required: the URL of the service behind IAP, or its IAP OAuth client id (or set it in the kubeconfig cluster extension); see 'iap-token --help'"
    );
    let line = h.run(&["token", "--audience", AUD, "--format", "yaml"]).failure(2);
    assert!(line.contains("invalid value 'yaml' for '--format"), "{line}");
    let line = h.run(&["frobnicate"]).failure(2);
    assert!(line.contains("unrecognized subcommand 'frobnicate'"), "{line}");
    let line = h.run(&["token", "--audience", AUD, "--timeout", "5000000000000000000"]).failure(2);
    assert!(line.contains("--timeout must be between 1 and 3600 seconds"), "{line}");
    let line = h.run(&["token", "--audience", AUD, "--login-timeout", "18446744073709551615"]).failure(2);
    assert!(line.contains("--login-timeout must be between 1 and 86400 seconds"), "{line}");
    let line = h.run(&["generate-user-id-token", "--desktop_client_id", "X"]).failure(2);
    assert!(line.contains("required arguments were not provided: --desktop_client_secret_gcp_secret_name"), "{line}");
    assert!(line.contains("--project <PROJECT>"), "every missing argument is named: {line}");
}

#[test]
fn server_text_is_cleaned_before_it_reaches_the_terminal() {
    let h = Harness::new();
    // An assertion for a key the fake does not know makes it answer with its own error text; a hostile
    // server could put escape sequences there. The fake's texts are plain, so check the cleaner directly
    // through an unknown-type file whose name is echoed back.
    let path = h.write("evil.json", "{\"type\":\"\\u001b[31mred\\r\\nforged line\"}");
    let run = h.run(&["token", "--audience", AUD, "--service-account-key", path.to_str().unwrap()]);
    let line = run.failure(1);
    assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
    assert!(line.contains("?[31mred forged line"), "{line}");
}

#[test]
fn https_endpoints_are_verified_and_ca_file_adds_a_root() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let refresh = h.google.issue_refresh_token(DESKTOP_CLIENT, "user@example.com");
    crate::user_flow::seed_login(&h, &refresh);
    let front = crate::tls_front::TlsFront::start(h.google.metadata_host());
    let token_uri = format!("{}/token", front.url());
    let args = [
        "token",
        "--audience",
        AUD,
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret",
        DESKTOP_SECRET,
        "--token-uri",
        &token_uri,
        "--non-interactive",
    ];
    // The fake's certificate is not trusted by the system roots: refused, with the network hint.
    let line = h.run(&args).failure(1);
    assert!(line.contains(&format!("no answer from {token_uri}")), "{line}");
    assert!(line.contains("--ca-file"), "{line}");
    assert_eq!(h.google.count(Endpoint::Token), 0, "nothing was sent over an unverified connection");
    // Trusted through --ca-file, added to the system roots.
    let ca = h.write("ca.pem", &front.ca_pem);
    let mut with_ca = args.to_vec();
    with_ca.extend(["--ca-file", ca.to_str().unwrap()]);
    let token = h.run(&with_ca).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    assert_eq!(h.google.count(Endpoint::Token), 1);
    // A file without certificates is a clear configuration error.
    let empty = h.write("empty.pem", "not a certificate\n");
    let mut bad = args.to_vec();
    bad.extend(["--ca-file", empty.to_str().unwrap(), "--force-refresh"]);
    let line = h.run(&bad).failure(1);
    assert!(line.contains("holds no PEM certificate"), "{line}");
}

#[test]
fn a_clock_behind_google_still_serves_and_caches_the_token_with_one_warning() {
    let h = Harness::new();
    // The fake Google's clock is an hour ahead: iat = now + 3600, exp = now + 7200.
    h.google.set_fault(Some(Fault::IatFuture));
    let run = h.key_token(&["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    let behind = lines[0]
        .strip_prefix("iap-token: warning: this machine's clock is about ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("{}", lines[0]));
    assert!((3590..=3610).contains(&behind), "{}", lines[0]);
    assert!(
        lines[0]
            .ends_with(" s behind Google's; the token is served, but fix the time (e.g. 'timedatectl set-ntp true')")
    );
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Its one-hour lifetime counted from our clock, not its exp (two hours ahead of us).
    let entries = h.cache_entries();
    assert_eq!(entries.len(), 1);
    let expires = entries[0].1["expires_at"].as_i64().expect("expires_at");
    assert!((now + 3590..=now + 3610).contains(&expires), "expires_at {expires}, now {now}");
    // Cached: the next call is a hit, with no request and no warning.
    h.google.reset_counts();
    let again = h.key_token(&[]);
    assert_eq!(again.token(), out["token"].as_str().unwrap());
    assert_eq!(again.stderr, "");
    assert_eq!(h.google.count(Endpoint::Token), 0);
}
