//! `iap-token setup --url URL [--profile NAME] [AUTH]`: discovers the audience (so a URL that is not
//! behind IAP fails here, not on first use), writes or updates the profile in the user config file (0600
//! in a 0700 directory, atomically; other profiles, keys and comments kept, with toml_edit), and prints
//! the snippets that use it. `--print WHAT` prints one snippet and writes nothing. Never a sign-in.

use std::process::ExitCode;

use crate::cache::file::{read_private_file, write_private_file};
use crate::config::SetupPlan;
use crate::error::{Error, Result, clean};
use crate::output::{self, setup};
use crate::{discovery, log, source};

pub fn run(plan: SetupPlan) -> Result<ExitCode> {
    let SetupPlan { settings, profile, file, keys, client_secret, print } = plan;
    let url = settings.url.clone().unwrap_or_default();
    if let Some(what) = print {
        output::write_text(&setup::snippet(what, &profile, &url))?;
        return Ok(ExitCode::SUCCESS);
    }
    if settings.audience.is_none() {
        let source = source::resolve(&settings)?;
        let audience = discovery::audience(&settings, &source, &url, None)?;
        log::notice(format_args!(
            "{} is behind IAP; its audience is {} (discovered on use, and again when IAP's client changes)",
            clean(&url, 200),
            clean(&audience, 100)
        ));
    }
    let existing = read_private_file(&file)
        .map_err(|e| Error::io(format!("could not read {}", file.display()), e))?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let mut document: toml_edit::DocumentMut = existing.parse().map_err(|e: toml_edit::TomlError| {
        Error::Usage(format!("{} is not valid TOML ({}); fix it first", file.display(), clean(&e.to_string(), 200)))
    })?;
    let profiles = document.entry("profile").or_insert_with(|| {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        toml_edit::Item::Table(table)
    });
    let Some(profiles) = profiles.as_table_mut() else {
        return Err(Error::Usage(format!("{}: 'profile' is not a table; fix it first", file.display())));
    };
    let table = profiles.entry(&profile).or_insert_with(toml_edit::table);
    let Some(table) = table.as_table_mut() else {
        return Err(Error::Usage(format!("{}: [profile.{profile}] is not a table; fix it first", file.display())));
    };
    for (key, value) in &keys {
        table.insert(key, toml_edit::value(value.as_str()));
    }
    if let Some(secret) = &client_secret {
        table.insert("client-secret", toml_edit::value(secret.expose().as_str()));
        log::notice(format_args!(
            "wrote the client secret as given: a desktop client's secret is not confidential, a web client's must never go there"
        ));
    }
    write_private_file(&file, document.to_string().as_bytes())?;
    log::notice(format_args!("wrote the profile '{}' to {}", clean(&profile, 60), file.display()));
    warn_about_old_git();
    output::write_text(&setup::all_snippets(&profile, &url))?;
    Ok(ExitCode::SUCCESS)
}

/// Bearer credentials from helpers need git 2.46: say so when the `git` on PATH is older.
fn warn_about_old_git() {
    let Ok(out) = std::process::Command::new("git").arg("--version").output() else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    let version: Vec<u32> =
        text.trim().trim_start_matches("git version ").split('.').take(2).filter_map(|n| n.parse().ok()).collect();
    if let [major, minor] = version[..]
        && (major, minor) < (2, 46)
    {
        log::notice(format_args!(
            "warning: git {major}.{minor} on PATH takes no Bearer credential from helpers: use git 2.46 or later, or the extraHeader form in docs/git.md"
        ));
    }
}
