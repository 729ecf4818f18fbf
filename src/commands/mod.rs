//! The commands. `token` prints what [`crate::get_credential`] returns and `completions` prints a script;
//! each other command has its own file: `login` runs the sign-in now, `logout` forgets (and revokes),
//! `status` reports without a network call, `profiles` lists the profiles, `setup` writes one and prints
//! snippets, `doctor` explains IAP's answers, `git-credential` speaks git's helper protocol, the hidden
//! `secret-manager-secret` prints a secret for the Python package; `proxy` lives in `crate::proxy`.
//! Each returns the exit code; errors travel up to `main`, which prints them once.

mod doctor;
mod git_credential;
mod login;
mod logout;
mod profiles;
mod secret_manager_secret;
mod setup;
mod status;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::config::Action;
use crate::error::Result;
use crate::{get_credential, output};

pub fn run(action: Action) -> Result<ExitCode> {
    match action {
        Action::Token { settings, format } => {
            let credential = get_credential(&settings)?;
            output::write_credential(&format, &credential)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Login(settings) => login::run(&settings),
        Action::Logout { settings, all, revoke } => logout::run(&settings, all, revoke),
        Action::Status { settings, json } => status::run(&settings, json),
        Action::GitCredential { target, action } => git_credential::run(target, &action),
        Action::SecretManagerSecret { settings, name } => secret_manager_secret::run(&settings, &name),
        Action::Setup(plan) => setup::run(*plan),
        Action::Doctor { settings, header_name, json, config_files } => {
            doctor::run(&settings, &header_name, json, &config_files)
        }
        Action::Profiles { profiles, json } => profiles::run(profiles, json),
        Action::Proxy { settings, options } => crate::proxy::run(&settings, &options),
        Action::Completions(shell) => {
            output::write_completions(shell, &mut crate::cli::Cli::command())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
