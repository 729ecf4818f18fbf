//! What a call chose from the config files, remembered in the cache directory so that a cache hit with
//! `--profile` or `--url` does not parse TOML again. One file per question (the files' paths, `HOME`,
//! `--profile` and the URL): `profiles-<hash>.memo`, 0600, written atomically. It holds one JSON line
//! (this version of iap-token, the question, the answer) followed by the exact text of each file the
//! answer came from, and is used only when all of that equals what this call read, byte for byte: an
//! edited file, a file that appeared or went away, or another version of iap-token means a parse and a
//! new memo; a memo that is unreadable, foreign or corrupt is ignored and replaced. It holds what the
//! files hold (a desktop client's secret included, which is not confidential), beside the cached
//! tokens, which are.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cache::CacheKey;
use crate::cache::file::{read_private_file, write_private_file};
use crate::log;

/// What a call asked of the config files.
pub struct Question<'a> {
    /// The path and text of each file read, system first.
    pub texts: &'a [(PathBuf, String)],
    pub home: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub url: Option<&'a str>,
}

/// The memo's JSON line. `Text` is `&str` when written, `String` when read.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<Text, Answer> {
    by: Text,
    home: Option<Text>,
    profile: Option<Text>,
    url: Option<Text>,
    /// Each file's path and the length of its text (the texts follow the line in this order).
    files: Vec<(Text, usize)>,
    answer: Answer,
}

/// The answer remembered for `question`, if the memo holds one for exactly these files.
pub fn recall<Answer: DeserializeOwned>(dir: &Path, question: &Question<'_>) -> Option<Answer> {
    let bytes = read_private_file(&memo_path(dir, question)?).ok()??;
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header: Header<String, Answer> = serde_json::from_slice(&bytes[..newline]).ok()?;
    let same_question = header.by == env!("CARGO_PKG_VERSION")
        && header.home.as_deref() == question.home
        && header.profile.as_deref() == question.profile
        && header.url.as_deref() == question.url
        && header.files.len() == question.texts.len();
    if !same_question {
        return None;
    }
    let mut rest = &bytes[newline + 1..];
    for ((path, length), (read_path, read_text)) in header.files.iter().zip(question.texts) {
        let text = rest.get(..*length)?;
        if read_path.to_str() != Some(path.as_str()) || text != read_text.as_bytes() {
            return None;
        }
        rest = &rest[*length..];
    }
    rest.is_empty().then_some(header.answer)
}

/// Remembers `answer` to `question`. Best effort: a cache directory that cannot be written only costs
/// the next call a parse.
pub fn remember<Answer: Serialize>(dir: &Path, question: &Question<'_>, answer: &Answer) {
    let Some(path) = memo_path(dir, question) else { return };
    let files = question.texts.iter().map(|(path, text)| Some((path.to_str()?, text.len()))).collect();
    let Some(files) = files else { return };
    let header = Header {
        by: env!("CARGO_PKG_VERSION"),
        home: question.home,
        profile: question.profile,
        url: question.url,
        files,
        answer,
    };
    let written = serde_json::to_vec(&header).map_err(|e| e.to_string()).and_then(|mut bytes| {
        bytes.push(b'\n');
        for (_, text) in question.texts {
            bytes.extend_from_slice(text.as_bytes());
        }
        write_private_file(&path, &bytes).map_err(|e| e.to_string())
    });
    if let Err(e) = written {
        log::debug(format_args!("not remembering the profile chosen: {e}"));
    }
}

/// Named by the question, so that each URL or profile a user calls with keeps its own memo. `None` for
/// a path that is not UTF-8: such files are parsed every time.
fn memo_path(dir: &Path, question: &Question<'_>) -> Option<PathBuf> {
    let mut parts = vec![question.home.unwrap_or(""), question.profile.unwrap_or(""), question.url.unwrap_or("")];
    for (path, _) in question.texts {
        parts.push(path.to_str()?);
    }
    Some(dir.join(format!("profiles-{}.memo", CacheKey::new(&parts).as_str())))
}
