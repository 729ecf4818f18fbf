//! The `iap-token` binary: parse, validate, run, and print any error once, as one line on stderr.

#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use iap_token::cli::Cli;
use iap_token::config::{Config, ProcessEnv};
use iap_token::error::Error;
use iap_token::{commands, fast_path, log};

fn main() -> ExitCode {
    if std::env::args_os().len() == 1 {
        eprint!("{}", iap_token::cli::short_usage());
        return ExitCode::from(iap_token::error::EXIT_USAGE);
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // Before the configuration is read: reading the config files says things at -v.
    log::set_verbosity(cli.verbosity());
    let result = Config::from_cli(cli, &ProcessEnv).and_then(|config| commands::run(config.action));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", error.render());
            error.exit_code()
        }
    }
}

/// Parses the command line: the common `token` call without clap ([`fast_path`]), everything else with
/// clap, whose command tree is leaked rather than dropped (the process is about to exit).
fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(cli) = fast_path::parse(&args, &ProcessEnv) {
        return Ok(cli);
    }
    let command = Box::leak(Box::new(Cli::command()));
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(command))?;
    std::mem::forget(matches);
    Ok(cli)
}

/// Help and version go to stdout as asked; anything else is one line on stderr and exit 2.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap explains over several lines (the error, the arguments it concerns, a tip, then the usage):
    // keep everything before the usage, as one line.
    let rendered = error.render().to_string();
    let explanation: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect();
    let mut text = String::new();
    for line in explanation {
        if !text.is_empty() {
            text.push_str(if text.ends_with(':') { " " } else { "; " });
        }
        text.push_str(line.trim_start_matches("error: "));
    }
    let line = Error::Usage(if text.is_empty() { "invalid arguments".into() } else { text }).render();
    eprintln!("{line}");
    ExitCode::from(2)
}
