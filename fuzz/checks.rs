//! The properties the fuzz targets check, shared by the targets (`fuzz/fuzz_targets/*.rs`, run with
//! `cargo fuzz`) and by the corpus replay test (`tests/it/fuzz_corpus.rs`, run by `cargo test` on stable).
//! Each `check_*` function takes one raw input, feeds it to one parser of outside input, and panics when
//! a property is violated. Beyond "no panic", every check asserts what matters for that parser: tokens
//! that must not be served are refused, errors render as one line without control characters, secrets
//! never reach `Debug` output, readers of files treat anything unreadable as absent, and so on.
//!
//! This file is included with `#[path]` by both users, so it may use only `iap_token`, `serde`, `serde_json`,
//! `base64` and `std`.
#![allow(dead_code)]

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iap_token::cache::file::Cache;
use iap_token::cache::{CacheKey, ENTRY_VERSION, Entry};
use iap_token::config::ExecApiVersion;
use iap_token::config::{ExecInfo, parse_exec_info};
use iap_token::error::{Error, clean};
use iap_token::google::adc::{self, CredentialFile};
use iap_token::google::loopback::{Callback, parse_callback, request_target};
use iap_token::jwt::{self, Audiences, Claims};
use iap_token::output::git::Request;
use iap_token::secret::Secret;
use iap_token::store::{StoredLogin, TokenStore};
use serde_json::Value;

/// A property check: panics when `data` violates a property.
pub type Check = fn(&[u8]);

/// Every target, by the name of its fuzz target and of its corpus directory `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("jwt", check_jwt),
    ("cache_entry", check_cache_entry),
    ("exec_info", check_exec_info),
    ("git_input", check_git_input),
    ("callback", check_callback),
    ("adc_file", check_adc_file),
    ("stored_login", check_stored_login),
];

/// The largest "now" a real clock gives (year 2242); `check_id_token` is only ever called with `unix_now()`.
const MAX_NOW: i64 = 1 << 33;

/// How many bytes of attributes `Request::read` promises to read at most, and the slack allowed for the
/// one line that crosses that limit.
const GIT_LIMIT: usize = 64 * 1024;
const GIT_LINE_SLACK: usize = 4 * 1024;
/// The length of the input when a git input is repeated to test the limit.
const GIT_REPEATED_LEN: usize = 128 * 1024;

/// Whether `IAP_TOKEN_FUZZ_SKIP` (a comma-separated list) names `property`: lets a target keep fuzzing
/// the other properties while a finding on this one is open (libFuzzer stops at the first failure).
#[allow(clippy::disallowed_methods, reason = "a switch of the fuzzing harness, not of the product")]
fn skipped(property: &str) -> bool {
    std::env::var("IAP_TOKEN_FUZZ_SKIP").is_ok_and(|names| names.split(',').any(|name| name.trim() == property))
}

/// An error line as printed on stderr: one line, no control characters (no terminal escapes).
fn assert_clean_line(line: &str, what: &str) {
    assert!(!line.chars().any(|c| c.is_control()), "{what}: the error line contains a control character: {line:?}");
}

/// A private scratch directory of this process (removed by [`remove_scratch`]).
fn scratch(target: &str) -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| std::env::temp_dir().join(format!("iap-token-fuzz-{}", std::process::id())));
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("the scratch directory can be created");
    dir
}

/// Removes this process's scratch directory (the replay test calls it at the end).
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("iap-token-fuzz-{}", std::process::id())));
}

// ---------------------------------------------------------------------------------------------------
// jwt: decode_claims + check_id_token

/// The input as a whole ID token, and as the claims JSON of an otherwise well-formed token.
pub fn check_jwt(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_token(text);
    }
    let token = format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(data));
    let decoded = jwt::decode_claims(&token);
    let direct = serde_json::from_slice::<Claims>(data);
    match (&decoded, &direct) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decode_claims changed the claims"),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "decode_claims ({:?}) and serde_json ({:?}) disagree on the payload",
            decoded.is_ok(),
            direct.is_ok()
        ),
    }
    check_token(&token);
}

fn check_token(text: &str) {
    let claims = match jwt::decode_claims(text) {
        Ok(claims) => claims,
        Err(e) => return assert_clean_line(&e.render(), "decode_claims"),
    };
    let mut audiences = vec!["", "aud-1", "32555940559.apps.googleusercontent.com"];
    match &claims.aud {
        Some(Audiences::One(one)) => audiences.push(one),
        Some(Audiences::Many(many)) => audiences.extend(many.iter().take(3).map(String::as_str)),
        None => {}
    }
    let mut nows = vec![0, 1_767_366_245, MAX_NOW];
    for at in [claims.exp, claims.iat].into_iter().flatten() {
        for delta in [-301, -300, -1, 0, 1, 299, 300, 301] {
            if let Some(now) = at.checked_add(delta).filter(|now| (0..=MAX_NOW).contains(now)) {
                nows.push(now);
            }
        }
    }
    for audience in &audiences {
        for &now in &nows {
            check_claims(&claims, audience, now);
        }
    }
}

/// `check_id_token` accepts exactly the tokens for `audience` that are valid now: a future `exp`, or,
/// when `iat` is beyond the clock skew (our clock is behind), a positive lifetime counted from `now`.
/// Its refusals render cleanly.
fn check_claims(claims: &Claims, audience: &str, now: i64) {
    match jwt::check_id_token(claims, audience, now) {
        Ok(checked) => {
            let for_audience = match &claims.aud {
                Some(Audiences::One(one)) => one == audience,
                Some(Audiences::Many(many)) => many.iter().any(|a| a == audience),
                None => false,
            };
            assert!(for_audience, "accepted a token for {:?} as one for {audience:?}", claims.aud);
            let exp = claims.exp.expect("accepted a token without exp");
            let exp_at = checked.expires_at;
            assert!(exp_at > now, "accepted a token that expired at {exp_at} at now={now}");
            match (claims.iat, checked.clock_behind_secs) {
                (Some(iat), Some(behind)) => {
                    assert!(iat > now + 300, "called the clock behind for a token issued at {iat}, now={now}");
                    assert_eq!(behind, iat - now);
                    assert_eq!(exp_at, now + (exp - iat), "the lifetime is not counted from now");
                }
                (_, None) => assert_eq!(exp_at, exp, "returned an expiry that is not the token's exp"),
                (None, Some(_)) => panic!("called the clock behind without an iat"),
            }
        }
        Err(e) => assert_clean_line(&e.render(), "check_id_token"),
    }
}

pub fn check_cache_entry(data: &[u8]) {
    let parsed = serde_json::from_slice::<Entry>(data);
    let read = read_through_cache(data);
    match (&parsed, &read) {
        (Ok(entry), Some(read)) => {
            assert_eq!(entry.version, ENTRY_VERSION, "the reader returned an entry of another version");
            assert_eq!(to_value(entry), to_value(read), "the reader returned another entry than the parser");
        }
        (Ok(entry), None) => assert_ne!(entry.version, ENTRY_VERSION, "the reader dropped a current entry"),
        (Err(_), Some(_)) => panic!("the reader returned an entry the parser refuses"),
        (Err(_), None) => {}
    }
    let Ok(entry) = parsed else { return };

    let bytes = serde_json::to_vec_pretty(&entry).expect("Cache::write expects every entry to serialize");
    let again: Entry = serde_json::from_slice(&bytes).expect("a written entry reads back");
    assert_eq!(to_value(&entry), to_value(&again), "the entry does not round-trip");

    let blank = Entry { token: Secret::new(String::new()), ..entry.clone() };
    assert_eq!(format!("{entry:?}"), format!("{blank:?}"), "the token shows in Debug output");

    let mut nows = vec![0, 1_767_366_245, MAX_NOW, entry.expires_at, entry.fetched_at];
    nows.extend(entry.expires_at.checked_sub(1));
    for min_ttl in [0, 1, 60, 300, 3600] {
        let margin = entry.margin(min_ttl);
        assert!((0..=min_ttl).contains(&margin), "margin {margin} outside 0..={min_ttl}");
        let until = entry.serve_until(min_ttl);
        assert!(until <= entry.expires_at, "served until {until}, after the expiry {}", entry.expires_at);
        for &now in &nows {
            if entry.is_fresh(now, min_ttl) {
                assert!(now < entry.expires_at, "an entry expiring at {} is fresh at {now}", entry.expires_at);
                assert_eq!(entry.version, ENTRY_VERSION, "an entry of another version is fresh");
            }
        }
    }
}

/// Writes `data` where the cache keeps the entry of a key, and reads it back with `Cache::read`.
fn read_through_cache(data: &[u8]) -> Option<Entry> {
    let cache = Cache::new(scratch("cache_entry"));
    let key = CacheKey::new(&["fuzz"]);
    let path = cache.entry_path(&key);
    std::fs::write(&path, data).expect("the scratch entry can be written");
    let entry = cache.read(&key);
    let _ = std::fs::remove_file(&path);
    entry
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

// ---------------------------------------------------------------------------------------------------
// exec_info: KUBERNETES_EXEC_INFO

/// `parse_exec_info` accepts only JSON, reports what the JSON says, and its errors render cleanly.
pub fn check_exec_info(data: &[u8]) {
    // The environment variable is read with std::env::var: text that is not UTF-8 never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_exec_info(text) {
        Err(e) => assert_clean_line(&e.render(), "parse_exec_info"),
        Ok(info) => check_exec_info_matches(&info, text),
    }
}

fn check_exec_info_matches(info: &ExecInfo, text: &str) {
    // The parser skips unknown fields without building them, so it accepts some JSON that a `Value` cannot
    // hold (a number beyond f64 in an unknown field, found by this target): nothing to compare then.
    let Ok(value) = serde_json::from_str::<Value>(text) else { return };
    // serde also reads a struct from a JSON array (its fields by position); kubectl never sends one, and
    // then there are no names to compare with.
    let positional = |v: Option<&Value>| v.is_some_and(Value::is_array);
    if value.is_array() {
        return;
    }
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    match info.api_version {
        ExecApiVersion::V1 => assert!(
            api_version.is_none() || api_version == Some("client.authentication.k8s.io/v1"),
            "apiVersion {api_version:?} read as v1"
        ),
        ExecApiVersion::V1beta1 => assert_eq!(api_version, Some("client.authentication.k8s.io/v1beta1")),
    }
    let spec = value.get("spec");
    if positional(spec) {
        return;
    }
    let spec = spec.filter(|spec| !spec.is_null());
    assert_eq!(info.interactive, spec.and_then(|s| s.get("interactive")).and_then(Value::as_bool), "spec.interactive");
    let cluster = spec.and_then(|s| s.get("cluster"));
    if positional(cluster) {
        return;
    }
    let config = cluster.and_then(|c| c.get("config"));
    if positional(config) {
        return;
    }
    let cluster = &info.cluster;
    for (field, got) in [
        ("audience", &cluster.audience),
        ("clientId", &cluster.client_id),
        ("account", &cluster.account),
        ("impersonateServiceAccount", &cluster.impersonate_service_account),
    ] {
        let want = config.and_then(|c| c.get(field)).and_then(Value::as_str);
        assert_eq!(got.as_deref(), want, "spec.cluster.config.{field}");
    }
}

// ---------------------------------------------------------------------------------------------------
// git_input: the credential helper's stdin

/// `Request::read` on the input, and on the input repeated to 128 KiB: it never reads more than 64 KiB
/// of attributes (plus one line of at most 4 KiB that crosses the limit), keeps at most 64 KiB, and
/// only reports what the input said.
pub fn check_git_input(data: &[u8]) {
    let request = check_git_reader(data, data.len());
    if request.supports_authtype() {
        assert!(contains(data, b"capability[]=authtype"), "authtype reported but never sent");
    }
    if data.starts_with(b"capability[]=authtype\n") {
        assert!(request.supports_authtype(), "a leading capability[]=authtype was missed");
    }
    for (key, value) in [("protocol", &request.protocol), ("host", &request.host), ("path", &request.path)] {
        if let Some(value) = value {
            let line = format!("{key}={value}");
            assert!(contains(data, line.as_bytes()), "{key} {value:?} reported but never sent");
        }
    }
    if !data.is_empty() {
        check_git_reader(data, GIT_REPEATED_LEN);
    }
}

fn check_git_reader(data: &[u8], len: usize) -> Request {
    let mut input = CountingInput { data, len, position: 0 };
    let request = Request::read(&mut input);
    let consumed = input.position;
    assert!(
        consumed <= GIT_LIMIT + GIT_LINE_SLACK || skipped("git_consumed"),
        "Request::read consumed {consumed} bytes of a {len}-byte input, more than 64 KiB + one 4 KiB line"
    );
    let kept = request.capabilities.iter().map(String::len).sum::<usize>()
        + [&request.protocol, &request.host, &request.path]
            .iter()
            .filter_map(|v| v.as_ref())
            .map(String::len)
            .sum::<usize>();
    assert!(kept <= GIT_LIMIT, "Request::read kept {kept} bytes of attributes");
    for value in request.capabilities.iter().chain(&request.protocol).chain(&request.host).chain(&request.path) {
        assert!(!value.contains('\n'), "an attribute value spans lines: {value:?}");
    }
    request
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `data` repeated to `len` bytes, as a `BufRead` that counts what its reader consumed.
struct CountingInput<'a> {
    data: &'a [u8],
    len: usize,
    position: usize,
}

impl Read for CountingInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for CountingInput<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.position >= self.len || self.data.is_empty() {
            return Ok(&[]);
        }
        let start = self.position % self.data.len();
        let n = (self.data.len() - start).min(self.len - self.position);
        Ok(&self.data[start..start + n])
    }

    fn consume(&mut self, amount: usize) {
        self.position += amount;
    }
}

// ---------------------------------------------------------------------------------------------------
// callback: the loopback listener's request line and query string

/// `request_target` returns only the path of a `GET` request line, and `parse_callback` returns a code
/// only when it is non-empty; the sign-in error built from an `error=` answer renders cleanly.
pub fn check_callback(data: &[u8]) {
    if let Some(target) = request_target(data) {
        assert!(data.starts_with(b"GET /"), "a target from a request line that is not GET /...");
        assert!(target.starts_with('/'), "target {target:?} is not a path");
        assert!(!target.contains([' ', '\n']), "target {target:?} spans words or lines");
        let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
        assert!(contains(first_line, target.as_bytes()), "target {target:?} is not from the first line");
        let query = target.split_once('?').map(|(_, query)| query).unwrap_or_default();
        check_query(query);
    }
    check_query(&String::from_utf8_lossy(data));
}

fn check_query(query: &str) {
    match parse_callback(query) {
        Callback::Code { code, .. } => assert!(!code.is_empty(), "a Callback::Code with an empty code"),
        Callback::Error { error, description, .. } => {
            // Exactly the error that the loopback listener builds from such an answer.
            let description = description.map(|d| format!(": {}", clean(&d, 200))).unwrap_or_default();
            let what =
                if error == "access_denied" { "the sign-in was denied in the browser" } else { "the sign-in failed" };
            let err = Error::SignIn(format!("{what} ({}{description})", clean(&error, 60)));
            assert_clean_line(&err.render(), "sign-in callback error");
        }
        Callback::Stray => {}
    }
}

// ---------------------------------------------------------------------------------------------------
// adc_file: service-account keys and ADC files

/// `adc::load` of the input as a file: errors render cleanly; an accepted file is of the `type` it says,
/// an impersonation names a plain service-account email and nests one level only, and no secret
/// (private key, client secret, refresh token) shows in `Debug` output.
pub fn check_adc_file(data: &[u8]) {
    let path = scratch("adc_file").join("credentials.json");
    std::fs::write(&path, data).expect("the scratch credential file can be written");
    let loaded = adc::load(&path);
    let _ = std::fs::remove_file(&path);
    let file = match loaded {
        Ok(file) => file,
        Err(e) => return assert_clean_line(&e.render(), "adc::load"),
    };
    let text = std::str::from_utf8(data).expect("adc::load accepted a file that is not UTF-8");
    let parsed = adc::parse(text).expect("adc::parse refuses what adc::load accepted");
    assert_eq!(parsed.kind(), file.kind());
    let value: Value = serde_json::from_str(text).expect("adc::parse accepted text that is not JSON");
    check_credential_file(&file, &value, 0);
    assert_eq!(format!("{file:?}"), format!("{:?}", without_secrets(&file)), "a secret shows in Debug output");
}

fn check_credential_file(file: &CredentialFile, value: &Value, depth: u8) {
    assert_eq!(value.get("type").and_then(Value::as_str), Some(file.kind()), "the kind is not the file's type");
    match file {
        CredentialFile::ServiceAccount(key) => {
            assert_eq!(value.get("client_email").and_then(Value::as_str), Some(key.client_email.as_str()));
        }
        CredentialFile::AuthorizedUser(user) => {
            assert_eq!(value.get("client_id").and_then(Value::as_str), Some(user.client_id.as_str()));
        }
        CredentialFile::Impersonated(imp) => {
            assert_eq!(depth, 0, "an impersonation nested in an impersonation");
            assert!(
                !imp.target.is_empty() && !imp.target.contains(['/', ':']),
                "impersonation target {:?} is not an email",
                imp.target
            );
            let source = value.get("source_credentials").expect("an impersonation without source_credentials");
            check_credential_file(&imp.source, source, depth + 1);
        }
        CredentialFile::ExternalAccount(account) => {
            assert_eq!(value.get("audience").and_then(Value::as_str), Some(account.audience.as_str()));
        }
    }
}

fn without_secrets(file: &CredentialFile) -> CredentialFile {
    let blank = || Secret::new(String::new());
    match file.clone() {
        CredentialFile::ServiceAccount(mut key) => {
            key.private_key = blank();
            CredentialFile::ServiceAccount(key)
        }
        CredentialFile::AuthorizedUser(mut user) => {
            user.client_secret = blank();
            user.refresh_token = blank();
            CredentialFile::AuthorizedUser(user)
        }
        CredentialFile::Impersonated(mut imp) => {
            imp.source = Box::new(without_secrets(&imp.source));
            CredentialFile::Impersonated(imp)
        }
        other @ CredentialFile::ExternalAccount(_) => other,
    }
}

// ---------------------------------------------------------------------------------------------------
// stored_login: the refresh-token store's JSON

/// A stored login: an accepted one serializes again (`TokenStore::save` expects it) and round-trips, its
/// refresh token and client secret never show in `Debug`, and the file store's reader returns it exactly
/// when it is current and of the asked client, and treats everything else as absent (never an error).
pub fn check_stored_login(data: &[u8]) {
    let parsed = serde_json::from_slice::<StoredLogin>(data).ok();
    if let Some(login) = &parsed {
        let bytes = serde_json::to_vec(login).expect("TokenStore::save expects every login to serialize");
        let again: StoredLogin = serde_json::from_slice(&bytes).expect("a saved login reads back");
        assert_eq!(to_value(login), to_value(&again), "the login does not round-trip");
        let blank = StoredLogin {
            refresh_token: Secret::new(String::new()),
            client_secret: login.client_secret.as_ref().map(|_| Secret::new(String::new())),
            ..login.clone()
        };
        assert_eq!(format!("{login:?}"), format!("{blank:?}"), "a secret shows in Debug output");
    }

    // The file store keeps each login in login-<hash of client id and account>.json: put the input where
    // the login of its own client and account lives, and where that of a fixed client lives.
    if let Some(login) = &parsed {
        let loaded = load_from_file_store(data, &login.client_id, login.account.as_deref());
        assert_eq!(loaded.is_some(), login.version == 1, "TokenStore::load and the login's version disagree");
        if let Some(loaded) = loaded {
            assert_eq!(to_value(&loaded), to_value(login), "TokenStore::load returned another login");
        }
    }
    let client_id = "client.apps.googleusercontent.com";
    let loaded = load_from_file_store(data, client_id, None);
    let expected = parsed.as_ref().is_some_and(|login| login.version == 1 && login.client_id == client_id);
    assert_eq!(loaded.is_some(), expected, "TokenStore::load returned a login of another client or version");
}

/// Writes `data` where the file store keeps the login of `client_id` and `account`, and loads it; also
/// checks that listing the store finds exactly the logins the parser accepts in the current version.
fn load_from_file_store(data: &[u8], client_id: &str, account: Option<&str>) -> Option<StoredLogin> {
    let dir = scratch("stored_login");
    let key = CacheKey::new(&["login", client_id, account.unwrap_or_default()]);
    let path = dir.join(format!("login-{}.json", key.as_str()));
    std::fs::write(&path, data).expect("the scratch login can be written");
    let store = TokenStore::File { dir, fell_back: None };
    let loaded = store.load(client_id, account);
    let all = store.all();
    let _ = std::fs::remove_file(&path);
    let all = all.expect("listing the file store does not fail");
    let current = serde_json::from_slice::<StoredLogin>(data).is_ok_and(|login| login.version == 1);
    assert_eq!(all.len(), usize::from(current), "TokenStore::all lists exactly the readable logins of this version");
    loaded.expect("an unreadable stored login must count as absent, not fail")
}
