//! The command line as users meet it: completions for each shell, the man pages in docs/man (kept in
//! step with the code by this test; `cargo run --example update-man` regenerates them), and help texts that explain the values a user must find.

use std::path::Path;

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
    // One line per command plus four: short enough to read at a glance, each line fits a terminal.
    assert!(stderr.lines().count() <= 20, "at most 20 lines:\n{stderr}");
    assert!(stderr.lines().all(|line| line.len() <= 100), "lines of at most 100 characters:\n{stderr}");
    assert!(stderr.starts_with("usage: iap-token <COMMAND> [OPTIONS]\n"), "{stderr}");
    for command in [
        "token",
        "login",
        "logout",
        "status",
        "setup",
        "doctor",
        "profiles",
        "git-credential",
        "generate-user-id-token",
        "completions",
    ] {
        assert!(stderr.lines().any(|line| line.trim_start().starts_with(command)), "{command} listed:\n{stderr}");
    }
    assert!(stderr.ends_with("start with: iap-token token --help\n"), "{stderr}");
}

#[test]
fn help_lists_sources_in_the_readmes_order_and_only_options_that_mean_something() {
    let h = Harness::new();
    let token = h.run(&["token", "--help"]).stdout;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // One order everywhere: the code's resolve order, README's table, --help's options and values.
    let order = [
        "--client-id",
        "--impersonate-service-account",
        "external_account",
        "--service-account-key",
        "metadata server",
    ];
    let positions = |text: &str, needles: &[&str]| -> Vec<usize> {
        needles.iter().map(|n| text.find(n).unwrap_or_else(|| panic!("{n} missing"))).collect()
    };
    let table = &readme[readme.find("| you have | use |").expect("README's source table")..];
    let in_readme = positions(table, &order);
    assert!(in_readme.is_sorted(), "README's source table order: {in_readme:?}");
    let flags = ["--client-id <", "--impersonate-service-account <", "--service-account-key <"];
    assert!(positions(&token, &flags).is_sorted(), "token --help option order");
    let flat = token.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("possible values: auto, user, impersonation, external-account, service-account-key, metadata"),
        "{token}"
    );
    for command in ["login", "logout"] {
        let help = h.run(&[command, "--help"]).stdout;
        for meaningless in ["--min-ttl", "--force-refresh"] {
            assert!(!help.contains(meaningless), "{command} --help offers {meaningless}");
        }
        assert!(help.contains("--cache-dir") && help.contains("--store"), "{command} --help keeps the dirs");
    }
    let git = h.run(&["git-credential", "--help"]).stdout;
    let action = git.find("<ACTION>  The action git asks for").expect("ACTION described");
    let arguments = git.rfind("\nArguments:\n").expect("an Arguments heading");
    let network = git.find("\nNetwork:\n").expect("a Network heading");
    assert!(network < arguments && arguments < action, "ACTION is filed under Arguments, not Network:\n{git}");
}

#[test]
fn readmes_test_commands_are_exactly_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme.find("Run all the tests:").expect("README's test section")..];
    let block = section.split("```").nth(1).expect("a code block").trim_start_matches("sh\n");
    let readme_commands: Vec<&str> =
        block.lines().map(|l| l.split(" #").next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let ci_commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(readme_commands, ci_commands);
}
