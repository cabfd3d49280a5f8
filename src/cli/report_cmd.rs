//! `pooltune report RUN.json [SERIES.csv] -o FILE.html`, and the report a run or a sweep writes
//! with `--report`: both make the page from the text of the JSON and CSV files, through
//! [`crate::report::html::page`], so the saved files always carry what the report needs.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::args::ReportArgs;
use super::{BadInput, Outcome, finish};
use crate::report::AtomicFile;

pub fn run(a: &ReportArgs) -> Outcome {
    let read = |p: &Path, what: &str| {
        std::fs::read_to_string(p).map_err(|e| BadInput(format!("cannot read the {what} '{}': {e}", p.display())))
    };
    let json = read(&a.json, "JSON file")?;
    let csv = a.csv.as_deref().map(|p| read(p, "CSV series")).transpose()?;
    let out = finish::open(&a.output, "report")?;
    write(out, &json, csv.as_deref())?;
    eprintln!("pooltune: wrote the report to {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Makes the page and writes it whole; a file that is not a pooltune output is bad input.
pub fn write(mut out: AtomicFile, json: &str, csv: Option<&str>) -> Result<(), super::Failure> {
    let page = crate::report::html::page(json, csv).map_err(|e| BadInput(e.to_string()))?;
    out.write_all(page.as_bytes()).context("writing the report")?;
    out.commit().context("writing the report")?;
    Ok(())
}
