//! `iap-token login`: the browser sign-in now, the refresh token stored; with an audience, an ID token
//! for it right away. stdout stays empty: what the person must see goes to the terminal.

use std::process::ExitCode;

use crate::config::Settings;
use crate::error::{Result, clean};
use crate::output::rfc3339;
use crate::session::Session;
use crate::store::TokenStore;
use crate::user::{self, UserClient};
use crate::{get_credential, terminal};

pub fn run(settings: &Settings) -> Result<ExitCode> {
    let session = Session::new(settings);
    let client = UserClient::from_settings(settings)?;
    {
        let _login = user::lock_login(settings, &client.client_id, client.account.as_deref())?;
        let store = TokenStore::open(settings.cache.state_dir.clone(), settings.cache.store)?;
        let login = user::sign_in(&session, &client).map_err(|e| e.context("the sign-in failed"))?;
        user::keep_login(&store, &login).map_err(|e| e.context("signed in, but the sign-in could not be kept"))?;
    }
    if let Some(audience) = &settings.audience {
        let mut refreshed = settings.clone();
        refreshed.cache.force_refresh = true;
        let credential = get_credential(&refreshed)?;
        terminal::say(&format!(
            "iap-token: ID token for {} ready until {}",
            clean(audience, 100),
            rfc3339(credential.expires_at)
        ));
    }
    Ok(ExitCode::SUCCESS)
}
