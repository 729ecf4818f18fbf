//! `iap-token proxy` against the fake IAP over HTTPS (a CA of the test's own, `--ca-file`): what the app
//! receives, who may use the proxy (Host, Origin, Sec-Fetch-Site), framing that could smuggle a request,
//! large bodies both ways in bounded memory, a websocket, 64 clients at once, a token that expires or
//! that IAP stops accepting, an upstream that is down, SIGTERM, and never a token in `-vv` output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::fake_google::*;
use crate::iap_front::{IapConfig, IapFront, Pattern};
use crate::tls_front::TlsFront;

/// The fake IAP behind an HTTPS front, and the CA file that trusts it.
struct Service {
    iap: IapFront,
    tls: TlsFront,
    ca_file: PathBuf,
}

impl Service {
    fn start(h: &Harness) -> Service {
        let iap = IapFront::start(IapConfig::new(AUD, &h.google.auth_uri()));
        let tls = TlsFront::relaying_bytes(iap.addr());
        let ca_file = h.write("service-ca.pem", &tls.ca_pem);
        Service { iap, tls, ca_file }
    }
}

/// A running `iap-token proxy`: its URL, and its stderr as it comes.
struct Proxy {
    child: Child,
    url: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(h: &Harness, service: &Service, extra: &[&str]) -> Proxy {
        let key = h.key_file();
        let mut args = vec![
            "proxy",
            "--url",
            service_url(service),
            "--ca-file",
            service.ca_file.to_str().unwrap(),
            "--service-account-key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Proxy::spawn(h, &args).unwrap_or_else(|stderr| panic!("the proxy did not start: {stderr}"))
    }

    /// Starts the binary with `args`; `Err(stderr)` when it exits before printing its URL.
    fn spawn(h: &Harness, args: &[&str]) -> Result<Proxy, String> {
        let mut child = h.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the proxy");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.is_empty() {
            let _ = child.wait();
            let _ = stderr_reader.join();
            return Err(stderr.lock().unwrap().clone());
        }
        let url = line.trim_end().to_string();
        let port = url.rsplit(':').next().unwrap().parse().expect("http://127.0.0.1:PORT");
        assert_eq!(url, format!("http://127.0.0.1:{port}"), "stdout is the URL and nothing else");
        Ok(Proxy { child, url, port, stderr, stderr_reader: Some(stderr_reader) })
    }

    /// What the proxy wrote to stderr so far (all of it once `terminate` returned).
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its stderr once it contains `needle`: the proxy's line reaches this process through a pipe
    /// and a reader thread, so it may arrive a moment after the answer it logs. Panics after 10 s.
    fn stderr_saying(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stderr = self.stderr();
            if stderr.contains(needle) {
                return stderr;
            }
            assert!(Instant::now() < deadline, "the proxy's stderr never said {needle:?}: {stderr}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The proxy's peak resident memory (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// SIGTERM; the exit code, and how long it took.
    fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.stderr_reader.take() {
                    reader.join().unwrap();
                }
                return (status.code(), started.elapsed());
            }
            assert!(Instant::now() < deadline, "the proxy did not exit within 15 s of SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn service_url(service: &Service) -> &'static str {
    Box::leak(service.tls.url().into_boxed_str())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().new_agent()
}

/// GET through the proxy: status and body as JSON (or the text in `"text"`).
fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut answer = request.call().unwrap();
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({"text": text})))
}

/// Sends `raw` on a new connection and reads the answer until the proxy closes it.
fn raw(proxy: &Proxy, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default()
}

#[test]
fn the_app_gets_the_request_with_the_credential_and_nothing_of_the_hop() {
    let h = Harness::new();
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &[]);
    let agent = agent();
    let (status, echo) = get(
        &agent,
        &format!("{}/app/echo?q=1&r=two", proxy.url),
        &[
            ("X-Custom", "kept"),
            ("Connection", "X-Drop-Me"),
            ("X-Drop-Me", "hop-by-hop"),
            ("Proxy-Authorization", "Bearer not-the-users"),
        ],
    );
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["path"], "/app/echo?q=1&r=two");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["principal"], SA_EMAIL);
    let headers = &echo["headers"];
    assert_eq!(headers["host"], format!("127.0.0.1:{}", service.tls.port), "Host is the service's");
    assert_eq!(headers["x-custom"], "kept");
    assert!(headers.get("x-drop-me").is_none(), "{headers}");
    let token = headers["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_string();
    let (_, claims) = verify_google_jwt(&token).expect("a Google-signed ID token");
    assert_eq!(claims["aud"], AUD, "the audience discovered from IAP's redirect");
    let seen = service.iap.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.proxy_authorization, None, "the client's Proxy-Authorization never passes");

    // A client with its own Authorization keeps it; the credential goes in Proxy-Authorization.
    let (status, echo) = get(&agent, &format!("{}/app/echo", proxy.url), &[("Authorization", "Basic dXNlcjpwdw==")]);
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["headers"]["authorization"], "Basic dXNlcjpwdw==");
    assert_eq!(
        service.iap.seen().last().unwrap().proxy_authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );

    // A body passes unchanged, and the same keep-alive connection serves the next request.
    let mut answer = agent.post(&format!("{}/app/echo", proxy.url)).send("a body, with bytes: \u{e9}").unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let echo: Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!((echo["method"].as_str(), echo["body"].as_str()), (Some("POST"), Some("a body, with bytes: \u{e9}")));
    // A chunked request body too.
    let (status, answer) = raw(
        &proxy,
        format!(
            "PUT /app/echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            proxy.port
        )
        .as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(body_of(&answer)).unwrap()["body"], "hello world");
    // An HTTP/1.0 client gets a chunked answer as bare data, delimited by the connection's end.
    let mut stream = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let request = format!("GET /app/download?bytes=70000&chunked HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", proxy.port);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && !head.contains("transfer-encoding"), "{head}");
    let expected: Vec<u8> = (0..70000u64).map(|i| (i % 251) as u8).collect();
    assert!(answer[split + 4..] == expected[..], "{} bytes of body", answer.len() - split - 4);
    // The app's own 401 comes back as it is, without a retry.
    let before = service.iap.seen().len();
    let (status, _) = get(&agent, &format!("{}/app/401", proxy.url), &[]);
    assert_eq!(status, 401);
    assert_eq!(service.iap.seen().len(), before + 1, "no retry for the app's own 401");
    // One token for all of it: fetched before listening.
    assert_eq!(h.google.count(Endpoint::Token), 1);
}

#[test]
fn only_local_requests_of_its_own_origin_get_the_credential() {
    let h = Harness::new();
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &["--allow-origin", "http://localhost:3000"]);
    let request = |host: &str, extra: &str| {
        raw(&proxy, format!("GET /app/echo HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").as_bytes())
    };
    let own = format!("127.0.0.1:{}", proxy.port);
    for host in [own.clone(), format!("localhost:{}", proxy.port), format!("[::1]:{}", proxy.port)] {
        assert_eq!(request(&host, "").0, 200, "{host}");
    }
    let before = service.iap.seen().len();
    // DNS rebinding: a name that resolves here arrives as that name.
    let (status, answer) = request(&format!("attacker.example:{}", proxy.port), "");
    assert_eq!(status, 403);
    assert_eq!(
        body_of(&answer),
        format!(
            "iap-token proxy: Host 'attacker.example:{}' is not this proxy's address: use http://127.0.0.1:{} (requests for other names are refused against DNS rebinding)\n",
            proxy.port, proxy.port
        )
    );
    // A web page of another origin, or any cross-site fetch.
    let (status, answer) = request(&own, "Origin: https://evil.example\r\n");
    assert_eq!(status, 403);
    assert_eq!(
        body_of(&answer),
        "iap-token proxy: a web page of https://evil.example may not use this proxy (it would act as you): start the proxy with --allow-origin https://evil.example if you trust it\n"
    );
    assert_eq!(request(&own, "Sec-Fetch-Site: cross-site\r\n").0, 403);
    // A page on another local port is same-site, and its GETs (images, scripts) send no Origin.
    assert_eq!(request(&own, "Sec-Fetch-Site: same-site\r\n").0, 403);
    assert_eq!(request(&own, "Origin: null\r\n").0, 403);
    assert_eq!(service.iap.seen().len(), before, "nothing refused reached the service");
    // Its own origin, and the one allowed.
    assert_eq!(request(&own, &format!("Origin: http://{own}\r\nSec-Fetch-Site: same-origin\r\n")).0, 200);
    assert_eq!(request(&own, "Origin: http://localhost:3000\r\nSec-Fetch-Site: cross-site\r\n").0, 200);
    proxy.stderr_saying("refused GET /app/echo: Host 'attacker.example");
}

#[test]
fn ambiguous_framing_oversized_heads_and_junk_are_refused_and_the_proxy_stays_up() {
    let h = Harness::new();
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &[]);
    let host = format!("Host: 127.0.0.1:{}\r\n", proxy.port);
    let before = service.iap.seen().len();
    for (smuggle, why) in [
        ("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "Content-Length beside Transfer-Encoding"),
        ("Content-Length: 4\r\nContent-Length: 40\r\n", "conflicting or invalid Content-Length"),
        ("Transfer-Encoding: gzip, chunked\r\n", "a Transfer-Encoding other than chunked"),
    ] {
        let (status, answer) = raw(
            &proxy,
            format!("POST /app/echo HTTP/1.1\r\n{host}{smuggle}\r\n0\r\n\r\nGET /app/smuggled HTTP/1.1\r\n{host}\r\n")
                .as_bytes(),
        );
        assert_eq!(status, 400, "{smuggle:?}: {answer}");
        assert_eq!(body_of(&answer), format!("iap-token proxy: refused: {why} (ambiguous framing)\n"));
    }
    let (status, _) =
        raw(&proxy, format!("GET /app/echo HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n", "a".repeat(70 * 1024)).as_bytes());
    assert_eq!(status, 431);
    let (status, answer) = raw(&proxy, b"GET /app/echo HTTP/1.1\r\nBad Header : x\r\n\r\n");
    assert_eq!(status, 400, "{answer}");
    let (status, _) = raw(&proxy, format!("GET http://elsewhere.example/ HTTP/1.1\r\n{host}\r\n").as_bytes());
    assert_eq!(status, 400, "not a forward proxy");
    assert_eq!(service.iap.seen().len(), before, "none of it reached the service");
    assert!(service.iap.seen().iter().all(|s| !s.path.contains("smuggled")));
    let (status, _) = get(&agent(), &format!("{}/app/echo", proxy.url), &[]);
    assert_eq!(status, 200, "still serving");
}

/// Uploads and downloads of `size` bytes through the proxy, checked byte for byte.
fn stream_both_ways(proxy: &Proxy, size: u64) {
    // Up: streamed from a generator with a Content-Length.
    let mut stream = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let head = format!(
        "PUT /app/upload HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {size}\r\nExpect: 100-continue\r\n\r\n",
        proxy.port
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    reader.read_line(&mut line).unwrap();
    let mut expected_crc = 0u32;
    let mut pattern = Pattern { position: 0, size };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = pattern.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        expected_crc = crc32c::crc32c_append(expected_crc, &buf[..n]);
        stream.write_all(&buf[..n]).unwrap();
    }
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("a length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((answer["bytes"].as_u64(), answer["crc32c"].as_u64()), (Some(size), Some(u64::from(expected_crc))));

    // Down: with a Content-Length, then chunked.
    for chunked in ["", "&chunked"] {
        let mut answer = agent().get(&format!("{}/app/download?bytes={size}{chunked}", proxy.url)).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let mut reader = answer.body_mut().with_config().limit(u64::MAX).reader();
        let (mut got, mut crc) = (0u64, 0u32);
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            got += n as u64;
        }
        assert_eq!((got, crc), (size, expected_crc), "download{chunked}");
    }
}

#[test]
fn large_bodies_stream_both_ways_in_bounded_memory() {
    let h = Harness::new();
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &[]);
    let size: u64 = std::env::var("IAP_TOKEN_TEST_PROXY_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(256 << 20);
    let started = Instant::now();
    stream_both_ways(&proxy, size);
    let peak = proxy.peak_rss_kib();
    eprintln!("{} MiB up and twice down in {:?}; the proxy's peak RSS {peak} KiB", size >> 20, started.elapsed());
    assert!(peak < 50 * 1024, "peak RSS {peak} KiB, over 50 MiB");
}

#[test]
fn a_websocket_is_tunnelled_both_ways() {
    let h = Harness::new();
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &[]);
    let stream = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (mut socket, response) = tungstenite::client::client(format!("ws://127.0.0.1:{}/app/ws", proxy.port), stream)
        .expect("the websocket handshake");
    assert_eq!(response.status().as_u16(), 101);
    socket.send(tungstenite::Message::text("hello through IAP")).unwrap();
    assert_eq!(socket.read().unwrap().into_text().unwrap().as_str(), "hello through IAP");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    socket.send(tungstenite::Message::binary(big.clone())).unwrap();
    assert_eq!(socket.read().unwrap().into_data().to_vec(), big);
    for i in 0..20 {
        socket.send(tungstenite::Message::text(format!("message {i}"))).unwrap();
    }
    for i in 0..20 {
        assert_eq!(socket.read().unwrap().into_text().unwrap().as_str(), format!("message {i}"));
    }
    socket.close(None).unwrap();
    let upgrade = service.iap.seen().into_iter().find(|s| s.path == "/app/ws").expect("the upgrade reached IAP");
    assert!(upgrade.authorization.is_some_and(|a| a.starts_with("Bearer ")), "with the credential");
}

#[test]
fn sixty_four_clients_at_once_share_one_token() {
    let h = Harness::new();
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &[]);
    let url = proxy.url.clone();
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let url = url.clone();
            thread::spawn(move || {
                let agent = agent();
                (0..3).map(|j| get(&agent, &format!("{url}/app/echo?client={i}&n={j}"), &[]).0).collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), [200, 200, 200]);
    }
    assert_eq!(h.google.count(Endpoint::Token), 1, "one token for 192 requests");
    let peak = proxy.peak_rss_kib();
    assert!(peak < 50 * 1024, "peak RSS {peak} KiB with 64 connections");
    // Over --max-connections: 503 at once, not a hang.
    drop(proxy);
    let proxy = Proxy::start(&h, &service, &["--max-connections", "2"]);
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", proxy.port)).unwrap()).collect();
    thread::sleep(Duration::from_millis(300));
    let (status, answer) =
        raw(&proxy, format!("GET /app/echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", proxy.port).as_bytes());
    assert_eq!(status, 503, "{answer}");
    assert_eq!(body_of(&answer), "iap-token proxy: 2 connections are being served already (--max-connections)\n");
    drop(held);
}

#[test]
fn an_expiring_token_is_renewed_and_an_iap_refusal_retries_a_get_once() {
    let h = Harness::new();
    h.google.set_id_token_lifetime(4);
    let service = Service::start(&h);
    let proxy = Proxy::start(&h, &service, &[]);
    let agent = agent();
    let token_of = |echo: &Value| echo["headers"]["authorization"].as_str().unwrap().to_string();
    let (_, first) = get(&agent, &format!("{}/app/echo", proxy.url), &[]);
    // A 4 s token is served for 2 s (half its life): after that the proxy fetches a new one (of an hour,
    // so that nothing renews it on its own below).
    thread::sleep(Duration::from_millis(2500));
    h.google.set_id_token_lifetime(3600);
    let (status, second) = get(&agent, &format!("{}/app/echo", proxy.url), &[]);
    assert_eq!(status, 200);
    assert_ne!(token_of(&first), token_of(&second), "renewed before it expired");
    assert_eq!(h.google.count(Endpoint::Token), 2);

    // IAP stops accepting tokens issued so far: a GET is retried once with a new token.
    let cutoff = now() + 1;
    service.iap.reconfigure(|c| c.reject_issued_before = Some(cutoff));
    while now() < cutoff {
        thread::sleep(Duration::from_millis(50));
    }
    let refused_before = service.iap.seen().iter().filter(|s| s.status == 401).count();
    let (status, third) = get(&agent, &format!("{}/app/echo", proxy.url), &[]);
    assert_eq!(status, 200, "{third}");
    assert_eq!(service.iap.seen().iter().filter(|s| s.status == 401).count(), refused_before + 1);
    assert_eq!(h.google.count(Endpoint::Token), 3);
    // A POST is not repeated: it gets IAP's 401, and the next request has a new token.
    let cutoff = now() + 1;
    service.iap.reconfigure(|c| c.reject_issued_before = Some(cutoff));
    while now() < cutoff {
        thread::sleep(Duration::from_millis(50));
    }
    let mut answer = agent.post(&format!("{}/app/echo", proxy.url)).send("once").unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.body_mut().read_to_string().unwrap().contains("Error code 13"));
    let (status, _) = get(&agent, &format!("{}/app/echo", proxy.url), &[]);
    assert_eq!(status, 200);
    assert_eq!(h.google.count(Endpoint::Token), 4);
}

#[test]
fn an_upstream_that_is_down_is_a_502_in_one_line() {
    let h = Harness::new();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let key = h.key_file();
    let url = format!("https://127.0.0.1:{port}");
    let proxy =
        Proxy::spawn(&h, &["proxy", "--url", &url, "--audience", AUD, "--service-account-key", key.to_str().unwrap()])
            .unwrap();
    let (status, answer) = raw(&proxy, format!("GET /x HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", proxy.port).as_bytes());
    assert_eq!(status, 502);
    let body = body_of(&answer);
    assert!(body.starts_with(&format!("iap-token proxy: could not reach 127.0.0.1:{port}: ")), "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    proxy.stderr_saying("502: could not reach");
}

#[test]
fn sigterm_lets_a_download_in_flight_finish_and_exits_0() {
    let h = Harness::new();
    let service = Service::start(&h);
    let mut proxy = Proxy::start(&h, &service, &["-vv"]);
    // An idle keep-alive connection, and a download in flight.
    let idle = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let size = 32u64 << 20;
    let mut answer = agent().get(&format!("{}/app/download?bytes={size}", proxy.url)).call().unwrap();
    let mut reader = answer.body_mut().with_config().limit(u64::MAX).reader();
    let mut buf = vec![0u8; 64 * 1024];
    reader.read_exact(&mut buf).unwrap();
    let (sender, done) = std::sync::mpsc::channel();
    let pid = proxy.pid();
    thread::spawn(move || {
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        sender.send(()).unwrap();
    });
    done.recv().unwrap();
    let mut got = buf.len() as u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    assert_eq!(got, size, "the download in flight finished");
    let (code, took) = proxy.terminate();
    assert_eq!(code, Some(0), "{}", proxy.stderr());
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(idle);
    // No token in -vv output.
    let stderr = proxy.stderr();
    let token = service.iap.seen().iter().find_map(|s| s.authorization.clone()).unwrap();
    let token = token.strip_prefix("Bearer ").unwrap();
    assert!(!stderr.contains(token) && !stderr.contains(token.rsplit('.').next().unwrap()), "{stderr}");
    assert!(stderr.contains("GET /app/download answered in"), "{stderr}");
}

#[test]
fn bad_options_are_usage_errors_and_a_taken_port_says_so() {
    let h = Harness::new();
    let key = h.key_file();
    let key = key.to_str().unwrap();
    let line = h
        .run(&["proxy", "--url", "https://flyte.example.com", "--listen", "0.0.0.0:0", "--service-account-key", key])
        .failure(2);
    assert_eq!(
        line,
        "iap-token: error: --listen 0.0.0.0:0 is not a loopback address: everyone who can reach it would act as you; add --allow-remote if that is meant; see 'iap-token --help'"
    );
    let line = h.run(&["proxy", "--audience", AUD, "--service-account-key", key]).failure(2);
    assert!(line.starts_with("iap-token: error: proxy needs --url"), "{line}");
    let line = h
        .run(&[
            "proxy",
            "--url",
            "https://flyte.example.com",
            "--allow-origin",
            "evil.example",
            "--service-account-key",
            key,
        ])
        .failure(2);
    assert!(line.contains("--allow-origin 'evil.example' is not an origin"), "{line}");
    // A port in use: exit 1 naming it, after the token was had.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let run = h.run(&[
        "proxy",
        "--url",
        "https://flyte.example.com",
        "--audience",
        AUD,
        "--listen",
        &listen,
        "--service-account-key",
        key,
    ]);
    let line = run.failure(1);
    assert!(line.starts_with(&format!("iap-token: error: could not listen on {listen}: ")), "{line}");
    assert_eq!(h.google.requests().iter().filter(|r| r.endpoint == Endpoint::Token).count(), 1);
}
