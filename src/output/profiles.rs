//! The report of `profiles`: every profile of the config files with its URL, audience (set, discovered,
//! or unknown), the source it would use, and whether it can serve a token now; as text, or as JSON
//! (`schemas/profiles.schema.json`). Never a secret.

use serde::Serialize;

use crate::error::clean;

#[derive(Debug, Serialize)]
pub struct ProfilesReport {
    pub profiles: Vec<ProfileLine>,
}

#[derive(Debug, Serialize)]
pub struct ProfileLine {
    pub name: String,
    pub url: Option<String>,
    pub audience: Option<String>,
    /// `configured`, `discovered`, or null when unknown yet.
    pub audience_from: Option<&'static str>,
    pub source: Option<&'static str>,
    pub ready: bool,
    /// Why not ready, with what to do; null when ready.
    pub reason: Option<String>,
}

pub fn text(report: &ProfilesReport) -> String {
    if report.profiles.is_empty() {
        return "no profiles (see 'iap-token setup --url URL')\n".into();
    }
    let mut text = String::new();
    for p in &report.profiles {
        let audience = match (&p.audience, p.audience_from) {
            (Some(audience), Some(from)) => format!("{} ({from})", clean(audience, 120)),
            _ => "discovered on first use".into(),
        };
        let ready = match &p.reason {
            None => "ready".to_string(),
            Some(reason) => format!("not ready: {}", clean(reason, 300)),
        };
        text.push_str(&format!(
            "{}: url {} audience {} source {} {ready}\n",
            clean(&p.name, 60),
            clean(p.url.as_deref().unwrap_or("-"), 200),
            audience,
            p.source.unwrap_or("-"),
        ));
    }
    text
}
