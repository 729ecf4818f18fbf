//! `iap-token profiles`: every profile of the config files, with its URL, its audience (set, or as
//! discovered and cached), the source it would use and whether it can serve a token now (the same test as
//! `status`). A report command: exit 0 whatever the profiles' state; no token is minted.

use std::process::ExitCode;

use crate::cache::file::Cache;
use crate::config::ListedProfile;
use crate::error::Result;
use crate::output::profiles::{ProfileLine, ProfilesReport};
use crate::output::{self};
use crate::{source, url_cache_key};

use super::status;

pub fn run(profiles: Vec<ListedProfile>, json: bool) -> Result<ExitCode> {
    let report = ProfilesReport { profiles: profiles.into_iter().map(line).collect() };
    if json {
        output::write_json(&report)?;
    } else {
        output::write_text(&output::profiles::text(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn line(profile: ListedProfile) -> ProfileLine {
    let ListedProfile { name, url, audience, settings } = profile;
    let mut line =
        ProfileLine { name, url, audience: None, audience_from: None, source: None, ready: false, reason: None };
    let settings = match settings {
        Ok(settings) => settings,
        Err(reason) => {
            line.reason = Some(reason);
            return line;
        }
    };
    let source = match source::resolve(&settings) {
        Ok(source) => source,
        Err(e) => {
            line.reason = Some(e.render_plain());
            return line;
        }
    };
    line.source = Some(source.kind().as_str());
    if let Some(audience) = audience {
        line.audience = Some(audience);
        line.audience_from = Some("configured");
    } else if let Some(url) = &settings.url
        && let Some(entry) = Cache::new(settings.cache.dir.clone()).read(&url_cache_key(&source, url))
    {
        line.audience = Some(entry.audience);
        line.audience_from = Some("discovered");
    }
    match status::check(&settings) {
        Ok(report) => {
            line.ready = report.ready;
            line.reason = match (report.reason, report.sign_in_command) {
                (Some(reason), Some(command)) => Some(format!("{reason}: run '{command}'")),
                (reason, _) => reason,
            };
        }
        Err(e) => line.reason = Some(e.render_plain()),
    }
    line
}
