//! Opens the sign-in URL in a browser: `--browser` / `$BROWSER` (run by the shell, the URL passed as a
//! separate argument, so it is never parsed as shell text; a `%s` in the command marks where it goes),
//! else the platform opener. The browser's own output is discarded (it must never reach our stdout), and
//! we never wait for it to exit: browsers keep running.

use std::process::{Command, Stdio};

use crate::error::{Error, Result};

pub fn open(browser: Option<&str>, url: &str) -> Result<()> {
    let mut command = match browser {
        Some(template) if cfg!(unix) => {
            let script =
                if template.contains("%s") { template.replace("%s", "\"$1\"") } else { format!("{template} \"$1\"") };
            let mut command = Command::new("sh");
            command.arg("-c").arg(script).arg("iap-token-browser").arg(url);
            command
        }
        Some(program) => {
            let mut command = Command::new(program);
            command.arg(url);
            command
        }
        None => platform_opener(url),
    };
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command.spawn().map(drop).map_err(|e| {
        Error::SignIn(format!(
            "could not start the browser ({e}); set --browser or $BROWSER, or use --no-browser to paste the code"
        ))
    })
}

#[cfg(target_os = "macos")]
fn platform_opener(url: &str) -> Command {
    let mut command = Command::new("open");
    command.arg(url);
    command
}

#[cfg(windows)]
fn platform_opener(url: &str) -> Command {
    let mut command = Command::new("rundll32");
    command.arg("url.dll,FileProtocolHandler").arg(url);
    command
}

#[cfg(not(any(target_os = "macos", windows)))]
fn platform_opener(url: &str) -> Command {
    let mut command = Command::new("xdg-open");
    command.arg(url);
    command
}
