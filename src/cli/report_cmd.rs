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
use crate::report::html::ReportError;

pub fn run(a: &ReportArgs) -> Outcome {
    let read = |p: &Path, what: &str| {
        std::fs::read_to_string(p).map_err(|e| BadInput(format!("cannot read the {what} '{}': {e}", p.display())))
    };
    let json = read(&a.json, "JSON file")?;
    let csv = a.csv.as_deref().map(|p| read(p, "CSV series")).transpose()?;
    // The message names the file that was wrong.
    let page = crate::report::html::page(&json, csv.as_deref()).map_err(|e| {
        let file = match (&e, &a.csv) {
            (ReportError::Csv(_), Some(csv)) => csv,
            _ => &a.json,
        };
        BadInput(format!("{}: {e}", file.display()))
    })?;
    save(finish::open(&a.output, "report")?, &page)?;
    eprintln!("pooltune: wrote the report to {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Makes the page and writes it whole; a file that is not a pooltune output is bad input.
pub fn write(out: AtomicFile, json: &str, csv: Option<&str>) -> Result<(), super::Failure> {
    let page = crate::report::html::page(json, csv).map_err(|e| BadInput(e.to_string()))?;
    save(out, &page)
}

fn save(mut out: AtomicFile, page: &str) -> Result<(), super::Failure> {
    out.write_all(page.as_bytes()).context("writing the report")?;
    out.commit().context("writing the report")?;
    Ok(())
}
