//! The command line as users meet it: completions for each shell, the man pages in docs/man (kept in
//! step with the code by this test; `cargo run --example update-man` regenerates them), and help texts that explain the values a user must find.

use crate::common::*;

#[test]
fn completions_for_every_shell() {
    let h = Harness::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef iap-token"),
        ("fish", "complete -c iap-token -n"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion"),
    ] {
        let run = h.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}");
        assert!(run.stdout.contains("generate-user-id-token") && run.stdout.contains("audience"), "{shell}");
    }
    let line = h.run(&["completions", "tcsh"]).failure(2);
    assert!(line.contains("invalid value 'tcsh'"), "{line}");
}

#[path = "../../examples/update-man.rs"]
mod update_man;

#[test]
fn man_pages_in_docs_match_the_code() {
    for (name, content) in update_man::man_pages() {
        let committed = std::fs::read_to_string(update_man::man_dir().join(&name)).unwrap_or_default();
        assert!(committed == content, "docs/man/{name} is stale: run cargo run --example update-man");
    }
}

#[test]
fn help_explains_where_to_find_each_value() {
    let h = Harness::new();
    let token = h.run(&["token", "--help"]);
    assert_eq!(token.code, 0);
    for needle in ["Identity-Aware Proxy", "Edit OAuth client", "Desktop app", "programmatic clients", "Examples:"] {
        assert!(token.stdout.contains(needle), "token --help lacks {needle:?}");
    }
    let drop_in = h.run(&["generate-user-id-token", "--help"]);
    for needle in [
        "--desktop_client_id",
        "--desktop_client_secret_gcp_secret_name",
        "--webapp_client_id",
        "--project",
        "Secret Manager",
    ] {
        assert!(drop_in.stdout.contains(needle), "generate-user-id-token --help lacks {needle:?}");
    }
    assert_eq!(h.run(&["--version"]).stdout, format!("iap-token {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_bare_call_prints_a_short_usage_on_stderr_and_exits_2() {
    let output = std::process::Command::new(crate::common::BIN).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "stdout stays empty");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.lines().count() <= 15, "at most 15 lines:\n{stderr}");
    assert!(stderr.starts_with("usage: iap-token <COMMAND> [OPTIONS]\n"), "{stderr}");
    for command in ["token", "login", "logout", "status", "git-credential", "generate-user-id-token", "completions"] {
        assert!(stderr.lines().any(|line| line.trim_start().starts_with(command)), "{command} listed:\n{stderr}");
    }
    assert!(stderr.ends_with("start with: iap-token token --help\n"), "{stderr}");
}
