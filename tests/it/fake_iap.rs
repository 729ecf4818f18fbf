//! A fake Identity-Aware Proxy in front of an echo application, plain HTTP on 127.0.0.1, for the Python
//! package's tests. It answers as IAP does, and marks its own answers `X-Goog-IAP-Generated-Response:
//! true`: no credential -> 302 to the (fake) Google authorize URL with IAP's `client_id`; a bearer in
//! `Proxy-Authorization`, else in `Authorization`, that is not an ID token of the fake Google (signature,
//! `aud`, expiry) -> 401 with IAP's text. A valid one reaches the app, which echoes what it received as
//! JSON (`Proxy-Authorization` is IAP's and is not passed on). `/app/401` is the app's own 401, without
//! IAP's header. Two control paths, never behind the check: `/_fake/reject-next?n=N` (IAP rejects the next N
//! requests whatever they carry) and `/_fake/stats`.
#![allow(dead_code)]

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Map, json};

use crate::common::now;
use crate::fake_google::verify_google_jwt;

const WORKERS: usize = 4;
const IAP_HEADER: &str = "X-Goog-IAP-Generated-Response";

#[derive(Default)]
struct State {
    reject_next: usize,
    /// Requests that carried a credential, and how many of them IAP rejected.
    checked: usize,
    rejected: usize,
}

pub struct FakeIap {
    server: Arc<tiny_http::Server>,
    url: String,
    state: Arc<Mutex<State>>,
}

impl FakeIap {
    /// Serves for `audience` (IAP's OAuth client id); unauthenticated requests go to `authorize_url`.
    pub fn start(audience: &str, authorize_url: &str) -> FakeIap {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake IAP"));
        let url = format!("http://{}", server.server_addr().to_ip().expect("a TCP address"));
        let state = Arc::new(Mutex::new(State::default()));
        for _ in 0..WORKERS {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            let (audience, authorize_url) = (audience.to_string(), authorize_url.to_string());
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    handle(request, &state, &audience, &authorize_url);
                }
            });
        }
        FakeIap { server, url, state }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for FakeIap {
    fn drop(&mut self) {
        for _ in 0..WORKERS {
            self.server.unblock();
        }
    }
}

fn handle(mut request: tiny_http::Request, state: &Mutex<State>, audience: &str, authorize_url: &str) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut body = String::new();
    let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

    let mut state_guard = state.lock().unwrap_or_else(|e| e.into_inner());
    if path == "/_fake/reject-next" {
        state_guard.reject_next = query.strip_prefix("n=").and_then(|n| n.parse().ok()).unwrap_or(1);
        return respond(request, 204, "", &[]);
    }
    if path == "/_fake/stats" {
        let stats = json!({"checked": state_guard.checked, "rejected": state_guard.rejected}).to_string();
        return respond(request, 200, &stats, &[("Content-Type", "application/json")]);
    }
    let (used, credential) = match (header("proxy-authorization"), header("authorization")) {
        (Some(value), _) => ("proxy-authorization", value),
        (None, Some(value)) => ("authorization", value),
        (None, None) => {
            drop(state_guard);
            let location = format!(
                "{authorize_url}?client_id={audience}&response_type=code&scope=openid+email&redirect_uri=\
                 https://iap.googleapis.com/v1/oauth/clientIds/{audience}:handleRedirect&state=fake-state"
            );
            return respond(request, 302, "", &[("Location", &location), (IAP_HEADER, "true")]);
        }
    };
    state_guard.checked += 1;
    let verdict = if state_guard.reject_next > 0 {
        state_guard.reject_next -= 1;
        Err("Invalid IAP credentials: Expired JWT".to_string())
    } else {
        check(credential, audience)
    };
    if verdict.is_err() {
        state_guard.rejected += 1;
    }
    drop(state_guard);
    let email = match verdict {
        Ok(email) => email,
        Err(why) => return respond(request, 401, &why, &[("Content-Type", "text/html"), (IAP_HEADER, "true")]),
    };
    if path == "/app/401" {
        return respond(request, 401, "{\"error\":\"the app says no\"}", &[("Content-Type", "application/json")]);
    }
    let mut echoed = Map::new();
    for (name, value) in headers.iter().filter(|(name, _)| name != "proxy-authorization") {
        echoed.insert(name.clone(), json!(value));
    }
    echoed.insert("x-goog-authenticated-user-email".into(), json!(format!("accounts.google.com:{email}")));
    let answer = json!({"method": request.method().as_str(), "path": path, "headers": echoed, "body": body, "iap_credential_from": used});
    respond(request, 200, &answer.to_string(), &[("Content-Type", "application/json")]);
}

/// IAP's verdict on `Bearer <jwt>`: the principal's email, or IAP's 401 text.
fn check(value: &str, audience: &str) -> Result<String, String> {
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or("").trim();
    if token.is_empty() {
        return Err("Invalid IAP credentials: empty token".into());
    }
    let Some((_, claims)) = verify_google_jwt(token) else {
        return Err("Invalid IAP credentials: Unable to parse JWT".into());
    };
    let aud = claims["aud"].as_str().unwrap_or_default();
    if aud != audience {
        return Err(format!(
            "Invalid IAP credentials: JWT audience doesn't match this application ('aud' claim ({aud}) doesn't match expected value ({audience}))"
        ));
    }
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now()) {
        return Err("Invalid IAP credentials: Expired JWT".into());
    }
    Ok(claims["email"].as_str().unwrap_or_default().to_string())
}

fn respond(request: tiny_http::Request, status: u16, body: &str, headers: &[(&str, &str)]) {
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    for (name, value) in headers {
        response.add_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a header"));
    }
    let _ = request.respond(response);
}
