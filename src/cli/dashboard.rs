//! `pooltune` and `pooltune run` without `--headless`: the live dashboard, then the same summary
//! and outputs a headless run leaves.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

use super::args::RunArgs;
use super::driver::Driver;
use super::finish::open;
use super::{BadInput, Outcome, RunContext, finish, summary};
use crate::engine::{EngineHandle, RunOptions};
use crate::metrics::Snapshot;
use crate::model::advisor::Target;
use crate::profile::timeline::Timeline;
use crate::report::{EndedBy, RunConfig};
use crate::settings::Settings;
use crate::tui::{self, State};

pub fn run(
    settings: Settings,
    opts: RunOptions,
    args: &RunArgs,
    ctx: &RunContext,
    mut driver: Driver,
    notes: &[String],
) -> Outcome {
    let opts = RunOptions { reset_on_change: true, distributions: true, ..opts };
    if args.json.as_deref() == Some(Path::new("-")) {
        return Err(BadInput("--json - needs --headless: the dashboard owns stdout".into()).into());
    }
    let json = args.json.as_deref().map(|p| open(p, "JSON")).transpose()?;
    let config = RunConfig::new(&settings, &opts);
    let slo = settings.slo_p99.map(|d| Target::P99(d.as_secs_f64()));
    let engine = finish::start_engine(settings, opts, ctx)?;
    let mut state = State::new(engine.latest(), opts.interval);
    state.slo = slo;
    state.work_label = ctx.http.as_ref().map(|h| format!("http {}", h.target.method));
    state.arrivals.clone_from(&ctx.arrivals);
    if !args.color.colour(std::env::var_os("NO_COLOR").as_deref(), std::env::var_os("TERM").as_deref()) {
        state.palette = crate::tui::Palette::Mono;
    }
    let mut sink = |snap: &Snapshot, engine: &EngineHandle, state: &mut State| {
        let refused = driver.on_snapshot(snap, engine).map_err(|e| io::Error::other(format!("{e:#}")))?;
        if let Some(r) = refused.into_iter().next_back() {
            state.error(r);
        }
        state.notes = driver.timeline.as_ref().map(|t| vec![t.progress()]).unwrap_or_default();
        state.timeline_running = driver.timeline.as_ref().filter(|t| t.running()).map(Timeline::progress);
        state.notes.extend(notes.iter().cloned());
        if let Some(h) = &ctx.http {
            state.notes.push(format!("http {}", h.stats.report(&h.target).line()));
        }
        Ok(())
    };
    let ended = tui::run_live(&engine, &mut state, &mut sink).context("running the dashboard")?;
    let last = engine.try_shutdown()?;
    let ended = if ended == EndedBy::Duration { EndedBy::by_engine(&last, opts.duration) } else { ended };
    let missed = driver.missed_ticks();
    let left = driver.finish(&last)?;
    let run = finish::summarise(&last, ctx, config, ended, missed, state.slo);
    let text = serde_json::to_string_pretty(&run)?;
    if let Some(f) = json {
        finish::write_json(f, &text)?;
    }
    let _ = io::stdout().write_all(summary::render(&run).as_bytes());
    if let Some(path) = left.recorded {
        println!("recorded the session to {}", path.display());
    }
    if let Some(r) = left.report {
        println!("wrote the report to {}", r.write(&text)?.display());
    }
    Ok(finish::exit_code(ended))
}
