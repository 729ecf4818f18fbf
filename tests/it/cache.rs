//! The ID-token cache: zero requests on a hit, the margin rule, --force-refresh, corrupt entries,
//! private modes under umask 0, single flight across 16 processes, and a killed lock holder.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn only_entry(h: &Harness) -> (std::path::PathBuf, Value) {
    let mut entries = h.cache_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.remove(0)
}

/// Rewrites the entry as if it had been fetched `age` seconds ago with `lifetime` seconds of validity.
fn age_entry(h: &Harness, fetched_ago: i64, left: i64) {
    let (path, mut entry) = only_entry(h);
    entry["fetched_at"] = (now() - fetched_ago).into();
    entry["expires_at"] = (now() + left).into();
    std::fs::write(path, serde_json::to_vec(&entry).unwrap()).unwrap();
}

#[test]
fn second_call_makes_zero_requests_and_the_entry_matches_its_schema() {
    let h = Harness::new();
    let first = h.key_token(&[]).token();
    let second = h.key_token(&[]).token();
    assert_eq!(first, second);
    assert_eq!(h.google.count(Endpoint::Token), 1);
    let (path, entry) = only_entry(&h);
    assert_schema("cache-entry.schema.json", &entry);
    assert_eq!(entry["version"], 1);
    assert_eq!(entry["kind"], "id_token");
    assert_eq!(entry["token"], first.as_str());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&h.cache_dir()), 0o700);
}

#[test]
fn a_token_inside_the_margin_is_refreshed_exactly_once() {
    let h = Harness::new();
    h.key_token(&[]).token();
    // One hour lifetime, 200 s left: inside the 300 s margin.
    age_entry(&h, 3400, 200);
    let second = h.key_token(&[]).token();
    assert_eq!(h.google.count(Endpoint::Token), 2);
    let (_, entry) = only_entry(&h);
    assert_eq!(entry["token"], second.as_str());
    assert!(entry["expires_at"].as_i64().unwrap() > now() + 3000, "the stale entry was replaced");
    h.key_token(&[]).token();
    assert_eq!(h.google.count(Endpoint::Token), 2, "the refreshed token is served from the cache");
    // With 400 s left it is still served.
    age_entry(&h, 3200, 400);
    h.key_token(&[]).token();
    assert_eq!(h.google.count(Endpoint::Token), 2);
    // --min-ttl moves the margin.
    h.key_token(&["--min-ttl", "600"]).token();
    assert_eq!(h.google.count(Endpoint::Token), 3);
}

#[test]
fn force_refresh_fetches_a_new_token() {
    let h = Harness::new();
    h.key_token(&[]).token();
    let second = h.key_token(&["--force-refresh"]).token();
    assert_eq!(h.google.count(Endpoint::Token), 2);
    assert_eq!(only_entry(&h).1["token"], second.as_str(), "the forced token replaces the cached one");
}

#[test]
fn corrupt_or_foreign_entries_are_replaced() {
    let h = Harness::new();
    h.key_token(&[]).token();
    let (path, _) = only_entry(&h);
    for junk in ["", "{", "null", r#"{"version":2,"token":"x"}"#, "\u{0}\u{1}binary"] {
        std::fs::write(&path, junk).unwrap();
        let token = h.key_token(&[]).token();
        let (_, entry) = only_entry(&h);
        assert_eq!(entry["token"], token.as_str(), "replaced after {junk:?}");
    }
    assert_eq!(h.google.count(Endpoint::Token), 6);
}

#[test]
fn files_are_private_even_under_umask_0() {
    let h = Harness::new();
    let key = h.key_file();
    let mut command = h.command(&[]);
    command.env_remove("IAP_TOKEN_CACHE_DIR");
    let cache = h.path("deep/er/cache");
    let script = format!(
        "umask 0; exec '{BIN}' token --audience {AUD} --service-account-key '{}' --cache-dir '{}'",
        key.display(),
        cache.display()
    );
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(mode(&cache), 0o700);
    for item in std::fs::read_dir(&cache).unwrap() {
        let path = item.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn a_short_lived_metadata_token_is_served_with_an_expiry_in_the_future() {
    let h = Harness::new();
    h.google.set_id_token_lifetime(240);
    let metadata = h.google.metadata_host();
    let env = [("GCE_METADATA_HOST", metadata.as_str())];
    let run = h.run_with(&["token", "--audience", AUD, "--format", "json"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["source"], "metadata");
    assert_eq!(value["principal"], VM_EMAIL);
    let expires = parse_rfc3339(value["expires_at"].as_str().unwrap());
    let exp = jwt_claims(value["token"].as_str().unwrap())["exp"].as_i64().unwrap();
    assert_eq!(expires, exp - 120, "margin = half the 240 s lifetime");
    assert!(expires > now() + 60);
    h.run_with(&["token", "--audience", AUD], &env).token();
    assert_eq!(h.google.count(Endpoint::MetadataIdentity), 1, "served from the cache");
}

#[test]
fn metadata_source_sends_the_header_audience_and_format_full() {
    let h = Harness::new();
    let metadata = h.google.metadata_host();
    let token = h.run_with(&["token", "--audience", AUD], &[("GCE_METADATA_HOST", metadata.as_str())]).token();
    assert_eq!(jwt_claims(&token)["aud"], AUD);
    let request = &h.google.requests()[0];
    assert_eq!(request.endpoint, Endpoint::MetadataIdentity);
    assert_eq!(request.header("metadata-flavor"), Some("Google"));
    assert_eq!(request.query_value("audience"), Some(AUD));
    assert_eq!(request.query_value("format"), Some("full"));
    // --source metadata forces it even when a key is configured.
    let key = h.key_file();
    let forced = h.run_with(
        &["token", "--audience", "other-aud", "--source", "metadata", "--service-account-key", key.to_str().unwrap()],
        &[("GCE_METADATA_HOST", metadata.as_str())],
    );
    assert_eq!(jwt_claims(&forced.token())["email"], VM_EMAIL);
}

#[test]
fn no_metadata_server_fails_fast_and_lists_what_to_configure() {
    let h = Harness::new();
    let started = Instant::now();
    let line = h.run(&["token", "--audience", AUD]).failure(1);
    // A refused connection is not retried and no timeout is waited for: far below the 30 s timeout.
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(line.contains("no credentials found"), "{line}");
    assert!(line.contains("no metadata server"), "{line}");
    assert!(
        line.contains("--client-id")
            && line.contains("--service-account-key")
            && line.contains("--impersonate-service-account"),
        "{line}"
    );
}

#[test]
fn sixteen_processes_on_a_stale_entry_make_one_request() {
    let h = Harness::new();
    h.key_token(&[]).token();
    age_entry(&h, 3590, 10);
    h.google.reset_counts();
    h.google.fail_next(1, Fault::Slow(Duration::from_millis(500)));
    let key = h.key_file();
    let children: Vec<_> = (0..16)
        .map(|_| {
            h.command(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<String> =
        children.into_iter().map(|c| Run::from_output(c.wait_with_output().unwrap()).token()).collect();
    assert_eq!(h.google.count(Endpoint::Token), 1, "single flight");
    assert!(tokens.iter().all(|t| t == &tokens[0]), "all print the one new token");
    assert_eq!(jwt_claims(&tokens[0])["aud"], AUD);
}

#[test]
fn a_killed_lock_holder_never_blocks_the_next_process() {
    let h = Harness::new();
    h.google.fail_next(1, Fault::Slow(Duration::from_secs(30)));
    let key = h.key_file();
    let mut holder = h
        .command(&["token", "--audience", AUD, "--service-account-key", key.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the lock and its request is in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.google.count(Endpoint::Token) == 0 {
        assert!(Instant::now() < deadline, "the holder never sent its request");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Not blocked by the dead holder: it never waits (a wait over 1 s would say so on stderr).
    let next = h.key_token(&[]);
    next.token();
    assert_eq!(next.stderr, "");
}

#[test]
fn the_metadata_server_is_reached_over_plain_http_by_any_host_name_but_credentials_are_not() {
    let h = Harness::new();
    // An IPv4-mapped IPv6 address reaches the fake on 127.0.0.1 but is not a loopback name: plain http
    // is allowed to the metadata server (it is link-local everywhere), and refused for a token URI.
    let port = h.google.metadata_host().rsplit_once(':').unwrap().1.to_string();
    let host = format!("[::ffff:127.0.0.1]:{port}");
    let token =
        h.run_with(&["token", "--audience", AUD, "--source", "metadata"], &[("GCE_METADATA_HOST", &host)]).token();
    assert_eq!(jwt_claims(&token)["email"], VM_EMAIL);
    let line = h.run(&["token", "--audience", AUD, "--token-uri", &format!("http://{host}/token")]).failure(2);
    assert!(line.contains("refusing to send credentials over plain http"), "{line}");
}

#[test]
fn a_forced_metadata_source_that_does_not_answer_says_so() {
    let h = Harness::new();
    let line = h.run(&["token", "--audience", AUD, "--source", "metadata"]).failure(1);
    assert!(
        line.starts_with(
            "iap-token: error: could not get an ID token from the metadata source: no answer from http://127.0.0.1:9/"
        ),
        "{line}"
    );
}

#[test]
fn entries_others_could_have_written_are_never_served() {
    let h = Harness::new();
    h.key_token(&[]).token();
    let (path, _) = only_entry(&h);
    // An entry others can write to may have been planted: it is ignored and replaced.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = h.key_token(&[]);
    let second = run.token();
    assert_eq!(h.google.count(Endpoint::Token), 2, "a new token was fetched");
    assert!(run.stderr.contains("others can write to it"), "{}", run.stderr);
    assert_eq!(only_entry(&h).1["token"], second.as_str());
    // A shared cache directory is refused outright.
    let shared = h.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let line = h.key_token(&["--cache-dir", shared.to_str().unwrap()]).failure(1);
    assert!(line.contains("refusing to keep tokens in"), "{line}");
    assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777, 0o1777, "never chmod-ed");
}

#[test]
fn an_unwritable_cache_dir_still_serves_a_token_on_every_call() {
    let h = Harness::new();
    // The cache directory's path is taken by a file (as on a read-only root: nothing can be created).
    std::fs::create_dir_all(h.cache_dir().parent().unwrap()).unwrap();
    std::fs::write(h.cache_dir(), "not a directory").unwrap();
    for _ in 0..2 {
        h.google.reset_counts();
        let run = h.key_token(&[]);
        verify_google_jwt(&run.token()).expect("a token signed by the fake Google");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", run.stderr);
        assert_eq!(
            lines[0],
            format!(
                "iap-token: warning: the cache cannot be used (could not create {}: File exists (os error 17)); fetching a token on every call",
                h.cache_dir().display()
            )
        );
        assert_eq!(h.google.count(Endpoint::Token), 1);
    }
    assert_eq!(std::fs::read_to_string(h.cache_dir()).unwrap(), "not a directory", "nothing lost");
}

fn lock_files(h: &Harness) -> Vec<std::path::PathBuf> {
    let mut locks: Vec<_> = std::fs::read_dir(h.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    locks.sort();
    locks
}

#[test]
fn lock_files_stay_one_per_key_and_logout_removes_the_idle_ones() {
    let h = Harness::new();
    let key = h.key_file();
    for audience in ["aud-1", "aud-2"] {
        for _ in 0..3 {
            let args =
                ["token", "--audience", audience, "--service-account-key", key.to_str().unwrap(), "--force-refresh"];
            h.run(&args).token();
        }
    }
    // One lock per key that was ever refreshed, however many refreshes.
    assert_eq!(lock_files(&h).len(), h.cache_entries().len(), "{:?}", lock_files(&h));
    // A lock held by a running process (here flock(1), as a refresh in progress) is left alone.
    let held = lock_files(&h)[0].clone();
    // -o: flock itself holds the lock (not sleep), so killing flock releases it.
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(&held)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock (util-linux)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::OpenOptions::new().write(true).open(&held).unwrap().try_lock().is_ok() {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = h.run(&["logout", "--all"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(lock_files(&h), vec![held.clone()]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    h.run(&["logout", "--all"]);
    assert_eq!(lock_files(&h), Vec::<std::path::PathBuf>::new());
    // And the tool keeps working: a new lock is made on the next refresh.
    h.key_token(&[]).token();
    assert_eq!(lock_files(&h).len(), 1);
}

#[test]
fn logout_while_16_processes_refresh_never_breaks_the_single_flight() {
    let h = Harness::new();
    h.key_token(&[]).token();
    h.age_entries();
    h.google.reset_counts();
    let refreshers: Vec<_> = (0..16)
        .map(|_| h.command(&["token", "--audience", AUD, "--service-account-key", h.key_file().to_str().unwrap()]))
        .map(|mut c| c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for _ in 0..5 {
        let mut logout =
            h.command(&["logout", "--audience", AUD, "--service-account-key", h.key_file().to_str().unwrap()]);
        let _ = logout.output();
    }
    for child in refreshers {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Each logout may force one more refresh, never a stampede: at most one refresh per logout plus one.
    assert!(h.google.count(Endpoint::Token) <= 6, "{} token requests", h.google.count(Endpoint::Token));
}
