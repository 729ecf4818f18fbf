//! The report of `doctor`: one line per check, `ok|warn|fail NAME: DETAIL`, or JSON
//! (`schemas/doctor.schema.json`). Details are composed by the checks from safe parts only: never a token,
//! secret or code.

use serde::Serialize;

use crate::error::clean;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Verdict,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    pub fn new(checks: Vec<Check>) -> DoctorReport {
        DoctorReport { ok: checks.iter().all(|c| c.status != Verdict::Fail), checks }
    }
}

pub fn text(report: &DoctorReport) -> String {
    report
        .checks
        .iter()
        .map(|check| {
            let status = match check.status {
                Verdict::Ok => "ok",
                Verdict::Warn => "warn",
                Verdict::Fail => "fail",
            };
            format!("{status} {}: {}\n", check.name, clean(&check.detail, 600))
        })
        .collect()
}
