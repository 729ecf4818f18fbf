//! One client connection of the proxy, on its own thread: requests read one after another
//! (keep-alive), each admitted or refused ([`super::guard`]), forwarded with the credential over the
//! connection's own upstream connection (opened on first use, kept while both sides keep theirs), the
//! answer streamed back; an IAP 401 renews the token and retries a `GET`/`HEAD` once; a `101` turns the
//! connection into a tunnel both ways. Every failure of the proxy itself is a short plain-text answer
//! (400, 403, 408, 431, 502) and never carries a token.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::credential::Held;
use super::guard::Admission;
use super::upstream::{Connector, Upstream};
use super::wire::{self, Body, HeadError, RequestHead, ResponseHead};
use crate::error::clean;
use crate::log;
use crate::secret::Secret;

/// How long a keep-alive connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(60);
/// How long a client has to send a request head once it started one.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a tunnel may carry nothing either way.
const TUNNEL_IDLE: Duration = Duration::from_secs(15 * 60);
/// How often a waiting connection looks at the stop flag.
const POLL_STEP: Duration = Duration::from_millis(200);
const BUFFER: usize = 16 * 1024;

/// What every connection shares.
pub struct Shared {
    pub held: Held,
    pub connector: Connector,
    pub admission: Admission,
    pub stopping: &'static AtomicBool,
}

enum Next {
    KeepAlive,
    Close,
}

/// Serves `client` until it closes, idles out, or the proxy stops.
pub fn serve(client: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let _ = client.set_write_timeout(Some(IDLE));
    let Ok(read_half) = client.try_clone() else { return };
    let mut reader = BufReader::with_capacity(BUFFER, read_half);
    let mut upstream: Option<BufReader<Upstream>> = None;
    loop {
        if reader.buffer().is_empty() && !wait_readable(client.as_raw_fd(), IDLE, shared.stopping) {
            return;
        }
        match exchange(&mut reader, &client, &mut upstream, shared) {
            Next::KeepAlive if !shared.stopping.load(Ordering::SeqCst) => continue,
            _ => return,
        }
    }
}

/// One request and its answer.
fn exchange(
    reader: &mut BufReader<TcpStream>,
    client: &TcpStream,
    upstream: &mut Option<BufReader<Upstream>>,
    shared: &Shared,
) -> Next {
    let started = Instant::now();
    // The whole head within HEAD_TIMEOUT, however it is spread over reads.
    let deadline = started + HEAD_TIMEOUT;
    let mut before_read = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        client.set_read_timeout(Some(left))
    };
    let head = match wire::read_request(reader, &mut before_read) {
        Ok(head) => head,
        Err(HeadError::Closed) => return Next::Close,
        Err(HeadError::TooLarge) => return refuse(client, 431, "the request's header block is over 64 KiB"),
        Err(HeadError::Malformed(why)) => return refuse(client, 400, &format!("a malformed request: {why}")),
        Err(HeadError::Io(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            return refuse(client, 408, "the request head did not arrive in time");
        }
        Err(HeadError::Io(_)) => return Next::Close,
    };
    let _ = client.set_read_timeout(Some(IDLE));
    let path = head.target.split('?').next().unwrap_or_default().to_string();
    if !head.target.starts_with('/') {
        return refuse(client, 400, "only paths are forwarded (GET /path): this is not a forward proxy");
    }
    let admitted = shared.admission.check(
        head.headers.get("host"),
        head.headers.get("origin"),
        head.headers.get("sec-fetch-site"),
    );
    if let Err(why) = admitted {
        log::notice(format_args!("refused {} {}: {why}", clean(&head.method, 20), clean(&path, 200)));
        return refuse(client, 403, &why);
    }
    let body = match wire::request_body(&head.headers) {
        Ok(body) => body,
        Err(why) => return refuse(client, 400, &format!("refused: {why} (ambiguous framing)")),
    };
    let connection = head.headers.tokens("connection");
    let client_closes = connection.iter().any(|t| t == "close")
        || (head.minor_version == 0 && !connection.iter().any(|t| t == "keep-alive"));
    let upgrade = head.headers.get("upgrade").filter(|_| connection.iter().any(|t| t == "upgrade")).map(<[u8]>::to_vec);
    if body != Body::None && head.headers.tokens("expect").iter().any(|t| t == "100-continue") {
        // Answered here: the body then follows at once instead of after the client's timeout.
        let mut out = client;
        if out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return Next::Close;
        }
    }
    let retry_allowed = body == Body::None && matches!(head.method.as_str(), "GET" | "HEAD");
    let idempotent = matches!(head.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE");
    let mut renewed = false;
    let mut reconnected = false;
    loop {
        let token = match shared.held.token() {
            Ok(token) => token,
            Err(e) => return fail(client, &format!("could not get a token: {}", e.render_plain())),
        };
        // A kept connection the service closed (or wrote to) while idle is not used again.
        if upstream.as_ref().is_some_and(|up| {
            !up.buffer().is_empty() || poll_readable(&[up.get_ref().fd()], Duration::ZERO).map_or(true, |r| r[0])
        }) {
            *upstream = None;
        }
        let reused = upstream.is_some();
        if upstream.is_none() {
            match shared.connector.connect() {
                Ok(connection) => *upstream = Some(BufReader::with_capacity(BUFFER, connection)),
                Err(e) => {
                    return fail(client, &format!("could not reach {}: {e}", shared.connector.target().authority));
                }
            }
        }
        let Some(up) = upstream.as_mut() else { return Next::Close };
        let request = request_bytes(&head, body, upgrade.as_deref(), &token, shared);
        let sent = up
            .get_mut()
            .write_all(&request)
            .and_then(|()| wire::copy_body(reader, up.get_mut(), body))
            .and_then(|_| up.get_mut().flush());
        drop(request);
        let answer = sent.map_err(HeadError::Io).and_then(|()| read_final_head(up, client, head.minor_version));
        let response = match answer {
            Ok(response) => response,
            // A kept connection the service had closed meanwhile: once more on a new one, for a request
            // that may be repeated (RFC 9110 9.2.2) and had no body.
            Err(_) if reused && !reconnected && idempotent && body == Body::None => {
                *upstream = None;
                reconnected = true;
                continue;
            }
            Err(e) => {
                *upstream = None;
                let why = match e {
                    HeadError::Io(e) => e.to_string(),
                    HeadError::Closed => "it closed the connection without answering".into(),
                    HeadError::TooLarge => "its answer's header block is over 64 KiB".into(),
                    HeadError::Malformed(why) => why,
                };
                return fail(client, &format!("no answer from {}: {why}", shared.connector.target().authority));
            }
        };
        let by_iap = response.headers.get(crate::google::iap::IAP_GENERATED_HEADER) == Some(&b"true"[..]);
        if response.status == 401 && by_iap {
            shared.held.refused(&token);
            if retry_allowed && !renewed {
                log::info(format_args!(
                    "IAP refused the token for {}: renewing it and retrying once",
                    clean(&path, 200)
                ));
                renewed = true;
                *upstream = None;
                continue;
            }
        }
        let next = if response.status == 101 {
            let Some(up) = upstream.take() else { return Next::Close };
            log::info(format_args!("{} {} -> 101: tunnel", clean(&head.method, 20), clean(&path, 200)));
            tunnel(reader, client, up, &response, shared.stopping);
            Next::Close
        } else {
            relay_response(&head, response, upstream, client, client_closes || shared.stopping.load(Ordering::SeqCst))
        };
        log::info(format_args!(
            "{} {} answered in {} ms",
            clean(&head.method, 20),
            clean(&path, 200),
            started.elapsed().as_millis()
        ));
        return next;
    }
}

/// The request as sent upstream: `Host` and the path prefix of the service, the end-to-end headers,
/// the credential, and the body's framing.
fn request_bytes(
    head: &RequestHead,
    body: Body,
    upgrade: Option<&[u8]>,
    token: &Secret<String>,
    shared: &Shared,
) -> Vec<u8> {
    let target = shared.connector.target();
    let start = format!("{} {} HTTP/1.1", head.method, target.path_for(&head.target));
    let credential = format!("Bearer {}", token.expose());
    // IAP reads Proxy-Authorization first and passes Authorization on to the app: the client keeps its own.
    let credential_header = if head.headers.has("authorization") { "Proxy-Authorization" } else { "Authorization" };
    let framing = wire::framing_header(body);
    let mut headers: Vec<(&str, &[u8])> = vec![("Host", target.authority.as_bytes())];
    headers.extend(head.headers.end_to_end().map(|(name, value)| (name.as_str(), value.as_slice())));
    headers.push((credential_header, credential.as_bytes()));
    if let Some((name, value)) = &framing {
        headers.push((name, value));
    }
    if let Some(protocol) = upgrade {
        headers.push(("Connection", b"Upgrade"));
        headers.push(("Upgrade", protocol));
    }
    wire::head_bytes(&start, headers)
}

/// The first non-informational answer; `1xx` other than `100` and `101` are passed to an HTTP/1.1
/// client (an HTTP/1.0 one knows none).
fn read_final_head(
    up: &mut BufReader<Upstream>,
    client: &TcpStream,
    client_minor_version: u8,
) -> Result<ResponseHead, HeadError> {
    loop {
        let response = wire::read_response(up)?;
        if response.status >= 200 || response.status == 101 {
            return Ok(response);
        }
        if response.status != 100 && client_minor_version >= 1 {
            let start = format!("HTTP/1.1 {} {}", response.status, response.reason);
            let headers = response.headers.end_to_end().map(|(n, v)| (n.as_str(), v.as_slice()));
            let mut out = client;
            out.write_all(&wire::head_bytes(&start, headers))?;
        }
    }
}

/// Passes a final answer and its body to the client; whether the connection goes on.
fn relay_response(
    request: &RequestHead,
    response: ResponseHead,
    upstream: &mut Option<BufReader<Upstream>>,
    client: &TcpStream,
    client_closes: bool,
) -> Next {
    let body = match wire::response_body(&request.method, &response) {
        Ok(body) => body,
        Err(why) => {
            *upstream = None;
            return fail(client, &format!("the service's answer has {why}"));
        }
    };
    // An HTTP/1.0 client knows no chunks: it gets the bare data, delimited by the connection's end.
    let dechunk = request.minor_version == 0 && body == Body::Chunked;
    let close = client_closes || body == Body::UntilClose || dechunk;
    let start = format!("HTTP/1.1 {} {}", response.status, response.reason);
    let framing = if dechunk { None } else { wire::framing_header(body) };
    let mut headers: Vec<(&str, &[u8])> =
        response.headers.end_to_end().map(|(name, value)| (name.as_str(), value.as_slice())).collect();
    match &framing {
        Some((name, value)) => headers.push((name, value)),
        None if dechunk => {}
        // HEAD and 304 answers tell the length of what a GET would get.
        None => headers.extend(response.headers.get("content-length").map(|v| ("Content-Length", v))),
    }
    if close {
        headers.push(("Connection", b"close"));
    }
    let Some(up) = upstream.as_mut() else { return Next::Close };
    let mut out = client;
    let relayed = out.write_all(&wire::head_bytes(&start, headers)).and_then(|()| {
        if dechunk { wire::copy_body_dechunked(up, &mut out, body) } else { wire::copy_body(up, &mut out, body) }
    });
    let service_closes = response.headers.tokens("connection").iter().any(|t| t == "close");
    if relayed.is_err() || service_closes || body == Body::UntilClose || !up.buffer().is_empty() {
        *upstream = None;
    }
    match relayed {
        Ok(_) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// After a `101`: the answer to the client, then bytes both ways until either side closes, the tunnel
/// idles out, or the proxy stops.
fn tunnel(
    reader: &mut BufReader<TcpStream>,
    client: &TcpStream,
    up: BufReader<Upstream>,
    response: &ResponseHead,
    stopping: &AtomicBool,
) {
    let start = format!("HTTP/1.1 101 {}", response.reason);
    let mut headers: Vec<(&str, &[u8])> =
        response.headers.end_to_end().map(|(name, value)| (name.as_str(), value.as_slice())).collect();
    headers.push(("Connection", b"Upgrade"));
    if let Some(protocol) = response.headers.get("upgrade") {
        headers.push(("Upgrade", protocol));
    }
    let mut out = client;
    let from_service = up.buffer().to_vec();
    let mut up = up.into_inner();
    let from_client = reader.buffer().to_vec();
    reader.consume(from_client.len());
    let started = out
        .write_all(&wire::head_bytes(&start, headers))
        .and_then(|()| out.write_all(&from_service))
        .and_then(|()| up.write_all(&from_client))
        .and_then(|()| up.flush());
    if started.is_err() {
        return;
    }
    let mut buf = vec![0u8; BUFFER];
    let mut client_open = true;
    let mut quiet = Duration::ZERO;
    let client_fd = client.as_raw_fd();
    loop {
        loop {
            match up.read_buffered(&mut buf) {
                Ok(Some(0)) | Err(_) => return,
                Ok(Some(n)) => {
                    if out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
            }
        }
        if stopping.load(Ordering::SeqCst) || quiet >= TUNNEL_IDLE {
            return;
        }
        let fds = [up.fd(), client_fd];
        let Ok(ready) = poll_readable(&fds[..if client_open { 2 } else { 1 }], POLL_STEP) else { return };
        if !ready.iter().any(|r| *r) {
            quiet += POLL_STEP;
            continue;
        }
        quiet = Duration::ZERO;
        if ready[0] {
            match up.read_socket(&mut buf) {
                Ok(Some(0)) | Err(_) => {
                    let _ = client.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(Some(n)) => {
                    if out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
            }
        }
        if client_open && ready.get(1) == Some(&true) {
            match (&mut out).read(&mut buf) {
                Ok(0) | Err(_) => {
                    client_open = false;
                    up.shutdown_write();
                }
                Ok(n) => {
                    if up.write_all(&buf[..n]).and_then(|()| up.flush()).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A refusal of the proxy's own (never forwarded), then the connection closes: after the answer, what
/// the client is still sending is read (a bounded amount, briefly) so that the close does not reset the
/// connection before the client has read the answer.
fn refuse(client: &TcpStream, status: u16, why: &str) -> Next {
    answer(client, status, why);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(500);
    let (mut buf, mut drained) = ([0u8; 8192], 0usize);
    while drained < (1 << 20) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || client.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&mut &*client).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Next::Close
}

/// 502: the service, or the credential, failed.
fn fail(client: &TcpStream, why: &str) -> Next {
    log::notice(format_args!("502: {}", clean(why, 400)));
    answer(client, 502, why);
    Next::Close
}

/// A one-line plain-text answer with `Connection: close`.
pub fn answer(client: &TcpStream, status: u16, why: &str) {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!("iap-token proxy: {}\n", clean(why, 400));
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = client;
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Waits until `fd` has something to read; false when it stayed quiet for `idle` or the proxy stops.
pub fn wait_readable(fd: RawFd, idle: Duration, stopping: &AtomicBool) -> bool {
    let mut waited = Duration::ZERO;
    while waited < idle {
        if stopping.load(Ordering::SeqCst) {
            return false;
        }
        match poll_readable(&[fd], POLL_STEP) {
            Ok(ready) if ready[0] => return true,
            Ok(_) => waited += POLL_STEP,
            Err(_) => return false,
        }
    }
    false
}

/// `poll(2)` for input on `fds`: which are readable (or closed), after at most `timeout`.
pub fn poll_readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut polled: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `polled` is a valid, exclusively borrowed array of `polled.len()` pollfd structs.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(error);
    }
    Ok(polled.iter().map(|p| p.revents != 0).collect())
}
