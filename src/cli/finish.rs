//! What the headless runner and the dashboard share at both ends of a run: opening the output
//! files, starting the engine, and the summary, JSON file and exit status they leave.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{BadInput, Failure, RunContext};
use crate::engine::{Command, EngineHandle, RunOptions};
use crate::metrics::Snapshot;
use crate::model::advisor::Target;
use crate::report::{self, AtomicFile, EndedBy, RunConfig, RunSummary, SeriesWriter};
use crate::settings::Settings;

/// Opens an output file early, so a bad path is reported before the run rather than after it.
pub fn open(path: &Path, what: &str) -> Result<AtomicFile, BadInput> {
    AtomicFile::create(path).map_err(|e| BadInput(format!("cannot write the {what} file '{}': {e}", path.display())))
}

/// Opens the CSV series early, like [`open`].
pub fn open_series(path: &Path) -> Result<SeriesWriter, BadInput> {
    SeriesWriter::create(path).map_err(|e| BadInput(format!("cannot write the CSV file '{}': {e}", path.display())))
}

/// Starts the engine on the run's work, its snapshots followed by the run's `/metrics` if it
/// serves them; settings it refuses are bad input (exit status 2).
pub fn start_engine(settings: Settings, opts: RunOptions, ctx: &RunContext) -> Result<EngineHandle, Failure> {
    let opts = RunOptions { run_distributions: opts.run_distributions || ctx.metrics.is_some(), ..opts };
    let engine = EngineHandle::start_supplied(settings, opts, ctx.queue.clone(), ctx.supplied())?;
    if let Some(m) = &ctx.metrics {
        m.follow(engine.subscribe());
    }
    if let Some(note) = &ctx.announce {
        eprintln!("pooltune: {note}");
    }
    Ok(engine)
}

/// The run's summary: the last snapshot, with the HTTP breakdown and the model beside it.
pub fn summarise(
    last: &Snapshot,
    ctx: &RunContext,
    config: RunConfig,
    ended: EndedBy,
    missed: u64,
    slo: Option<Target>,
) -> RunSummary {
    let mut run = RunSummary::new(last, config, ended, missed);
    run.command.clone_from(&ctx.command);
    run.http = ctx.http.as_ref().map(|h| h.stats.report(&h.target));
    run.model = Some(match report::trace_model::replayed(last, ctx.arrivals.as_ref()) {
        Some(a) => report::trace_model::trace_report_with_distribution(last, slo, a),
        None => report::model_report(last, slo).with_distribution(last),
    });
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

/// Follows snapshots until the final one, calling `each` on every other; SIGINT and SIGTERM ask
/// the engine to end the run gracefully. Returns the signal that ended it, if any.
pub async fn follow(
    engine: &EngineHandle,
    mut each: impl FnMut(&Snapshot) -> anyhow::Result<()>,
) -> anyhow::Result<Option<EndedBy>> {
    let mut rx = engine.subscribe();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut signal = None;
    let mut link = crate::metrics::LinkView::default();
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let snap = rx.borrow_and_update().clone();
                if snap.finished {
                    break;
                }
                // A broker run's connection: its losses and returns, on stderr as they happen.
                if let Some(b) = &snap.broker {
                    if let Some(news) = b.link.news(&link, &b.url) {
                        eprintln!("pooltune: {news}");
                    }
                    link = b.link;
                }
                each(&snap)?;
            }
            _ = tokio::signal::ctrl_c(), if signal.is_none() => {
                signal = Some(EndedBy::Interrupt);
                let _ = engine.send(Command::Shutdown).await;
            }
            _ = term.recv(), if signal.is_none() => {
                signal = Some(EndedBy::Terminate);
                let _ = engine.send(Command::Shutdown).await;
            }
        }
    }
    Ok(signal)
}
