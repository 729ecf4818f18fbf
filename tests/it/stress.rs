//! Proof under stress: herds of 32 and 128 processes on a stale entry (key, metadata and user sources)
//! make one token request; kill -9 at every write of a refresh leaves the old or the new complete value
//! and never a stuck lock; the fault matrix against the fake Google is bounded and leaves the cache as
//! it was.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;

fn herd(h: &Harness, size: usize, args: &[&str], env: &[(&str, &str)], endpoint: Endpoint, label: &str) {
    h.age_entries();
    h.google.reset_counts();
    let started = Instant::now();
    let children: Vec<_> = (0..size)
        .map(|_| {
            let mut command = h.command(args);
            command.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
            (Instant::now(), command.spawn().unwrap())
        })
        .collect();
    let mut waits = Vec::new();
    let mut tokens = Vec::new();
    for (spawned, child) in children {
        let run = Run::from_output(child.wait_with_output().unwrap());
        waits.push(spawned.elapsed());
        tokens.push(run.token());
    }
    assert_eq!(h.google.count(endpoint), 1, "{label}: {size} processes, one request");
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{label}: all print the same new token");
    waits.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "herd {label} x{size}: total {:.0} ms; per process p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(started.elapsed()),
        ms(waits[size / 2]),
        ms(waits[size * 9 / 10]),
        ms(waits[size - 1])
    );
}

#[test]
fn herds_of_32_and_128_make_one_request_per_source() {
    let h = Harness::new();
    let key = h.key_file();
    let key_args = ["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()];
    h.run(&key_args).token();

    let metadata = h.google.metadata_host();
    let metadata_env = [("GCE_METADATA_HOST", metadata.as_str())];
    let metadata_args = ["token", "--audience", "metadata-aud"];
    h.run_with(&metadata_args, &metadata_env).token();

    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let refresh = h.google.issue_refresh_token(DESKTOP_CLIENT, "user@example.com");
    crate::user_flow::seed_login(&h, &refresh);
    let token_uri = h.google.token_uri();
    let user_env = [("IAP_TOKEN_TOKEN_URI", token_uri.as_str())];
    let user_args = [
        "token",
        "--audience",
        "user-aud",
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret",
        DESKTOP_SECRET,
        "--non-interactive",
    ];
    h.run_with(&user_args, &user_env).token();

    for size in [32, 128] {
        herd(&h, size, &key_args, &[], Endpoint::Token, "service-account-key");
        herd(&h, size, &metadata_args, &metadata_env, Endpoint::MetadataIdentity, "metadata");
        herd(&h, size, &user_args, &user_env, Endpoint::Token, "user");
    }
}

/// Runs `args` under strace, killing the process with SIGKILL at the `nth` call of `syscall`; true when
/// it was killed (false: the run had fewer such calls and finished).
fn killed_at(h: &Harness, syscall: &str, nth: usize, args: &[&str], env: &[(&str, &str)]) -> bool {
    let status = Command::new("strace")
        .args([
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            &format!("trace={syscall}"),
            "-e",
            &format!("inject={syscall}:signal=KILL:when={nth}"),
        ])
        .arg(BIN)
        .args(args)
        .env_clear()
        .envs(h.env_vars())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace is not installed: run scripts/install-test-deps");
    !status.success()
}

#[test]
fn kill_9_at_every_write_of_a_refresh_leaves_old_or_new_and_no_stuck_lock() {
    let h = Harness::new();
    let key = h.key_file();
    let args = ["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()];
    h.run(&args).token();
    let mut kill_points = 0;
    for syscall in ["openat", "write", "fsync", "rename", "sendto", "connect"] {
        for nth in 1.. {
            h.age_entries();
            let (path, old) = h.cache_entries().remove(0);
            let issued_before = h.google.count(Endpoint::Token);
            let killed = killed_at(&h, syscall, nth, &args, &[]);
            let text = std::fs::read_to_string(&path).expect("the entry is never lost");
            let entry: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("partial entry after {syscall}#{nth}: {e}: {text}"));
            let unchanged = entry == old;
            let new = entry["token"].as_str().is_some_and(|t| verify_google_jwt(t).is_some())
                && entry["expires_at"].as_i64().unwrap() > now() + 3000;
            assert!(unchanged || new, "{syscall}#{nth}: neither the old nor a new complete entry: {text}");
            if !killed {
                break;
            }
            kill_points += 1;
            assert!(h.google.count(Endpoint::Token) <= issued_before + 1);
            // The next process is never blocked by the dead one's lock.
            // It never waits for the dead process's lock (a wait over 1 s would say so on stderr).
            let next = h.run(&args);
            next.token();
            assert!(!next.stderr.contains("waiting for another"), "{syscall}#{nth}: {}", next.stderr);
        }
    }
    eprintln!("kill -9 points exercised during a refresh: {kill_points}");
    assert!(kill_points >= 10, "only {kill_points} kill points");
}

#[test]
fn kill_9_during_a_sign_in_never_leaves_a_partial_refresh_token() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    let browser = crate::google_creds::approving_browser(&h);
    let token_uri = h.google.token_uri();
    let env = [("IAP_TOKEN_TOKEN_URI", token_uri.as_str())];
    let args = ["login", "--client-id", DESKTOP_CLIENT, "--client-secret", DESKTOP_SECRET, "--browser", &browser];
    let mut kill_points = 0;
    for syscall in ["write", "fsync", "rename"] {
        for nth in 1.. {
            let _ = std::fs::remove_dir_all(h.state_dir());
            let killed = killed_at(&h, syscall, nth, &args, &env);
            let stored: Vec<_> = std::fs::read_dir(h.state_dir())
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            for path in stored.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
                let login: Value = serde_json::from_slice(&std::fs::read(path).unwrap())
                    .unwrap_or_else(|e| panic!("partial store after {syscall}#{nth}: {e}"));
                assert!(login["refresh_token"].as_str().is_some_and(|t| t.starts_with("1//fake-")), "{login}");
            }
            if !killed {
                assert_eq!(stored.iter().filter(|p| p.extension().is_some_and(|e| e == "json")).count(), 1);
                break;
            }
            kill_points += 1;
        }
    }
    eprintln!("kill -9 points exercised during a sign-in: {kill_points}");
    assert!(kill_points >= 3);
}

/// The stale entry's bytes before a failing refresh, to check they are untouched after it.
fn stale_entry_bytes(h: &Harness) -> Vec<u8> {
    h.age_entries();
    std::fs::read(&h.cache_entries()[0].0).unwrap()
}

#[test]
fn fault_matrix_is_bounded_clear_and_leaves_the_cache_untouched() {
    let h = Harness::new();
    h.key_token(&[]).token();
    let before = stale_entry_bytes(&h);
    let cases: Vec<(Fault, &str, usize)> = vec![
        (Fault::Status(500), "answered HTTP 500: internal_error (fake failure)", 3),
        (Fault::Status(503), "answered HTTP 503", 3),
        (Fault::Status(429), "answered HTTP 429", 3),
        (Fault::StatusRetryAfter(503, 1), "answered HTTP 503", 3),
        (Fault::StatusRetryAfter(429, 60), "answered HTTP 429", 1),
        (Fault::Drop, "no answer from", 3),
        (Fault::Html, "an HTML page instead of the expected answer", 1),
        (Fault::TruncatedJson, "an unreadable answer", 1),
        (Fault::WrongAud, "not the requested", 1),
        (Fault::NoExp, "has no expiry", 1),
        (Fault::Expired, "had already expired", 1),
        (Fault::InvalidClient, "invalid_client", 1),
    ];
    for (fault, expected, requests) in cases {
        h.google.reset_counts();
        h.google.set_fault(Some(fault.clone()));
        let started = Instant::now();
        let line = h.key_token(&[]).failure(1);
        let elapsed = started.elapsed();
        assert!(line.contains(expected), "{fault:?}: {line}");
        assert_eq!(h.google.count(Endpoint::Token), requests, "{fault:?}: requests");
        assert!(elapsed < Duration::from_secs(60), "{fault:?}: took {elapsed:?}");
        if let Fault::StatusRetryAfter(_, 1) = fault {
            assert!(elapsed >= Duration::from_secs(2), "Retry-After: 1 honoured twice: {elapsed:?}");
        }
        assert_eq!(std::fs::read(&h.cache_entries()[0].0).unwrap(), before, "{fault:?}: the cache is untouched");
    }
    // Each refusal of the token ends with the hint that fits its cause, whole line.
    let whole_lines = [
        (
            Fault::WrongAud,
            format!(
                "iap-token: error: the ID token is for audience 'https://wrong-audience.example.com', not the requested '{AUD}'; check --audience: for IAP it is the OAuth client id of the service's IAP (Security > Identity-Aware Proxy > the service > Edit OAuth client)"
            ),
        ),
        (
            Fault::NoExp,
            "iap-token: error: the ID token has no expiry ('exp' claim); retry with --force-refresh; if it persists, run with -v to see which server answered and report it".to_string(),
        ),
    ];
    for (fault, expected) in whole_lines {
        h.google.set_fault(Some(fault));
        assert_eq!(h.key_token(&[]).failure(1), expected);
    }
    // A transient failure that clears: the retry succeeds.
    h.google.set_fault(None);
    h.google.reset_counts();
    h.google.fail_next(2, Fault::Status(503));
    h.key_token(&[]).token();
    assert_eq!(h.google.count(Endpoint::Token), 3);
}

#[test]
fn secret_manager_and_iam_credentials_errors_are_bounded_and_clear() {
    let h = Harness::new();
    let key = h.key_file();
    let target = "target@test-project.iam.gserviceaccount.com";
    h.google.allow_impersonation(SA_EMAIL, target);
    let args = [
        "token",
        "--audience",
        AUD,
        "--impersonate-service-account",
        target,
        "--service-account-key",
        key.to_str().unwrap(),
    ];
    h.run(&args).token();
    h.age_entries_where(|entry| entry["kind"] == "id_token");
    // Every call fails: the access token comes from the cache, generateIdToken is retried twice.
    h.google.reset_counts();
    h.google.set_fault(Some(Fault::Status(503)));
    let line = h.run(&args).failure(1);
    assert!(line.contains("could not get an ID token from the impersonation source"), "{line}");
    assert!(line.contains("answered HTTP 503"), "{line}");
    assert_eq!(h.google.count(Endpoint::GenerateIdToken), 3);
    h.google.set_fault(None);

    // Secret Manager answering 500 then recovering: retried, then the sign-in proceeds.
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    h.google.set_secret("projects/p/secrets/s/versions/latest", DESKTOP_SECRET.as_bytes(), None);
    let browser = crate::google_creds::approving_browser(&h);
    let key = h.key_file();
    let token_uri = h.google.token_uri();
    let sm_args = [
        "token",
        "--audience",
        AUD,
        "--client-id",
        DESKTOP_CLIENT,
        "--client-secret-from-secret-manager",
        "projects/p/secrets/s",
        "--browser",
        &browser,
        "--service-account-key",
        key.to_str().unwrap(),
    ];
    // The key is the ADC for Secret Manager here; --client-id selects the user source.
    h.google.fail_next(1, Fault::Status(500));
    let run = h.run_with(&sm_args, &[("IAP_TOKEN_TOKEN_URI", &token_uri)]);
    run.token();
    assert_eq!(h.google.count(Endpoint::SecretAccess), 1);
}

#[test]
fn proxy_variables_are_honoured() {
    let h = Harness::new();
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let mut lines = Vec::new();
        proxy.set_nonblocking(false).unwrap();
        for stream in proxy.incoming().take(3) {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            std::io::BufReader::new(stream.try_clone().unwrap()).read_line(&mut line).unwrap();
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            lines.push(line);
        }
        lines
    });
    let key = h.key_file();
    let mut command = h.command(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()]);
    command.env_remove("NO_PROXY").env("HTTP_PROXY", format!("http://127.0.0.1:{port}"));
    let run = Run::from_output(command.output().unwrap());
    let line = run.failure(1);
    let lines = seen.join().unwrap();
    assert!(line.contains(&format!("(through the proxy 127.0.0.1:{port})")), "{line}");
    assert_eq!(
        lines,
        vec![format!("CONNECT {} HTTP/1.1\r\n", h.google.metadata_host()); 3],
        "the proxy saw every attempt"
    );
    assert_eq!(h.google.count(Endpoint::Token), 0, "nothing bypassed the proxy");
}

#[test]
fn no_secret_outside_its_store_after_every_flow_at_vv() {
    let h = Harness::new();
    h.google.add_user_client(DESKTOP_CLIENT, DESKTOP_SECRET);
    h.google.set_secret("projects/p/secrets/s/versions/latest", DESKTOP_SECRET.as_bytes(), None);
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let metadata = h.google.metadata_host();
    let token_uri = h.google.token_uri();
    let browser = crate::google_creds::approving_browser(&h);
    let target = "target@test-project.iam.gserviceaccount.com";
    h.google.allow_impersonation(SA_EMAIL, target);
    type Flow<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let flows: Vec<Flow> = vec![
        (vec!["-vv", "token", "--audience", AUD, "--service-account-key", key], vec![]),
        (
            vec!["-vv", "token", "--audience", "m", "--source", "metadata"],
            vec![("GCE_METADATA_HOST", metadata.as_str())],
        ),
        (
            vec![
                "-vv",
                "token",
                "--audience",
                "i",
                "--impersonate-service-account",
                target,
                "--service-account-key",
                key,
            ],
            vec![],
        ),
        (
            vec![
                "-vv",
                "token",
                "--audience",
                AUD,
                "--client-id",
                DESKTOP_CLIENT,
                "--client-secret-from-secret-manager",
                "projects/p/secrets/s",
                "--browser",
                &browser,
                "--service-account-key",
                key,
            ],
            vec![("IAP_TOKEN_TOKEN_URI", token_uri.as_str())],
        ),
        (
            vec!["-vv", "logout", "--client-id", DESKTOP_CLIENT, "--revoke"],
            vec![("IAP_TOKEN_TOKEN_URI", token_uri.as_str())],
        ),
    ];
    let mut stderr = String::new();
    let mut stdout_tokens = Vec::new();
    for (args, env) in flows {
        let run = h.run_with(&args, &env);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        stderr.push_str(&run.stderr);
        stdout_tokens.extend(run.stdout.lines().map(str::to_string));
    }
    let mut secrets: Vec<String> = stdout_tokens.into_iter().filter(|t| !t.is_empty()).collect();
    secrets.push(DESKTOP_SECRET.into());
    secrets.extend(h.google.valid_access_tokens());
    for request in h.google.requests() {
        for name in ["code", "code_verifier", "refresh_token", "client_secret", "assertion", "token"] {
            if let Some(value) = request.form_value(name) {
                secrets.push(value.to_string());
            }
        }
    }
    for secret in &secrets {
        assert!(!stderr.contains(secret.as_str()), "stderr leaks a secret: {secret}");
    }
    // The refresh token and client secret live only in the state dir (removed by logout), never in the
    // cache or anywhere else under HOME.
    let long_lived: Vec<String> = h
        .google
        .requests()
        .iter()
        .filter_map(|r| r.form_value("refresh_token").map(str::to_string))
        .chain([DESKTOP_SECRET.to_string()])
        .collect();
    for dir in [h.cache_dir(), h.path("home")] {
        for path in walk(&dir) {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for secret in &long_lived {
                assert!(!text.contains(secret.as_str()), "{} holds a long-lived secret", path.display());
            }
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn redirects_are_never_followed() {
    let h = Harness::new();
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let target = h.google.token_uri();
    let redirector = std::thread::spawn(move || {
        let mut answered = 0;
        // Wait long for the first request, briefly for any retry after it.
        while let Ok(Some(request)) =
            server.recv_timeout(Duration::from_millis(if answered == 0 { 10_000 } else { 500 }))
        {
            let location = tiny_http::Header::from_bytes("Location", target.as_bytes()).unwrap();
            let _ =
                request.respond(tiny_http::Response::from_string("moved").with_status_code(302).with_header(location));
            answered += 1;
        }
        answered
    });
    let key = h.write("key.json", &sa_key_json(&format!("http://127.0.0.1:{port}/token")));
    let line = h.run(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()]).failure(1);
    assert!(line.contains("answered HTTP 302"), "{line}");
    assert!(line.contains("redirects are not followed"), "{line}");
    assert_eq!(h.google.count(Endpoint::Token), 0, "the assertion never reached the redirect's target");
    assert_eq!(redirector.join().unwrap(), 1, "a 302 is not retried either");
}
