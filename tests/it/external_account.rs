//! Keyless CI: `external_account` files (Workload Identity Federation) from a file, a URL and an
//! executable, through the fake STS and IAM Credentials to an IAP ID token; caching; and each failure
//! as one clear line with no token on stderr.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::*;
use crate::fake_google::*;

const POOL_AUDIENCE: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/github";
const SUBJECT_AUDIENCE: &str =
    "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/github";
const SUBJECT: &str = "repo:example/app:ref:refs/heads/main";
const TARGET: &str = "ci-deployer@test-project.iam.gserviceaccount.com";

fn federation(h: &Harness) {
    h.google.configure_sts(POOL_AUDIENCE, SUBJECT_AUDIENCE);
    h.google.allow_impersonation(&federated_principal(SUBJECT), TARGET);
}

fn cred_config(h: &Harness, credential_source: Value, impersonate: bool) -> PathBuf {
    let mut config = json!({
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": POOL_AUDIENCE,
        "subject_token_type": JWT_TOKEN_TYPE,
        "token_url": h.google.sts_uri(),
        "credential_source": credential_source,
    });
    if impersonate {
        config["service_account_impersonation_url"] =
            format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken")
                .into();
    }
    h.write("external-account.json", &config.to_string())
}

fn run_ci(h: &Harness, config: &std::path::Path, extra_env: &[(&str, &str)]) -> Run {
    let mut env = vec![("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap())];
    env.extend_from_slice(extra_env);
    h.run_with(&["token", "--audience", AUD, "--format", "json"], &env)
}

fn assert_iap_token(run: &Run) -> String {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["source"], "external-account");
    assert_eq!(value["principal"], TARGET);
    let token = value["token"].as_str().unwrap().to_string();
    let (_, claims) = verify_google_jwt(&token).expect("signed by the fake");
    assert_eq!(claims["aud"], AUD);
    token
}

#[test]
fn file_sourced_text_and_json_subject_tokens() {
    let h = Harness::new();
    federation(&h);
    let subject = ci_oidc_token(SUBJECT, SUBJECT_AUDIENCE, 600);
    let text = h.write("oidc.txt", &format!("{subject}\n"));
    let config = cred_config(&h, json!({"file": text}), true);
    assert_iap_token(&run_ci(&h, &config, &[]));
    let sts = h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::Sts).expect("STS exchange");
    assert_eq!(sts.form_value("grant_type"), Some("urn:ietf:params:oauth:grant-type:token-exchange"));
    assert_eq!(sts.form_value("audience"), Some(POOL_AUDIENCE));
    assert_eq!(sts.form_value("subject_token"), Some(subject.as_str()));
    assert_eq!(sts.form_value("requested_token_type"), Some("urn:ietf:params:oauth:token-type:access_token"));
    assert_eq!(h.google.count(Endpoint::GenerateIdToken), 1);

    // A warm call makes zero requests.
    h.google.reset_counts();
    assert_iap_token(&run_ci(&h, &config, &[]));
    assert!(h.google.requests().is_empty());
    // Another audience reuses the cached federated token: only generateIdToken.
    let other = h.run_with(
        &["token", "--audience", "other-aud"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap())],
    );
    other.token();
    assert_eq!(h.google.count(Endpoint::Sts), 0);
    assert_eq!(h.google.count(Endpoint::GenerateIdToken), 1);

    let h = Harness::new();
    federation(&h);
    let json_file = h.write("oidc.json", &json!({"value": subject, "count": 1}).to_string());
    let config = cred_config(
        &h,
        json!({"file": json_file, "format": {"type": "json", "subject_token_field_name": "value"}}),
        true,
    );
    let forced = h.run_with(
        &["token", "--audience", AUD, "--format", "json", "--source", "external-account"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap())],
    );
    assert_iap_token(&forced);
}

#[test]
fn url_sourced_subject_token_with_headers() {
    let h = Harness::new();
    federation(&h);
    let subject = ci_oidc_token(SUBJECT, SUBJECT_AUDIENCE, 600);
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let body = json!({"count": 1, "value": subject}).to_string();
    let served = std::thread::spawn(move || {
        let request = server.recv().unwrap();
        let authorized = request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str() == "bearer ci-request-token");
        let response = if authorized {
            tiny_http::Response::from_string(body)
        } else {
            tiny_http::Response::from_string("denied").with_status_code(401)
        };
        request.respond(response).unwrap();
        authorized
    });
    let config = cred_config(
        &h,
        json!({
            "url": format!("http://127.0.0.1:{port}/oidc?audience=x"),
            "headers": {"Authorization": "bearer ci-request-token"},
            "format": {"type": "json", "subject_token_field_name": "value"}
        }),
        true,
    );
    assert_iap_token(&run_ci(&h, &config, &[]));
    assert!(served.join().unwrap(), "the URL source sent its headers");
}

fn executable(h: &Harness, response: &Value) -> (PathBuf, PathBuf) {
    let runs = h.path("executable-runs");
    let response_file = h.write("response.json", &response.to_string());
    let script = h.write(
        "subject-token.sh",
        &format!(
            "#!/bin/sh\necho \"$GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE $GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE\" >> {}\ncat {}\n",
            runs.display(),
            response_file.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, runs)
}

#[test]
fn executable_sourced_subject_token_with_opt_in_and_output_file() {
    let h = Harness::new();
    federation(&h);
    let subject = ci_oidc_token(SUBJECT, SUBJECT_AUDIENCE, 600);
    let response = json!({"version": 1, "success": true, "token_type": JWT_TOKEN_TYPE, "id_token": subject, "expiration_time": now() + 600});
    let (script, runs) = executable(&h, &response);
    let config = cred_config(
        &h,
        json!({"executable": {"command": format!("{} --flag", script.display()), "timeout_millis": 5000}}),
        true,
    );

    let line = run_ci(&h, &config, &[]).failure(1);
    assert!(line.contains("runs an executable for its subject token, which is off by default"), "{line}");
    assert!(line.contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"), "{line}");
    assert!(!runs.exists(), "not run without the opt-in");

    let allow = [("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")];
    assert_iap_token(&run_ci(&h, &config, &allow));
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), format!("{POOL_AUDIENCE} 0\n"));
    assert_iap_token(&run_ci(&h, &config, &allow));
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1, "a warm call runs no executable");

    // A valid output_file is used instead of running the executable.
    let h = Harness::new();
    federation(&h);
    let (script, runs) = executable(&h, &response);
    let output_file = h.write("cached-response.json", &response.to_string());
    let config = cred_config(
        &h,
        json!({"executable": {"command": script, "timeout_millis": 5000, "output_file": output_file}}),
        true,
    );
    assert_iap_token(&run_ci(&h, &config, &allow));
    assert!(!runs.exists(), "the output_file cache answered");
}

#[test]
fn each_federation_failure_is_one_clear_line_without_tokens() {
    let h = Harness::new();
    federation(&h);
    // A subject token for the wrong audience: the STS refuses it.
    let wrong = ci_oidc_token(SUBJECT, "https://wrong.example.com", 600);
    let config = cred_config(&h, json!({"file": h.write("wrong.txt", &wrong)}), true);
    let run = h.run_with(
        &["-vv", "token", "--audience", AUD],
        &[("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap())],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    let line = run.stderr.lines().last().unwrap();
    assert!(
        line.contains(
            "answered HTTP 400: invalid_grant (The audience in ID Token does not match the expected audience.)"
        ),
        "{line}"
    );
    assert!(line.contains("STS refused the subject token"), "{line}");
    assert!(!run.stderr.contains(&wrong), "the subject token never reaches stderr");

    // An STS error: no pool configured for this audience.
    let h = Harness::new();
    let subject = ci_oidc_token(SUBJECT, SUBJECT_AUDIENCE, 600);
    let config = cred_config(&h, json!({"file": h.write("oidc.txt", &subject)}), true);
    let line = run_ci(&h, &config, &[]).failure(1);
    assert!(line.contains("invalid_target"), "{line}");

    // A denied generateIdToken: the principal lacks roles/iam.workloadIdentityUser.
    let h = Harness::new();
    h.google.configure_sts(POOL_AUDIENCE, SUBJECT_AUDIENCE);
    let config = cred_config(&h, json!({"file": h.write("oidc.txt", &subject)}), true);
    let line = run_ci(&h, &config, &[]).failure(1);
    assert!(line.contains("PERMISSION_DENIED"), "{line}");
    assert!(line.contains(&format!("roles/iam.workloadIdentityUser for a federated identity) on {TARGET}")), "{line}");

    // A file without an impersonation URL cannot mint IAP tokens.
    let h = Harness::new();
    federation(&h);
    let config = cred_config(&h, json!({"file": h.write("oidc.txt", &subject)}), false);
    let line = run_ci(&h, &config, &[]).failure(1);
    assert!(line.contains("has no service_account_impersonation_url"), "{line}");
    assert!(line.contains("--service-account=EMAIL"), "{line}");
    assert_eq!(h.google.count(Endpoint::Sts), 0);
}

#[test]
fn verbose_federation_shows_no_subject_federated_or_id_token() {
    let h = Harness::new();
    federation(&h);
    let subject = ci_oidc_token(SUBJECT, SUBJECT_AUDIENCE, 600);
    let config = cred_config(&h, json!({"file": h.write("oidc.txt", &subject)}), true);
    let run = h.run_with(
        &["-vv", "token", "--audience", AUD],
        &[("GOOGLE_APPLICATION_CREDENTIALS", config.to_str().unwrap())],
    );
    let token = run.token();
    assert!(run.stderr.contains("HTTP"), "{}", run.stderr);
    let mut secrets = vec![subject, token];
    secrets.extend(h.google.valid_access_tokens());
    for secret in secrets {
        assert!(!run.stderr.contains(&secret), "stderr leaks {secret}");
    }
}
