//! Google credentials beyond a key file: Application Default Credentials of each kind as access tokens,
//! Secret Manager for the client secret (the generate-user-id-token drop-in), impersonation, the library
//! API, and the real Secret Service (gnome-keyring under dbus-run-session).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::fake_google::*;

const PROJECT: &str = "test-project";
const SECRET_NAME: &str = "desktop-secret";
const SECRET_VERSION: &str = "projects/test-project/secrets/desktop-secret/versions/latest";
const GCLOUD_CLIENT: &str = "764086051850-gcloud.apps.googleusercontent.com";
const GCLOUD_SECRET: &str = "gcloud-client-secret";
const ADMIN: &str = "admin@example.com";
const TARGET: &str = "iap-caller@test-project.iam.gserviceaccount.com";

/// A `--browser` that plays a person who approves: follows the authorize redirect to the loopback.
pub fn approving_browser(h: &Harness) -> String {
    let script = h.write(
        "approve.sh",
        "#!/bin/sh\nloc=$(curl -s -o /dev/null -w '%{redirect_url}' \"$1\")\ncurl -s -o /dev/null \"$loc\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.to_str().unwrap().to_string()
}

/// An `authorized_user` ADC file, as `gcloud auth application-default login` writes it.
fn authorized_user_adc(h: &Harness, email: &str) -> PathBuf {
    h.google.add_user_client(GCLOUD_CLIENT, GCLOUD_SECRET);
    let refresh = h.google.issue_refresh_token(GCLOUD_CLIENT, email);
    h.write(
        "adc-user.json",
        &json!({"type": "authorized_user", "client_id": GCLOUD_CLIENT, "client_secret": GCLOUD_SECRET, "refresh_token": refresh}).to_string(),
    )
}

fn drop_in_args() -> Vec<&'static str> {
    vec![
        "generate-user-id-token",
        "--desktop_client_id",
        DESKTOP_CLIENT,
        "--desktop_client_secret_gcp_secret_name",
        SECRET_NAME,
        "--webapp_client_id",
        AUD,
        "--project",
        PROJECT,
    ]
}

fn secret_crc(payload: &[u8]) -> Option<i64> {
    Some(i64::from(crc32c::crc32c(payload)))
}

#[test]
fn generate_user_id_token_reads_the_secret_once_then_refreshes_with_one_request() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    h.google.set_secret(
        SECRET_VERSION,
        format!("{DESKTOP_SECRET}\n").as_bytes(),
        secret_crc(format!("{DESKTOP_SECRET}\n").as_bytes()),
    );
    let adc = authorized_user_adc(&h, ADMIN);
    let browser = approving_browser(&h);
    let token_uri = h.google.token_uri();
    let env = [
        ("GOOGLE_APPLICATION_CREDENTIALS", adc.to_str().unwrap()),
        ("BROWSER", browser.as_str()),
        ("IAP_TOKEN_TOKEN_URI", token_uri.as_str()),
    ];
    let first = h.run_with(&drop_in_args(), &env);
    let token = first.token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    assert_eq!(h.google.count(Endpoint::SecretAccess), 1);
    let access = h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::SecretAccess).unwrap();
    assert!(access.header("authorization").unwrap().starts_with("Bearer "));
    let exchange =
        h.google.requests().into_iter().find(|r| r.form_value("grant_type") == Some("authorization_code")).unwrap();
    assert_eq!(exchange.form_value("client_secret"), Some(DESKTOP_SECRET), "one trailing newline dropped");

    h.google.reset_counts();
    assert_eq!(h.run_with(&drop_in_args(), &env).token(), token);
    assert!(h.google.requests().is_empty(), "warm call: zero requests");

    h.age_entries();
    h.run_with(&drop_in_args(), &env).token();
    let requests = h.google.requests();
    assert_eq!(requests.len(), 1, "hourly refresh: one request, {requests:?}");
    assert_eq!(requests[0].form_value("grant_type"), Some("refresh_token"));
    assert_eq!(requests[0].form_value("client_id"), Some(DESKTOP_CLIENT));

    // The secret is rotated: invalid_client makes it fetch the secret once more and retry.
    h.google.add_user_client(DESKTOP_CLIENT, "rotated-secret");
    h.google.set_secret(SECRET_VERSION, b"rotated-secret", secret_crc(b"rotated-secret"));
    h.age_entries();
    h.google.reset_counts();
    let rotated = h.run_with(&drop_in_args(), &env);
    rotated.token();
    assert_eq!(h.google.count(Endpoint::SecretAccess), 1);
    assert!(rotated.stderr.contains("fetching it again from Secret Manager"), "{}", rotated.stderr);
}

#[test]
fn a_crc32c_mismatch_fails_clearly() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    h.google.set_secret(SECRET_VERSION, DESKTOP_SECRET.as_bytes(), Some(12345));
    let adc = authorized_user_adc(&h, ADMIN);
    let browser = approving_browser(&h);
    let token_uri = h.google.token_uri();
    let run = h.run_with(
        &drop_in_args(),
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", adc.to_str().unwrap()),
            ("BROWSER", browser.as_str()),
            ("IAP_TOKEN_TOKEN_URI", token_uri.as_str()),
        ],
    );
    let line = run.failure(1);
    assert!(line.contains(&format!("could not read the client secret {SECRET_VERSION} from Secret Manager")), "{line}");
    assert!(line.contains("failed its CRC32C check"), "{line}");
    assert_eq!(h.google.count(Endpoint::Authorize), 0, "no sign-in with an unusable secret");
}

#[test]
fn an_unknown_secret_fails_with_googles_words() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let adc = authorized_user_adc(&h, ADMIN);
    let token_uri = h.google.token_uri();
    let browser = approving_browser(&h);
    let run = h.run_with(
        &drop_in_args(),
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", adc.to_str().unwrap()),
            ("BROWSER", browser.as_str()),
            ("IAP_TOKEN_TOKEN_URI", token_uri.as_str()),
        ],
    );
    let line = run.failure(1);
    assert!(line.contains("answered HTTP 404: NOT_FOUND"), "{line}");
}

#[test]
fn impersonation_by_flag_with_a_key_an_authorized_user_and_the_metadata_server() {
    let h = Harness::new();
    // Source: a service-account key.
    h.google.allow_impersonation(SA_EMAIL, TARGET);
    let key = h.key_file();
    let run = h.run(&[
        "token",
        "--audience",
        AUD,
        "--impersonate-service-account",
        TARGET,
        "--service-account-key",
        key.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["source"], "impersonation");
    assert_eq!(value["principal"], TARGET);
    let generate = h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::GenerateIdToken).unwrap();
    assert!(generate.path.contains(&format!("/serviceAccounts/{TARGET}:generateIdToken")), "{}", generate.path);
    let body: serde_json::Value = serde_json::from_str(&generate.body).unwrap();
    assert_eq!(body["audience"], AUD);
    assert_eq!(body["includeEmail"], true);
    let scope_request = h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::Token).unwrap();
    assert_eq!(
        jwt_claims(scope_request.form_value("assertion").unwrap())["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );

    // The access token is cached: another audience needs only generateIdToken.
    h.google.reset_counts();
    h.run(&[
        "token",
        "--audience",
        "other",
        "--impersonate-service-account",
        TARGET,
        "--service-account-key",
        key.to_str().unwrap(),
    ])
    .token();
    assert_eq!(h.google.count(Endpoint::Token), 0);
    assert_eq!(h.google.count(Endpoint::GenerateIdToken), 1);

    // Source: an authorized_user ADC file (GOOGLE_APPLICATION_CREDENTIALS).
    let adc = authorized_user_adc(&h, ADMIN);
    h.google.allow_impersonation(ADMIN, TARGET);
    let token = h
        .run_with(
            &["token", "--audience", "aud-3", "--impersonate-service-account", TARGET],
            &[
                ("GOOGLE_APPLICATION_CREDENTIALS", adc.to_str().unwrap()),
                ("IAP_TOKEN_TOKEN_URI", &h.google.token_uri()),
            ],
        )
        .token();
    assert_eq!(jwt_claims(&token)["email"], TARGET);

    // Another account's ADC file (same gcloud client id) never reuses the first account's access token.
    let other = h.google.issue_refresh_token(GCLOUD_CLIENT, "other@example.com");
    h.google.allow_impersonation("other@example.com", TARGET);
    let other_adc = h.write(
        "adc-other.json",
        &json!({"type": "authorized_user", "client_id": GCLOUD_CLIENT, "client_secret": GCLOUD_SECRET, "refresh_token": other}).to_string(),
    );
    h.google.reset_counts();
    h.run_with(
        &["token", "--audience", "aud-5", "--impersonate-service-account", TARGET],
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", other_adc.to_str().unwrap()),
            ("IAP_TOKEN_TOKEN_URI", &h.google.token_uri()),
        ],
    )
    .token();
    assert_eq!(h.google.count(Endpoint::Token), 1, "a new access token for the other account");

    // Source: the metadata server (nothing else configured).
    h.google.allow_impersonation(VM_EMAIL, TARGET);
    let metadata = h.google.metadata_host();
    let token = h
        .run_with(
            &["token", "--audience", "aud-4", "--impersonate-service-account", TARGET],
            &[("GCE_METADATA_HOST", &metadata)],
        )
        .token();
    assert_eq!(jwt_claims(&token)["aud"], "aud-4");
    assert_eq!(h.google.count(Endpoint::MetadataToken), 1);
}

#[test]
fn impersonated_service_account_file_and_a_denied_generate_id_token() {
    let h = Harness::new();
    let adc = authorized_user_adc(&h, ADMIN);
    let source: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&adc).unwrap()).unwrap();
    let file = h.write(
        "impersonated.json",
        &json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"),
            "delegates": [],
            "source_credentials": source,
        })
        .to_string(),
    );
    let token_uri = h.google.token_uri();
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap()), ("IAP_TOKEN_TOKEN_URI", token_uri.as_str())];
    let line = h.run_with(&["token", "--audience", AUD], &env).failure(1);
    assert!(line.contains("answered HTTP 403: PERMISSION_DENIED"), "{line}");
    assert!(line.contains(&format!("roles/iam.serviceAccountTokenCreator (or roles/iam.workloadIdentityUser for a federated identity) on {TARGET}")), "{line}");
    h.google.allow_impersonation(ADMIN, TARGET);
    let run = h.run_with(&["token", "--audience", AUD, "--format", "json"], &env);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["source"], "impersonation");
    assert_eq!(value["principal"], TARGET);
}

#[test]
fn the_library_api_mirrors_the_python_authenticator() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let refresh = h.google.issue_refresh_token(DESKTOP_CLIENT, "user@example.com");
    crate::user_flow::seed_login(&h, &refresh);
    let auth = iap_token::authenticator::IapAuthenticator::new(AUD, DESKTOP_CLIENT, DESKTOP_SECRET)
        .with_endpoints(&h.google.auth_uri(), &h.google.token_uri())
        .with_dirs(h.cache_dir(), h.state_dir());
    let credential = auth.get_credentials().expect("credentials");
    assert_eq!(jwt_claims(credential.token.expose())["aud"], AUD);
    assert!(!format!("{credential:?}").contains(credential.token.expose()), "Debug is redacted");
    let (key, value) = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(key, "proxy-authorization");
    assert_eq!(value, format!("Bearer {}", credential.token.expose()));
    assert_eq!(h.google.count(Endpoint::Token), 1, "the metadata call used the cache");
    auth.refresh_credentials().unwrap();
    assert_eq!(h.google.count(Endpoint::Token), 2);
}

/// Runs `script` (sh) inside a fresh D-Bus session with an unlocked gnome-keyring.
fn in_keyring_session(h: &Harness, script: &str) -> Run {
    for tool in ["dbus-run-session", "dbus-send", "gnome-keyring-daemon"] {
        assert!(
            Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success(),
            "{tool} is not installed: run scripts/install-test-deps"
        );
    }
    let mut session = Command::new("dbus-run-session");
    session
        .arg("--")
        .arg("sh")
        .arg("-c")
        .arg(format!(
            // The daemon runs in the foreground of this shell, so that it ends with the session.
            "(printf pw | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1) & keyring=$!\n\
             for _ in $(seq 50); do ready=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
             org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -c true); \
             [ \"$ready\" = 1 ] && break; sleep 0.1; done\n\
             ( {script} ); status=$?\nkill $keyring 2>/dev/null; exit $status"
        ))
        .env_clear()
        .envs(h.env_vars())
        .env("IAP_TOKEN_TOKEN_URI", h.google.token_uri())
        .env("BIN", BIN);
    Run::from_output(session.output().unwrap())
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default()
}

#[test]
fn gnome_keyring_holds_the_refresh_token_and_logout_removes_it() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let browser = approving_browser(&h);
    let user = format!("--audience {AUD} --client-id {DESKTOP_CLIENT} --client-secret {DESKTOP_SECRET}");
    for store in ["keyring", "auto"] {
        let run = in_keyring_session(
            &h,
            &format!(
                "set -e\n\
                 \"$BIN\" login {user} --store {store} --browser {browser}\n\
                 \"$BIN\" status {user} --store {store} --format json\n\
                 echo ---\n\
                 \"$BIN\" token {user} --store {store} --force-refresh >/dev/null\n\
                 \"$BIN\" logout {user} --store {store}\n\
                 \"$BIN\" status {user} --store {store} --format json || echo \"status exit $?\""
            ),
        );
        assert_eq!(run.code, 0, "{store}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("refresh token stored in the OS keyring"), "{store}: {}", run.stderr);
        let (before, after) = run.stdout.split_once("---\n").unwrap();
        assert!(before.contains("\"signed_in\":true"), "{store}: {before}");
        assert!(after.contains("\"signed_in\":false") && after.contains("status exit 3"), "{store}: {after}");
        assert!(
            files_in(&h.state_dir()).is_empty(),
            "{store}: nothing in a plain file: {:?}",
            files_in(&h.state_dir())
        );
    }
}

#[test]
fn without_a_session_bus_auto_uses_the_file_store_and_says_so() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let browser = approving_browser(&h);
    let token_uri = h.google.token_uri();
    let args = [
        "login",
        "--audience",
        AUD,
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret",
        DESKTOP_SECRET,
        "--store",
        "auto",
        "--browser",
        &browser,
    ];
    let run = h.run_with(
        &args,
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"), ("IAP_TOKEN_TOKEN_URI", &token_uri)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("the OS keyring is not available"), "{}", run.stderr);
    assert_eq!(files_in(&h.state_dir()).len(), 1);
    let line = h
        .run_with(
            &["token", "--audience", AUD, "--client-id", DESKTOP_CLIENT, "--store", "keyring", "--force-refresh"],
            &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
        )
        .failure(1);
    assert!(line.contains("the OS keyring is not usable"), "{line}");
    assert!(line.contains("use --store file"), "{line}");
    let logout = h.run(&["logout", "--client-id", DESKTOP_CLIENT, "--store", "auto"]);
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert!(files_in(&h.state_dir()).is_empty());
}

#[test]
fn impersonation_without_source_credentials_names_what_is_missing() {
    let h = Harness::new();
    let target = "target@test-project.iam.gserviceaccount.com";
    let line = h.run(&["token", "--audience", AUD, "--impersonate-service-account", target]).failure(1);
    let (problem, hint) = line.rsplit_once("; ").unwrap();
    assert!(
        problem.starts_with(&format!(
            "iap-token: error: impersonating {target} needs source credentials, and none were found: no --service-account-key, no GOOGLE_APPLICATION_CREDENTIALS, no gcloud ADC file, and no metadata server at {CLOSED_METADATA} ("
        )),
        "{line}"
    );
    assert_eq!(
        hint,
        "run 'gcloud auth application-default login' (as someone allowed to impersonate it), or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key, or run on Google Cloud"
    );
    assert!(!line.contains("check the network"), "{line}");
}
