//! One cache entry and its key: the versioned JSON of a cached ID or access token
//! (`schemas/cache-entry.schema.json`), the margin rule that decides whether it is served, and the hash
//! that names it. Plain values: no files, no clock of its own.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::credential::{Credential, SourceKind, TokenType};
use crate::secret::Secret;

/// The cache entry format version; entries of any other version are ignored and replaced.
pub const ENTRY_VERSION: u32 = 1;

/// A hash of everything that decides which token a configuration gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// Hashes the parts with separators, so that ("ab","c") and ("a","bc") differ.
    pub fn new(parts: &[&str]) -> CacheKey {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        CacheKey(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a cache entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    IdToken,
    AccessToken,
    /// A JWT signed by a service account (`--token-type signed-jwt`).
    SignedJwt,
}

/// One cached token (`schemas/cache-entry.schema.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub version: u32,
    pub kind: TokenKind,
    /// The source kind that minted an ID token; `None` for an access token.
    pub source: Option<SourceKind>,
    /// The ID token's audience, or the access token's scope.
    pub audience: String,
    pub principal: Option<String>,
    pub token: Secret<String>,
    /// The token's own expiry (`exp`, or `expires_in` added to the fetch time), Unix seconds.
    pub expires_at: i64,
    /// The local time of the fetch, Unix seconds.
    pub fetched_at: i64,
    /// For an ID token whose audience was discovered from a service URL: that URL and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered: Option<Discovery>,
}

/// Where and when an audience was discovered (IAP's sign-in redirect for `url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    pub url: String,
    /// Unix seconds, local clock.
    pub at: i64,
}

/// How long a discovered audience is trusted before it is discovered again.
pub const DISCOVERY_MAX_AGE_SECS: i64 = 7 * 24 * 3600;

impl Discovery {
    /// Whether this discovery is for `url` and recent enough to be used `now`.
    pub fn holds_for(&self, url: &str, now: i64) -> bool {
        self.url == url && (0..DISCOVERY_MAX_AGE_SECS).contains(&now.saturating_sub(self.at))
    }
}

impl Entry {
    /// The margin kept before `expires_at`: `min(min_ttl, half the lifetime the token had when fetched)`.
    /// A token fetched with little time left (the metadata server hands out cached ones) is still served.
    pub fn margin(&self, min_ttl: i64) -> i64 {
        let lifetime = self.expires_at.saturating_sub(self.fetched_at).max(0);
        min_ttl.min(lifetime / 2).max(0)
    }

    /// Until when this entry is served: `expires_at - margin`. Also the expiry reported to callers.
    pub fn serve_until(&self, min_ttl: i64) -> i64 {
        self.expires_at.saturating_sub(self.margin(min_ttl))
    }

    pub fn is_fresh(&self, now: i64, min_ttl: i64) -> bool {
        self.version == ENTRY_VERSION && now < self.serve_until(min_ttl)
    }

    /// What is served from this entry: its token, with the expiry callers are told.
    pub fn into_credential(
        self,
        source: SourceKind,
        url: Option<String>,
        token_type: TokenType,
        min_ttl: i64,
    ) -> Credential {
        Credential {
            expires_at: self.serve_until(min_ttl),
            audience: self.audience,
            principal: self.principal,
            token: self.token,
            source,
            url,
            token_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fetched_at: i64, expires_at: i64) -> Entry {
        Entry {
            version: ENTRY_VERSION,
            kind: TokenKind::IdToken,
            source: Some(SourceKind::Metadata),
            audience: "a".into(),
            principal: None,
            token: Secret::new("t".into()),
            expires_at,
            fetched_at,
            discovered: None,
        }
    }

    #[test]
    fn margin_is_min_of_min_ttl_and_half_the_lifetime() {
        let hour = entry(1000, 4600);
        assert_eq!(hour.margin(300), 300);
        assert_eq!(hour.serve_until(300), 4300);
        assert!(hour.is_fresh(4299, 300));
        assert!(!hour.is_fresh(4300, 300));
        let short = entry(1000, 1240);
        assert_eq!(short.margin(300), 120);
        assert_eq!(short.serve_until(300), 1120);
        assert!(short.is_fresh(1100, 300));
        assert_eq!(entry(1000, 900).margin(300), 0);
        assert!(!entry(1, i64::MIN).is_fresh(0, 300));
        assert!(!entry(i64::MAX, i64::MIN).is_fresh(0, 300));
        assert_eq!(entry(-1, i64::MAX).margin(300), 300);
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(CacheKey::new(&["ab", "c"]), CacheKey::new(&["a", "bc"]));
        assert_eq!(CacheKey::new(&["x"]).as_str().len(), 32);
    }
}
