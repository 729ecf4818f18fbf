//! Workload Identity Federation (`external_account` files): read the subject token from a file, a URL or
//! an executable (only when the caller allows executables, as `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`
//! does), and exchange it at Google's STS for a federated access token. Minting the ID token with that
//! token (IAM Credentials) and caching it are the caller's business.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::adc::{CredentialSource, ExecutableSource, ExternalAccount, impersonation_target};
use super::{AccessToken, CLOUD_PLATFORM_SCOPE};
use crate::error::{Error, Result, clean};
use crate::http::{Http, Retry};
use crate::log;
use crate::secret::Secret;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const DEFAULT_EXECUTABLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The federated access token: the subject token exchanged at the file's `token_url`.
pub fn exchange(http: &Http, account: &ExternalAccount, subject: &Secret<String>, now: i64) -> Result<AccessToken> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: Secret<String>,
        expires_in: Option<i64>,
    }
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("audience", account.audience.as_str()),
        ("scope", CLOUD_PLATFORM_SCOPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("subject_token_type", account.subject_token_type.as_str()),
        ("subject_token", subject.expose().as_str()),
    ];
    crate::http::check_url(&account.token_url)?;
    let answer: Answer = http.post_form(&account.token_url, &form, Retry::Allowed)?.json().map_err(|e| {
        e.with_hint_for_status(|status| (400..500).contains(&status), || {
            "Google's STS refused the subject token: check the workload identity pool's provider (issuer, audience, attribute condition) and the token's audience and expiry".into()
        })
    })?;
    Ok(AccessToken { token: answer.access_token, expires_at: now + answer.expires_in.unwrap_or(3600) })
}

/// The subject token from the file's `credential_source`; an executable runs only when
/// `allow_executables` says the user opted in.
pub fn subject_token(
    http: &Http,
    account: &ExternalAccount,
    allow_executables: bool,
    now: i64,
) -> Result<Secret<String>> {
    let source = &account.credential_source;
    let context = |e: Error| e.context("could not read the subject token of the external_account file");
    if let Some(path) = &source.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| context(Error::io(format!("could not read {}", path.display()), e)))?;
        return extract(source, &text).map_err(context);
    }
    if let Some(url) = &source.url {
        let headers: Vec<(&str, &str)> = source.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let response = http.get_allowing_link_local(url, &headers).map_err(context)?;
        if !(200..300).contains(&response.status) {
            return Err(context(response.into_error()));
        }
        return extract(source, &response.body).map_err(context);
    }
    if let Some(executable) = &source.executable {
        if !allow_executables {
            return Err(Error::config(
                "the external_account file runs an executable for its subject token, which is off by default",
                "set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 to allow it",
            ));
        }
        return run_executable(account, executable, now).map_err(context);
    }
    if source.environment_id.is_some() {
        return Err(Error::config(
            "AWS credential sources (environment_id) are not supported",
            "use a file, URL or executable credential source (see docs/ci.md)",
        ));
    }
    Err(Error::config(
        "the external_account file's credential_source has no file, url or executable",
        "regenerate the file with gcloud",
    ))
}

/// The token from a file's or URL's content: the text itself, or one field of a JSON object.
fn extract(source: &CredentialSource, text: &str) -> Result<Secret<String>> {
    let token = match &source.format {
        Some(format) if format.kind == "json" => {
            let field = format.subject_token_field_name.as_deref().unwrap_or("access_token");
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|_| Error::config("the subject token source is not JSON", "check credential_source.format"))?;
            value[field].as_str().map(str::to_string).ok_or_else(|| {
                Error::config(
                    format!("the subject token JSON has no string field '{}'", clean(field, 60)),
                    "check credential_source.format.subject_token_field_name",
                )
            })?
        }
        _ => text.trim().to_string(),
    };
    if token.is_empty() {
        return Err(Error::config("the subject token is empty", "check that the CI job exposes its OIDC token"));
    }
    Ok(Secret::new(token))
}

#[derive(Deserialize)]
struct ExecutableResponse {
    version: Option<u32>,
    success: bool,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    id_token: Option<Secret<String>>,
    #[serde(default)]
    saml_response: Option<Secret<String>>,
    #[serde(default)]
    expiration_time: Option<i64>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn run_executable(account: &ExternalAccount, executable: &ExecutableSource, now: i64) -> Result<Secret<String>> {
    if let Some(token) = executable.output_file.as_deref().and_then(|file| cached_executable_token(file, now)) {
        return Ok(token);
    }
    let mut words = executable.command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| Error::config("credential_source.executable.command is empty", "set the command"))?;
    let mut command = Command::new(program);
    command
        .args(words)
        .env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &account.audience)
        .env("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", &account.subject_token_type)
        .env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = &account.service_account_impersonation_url
        && let Ok(email) = impersonation_target(url)
    {
        command.env("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", email);
    }
    if let Some(output_file) = &executable.output_file {
        command.env("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", output_file);
    }
    let timeout = executable.timeout_millis.map(Duration::from_millis).unwrap_or(DEFAULT_EXECUTABLE_TIMEOUT);
    let text = run_bounded(command, program, timeout)?;
    let response: ExecutableResponse = serde_json::from_str(&text)
        .map_err(|_| executable_failed(program, "its output is not the JSON response format"))?;
    executable_token(response, now, program)
}

fn executable_failed(program: &str, why: impl std::fmt::Display) -> Error {
    Error::config(
        format!("the subject-token executable '{}' failed: {why}", clean(program, 100)),
        "run it by hand to see why",
    )
}

/// A still valid token that an earlier run of the executable left in its `output_file`.
fn cached_executable_token(output_file: &std::path::Path, now: i64) -> Option<Secret<String>> {
    let text = std::fs::read_to_string(output_file).ok()?;
    let response = serde_json::from_str::<ExecutableResponse>(&text).ok()?;
    if !response.success || response.expiration_time.is_none_or(|exp| exp <= now) {
        return None;
    }
    let token = executable_token(response, now, "output_file").ok()?;
    log::debug(format_args!("subject token from the executable's output file {}", output_file.display()));
    Some(token)
}

/// Runs `command` (`program`, for messages) and returns its stdout (at most 1 MiB), killing it after
/// `timeout`.
fn run_bounded(mut command: Command, program: &str, timeout: Duration) -> Result<String> {
    let failed = |why: &dyn std::fmt::Display| executable_failed(program, why);
    let mut child = command.spawn().map_err(|e| failed(&e))?;
    let Some(mut stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed(&"its output could not be read"));
    };
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.by_ref().take(1 << 20).read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| failed(&e))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(&format_args!("no answer within {} ms (timeout_millis)", timeout.as_millis())));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(&format_args!("it exited with {status}")));
    }
    Ok(text)
}

fn executable_token(response: ExecutableResponse, now: i64, program: &str) -> Result<Secret<String>> {
    if response.version != Some(1) {
        return Err(executable_failed(program, "its response has no \"version\": 1"));
    }
    if !response.success {
        return Err(executable_failed(
            program,
            format_args!(
                "it reported {}: {}",
                clean(response.code.as_deref().unwrap_or("an error"), 60),
                clean(response.message.as_deref().unwrap_or(""), 200)
            ),
        ));
    }
    if response.expiration_time.is_some_and(|exp| exp <= now) {
        return Err(executable_failed(program, "its token has already expired"));
    }
    let token = match response.token_type.as_deref() {
        Some("urn:ietf:params:oauth:token-type:saml2") => response.saml_response,
        _ => response.id_token,
    };
    token.ok_or_else(|| executable_failed(program, "its response carries no token"))
}
