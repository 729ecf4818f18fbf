//! The git credential-helper protocol (git-credential(1)): the attributes git sends on stdin, and the
//! lines we answer with a Bearer credential (`capability[]=authtype`, `authtype`, `credential`,
//! `ephemeral`, `password_expiry_utc`). Unknown attributes are kept but ignored; unknown actions are
//! ignored, as the protocol asks.

use std::io::BufRead;

/// What git sent: `key=value` lines up to a blank line or end of input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub capabilities: Vec<String>,
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
}

impl Request {
    pub fn supports_authtype(&self) -> bool {
        self.capabilities.iter().any(|c| c == "authtype")
    }

    /// Reads at most [`MAX_INPUT`] bytes of attributes, up to a blank line or the end of input.
    pub fn read(input: impl BufRead) -> Request {
        let mut request = Request::default();
        let mut limited = input.take(MAX_INPUT);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match limited.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // git sends UTF-8; anything else ends the input, like a blank line.
            let Ok(line) = std::str::from_utf8(&raw) else { break };
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            match key {
                "capability[]" => request.capabilities.push(value.to_string()),
                "protocol" => request.protocol = Some(value.to_string()),
                "host" => request.host = Some(value.to_string()),
                "path" => request.path = Some(value.to_string()),
                _ => {}
            }
        }
        request
    }
}

/// The most git's attributes may take; git sends a few hundred bytes.
pub const MAX_INPUT: u64 = 64 * 1024;

/// The answer to `get` for a Bearer token.
pub fn bearer_answer(token: &str, expires_at: i64) -> String {
    format!(
        "capability[]=authtype\nauthtype=Bearer\ncredential={token}\nephemeral=1\npassword_expiry_utc={expires_at}\n"
    )
}

/// The answer to `capability`.
pub const CAPABILITY_ANSWER: &str = "version 0\ncapability authtype\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_attributes_until_blank_line() {
        let input = b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com\nwwwauth[]=Bearer\n\nhost=ignored\n";
        let request = Request::read(&input[..]);
        assert!(request.supports_authtype());
        assert_eq!(request.host.as_deref(), Some("git.example.com"));
        assert_eq!(request.capabilities, vec!["authtype", "state"]);
        assert!(!Request::read(&b"protocol=https\n"[..]).supports_authtype());
        let crlf = Request::read(&b"capability[]=authtype\r\nhost=h\r\n\r\n"[..]);
        assert!(crlf.supports_authtype());
        assert_eq!(crlf.host.as_deref(), Some("h"));
    }

    #[test]
    fn never_reads_more_than_the_limit() {
        let mut input = std::io::Cursor::new(vec![b'a'; 1 << 20]);
        Request::read(&mut input);
        assert_eq!(input.position(), MAX_INPUT);
        let mut lines = std::io::Cursor::new(b"t4\r\n".repeat(100_000));
        Request::read(&mut lines);
        assert_eq!(lines.position(), MAX_INPUT);
    }

    #[test]
    fn bearer_answer_exactly() {
        assert_eq!(
            bearer_answer("t", 1700000000),
            "capability[]=authtype\nauthtype=Bearer\ncredential=t\nephemeral=1\npassword_expiry_utc=1700000000\n"
        );
    }
}
