//! `status` tells the truth: ready (exit 0) only when a token can be served now without a browser;
//! exit 3 with the exact sign-in command when only a sign-in is missing; exit 1 with the reason otherwise.
//! Never a request that mints a token.

use serde_json::{Value, json};

use crate::common::*;
use crate::fake_google::*;

fn status(h: &Harness, args: &[&str], env: &[(&str, &str)]) -> (Run, Value) {
    let mut text_args = vec!["status"];
    text_args.extend_from_slice(args);
    let text = h.run_with(&text_args, env);
    text_args.extend_from_slice(&["--format", "json"]);
    let json = h.run_with(&text_args, env);
    assert_eq!(json.code, text.code, "text and JSON agree on the exit code");
    let report: Value = serde_json::from_str(&json.stdout).expect("a JSON report");
    assert_schema("status.schema.json", &report);
    (text, report)
}

fn last_line(run: &Run) -> &str {
    run.stdout.lines().last().unwrap_or_default()
}

#[test]
fn no_source_at_all_is_not_ready_and_says_what_to_configure() {
    let h = Harness::new();
    let (run, report) = status(&h, &["--audience", AUD], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let line = last_line(&run);
    let reason = report["reason"].as_str().unwrap();
    assert_eq!(line, format!("ready: no: {reason}"));
    assert!(
        reason.starts_with(&format!(
            "no credentials found: nothing is configured, and no metadata server answered at {CLOSED_METADATA} within 1 s (no answer from http://{CLOSED_METADATA}/"
        )),
        "{reason}"
    );
    assert!(
        reason.ends_with("); sign in with --client-id, or set --service-account-key / GOOGLE_APPLICATION_CREDENTIALS, or run 'gcloud auth application-default login' and use --impersonate-service-account"),
        "{reason}"
    );
    assert_eq!(report["ready"], false);
    assert_eq!(report["sign_in_command"], Value::Null);
}

#[test]
fn a_metadata_server_that_answers_is_ready_without_minting() {
    let h = Harness::new();
    let host = h.google.metadata_host();
    let (run, report) = status(&h, &["--audience", AUD], &[("GCE_METADATA_HOST", &host)]);
    assert_eq!((run.code, last_line(&run)), (0, "ready: yes"), "{}", run.stdout);
    assert_eq!((report["ready"].clone(), report["reason"].clone()), (json!(true), Value::Null));
    assert_eq!(h.google.count(Endpoint::MetadataEmail), 2);
    assert_eq!(h.google.count(Endpoint::MetadataIdentity), 0, "status never mints a token");
}

#[test]
fn a_key_whose_rsa_key_does_not_parse_is_not_ready() {
    let h = Harness::new();
    let good = h.key_file();
    let (run, _) = status(&h, &["--service-account-key", good.to_str().unwrap()], &[]);
    assert_eq!((run.code, last_line(&run)), (0, "ready: yes"), "{}", run.stdout);
    let mut key: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    key["private_key"] = json!("-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n");
    let bad = h.write("bad-key.json", &key.to_string());
    let (run, report) = status(&h, &["--service-account-key", bad.to_str().unwrap()], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.starts_with("the service-account key's private_key is not usable ("), "{reason}");
    assert!(
        reason.ends_with("); download a new JSON key for the service account (IAM > Service accounts > Keys)"),
        "{reason}"
    );
    assert_eq!(last_line(&run), format!("ready: no: {reason}"));
    assert_eq!(h.google.requests().len(), 0);
}

#[test]
fn a_user_without_a_sign_in_is_exit_3_with_the_login_command() {
    let h = Harness::new();
    let (run, report) = status(&h, &["--audience", AUD, "--client-id", DESKTOP_CLIENT], &[]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let command = format!(
        "iap-token login --client-id {DESKTOP_CLIENT} --audience {AUD} --cache-dir {} --state-dir {} --store file",
        h.cache_dir().display(),
        h.state_dir().display()
    );
    assert_eq!(last_line(&run), format!("ready: no, a sign-in is needed: run '{command}'"));
    assert_eq!(report["sign_in_command"], json!(command));
    assert!(run.stdout.contains("signed in: no\n"), "{}", run.stdout);
}

#[test]
fn a_fresh_cached_token_is_ready_even_when_its_source_is_gone() {
    let h = Harness::new();
    let host = h.google.metadata_host();
    h.run_with(&["token", "--audience", AUD, "--source", "metadata"], &[("GCE_METADATA_HOST", &host)]).token();
    h.google.reset_counts();
    let (run, _) = status(&h, &["--audience", AUD, "--source", "metadata"], &[("GCE_METADATA_HOST", &host)]);
    assert_eq!((run.code, last_line(&run)), (0, "ready: yes"), "{}", run.stdout);
    assert_eq!(h.google.requests().len(), 0, "a fresh token needs no probe");
}
