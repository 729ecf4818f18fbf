//! The loopback listener of the browser sign-in: bound to 127.0.0.1 only, it waits for the one redirect
//! that carries our `state`, answers the browser with a short page, and gives up at the deadline. Stray
//! requests (favicon, other paths, requests without parameters) get a 404 or 400 and the wait goes on; a
//! client that connects and sends nothing is dropped after a short read timeout. An answer with a wrong
//! `state` is refused and reported, and the wait goes on; an `error=` answer with our state ends the
//! sign-in with a clear message.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, clean};
use crate::log;
use crate::secret::Secret;

/// How long one connection may take to send its request line.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_REQUEST_HEAD: usize = 16 * 1024;

pub struct Listener {
    listener: TcpListener,
    port: u16,
}

/// What the callback carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Callback {
    Code {
        code: String,
        state: String,
    },
    Error {
        error: String,
        description: Option<String>,
        state: String,
    },
    /// Not a sign-in answer (no `code` or `error`): answered 400 and ignored.
    Stray,
}

impl Listener {
    /// Binds 127.0.0.1:`port` (0 = any free port).
    pub fn bind(port: u16) -> Result<Listener> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).map_err(|e| {
            if e.kind() == ErrorKind::AddrInUse {
                Error::config(
                    format!("could not listen on 127.0.0.1:{port} for the sign-in: the port is in use"),
                    "choose another --listen-port, or 0 for any free port",
                )
            } else {
                Error::io(format!("could not listen on 127.0.0.1:{port} for the sign-in"), e)
            }
        })?;
        let port = listener.local_addr().map_err(|e| Error::io("could not read the listener's port", e))?.port();
        listener.set_nonblocking(true).map_err(|e| Error::io("could not configure the listener", e))?;
        Ok(Listener { listener, port })
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Waits for the redirect carrying `state`, until `deadline` or until `still_waiting` says that the
    /// answer will not come (the browser failed).
    pub fn wait_for_code(
        &self,
        state: &Secret<String>,
        deadline: Instant,
        mut still_waiting: impl FnMut() -> Result<()>,
    ) -> Result<Secret<String>> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::SignIn("the browser sign-in timed out (see --login-timeout)".into()));
            }
            still_waiting()?;
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    log::debug(format_args!("sign-in callback connection from {peer}"));
                    if let Some(code) = handle(stream, state, deadline)? {
                        return Ok(code);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                    std::thread::sleep(Duration::from_millis(25).min(deadline - now));
                }
                Err(e) => return Err(Error::io("the sign-in listener failed", e)),
            }
        }
    }
}

/// Serves one connection; `Some(code)` when it was the awaited callback.
fn handle(mut stream: TcpStream, state: &Secret<String>, deadline: Instant) -> Result<Option<Secret<String>>> {
    let _ = stream.set_nonblocking(false);
    let timeout =
        REQUEST_READ_TIMEOUT.min(deadline.saturating_duration_since(Instant::now())).max(Duration::from_millis(10));
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let Some(target) = read_request_target(&mut stream) else {
        return Ok(None);
    };
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    if path != "/" {
        respond(&mut stream, "404 Not Found", "Not found.");
        return Ok(None);
    }
    match parse_callback(query) {
        Callback::Stray => {
            respond(&mut stream, "400 Bad Request", "This address waits for a Google sign-in answer.");
            Ok(None)
        }
        Callback::Code { state: got, .. } | Callback::Error { state: got, .. } if got != *state.expose() => {
            // Not ours (a stale tab, or a forged request): refuse it and keep waiting, so that no other
            // local process can end the sign-in.
            respond(&mut stream, "400 Bad Request", "This answer does not belong to the sign-in in progress.");
            log::notice(format_args!(
                "ignored a sign-in answer with a wrong state (a stale browser tab, or a forged request); still waiting"
            ));
            Ok(None)
        }
        Callback::Error { error, description, .. } => {
            respond(&mut stream, "200 OK", "Sign-in was not completed. You can close this tab.");
            let description = description.map(|d| format!(": {}", clean(&d, 200))).unwrap_or_default();
            let what =
                if error == "access_denied" { "the sign-in was denied in the browser" } else { "the sign-in failed" };
            Err(Error::SignIn(format!("{what} ({}{description})", clean(&error, 60))))
        }
        Callback::Code { code, .. } => {
            respond(&mut stream, "200 OK", "Signed in. You can close this tab and return to the terminal.");
            Ok(Some(Secret::new(code)))
        }
    }
}

/// Reads the request head and returns the request target of a `GET`; `None` for anything else.
fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_REQUEST_HEAD {
            return None;
        }
    }
    let target = request_target(&head);
    if target.is_none() && !head.is_empty() {
        respond(stream, "405 Method Not Allowed", "Method not allowed.");
    }
    target
}

/// The target of a `GET` request line (`GET /?code=... HTTP/1.1`); `None` for anything else.
pub fn request_target(head: &[u8]) -> Option<String> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(version), None) if version.starts_with("HTTP/") && target.starts_with('/') => {
            Some(target.to_string())
        }
        _ => None,
    }
}

/// Reads `code`, `state`, `error` from a callback query string (or a pasted redirect URL's query).
pub fn parse_callback(query: &str) -> Callback {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    match (code, error) {
        (_, Some(error)) => Callback::Error { error, description, state: state.unwrap_or_default() },
        (Some(code), None) if !code.is_empty() => Callback::Code { code, state: state.unwrap_or_default() },
        _ => Callback::Stray,
    }
}

fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>iap-token</title></head>\
<body style=\"font-family:sans-serif;margin:3em\"><h2>iap-token</h2><p>{message}</p></body></html>"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\
Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callbacks() {
        assert_eq!(
            parse_callback("code=4%2Fabc&state=s1&scope=email"),
            Callback::Code { code: "4/abc".into(), state: "s1".into() }
        );
        assert_eq!(
            parse_callback("error=access_denied&state=s1"),
            Callback::Error { error: "access_denied".into(), description: None, state: "s1".into() }
        );
        assert_eq!(parse_callback(""), Callback::Stray);
        assert_eq!(parse_callback("code=&state=x"), Callback::Stray);
        assert_eq!(parse_callback("%%%=&&&"), Callback::Stray);
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            request_target(b"GET /?code=a&state=b HTTP/1.1\r\nHost: x\r\n\r\n").as_deref(),
            Some("/?code=a&state=b")
        );
        assert_eq!(request_target(b"POST / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET http://evil/ HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET / HTTP/1.1 extra\r\n"), None);
        assert_eq!(request_target(b"\xff\xfe\n"), None);
        assert_eq!(request_target(b"no newline"), None);
    }

    #[test]
    fn binds_loopback_only_and_reports_port_in_use() {
        let first = Listener::bind(0).unwrap();
        assert!(first.redirect_uri().starts_with("http://127.0.0.1:"));
        assert_eq!(first.listener.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
        let err = Listener::bind(first.port).err().unwrap();
        assert!(err.to_string().contains("the port is in use"), "{err}");
    }
}
