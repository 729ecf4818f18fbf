//! `iap-token secret-manager-secret --project P --secret S [--version V]`: a plumbing command (hidden from
//! the help) that backs the Python package's `get_gcp_secret_manager_secret`. It reads the version with
//! the same session code as the client-secret fetch (Application Default Credentials or
//! `--service-account-key`, an access token cached like the others, CRC32C checked, one trailing newline
//! dropped) and prints the payload and a newline on stdout; it never prints the payload anywhere else.

use std::process::ExitCode;

use crate::config::Settings;
use crate::error::Result;
use crate::output;
use crate::session::Session;

pub fn run(settings: &Settings, name: &str) -> Result<ExitCode> {
    let session = Session::new(settings);
    let secret = session
        .secret_manager_secret(name)
        .map_err(|e| e.context(format!("could not read the secret {name} from Secret Manager")))?;
    output::write_text(&format!("{}\n", secret.expose()))?;
    Ok(ExitCode::SUCCESS)
}
