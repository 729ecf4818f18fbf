//! The report of `status`: what this configuration would be served from, as text for people or as JSON
//! (`schemas/status.schema.json`). Never a token or secret: an entry shows its audience, principal and
//! expiry only.

use serde::Serialize;

use crate::error::clean;

/// What `status` found for one configuration.
#[derive(Debug, Serialize)]
pub struct Status {
    pub version: u32,
    pub ready: bool,
    /// Why not ready (null when ready).
    pub reason: Option<String>,
    /// The command that signs in, when a sign-in is what is missing.
    pub sign_in_command: Option<String>,
    pub source: &'static str,
    /// `id-token` or `signed-jwt`: what this configuration is served.
    pub token_type: &'static str,
    pub signed_in: Option<bool>,
    pub entries: Vec<StatusEntry>,
}

/// Whether a token can be served now without a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Only a sign-in is missing; `command` performs it.
    SignInNeeded {
        command: String,
    },
    /// Something else is missing or broken: the reason, with what to do.
    NotReady(String),
}

impl Status {
    pub fn new(
        source: &'static str,
        token_type: &'static str,
        signed_in: Option<bool>,
        entries: Vec<StatusEntry>,
        readiness: Readiness,
    ) -> Status {
        let (ready, reason, sign_in_command) = match readiness {
            Readiness::Ready => (true, None, None),
            Readiness::SignInNeeded { command } => (false, Some("a sign-in is needed".to_string()), Some(command)),
            Readiness::NotReady(reason) => (false, Some(reason), None),
        };
        Status { version: 1, ready, reason, sign_in_command, source, token_type, signed_in, entries }
    }
}

/// One cached token.
#[derive(Debug, Serialize)]
pub struct StatusEntry {
    pub source: String,
    pub token_type: &'static str,
    pub audience: String,
    pub principal: Option<String>,
    pub expires_at: String,
    pub fresh: bool,
}

/// The report as text, one fact a line.
pub fn text(report: &Status) -> String {
    let mut text = String::new();
    text.push_str(&format!("source: {}\n", report.source));
    text.push_str(&format!("token type: {}\n", report.token_type));
    match report.signed_in {
        Some(true) => text.push_str("signed in: yes (a refresh token is stored)\n"),
        Some(false) => text.push_str("signed in: no\n"),
        None => {}
    }
    if report.entries.is_empty() {
        text.push_str("cached tokens: none\n");
    }
    for entry in &report.entries {
        text.push_str(&format!(
            "cached token: audience {} principal {} {} {}\n",
            clean(&entry.audience, 120),
            clean(entry.principal.as_deref().unwrap_or("-"), 120),
            if entry.fresh { "valid until" } else { "stale since" },
            entry.expires_at
        ));
    }
    match (&report.reason, &report.sign_in_command) {
        (None, _) => text.push_str("ready: yes\n"),
        (Some(reason), Some(command)) => text.push_str(&format!("ready: no, {reason}: run '{command}'\n")),
        (Some(reason), None) => text.push_str(&format!("ready: no: {}\n", clean(reason, 1000))),
    }
    text
}
