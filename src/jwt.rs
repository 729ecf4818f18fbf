//! JSON Web Tokens as this tool needs them: the claims of an ID token read without verifying the
//! signature (the token came straight from Google over TLS; its consumer, IAP, verifies it), the checks
//! every token passes before it is served or cached, and RS256 signing of the service-account assertion.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use crate::error::{Error, Result, clean};
use crate::secret::Secret;

/// A token issued this far in the future (by our clock) means our clock is wrong.
const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The claims this tool reads. Unknown claims are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Claims {
    #[serde(default)]
    pub aud: Option<Audiences>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `aud` is a string or an array of strings (RFC 7519 section 4.1.3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audiences {
    One(String),
    Many(Vec<String>),
}

impl Audiences {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audiences::One(one) => one == audience,
            Audiences::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// The hint of a token the identity provider got wrong: nothing in the configuration explains it.
const PROVIDER_AT_FAULT: &str =
    "retry with --force-refresh; if it persists, run with -v to see which server answered and report it";

/// The hint of a token for another audience.
const CHECK_AUDIENCE: &str = "check --audience: for IAP it is the OAuth client id of the service's IAP (Security > Identity-Aware Proxy > the service > Edit OAuth client)";

/// Reads the claims of a compact JWS without verifying it.
pub fn decode_claims(jwt: &str) -> Result<Claims> {
    let malformed = |why: &str| {
        Error::bad_token(format!("the identity provider returned a malformed ID token ({why})"), PROVIDER_AT_FAULT)
    };
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let bytes =
        URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| malformed("the payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|e| malformed(&format!("the payload is not a JSON claims object: {e}")))
}

/// An ID token that passed [`check_id_token`].
#[derive(Debug, PartialEq, Eq)]
pub struct CheckedToken {
    /// When the token stops being valid, on this machine's clock.
    pub expires_at: i64,
    /// How far this machine's clock is behind the issuer's, when `iat` was beyond the clock skew.
    pub clock_behind_secs: Option<i64>,
}

/// Checks an ID token before it is served or cached: `aud` is the requested audience and `exp` is
/// present and in the future. A token issued in the future (`iat` beyond the clock skew) is valid at
/// the issuer, whose clock is ahead of ours: it is accepted, with its lifetime (`exp - iat`) counted
/// from our `now`, so it is refreshed in time by our clock and never served past its real expiry.
pub fn check_id_token(claims: &Claims, audience: &str, now: i64) -> Result<CheckedToken> {
    match &claims.aud {
        Some(aud) if aud.contains(audience) => {}
        Some(Audiences::One(other)) => {
            return Err(Error::bad_token(
                format!(
                    "the ID token is for audience '{}', not the requested '{}'",
                    clean(other, 120),
                    clean(audience, 120)
                ),
                CHECK_AUDIENCE,
            ));
        }
        _ => {
            return Err(Error::bad_token(
                format!("the ID token is not for the requested audience '{}'", clean(audience, 120)),
                CHECK_AUDIENCE,
            ));
        }
    }
    let Some(exp) = claims.exp else {
        return Err(Error::bad_token("the ID token has no expiry ('exp' claim)", PROVIDER_AT_FAULT));
    };
    if let Some(iat) = claims.iat
        && iat > now.saturating_add(MAX_CLOCK_SKEW_SECS)
    {
        let behind = iat.saturating_sub(now);
        let lifetime = exp.saturating_sub(iat);
        if lifetime <= 0 {
            return Err(Error::bad_token(
                "the ID token expires before it was issued ('exp' <= 'iat')",
                PROVIDER_AT_FAULT,
            ));
        }
        return Ok(CheckedToken { expires_at: now.saturating_add(lifetime), clock_behind_secs: Some(behind) });
    }
    if exp <= now {
        let ago = now.saturating_sub(exp);
        let ahead = claims.iat.is_some_and(|iat| now.saturating_sub(iat) > 3600 * 24 && iat <= now);
        return Err(if ahead {
            Error::bad_token(
                format!("the ID token expired {ago} s ago: this machine's clock may be ahead"),
                "check the time (e.g. enable NTP with 'timedatectl set-ntp true')",
            )
        } else {
            Error::bad_token(
                format!("the ID token had already expired when it arrived ({ago} s ago)"),
                "check this machine's time, then retry with --force-refresh",
            )
        });
    }
    Ok(CheckedToken { expires_at: exp, clock_behind_secs: None })
}

/// Signs `claims` as a compact RS256 JWS with the PKCS#8 PEM key of a service-account key file.
pub fn sign_rs256(
    key_id: Option<&str>,
    claims: &serde_json::Value,
    pkcs8_pem: &Secret<String>,
) -> Result<Secret<String>> {
    let key = rsa_key(pkcs8_pem)?;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|_| unusable_key("signing failed".into()))?;
    Ok(Secret::new(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))))
}

/// Whether the PKCS#8 PEM key of a service-account key file is an RSA key that can sign.
pub fn check_rs256_key(pkcs8_pem: &Secret<String>) -> Result<()> {
    rsa_key(pkcs8_pem).map(drop)
}

fn rsa_key(pkcs8_pem: &Secret<String>) -> Result<RsaKeyPair> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pkcs8_pem.expose().as_bytes())
        .map_err(|_| unusable_key("not a PKCS#8 PEM block".into()))?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| unusable_key(e.to_string()))
}

fn unusable_key(why: String) -> Error {
    Error::config(
        format!("the service-account key's private_key is not usable ({why})"),
        "download a new JSON key for the service account (IAM > Service accounts > Keys)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn reads_claims_with_string_or_array_audience() {
        let claims = decode_claims(&token(r#"{"aud":"a","exp":10,"email":"x@y","extra":1}"#)).unwrap();
        assert_eq!(claims.aud, Some(Audiences::One("a".into())));
        assert_eq!(claims.email.as_deref(), Some("x@y"));
        let claims = decode_claims(&token(r#"{"aud":["a","b"],"exp":10}"#)).unwrap();
        assert!(check_id_token(&claims, "b", 5).is_ok());
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["", "a.b", "a.b.c.d", "a.!!!.c", &token("[1]"), &token("not json")] {
            let err = decode_claims(bad).unwrap_err();
            assert!(err.to_string().contains("malformed ID token"), "{bad}: {err}");
        }
    }

    #[test]
    fn checks_audience_expiry_and_skew() {
        let claims = |json: &str| decode_claims(&token(json)).unwrap();
        assert_eq!(check_id_token(&claims(r#"{"aud":"a","exp":200,"iat":100}"#), "a", 150).unwrap().expires_at, 200);
        let err = check_id_token(&claims(r#"{"aud":"b","exp":200}"#), "a", 150).unwrap_err();
        assert!(err.to_string().contains("for audience 'b', not the requested 'a'"));
        let err = check_id_token(&claims(r#"{"aud":"a"}"#), "a", 150).unwrap_err();
        assert!(err.to_string().contains("no expiry"));
        let err = check_id_token(&claims(r#"{"aud":"a","exp":100}"#), "a", 150).unwrap_err();
        assert!(err.to_string().contains("already expired"));
        // Issued in the future: our clock is behind; the token's lifetime is counted from our now.
        let ahead = check_id_token(&claims(r#"{"aud":"a","exp":9000,"iat":5000}"#), "a", 150).unwrap();
        assert_eq!(ahead, CheckedToken { expires_at: 4150, clock_behind_secs: Some(4850) });
        let err = check_id_token(&claims(r#"{"aud":"a","exp":5000,"iat":5000}"#), "a", 150).unwrap_err();
        assert!(err.to_string().contains("expires before it was issued"));
        let extreme = claims(r#"{"aud":"a","exp":-9223372036854775808,"iat":9223372036854775807}"#);
        assert!(check_id_token(&extreme, "a", 150).is_err());
        let extreme = claims(r#"{"aud":"a","exp":1600000000,"iat":-9223372036854775808}"#);
        assert!(check_id_token(&extreme, "a", 1_700_000_000).is_err());
    }
}
