//! Secret Manager: reads one secret version (`:access`), checks the payload's CRC32C when the answer
//! carries one, and drops exactly one trailing newline, nothing else. The caller chooses the
//! credentials and hands over their bearer token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::Http;
use crate::secret::Secret;

#[derive(Deserialize)]
struct Answer {
    payload: Payload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    data: Secret<String>,
    #[serde(default)]
    data_crc32c: Option<String>,
}

/// The text of the secret version `name` (`projects/P/secrets/S/versions/V`) at the API's base URL
/// `endpoint`.
pub fn access(http: &Http, endpoint: &str, bearer: &Secret<String>, name: &str) -> Result<Secret<String>> {
    let url = format!("{endpoint}/v1/{name}:access");
    let response = http.get(&url, &[("Authorization", &format!("Bearer {}", bearer.expose()))])?;
    let answer: Answer = response.json().map_err(|e| {
        e.with_hint_for_status(
            |status| matches!(status, 401 | 403),
            || format!("the caller needs roles/secretmanager.secretAccessor on {name}"),
        )
    })?;
    decode(&url, name, &answer.payload)
}

fn decode(url: &str, name: &str, payload: &Payload) -> Result<Secret<String>> {
    let corrupt = |problem: String| {
        Error::config(
            format!("the secret {name} could not be used: {problem}"),
            "check the secret's latest version in Secret Manager",
        )
    };
    let bytes = STANDARD.decode(payload.data.expose()).map_err(|_| corrupt("its payload is not base64".into()))?;
    if let Some(expected) = &payload.data_crc32c {
        let expected: i64 = expected.parse().map_err(|_| corrupt("its dataCrc32c is not a number".into()))?;
        let actual = i64::from(crc32c::crc32c(&bytes));
        if actual != expected {
            return Err(Error::Provider {
                url: crate::http::display_url(url),
                status: 200,
                detail: format!("the payload of {name} failed its CRC32C check (corrupted in transit)"),
                hint: "try again; if it persists, a proxy may be altering responses".into(),
            });
        }
    }
    let mut text = String::from_utf8(bytes).map_err(|_| corrupt("its payload is not UTF-8 text".into()))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(data: &[u8], crc: Option<i64>) -> Payload {
        Payload { data: Secret::new(STANDARD.encode(data)), data_crc32c: crc.map(|c| c.to_string()) }
    }

    #[test]
    fn drops_one_trailing_newline_only() {
        let crc = i64::from(crc32c::crc32c(b" s3cret \n\n"));
        assert_eq!(
            decode("https://sm/v1/n:access", "n", &payload(b" s3cret \n\n", Some(crc))).unwrap().expose(),
            " s3cret \n"
        );
        assert_eq!(decode("https://sm/v1/n:access", "n", &payload(b"abc", None)).unwrap().expose(), "abc");
    }

    #[test]
    fn crc_mismatch_fails() {
        let err = decode("https://sm/v1/n:access", "n", &payload(b"abc", Some(1))).unwrap_err();
        assert!(err.to_string().contains("failed its CRC32C check"));
    }
}
