//! `iap-token git-credential get|store|erase|capability`: git's credential-helper protocol. `get`
//! answers with a Bearer credential when git can take one (authtype), else explains on stderr and
//! prints nothing; `erase` drops the cached ID token (and a discovered audience); `store` and unknown
//! actions do nothing. With no option on the helper line, it answers only for URLs that a profile's
//! `url` matches, and stays silent (exit 0) for any other, so that the next helper in git's chain runs.

use std::io::BufReader;
use std::process::ExitCode;

use crate::cache::file::Cache;
use crate::config::{GitAction, GitTarget, ProcessEnv, Settings};
use crate::error::{Result, clean};
use crate::output::{self, git};
use crate::{cache_key, get_credential, log, source, url_cache_key};

pub fn run(target: GitTarget, action: &GitAction) -> Result<ExitCode> {
    let request = match action {
        GitAction::Capability => {
            output::write_text(git::CAPABILITY_ANSWER)?;
            return Ok(ExitCode::SUCCESS);
        }
        GitAction::Unknown(other) => {
            log::debug(format_args!("ignoring the unknown git credential action '{}'", clean(other, 40)));
            return Ok(ExitCode::SUCCESS);
        }
        GitAction::Get | GitAction::Erase | GitAction::Store => {
            git::Request::read(BufReader::new(std::io::stdin().lock()))
        }
    };
    if *action == GitAction::Store {
        return Ok(ExitCode::SUCCESS);
    }
    let settings = match target {
        GitTarget::Fixed(settings) => *settings,
        GitTarget::ByProfileUrl(by_url) => {
            let Some(url) = request_url(&request) else {
                log::info(format_args!("git sent no protocol and host; leaving the request to git's next helper"));
                return Ok(ExitCode::SUCCESS);
            };
            match by_url.settings_for(&url, &ProcessEnv)? {
                Some((profile, settings)) => {
                    log::info(format_args!(
                        "answering for {} with the profile '{}'",
                        clean(&url, 200),
                        clean(&profile, 60)
                    ));
                    settings
                }
                None => {
                    log::info(format_args!(
                        "no profile's url matches {}; leaving it to git's next helper (see 'iap-token profiles')",
                        clean(&url, 200)
                    ));
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    match action {
        GitAction::Get => get(&settings, &request),
        _ => erase(&settings),
    }
}

fn get(settings: &Settings, request: &git::Request) -> Result<ExitCode> {
    if !request.supports_authtype() {
        let url = match (&request.protocol, &request.host) {
            (Some(protocol), Some(host)) => format!("{}://{}/", clean(protocol, 10), clean(host, 200)),
            _ => "https://HOST/".into(),
        };
        let target = match (&settings.profile, &settings.audience) {
            (Some(profile), _) => format!("--profile {}", clean(profile, 60)),
            (None, Some(audience)) => format!("--audience {}", clean(audience, 200)),
            (None, None) => "--audience AUD".into(),
        };
        log::notice(format_args!(
            "this git does not accept Bearer credentials from helpers; use git 2.46 or later with \
http.{url}.proactiveAuth=auto, or pass the token per command: \
git -c http.{url}.extraHeader=\"Authorization: Bearer $(iap-token token {target})\" ..."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let credential = get_credential(settings)?;
    output::write_text(&git::bearer_answer(credential.token.expose(), credential.expires_at))?;
    Ok(ExitCode::SUCCESS)
}

/// Drops the cached token of this configuration, and with it a discovered audience.
fn erase(settings: &Settings) -> Result<ExitCode> {
    let source = source::resolve(settings)?;
    let cache = Cache::new(settings.cache.dir.clone());
    if let Some(audience) = &settings.audience {
        cache.remove(&cache_key(&source, audience))?;
    }
    if let Some(url) = &settings.url {
        cache.remove(&url_cache_key(&source, url))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `protocol://host[/path]` of git's request.
fn request_url(request: &git::Request) -> Option<String> {
    let (protocol, host) = (request.protocol.as_deref()?, request.host.as_deref()?);
    let path = request.path.as_deref().map(|p| format!("/{}", p.trim_start_matches('/'))).unwrap_or_default();
    Some(format!("{protocol}://{host}{path}"))
}
