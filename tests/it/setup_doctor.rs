//! `setup` (discover, write the profile keeping what is there, print the snippets; never a sign-in),
//! `profiles` (every profile and whether it is ready) and `doctor` (each of IAP's verdicts explained
//! against the fake IAP, the app's own answers told apart, never a token on any stream).

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;
use crate::iap_front::{IapConfig, IapFront, Mode};

fn config_path(h: &Harness) -> std::path::PathBuf {
    h.path("home/.config/iap-token/config.toml")
}

#[test]
fn setup_discovers_writes_the_profile_keeping_the_rest_and_prints_the_snippets() {
    let h = Harness::new();
    let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    let path = config_path(&h);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(&path, "# the company's file\n[profile.other]\naudience = \"x\" # keep me\n").unwrap();
    let key = h.key_file();
    let url = format!("{}/flyte", iap.url());
    let run = h.run(&["setup", "--url", &url, "--profile", "flyte", "--service-account-key", key.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("is behind IAP; its audience is {AUD}")), "{}", run.stderr);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with("# the company's file\n[profile.other]\naudience = \"x\" # keep me\n"), "{written}");
    assert!(
        written.contains(&format!("[profile.flyte]\nurl = \"{url}\"\nservice-account-key = \"{}\"\n", key.display())),
        "{written}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    for needle in [
        "proxyCommand: [\"iap-token\", \"token\", \"--profile\", \"flyte\"]",
        "args: [\"token\", \"--profile\", \"flyte\"]",
        &format!("git config --global credential.{url}.helper \"\""),
        &format!("git config --global credential.{url}.useHttpPath true"),
        &format!("curl -H @<(iap-token token --profile flyte --format header) {url}"),
    ] {
        assert!(run.stdout.contains(needle), "{needle} missing:\n{}", run.stdout);
    }
    assert_eq!(h.google.count(Endpoint::Token), 0, "setup mints no token");
    // The profile works at once, and --print writes nothing.
    let token = h.run(&["token", "--profile", "flyte"]).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    let before = std::fs::read_to_string(&path).unwrap();
    let print = h.run(&["setup", "--url", "https://elsewhere.example.com", "--profile", "new", "--print", "curl"]);
    assert_eq!(
        print.stdout,
        "# curl: the header read from a pipe, never in an argument list\ncurl -H @<(iap-token token --profile new --format header) https://elsewhere.example.com\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn setup_refuses_a_url_that_is_not_behind_iap_and_writes_nothing() {
    let h = Harness::new();
    let app = IapFront::start(IapConfig { mode: Mode::PlainApp, ..IapConfig::new(AUD, &h.google.auth_uri()) });
    let line = h.run(&["setup", "--url", &app.url()]).failure(1);
    assert!(line.contains("it did not redirect to Google sign-in; is it behind IAP?"), "{line}");
    assert!(!config_path(&h).exists());
    let line = h.run(&["setup"]).failure(2);
    assert_eq!(line, "iap-token: error: setup needs --url: the service behind IAP; see 'iap-token --help'");
}

#[test]
fn profiles_lists_each_with_its_audience_source_and_readiness() {
    let h = Harness::new();
    let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    let path = config_path(&h);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            "[profile.key]\nurl = \"{}\"\nservice-account-key = \"{}\"\n[profile.person]\nurl = \"https://p.example.com\"\naudience = \"{AUD}\"\nclient-id = \"{DESKTOP_CLIENT}\"\n",
            iap.url(),
            h.key_file().display()
        ),
    )
    .unwrap();
    h.run(&["token", "--profile", "key"]).token();
    let run = h.run(&["profiles", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_schema("profiles.schema.json", &report);
    let key = &report["profiles"][0];
    assert_eq!(
        (key["name"].as_str(), key["audience"].as_str(), key["audience_from"].as_str()),
        (Some("key"), Some(AUD), Some("discovered"))
    );
    assert_eq!((key["source"].as_str(), key["ready"].as_bool()), (Some("service-account-key"), Some(true)));
    let person = &report["profiles"][1];
    assert_eq!((person["source"].as_str(), person["ready"].as_bool()), (Some("user"), Some(false)));
    assert!(
        person["reason"].as_str().unwrap().starts_with("a sign-in is needed: run 'iap-token login --client-id"),
        "{person}"
    );
    let text = h.run(&["profiles"]).stdout;
    assert!(
        text.lines().next().unwrap().starts_with(&format!(
            "key: url {} audience {AUD} (discovered) source service-account-key ready",
            iap.url()
        )),
        "{text}"
    );
}

/// `doctor --url URL` with the key, as JSON (checked against the schema); the `iap` check.
fn doctor(h: &Harness, url: &str, extra: &[&str]) -> (Run, Value) {
    let key = h.key_file();
    let mut args =
        vec!["-vv", "doctor", "--url", url, "--service-account-key", key.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let run = h.run(&args);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_schema("doctor.schema.json", &report);
    let iap = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "iap").cloned().unwrap_or(Value::Null);
    // Never a token anywhere, even at -vv.
    for entry in h.cache_entries() {
        let token = entry.1["token"].as_str().unwrap();
        assert!(!run.stdout.contains(token) && !run.stderr.contains(token), "a token leaked");
    }
    (run, iap)
}

#[test]
fn doctor_explains_each_of_iaps_verdicts_and_tells_the_apps_own_answers_apart() {
    let h = Harness::new();
    let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    let (run, check) = doctor(&h, &iap.url(), &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(check["status"], "ok");
    assert_eq!(check["detail"], format!("IAP let {SA_EMAIL} in; the application answered HTTP 200"));
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["config", "source", "store", "cache", "token", "clock", "discovery", "iap"]);

    // The app's own 401 is the app's: IAP let the principal in.
    let (_, check) = doctor(&h, &format!("{}/app/401", iap.url()), &[]);
    assert_eq!(
        (check["status"].as_str(), check["detail"].as_str()),
        (Some("ok"), Some(format!("IAP let {SA_EMAIL} in; the application answered HTTP 401").as_str()))
    );

    // The audience IAP expects is another: both named, and the setting to change.
    let (run, check) = doctor(&h, &iap.url(), &["--audience", "999-wrong.apps.googleusercontent.com"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        check["detail"],
        format!(
            "IAP refused the token: its audience is 999-wrong.apps.googleusercontent.com, IAP expects {AUD}: set audience = \"{AUD}\" in the profile, or pass --audience {AUD}"
        )
    );

    // Known but not allowed: the role to grant.
    iap.reconfigure(|c| c.allowed = Some(vec!["someone-else@example.com".into()]));
    let (_, check) = doctor(&h, &iap.url(), &[]);
    assert_eq!(check["status"], "fail");
    assert!(check["detail"].as_str().unwrap().contains("grant roles/iap.httpsResourceAccessor"), "{check}");
    iap.reconfigure(|c| c.allowed = None);

    // A header IAP does not read: the sign-in redirect despite the token.
    let (_, check) = doctor(&h, &iap.url(), &["--header-name", "X-Token"]);
    assert_eq!(
        check["detail"],
        "IAP redirected to sign-in despite the token: it ignored the credential in X-Token; IAP reads Authorization or Proxy-Authorization"
    );
}

#[test]
fn doctor_says_what_is_missing_and_never_signs_in() {
    let h = Harness::new();
    let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    let run = h.run(&["doctor", "--url", &iap.url(), "--client-id", DESKTOP_CLIENT]);
    assert_eq!(run.code, 1);
    let token_line = run.stdout.lines().find(|l| l.contains(" token: ")).unwrap();
    assert!(
        token_line.starts_with("fail token: could not get an ID token from the user source: a sign-in is needed"),
        "{token_line}"
    );
    assert!(token_line.contains("; run: iap-token login --client-id 456-desktop"), "{token_line}");
    assert_eq!(h.google.count(Endpoint::Authorize), 0);
    let app = IapFront::start(IapConfig { mode: Mode::PlainApp, ..IapConfig::new(AUD, &h.google.auth_uri()) });
    let key = h.key_file();
    let run = h.run(&["doctor", "--url", &app.url(), "--service-account-key", key.to_str().unwrap()]);
    let discovery = run.stdout.lines().find(|l| l.contains(" discovery: ")).unwrap();
    assert!(discovery.starts_with("fail discovery: ") && discovery.contains("is it behind IAP?"), "{}", run.stdout);
}
