//! Minimal cache-hit baseline for bench/run: read one iap-token cache entry (path in argv[1]), check it is
//! fresh with the default 300 s margin rule, and print a Kubernetes ExecCredential with its token and the
//! serve-until time as RFC 3339. No argument parsing library, no configuration, no hashing: the floor.

use std::io::Write;
use std::process::ExitCode;

const MIN_TTL: i64 = 300;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: baseline CACHE_ENTRY.json");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::from(1);
        }
    };
    let entry: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(entry) => entry,
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::from(1);
        }
    };
    let (Some(token), Some(expires_at), Some(fetched_at)) =
        (entry["token"].as_str(), entry["expires_at"].as_i64(), entry["fetched_at"].as_i64())
    else {
        eprintln!("baseline: not a cache entry");
        return ExitCode::from(1);
    };
    let margin = MIN_TTL.min((expires_at - fetched_at).max(0) / 2).max(0);
    let until = expires_at - margin;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if now >= until {
        eprintln!("baseline: the cached token is stale");
        return ExitCode::from(1);
    }
    let out = format!(
        "{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":{},\"expirationTimestamp\":\"{}\"}}}}\n",
        serde_json::Value::from(token),
        rfc3339(until)
    );
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// Unix seconds -> `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC; Howard Hinnant's civil_from_days).
fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}
