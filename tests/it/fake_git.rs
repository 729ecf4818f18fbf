//! A fake git server behind Identity-Aware Proxy, for running the real git against `iap-token` as its
//! credential helper.
//!
//! [`FakeGit::start`] creates a bare repository `repo.git` with one commit (file [`FILE`] holding
//! [`CONTENT`] on branch `main`) in a temp dir and serves it over git's smart HTTP protocol on an
//! ephemeral port of 127.0.0.1: `tiny_http` in front of `git http-backend` run as a CGI program. Every
//! request must carry `Authorization: Bearer <token>` (or, with [`FakeGit::start_checking`],
//! `Proxy-Authorization`) whose token passes the test's check; any other request is answered 401 with
//! `WWW-Authenticate: Bearer realm="iap"`, which is what makes git ask its credential helper, or, after
//! [`FakeGit::redirect_to_sign_in`], with a 302 to an HTML sign-in page, as IAP does. Every request is
//! recorded with both headers. The server always runs [`SERVER_GIT`], whatever git the client is.
#![allow(dead_code)] // each test uses a different part of this API

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

/// The git that creates the repository and runs `http-backend`.
pub const SERVER_GIT: &str = "/usr/local/bin/git";
/// The one file of the served commit, and its content.
pub const FILE: &str = "hello.txt";
pub const CONTENT: &str = "served by the fake git behind IAP\n";
const WORKERS: usize = 4;
const MAX_BODY: u64 = 16 << 20;
const SIGN_IN: &str = "/sign-in";

type Check = dyn Fn(&str) -> bool + Send + Sync;

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub url: String,
    pub authorization: Option<String>,
    pub proxy_authorization: Option<String>,
    /// The status the fake answered with.
    pub status: u16,
}

struct Shared {
    header: &'static str,
    check: Box<Check>,
    redirect: AtomicBool,
    root: tempfile::TempDir,
    log: Mutex<Vec<Seen>>,
}

/// The fake server; it stops when dropped.
pub struct FakeGit {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    port: u16,
    head: String,
}

impl FakeGit {
    /// Serves the repository to requests whose `Authorization: Bearer` token passes `check`.
    pub fn start(check: impl Fn(&str) -> bool + Send + Sync + 'static) -> FakeGit {
        FakeGit::start_checking("Authorization", check)
    }

    /// As [`FakeGit::start`], with the bearer token read from `header` (e.g. `Proxy-Authorization`).
    pub fn start_checking(header: &'static str, check: impl Fn(&str) -> bool + Send + Sync + 'static) -> FakeGit {
        let root = tempfile::tempdir().expect("fake git root");
        let head = create_repo(root.path());
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake git server"));
        let port = server.server_addr().to_ip().expect("a TCP address").port();
        let (check, redirect, log) = (Box::new(check), AtomicBool::new(false), Mutex::new(Vec::new()));
        let shared = Arc::new(Shared { header, check, redirect, root, log });
        for _ in 0..WORKERS {
            let (shared, server) = (Arc::clone(&shared), Arc::clone(&server));
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    shared.serve(request);
                }
            });
        }
        FakeGit { shared, server, port, head }
    }

    /// `http://127.0.0.1:PORT/repo.git`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/repo.git", self.port)
    }

    /// `http://127.0.0.1:PORT`, for per-URL config such as `http.<url>.proactiveAuth`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The commit id of `main`.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.log).clone()
    }

    /// From now on, answer unauthenticated requests as IAP does for browsers: a 302 to a sign-in page
    /// (HTML, status 200), not a 401.
    pub fn redirect_to_sign_in(&self) {
        self.shared.redirect.store(true, Ordering::SeqCst);
    }

    /// How many requests were answered 401.
    pub fn unauthorized(&self) -> usize {
        self.seen().iter().filter(|s| s.status == 401).count()
    }
}

impl Drop for FakeGit {
    fn drop(&mut self) {
        for _ in 0..WORKERS {
            self.server.unblock();
        }
    }
}

impl Shared {
    fn serve(&self, mut request: tiny_http::Request) {
        let header = |name: &str| {
            let found = request.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name));
            found.map(|h| h.value.as_str().to_string())
        };
        let (authorization, proxy_authorization) = (header("Authorization"), header("Proxy-Authorization"));
        let method = request.method().as_str().to_string();
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let mut cgi =
            vec![("REQUEST_METHOD", method.clone()), ("PATH_INFO", path.into()), ("QUERY_STRING", query.into())];
        // http-backend un-gzips a request body itself when told by HTTP_CONTENT_ENCODING.
        for (var, name) in [("CONTENT_TYPE", "Content-Type"), ("HTTP_CONTENT_ENCODING", "Content-Encoding")] {
            cgi.extend(header(name).map(|value| (var, value)));
        }
        cgi.extend(header("Git-Protocol").map(|value| ("GIT_PROTOCOL", value)));
        let bearer = header(self.header);
        let authorized = bearer.as_deref().and_then(|a| a.strip_prefix("Bearer ")).is_some_and(|t| (self.check)(t));
        let (status, headers, body) = if url.starts_with(SIGN_IN) {
            (200, vec![("Content-Type".into(), "text/html".into())], b"<html>Sign in</html>\n".to_vec())
        } else if !authorized && self.redirect.load(Ordering::SeqCst) {
            // Like IAP: the sign-in URL does not end with the path git asked for.
            let location = format!("http://{}{SIGN_IN}?client_id=iap&state=x", header("Host").unwrap_or_default());
            (302, vec![("Location".into(), location)], Vec::new())
        } else if !authorized {
            let challenge = vec![("WWW-Authenticate".into(), "Bearer realm=\"iap\"".into())];
            (401, challenge, b"IAP: a valid bearer token is required\n".to_vec())
        } else {
            let mut body = Vec::new();
            if request.as_reader().take(MAX_BODY).read_to_end(&mut body).is_ok() {
                self.http_backend(&cgi, &body)
            } else {
                (400, Vec::new(), b"unreadable body\n".to_vec())
            }
        };
        lock(&self.log).push(Seen { method, url, authorization, proxy_authorization, status });
        let mut response = tiny_http::Response::from_data(body).with_status_code(status);
        for (name, value) in headers {
            if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(header);
            }
        }
        let _ = request.respond(response);
    }

    /// Runs `git http-backend` for one request; returns the status, headers and body it produced.
    fn http_backend(&self, cgi: &[(&str, String)], body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let spawned = Command::new(SERVER_GIT)
            .arg("http-backend")
            .env_clear()
            .env("GIT_PROJECT_ROOT", self.root.path())
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.root.path())
            .envs(cgi.iter().map(|(name, value)| (name, value)))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "iap-user")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else { return (500, Vec::new(), b"cannot run http-backend\n".to_vec()) };
        // Feed stdin from a thread: http-backend may write a large answer before reading all input.
        let mut stdin = child.stdin.take();
        let input = body.to_vec();
        let feeder = thread::spawn(move || stdin.as_mut().map(|s| s.write_all(&input)));
        let output = child.wait_with_output();
        let _ = feeder.join();
        match output {
            Ok(output) => parse_cgi(&output.stdout),
            Err(_) => (500, Vec::new(), b"http-backend failed\n".to_vec()),
        }
    }
}

/// Splits a CGI answer into its status (from `Status:`, default 200), the other headers, and the body.
fn parse_cgi(output: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let Some(end) = output.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (502, Vec::new(), b"bad CGI answer\n".to_vec());
    };
    let (mut status, mut headers) = (200, Vec::new());
    for line in String::from_utf8_lossy(&output[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("Status") {
            status = value.split(' ').next().and_then(|code| code.parse().ok()).unwrap_or(502);
        } else if !name.eq_ignore_ascii_case("Content-Length") && !name.eq_ignore_ascii_case("Transfer-Encoding") {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    (status, headers, output[end + 4..].to_vec())
}

/// `root/repo.git` with one commit on `main`, pushed from a scratch clone; returns the commit id.
fn create_repo(root: &Path) -> String {
    let work = root.join("work");
    let repo = root.join("repo.git");
    let git = |dir: &Path, args: &[&str]| {
        let output = Command::new(SERVER_GIT)
            .current_dir(dir)
            .args(args)
            .env_clear()
            .env("HOME", root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap_or_else(|e| panic!("{SERVER_GIT} is needed to serve the test repository: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "git {args:?} failed: {stderr}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    git(root, &["init", "--quiet", "--bare", "--initial-branch=main", repo.to_str().unwrap()]);
    git(root, &["init", "--quiet", "--initial-branch=main", work.to_str().unwrap()]);
    std::fs::write(work.join(FILE), CONTENT).expect("write the test file");
    git(&work, &["add", FILE]);
    git(&work, &["-c", "user.name=Fake", "-c", "user.email=fake@example.com", "commit", "--quiet", "-m", "one"]);
    git(&work, &["push", "--quiet", repo.to_str().unwrap(), "main"]);
    git(&work, &["rev-parse", "HEAD"])
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
