//! The profiles files: chosen by name, by URL (longest path prefix) or `default-profile`; the system file
//! under the user's key by key; flags and env over profiles; the leak rule (a profile's audience only for
//! its own URL); strict where it matters (bad TOML, unknown keys in the profile in use, unknown profile,
//! a file others can write, `min-version`), each one line with the file and line.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::*;
use crate::fake_google::*;
use crate::iap_front::{IapConfig, IapFront};

const OTHER_AUD: &str = "123-other-web.apps.googleusercontent.com";

fn user_file(h: &Harness, text: &str) -> PathBuf {
    let path = h.path("home/.config/iap-token/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn system_file(h: &Harness, text: &str) -> PathBuf {
    let path = h.path("etc/iap-token/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn key_profile_file(h: &Harness, iap_url: &str) -> PathBuf {
    user_file(
        h,
        &format!(
            r#"# the company's services
[defaults]
service-account-key = "{key}"

[profile.flyte]
url = "{iap_url}/flyte"
audience = "{AUD}"

[profile.console]
url = "{iap_url}/flyte/console"
audience = "{OTHER_AUD}"
header-name = "Proxy-Authorization"
"#,
            key = h.key_file().display()
        ),
    )
}

#[test]
fn a_profile_by_name_or_by_the_longest_matching_url_lends_its_settings() {
    let h = Harness::new();
    let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    key_profile_file(&h, &iap.url());
    let token = h.run(&["token", "--profile", "flyte"]).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    let token = h.run(&["token", "--url", &format!("{}/flyte/console/projects", iap.url())]).token();
    assert_eq!(jwt_claims(&token)["aud"], OTHER_AUD, "the longest url wins");
    let header = h.run(&["token", "--profile", "console", "--format", "header"]);
    assert!(header.stdout.starts_with("Proxy-Authorization: Bearer "), "{}", header.stdout);
    assert!(iap.seen().is_empty(), "a configured audience needs no discovery");
    // Warm with --profile: no request anywhere.
    h.google.reset_counts();
    h.run(&["token", "--profile", "flyte"]).token();
    assert_eq!(h.google.requests().len(), 0);
}

#[test]
fn a_profiles_audience_never_goes_to_another_url() {
    let h = Harness::new();
    let theirs = IapFront::start(IapConfig::new(OTHER_AUD, &h.google.auth_uri()));
    let ours = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    user_file(
        &h,
        &format!(
            "default-profile = \"flyte\"\n[defaults]\nservice-account-key = \"{}\"\naudience = \"{AUD}\"\n[profile.flyte]\nurl = \"{}\"\naudience = \"{AUD}\"\n",
            h.key_file().display(),
            ours.url()
        ),
    );
    // --profile names ours, --url is theirs: the audience is discovered from theirs, never ours sent there.
    let token = h.run(&["token", "--profile", "flyte", "--url", &theirs.url()]).token();
    assert_eq!(jwt_claims(&token)["aud"], OTHER_AUD);
    // default-profile and [defaults] do not lend an audience to an unmatched URL either.
    h.run(&["logout", "--all"]);
    let token = h.run(&["token", "--url", &theirs.url()]).token();
    assert_eq!(jwt_claims(&token)["aud"], OTHER_AUD);
    assert_eq!(theirs.seen().iter().filter(|s| s.status == 302).count(), 2, "discovered each time");
    // With no URL at all, default-profile applies.
    let token = h.run(&["token"]).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
}

#[test]
fn precedence_flag_env_user_file_system_file() {
    let h = Harness::new();
    system_file(
        &h,
        &format!(
            "[defaults]\nservice-account-key = \"{}\"\n[profile.p]\naudience = \"from-system\"\nheader-name = \"X-System\"\n",
            h.key_file().display()
        ),
    );
    user_file(&h, "[profile.p]\naudience = \"from-user\"\n");
    let run = h.run(&["token", "--profile", "p", "--format", "header"]);
    assert!(run.stdout.starts_with("X-System: Bearer "), "system keys stay where the user sets none");
    assert_eq!(jwt_claims(run.stdout.trim().rsplit(' ').next().unwrap())["aud"], "from-user");
    let env = h.run_with(&["token", "--profile", "p"], &[("IAP_TOKEN_AUDIENCE", "from-env")]).token();
    assert_eq!(jwt_claims(&env)["aud"], "from-env");
    let flag = h
        .run_with(&["token", "--profile", "p", "--audience", "from-flag"], &[("IAP_TOKEN_AUDIENCE", "from-env")])
        .token();
    assert_eq!(jwt_claims(&flag)["aud"], "from-flag");
}

#[test]
fn strict_where_it_matters_lenient_elsewhere() {
    let h = Harness::new();
    let key = h.key_file();
    let path = user_file(&h, "[profile.a]\naudience = \"x\"\nurl = [\n");
    let line = h.run(&["token", "--profile", "a"]).failure(2);
    assert!(line.starts_with(&format!("iap-token: error: {}:3: not valid TOML: ", path.display())), "{line}");

    let text = format!(
        "[profile.a]\nservice-account-key = \"{}\"\naudiance = \"typo\"\n[profile.newer]\nfuture-key = 1\naudience = \"{AUD}\"\nservice-account-key = \"{}\"\n",
        key.display(),
        key.display()
    );
    let path = user_file(&h, &text);
    let line = h.run(&["token", "--profile", "a"]).failure(2);
    assert_eq!(
        line,
        format!(
            "iap-token: error: {}:3: unknown key 'audiance' in [profile.a] (a newer iap-token?); see 'iap-token --help'",
            path.display()
        )
    );
    // An unknown key in another profile is not an error (said at -v only).
    let run = h.run(&["token", "--profile", "newer"]);
    assert_eq!(run.code, 2, "the profile in use has the unknown key: {}", run.stderr);
    user_file(
        &h,
        &format!(
            "[profile.ok]\naudience = \"{AUD}\"\nservice-account-key = \"{}\"\n[profile.newer]\nfuture-key = 1\n",
            key.display()
        ),
    );
    let run = h.run(&["token", "--profile", "ok"]);
    run.token();
    assert_eq!(run.stderr, "");

    let line = h.run(&["token", "--profile", "nope"]).failure(2);
    assert!(line.contains("--profile names the profile 'nope', which is not in "), "{line}");
    assert!(line.contains("known profiles: newer, ok"), "{line}");

    let path = user_file(&h, "min-version = \"99.0.0\"\n");
    let line = h.run(&["token", "--audience", AUD]).failure(2);
    assert!(
        line.starts_with(&format!(
            "iap-token: error: {}:1: this configuration needs iap-token 99.0.0 or newer, and this is ",
            path.display()
        )),
        "{line}"
    );

    let path = user_file(&h, "[profile.x]\nmin-ttl = \"ten\"\n");
    let line = h.run(&["token", "--profile", "x"]).failure(2);
    assert!(
        line.contains(&format!("{}:2: 'min-ttl' in [profile.x] must be a non-negative integer", path.display())),
        "{line}"
    );
}

#[test]
fn a_config_file_others_can_write_is_refused() {
    let h = Harness::new();
    let path = user_file(&h, &format!("[profile.p]\naudience = \"{AUD}\"\n"));
    // Once read and remembered (memo.rs), then made writable by others: refused all the same.
    h.key_token(&[]).token();
    assert_eq!(memos(&h).len(), 1);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let line = h.key_token(&[]).failure(2);
    assert_eq!(
        line,
        format!(
            "iap-token: error: refusing the config file {}: others can write to it (such a file could send tokens elsewhere); fix it with 'chmod go-w' or remove it; see 'iap-token --help'",
            path.display()
        )
    );
}

/// The memo files of the profile chosen (`src/profiles/memo.rs`) in the cache directory.
fn memos(h: &Harness) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(h.cache_dir()) else { return Vec::new() };
    let mut memos: Vec<PathBuf> =
        dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "memo")).collect();
    memos.sort();
    memos
}

#[test]
fn the_choice_is_remembered_until_a_file_changes_by_one_byte() {
    let h = Harness::new();
    let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
    let path = key_profile_file(&h, &iap.url());
    let system = system_file(&h, "[defaults]\nheader-name = \"X-One\"\n");
    let env = [("IAP_TOKEN_SYSTEM_CONFIG", system.to_str().unwrap())];
    let console = format!("{}/flyte/console/x", iap.url());
    let first = h.run_with(&["token", "--url", &console], &env).token();
    assert_eq!(jwt_claims(&first)["aud"], OTHER_AUD);
    let memo = memos(&h);
    assert_eq!(memo.len(), 1, "one memo per question");
    assert_eq!(std::fs::metadata(&memo[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&memo[0]).unwrap();
    assert!(text.contains(&std::fs::read_to_string(&path).unwrap()), "the memo holds the texts it was made of");
    // Remembered: the same answer, and `--profile` has its own memo.
    assert_eq!(h.run_with(&["token", "--url", &console], &env).token(), first);
    let header = h.run_with(&["token", "--profile", "flyte", "--format", "header"], &env).stdout;
    assert!(header.starts_with("X-One: Bearer "), "{header}");
    assert_eq!(memos(&h).len(), 2);

    // An edit of one byte that keeps the size (and likely the mtime): the next call sees it.
    let edited = std::fs::read_to_string(&path).unwrap().replace("/flyte/console", "/flyte/consolf");
    std::fs::write(&path, &edited).unwrap();
    let token = h.run_with(&["token", "--url", &console], &env).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD, "the console profile no longer matches; flyte does");
    // So do an edit of the system file, and a file that went away.
    std::fs::write(&system, "[defaults]\nheader-name = \"X-Two\"\n").unwrap();
    let header = h.run_with(&["token", "--profile", "flyte", "--format", "header"], &env).stdout;
    assert!(header.starts_with("X-Two: Bearer "), "{header}");
    std::fs::remove_file(&system).unwrap();
    let header = h.run_with(&["token", "--profile", "flyte", "--format", "header"], &env).stdout;
    assert!(header.starts_with("Authorization: Bearer "), "{header}");

    // A corrupt memo is ignored and replaced.
    for memo in memos(&h) {
        std::fs::write(&memo, b"\x00garbage{").unwrap();
    }
    assert_eq!(jwt_claims(&h.run(&["token", "--profile", "console"]).token())["aud"], OTHER_AUD);
    assert!(memos(&h).iter().any(|m| std::fs::read(m).unwrap().starts_with(b"{\"by\":")));

    // An unknown key in another profile is said at -v on every call: such an answer is not remembered.
    let with_unknown = format!("{edited}\n[profile.newer]\nfuture-key = 1\n");
    std::fs::write(&path, with_unknown).unwrap();
    for _ in 0..2 {
        let run = h.run(&["-v", "token", "--url", &console]);
        run.token();
        assert!(run.stderr.contains("ignoring: unknown key 'future-key' in [profile.newer]"), "{}", run.stderr);
    }
}
