//! `secret-manager-secret`, the hidden plumbing command behind the Python package's
//! `get_gcp_secret_manager_secret`: the payload exactly on stdout, read with the ADC, CRC32C checked, one
//! clear line on failure, and absent from the help a user reads.

use crate::common::*;
use crate::fake_google::*;

fn crc(payload: &[u8]) -> Option<i64> {
    Some(i64::from(crc32c::crc32c(payload)))
}

#[test]
fn prints_the_payload_read_with_the_adc_and_nothing_else() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    h.google.set_secret("projects/p-1/secrets/db_pass/versions/latest", b" two words \n", crc(b" two words \n"));
    h.google.set_secret("projects/p-1/secrets/db_pass/versions/3", b"third", None);
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", key)];

    let run = h.run_with(&["secret-manager-secret", "--project", "p-1", "--secret", "db_pass"], &env);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, " two words \n", ""),
        "one newline dropped, one printed"
    );
    let access =
        h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::SecretAccess).expect("an access call");
    assert_eq!(access.path, "/v1/projects/p-1/secrets/db_pass/versions/latest:access");
    assert!(access.header("authorization").unwrap().starts_with("Bearer "));

    let args = ["secret-manager-secret", "--project", "p-1", "--secret", "db_pass", "--version", "3"];
    let third = h.run_with(&args, &env);
    assert_eq!((third.code, third.stdout.as_str()), (0, "third\n"), "{}", third.stderr);
    assert_eq!(h.google.count(Endpoint::Token), 1, "the access token is cached like the others");
}

#[test]
fn failures_are_one_line_and_the_command_is_hidden() {
    let h = Harness::new();
    let key = h.key_file();
    let env = [("GOOGLE_APPLICATION_CREDENTIALS", key.to_str().unwrap())];
    h.google.set_secret("projects/p/secrets/s/versions/latest", b"abc", Some(1));
    let line = h.run_with(&["secret-manager-secret", "--project", "p", "--secret", "s"], &env).failure(1);
    assert!(
        line.contains("could not read the secret projects/p/secrets/s/versions/latest from Secret Manager"),
        "{line}"
    );
    assert!(line.contains("failed its CRC32C check"), "{line}");

    let line = h.run_with(&["secret-manager-secret", "--project", "p", "--secret", "none"], &env).failure(1);
    assert!(line.contains("not found or has no versions"), "{line}");

    let line = h.run(&["secret-manager-secret", "--project", "p/../q", "--secret", "s"]).failure(2);
    assert!(line.contains("must be ids"), "{line}");

    let help = h.run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("token") && !help.stdout.contains("secret-manager-secret"), "{}", help.stdout);
    let usage = h.run(&[]);
    assert!(!usage.stderr.contains("secret-manager-secret"), "{}", usage.stderr);
    let own_help = h.run(&["secret-manager-secret", "--help"]);
    assert!(own_help.stdout.contains("--project"), "{}", own_help.stdout);
}
