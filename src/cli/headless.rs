//! The headless runner: a client of the engine that follows its snapshots, streams the CSV
//! series, and writes the JSON summary and a short human summary when the run ends.
//!
//! SIGINT and SIGTERM end the run gracefully; the outputs are still written whole.

use std::io::{self, Write};
use std::path::Path;

use super::args::RunArgs;
use super::driver::Driver;
use super::{Outcome, RunContext, finish, summary};
use crate::engine::RunOptions;
use crate::model::advisor::Target;
use crate::report::slo::Track;
use crate::report::{EndedBy, RunConfig};
use crate::settings::Settings;

pub fn run(settings: Settings, opts: RunOptions, args: &RunArgs, ctx: &RunContext, mut driver: Driver) -> Outcome {
    let json_to_stdout = args.json.as_deref() == Some(Path::new("-"));
    let mut json = match &args.json {
        Some(p) if !json_to_stdout => Some(finish::open(p, "JSON")?),
        _ => None,
    };
    let config = RunConfig::new(&settings, &opts);
    // A target's attainment is read from each second's latency distribution.
    let opts = RunOptions { distributions: opts.distributions || settings.slo_p99.is_some(), ..opts };
    let mut track = Track::replaying(ctx.arrivals.clone());
    let engine = finish::start_engine(settings, opts, ctx)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _hook = crate::panic_hook::install(None);
    let progress = super::progress::Progress::for_run(opts.duration);
    let signal = rt.block_on(finish::follow(&engine, |snap| {
        progress.snapshot(snap);
        track.push(snap);
        for refusal in driver.on_snapshot(snap, &engine)? {
            progress.finish();
            eprintln!("pooltune: {refusal}");
        }
        Ok(())
    }))?;
    progress.finish();
    let last = engine.try_join()?;
    let missed = driver.missed_ticks();
    let left = driver.finish(&last)?;
    if let Some(path) = &left.recorded {
        eprintln!("pooltune: recorded the session to {}", path.display());
    }
    let ended_by = signal.unwrap_or_else(|| EndedBy::by_engine(&last, opts.duration));
    let slo = last.settings.slo_p99.map(|d| Target::P99(d.as_secs_f64()));
    let mut run = finish::summarise(&last, ctx, config, ended_by, missed, slo);
    run.adapt.references = track.references();
    let text = serde_json::to_string_pretty(&run)?;
    if let Some(f) = json.take() {
        finish::write_json(f, &text)?;
    }
    if let Some(r) = left.report {
        let path = r.write(&text)?;
        eprintln!("pooltune: wrote the report to {}", path.display());
    }
    let human = summary::render(&run);
    if json_to_stdout {
        print_ignoring_broken_pipe(&mut io::stdout(), &format!("{text}\n"));
        eprint!("{human}");
    } else {
        print_ignoring_broken_pipe(&mut io::stdout(), &human);
    }
    Ok(finish::exit_code(ended_by))
}

/// A closed pipe on stdout (`pooltune ... | head`) is the reader's choice, not an error.
fn print_ignoring_broken_pipe(out: &mut impl Write, text: &str) {
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
