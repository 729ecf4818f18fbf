//! HTTP/1.1 messages for the proxy (RFC 9112), parsed by httparse: a message head read within a size
//! limit, how its body is delimited (refusing the ambiguous framings request smuggling relies on), a
//! body of any size copied through a fixed buffer with its framing kept, and a head written again with
//! the hop-by-hop headers dropped.

use std::io::{self, BufRead, Read, Write};

/// The largest header block accepted (request line or status line included).
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// The longest chunk-size or trailer line of a chunked body.
const MAX_LINE: u64 = 8 * 1024;

/// Headers as received: names as sent, values as bytes.
#[derive(Debug, Default, Clone)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    fn from_parsed(parsed: &[httparse::Header<'_>]) -> Headers {
        Headers(parsed.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect())
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every comma-separated element of every `name` header, trimmed and lowercased.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| {
                String::from_utf8_lossy(v).split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The end-to-end headers: without the hop-by-hop ones, those `Connection` names, framing and `Host`.
    pub fn end_to_end(&self) -> impl Iterator<Item = &(String, Vec<u8>)> {
        let named = self.tokens("connection");
        self.0.iter().filter(move |(name, _)| {
            let lower = name.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&lower.as_str()) && !named.contains(&lower)
        })
    }
}

/// Headers that describe one connection (RFC 9110 7.6.1), plus the framing and routing ones the proxy
/// sets itself, and the client's `Proxy-Authorization`, which never passes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "expect",
];

#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Headers,
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
}

/// Why a message head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed before sending a byte: a normal end of a keep-alive connection.
    Closed,
    TooLarge,
    Malformed(String),
    Io(io::Error),
}

impl From<io::Error> for HeadError {
    fn from(error: io::Error) -> HeadError {
        HeadError::Io(error)
    }
}

/// Reads one head from `reader`, consuming exactly its bytes; `parse` tries the bytes so far, and
/// `before_read` runs before each read (to bound the whole head in time).
fn read_head<R: BufRead, T>(
    reader: &mut R,
    before_read: &mut dyn FnMut() -> io::Result<()>,
    mut parse: impl FnMut(&[u8]) -> Result<Option<(usize, T)>, HeadError>,
) -> Result<T, HeadError> {
    let mut head: Vec<u8> = Vec::new();
    loop {
        before_read()?;
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(if head.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Malformed("the connection closed inside the header block".into())
            });
        }
        let before = head.len();
        let take = available.len().min(MAX_HEAD + 1 - before);
        head.extend_from_slice(&available[..take]);
        match parse(&head)? {
            Some((length, parsed)) => {
                reader.consume(length - before);
                return Ok(parsed);
            }
            None if head.len() > MAX_HEAD => return Err(HeadError::TooLarge),
            None => reader.consume(take),
        }
    }
}

fn too_many(error: httparse::Error) -> HeadError {
    match error {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        other => HeadError::Malformed(other.to_string()),
    }
}

pub fn read_request<R: BufRead>(
    reader: &mut R,
    before_read: &mut dyn FnMut() -> io::Result<()>,
) -> Result<RequestHead, HeadError> {
    read_head(reader, before_read, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(bytes).map_err(too_many)? {
            httparse::Status::Partial => Ok(None),
            httparse::Status::Complete(length) => Ok(Some((
                length,
                RequestHead {
                    method: request.method.unwrap_or_default().to_string(),
                    target: request.path.unwrap_or_default().to_string(),
                    minor_version: request.version.unwrap_or(1),
                    headers: Headers::from_parsed(request.headers),
                },
            ))),
        }
    })
}

pub fn read_response<R: BufRead>(reader: &mut R) -> Result<ResponseHead, HeadError> {
    read_head(reader, &mut || Ok(()), |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(bytes).map_err(too_many)? {
            httparse::Status::Partial => Ok(None),
            httparse::Status::Complete(length) => Ok(Some((
                length,
                ResponseHead {
                    status: response.code.unwrap_or_default(),
                    reason: response.reason.unwrap_or_default().to_string(),
                    headers: Headers::from_parsed(response.headers),
                },
            ))),
        }
    })
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    /// `Transfer-Encoding: chunked`: passed on chunk by chunk, each size line written anew.
    Chunked,
    /// A response read until the upstream closes.
    UntilClose,
}

/// The body of a request, or why its framing is refused (a 400): `Content-Length` beside
/// `Transfer-Encoding`, any coding but a lone `chunked` (the proxy passes no other), or conflicting
/// lengths.
pub fn request_body(headers: &Headers) -> Result<Body, String> {
    match framing(headers)? {
        Some(body) => Ok(body),
        None => Ok(Body::None),
    }
}

/// The body of a response to `method` with `status` (RFC 9112 6.3).
pub fn response_body(method: &str, head: &ResponseHead) -> Result<Body, String> {
    // Methods are case-sensitive: `head` is not HEAD, and its answer has a body.
    if method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Body::None);
    }
    Ok(framing(&head.headers)?.unwrap_or(Body::UntilClose))
}

fn framing(headers: &Headers) -> Result<Option<Body>, String> {
    let codings = headers.tokens("transfer-encoding");
    let lengths = headers.tokens("content-length");
    if headers.has("transfer-encoding") {
        if headers.has("content-length") {
            return Err("Content-Length beside Transfer-Encoding".into());
        }
        if codings != ["chunked"] {
            return Err("a Transfer-Encoding other than chunked".into());
        }
        return Ok(Some(Body::Chunked));
    }
    if headers.has("content-length") {
        let valid = !lengths.is_empty() && lengths.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()));
        if !valid || lengths.iter().any(|l| *l != lengths[0]) {
            return Err("conflicting or invalid Content-Length".into());
        }
        let length = lengths[0].parse::<u64>().map_err(|_| "an invalid Content-Length".to_string())?;
        return Ok(Some(if length == 0 { Body::None } else { Body::Length(length) }));
    }
    Ok(None)
}

/// Copies a body delimited as `body` from `reader` to `writer`, framing included; the bytes copied.
pub fn copy_body<R: BufRead, W: Write>(reader: &mut R, writer: &mut W, body: Body) -> io::Result<u64> {
    match body {
        Body::None => Ok(0),
        Body::Length(length) => {
            let copied = io::copy(&mut reader.take(length), writer)?;
            if copied < length {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended before its Content-Length"));
            }
            Ok(copied)
        }
        Body::UntilClose => io::copy(reader, writer),
        Body::Chunked => copy_chunked(reader, writer, true),
    }
}

/// As [`copy_body`], but a chunked body arrives as its bare data (for an HTTP/1.0 client, which knows
/// no chunks: the connection's end then ends the body).
pub fn copy_body_dechunked<R: BufRead, W: Write>(reader: &mut R, writer: &mut W, body: Body) -> io::Result<u64> {
    match body {
        Body::Chunked => copy_chunked(reader, writer, false),
        other => copy_body(reader, writer, other),
    }
}

/// A chunked body: each chunk's size line checked strictly (hex digits, then only an extension) and
/// written anew without extensions, the data copied, trailer fields read and dropped; with `framed`
/// false only the data is written.
fn copy_chunked<R: BufRead, W: Write>(reader: &mut R, writer: &mut W, framed: bool) -> io::Result<u64> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunked body: {what}"));
    let mut copied = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line)?;
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let rest = &line[digits..];
        if digits == 0 || digits > 16 || !(rest == b"\r\n" || rest.starts_with(b";") && rest.ends_with(b"\r\n")) {
            return Err(invalid("a chunk size line"));
        }
        let size = std::str::from_utf8(&line[..digits])
            .ok()
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(|| invalid("a chunk size"))?;
        if framed {
            writer.write_all(format!("{size:x}\r\n").as_bytes())?;
        }
        if size == 0 {
            break;
        }
        let data = io::copy(&mut reader.take(size), writer)?;
        if data < size {
            return Err(invalid("a chunk shorter than its size"));
        }
        copied += data;
        let mut end = [0u8; 2];
        reader.read_exact(&mut end)?;
        if &end != b"\r\n" {
            return Err(invalid("a chunk not followed by CRLF"));
        }
        if framed {
            writer.write_all(&end)?;
        }
    }
    // Trailer fields (each a valid field line, then dropped), then the empty line.
    loop {
        line.clear();
        reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line)?;
        if line == b"\r\n" {
            if framed {
                writer.write_all(b"\r\n")?;
            }
            return Ok(copied);
        }
        let mut headers = [httparse::EMPTY_HEADER; 1];
        if !line.ends_with(b"\r\n") {
            return Err(invalid("a trailer line"));
        }
        line.extend_from_slice(b"\r\n");
        match httparse::parse_headers(&line, &mut headers) {
            Ok(httparse::Status::Complete((_, [field]))) if !field.name.is_empty() => {}
            _ => return Err(invalid("a trailer line")),
        }
    }
}

/// A head in wire form: the start line, then `headers`, then the blank line.
pub fn head_bytes<'a>(start_line: &str, headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The framing headers for `body`, as the proxy sends them on.
pub fn framing_header(body: Body) -> Option<(&'static str, Vec<u8>)> {
    match body {
        Body::Length(length) => Some(("Content-Length", length.to_string().into_bytes())),
        Body::Chunked => Some(("Transfer-Encoding", b"chunked".to_vec())),
        Body::None | Body::UntilClose => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Result<RequestHead, HeadError> {
        read_request(&mut io::BufReader::new(text.as_bytes()), &mut || Ok(()))
    }

    fn body_of(text: &str) -> Result<Body, String> {
        request_body(&request(text).unwrap().headers)
    }

    #[test]
    fn heads_are_read_exactly_and_bounded() {
        let text = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-One: 1\r\n\r\nrest";
        let mut reader = io::BufReader::with_capacity(7, text.as_bytes());
        let head = read_request(&mut reader, &mut || Ok(())).unwrap();
        assert_eq!((head.method.as_str(), head.target.as_str(), head.minor_version), ("GET", "/a?b=1", 1));
        assert_eq!(head.headers.get("x-one"), Some(&b"1"[..]));
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "rest", "exactly the head was consumed");
        assert!(matches!(request(""), Err(HeadError::Closed)));
        assert!(matches!(request("GET / HTTP/1.1\r\nHost"), Err(HeadError::Malformed(_))));
        assert!(matches!(request("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"), Err(HeadError::Malformed(_))));
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(request(&huge), Err(HeadError::TooLarge)));
        let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert!(matches!(request(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Err(HeadError::TooLarge)));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        assert_eq!(body_of("GET / HTTP/1.1\r\n\r\n"), Ok(Body::None));
        assert_eq!(body_of("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), Ok(Body::Length(5)));
        assert_eq!(body_of("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), Ok(Body::Length(5)));
        assert_eq!(body_of("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"), Ok(Body::Chunked));
        for smuggled in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
        ] {
            assert!(body_of(smuggled).is_err(), "{smuggled:?}");
        }
    }

    #[test]
    fn chunked_bodies_pass_as_received_and_stop_at_their_end() {
        let body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let mut reader = io::BufReader::new(body.as_bytes());
        let mut out = Vec::new();
        assert_eq!(copy_body(&mut reader, &mut out, Body::Chunked).unwrap(), 9);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
            "sizes anew, trailers dropped"
        );
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
        let mut bare = Vec::new();
        copy_body_dechunked(&mut io::BufReader::new(body.as_bytes()), &mut bare, Body::Chunked).unwrap();
        assert_eq!(bare, b"Wikipedia");
        for bad in [
            "zz\r\n",
            "4\r\nWik",
            "4\r\nWikiXX0\r\n\r\n",
            "\r\n\r\n",
            ";ext\r\n\r\n",
            "5 \r\nhello\r\n0\r\n\r\n",
            "5\nhello\r\n0\r\n\r\n",
            "0\r\n\n",
            "0\r\nnot a field\r\n\r\n",
            "11111111111111111\r\n",
        ] {
            assert!(
                copy_body(&mut io::BufReader::new(bad.as_bytes()), &mut Vec::new(), Body::Chunked).is_err(),
                "{bad:?}"
            );
        }
        assert!(copy_body(&mut io::BufReader::new(&b"abc"[..]), &mut Vec::new(), Body::Length(5)).is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let head = request(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nProxy-Authorization: Bearer t\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        let kept: Vec<&str> = head.headers.end_to_end().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["Accept"]);
    }
}
