//! `iap-token status`: what this configuration would be served from, without a network call; exit 0
//! when a token can be served without a browser, 3 when a sign-in is needed.

use std::process::ExitCode;

use crate::cache::file::Cache;
use crate::cache::{Entry, TokenKind};
use crate::cache_key;
use crate::clock::unix_now;
use crate::config::Settings;
use crate::error::{EXIT_SIGN_IN_REQUIRED, Result};
use crate::output::status::{Status, StatusEntry};
use crate::output::{self, rfc3339};
use crate::source::{self, Source};
use crate::store::TokenStore;

pub fn run(settings: &Settings, json: bool) -> Result<ExitCode> {
    let cache = Cache::new(settings.cache.dir.clone());
    let now = unix_now();
    let min_ttl = settings.cache.min_ttl;
    let describe = |entry: Entry| StatusEntry {
        fresh: entry.is_fresh(now, min_ttl),
        expires_at: rfc3339(entry.serve_until(min_ttl)),
        source: entry.source.map(|kind| kind.as_str()).unwrap_or_default().to_string(),
        audience: entry.audience,
        principal: entry.principal,
    };
    let source = source::resolve(settings)?;
    let signed_in = match &source {
        Source::User { client_id, account } => Some(
            TokenStore::open(settings.cache.state_dir.clone(), settings.cache.store)?
                .load(client_id, account.as_deref())?
                .is_some(),
        ),
        _ => None,
    };
    // With an audience: the one entry this configuration is served from. Without: the ID tokens cached
    // for this source kind (other sources' tokens say nothing about this configuration).
    let entries: Vec<StatusEntry> = match &settings.audience {
        Some(audience) => cache.read(&cache_key(&source, audience)).into_iter().map(describe).collect(),
        None => cache
            .entries()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| entry.kind == TokenKind::IdToken && entry.source == Some(source.kind()))
            .map(describe)
            .collect(),
    };
    // Only the user source ever needs a browser; the others mint tokens unattended.
    let ready = signed_in != Some(false) || (settings.audience.is_some() && entries.iter().any(|e| e.fresh));
    let report = Status { version: 1, ready, source: source.kind().as_str(), signed_in, entries };
    if json {
        output::write_json(&report)?;
    } else {
        output::write_text(&output::status::text(&report))?;
    }
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(EXIT_SIGN_IN_REQUIRED) })
}
