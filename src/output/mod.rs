//! The only code that writes stdout: a credential as a bare token, a Kubernetes ExecCredential, an
//! HTTP header line, JSON, or git credential-helper lines; and the reports of `status`. Every byte on
//! stdout is composed here, from plain values. Everything else the tool says goes to stderr or the
//! terminal.

pub mod doctor;
pub mod git;
pub mod profiles;
pub mod setup;
pub mod status;

use std::io::Write;

use serde::Serialize;

use crate::config::Format;
use crate::credential::Credential;
use crate::error::{Error, Result};

#[derive(Serialize)]
struct ExecCredential<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    status: ExecStatus<'a>,
}

#[derive(Serialize)]
struct ExecStatus<'a> {
    token: &'a str,
    #[serde(rename = "expirationTimestamp")]
    expiration_timestamp: String,
}

#[derive(Serialize)]
struct JsonCredential<'a> {
    token: &'a str,
    expires_at: String,
    audience: &'a str,
    principal: Option<&'a str>,
    source: &'static str,
    url: Option<&'a str>,
    token_type: &'static str,
}

/// The exact text `format` prints for `credential`, newline included.
pub fn render(format: &Format, credential: &Credential) -> String {
    let token = credential.token.expose().as_str();
    match format {
        Format::Token => format!("{token}\n"),
        Format::Header(name) => format!("{name}: Bearer {token}\n"),
        Format::ExecCredential(version) => {
            let body = ExecCredential {
                api_version: version.as_str(),
                kind: "ExecCredential",
                status: ExecStatus { token, expiration_timestamp: rfc3339(credential.expires_at) },
            };
            json_line(&body)
        }
        Format::Json => json_line(&JsonCredential {
            token,
            expires_at: rfc3339(credential.expires_at),
            audience: &credential.audience,
            principal: credential.principal.as_deref(),
            source: credential.source.as_str(),
            url: credential.url.as_deref(),
            token_type: credential.token_type.as_str(),
        }),
    }
}

/// Prints a credential on stdout.
pub fn write_credential(format: &Format, credential: &Credential) -> Result<()> {
    write_stdout(&render(format, credential))
}

/// Prints a JSON document (status) on stdout.
pub fn write_json<T: Serialize>(value: &T) -> Result<()> {
    write_stdout(&json_line(value))
}

/// Prints text that is not a credential (status in text form, git protocol lines, completions) on stdout.
pub fn write_text(text: &str) -> Result<()> {
    write_stdout(text)
}

/// Prints the completion script for `shell`.
pub fn write_completions(shell: clap_complete::Shell, command: &mut clap::Command) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, command, "iap-token", &mut script);
    write_stdout(&String::from_utf8_lossy(&script))
}

/// Writes and flushes; a closed pipe (`| head`) is not a failure: the reader has what it wanted.
fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("could not write to stdout", e)),
    }
}

fn json_line<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string(value).expect("output types always serialize");
    text.push('\n');
    text
}

/// Unix seconds as RFC 3339 UTC (`2026-01-02T15:04:05Z`).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExecApiVersion;
    use crate::credential::SourceKind;
    use crate::secret::Secret;

    fn credential() -> Credential {
        Credential {
            token: Secret::new("h.p.s".into()),
            expires_at: 1_767_366_245,
            audience: "aud".into(),
            principal: Some("a@b".into()),
            source: SourceKind::Metadata,
            url: None,
            token_type: crate::credential::TokenType::IdToken,
        }
    }

    #[test]
    fn each_format_exactly() {
        let c = credential();
        assert_eq!(render(&Format::Token, &c), "h.p.s\n");
        assert_eq!(render(&Format::Header("Proxy-Authorization".into()), &c), "Proxy-Authorization: Bearer h.p.s\n");
        assert_eq!(
            render(&Format::ExecCredential(ExecApiVersion::V1beta1), &c),
            "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"h.p.s\",\"expirationTimestamp\":\"2026-01-02T15:04:05Z\"}}\n"
        );
        assert_eq!(
            render(&Format::Json, &c),
            "{\"token\":\"h.p.s\",\"expires_at\":\"2026-01-02T15:04:05Z\",\"audience\":\"aud\",\"principal\":\"a@b\",\"source\":\"metadata\",\"url\":null,\"token_type\":\"id-token\"}\n"
        );
    }
}
