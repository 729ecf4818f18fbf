//! `iap-token git-credential`: the helper protocol exactly (the binary run directly), then the real git
//! against a fake smart-HTTP server that demands a Bearer ID token: git 2.47 (`/usr/local/bin/git`, which
//! takes `authtype=Bearer` from helpers) with `proactiveAuth`, and Debian's git 2.39 (`/usr/bin/git`, which
//! does not) with the helper's guidance and the `http.extraHeader` route. A missing git fails the test.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::fake_git::{CONTENT, FILE, FakeGit};
use crate::fake_google::*;

/// No git run here needs more than a few seconds; this only turns a hang into a failure.
const GIT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `iap-token git-credential --audience AUD --service-account-key KEY <action>` with `input` on stdin.
fn helper(h: &Harness, action: &str, input: &str) -> Run {
    let key = h.key_file();
    let args = ["git-credential", "--audience", AUD, "--service-account-key", key.to_str().unwrap(), action];
    let mut child =
        h.command(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A helper may exit without reading its input (unknown actions); git ignores that EPIPE too.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    Run::from_output(child.wait_with_output().expect("run iap-token git-credential"))
}

/// What git 2.47 sends to `get` for an HTTP remote.
const GET_2_47: &str = "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com\n\n";

/// `credential.helper=!<BIN> git-credential --audience AUD --service-account-key KEY`, as git config.
fn helper_command(h: &Harness) -> String {
    format!("!{BIN} git-credential --audience {AUD} --service-account-key {}", h.key_file().display())
}

/// The fake git server accepting only ID tokens signed by the fake Google for AUD.
fn iap_git() -> FakeGit {
    FakeGit::start(|token| verify_google_jwt(token).is_some_and(|(_, claims)| claims["aud"] == AUD))
}

/// A git new enough for the `authtype` credential protocol (>= 2.46): `IAP_TOKEN_TEST_GIT`, else the
/// image's /usr/local/bin/git, else `git` on PATH. A missing or older one fails the test, never skips it.
fn new_git() -> &'static str {
    static GIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    GIT.get_or_init(|| {
        let found = find_git("IAP_TOKEN_TEST_GIT", &["/usr/local/bin/git"]);
        let version = found.as_deref().and_then(git_version);
        assert!(
            version.is_some_and(|v| v >= (2, 46)),
            "these tests need git >= 2.46 (found {found:?}, version {version:?}): install it (e.g. build git 2.47 from \
             https://www.kernel.org/pub/software/scm/git/ into /usr/local) or set IAP_TOKEN_TEST_GIT=/path/to/git"
        );
        found.unwrap()
    })
}

/// A git older than 2.46 (no `authtype`), for the fallback path: `IAP_TOKEN_TEST_OLD_GIT`, else
/// Debian's /usr/bin/git. A missing or newer one fails the test, never skips it.
fn old_git() -> &'static str {
    static GIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    GIT.get_or_init(|| {
        let found = find_git("IAP_TOKEN_TEST_OLD_GIT", &["/usr/bin/git"]);
        let version = found.as_deref().and_then(git_version);
        assert!(
            version.is_some_and(|v| v < (2, 46)),
            "these tests need a git older than 2.46 (found {found:?}, version {version:?}): install Debian 12's git \
             ('apt-get install git', 2.39 at /usr/bin/git) or set IAP_TOKEN_TEST_OLD_GIT=/path/to/git"
        );
        found.unwrap()
    })
}

/// The git named by `env`, else the first of `defaults` that exists, else (for the new git only) `git` on PATH.
fn find_git(env: &str, defaults: &[&str]) -> Option<String> {
    if let Some(path) = std::env::var_os(env) {
        return Some(path.to_string_lossy().into_owned());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("git")).collect::<Vec<_>>())
        .unwrap_or_default();
    defaults
        .iter()
        .map(std::path::PathBuf::from)
        .chain(on_path)
        .find(|path| path.is_file())
        .map(|path| path.to_string_lossy().into_owned())
}

/// `(major, minor)` of `git --version`.
fn git_version(path: &str) -> Option<(u32, u32)> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.trim().strip_prefix("git version ")?.split('.');
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

/// `program` in the harness dir with the harness's clean environment (which git passes on to the helper),
/// no system git config and no prompts.
fn clean_command(h: &Harness, program: &str) -> Command {
    let plugin = h.command(&[]);
    let env = plugin.get_envs().filter_map(|(name, value)| Some((name, value?)));
    let mut command = Command::new(program);
    command
        .current_dir(h.dir.path())
        .env_clear()
        .envs(env)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    command
}

/// Runs `command` to completion within [`GIT_DEADLINE`].
fn finish(h: &Harness, mut command: Command) -> Run {
    let (stdout, stderr) = (h.path("git.stdout"), h.path("git.stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for git") {
            break status;
        }
        if started.elapsed() > GIT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {GIT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(stdout).unwrap_or_default(),
        stderr: std::fs::read_to_string(stderr).unwrap_or_default(),
    }
}

/// Runs `git ARGS` (the real git at `git`) with [`clean_command`]'s environment and `extra_env` on top.
fn git(h: &Harness, git: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut command = clean_command(h, git);
    command.args(args).envs(extra_env.iter().copied());
    finish(h, command)
}

/// Asserts that `ls-remote` printed `main` and `HEAD` at the served commit.
fn assert_lists_the_commit(run: &Run, server: &FakeGit) {
    assert_eq!(run.code, 0, "git ls-remote failed: {}", run.stderr);
    let expected = format!("{head}\tHEAD\n{head}\trefs/heads/main\n", head = server.head());
    assert_eq!(run.stdout, expected, "stderr: {}", run.stderr);
}

/// Asserts that a clone into `dest` succeeded and checked out the served file.
fn assert_cloned(run: &Run, dest: &Path) {
    assert_eq!(run.code, 0, "git clone failed: {}", run.stderr);
    assert_eq!(std::fs::read_to_string(dest.join(FILE)).expect("the cloned file"), CONTENT);
}

/// Asserts that every request the server saw carried `Authorization: Bearer` and none was answered 401.
fn assert_always_authorized(server: &FakeGit) {
    let seen = server.seen();
    assert!(!seen.is_empty());
    for request in &seen {
        let authorization = request.authorization.as_deref().unwrap_or("");
        assert!(authorization.starts_with("Bearer ") && request.status == 200, "the server saw: {seen:#?}");
    }
}

#[test]
fn get_with_authtype_prints_exactly_the_bearer_credential() {
    let h = Harness::new();
    let run = helper(&h, "get", GET_2_47);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(run.stdout.ends_with('\n') && lines.len() == 5, "stdout: {:?}", run.stdout);
    let token = lines[2].strip_prefix("credential=").expect("credential line");
    let (_, claims) = verify_google_jwt(token).expect("a token signed by the fake Google");
    assert_eq!(claims["aud"], AUD);
    let exp = claims["exp"].as_i64().unwrap();
    let expected = format!(
        "capability[]=authtype\nauthtype=Bearer\ncredential={token}\nephemeral=1\npassword_expiry_utc={}\n",
        exp - 300
    );
    assert_eq!(run.stdout, expected);
    assert_eq!(h.google.count(Endpoint::Token), 1);
}

#[test]
fn get_without_authtype_prints_nothing_and_explains_the_two_routes() {
    let h = Harness::new();
    for input in ["protocol=https\nhost=git.example.com\n\n", "capability[]=state\nprotocol=https\nhost=h\n", ""] {
        let run = helper(&h, "get", input);
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "input {input:?}; stderr: {}", run.stderr);
        assert!(run.stderr.contains("proactiveAuth"), "{}", run.stderr);
        assert!(
            run.stderr.contains(".extraHeader=\"Authorization: Bearer $(iap-token token --audience"),
            "{}",
            run.stderr
        );
    }
    let run = helper(&h, "get", "protocol=https\nhost=git.example.com\n\n");
    assert!(
        run.stderr.contains("git -c http.https://git.example.com/.extraHeader="),
        "scoped to the URL: {}",
        run.stderr
    );
    assert_eq!(h.google.count(Endpoint::Token), 0, "no token is fetched for a git that cannot use it");
}

#[test]
fn capability_store_and_unknown_actions() {
    let h = Harness::new();
    let capability = helper(&h, "capability", "");
    assert_eq!((capability.code, capability.stdout.as_str()), (0, "version 0\ncapability authtype\n"));
    let store = helper(&h, "store", "protocol=https\nhost=git.example.com\nauthtype=Bearer\ncredential=x\n\n");
    assert_eq!((store.code, store.stdout.as_str(), store.stderr.as_str()), (0, "", ""));
    let unknown = helper(&h, "frobnicate", GET_2_47);
    assert_eq!((unknown.code, unknown.stdout.as_str()), (0, ""), "stderr: {}", unknown.stderr);
    assert_eq!(h.google.count(Endpoint::Token), 0);
    assert!(h.cache_entries().is_empty());
}

#[test]
fn erase_drops_the_cached_token() {
    let h = Harness::new();
    helper(&h, "get", GET_2_47);
    helper(&h, "get", GET_2_47);
    assert_eq!(h.google.count(Endpoint::Token), 1, "the second get is served from the cache");
    assert_eq!(h.cache_entries().len(), 1);
    let erase = helper(&h, "erase", "capability[]=authtype\nprotocol=https\nhost=git.example.com\n\n");
    assert_eq!((erase.code, erase.stdout.as_str()), (0, ""), "stderr: {}", erase.stderr);
    assert!(h.cache_entries().is_empty(), "erase removes the cache entry");
    let again = helper(&h, "get", GET_2_47);
    assert!(again.stdout.contains("credential="), "{again:?}");
    assert_eq!(h.google.count(Endpoint::Token), 2, "the get after erase makes a new token request");
}

#[test]
fn git_2_47_with_proactive_auth_sends_the_bearer_on_the_first_request() {
    let h = Harness::new();
    let server = iap_git();
    let helper = format!("credential.helper={}", helper_command(&h));
    let config = ["-c", "credential.helper=", "-c", &helper, "-c", "http.proactiveAuth=auto"];
    let url = server.url();

    let ls_remote = git(&h, new_git(), &[&config[..], &["ls-remote", &url]].concat(), &[]);
    assert_lists_the_commit(&ls_remote, &server);
    assert_always_authorized(&server);
    assert_eq!(h.google.count(Endpoint::Token), 1);

    let again = git(&h, new_git(), &[&config[..], &["ls-remote", &url]].concat(), &[]);
    assert_lists_the_commit(&again, &server);
    let dest = h.path("clone");
    let clone = git(&h, new_git(), &[&config[..], &["clone", "--quiet", &url, dest.to_str().unwrap()]].concat(), &[]);
    assert_cloned(&clone, &dest);
    assert_always_authorized(&server);
    assert_eq!(h.google.count(Endpoint::Token), 1, "later git runs are served from the cache");
}

#[test]
fn git_2_47_with_the_documented_per_url_global_config() {
    let h = Harness::new();
    let server = iap_git();
    let base = server.base_url();
    // The docs/git.md lines, with the fake's URL and the service-account key.
    let helper_key = format!("credential.{base}.helper");
    let proactive_key = format!("http.{base}.proactiveAuth");
    for args in [[helper_key.as_str(), &helper_command(&h)], [proactive_key.as_str(), "auto"]] {
        let set = git(&h, new_git(), &[&["config", "--global"][..], &args].concat(), &[]);
        assert_eq!(set.code, 0, "git config: {}", set.stderr);
    }
    let dest = h.path("clone");
    let clone = git(&h, new_git(), &["clone", "--quiet", &server.url(), dest.to_str().unwrap()], &[]);
    assert_cloned(&clone, &dest);
    assert_always_authorized(&server);
    // The config applies to this server only: another URL gets no helper and no proactive token.
    let other = git(&h, new_git(), &["ls-remote", &server.url().replace("127.0.0.1", "localhost")], &[]);
    assert!(other.code != 0 && other.stderr.contains("could not read Username"), "{other:?}");
    assert_eq!(h.google.count(Endpoint::Token), 1);
}

#[test]
fn git_2_47_without_proactive_auth_asks_the_helper_after_a_401() {
    let h = Harness::new();
    let server = iap_git();
    let helper = format!("credential.helper={}", helper_command(&h));
    let run = git(&h, new_git(), &["-c", "credential.helper=", "-c", &helper, "ls-remote", &server.url()], &[]);
    assert_lists_the_commit(&run, &server);
    let seen = server.seen();
    assert_eq!(seen[0].authorization, None, "{seen:#?}");
    assert_eq!(seen[0].status, 401, "{seen:#?}");
    assert!(seen[1..].iter().all(|s| s.status == 200 && s.authorization.is_some()), "{seen:#?}");
}

#[test]
fn git_2_47_needs_proactive_auth_when_iap_redirects_to_sign_in() {
    let h = Harness::new();
    let server = iap_git();
    server.redirect_to_sign_in();
    let helper = format!("credential.helper={}", helper_command(&h));
    let without = git(&h, new_git(), &["-c", "credential.helper=", "-c", &helper, "ls-remote", &server.url()], &[]);
    assert!(without.code != 0 && without.stderr.contains("unable to update url base from redirection"), "{without:?}");
    assert_eq!(h.google.count(Endpoint::Token), 0, "git never asks the helper after a redirect");

    let proactive = format!("http.{}.proactiveAuth=auto", server.base_url());
    let config = ["-c", "credential.helper=", "-c", &helper, "-c", &proactive];
    let with = git(&h, new_git(), &[&config[..], &["ls-remote", &server.url()]].concat(), &[]);
    assert_lists_the_commit(&with, &server);
    assert_eq!(h.google.count(Endpoint::Token), 1);
}

#[test]
fn git_2_39_ignores_the_helper_and_shows_its_guidance() {
    let h = Harness::new();
    let server = iap_git();
    let helper = format!("credential.helper={}", helper_command(&h));
    let dest = h.path("clone");
    let config = ["-c", "credential.helper=", "-c", &helper, "-c", "http.proactiveAuth=auto"];
    let run = git(&h, old_git(), &[&config[..], &["clone", &server.url(), dest.to_str().unwrap()]].concat(), &[]);
    assert_ne!(run.code, 0, "git 2.39 cannot send a Bearer from a helper: {run:?}");
    assert!(run.stderr.contains("proactiveAuth") && run.stderr.contains(".extraHeader="), "{}", run.stderr);
    assert!(run.stderr.contains("could not read Username"), "git asks for a password after the 401: {}", run.stderr);
    assert!(server.unauthorized() >= 1 && server.seen().iter().all(|s| s.status == 401), "{:#?}", server.seen());
    assert_eq!(h.google.count(Endpoint::Token), 0);
}

#[test]
fn git_2_39_with_extra_header_per_command_and_from_the_environment() {
    let h = Harness::new();
    let server = iap_git();
    let token = h.key_token(&[]).token();
    let header = format!("Authorization: Bearer {token}");

    let extra = format!("http.extraHeader={header}");
    let ls_remote = git(&h, old_git(), &["-c", &extra, "ls-remote", &server.url()], &[]);
    assert_lists_the_commit(&ls_remote, &server);

    let scoped = format!("http.{}.extraHeader", server.base_url());
    let env = [("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0", &scoped), ("GIT_CONFIG_VALUE_0", &header)];
    let dest = h.path("clone");
    let clone = git(&h, old_git(), &["clone", "--quiet", &server.url(), dest.to_str().unwrap()], &env);
    assert_cloned(&clone, &dest);
    assert_always_authorized(&server);
    let bearer = format!("Bearer {token}");
    assert!(server.seen().iter().all(|s| s.authorization.as_deref() == Some(bearer.as_str())));
}

#[test]
fn proxy_authorization_extra_header_leaves_authorization_to_the_git_server() {
    let h = Harness::new();
    let check = |token: &str| verify_google_jwt(token).is_some_and(|(_, claims)| claims["aud"] == AUD);
    let server = FakeGit::start_checking("Proxy-Authorization", check);
    let token = h.key_token(&[]).token();
    let extra = format!("http.extraHeader=Proxy-Authorization: Bearer {token}");
    for git_path in [old_git(), new_git()] {
        let run = git(&h, git_path, &["-c", &extra, "ls-remote", &server.url()], &[]);
        assert_lists_the_commit(&run, &server);
    }
    let seen = server.seen();
    assert!(seen.iter().all(|s| s.status == 200 && s.authorization.is_none()), "{seen:#?}");
}

#[test]
fn git_2_47_erases_a_token_the_server_rejects() {
    let h = Harness::new();
    let server = FakeGit::start(|_| false);
    let helper = format!("credential.helper={}", helper_command(&h));
    let config = ["-c", "credential.helper=", "-c", &helper, "-c", "http.proactiveAuth=auto"];
    let run = git(&h, new_git(), &[&config[..], &["ls-remote", &server.url()]].concat(), &[]);
    assert!(run.code != 0 && run.stderr.contains("Authentication failed for"), "{run:?}");
    let seen = server.seen();
    assert!(seen.len() == 1 && seen[0].authorization.is_some() && seen[0].status == 401, "{seen:#?}");
    assert_eq!(h.google.count(Endpoint::Token), 1);
    assert!(h.cache_entries().is_empty(), "git called erase, which dropped the rejected token");
}

#[test]
fn git_2_47_storing_helpers_never_keep_the_ephemeral_token() {
    let h = Harness::new();
    let server = iap_git();
    let (file, dest) = (h.path("git-credentials"), h.path("clone"));
    let store = format!("credential.helper=store --file {}", file.display());
    let helper = format!("credential.helper={}", helper_command(&h));
    let config = ["-c", "credential.helper=", "-c", &store, "-c", &helper, "-c", "http.proactiveAuth=auto"];
    let clone =
        git(&h, new_git(), &[&config[..], &["clone", "--quiet", &server.url(), dest.to_str().unwrap()]].concat(), &[]);
    assert_cloned(&clone, &dest);
    assert!(!file.exists(), "git-credential-store wrote {:?}", std::fs::read_to_string(&file));
}

#[test]
fn git_2_47_shows_the_helpers_error_when_a_sign_in_is_not_allowed() {
    let h = Harness::new();
    let server = iap_git();
    let user = format!(
        "credential.helper=!{BIN} git-credential --audience {AUD} --client-id {DESKTOP_CLIENT} --client-secret s"
    );
    let config = ["-c", "credential.helper=", "-c", &user, "-c", "http.proactiveAuth=auto"];
    let run = git(&h, new_git(), &[&config[..], &["ls-remote", &server.url()]].concat(), &[("CI", "true")]);
    assert_ne!(run.code, 0);
    let line = run.stderr.lines().find(|l| l.starts_with("iap-token: error: ")).unwrap_or_else(|| panic!("{run:?}"));
    assert!(line.contains("run: iap-token login --client-id"), "{line}");
    assert!(server.seen().is_empty(), "git sends nothing when no helper answered: {:#?}", server.seen());
}

#[test]
fn git_2_47_an_empty_helper_entry_keeps_a_general_helper_away_from_the_host() {
    let h = Harness::new();
    let server = iap_git();
    let general = ["config", "--global", "credential.helper", "!f() { echo username=u; echo password=p; }; f"];
    assert_eq!(git(&h, new_git(), &general, &[]).code, 0);
    let (base, url) = (server.base_url(), server.url());
    let ours = format!("credential.{base}.helper={}", helper_command(&h));
    let proactive = format!("http.{base}.proactiveAuth=auto");

    let shadowed = git(&h, new_git(), &["-c", &ours, "-c", &proactive, "ls-remote", &url], &[]);
    assert!(shadowed.code != 0 && shadowed.stderr.contains("Authentication failed"), "{shadowed:?}");
    let basic = server.seen().iter().any(|s| s.authorization.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    assert!(basic, "the general helper's password went first: {:#?}", server.seen());

    let reset = format!("credential.{base}.helper=");
    let run = git(&h, new_git(), &["-c", &reset, "-c", &ours, "-c", &proactive, "ls-remote", &url], &[]);
    assert_lists_the_commit(&run, &server);
    let mut fill = clean_command(&h, new_git());
    fill.args(["-c", &reset, "-c", &ours, "credential", "fill"]);
    let input = format!("url={}\n", url.replace("127.0.0.1", "localhost"));
    let filled = with_stdin(fill, &input);
    assert!(filled.stdout.contains("username=u\npassword=p\n"), "other hosts keep the general helper: {filled:?}");
}

/// Runs `command` with `input` on stdin.
fn with_stdin(mut command: Command, input: &str) -> Run {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    Run::from_output(child.wait_with_output().expect("run the command"))
}

/// The `sh` code blocks of a Markdown text, each with the `## ` heading it is under.
fn sh_blocks(markdown: &str) -> Vec<(String, String)> {
    let (mut section, mut block, mut blocks) = (String::new(), None::<String>, Vec::new());
    for line in markdown.lines() {
        match (block.as_mut(), line) {
            (None, "```sh") => block = Some(String::new()),
            (Some(_), "```") => blocks.push((section.clone(), block.take().unwrap_or_default())),
            (Some(text), line) => text.extend([line, "\n"]),
            (None, line) => section = line.strip_prefix("## ").map_or(section, str::to_string),
        }
    }
    blocks
}

/// Every `sh` block of docs/git.md, with its placeholders replaced by the fake server, the fake audience and
/// the service-account key, run by `sh -e` with `iap-token` and git on PATH (2.39 under the heading about
/// older git, both 2.39 and 2.47 under `Proxy-Authorization`, 2.47 elsewhere), one HOME per section. Each
/// block must succeed, reach the server, and never be answered 401 (the token goes with the first request).
#[test]
fn docs_git_md_commands_work_against_the_fake() {
    let h = Harness::new();
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/git.md")).expect("docs/git.md");
    let iap = iap_git();
    let check = |token: &str| verify_google_jwt(token).is_some_and(|(_, claims)| claims["aud"] == AUD);
    let proxied = FakeGit::start_checking("Proxy-Authorization", check);
    let key = h.key_file().display().to_string();
    let blocks = sh_blocks(&doc);
    assert!(blocks.len() >= 6, "docs/git.md has only {} sh blocks", blocks.len());
    for (index, (section, text)) in blocks.iter().enumerate() {
        let server = if text.contains("Proxy-Authorization") { &proxied } else { &iap };
        let gits: &[&str] = match section.as_str() {
            s if s.contains("Proxy-Authorization") => &[old_git(), new_git()],
            s if s.contains("older than 2.46") => &[old_git()],
            _ => &[new_git()],
        };
        let script = text
            .replace("https://git.example.com", &server.base_url())
            .replace("git.example.com", server.base_url().trim_start_matches("http://"))
            .replace("protocol=https", "protocol=http")
            .replace("team/repo.git", "repo.git")
            .replace("WEB_CLIENT_ID", AUD)
            .replace(
                "--client-id DESKTOP_CLIENT_ID --client-secret-file /path/client.json",
                &format!("--service-account-key {key}"),
            )
            .replace("/path/key.json", &key);
        assert!(!script.contains("_ID") && !script.contains("/path/"), "a placeholder is left in: {script}");
        let home = h.path(&format!("doc-home-{}", section.replace(|c: char| !c.is_ascii_alphanumeric(), "")));
        for git_path in gits {
            // `iap-token` and `git` resolve to the built binary and the git under test.
            let (bin, cwd) = (
                h.path(&format!("doc-bin-{index}-{}", git_path.len())),
                h.path(&format!("doc-{index}-{}", git_path.len())),
            );
            for dir in [&home, &bin, &cwd] {
                std::fs::create_dir_all(dir).unwrap();
            }
            std::os::unix::fs::symlink(BIN, bin.join("iap-token")).unwrap();
            std::os::unix::fs::symlink(git_path, bin.join("git")).unwrap();
            let before = server.seen().len();
            let mut command = clean_command(&h, "/bin/sh");
            command.current_dir(&cwd).env("HOME", &home).env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
            command.args(["-e", "-c", &script]);
            let run = finish(&h, command);
            assert_eq!(run.code, 0, "docs/git.md block under '{section}' with {git_path} failed:\n{script}\n{run:?}");
            let seen = &server.seen()[before..];
            assert!(!seen.is_empty(), "the block never reached the server:\n{script}");
            assert!(seen.iter().all(|s| s.status == 200), "{script}\nthe server saw: {seen:#?}");
        }
    }
}

#[test]
fn git_2_47_with_no_helper_options_answers_only_for_urls_a_profile_matches() {
    let h = Harness::new();
    let server = iap_git();
    let config_file = h.path("home/.config/iap-token/config.toml");
    std::fs::create_dir_all(config_file.parent().unwrap()).unwrap();
    std::fs::write(
        &config_file,
        format!(
            "[profile.git]\nurl = \"{}\"\naudience = \"{AUD}\"\nservice-account-key = \"{}\"\n",
            server.base_url(),
            h.key_file().display()
        ),
    )
    .unwrap();
    let helper = format!("credential.helper={BIN} git-credential");
    let config = ["-c", "credential.helper=", "-c", &helper, "-c", "http.proactiveAuth=auto"];
    let run = git(&h, new_git(), &[&config[..], &["ls-remote", &server.url()]].concat(), &[]);
    assert_lists_the_commit(&run, &server);
    assert_always_authorized(&server);
    assert_eq!(h.google.count(Endpoint::Token), 1);

    // Another host (localhost is not 127.0.0.1): silent, so git's next helper answers, even with an
    // audience and a profile in the environment.
    let next = "credential.helper=!f() { echo username=u; echo password=p; }; f";
    let other = server.url().replace("127.0.0.1", "localhost");
    let mut fill = clean_command(&h, new_git());
    fill.args(["-c", "credential.helper=", "-c", &helper, "-c", next, "credential", "fill"]);
    fill.envs([("IAP_TOKEN_AUDIENCE", AUD), ("IAP_TOKEN_PROFILE", "git")]);
    let filled = with_stdin(fill, &format!("url={other}\ncapability[]=authtype\n"));
    assert!(filled.stdout.contains("username=u\npassword=p\n"), "{filled:?}");
    assert!(!filled.stdout.contains("Bearer"), "no token for a host no profile names: {filled:?}");
    let quiet =
        with_stdin(h.command(&["git-credential", "get"]), "capability[]=authtype\nprotocol=http\nhost=localhost\n\n");
    assert_eq!((quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()), (0, "", ""));
    let told = with_stdin(
        h.command(&["-v", "git-credential", "get"]),
        "capability[]=authtype\nprotocol=http\nhost=localhost\n\n",
    );
    assert_eq!(
        told.stderr,
        "iap-token: no profile's url matches http://localhost; leaving it to git's next helper (see 'iap-token profiles')\n"
    );

    // erase for the profile's URL drops its cached token: the next get fetches a new one.
    let host = server.base_url().trim_start_matches("http://").to_string();
    let erase = with_stdin(h.command(&["git-credential", "erase"]), &format!("protocol=http\nhost={host}\n\n"));
    assert_eq!(erase.code, 0, "{}", erase.stderr);
    assert!(h.cache_entries().is_empty(), "{:?}", h.cache_entries());
}
