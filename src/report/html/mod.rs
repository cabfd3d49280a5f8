//! The HTML report: one self-contained file (inline SVG charts, no script, no network request)
//! made from a run's or a sweep's JSON and, for a run, its CSV series. `run --report`,
//! `sweep --report` and `pooltune report` all come here with the text of those files.
//!
//! Each chart is a `<figure class="chart" id="…">` holding one `<svg>`, so a reader (or a test)
//! finds every chart by its id: `throughput`, `queue`, `latency`, `percentiles`, `split` and
//! `account` (the exact account of the gap to theory) for a run, `curve` for a sweep, and `usl`
//! (the downstream's law fitted to the points the run saw) for a run that tried more than one
//! worker count and a workers sweep.
//!
//! - [`input`]: the files read back (the run's or sweep's JSON, the CSV series).
//! - [`charts`]: the SVG charts; [`usl`]: the fitted downstream's section.
//! - `page`: the pieces every page is made of; `run` and `sweep`: the two pages.

use thiserror::Error;

pub mod charts;
pub mod input;
mod page;
mod run;
mod sweep;
pub mod usl;

use input::{Series, Source};

/// Why a report cannot be made.
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("the JSON file is {0}")]
    Json(String),
    /// The text does not parse as JSON at all (a CSV given first, a truncated file).
    #[error(
        "the JSON file is not JSON ({0}); expected a run summary (pooltune run --json) or a sweep (pooltune sweep --json)"
    )]
    NotJson(String),
    #[error("the CSV series: {0}")]
    Csv(String),
    #[error("drawing a chart failed: {0}")]
    Chart(String),
}

/// The most points a time-series line keeps (a 10-minute run at 250 ms ticks has 2,400).
pub const MAX_POINTS: usize = 600;

/// The most knob changes drawn and listed; a run with more says how many it left out.
pub const MAX_CHANGES: usize = 200;

/// The report for `json` (a run summary or a sweep) and, for a run, its series.
///
/// # Errors
/// A file that is not what it should be, naming what was wrong.
pub fn page(json: &str, csv: Option<&str>) -> Result<String, ReportError> {
    let series = csv.map(Series::parse).transpose()?;
    match Source::parse(json)? {
        Source::Run(r) => run::run_page(&r, series.as_ref()),
        Source::Sweep(w) => sweep::sweep_page(&w),
    }
}
