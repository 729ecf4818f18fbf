//! A fake Kubernetes API server, for running the real kubectl against `iap-token` as its exec plugin.
//!
//! [`FakeKube::start`] serves HTTPS (HTTP/1.1, rustls) on an ephemeral port of 127.0.0.1 with a fresh
//! self-signed certificate for that address, whose PEM ([`FakeKube::ca_pem`]) goes into the kubeconfig's
//! `certificate-authority-data`. It answers `GET /version` like an API server, records the
//! `Authorization` header of every request, and answers 401 with an `Unauthorized` Status when the
//! bearer fails its check (by default: an ID token signed by the fake Google, unexpired, for the
//! expected audience) or when [`FakeKube::reject_next`] asked for it. One thread per connection.
#![allow(dead_code)] // each test uses a different part of this API

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::fake_google::verify_google_jwt;

/// The body of `GET /version`.
pub const VERSION: &str = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","platform":"linux/amd64"}"#;
const UNAUTHORIZED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#;
/// Longest request line or header line accepted (an ID token is about 1 KB).
const MAX_LINE: u64 = 16 * 1024;
const MAX_BODY: u64 = 1 << 20;

type Check = dyn Fn(Option<&str>) -> bool + Send + Sync;

#[derive(Default)]
struct State {
    /// (path, Authorization header) of every request, in arrival order.
    log: Vec<(String, Option<String>)>,
    reject: usize,
}

struct Shared {
    state: Mutex<State>,
    check: Box<Check>,
    tls: Arc<ServerConfig>,
    stopping: AtomicBool,
}

/// The fake server; it stops accepting connections when dropped.
pub struct FakeKube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
}

impl FakeKube {
    /// A server that accepts only `Authorization: Bearer <ID token for expected_audience>`.
    pub fn start(expected_audience: &str) -> FakeKube {
        let audience = expected_audience.to_string();
        FakeKube::start_with(move |authorization| bearer_is_for(authorization, &audience))
    }

    /// A server that accepts a request when `check(Authorization header)` is true, else answers 401.
    pub fn start_with(check: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) -> FakeKube {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("the server certificate");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API server");
        let addr = listener.local_addr().expect("the fake API server address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            check: Box::new(check),
            tls: Arc::new(tls),
            stopping: AtomicBool::new(false),
        });
        let acceptor = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if acceptor.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&acceptor);
                thread::spawn(move || shared.serve(stream));
            }
        });
        FakeKube { shared, addr, ca_pem: certified.cert.pem() }
    }

    /// `https://127.0.0.1:PORT`, the kubeconfig's `server`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The server's self-signed certificate, which is its own CA.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The `Authorization` header of every request so far (None when absent).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.shared.state).log.iter().map(|(_, authorization)| authorization.clone()).collect()
    }

    /// The path (with any query) of every request so far.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.shared.state).log.iter().map(|(path, _)| path.clone()).collect()
    }

    /// The next `n` requests get 401, whatever their credentials.
    pub fn reject_next(&self, n: usize) {
        lock(&self.shared.state).reject += n;
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the acceptor so that it sees `stopping`
    }
}

/// Whether `authorization` is `Bearer <jwt>` with a JWT the fake Google signed, for `audience`, unexpired.
pub fn bearer_is_for(authorization: Option<&str>, audience: &str) -> bool {
    let Some(token) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else { return false };
    let Some((_, claims)) = verify_google_jwt(token) else { return false };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    claims["aud"] == audience && claims["exp"].as_u64().is_some_and(|exp| exp > now)
}

impl Shared {
    /// Serves one connection until the client closes it or sends something unreadable.
    fn serve(&self, tcp: TcpStream) -> Option<()> {
        tcp.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let connection = ServerConnection::new(Arc::clone(&self.tls)).ok()?;
        let mut reader = BufReader::new(StreamOwned::new(connection, tcp));
        while let Some((path, authorization)) = read_request(&mut reader) {
            let (status, body) = self.answer(path, authorization);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let stream = reader.get_mut();
            stream.write_all(head.as_bytes()).ok()?;
            stream.write_all(body.as_bytes()).ok()?;
            stream.flush().ok()?;
        }
        None
    }

    fn answer(&self, path: String, authorization: Option<String>) -> (&'static str, &'static str) {
        let accepted = (self.check)(authorization.as_deref());
        let mut state = lock(&self.state);
        let forced = state.reject > 0;
        state.reject = state.reject.saturating_sub(1);
        let found = path.split('?').next() == Some("/version");
        state.log.push((path, authorization));
        match (accepted && !forced, found) {
            (false, _) => ("401 Unauthorized", UNAUTHORIZED),
            (true, true) => ("200 OK", VERSION),
            (true, false) => ("404 Not Found", NOT_FOUND),
        }
    }
}

/// Reads one request's head (and skips its body); returns its path and `Authorization` header.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Option<String>)> {
    let request_line = read_line(reader)?;
    let path = request_line.split_whitespace().nth(1)?.to_string();
    let (mut authorization, mut length) = (None, 0);
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<u64>().ok().filter(|&n| n <= MAX_BODY)?;
        }
    }
    io::copy(&mut reader.by_ref().take(length), &mut io::sink()).ok()?;
    Some((path, authorization))
}

/// One CRLF-terminated line without its terminator; None at the end of the stream or on a bad line.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut bytes = Vec::new();
    reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut bytes).ok()?;
    let line = bytes.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8(line.to_vec()).ok()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
