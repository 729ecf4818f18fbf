//! The error type of the library: what went wrong, the exit code it maps to, and the one hint that tells
//! the user what to do next. Errors render as a single line; text that came from a server is cleaned of
//! control characters and shortened before it is stored here, so nothing a server sends can move the
//! cursor or forge lines on the user's terminal.

use std::fmt;
use std::process::ExitCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit code of a usage error (a bad flag, a bad configuration file).
pub const EXIT_USAGE: u8 = 2;
/// The exit code when a sign-in is needed but may not run here.
pub const EXIT_SIGN_IN_REQUIRED: u8 = 3;

#[derive(Debug)]
pub enum Error {
    /// The command line or the environment asks for something impossible (exit 2).
    Usage(String),
    /// A credential file or setting exists but cannot be used; `fix` says how to repair it.
    Config { problem: String, fix: String },
    /// No answer from a server: connect error, timeout, TLS failure, dropped connection.
    Network { url: String, detail: String },
    /// A server answered with an error status or an unreadable body.
    Provider { url: String, status: u16, detail: String, hint: String },
    /// An ID token that must not be served: wrong audience, no expiry, expired, issued in the future.
    BadToken { problem: String, hint: String },
    /// The browser sign-in failed: denied, timed out, or the callback did not match.
    SignIn(String),
    /// A sign-in is needed but not allowed here (exit 3); `command` is what the user should run.
    SignInRequired { reason: String, command: String },
    /// A local file could not be read or written.
    Io { what: String, source: std::io::Error },
    /// What was being done when the inner error happened.
    Context { context: String, source: Box<Error> },
}

impl Error {
    pub fn config(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Config { problem: problem.into(), fix: fix.into() }
    }

    pub fn bad_token(problem: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::BadToken { problem: problem.into(), hint: hint.into() }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    /// Wraps the error with what was being attempted ("could not refresh the ID token").
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context { context: context.into(), source: Box::new(self) }
    }

    /// Gives an error answer whose status `applies` to a better hint than the generic one: the caller
    /// knows what such an answer means for its request (a 403 from IAM means a missing role).
    pub fn with_hint_for_status(self, applies: impl Fn(u16) -> bool, hint: impl FnOnce() -> String) -> Error {
        match self {
            Error::Provider { url, status, detail, .. } if applies(status) => {
                Error::Provider { url, status, detail, hint: hint() }
            }
            other => other,
        }
    }

    /// The innermost error, past every context.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            other => other,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    pub fn exit_status(&self) -> u8 {
        match self.root() {
            Error::Usage(_) => EXIT_USAGE,
            Error::SignInRequired { .. } => EXIT_SIGN_IN_REQUIRED,
            _ => 1,
        }
    }

    /// What the user should do next, in one clause.
    pub fn hint(&self) -> String {
        match self.root() {
            Error::Usage(_) => "see 'iap-token --help'".into(),
            Error::Config { fix, .. } => fix.clone(),
            Error::Network { .. } => "check the network, the proxy settings (HTTPS_PROXY, NO_PROXY) and --ca-file, then try again".into(),
            Error::Provider { hint, .. } => hint.clone(),
            Error::BadToken { hint, .. } => hint.clone(),
            Error::SignIn(_) => "try the sign-in again".into(),
            Error::SignInRequired { command, .. } => format!("run: {command}"),
            Error::Io { .. } => "check the permissions and free space of that directory, or choose another with --cache-dir / --state-dir".into(),
            Error::Context { .. } => unreachable!("root() never returns a context"),
        }
    }

    /// The whole error as the single line printed on stderr.
    pub fn render(&self) -> String {
        format!("iap-token: error: {}", self.render_plain())
    }

    /// The error and what to do about it, without the `iap-token: error:` prefix.
    pub fn render_plain(&self) -> String {
        format!("{self}; {}", self.hint())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::Config { problem, .. } => f.write_str(problem),
            Error::Network { url, detail } => write!(f, "no answer from {url}: {detail}"),
            Error::Provider { url, status, detail, .. } => {
                write!(f, "{url} answered HTTP {status}: {detail}")
            }
            Error::BadToken { problem, .. } => f.write_str(problem),
            Error::SignIn(problem) => f.write_str(problem),
            Error::SignInRequired { reason, .. } => f.write_str(reason),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Context { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

/// Makes text from outside (server answers, claims, file contents) safe to show on a terminal:
/// control characters become `?`, runs of white space one space, and the result is at most `max` chars.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_whitespace() {
            if last_space {
                continue;
            }
            ' '
        } else if c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            '?'
        } else {
            c
        };
        last_space = c == ' ';
        if out.chars().count() >= max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_terminal_escapes_and_newlines() {
        assert_eq!(clean("bad\x1b[31m red\r\nline", 100), "bad?[31m red line");
        assert_eq!(clean("abcdef", 3), "abc…");
    }

    #[test]
    fn render_is_one_line_with_context_and_hint() {
        let err = Error::Network { url: "https://x".into(), detail: "timed out".into() }
            .context("could not refresh the ID token");
        let line = err.render();
        assert!(!line.contains('\n'));
        assert!(line.starts_with(
            "iap-token: error: could not refresh the ID token: no answer from https://x: timed out; check the network"
        ));
        assert_eq!(err.exit_status(), 1);
    }
}
