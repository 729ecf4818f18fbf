//! The controlling terminal, for what a person must see or type during a sign-in (the URL, progress, the
//! paste prompt). flytekit captures a command's stderr and shows it only after the command ends, so this
//! text goes to `/dev/tty` when there is one and falls back to stderr. Never used for credentials.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

fn open_tty() -> Option<File> {
    if cfg!(unix) { OpenOptions::new().read(true).write(true).open("/dev/tty").ok() } else { None }
}

/// Whether a terminal is there to read a pasted answer from.
pub fn available() -> bool {
    open_tty().is_some()
}

/// Shows one line to the person: on the terminal when there is one, else on stderr.
pub fn say(line: &str) {
    match open_tty() {
        Some(mut tty) => {
            let _ = writeln!(tty, "{line}");
        }
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

/// Prints `prompt` and reads one line from the terminal; `None` without a terminal or at end of input.
pub fn ask(prompt: &str) -> Option<String> {
    let mut tty = open_tty()?;
    let _ = write!(tty, "{prompt}");
    let _ = tty.flush();
    let mut line = String::new();
    BufReader::new(tty).read_line(&mut line).ok()?;
    (!line.is_empty()).then(|| line.trim().to_string())
}
