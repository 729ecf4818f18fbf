//! Workload Identity Federation (`external_account` files): read the subject token from a file, a URL or
//! an executable (only with `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`), exchange it at Google's STS for
//! a federated access token, then have IAM Credentials mint the ID token of the service account named in
//! `service_account_impersonation_url`, authorized by that federated token.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::adc::{CredentialSource, ExternalAccount, impersonation_target};
use super::{AccessToken, CLOUD_PLATFORM_SCOPE, iam};
use crate::error::{Error, Result, clean};
use crate::http::Retry;
use crate::log;
use crate::secret::Secret;
use crate::session::Session;
use crate::source::Credentials;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const DEFAULT_EXECUTABLE_TIMEOUT: Duration = Duration::from_secs(30);

/// An ID token for `audience` of the service account the federated identity may act as.
pub fn id_token(
    session: &Session,
    path: &std::path::Path,
    account: &ExternalAccount,
    audience: &str,
) -> Result<Secret<String>> {
    let url = account.service_account_impersonation_url.as_deref().ok_or_else(|| {
        Error::config(
            format!("the external_account file {} has no service_account_impersonation_url, and a federated identity cannot mint ID tokens for IAP by itself", path.display()),
            "recreate it with 'gcloud iam workload-identity-pools create-cred-config ... --service-account=EMAIL' and grant the federated principal roles/iam.workloadIdentityUser on that service account",
        )
    })?;
    let target = impersonation_target(url)
        .map_err(|problem| Error::config(problem, "fix service_account_impersonation_url in the file"))?;
    let credentials = Credentials::File {
        path: path.to_path_buf(),
        file: Box::new(super::adc::CredentialFile::ExternalAccount(Box::new(account.clone()))),
    };
    let federated = session.access_token(&credentials)?;
    iam::generate_id_token(session, &federated, &target, &[], audience)
}

/// The federated access token: subject token, then the STS exchange.
pub fn access_token(session: &Session, account: &ExternalAccount) -> Result<AccessToken> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: Secret<String>,
        expires_in: Option<i64>,
    }
    let subject = subject_token(session, account)?;
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("audience", account.audience.as_str()),
        ("scope", CLOUD_PLATFORM_SCOPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("subject_token_type", account.subject_token_type.as_str()),
        ("subject_token", subject.expose().as_str()),
    ];
    crate::http::check_url(&account.token_url)?;
    let answer: Answer = session.http()?.post_form(&account.token_url, &form, Retry::Allowed)?.json().map_err(|e| match e {
        Error::Provider { url, status, detail, .. } if (400..500).contains(&status) => Error::Provider {
            url,
            status,
            detail,
            hint: "Google's STS refused the subject token: check the workload identity pool's provider (issuer, audience, attribute condition) and the token's audience and expiry".into(),
        },
        other => other,
    })?;
    Ok(AccessToken { token: answer.access_token, expires_at: session.now() + answer.expires_in.unwrap_or(3600) })
}

fn subject_token(session: &Session, account: &ExternalAccount) -> Result<Secret<String>> {
    let source = &account.credential_source;
    let context = |e: Error| e.context("could not read the subject token of the external_account file");
    if let Some(path) = &source.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| context(Error::io(format!("could not read {}", path.display()), e)))?;
        return extract(source, &text).map_err(context);
    }
    if let Some(url) = &source.url {
        let headers: Vec<(&str, &str)> = source.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let response = session.http()?.get_allowing_link_local(url, &headers).map_err(context)?;
        if !(200..300).contains(&response.status) {
            return Err(context(response.into_error()));
        }
        return extract(source, &response.body).map_err(context);
    }
    if let Some(executable) = &source.executable {
        return run_executable(session, account, executable).map_err(context);
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

fn run_executable(
    session: &Session,
    account: &ExternalAccount,
    executable: &super::adc::ExecutableSource,
) -> Result<Secret<String>> {
    if !session.settings().adc.allow_executables {
        return Err(Error::config(
            "the external_account file runs an executable for its subject token, which is off by default",
            "set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 to allow it",
        ));
    }
    if let Some(output_file) = &executable.output_file
        && let Ok(text) = std::fs::read_to_string(output_file)
        && let Ok(response) = serde_json::from_str::<ExecutableResponse>(&text)
        && response.success
        && response.expiration_time.is_some_and(|exp| exp > session.now())
        && let Ok(token) = executable_token(response, session.now())
    {
        log::debug(format_args!("subject token from the executable's output file {}", output_file.display()));
        return Ok(token);
    }
    let mut words = executable.command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| Error::config("credential_source.executable.command is empty", "set the command"))?;
    let timeout = executable.timeout_millis.map(Duration::from_millis).unwrap_or(DEFAULT_EXECUTABLE_TIMEOUT);
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
    let failed = |why: String| {
        Error::config(
            format!("the subject-token executable '{}' failed: {why}", clean(program, 100)),
            "run it by hand to see why",
        )
    };
    let mut child = command.spawn().map_err(|e| failed(e.to_string()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.by_ref().take(1 << 20).read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| failed(e.to_string()))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("no answer within {} ms (timeout_millis)", timeout.as_millis())));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(format!("it exited with {status}")));
    }
    let response: ExecutableResponse =
        serde_json::from_str(&text).map_err(|_| failed("its output is not the JSON response format".into()))?;
    executable_token(response, session.now()).map_err(failed)
}

fn executable_token(response: ExecutableResponse, now: i64) -> std::result::Result<Secret<String>, String> {
    if response.version != Some(1) {
        return Err("its response has no \"version\": 1".into());
    }
    if !response.success {
        return Err(format!(
            "it reported {}: {}",
            clean(response.code.as_deref().unwrap_or("an error"), 60),
            clean(response.message.as_deref().unwrap_or(""), 200)
        ));
    }
    if response.expiration_time.is_some_and(|exp| exp <= now) {
        return Err("its token has already expired".into());
    }
    let token = match response.token_type.as_deref() {
        Some("urn:ietf:params:oauth:token-type:saml2") => response.saml_response,
        _ => response.id_token,
    };
    token.ok_or_else(|| "its response carries no token".into())
}
