//! Opens the sign-in URL in a browser: `--browser` / `$BROWSER` (run by the shell, the URL passed as a
//! separate argument, so it is never parsed as shell text; a `%s` in the command marks where it goes),
//! else the platform opener. The browser's stdout is discarded (it must never reach ours) and its stderr
//! kept to its last line; we never wait for it to exit (browsers keep running), but a command that fails
//! within seconds of its start is reported at once instead of leaving the sign-in waiting for nothing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, clean};

/// How long after its start a browser command that exits with a failure counts as one that could not
/// open the page. Openers such as xdg-open hand the URL over and exit at once; later exits mean nothing.
const FAILURE_WINDOW: Duration = Duration::from_secs(5);

/// A browser command that was started: watched for an early failure while the sign-in waits.
pub struct Launched {
    child: Child,
    command: String,
    started: Instant,
    last_stderr_line: Arc<Mutex<String>>,
    settled: bool,
    failed: bool,
}

/// Starts the browser on `url`.
pub fn open(browser: Option<&str>, url: &str) -> Result<Launched> {
    let (mut command, shown) = match browser {
        Some(template) if cfg!(unix) => {
            let script =
                if template.contains("%s") { template.replace("%s", "\"$1\"") } else { format!("{template} \"$1\"") };
            let mut command = Command::new("sh");
            command.arg("-c").arg(script).arg("iap-token-browser").arg(url);
            (command, template.to_string())
        }
        Some(program) => {
            let mut command = Command::new(program);
            command.arg(url);
            (command, program.to_string())
        }
        None => platform_opener(url),
    };
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        Error::config(
            format!("could not start the browser '{}' ({e})", clean(&shown, 100)),
            "set --browser or $BROWSER to a browser that works, or use --no-browser to paste the code",
        )
    })?;
    let last_stderr_line = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        let last = Arc::clone(&last_stderr_line);
        // Drains the browser's stderr so it never blocks on a full pipe; keeps only the last line.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
                if !line.trim().is_empty()
                    && let Ok(mut last) = last.lock()
                {
                    *last = line;
                }
            }
        });
    }
    Ok(Launched { child, command: shown, started: Instant::now(), last_stderr_line, settled: false, failed: false })
}

impl Launched {
    /// An error when the browser command failed soon after it started (missing, not executable, or
    /// exiting with a failure status): the page was then never opened.
    pub fn check(&mut self) -> Result<()> {
        if self.settled {
            return Ok(());
        }
        match self.child.try_wait() {
            Ok(Some(status)) if !status.success() => {
                self.settled = true;
                self.failed = true;
                Err(self.failure(status))
            }
            Ok(Some(_)) | Err(_) => {
                self.settled = true;
                Ok(())
            }
            Ok(None) => {
                self.settled = self.started.elapsed() >= FAILURE_WINDOW;
                Ok(())
            }
        }
    }

    /// Whether [`Launched::check`] found that the browser failed.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn failure(&self, status: ExitStatus) -> Error {
        // The reader thread may still hold the last words: give it a moment to finish.
        std::thread::sleep(Duration::from_millis(50));
        let last = self.last_stderr_line.lock().map(|l| l.clone()).unwrap_or_default();
        let said = if last.is_empty() { String::new() } else { format!(": {}", clean(&last, 200)) };
        let status =
            status.code().map_or_else(|| "was killed".to_string(), |code| format!("exited with status {code}"));
        Error::config(
            format!("the browser command '{}' {status}{said}", clean(&self.command, 100)),
            "set --browser or $BROWSER to a browser that works, or use --no-browser to paste the code",
        )
    }
}

#[cfg(target_os = "macos")]
fn platform_opener(url: &str) -> (Command, String) {
    let mut command = Command::new("open");
    command.arg(url);
    (command, "open".into())
}

#[cfg(windows)]
fn platform_opener(url: &str) -> (Command, String) {
    let mut command = Command::new("rundll32");
    command.arg("url.dll,FileProtocolHandler").arg(url);
    (command, "rundll32 url.dll,FileProtocolHandler".into())
}

#[cfg(not(any(target_os = "macos", windows)))]
fn platform_opener(url: &str) -> (Command, String) {
    let mut command = Command::new("xdg-open");
    command.arg(url);
    (command, "xdg-open".into())
}
