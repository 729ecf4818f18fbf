//! A fake Identity-Aware Proxy in front of an echo application, plain HTTP on 127.0.0.1 (put
//! [`crate::tls_front::TlsFront`] before it for HTTPS). It answers as IAP does, marking its own answers
//! `X-Goog-IAP-Generated-Response: true`: no credential -> 302 to the fake Google's authorize URL with
//! IAP's `client_id`; the bearer of `Proxy-Authorization`, else of `Authorization`, is checked against the
//! fake Google's key (signature, expiry, `aud` among the accepted audiences) with IAP's real 401 bodies,
//! then the principal against the allowed ones (403 "You don't have access"). A request IAP lets through
//! reaches the app, which echoes what it received as JSON (IAP consumes `Proxy-Authorization`). The app's
//! own 401 is at `/app/401`. Other modes play what is not IAP: a plain app, a redirect elsewhere, a huge
//! or HTML answer.

#![allow(dead_code)]

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};

use crate::common::now;
use crate::fake_google::{verify_google_jwt, verify_sa_jwt};

const WORKERS: usize = 4;
pub const IAP_HEADER: &str = "X-Goog-IAP-Generated-Response";

/// What answers at the front.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// IAP in front of the echo app.
    Iap,
    /// No IAP: the app answers everything with 200.
    PlainApp,
    /// A 302 to a sign-in page that is not Google's.
    RedirectElsewhere,
    /// A 200 whose body is this many bytes.
    Huge(usize),
    /// A 401 HTML page that is not IAP's.
    Html401,
}

#[derive(Debug, Clone)]
pub struct IapConfig {
    /// IAP's OAuth client id, sent in the sign-in redirect.
    pub client_id: String,
    /// The audiences IAP accepts: its client id, plus desktop clients allowlisted for programmatic access.
    pub accepted: Vec<String>,
    /// The fake Google's authorize URL.
    pub authorize_url: String,
    /// Principals (email claims) allowed through; `None`: everyone with a valid token.
    pub allowed: Option<Vec<String>>,
    /// ID tokens issued before this time are refused with 401 (as after a revocation).
    pub reject_issued_before: Option<i64>,
    pub mode: Mode,
}

impl IapConfig {
    pub fn new(client_id: &str, authorize_url: &str) -> IapConfig {
        IapConfig {
            client_id: client_id.into(),
            accepted: vec![client_id.into()],
            authorize_url: authorize_url.into(),
            allowed: None,
            reject_issued_before: None,
            mode: Mode::Iap,
        }
    }
}

/// One request as the front saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub proxy_authorization: Option<String>,
    pub status: u16,
}

pub struct IapFront {
    server: Arc<tiny_http::Server>,
    pub port: u16,
    config: Arc<Mutex<IapConfig>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl IapFront {
    pub fn start(config: IapConfig) -> IapFront {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake IAP"));
        let port = server.server_addr().to_ip().expect("a TCP address").port();
        let config = Arc::new(Mutex::new(config));
        let seen = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..WORKERS {
            let (server, config, seen) = (Arc::clone(&server), Arc::clone(&config), Arc::clone(&seen));
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let config = config.lock().unwrap().clone();
                    handle(request, &config, &seen);
                }
            });
        }
        IapFront { server, port, config, seen }
    }

    /// `http://127.0.0.1:PORT` (loopback: the tool allows plain http to it).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for a TLS front.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn reconfigure(&self, change: impl FnOnce(&mut IapConfig)) {
        change(&mut self.config.lock().unwrap());
    }
}

impl Drop for IapFront {
    fn drop(&mut self) {
        for _ in 0..WORKERS {
            self.server.unblock();
        }
    }
}

fn bearer(value: Option<&str>) -> Option<&str> {
    value.and_then(|v| v.strip_prefix("Bearer "))
}

fn handle(mut request: tiny_http::Request, config: &IapConfig, seen: &Mutex<Vec<Seen>>) {
    let path = request.url().to_string();
    let streaming = ["/app/upload", "/app/download", "/app/ws"].iter().any(|p| path.starts_with(p));
    let mut body = String::new();
    if !streaming {
        let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let method = request.method().as_str().to_string();
    let (status, reply_headers, reply_body) = answer(config, &path, &method, &headers, &body);
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        authorization: header("authorization").map(str::to_string),
        proxy_authorization: header("proxy-authorization").map(str::to_string),
        status,
    });
    if status == 200 && streaming {
        let key = header("sec-websocket-key").map(str::to_string);
        return stream_app(request, &path, key);
    }
    let mut response = tiny_http::Response::from_data(reply_body).with_status_code(status);
    for (name, value) in reply_headers {
        response = response.with_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
    }
    let _ = request.respond(response);
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn iap_says(status: u16, body: &str) -> Answer {
    (
        status,
        vec![(IAP_HEADER.into(), "true".into()), ("Content-Type".into(), "text/html; charset=UTF-8".into())],
        body.as_bytes().to_vec(),
    )
}

/// The app's streaming paths, once IAP let the request in: `/app/upload` reads the body as it comes
/// and answers its size and CRC-32C; `/app/download?bytes=N[&chunked]` sends N bytes of a pattern
/// (`byte i = i % 251`) with a length or chunked; `/app/ws` echoes websocket messages.
fn stream_app(mut request: tiny_http::Request, path: &str, websocket_key: Option<String>) {
    let query = |name: &str| {
        path.split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string)))
    };
    if path.starts_with("/app/upload") {
        let (mut size, mut crc, mut buf) = (0u64, 0u32, vec![0u8; 64 * 1024]);
        let reader = request.as_reader();
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            size += n as u64;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
        }
        let _ = request.respond(tiny_http::Response::from_string(json!({"bytes": size, "crc32c": crc}).to_string()));
    } else if path.starts_with("/app/download") {
        let size: u64 = query("bytes").and_then(|b| b.parse().ok()).unwrap_or(0);
        let chunked = path.contains("chunked");
        let pattern = Pattern { position: 0, size };
        let length = (!chunked).then_some(size as usize);
        let _ = request.respond(tiny_http::Response::new(200.into(), vec![], pattern, length, None));
    } else if let Some(key) = websocket_key {
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let response = tiny_http::Response::empty(101)
            .with_header(tiny_http::Header::from_bytes(&b"Upgrade"[..], &b"websocket"[..]).unwrap())
            .with_header(tiny_http::Header::from_bytes(&b"Connection"[..], &b"Upgrade"[..]).unwrap())
            .with_header(tiny_http::Header::from_bytes(&b"Sec-WebSocket-Accept"[..], accept.as_bytes()).unwrap());
        let stream = request.upgrade("websocket", response);
        let mut socket = tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, None);
        while let Ok(message) = socket.read() {
            if message.is_close() {
                break;
            }
            if (message.is_text() || message.is_binary()) && socket.send(message).is_err() {
                break;
            }
        }
    }
}

/// `size` bytes where byte `i` is `i % 251`, generated as read.
pub struct Pattern {
    pub position: u64,
    pub size: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.size - self.position) as usize);
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            *byte = ((self.position + i as u64) % 251) as u8;
        }
        self.position += n as u64;
        Ok(n)
    }
}

fn answer(config: &IapConfig, path: &str, method: &str, headers: &[(String, String)], body: &str) -> Answer {
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match &config.mode {
        Mode::PlainApp => return (200, vec![], b"hello from an app without IAP".to_vec()),
        Mode::RedirectElsewhere => {
            return (302, vec![("Location".into(), "https://login.example.com/sso?client_id=x".into())], vec![]);
        }
        Mode::Huge(size) => return (200, vec![("Content-Type".into(), "text/plain".into())], vec![b'x'; *size]),
        Mode::Html401 => {
            return (401, vec![("Content-Type".into(), "text/html".into())], b"<html>Please log in</html>".to_vec());
        }
        Mode::Iap => {}
    }
    let credential = bearer(header("proxy-authorization")).or(bearer(header("authorization")));
    let Some(token) = credential else {
        if header("proxy-authorization").is_some() || header("authorization").is_some() {
            return iap_says(401, "Invalid IAP credentials: Unable to parse JWT");
        }
        let location = format!(
            "{}?client_id={}&response_type=code&scope=openid+email&redirect_uri=https://iap.googleapis.com/v1/oauth/clientIds/{}:handleRedirect&state=fake-iap-state",
            config.authorize_url, config.client_id, config.client_id
        );
        let mut answer = iap_says(302, "");
        answer.1.push(("Location".into(), location));
        return answer;
    };
    if let Some((_, claims)) = verify_sa_jwt(token) {
        // A service account's signed JWT: aud must cover this URL, life at most an hour.
        // Behind a TLS front the same host is reached over https.
        let host = header("host").unwrap_or_default();
        let origin = format!("http://{host}");
        let aud = claims["aud"].as_str().unwrap_or_default();
        let covers = ["http", "https"].iter().any(|scheme| {
            let origin = format!("{scheme}://{host}");
            aud == format!("{origin}/*")
                || aud.strip_suffix('*').is_some_and(|p| format!("{origin}{path}").starts_with(p))
        });
        let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
        if !covers {
            return iap_says(
                401,
                &format!(
                    "Invalid IAP credentials: JWT audience doesn't match this application ('aud' claim ({aud}) doesn't match expected value ({origin}/*))"
                ),
            );
        }
        if exp <= now() || exp - iat > 3600 {
            return iap_says(401, "Invalid IAP credentials: Expired JWT or lifetime over an hour");
        }
        let echo = json!({"path": path, "method": method, "principal": claims["sub"]});
        return (200, vec![("Content-Type".into(), "application/json".into())], echo.to_string().into_bytes());
    }
    let Some((_, claims)) = verify_google_jwt(token) else {
        return iap_says(401, "Invalid IAP credentials: Unable to parse JWT");
    };
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now()) {
        return iap_says(401, "Invalid IAP credentials: Expired JWT");
    }
    if config.reject_issued_before.is_some_and(|before| claims["iat"].as_i64().is_none_or(|iat| iat < before)) {
        return iap_says(401, "There was a problem with your request. Error code 13");
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !config.accepted.iter().any(|a| a == aud) {
        return iap_says(
            401,
            &format!(
                "Invalid IAP credentials: JWT audience doesn't match this application ('aud' claim ({aud}) doesn't match expected value ({}))",
                config.client_id
            ),
        );
    }
    let email = claims["email"].as_str().unwrap_or_default();
    if config.allowed.as_ref().is_some_and(|allowed| !allowed.iter().any(|a| a == email)) {
        return iap_says(403, "You don't have access");
    }
    if path.starts_with("/app/401") {
        return (401, vec![("WWW-Authenticate".into(), "Basic realm=\"app\"".into())], b"app says no".to_vec());
    }
    // The app: what it received, without the header IAP consumed.
    let received: Value = headers
        .iter()
        .filter(|(name, _)| name != "proxy-authorization")
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let echo = json!({"path": path, "method": method, "headers": received, "principal": email, "body": body});
    (200, vec![("Content-Type".into(), "application/json".into())], echo.to_string().into_bytes())
}
