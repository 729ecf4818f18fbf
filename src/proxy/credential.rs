//! The proxy's credential: the token of [`crate::get_credential`] held in memory and renewed before the
//! cache would renew it (single flight inside the process; across processes part 1's lock), or at once
//! when IAP refused it.

use std::sync::Mutex;

use crate::clock::unix_now;
use crate::config::Settings;
use crate::error::Result;
use crate::get_credential;
use crate::secret::Secret;

pub struct Held {
    settings: Settings,
    current: Mutex<Option<Current>>,
}

struct Current {
    token: Secret<String>,
    /// When iap-token itself would stop serving it (`exp` minus the margin).
    serve_until: i64,
    /// IAP refused it: the next request gets a new one.
    refused: bool,
}

impl Held {
    pub fn new(settings: Settings) -> Held {
        Held { settings, current: Mutex::new(None) }
    }

    /// The token to send now; fetched (by one thread, the others wait) when there is none, it is within
    /// the margin of its expiry, or IAP refused it.
    pub fn token(&self) -> Result<Secret<String>> {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(held) = current.as_ref()
            && !held.refused
            && unix_now() < held.serve_until
        {
            return Ok(held.token.clone());
        }
        let force = current.as_ref().is_some_and(|held| held.refused);
        let mut settings = self.settings.clone();
        settings.cache.force_refresh = force;
        let credential = get_credential(&settings)?;
        *current =
            Some(Current { token: credential.token.clone(), serve_until: credential.expires_at, refused: false });
        Ok(credential.token)
    }

    /// IAP answered 401 to `token`: unless another thread already replaced it, the next [`Held::token`]
    /// fetches a new one, bypassing the cache.
    pub fn refused(&self, token: &Secret<String>) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(held) = current.as_mut()
            && held.token.expose() == token.expose()
        {
            held.refused = true;
        }
    }
}
