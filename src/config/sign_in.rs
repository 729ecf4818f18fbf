//! How a browser sign-in may run here: the `LOGIN` options plus what the session offers (a display, a
//! terminal, `CI`, kubectl's `interactive: false`), decided only when a sign-in is actually needed.

use std::time::Duration;

use super::env::Environment;
use super::exec_info::ExecInfo;
use crate::cli::LoginArgs;
use crate::error::{Error, Result};

/// The upper bound of `--login-timeout`: a day.
const MAX_LOGIN_TIMEOUT_SECS: u64 = 86_400;

/// The sign-in settings of one run.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub no_browser: bool,
    pub browser: Option<String>,
    pub listen_port: u16,
    pub timeout: Duration,
    non_interactive: bool,
    ci: bool,
    has_display: bool,
    kubectl_gives_no_stdin: bool,
}

/// How a sign-in may run, decided only when one is needed (it looks for a terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInMode {
    /// Open a browser on the loopback listener.
    Browser,
    /// Print the URL and read the pasted redirect URL or code from the terminal.
    Paste,
    /// No sign-in may run; the reason says why.
    Forbidden(String),
}

impl LoginSettings {
    /// Forbids any sign-in (for commands that must never start one, such as `doctor`).
    pub fn forbid_sign_in(&mut self) {
        self.non_interactive = true;
    }

    /// Whether a pasted answer can be read here (a terminal that kubectl did not take away).
    pub fn can_paste(&self) -> bool {
        !self.kubectl_gives_no_stdin && crate::terminal::available()
    }

    /// How a sign-in would run now.
    pub fn mode(&self) -> SignInMode {
        let can_paste = self.can_paste();
        let can_open_browser = self.browser.is_some() || self.has_display;
        if self.non_interactive {
            SignInMode::Forbidden("a sign-in is needed but --non-interactive is set".into())
        } else if self.ci {
            SignInMode::Forbidden("a sign-in is needed but CI is set, which means non-interactive".into())
        } else if self.no_browser || !can_open_browser {
            if can_paste {
                SignInMode::Paste
            } else if self.no_browser && self.kubectl_gives_no_stdin {
                SignInMode::Forbidden(
                    "a sign-in is needed but --no-browser needs a terminal to paste the code into, and kubectl runs this plugin without one (interactive: false)".into(),
                )
            } else if self.no_browser {
                SignInMode::Forbidden(
                    "a sign-in is needed but --no-browser needs a terminal to paste the code into, and there is none"
                        .into(),
                )
            } else {
                SignInMode::Forbidden(
                    "a sign-in is needed but no browser can be opened (no --browser, $BROWSER or display) and there is no terminal".into(),
                )
            }
        } else {
            SignInMode::Browser
        }
    }

    /// The sign-in settings from the `LOGIN` options and what the environment tells about the session.
    pub fn new(login: LoginArgs, exec_info: Option<&ExecInfo>, env: &dyn Environment) -> Result<LoginSettings> {
        if !(1..=MAX_LOGIN_TIMEOUT_SECS).contains(&login.login_timeout) {
            return Err(Error::Usage(format!(
                "--login-timeout must be between 1 and {MAX_LOGIN_TIMEOUT_SECS} seconds"
            )));
        }
        Ok(LoginSettings {
            no_browser: login.no_browser,
            browser: login.browser.or_else(|| env.var("BROWSER")),
            listen_port: login.listen_port,
            timeout: Duration::from_secs(login.login_timeout),
            non_interactive: login.non_interactive,
            ci: env.var("CI").is_some(),
            has_display: env.var("DISPLAY").is_some()
                || env.var("WAYLAND_DISPLAY").is_some()
                || env.var("WSL_DISTRO_NAME").is_some()
                || !cfg!(target_os = "linux"),
            kubectl_gives_no_stdin: exec_info.and_then(|info| info.interactive) == Some(false),
        })
    }
}
