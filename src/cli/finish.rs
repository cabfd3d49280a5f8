//! What the headless runner and the dashboard share at both ends of a run: starting the engine,
//! and the summary, JSON file and exit status they leave.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::BadInput;
use crate::engine::{EngineError, EngineHandle, RunOptions};
use crate::metrics::Snapshot;
use crate::model::advisor::Target;
use crate::report::{self, AtomicFile, EndedBy, RunConfig, RunSummary};
use crate::settings::Settings;

/// Starts the engine on the run's work; settings it refuses are bad input (exit status 2).
pub fn start_engine(settings: Settings, opts: RunOptions) -> anyhow::Result<EngineHandle> {
    EngineHandle::start_with(settings, opts, super::work()).map_err(|e| match e {
        EngineError::Invalid(m) => anyhow::Error::new(BadInput(m)),
        other => anyhow::Error::new(other),
    })
}

/// The run's summary: the last snapshot, with the HTTP breakdown and the model beside it.
pub fn summarise(last: &Snapshot, config: RunConfig, ended: EndedBy, missed: u64, slo: Option<Target>) -> RunSummary {
    let mut run = RunSummary::new(last, config, ended, missed);
    run.http = super::http().map(|(t, s)| s.report(&t));
    run.model = Some(report::model_report(last, slo));
    run
}

/// Writes `text` (the JSON summary) to its file whole: the file appears only complete.
pub fn write_json(mut f: AtomicFile, text: &str) -> anyhow::Result<()> {
    writeln!(f, "{text}").context("writing the JSON file")?;
    f.commit().context("writing the JSON file")
}

/// The documented exit status: 130 after SIGINT, 143 after SIGTERM, else 0.
pub fn exit_code(ended: EndedBy) -> ExitCode {
    match ended {
        EndedBy::Interrupt => ExitCode::from(130),
        EndedBy::Terminate => ExitCode::from(143),
        _ => ExitCode::SUCCESS,
    }
}
