//! A fake of the Google endpoints `iap-token` talks to, for integration tests.
//!
//! [`FakeGoogle::start`] serves on one ephemeral loopback port, with Google's wire formats: the
//! OAuth token, authorize and revoke endpoints, the GCE metadata server, IAM Credentials
//! `generateIdToken` and Secret Manager `access`. ID tokens are RS256 JWTs signed with
//! `tests/data/google-key.pem` (public half in `google-pub.der`); service-account assertions are
//! checked against `tests/data/sa-pub.der`. Every request is recorded, and faults ([`Fault`]) can
//! be injected for all requests or for the next few. Clients connect through a small TCP relay in
//! front of `tiny_http`: dropping a `tiny_http` request leaves its keep-alive connection open (the
//! client would hang), so [`Fault::Drop`] shuts the client's socket down through the relay.
#![allow(dead_code)] // each test module uses a different part of this API

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

macro_rules! test_data {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $name)
    };
}

/// `client_email` of the fake service account whose key is `tests/data/sa-key.pem`.
pub const SA_EMAIL: &str = "robot@test-project.iam.gserviceaccount.com";
/// `private_key_id` of that key: the `kid` its assertions must carry.
pub const SA_KEY_ID: &str = "key-1";
/// The service account of the fake GCE VM, as served by the metadata endpoints.
pub const VM_EMAIL: &str = "vm@test-project.iam.gserviceaccount.com";
/// The user the authorize endpoint signs in when the request has no `login_hint`.
pub const DEFAULT_USER_EMAIL: &str = "user@example.com";
/// The `aud` of ID tokens issued under [`Fault::WrongAud`].
pub const WRONG_AUDIENCE: &str = "https://wrong-audience.example.com";
/// The `kid` of the ID tokens the fake signs.
pub const GOOGLE_KEY_ID: &str = "fake-google-1";
/// The public key of the ID tokens (PKCS#1 RSAPublicKey DER), to check their signature.
pub const GOOGLE_PUB_DER: &[u8] = include_bytes!(test_data!("google-pub.der"));

const SA_KEY_PEM: &str = include_str!(test_data!("sa-key.pem"));
const SA_PUB_DER: &[u8] = include_bytes!(test_data!("sa-pub.der"));
const GOOGLE_KEY_PEM: &str = include_str!(test_data!("google-key.pem"));
const SA_CERT_URL: &str = "https://www.googleapis.com/robot/v1/metadata/x509/\
                           robot%40test-project.iam.gserviceaccount.com";
const ISSUER: &str = "https://accounts.google.com";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const USER_SCOPE: &str = "openid https://www.googleapis.com/auth/userinfo.email";
const METADATA_ACCOUNTS: &str = "/computeMetadata/v1/instance/service-accounts/";
const IAM_PREFIX: &str = "/v1/projects/-/serviceAccounts/";
const WORKERS: usize = 8;
const MAX_BODY: u64 = 1 << 20;
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Which fake endpoint a request was routed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Token,
    Authorize,
    Revoke,
    MetadataIdentity,
    MetadataToken,
    MetadataEmail,
    GenerateIdToken,
    GenerateAccessToken,
    SignJwt,
    SecretAccess,
    Sts,
    Other,
}

/// A failure to inject. Answers to faulted requests under `/computeMetadata/` still carry
/// `Metadata-Flavor: Google`, except [`Fault::Html`] (which plays something else answering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// This status with `{"error":"internal_error","error_description":"fake failure"}`.
    Status(u16),
    /// As `Status`, plus a `Retry-After` header (seconds).
    StatusRetryAfter(u16, u64),
    /// 200 with the `text/html` body `<html>sign in</html>` (a captive portal or login page).
    Html,
    /// Sleep this long in the worker, then answer normally.
    Slow(Duration),
    /// Close the connection without answering.
    Drop,
    /// 200 whose body is the first half of the normal answer.
    TruncatedJson,
    /// ID tokens get `aud` = [`WRONG_AUDIENCE`].
    WrongAud,
    /// ID tokens have no `exp`.
    NoExp,
    /// ID tokens expired an hour ago.
    Expired,
    /// ID tokens have `iat` = now + 3600, `exp` = now + 7200.
    IatFuture,
    /// 401 `invalid_client`.
    InvalidClient,
}

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path as sent, without the query, not percent-decoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    /// The decoded body when it is `application/x-www-form-urlencoded`, else empty.
    pub form: Vec<(String, String)>,
    pub body: String,
    pub endpoint: Endpoint,
}

impl Recorded {
    /// The first form field called `name`.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        find(&self.form, name)
    }

    /// The first query parameter called `name`.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        find(&self.query, name)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, &name.to_ascii_lowercase())
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let (_, value) = pairs.iter().find(|(k, _)| k == name)?;
    Some(value)
}

struct RefreshToken {
    client_id: String,
    email: String,
    revoked: bool,
}

struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    email: String,
}

#[derive(Default)]
struct State {
    log: Vec<Recorded>,
    fault: Option<Fault>,
    next_faults: VecDeque<Fault>,
    id_token_lifetime: i64,
    approve: bool,
    clients: HashMap<String, String>,
    refresh_tokens: HashMap<String, RefreshToken>,
    codes: HashMap<String, AuthCode>,
    access_tokens: HashMap<String, String>,
    secrets: HashMap<String, (Vec<u8>, Option<i64>)>,
    impersonation: HashSet<(String, String)>,
    /// (workload identity provider audience, expected subject-token audience).
    sts: Option<(String, String)>,
}

/// Everything the workers and the relay share.
struct Shared {
    url: String,
    state: Mutex<State>,
    google_key: RsaKeyPair,
    rng: SystemRandom,
    /// Client connections, keyed by the address `tiny_http` sees the relayed connection from.
    links: Mutex<HashMap<SocketAddr, TcpStream>>,
    stopping: AtomicBool,
}

/// The fake server; it stops when dropped.
pub struct FakeGoogle {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
}

impl FakeGoogle {
    /// Binds `127.0.0.1:0` and serves from 8 worker threads.
    pub fn start() -> FakeGoogle {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the fake Google backend");
        let server = Arc::new(server);
        let backend = server.server_addr().to_ip().expect("a TCP backend address");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Google port");
        let addr = listener.local_addr().expect("the fake Google address");
        let google_key = RsaKeyPair::from_pkcs8(&pem_to_der(GOOGLE_KEY_PEM)).expect("tests/data/google-key.pem");
        let shared = Arc::new(Shared {
            url: format!("http://{addr}"),
            state: Mutex::new(State { id_token_lifetime: 3600, approve: true, ..State::default() }),
            google_key,
            rng: SystemRandom::new(),
            links: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        });
        let relay = Arc::clone(&shared);
        thread::spawn(move || relay.relay(listener, backend));
        for _ in 0..WORKERS {
            let (shared, server) = (Arc::clone(&shared), Arc::clone(&server));
            thread::spawn(move || shared.serve(&server));
        }
        FakeGoogle { shared, server, addr }
    }

    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    pub fn token_uri(&self) -> String {
        self.shared.token_uri()
    }

    pub fn auth_uri(&self) -> String {
        format!("{}/o/oauth2/v2/auth", self.shared.url)
    }

    pub fn revoke_uri(&self) -> String {
        format!("{}/revoke", self.shared.url)
    }

    /// `127.0.0.1:PORT`, for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received since the start or the last [`FakeGoogle::reset_counts`].
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().log.clone()
    }

    pub fn count(&self, endpoint: Endpoint) -> usize {
        let state = self.shared.lock();
        state.log.iter().filter(|r| r.endpoint == endpoint).count()
    }

    /// Clears the request log.
    pub fn reset_counts(&self) {
        self.shared.lock().log.clear();
    }

    /// Applies `fault` to every request until cleared with `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.lock().fault = fault;
    }

    /// The next `n` requests (whatever their endpoint) get `fault`; this wins over `set_fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let faults = std::iter::repeat_n(fault, n);
        self.shared.lock().next_faults.extend(faults);
    }

    /// ID tokens are issued with `exp = iat + secs` (default 3600).
    pub fn set_id_token_lifetime(&self, secs: i64) {
        self.shared.lock().id_token_lifetime = secs;
    }

    /// Whether the user approves the consent screen (default true).
    pub fn set_authorize_decision(&self, approve: bool) {
        self.shared.lock().approve = approve;
    }

    /// Signs `claims` as Google would: RS256, `kid` [`GOOGLE_KEY_ID`].
    pub fn sign_jwt(&self, claims: &Value) -> String {
        self.shared.sign_jwt(claims)
    }

    /// Registers a desktop OAuth client.
    pub fn add_user_client(&self, client_id: &str, client_secret: &str) {
        let mut state = self.shared.lock();
        state.clients.insert(client_id.into(), client_secret.into());
    }

    /// A valid refresh token of `email` for `client_id`.
    pub fn issue_refresh_token(&self, client_id: &str, email: &str) -> String {
        self.shared.new_refresh_token(client_id, email)
    }

    /// Every refresh grant answers `invalid_grant` from now on.
    pub fn revoke_all_refresh_tokens(&self) {
        for token in self.shared.lock().refresh_tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// `name` is `projects/P/secrets/S/versions/V`; `crc32c` is served as given (or omitted).
    pub fn set_secret(&self, name: &str, payload: &[u8], crc32c: Option<i64>) {
        let mut state = self.shared.lock();
        state.secrets.insert(name.into(), (payload.to_vec(), crc32c));
    }

    pub fn valid_access_tokens(&self) -> Vec<String> {
        self.shared.lock().access_tokens.keys().cloned().collect()
    }

    /// A bearer accepted by IAM Credentials and Secret Manager, acting as `email`.
    pub fn issue_access_token(&self, email: &str) -> String {
        self.shared.new_access_token(email)
    }

    /// Enables the STS endpoint (`url() + "/v1/token"`): `pool_audience` is the workload identity
    /// provider's audience, `subject_audience` the `aud` the CI's OIDC token must carry.
    pub fn configure_sts(&self, pool_audience: &str, subject_audience: &str) {
        self.shared.lock().sts = Some((pool_audience.into(), subject_audience.into()));
    }

    pub fn sts_uri(&self) -> String {
        format!("{}/v1/token", self.url())
    }

    /// Lets `caller_email` mint ID tokens of `target_sa`.
    pub fn allow_impersonation(&self, caller_email: &str, target_sa: &str) {
        let pair = (caller_email.to_owned(), target_sa.to_owned());
        self.shared.lock().impersonation.insert(pair);
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the relay's accept loop so that it sees `stopping` and closes the port.
        let _ = TcpStream::connect(self.addr);
        for (_, client) in lock(&self.shared.links).drain() {
            let _ = client.shutdown(Shutdown::Both);
        }
        for _ in 0..WORKERS {
            self.server.unblock();
        }
    }
}

/// A service-account key file as the Cloud console downloads it, for the key in `tests/data`.
pub fn sa_key_json(token_uri: &str) -> String {
    let key = json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": SA_KEY_ID,
        "private_key": SA_KEY_PEM,
        "client_email": SA_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": SA_CERT_URL,
        "universe_domain": "googleapis.com",
    });
    serde_json::to_string_pretty(&key).expect("serialize a JSON value")
}

/// The claims of `jwt`, not verified. Panics when `jwt` is not a JWT.
/// The principal a federated access token acts as, for [`FakeGoogle::allow_impersonation`].
pub fn federated_principal(subject: &str) -> String {
    format!("principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/subject/{subject}")
}

/// A CI's OIDC token for the STS exchange, signed with the key the fake STS trusts.
pub fn ci_oidc_token(subject: &str, audience: &str, lifetime: i64) -> String {
    sa_assertion(
        &json!({"iss": "https://token.actions.githubusercontent.com", "sub": subject, "aud": audience, "iat": now(), "exp": now() + lifetime}),
    )
}

fn time_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

pub fn jwt_claims(jwt: &str) -> Value {
    let claims = jwt.split('.').nth(1).and_then(decode_part);
    claims.unwrap_or_else(|| panic!("not a JWT: {jwt:?}"))
}

/// A jwt-bearer assertion over `claims`, signed with the fake service account's key.
pub fn sa_assertion(claims: &Value) -> String {
    let key = RsaKeyPair::from_pkcs8(&pem_to_der(SA_KEY_PEM)).expect("tests/data/sa-key.pem");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": SA_KEY_ID});
    sign_jwt_with(&key, &SystemRandom::new(), &header, claims)
}

/// The emails of a request's `delegates` (`projects/-/serviceAccounts/EMAIL` each); `None` if malformed.
fn delegate_emails(body: &Value) -> Option<Vec<String>> {
    let Some(list) = body.get("delegates") else { return Some(Vec::new()) };
    list.as_array()?
        .iter()
        .map(|d| {
            d.as_str()?.strip_prefix("projects/-/serviceAccounts/").filter(|e| e.contains('@')).map(str::to_string)
        })
        .collect()
}

/// The `kid` of the JWTs the fake's `signJwt` signs (a Google-managed key of the service account).
pub const MANAGED_KEY_ID: &str = "managed-key-1";

/// The header and claims of `jwt` if the fake service account's key signed it (a key file, or `signJwt`).
pub fn verify_sa_jwt(jwt: &str) -> Option<(Value, Value)> {
    verify_jwt(jwt, SA_PUB_DER)
}

/// The header and claims of `jwt` if the fake signed it (see [`GOOGLE_PUB_DER`]).
pub fn verify_google_jwt(jwt: &str) -> Option<(Value, Value)> {
    verify_jwt(jwt, GOOGLE_PUB_DER)
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The header and claims of `jwt` if its RS256 signature verifies with `public_key_der`.
fn verify_jwt(jwt: &str, public_key_der: &[u8]) -> Option<(Value, Value)> {
    let (signing_input, sig) = jwt.rsplit_once('.')?;
    let (header, claims) = signing_input.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(signing_input.as_bytes(), &sig)
        .ok()?;
    Some((decode_part(header)?, decode_part(claims)?))
}

fn sign_jwt_with(key: &RsaKeyPair, rng: &SystemRandom, header: &Value, claims: &Value) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let mut sig = vec![0; key.public().modulus_len()];
    let message = signing_input.as_bytes();
    let signed = key.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig);
    signed.expect("RSA signing");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64.trim()).expect("a PEM test key")
}

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    i64::try_from(since_epoch.unwrap_or_default().as_secs()).unwrap_or(i64::MAX)
}

/// A stable 21-digit numeric id for `email`, as Google's `sub` claims look.
fn numeric_id(email: &str) -> String {
    let first: [u8; 8] = sha256(email)[..8].try_into().unwrap_or_default();
    format!("1{:020}", u64::from_be_bytes(first))
}

fn sha256(s: &str) -> Vec<u8> {
    digest(&SHA256, s.as_bytes()).as_ref().to_vec()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// `projects/P/secrets/S/versions/V` from a Secret Manager `access` path.
fn secret_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/v1/")?.strip_suffix(":access")?;
    let parts: Vec<&str> = name.split('/').collect();
    let shape = parts.len() == 6 && parts.iter().all(|p| !p.is_empty());
    (shape && parts[0] == "projects" && parts[2] == "secrets" && parts[4] == "versions").then_some(name)
}

fn classify(path: &str) -> Endpoint {
    match path {
        "/token" => return Endpoint::Token,
        "/o/oauth2/v2/auth" => return Endpoint::Authorize,
        "/revoke" => return Endpoint::Revoke,
        "/v1/token" => return Endpoint::Sts,
        _ => {}
    }
    if let Some((account, leaf)) = path.strip_prefix(METADATA_ACCOUNTS).and_then(|r| r.split_once('/'))
        && (account == "default" || account == VM_EMAIL)
    {
        return match leaf {
            "identity" => Endpoint::MetadataIdentity,
            "token" => Endpoint::MetadataToken,
            "email" => Endpoint::MetadataEmail,
            _ => Endpoint::Other,
        };
    }
    if path.starts_with(IAM_PREFIX) && path.ends_with(":generateIdToken") {
        Endpoint::GenerateIdToken
    } else if path.starts_with(IAM_PREFIX) && path.ends_with(":generateAccessToken") {
        Endpoint::GenerateAccessToken
    } else if path.starts_with(IAM_PREFIX) && path.ends_with(":signJwt") {
        Endpoint::SignJwt
    } else if secret_name(path).is_some() {
        Endpoint::SecretAccess
    } else {
        Endpoint::Other
    }
}

fn lowercase_name(header: &tiny_http::Header) -> (String, String) {
    (header.field.to_string().to_ascii_lowercase(), header.value.to_string())
}

fn record(request: &mut tiny_http::Request) -> Recorded {
    let mut raw = Vec::new();
    // A body that fails to read is recorded as far as it came; the handlers then reject it.
    let _ = request.as_reader().take(MAX_BODY).read_to_end(&mut raw);
    let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
    let headers: Vec<_> = request.headers().iter().map(lowercase_name).collect();
    let content_type = find(&headers, "content-type").unwrap_or_default();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    Recorded {
        method: request.method().to_string(),
        path: path.to_owned(),
        query: parse_pairs(query.as_bytes()),
        form: parse_pairs(if is_form { &raw } else { b"" }),
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
        endpoint: classify(path),
    }
}

/// An answer, before it becomes a `tiny_http::Response`.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, content_type: &str, body: impl Into<String>) -> Reply {
        let headers = vec![("Content-Type", content_type.into())];
        Reply { status, headers, body: body.into().into() }
    }

    fn json(status: u16, value: &Value) -> Reply {
        Reply::text(status, "application/json; charset=utf-8", value.to_string())
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn send(self, request: tiny_http::Request) {
        let mut response = tiny_http::Response::from_data(self.body).with_status_code(self.status);
        for (name, value) in self.headers {
            if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
                response.add_header(header);
            }
        }
        // The client may be gone; nothing to do about it.
        let _ = request.respond(response);
    }
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    let body = json!({"error": error, "error_description": description});
    Reply::json(status, &body)
}

fn invalid_grant(description: &str) -> Reply {
    oauth_error(400, "invalid_grant", description)
}

fn invalid_client() -> Reply {
    oauth_error(401, "invalid_client", "The OAuth client was not found.")
}

fn missing(parameter: &str) -> Reply {
    let description = format!("Missing required parameter: {parameter}");
    oauth_error(400, "invalid_request", &description)
}

/// A Google Cloud API error (IAM Credentials, Secret Manager).
fn api_error(code: u16, message: &str, status: &str) -> Reply {
    let body = json!({"error": {"code": code, "message": message, "status": status}});
    Reply::json(code, &body)
}

fn unauthenticated() -> Reply {
    let message = "Request had invalid authentication credentials.";
    api_error(401, message, "UNAUTHENTICATED")
}

fn client_ok(state: &State, rq: &Recorded) -> bool {
    match (rq.form_value("client_id"), rq.form_value("client_secret")) {
        (Some(id), Some(secret)) => state.clients.get(id).is_some_and(|s| s == secret),
        _ => false,
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn token_uri(&self) -> String {
        format!("{}/token", self.url)
    }

    /// Accepts clients and relays each connection to the `tiny_http` backend.
    fn relay(self: Arc<Self>, listener: TcpListener, backend: SocketAddr) {
        for client in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = client.and_then(|client| self.link(client, backend)) {
                eprintln!("fake_google: relay: {e}");
            }
        }
    }

    fn link(self: &Arc<Self>, client: TcpStream, backend: SocketAddr) -> io::Result<()> {
        let upstream = TcpStream::connect(backend)?;
        let key = upstream.local_addr()?;
        client.set_nodelay(true)?;
        upstream.set_nodelay(true)?;
        lock(&self.links).insert(key, client.try_clone()?);
        let (client_in, upstream_out) = (client.try_clone()?, upstream.try_clone()?);
        thread::spawn(move || pipe(client_in, upstream_out));
        let shared = Arc::clone(self);
        thread::spawn(move || {
            pipe(upstream, client);
            lock(&shared.links).remove(&key);
        });
        Ok(())
    }

    /// Closes the client connection behind `request` without answering it.
    fn sever(&self, request: tiny_http::Request) {
        let key = request.remote_addr().copied();
        // `into_writer` keeps `tiny_http` from answering 500 when the request is dropped.
        drop(request.into_writer());
        if let Some(client) = key.and_then(|key| lock(&self.links).remove(&key)) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }

    fn serve(&self, server: &tiny_http::Server) {
        loop {
            match server.recv() {
                Ok(request) => self.handle(request),
                Err(_) if self.stopping.load(Ordering::SeqCst) => return,
                Err(e) => eprintln!("fake_google: {e}"),
            }
        }
    }

    fn handle(&self, mut request: tiny_http::Request) {
        let rq = record(&mut request);
        let fault = {
            let mut state = self.lock();
            state.log.push(rq.clone());
            let next = state.next_faults.pop_front();
            next.or_else(|| state.fault.clone())
        };
        let mut reply = match &fault {
            Some(Fault::Drop) => return self.sever(request),
            Some(Fault::Slow(delay)) => {
                thread::sleep(*delay);
                self.route(&rq, None)
            }
            Some(Fault::Status(code)) => oauth_error(*code, "internal_error", "fake failure"),
            Some(Fault::StatusRetryAfter(code, secs)) => {
                oauth_error(*code, "internal_error", "fake failure").header("Retry-After", secs.to_string())
            }
            Some(Fault::Html) => Reply::text(200, "text/html; charset=utf-8", "<html>sign in</html>"),
            Some(Fault::TruncatedJson) => {
                let mut reply = self.route(&rq, None);
                reply.body.truncate(reply.body.len() / 2);
                reply.status = 200;
                reply
            }
            Some(Fault::InvalidClient) => invalid_client(),
            claims => self.route(&rq, claims.as_ref()),
        };
        if rq.path.starts_with("/computeMetadata/") && fault != Some(Fault::Html) {
            reply = reply.header("Metadata-Flavor", "Google");
        }
        reply.send(request);
    }

    /// The normal answer; `fault` may alter the claims of issued ID tokens.
    fn route(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        if rq.path.starts_with("/computeMetadata/") && rq.header("metadata-flavor") != Some("Google") {
            let body = "Missing required header: \"Metadata-Flavor\": \"Google\"";
            return Reply::text(403, "text/html; charset=UTF-8", body);
        }
        let method = match rq.endpoint {
            Endpoint::Token | Endpoint::Other => rq.method.as_str(),
            Endpoint::Revoke
            | Endpoint::GenerateIdToken
            | Endpoint::GenerateAccessToken
            | Endpoint::SignJwt
            | Endpoint::Sts => "POST",
            _ => "GET",
        };
        if rq.method != method {
            return Reply::text(405, "text/plain; charset=utf-8", "Method Not Allowed");
        }
        match rq.endpoint {
            Endpoint::Token => self.token(rq, fault),
            Endpoint::Authorize => self.authorize(rq),
            Endpoint::Revoke => self.revoke(rq),
            Endpoint::MetadataIdentity => self.metadata_identity(rq, fault),
            Endpoint::MetadataToken => Reply::json(200, &self.access_token_answer(VM_EMAIL)),
            Endpoint::MetadataEmail => Reply::text(200, "application/text", VM_EMAIL),
            Endpoint::GenerateIdToken => self.generate_id_token(rq, fault),
            Endpoint::GenerateAccessToken => self.generate_access_token(rq),
            Endpoint::SignJwt => self.sign_jwt_for(rq, fault),
            Endpoint::SecretAccess => self.access_secret(rq),
            Endpoint::Sts => self.sts_exchange(rq),
            Endpoint::Other => Reply::text(404, "text/plain; charset=utf-8", "Not Found"),
        }
    }

    fn random_hex(&self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes).expect("the system RNG");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn new_access_token(&self, email: &str) -> String {
        let token = format!("ya29.fake-{}", self.random_hex());
        self.lock().access_tokens.insert(token.clone(), email.into());
        token
    }

    fn new_refresh_token(&self, client_id: &str, email: &str) -> String {
        let token = format!("1//fake-{}", self.random_hex());
        let (client_id, email) = (client_id.into(), email.into());
        let grant = RefreshToken { client_id, email, revoked: false };
        self.lock().refresh_tokens.insert(token.clone(), grant);
        token
    }

    fn access_token_answer(&self, email: &str) -> Value {
        let access_token = self.new_access_token(email);
        json!({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"})
    }

    fn sign_jwt(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": GOOGLE_KEY_ID});
        sign_jwt_with(&self.google_key, &self.rng, &header, claims)
    }

    /// An ID token of `email`; `extra` claims are merged in, then a claims `fault` applies.
    fn id_token(&self, aud: &str, email: &str, extra: Value, fault: Option<&Fault>) -> String {
        let (now, lifetime) = (now(), self.lock().id_token_lifetime);
        let Value::Object(mut claims) = json!({
            "iss": ISSUER, "aud": aud, "azp": email, "sub": numeric_id(email), "email": email,
            "email_verified": true, "iat": now, "exp": now + lifetime,
        }) else {
            unreachable!("a JSON object literal")
        };
        let overrides = match fault {
            Some(Fault::Expired) => json!({"iat": now - 7200, "exp": now - 3600}),
            Some(Fault::IatFuture) => json!({"iat": now + 3600, "exp": now + 7200}),
            Some(Fault::WrongAud) => json!({"aud": WRONG_AUDIENCE}),
            _ => Value::Null,
        };
        for more in [extra, overrides] {
            if let Value::Object(more) = more {
                claims.extend(more);
            }
        }
        if fault == Some(&Fault::NoExp) {
            claims.remove("exp");
        }
        self.sign_jwt(&Value::Object(claims))
    }

    fn token(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        if rq.method != "POST" || rq.form.is_empty() {
            return Reply::json(400, &json!({"error": "invalid_request"}));
        }
        match rq.form_value("grant_type") {
            Some(JWT_BEARER) => self.jwt_bearer_grant(rq, fault),
            Some("refresh_token") => self.refresh_grant(rq, fault),
            Some("authorization_code") => self.code_grant(rq, fault),
            Some(_) => oauth_error(400, "unsupported_grant_type", "Invalid grant_type"),
            None => missing("grant_type"),
        }
    }

    fn jwt_bearer_grant(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        let Some(assertion) = rq.form_value("assertion") else {
            return missing("assertion");
        };
        let Some((header, claims)) = verify_jwt(assertion, SA_PUB_DER) else {
            return invalid_grant("Invalid JWT Signature.");
        };
        if header["alg"] != "RS256" || header["kid"] != SA_KEY_ID {
            return invalid_grant("Invalid JWT Signature.");
        }
        if claims["iss"] != SA_EMAIL {
            return invalid_grant("Invalid email or User ID");
        }
        if claims["aud"] != self.token_uri().as_str() {
            return invalid_grant("Invalid JWT: Failed audience check.");
        }
        let now = now();
        match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
            (Some(iat), Some(exp)) if iat < exp && exp > now && iat <= now + 60 && exp - iat <= 3600 => {}
            _ => {
                return invalid_grant(
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a \
                     reasonable timeframe. Check your iat and exp values in the JWT claim.",
                );
            }
        }
        if let Some(audience) = claims["target_audience"].as_str().filter(|a| !a.is_empty()) {
            let id_token = self.id_token(audience, SA_EMAIL, Value::Null, fault);
            return Reply::json(200, &json!({"id_token": id_token}));
        }
        if claims["scope"].as_str().is_some_and(|s| !s.is_empty()) {
            return Reply::json(200, &self.access_token_answer(SA_EMAIL));
        }
        let description = "Invalid OAuth scope or ID token audience provided.";
        oauth_error(400, "invalid_scope", description)
    }

    fn refresh_grant(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        let client_id = rq.form_value("client_id").unwrap_or_default();
        let email = {
            let state = self.lock();
            if !client_ok(&state, rq) {
                return invalid_client();
            }
            let Some(token) = rq.form_value("refresh_token") else {
                return missing("refresh_token");
            };
            match state.refresh_tokens.get(token) {
                Some(t) if !t.revoked && t.client_id == client_id => t.email.clone(),
                _ => return invalid_grant("Token has been expired or revoked."),
            }
        };
        let audience = rq.form_value("audience").filter(|a| !a.is_empty()).unwrap_or(client_id);
        let mut answer = self.access_token_answer(&email);
        answer["scope"] = json!(USER_SCOPE);
        let azp = json!({"azp": client_id});
        answer["id_token"] = json!(self.id_token(audience, &email, azp, fault));
        Reply::json(200, &answer)
    }

    fn code_grant(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        let code = {
            let mut state = self.lock();
            if !client_ok(&state, rq) {
                return invalid_client();
            }
            // Codes are single use: any exchange attempt consumes the code.
            let code = rq.form_value("code").unwrap_or_default();
            let Some(code) = state.codes.remove(code) else {
                return invalid_grant("Malformed auth code.");
            };
            code
        };
        if rq.form_value("client_id") != Some(code.client_id.as_str()) {
            return invalid_grant("Unauthorized");
        }
        if rq.form_value("redirect_uri") != Some(code.redirect_uri.as_str()) {
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
        }
        match rq.form_value("code_verifier") {
            None => return invalid_grant("Missing code verifier."),
            Some(verifier) if URL_SAFE_NO_PAD.encode(sha256(verifier)) != code.challenge => {
                return invalid_grant("Invalid code verifier.");
            }
            Some(_) => {}
        }
        let mut answer = self.access_token_answer(&code.email);
        answer["refresh_token"] = json!(self.new_refresh_token(&code.client_id, &code.email));
        answer["scope"] = json!(USER_SCOPE);
        let azp = json!({"azp": code.client_id});
        answer["id_token"] = json!(self.id_token(&code.client_id, &code.email, azp, fault));
        Reply::json(200, &answer)
    }

    fn authorize(&self, rq: &Recorded) -> Reply {
        let bad = |why: &str| {
            let body = format!("Error 400: invalid_request\n{why}\n");
            Reply::text(400, "text/plain; charset=utf-8", body)
        };
        let param = |name: &str| rq.query_value(name).unwrap_or_default();
        let (client_id, redirect_uri) = (param("client_id"), param("redirect_uri"));
        let approve = {
            let state = self.lock();
            if !state.clients.contains_key(client_id) {
                return bad("The OAuth client was not found.");
            }
            state.approve
        };
        if param("response_type") != "code" {
            return bad("Invalid response_type: expected code");
        }
        if !param("scope").split_whitespace().any(|s| s == "openid") {
            return bad("The scope must contain openid");
        }
        if param("code_challenge").is_empty() || param("code_challenge_method") != "S256" {
            return bad("PKCE with code_challenge_method=S256 is required");
        }
        let location = url::Url::parse(redirect_uri).ok();
        let Some(mut location) = location.filter(|_| redirect_uri.starts_with("http://127.0.0.1:")) else {
            return bad("redirect_uri must be http://127.0.0.1:PORT/...");
        };
        if approve {
            let code = format!("4/0fake-{}", self.random_hex());
            let email = rq.query_value("login_hint").filter(|h| !h.is_empty());
            let grant = AuthCode {
                client_id: client_id.into(),
                redirect_uri: redirect_uri.into(),
                challenge: param("code_challenge").into(),
                email: email.unwrap_or(DEFAULT_USER_EMAIL).into(),
            };
            self.lock().codes.insert(code.clone(), grant);
            location.query_pairs_mut().append_pair("code", &code);
        } else {
            location.query_pairs_mut().append_pair("error", "access_denied");
        }
        if let Some(state) = rq.query_value("state") {
            location.query_pairs_mut().append_pair("state", state);
        }
        let body = "<html><body>Returning to the application&hellip;</body></html>";
        Reply::text(302, "text/html; charset=utf-8", body).header("Location", location.to_string())
    }

    fn revoke(&self, rq: &Recorded) -> Reply {
        let Some(token) = rq.form_value("token").or_else(|| rq.query_value("token")) else {
            return missing("token");
        };
        let mut state = self.lock();
        if let Some(grant) = state.refresh_tokens.get_mut(token) {
            grant.revoked = true;
        } else if state.access_tokens.remove(token).is_none() {
            return oauth_error(400, "invalid_token", "Token expired or revoked");
        }
        Reply::json(200, &json!({}))
    }

    fn metadata_identity(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        let Some(audience) = rq.query_value("audience").filter(|a| !a.is_empty()) else {
            let message = "non-empty audience parameter required";
            return Reply::text(400, "text/html; charset=UTF-8", message);
        };
        let mut extra = json!({"azp": numeric_id(VM_EMAIL)});
        if rq.query_value("format") == Some("full") {
            extra["google"] = json!({"compute_engine": {
                "instance_creation_timestamp": 1_700_000_000, "instance_id": "1234567890123456789",
                "instance_name": "fake-vm", "project_id": "test-project",
                "project_number": 123_456_789_012_u64, "zone": "us-central1-a",
            }});
        }
        let token = self.id_token(audience, VM_EMAIL, extra, fault);
        Reply::text(200, "text/html; charset=UTF-8", token)
    }

    /// The principal of the request's `Authorization: Bearer` access token.
    fn bearer_principal(&self, rq: &Recorded) -> Option<String> {
        let (scheme, token) = rq.header("authorization")?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.lock().access_tokens.get(token.trim()).cloned()
    }

    /// Google STS: exchanges a CI's OIDC token (signed with the test key `sa-key.pem`, which plays the
    /// CI issuer here) for a federated access token acting as [`federated_principal`] of its `sub`.
    fn sts_exchange(&self, rq: &Recorded) -> Reply {
        let Some((pool_audience, subject_audience)) = self.lock().sts.clone() else {
            return oauth_error(400, "invalid_target", "No workload identity pool is configured.");
        };
        if rq.form_value("grant_type") != Some(TOKEN_EXCHANGE) {
            return oauth_error(400, "unsupported_grant_type", "Invalid grant_type");
        }
        if rq.form_value("audience") != Some(pool_audience.as_str()) {
            return oauth_error(
                400,
                "invalid_target",
                "The target service indicated by the \"audience\" parameters is invalid.",
            );
        }
        if rq.form_value("requested_token_type") != Some(ACCESS_TOKEN_TYPE) {
            return oauth_error(400, "invalid_request", "Invalid requested_token_type.");
        }
        if !matches!(rq.form_value("subject_token_type"), Some(JWT_TOKEN_TYPE | ID_TOKEN_TYPE)) {
            return oauth_error(400, "invalid_request", "Invalid subject_token_type.");
        }
        if !rq.form_value("scope").is_some_and(|s| s.split(' ').any(|s| s == CLOUD_PLATFORM)) {
            return oauth_error(400, "invalid_scope", "The scope is invalid.");
        }
        let Some((_, claims)) = rq.form_value("subject_token").and_then(|t| verify_jwt(t, SA_PUB_DER)) else {
            return invalid_grant("The subject token's signature could not be verified.");
        };
        if claims["aud"] != subject_audience.as_str() {
            return invalid_grant("The audience in ID Token does not match the expected audience.");
        }
        if claims["exp"].as_i64().is_none_or(|exp| exp <= now()) {
            return invalid_grant("ID Token issued at a time in the future or expired.");
        }
        let principal = federated_principal(claims["sub"].as_str().unwrap_or_default());
        let access_token = self.new_access_token(&principal);
        Reply::json(
            200,
            &json!({"access_token": access_token, "issued_token_type": ACCESS_TOKEN_TYPE, "token_type": "Bearer", "expires_in": 3599}),
        )
    }

    fn generate_access_token(&self, rq: &Recorded) -> Reply {
        let (target, caller) = match self.iam_call(rq, ":generateAccessToken") {
            Ok(call) => call,
            Err(reply) => return reply,
        };
        if !self.lock().impersonation.contains(&(caller, target.clone())) {
            let message = "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).";
            return api_error(403, message, "PERMISSION_DENIED");
        }
        let access_token = self.new_access_token(&target);
        let expire = time_rfc3339(now() + 3600);
        Reply::json(200, &json!({"accessToken": access_token, "expireTime": expire}))
    }

    /// The service account an IAM Credentials call names (`.../serviceAccounts/EMAIL:method`) and the
    /// principal of its bearer; else the 404 or 401 to answer.
    fn iam_call(&self, rq: &Recorded, method: &str) -> Result<(String, String), Reply> {
        let target = rq.path.strip_prefix(IAM_PREFIX).unwrap_or_default();
        // Clients escape the `@` of the email, if anything; nothing else occurs in SA emails.
        let target = target.strip_suffix(method).map(|t| t.replace("%40", "@"));
        let Some(target) = target.filter(|t| !t.contains('/')) else {
            return Err(api_error(404, "Not Found", "NOT_FOUND"));
        };
        let caller = self.bearer_principal(rq).ok_or_else(unauthenticated)?;
        Ok((target, caller))
    }

    fn generate_id_token(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        let (target, caller) = match self.iam_call(rq, ":generateIdToken") {
            Ok(call) => call,
            Err(reply) => return reply,
        };
        let invalid = |message: &str| api_error(400, message, "INVALID_ARGUMENT");
        let Ok(body) = serde_json::from_str::<Value>(&rq.body) else {
            return invalid("Invalid JSON payload received.");
        };
        let audience = body["audience"].as_str().unwrap_or_default();
        if audience.is_empty() {
            return invalid("Audience is required.");
        }
        if body["includeEmail"] != true {
            return invalid("includeEmail must be true for this fake.");
        }
        // `delegates` are ignored: the caller itself must be allowed.
        let allowed = self.lock().impersonation.contains(&(caller, target.clone()));
        if !allowed {
            let message = "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource \
                           (or it may not exist).";
            return api_error(403, message, "PERMISSION_DENIED");
        }
        let azp = json!({"azp": numeric_id(&target)});
        let token = self.id_token(audience, &target, azp, fault);
        Reply::json(200, &json!({"token": token}))
    }

    /// IAM Credentials `signJwt`: the payload must be a JSON claims object whose `exp` is in the future
    /// and at most 12 h away; the caller must be allowed to act as the target (or be the target itself,
    /// as a VM signing as its own service account), through each of the `delegates` in turn when given.
    /// Signed with the fake service account's key.
    fn sign_jwt_for(&self, rq: &Recorded, fault: Option<&Fault>) -> Reply {
        let (target, caller) = match self.iam_call(rq, ":signJwt") {
            Ok(call) => call,
            Err(reply) => return reply,
        };
        let invalid = |message: &str| api_error(400, message, "INVALID_ARGUMENT");
        let Ok(body) = serde_json::from_str::<Value>(&rq.body) else {
            return invalid("Invalid JSON payload received.");
        };
        let Some(Ok(claims)) = body["payload"].as_str().map(serde_json::from_str::<Value>) else {
            return invalid("Payload must be a JSON object.");
        };
        let now = now();
        match claims["exp"].as_i64() {
            Some(exp) if exp > now && exp <= now + 12 * 3600 => {}
            _ => return invalid("exp must be in the future and at most 12 hours from now."),
        }
        // The chain caller -> delegates... -> target: each may act as the next (a VM may sign as itself).
        let Some(delegates) = delegate_emails(&body) else {
            return invalid("delegates must be names of the form projects/-/serviceAccounts/EMAIL.");
        };
        let mut chain = vec![caller.clone()];
        chain.extend(delegates);
        chain.push(target.clone());
        let allowed = (chain.len() == 2 && caller == target)
            || chain.windows(2).all(|pair| self.lock().impersonation.contains(&(pair[0].clone(), pair[1].clone())));
        if !allowed {
            let message = "Permission 'iam.serviceAccounts.signJwt' denied on resource (or it may not exist).";
            return api_error(403, message, "PERMISSION_DENIED");
        }
        if let Some(Fault::Html) = fault {
            return Reply::text(200, "text/html", "<html>sign in</html>");
        }
        let key = RsaKeyPair::from_pkcs8(&pem_to_der(SA_KEY_PEM)).expect("tests/data/sa-key.pem");
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": MANAGED_KEY_ID});
        let signed = sign_jwt_with(&key, &SystemRandom::new(), &header, &claims);
        Reply::json(200, &json!({"keyId": MANAGED_KEY_ID, "signedJwt": signed}))
    }

    fn access_secret(&self, rq: &Recorded) -> Reply {
        let Some(name) = secret_name(&rq.path) else {
            return api_error(404, "Not Found", "NOT_FOUND");
        };
        if self.bearer_principal(rq).is_none() {
            return unauthenticated();
        }
        let (secret, version) = name.rsplit_once("/versions/").unwrap_or((name, ""));
        let Some((payload, crc32c)) = self.lock().secrets.get(name).cloned() else {
            let message = format!("Secret [{secret}] not found or has no versions.");
            return api_error(404, &message, "NOT_FOUND");
        };
        let numeric = version.bytes().all(|b| b.is_ascii_digit());
        let version = if numeric { version } else { "1" };
        let mut payload = json!({"data": STANDARD.encode(payload)});
        if let Some(crc32c) = crc32c {
            payload["dataCrc32c"] = json!(crc32c.to_string());
        }
        let name = format!("{secret}/versions/{version}");
        Reply::json(200, &json!({"name": name, "payload": payload}))
    }
}

/// Copies one direction of a relayed connection, then passes the end of stream on.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
