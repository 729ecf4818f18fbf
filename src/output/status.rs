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
    pub source: &'static str,
    pub signed_in: Option<bool>,
    pub entries: Vec<StatusEntry>,
}

/// One cached ID token.
#[derive(Debug, Serialize)]
pub struct StatusEntry {
    pub source: String,
    pub audience: String,
    pub principal: Option<String>,
    pub expires_at: String,
    pub fresh: bool,
}

/// The report as text, one fact a line.
pub fn text(report: &Status) -> String {
    let mut text = String::new();
    text.push_str(&format!("source: {}\n", report.source));
    match report.signed_in {
        Some(true) => text.push_str("signed in: yes (a refresh token is stored)\n"),
        Some(false) => text.push_str("signed in: no (run 'iap-token login')\n"),
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
    text.push_str(if report.ready { "ready: yes\n" } else { "ready: no, a sign-in is needed\n" });
    text
}
