//! `Secret<T>`: the one type that holds tokens, refresh tokens, client secrets, authorization codes and
//! PKCE verifiers. It has no `Display`, its `Debug` prints `REDACTED`, and [`Secret::expose`] is the only
//! way to the value, so every place that handles a secret in clear is visible in the code.

use std::fmt;

/// A value that must never reach a log, a terminal or an error message.
///
/// ```
/// use iap_token::secret::Secret;
/// let token = Secret::new(String::from("eyJhbGciOi.payload.signature"));
/// assert_eq!(format!("{token:?}"), "REDACTED");
/// assert_eq!(token.expose(), "eyJhbGciOi.payload.signature");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value in clear: call this only where the secret leaves the process for its intended
    /// recipient (an HTTP request, the credential on stdout, the token store).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// Serialized in clear: only the token store and the cache, which write 0600 files, serialize secrets.
impl<T: serde::Serialize> serde::Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
