//! The vocabulary every layer shares about a token: which kind of source minted it ([`SourceKind`],
//! spelled as in `--source`, JSON output and `status`), which kind of token ([`TokenType`]) and the
//! [`Credential`] handed to the caller.
//! Plain values only: this module depends on nothing but [`crate::secret`].

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The kinds of source, spelled as in `--source`, JSON output and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    User,
    Impersonation,
    ExternalAccount,
    ServiceAccountKey,
    Metadata,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::User => "user",
            SourceKind::Impersonation => "impersonation",
            SourceKind::ExternalAccount => "external-account",
            SourceKind::ServiceAccountKey => "service-account-key",
            SourceKind::Metadata => "metadata",
        }
    }
}

/// What kind of token is handed over, spelled as in `--token-type` and JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenType {
    /// An OIDC ID token signed by Google, `aud` = the IAP OAuth client id.
    #[default]
    IdToken,
    /// A JWT signed by a service account, `aud` = the resource URL.
    SignedJwt,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::IdToken => "id-token",
            TokenType::SignedJwt => "signed-jwt",
        }
    }
}

/// A credential ready to hand over.
#[derive(Debug, Clone)]
pub struct Credential {
    pub token: Secret<String>,
    /// The expiry to report: the token's `exp` minus the cache margin, so that callers come back exactly
    /// when this tool would refresh.
    pub expires_at: i64,
    pub audience: String,
    pub principal: Option<String>,
    pub source: SourceKind,
    /// The service URL the call named (`--url`), if any.
    pub url: Option<String>,
    /// An ID token or a service-account signed JWT.
    pub token_type: TokenType,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for kind in [
            SourceKind::User,
            SourceKind::Impersonation,
            SourceKind::ExternalAccount,
            SourceKind::ServiceAccountKey,
            SourceKind::Metadata,
        ] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
        for kind in [TokenType::IdToken, TokenType::SignedJwt] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
    }
}
