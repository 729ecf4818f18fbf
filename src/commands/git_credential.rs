//! `iap-token git-credential get|store|erase|capability`: git's credential-helper protocol. `get`
//! answers with a Bearer credential when git can take one (authtype), else explains on stderr and
//! prints nothing; `erase` drops the cached ID token; `store` and unknown actions do nothing.

use std::io::BufReader;
use std::process::ExitCode;

use crate::cache::file::Cache;
use crate::config::{GitAction, Settings};
use crate::error::{Error, Result, clean};
use crate::output::{self, git};
use crate::{cache_key, get_credential, log, source};

pub fn run(settings: &Settings, action: &GitAction) -> Result<ExitCode> {
    match action {
        GitAction::Capability => {
            output::write_text(git::CAPABILITY_ANSWER)?;
            Ok(ExitCode::SUCCESS)
        }
        GitAction::Get => {
            let request = git::Request::read(BufReader::new(std::io::stdin().lock()));
            if !request.supports_authtype() {
                let url = match (&request.protocol, &request.host) {
                    (Some(protocol), Some(host)) => format!("{}://{}/", clean(protocol, 10), clean(host, 200)),
                    _ => "https://HOST/".into(),
                };
                let audience = settings.audience.as_deref().map(|a| clean(a, 200)).unwrap_or_else(|| "AUD".into());
                log::notice(format_args!(
                    "this git does not accept Bearer credentials from helpers; use git 2.46 or later with \
http.{url}.proactiveAuth=auto, or pass the token per command: \
git -c http.{url}.extraHeader=\"Authorization: Bearer $(iap-token token --audience {audience})\" ..."
                ));
                return Ok(ExitCode::SUCCESS);
            }
            let credential = get_credential(settings)?;
            output::write_text(&git::bearer_answer(credential.token.expose(), credential.expires_at))?;
            Ok(ExitCode::SUCCESS)
        }
        GitAction::Erase => {
            let _ = git::Request::read(BufReader::new(std::io::stdin().lock()));
            let audience = settings.audience.as_deref().ok_or_else(|| Error::Usage("--audience is required".into()))?;
            let source = source::resolve(settings)?;
            Cache::new(settings.cache.dir.clone()).remove(&cache_key(&source, audience))?;
            Ok(ExitCode::SUCCESS)
        }
        GitAction::Store => {
            let _ = git::Request::read(BufReader::new(std::io::stdin().lock()));
            Ok(ExitCode::SUCCESS)
        }
        GitAction::Unknown(other) => {
            log::debug(format_args!("ignoring the unknown git credential action '{}'", clean(other, 40)));
            Ok(ExitCode::SUCCESS)
        }
    }
}
