//! The user source: a real headless Chromium completes the loopback sign-in against the fake authorize
//! page; refreshes with the IAP audience; invalid_grant; hostile callbacks; the non-interactive rules;
//! login, status and logout; and no secret on stderr at -vv.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;

/// A `--browser` command that starts headless Chromium in the background and records its pid.
struct Chromium {
    script: PathBuf,
    pids: PathBuf,
}

impl Chromium {
    fn new(h: &Harness) -> Chromium {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Chromium is not installed: run scripts/install-test-deps");
        let pids = h.path("chromium.pids");
        let profile = h.path("chromium-profiles");
        std::fs::create_dir_all(&profile).unwrap();
        let script = h.write(
            "browser.sh",
            &format!(
                "#!/bin/sh\n{chromium} --headless --no-sandbox --disable-gpu --disable-background-networking \
--disable-component-update --no-first-run --disable-sync --disable-quic --user-data-dir=$(mktemp -d -p {}) \"$1\" >/dev/null 2>&1 &\n\
echo $! >> {}\n",
                profile.display(),
                pids.display()
            ),
        );
        make_executable(&script);
        Chromium { script, pids }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(&self.pids).unwrap_or_default().lines() {
            let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
        }
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn user_harness() -> Harness {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    h
}

fn user_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--audience", AUD, "--client-id", DESKTOP_CLIENT, "--client-secret", DESKTOP_SECRET];
    args.extend_from_slice(extra);
    args
}

/// Runs the binary in its own session (no controlling terminal), as kubectl or CI would.
fn run_detached(h: &Harness, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::from_output(detached(h, args).envs(env.iter().copied()).output().expect("setsid"))
}

/// The binary under `setsid`, with the harness environment and the fake's token endpoint.
fn detached(h: &Harness, args: &[&str]) -> Command {
    let mut detached = Command::new("setsid");
    detached.arg("-w").arg(BIN).args(args).env_clear().envs(h.env_vars());
    detached.env("IAP_TOKEN_TOKEN_URI", h.google.token_uri()).stdin(Stdio::null());
    detached
}

#[test]
fn chromium_signs_in_once_then_refreshes_with_one_request() {
    let h = user_harness();
    let chromium = Chromium::new(&h);
    let browser = chromium.script.to_str().unwrap().to_string();
    let mut token_args = vec!["token"];
    token_args.extend(user_args(&["--browser", &browser, "--account", "user@example.com", "--login-timeout", "60"]));
    let run = run_detached(&h, &token_args, &[]);
    let token = run.token();
    let claims = verify_google_jwt(&token).expect("signed by the fake").1;
    assert_eq!(claims["aud"], AUD, "the IAP audience, not the desktop client");
    assert_eq!(claims["email"], "user@example.com");
    assert!(run.stderr.contains("opening the browser"), "{}", run.stderr);

    let requests = h.google.requests();
    let authorize = requests.iter().find(|r| r.endpoint == Endpoint::Authorize).expect("authorize");
    assert_eq!(authorize.query_value("code_challenge_method"), Some("S256"));
    assert_eq!(authorize.query_value("scope"), Some("openid email"));
    assert_eq!(authorize.query_value("access_type"), Some("offline"));
    assert_eq!(authorize.query_value("login_hint"), Some("user@example.com"));
    assert!(authorize.query_value("state").is_some_and(|s| s.len() >= 16));
    assert!(authorize.query_value("redirect_uri").unwrap().starts_with("http://127.0.0.1:"));
    let grants: Vec<&str> =
        requests.iter().filter(|r| r.endpoint == Endpoint::Token).filter_map(|r| r.form_value("grant_type")).collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    let refresh = requests.iter().find(|r| r.form_value("grant_type") == Some("refresh_token")).unwrap();
    assert_eq!(refresh.form_value("audience"), Some(AUD));

    // Warm: zero requests.
    h.google.reset_counts();
    assert_eq!(run_detached(&h, &token_args, &[]).token(), token);
    assert!(h.google.requests().is_empty());

    // Stale: exactly one token request, no sign-in.
    h.age_entries();
    run_detached(&h, &token_args, &[]).token();
    assert_eq!(h.google.count(Endpoint::Token), 1);
    assert_eq!(h.google.count(Endpoint::Authorize), 0);

    // Another audience of the same client: one refresh, no sign-in.
    let other = run_detached(
        &h,
        &[
            "token",
            "--audience",
            "other-aud",
            "--client-id",
            DESKTOP_CLIENT,
            "--client-secret",
            DESKTOP_SECRET,
            "--account",
            "user@example.com",
        ],
        &[],
    );
    assert_eq!(jwt_claims(&other.token())["aud"], "other-aud");
    assert_eq!(h.google.count(Endpoint::Authorize), 0);

    // Revoked refresh token: a new sign-in.
    h.google.revoke_all_refresh_tokens();
    h.age_entries();
    h.google.reset_counts();
    let again = run_detached(&h, &token_args, &[]);
    again.token();
    assert!(again.stderr.contains("the stored sign-in was refused"), "{}", again.stderr);
    assert_eq!(h.google.count(Endpoint::Authorize), 1);
}

/// A `--browser` that only writes the URL to a file, so the test can play the browser.
fn recording_browser(h: &Harness) -> (String, PathBuf) {
    let url_file = h.path("url.txt");
    let script = h
        .write("record.sh", &format!("#!/bin/sh\nprintf '%s' \"$1\" > {}.tmp && mv {0}.tmp {0}\n", url_file.display()));
    make_executable(&script);
    (script.to_str().unwrap().to_string(), url_file)
}

fn wait_for_url(url_file: &Path) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = loop {
        if let Ok(url) = std::fs::read_to_string(url_file) {
            break url;
        }
        assert!(Instant::now() < deadline, "the browser was never opened");
        std::thread::sleep(Duration::from_millis(20));
    };
    let parsed = url::Url::parse(&url).unwrap();
    let get = |name: &str| parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap();
    (url, get("redirect_uri"), get("state"))
}

/// Plays the person who approves at the fake's authorize page: the redirect it answers with.
fn approve(authorize_url: &str) -> String {
    let agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().new_agent();
    let answer = agent.get(authorize_url).call().unwrap();
    answer.headers().get("location").expect("a redirect").to_str().unwrap().to_string()
}

fn http_get(redirect_uri: &str, path_and_query: &str) -> String {
    let authority = redirect_uri.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).unwrap();
    write!(stream, "GET {path_and_query} HTTP/1.1\r\nHost: {authority}\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

fn spawn_login(h: &Harness, browser: &str, timeout: &str) -> std::process::Child {
    let mut args = vec!["login"];
    args.extend(user_args(&["--browser", browser, "--login-timeout", timeout]));
    detached(h, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn hostile_callbacks_are_answered_and_survived() {
    let h = user_harness();
    let (browser, url_file) = recording_browser(&h);
    let child = spawn_login(&h, &browser, "30");
    let (_, redirect_uri, state) = wait_for_url(&url_file);
    assert!(redirect_uri.starts_with("http://127.0.0.1:"));
    // A client that connects and sends nothing, stray paths, a request without parameters.
    let idle = TcpStream::connect(redirect_uri.trim_start_matches("http://").trim_end_matches('/')).unwrap();
    assert_eq!(http_get(&redirect_uri, "/favicon.ico"), "HTTP/1.1 404 Not Found");
    assert_eq!(http_get(&redirect_uri, "/other?code=x&state=y"), "HTTP/1.1 404 Not Found");
    assert_eq!(http_get(&redirect_uri, "/"), "HTTP/1.1 400 Bad Request");
    assert_eq!(http_get(&redirect_uri, &format!("/?state={state}")), "HTTP/1.1 400 Bad Request");
    drop(idle);
    // Now the real answer: get a code from the fake's authorize endpoint and deliver it.
    let (url, _, _) = wait_for_url(&url_file);
    let location = approve(&url);
    let path_and_query = &location[location.find("/?").unwrap()..];
    assert_eq!(http_get(&redirect_uri, path_and_query), "HTTP/1.1 200 OK");
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "login prints nothing on stdout");
    assert!(run.stderr.contains("signed in as user@example.com"), "{}", run.stderr);
}

#[test]
fn a_wrong_state_is_refused_and_reported_and_a_denial_ends_the_sign_in() {
    let h = user_harness();
    let (browser, url_file) = recording_browser(&h);
    let child = spawn_login(&h, &browser, "30");
    let (url, redirect_uri, _) = wait_for_url(&url_file);
    assert_eq!(http_get(&redirect_uri, "/?code=stolen&state=forged"), "HTTP/1.1 400 Bad Request");
    assert_eq!(http_get(&redirect_uri, "/?error=access_denied&state=forged"), "HTTP/1.1 400 Bad Request");
    // No other process can end the sign-in: the real answer still completes it.
    let location = approve(&url);
    assert_eq!(http_get(&redirect_uri, &location[location.find("/?").unwrap()..]), "HTTP/1.1 200 OK");
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.matches("ignored a sign-in answer with a wrong state").count(), 2, "{}", run.stderr);
    let exchanged: Vec<String> =
        h.google.requests().iter().filter_map(|r| r.form_value("code").map(str::to_string)).collect();
    assert!(!exchanged.iter().any(|code| code == "stolen"), "a forged code is never exchanged");

    std::fs::remove_file(&url_file).unwrap();
    let child = spawn_login(&h, &browser, "30");
    let (_, redirect_uri, state) = wait_for_url(&url_file);
    assert_eq!(http_get(&redirect_uri, &format!("/?error=access_denied&state={state}")), "HTTP/1.1 200 OK");
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1);
    // The hint is the exact command that tries again, with the flags this sign-in needed.
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "iap-token: error: the sign-in failed: the sign-in was denied in the browser (access_denied); run 'iap-token login --client-id {DESKTOP_CLIENT} --client-secret <SECRET> --audience {AUD} --auth-uri {} --token-uri {} --cache-dir {} --state-dir {} --store file' to try again",
            h.google.auth_uri(),
            h.google.token_uri(),
            h.cache_dir().display(),
            h.state_dir().display()
        )
    );
}

#[test]
fn the_sign_in_gives_up_at_the_login_timeout() {
    let h = user_harness();
    let (browser, url_file) = recording_browser(&h);
    let started = Instant::now();
    let child = spawn_login(&h, &browser, "2");
    let (_, redirect_uri, _) = wait_for_url(&url_file);
    let _idle = TcpStream::connect(redirect_uri.trim_start_matches("http://").trim_end_matches('/')).unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("the browser sign-in timed out (see --login-timeout)"), "{}", run.stderr);
}

#[test]
fn no_sign_in_where_none_may_run_exit_3_with_the_login_command() {
    let h = user_harness();
    let secret_file = h.write("secret.txt", &format!("{DESKTOP_SECRET}\n"));
    let args = [
        "token",
        "--audience",
        AUD,
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret-file",
        secret_file.to_str().unwrap(),
    ];
    let expected_command = format!(
        "run: iap-token login --client-id {DESKTOP_CLIENT} --client-secret-file {} --audience {AUD} --auth-uri {} --token-uri {} \
--cache-dir {} --state-dir {} --store file",
        secret_file.display(),
        h.google.auth_uri(),
        h.google.token_uri(),
        h.cache_dir().display(),
        h.state_dir().display()
    );
    let mut flag_args = args.to_vec();
    flag_args.push("--non-interactive");
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (flag_args, vec![], "--non-interactive is set"),
        (args.to_vec(), vec![("CI", "true")], "CI is set"),
        (args.to_vec(), vec![], "no browser can be opened"),
        (
            args.to_vec(),
            vec![(
                "KUBERNETES_EXEC_INFO",
                r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
            )],
            "no browser can be opened",
        ),
    ];
    for (args, env, reason) in cases {
        let run = run_detached(&h, &args, &env);
        let line = run.failure(3);
        assert!(line.contains(reason), "{line}");
        assert!(line.ends_with(&expected_command), "{line}");
    }
    // A browser configured but kubectl says non-interactive: the browser sign-in still runs.
    let (browser, url_file) = recording_browser(&h);
    let mut child_args = args.to_vec();
    child_args.extend(["--browser", &browser, "--login-timeout", "1"]);
    let run = run_detached(
        &h,
        &child_args,
        &[(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
        )],
    );
    assert!(url_file.exists(), "the browser was opened");
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert_eq!(h.google.count(Endpoint::Token), 0);
}

#[test]
fn invalid_grant_without_a_browser_drops_the_refresh_token_and_exits_3() {
    let h = user_harness();
    let refresh = h.google.issue_refresh_token(DESKTOP_CLIENT, "user@example.com");
    seed_login(&h, &refresh);
    let mut args = vec!["token"];
    args.extend(user_args(&[]));
    let token = run_detached(&h, &args, &[]).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    assert_eq!(h.google.count(Endpoint::Token), 1, "one refresh, nothing else");
    h.google.revoke_all_refresh_tokens();
    h.age_entries();
    let line = run_detached(&h, &args, &[]).failure(3);
    assert!(line.contains("a sign-in is needed"), "{line}");
    let status = run_detached(&h, &["status", "--client-id", DESKTOP_CLIENT, "--audience", AUD], &[]);
    assert_eq!(status.code, 3, "{}", status.stdout);
}

/// Stores a login of `user@example.com` in the file store, as a sign-in would.
pub fn seed_login(h: &Harness, refresh_token: &str) {
    use iap_token::store::{StoredLogin, TokenStore};
    let mut login = StoredLogin::new(DESKTOP_CLIENT, None, refresh_token.to_string().into(), now());
    login.principal = Some("user@example.com".into());
    TokenStore::File { dir: h.state_dir(), fell_back: None }.save(&login).expect("store the login");
}

#[test]
fn login_status_logout_and_revoke() {
    let h = user_harness();
    let chromium = Chromium::new(&h);
    let browser = chromium.script.to_str().unwrap().to_string();
    let mut login = vec!["login"];
    login.extend(user_args(&["--browser", &browser, "--login-timeout", "60"]));
    let run = run_detached(&h, &login, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("signed in as user@example.com"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("ID token for {AUD} ready until")), "{}", run.stderr);
    let stored = std::fs::read_dir(h.state_dir()).unwrap().next().unwrap().unwrap().path();
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(h.state_dir()).unwrap().permissions().mode() & 0o777, 0o700);
    }

    let status =
        run_detached(&h, &["status", "--client-id", DESKTOP_CLIENT, "--audience", AUD, "--format", "json"], &[]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_schema("status.schema.json", &report);
    assert_eq!(report["ready"], true);
    assert_eq!(report["signed_in"], true);
    assert_eq!(report["source"], "user");
    assert_eq!(report["entries"][0]["principal"], "user@example.com");
    assert!(!status.stdout.contains("eyJ"), "status never shows a token");
    let text = run_detached(&h, &["status", "--client-id", DESKTOP_CLIENT, "--audience", AUD], &[]);
    assert!(text.stdout.contains("signed in: yes"), "{}", text.stdout);

    let refresh_token = serde_json::from_slice::<Value>(&std::fs::read(&stored).unwrap()).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let logout = run_detached(&h, &["logout", "--client-id", DESKTOP_CLIENT, "--audience", AUD, "--revoke"], &[]);
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert_eq!(logout.stdout, "");
    let revoke = h.google.requests().into_iter().find(|r| r.endpoint == Endpoint::Revoke).expect("revoked");
    assert_eq!(revoke.form_value("token"), Some(refresh_token.as_str()));
    assert!(!stored.exists());
    assert!(h.cache_entries().is_empty());
    let status = run_detached(&h, &["status", "--client-id", DESKTOP_CLIENT, "--audience", AUD], &[]);
    assert_eq!(status.code, 3);
    assert!(status.stdout.contains("ready: no"), "{}", status.stdout);
}

#[test]
fn client_json_file_endpoints_are_honoured() {
    let h = user_harness();
    let refresh = h.google.issue_refresh_token(DESKTOP_CLIENT, "user@example.com");
    seed_login(&h, &refresh);
    let client_json = serde_json::json!({"installed": {
        "client_id": DESKTOP_CLIENT, "client_secret": DESKTOP_SECRET, "project_id": "p",
        "auth_uri": h.google.auth_uri(), "token_uri": h.google.token_uri(),
        "redirect_uris": ["http://localhost"]
    }});
    let file = h.write("client.json", &client_json.to_string());
    let mut command = h.command(&[
        "token",
        "--audience",
        AUD,
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret-file",
        file.to_str().unwrap(),
    ]);
    command.env_remove("IAP_TOKEN_AUTH_URI");
    let run = Run::from_output(command.output().unwrap());
    assert_eq!(jwt_claims(&run.token())["aud"], AUD);
    let request = &h.google.requests()[0];
    assert_eq!(request.form_value("client_secret"), Some(DESKTOP_SECRET));
}

#[test]
fn verbose_sign_in_and_refresh_leak_no_secret() {
    let h = user_harness();
    let chromium = Chromium::new(&h);
    let browser = chromium.script.to_str().unwrap().to_string();
    let mut args = vec!["-vv", "token"];
    args.extend(user_args(&["--browser", &browser, "--login-timeout", "60"]));
    let first = run_detached(&h, &args, &[]);
    let token = first.token();
    h.age_entries();
    let second = run_detached(&h, &args, &[]);
    let stderr = format!("{}{}", first.stderr, second.stderr);
    assert!(stderr.contains("HTTP"), "-vv shows the requests: {stderr}");
    let mut secrets = vec![token, second.token(), DESKTOP_SECRET.to_string()];
    for request in h.google.requests() {
        for name in ["code", "code_verifier", "refresh_token", "client_secret", "assertion"] {
            if let Some(value) = request.form_value(name) {
                secrets.push(value.to_string());
            }
        }
    }
    for secret in &secrets {
        assert!(!stderr.contains(secret.as_str()), "stderr leaks {secret}: {stderr}");
    }
    // The refresh token lives only in the state dir, nowhere in the cache.
    for (path, _) in h.cache_entries() {
        let text = std::fs::read_to_string(path).unwrap();
        for request in h.google.requests() {
            if let Some(refresh) = request.form_value("refresh_token") {
                assert!(!text.contains(refresh));
            }
        }
    }
}

#[test]
fn no_browser_reads_the_pasted_redirect_from_the_terminal() {
    use std::io::BufRead;
    let h = user_harness();
    let login = format!(
        "{BIN} login --audience {AUD} --client-id {DESKTOP_CLIENT} --client-secret {DESKTOP_SECRET} --no-browser --login-timeout 30"
    );
    // `script` gives the binary a terminal; what we write to its stdin is typed on that terminal.
    let mut child = Command::new("script")
        .args(["-qfec", &login, "/dev/null"])
        .env_clear()
        .envs(h.env_vars())
        .env("IAP_TOKEN_TOKEN_URI", h.google.token_uri())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the binary on a terminal");
    let mut terminal = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut screen = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(terminal.read_line(&mut line).unwrap() > 0, "no sign-in URL was shown: {screen}");
        screen.push_str(&line);
        if let Some(start) = line.find(&h.google.auth_uri()) {
            break line[start..].trim().to_string();
        }
    };
    let redirected = approve(&url);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{redirected}").unwrap();
    let mut rest = String::new();
    let _ = terminal.read_to_string(&mut rest);
    let status = child.wait().unwrap();
    screen.push_str(&rest);
    assert!(status.success(), "{screen}");
    assert!(screen.contains("Address or code:"), "{screen}");
    assert!(screen.contains("signed in as user@example.com"), "{screen}");
    assert_eq!(h.google.count(Endpoint::Authorize), 1);
    let status = run_detached(&h, &["status", "--client-id", DESKTOP_CLIENT, "--audience", AUD], &[]);
    assert_eq!(status.code, 0, "{}", status.stdout);
}

#[test]
fn status_speaks_for_this_configuration_only() {
    let h = user_harness();
    // A token of another source is cached; it says nothing about this user's sign-in.
    let metadata = h.google.metadata_host();
    h.run_with(&["token", "--audience", "other", "--source", "metadata"], &[("GCE_METADATA_HOST", &metadata)]).token();
    let status = run_detached(&h, &["status", "--client-id", DESKTOP_CLIENT], &[]);
    assert_eq!(status.code, 3, "{}", status.stdout);
    assert!(status.stdout.contains("cached tokens: none"), "{}", status.stdout);
    // Configuration errors are errors, not "ready".
    let line = run_detached(&h, &["status", "--service-account-key", "/nonexistent/key.json"], &[]).failure(1);
    assert!(line.contains("could not read the credential file /nonexistent/key.json"), "{line}");
    let line = run_detached(&h, &["status", "--source", "user"], &[]).failure(2);
    assert!(line.contains("--source user needs --client-id"), "{line}");
}

/// A `--browser` that plays the person approving: it follows the authorize redirect with curl, in the
/// background (browsers do not wait for the page either).
fn approving_browser(h: &Harness) -> String {
    let script = h.write(
        "approve.sh",
        "#!/bin/sh\n(loc=$(curl -s -o /dev/null -w '%{redirect_url}' \"$1\") && curl -s -o /dev/null \"$loc\") &\n",
    );
    make_executable(&script);
    script.to_str().unwrap().to_string()
}

#[test]
fn a_browser_that_cannot_start_is_reported_at_once_with_its_last_words() {
    let h = user_harness();
    let not_executable = h.write("not-executable.sh", "#!/bin/sh\nexit 0\n");
    let failing =
        h.write("failing.sh", "#!/bin/sh\necho 'starting the browser' >&2\necho 'Error: no DISPLAY' >&2\nexit 3\n");
    make_executable(&failing);
    let cases = [
        (
            "/nonexistent/browser".to_string(),
            "exited with status 127: iap-token-browser: 1: /nonexistent/browser: not found".to_string(),
        ),
        (
            not_executable.display().to_string(),
            format!("exited with status 126: iap-token-browser: 1: {}: Permission denied", not_executable.display()),
        ),
        (failing.display().to_string(), "exited with status 3: Error: no DISPLAY".to_string()),
    ];
    for (browser, said) in cases {
        let started = Instant::now();
        let args = user_args(&["--browser", &browser, "--login-timeout", "300"]);
        let mut token = vec!["token"];
        token.extend(args);
        let run = run_detached(&h, &token, &[]);
        assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{}", run.stderr);
        assert_eq!(
            run.stderr.lines().last().unwrap(),
            format!(
                "iap-token: error: the browser command '{browser}' {said}; set --browser or $BROWSER to a browser that works, or use --no-browser to paste the code"
            )
        );
        // Not the 300 s login timeout.
        assert!(started.elapsed() < Duration::from_secs(60), "{browser}: {:?}", started.elapsed());
    }
    assert_eq!(h.google.count(Endpoint::Token), 0);
}

#[test]
fn a_failed_browser_falls_back_to_pasting_on_a_terminal() {
    use std::io::BufRead;
    let h = user_harness();
    let login = format!(
        "{BIN} login --audience {AUD} --client-id {DESKTOP_CLIENT} --client-secret {DESKTOP_SECRET} --browser /nonexistent/browser --login-timeout 300"
    );
    let mut child = Command::new("script")
        .args(["-qfec", &login, "/dev/null"])
        .env_clear()
        .envs(h.env_vars())
        .env("IAP_TOKEN_TOKEN_URI", h.google.token_uri())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the binary on a terminal");
    let mut terminal = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut screen = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(terminal.read_line(&mut line).unwrap() > 0, "no sign-in URL was shown: {screen}");
        screen.push_str(&line);
        if line.starts_with(&h.google.auth_uri()) {
            break line.trim().to_string();
        }
    };
    assert!(screen.contains("the browser command '/nonexistent/browser' exited with status 127"), "{screen}");
    writeln!(child.stdin.take().unwrap(), "{}", approve(&url)).unwrap();
    let mut rest = String::new();
    let _ = terminal.read_to_string(&mut rest);
    assert!(child.wait().unwrap().success(), "{screen}{rest}");
    assert!(rest.contains("signed in as user@example.com"), "{rest}");
}

#[test]
fn an_unwritable_state_dir_still_yields_this_calls_token() {
    let h = user_harness();
    // The state directory's path is taken by a file: the sign-in cannot be kept.
    std::fs::create_dir_all(h.state_dir().parent().unwrap()).unwrap();
    std::fs::write(h.state_dir(), "not a directory").unwrap();
    let browser = approving_browser(&h);
    let mut args = vec!["token", "--store", "file"];
    args.extend(user_args(&["--browser", &browser, "--login-timeout", "60"]));
    let run = run_detached(&h, &args, &[]);
    let token = run.token();
    assert_eq!(verify_google_jwt(&token).expect("signed by the fake Google").1["aud"], AUD);
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].starts_with("iap-token: warning: signed in, but the sign-in could not be kept (")
            && warnings[0].ends_with("); this token is served, the next refresh signs in again"),
        "{}",
        warnings[0]
    );
    assert_eq!(h.google.count(Endpoint::Authorize), 1);
}
