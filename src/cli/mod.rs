//! The application side: command-line parsing, exit codes, and the clients of the engine
//! (the headless runner, the dashboard, the model printer, the Prometheus exporter).
//!
//! Exit status: 0 done; 1 a runtime failure; 2 bad input (flags, values, files), always with a
//! one-line message naming what was wrong and what is accepted; 130 and 143 when a run was ended
//! by SIGINT or SIGTERM (its outputs are still written whole).

pub mod app;
pub use context::{RunContext, Work};
pub mod args;
mod arrivals;
mod context;
mod conventions;
mod dashboard;
mod driver;
mod finish;
mod headless;
mod logging;
mod model_cmd;
mod model_fit;
mod model_partitions;
mod model_trace;
mod profiles_cmd;
mod progress;
mod prometheus;
mod report_cmd;
mod sample;
mod summary;
mod sweep_cmd;
mod version;
mod worker_cmd;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

use crate::engine::RunOptions;
use crate::profile::RunSpec;
use crate::settings::{ArrivalKind, Settings};
use args::{Cli, Cmd, RunArgs};

/// Bad input from the user: exit status 2 with this one-line message.
#[derive(Debug)]
pub struct BadInput(pub String);

/// The settings layer's refusals are the user's input.
impl From<crate::settings::SettingsError> for BadInput {
    fn from(e: crate::settings::SettingsError) -> Self {
        BadInput(e.to_string())
    }
}

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a command failed, and so its exit status: [`Failure::BadInput`] 2, anything else 1. The
/// status follows from the variant each failure is built as, never from inspecting an error.
#[derive(Debug)]
pub enum Failure {
    BadInput(BadInput),
    Failed(anyhow::Error),
}

impl Failure {
    /// Prints the one-line message and gives the exit status.
    fn report(&self) -> ExitCode {
        match self {
            Failure::BadInput(bad) => {
                eprintln!("pooltune: {bad}");
                ExitCode::from(2)
            }
            Failure::Failed(e) => {
                eprintln!("pooltune: error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

impl From<BadInput> for Failure {
    fn from(b: BadInput) -> Self {
        Failure::BadInput(b)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Failed(e.into())
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Failed(e.into())
    }
}

/// Settings the engine refuses are the user's input; anything else is a failure of the run.
impl From<crate::engine::EngineError> for Failure {
    fn from(e: crate::engine::EngineError) -> Self {
        match e {
            crate::engine::EngineError::Invalid(m) => Failure::BadInput(BadInput(m)),
            crate::engine::EngineError::Settings(e) => Failure::BadInput(e.into()),
            // A broker that cannot be reached or offers no JetStream is the user's --broker;
            // one that refuses the run's stream is a failure of the run.
            crate::engine::EngineError::Broker(e @ crate::engine::broker::BrokerError::Setup { .. }) => {
                Failure::Failed(e.into())
            }
            crate::engine::EngineError::Broker(e) => Failure::BadInput(BadInput(e.to_string())),
            other => Failure::Failed(other.into()),
        }
    }
}

/// A command's result: its exit status, or why it failed.
pub type Outcome = Result<ExitCode, Failure>;

/// The default headless run length when neither `--duration` nor a job count ends the run.
pub const HEADLESS_DURATION: Duration = Duration::from_secs(10);

#[must_use]
pub fn main() -> ExitCode {
    main_with(None)
}

/// The command line, with `work` (your own job) in place of the synthetic service when given.
#[must_use]
pub fn main_with(work: Option<Work>) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let result = match cli.command {
        Some(Cmd::Run(cmd)) => run(cmd.profile.as_deref(), &cmd.args, work),
        Some(Cmd::Model(args)) => model_cmd::run(&args),
        Some(Cmd::Sweep(args)) => sweep_cmd::run(&args, work),
        Some(Cmd::Worker(args)) => worker_cmd::run(&args, work),
        Some(Cmd::Report(args)) => report_cmd::run(&args),
        Some(Cmd::Profiles) => profiles_cmd::list(),
        Some(Cmd::Completions { shell }) => conventions::completions(shell),
        Some(Cmd::Man) => conventions::man(),
        Some(Cmd::Validate { files }) => Ok(profiles_cmd::validate(&files)),
        None => run(None, &cli.run, work),
    };
    result.unwrap_or_else(|f| f.report())
}

/// Help and version print as clap prints them; any other parse error becomes one line
/// (with clap's "did you mean" tip folded in) and exit status 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ");
    let rest: Vec<&str> = lines.collect();
    // A first line ending in ':' ("required arguments were not provided:") lists what it means
    // on the lines below it, up to the usage.
    let listed = if first.ends_with(':') {
        let items: Vec<&str> =
            rest.iter().copied().take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:")).collect();
        format!(" {}", items.join(", "))
    } else {
        String::new()
    };
    let tip = rest.iter().find(|l| l.starts_with("tip:")).map(|t| format!(" ({t})")).unwrap_or_default();
    eprintln!("pooltune: {first}{listed}{tip}; see 'pooltune --help'");
    ExitCode::from(2)
}

/// The settings a run starts with: the defaults, then each flag given.
///
/// # Errors
/// [`BadInput`] when the combination is invalid.
pub fn settings_from(base: Settings, args: &RunArgs) -> Result<Settings, BadInput> {
    let mut s = base;
    for k in args.workload.knobs() {
        k.apply(&mut s);
    }
    s.fill_batch_size();
    s.validate().map_err(BadInput::from)?;
    if let Some(n) = s.adaptive_start() {
        eprintln!(
            "pooltune: --adapt {} starts inside --workers-min..--workers-max ({}..{}): workers {} -> {n}",
            s.adapt, s.workers_min, s.workers_max, s.workers
        );
        s.workers = n;
    }
    Ok(s)
}

/// The run's timing: flags, then the profile's `[run]`; headless runs default to 10 s unless a
/// job count ends them.
///
/// # Errors
/// [`BadInput`] when the warm-up is not shorter than the run.
pub fn options_from(args: &RunArgs, s: &Settings, headless: bool, spec: RunSpec) -> Result<RunOptions, BadInput> {
    let defaults = RunOptions::default();
    // A batch ends when its jobs are done, and a trace once its last arrival is served; a looped
    // trace, like every other open process, runs the headless default.
    let ends = s.jobs.is_some() || (s.arrival == ArrivalKind::Trace && !args.trace.looped);
    let duration = args.duration.or(spec.duration).or((headless && !ends).then_some(HEADLESS_DURATION));
    let warmup = args.warmup.or(spec.warmup).unwrap_or(Duration::ZERO);
    if let Some(d) = duration {
        if d.is_zero() {
            return Err(BadInput("--duration 0s is not accepted; expected a positive duration".into()));
        }
        if warmup >= d {
            return Err(BadInput(format!(
                "--warmup {} is not shorter than the run ({}); expected a warm-up shorter than --duration",
                crate::duration::format(warmup),
                crate::duration::format(d)
            )));
        }
    }
    let opts =
        RunOptions { duration, warmup, interval: args.interval.or(spec.tick).unwrap_or(defaults.interval), ..defaults };
    opts.validate().map_err(BadInput)?;
    Ok(opts)
}

fn run(profile: Option<&str>, args: &RunArgs, work: Option<Work>) -> Outcome {
    let profile = profile.map(crate::profile::library::find).transpose().map_err(|e| BadInput(e.to_string()))?;
    let profile = match (profile, args.speed) {
        (Some(p), Some(x)) => Some(p.time_scaled(x)),
        (p, None) => p,
        (None, Some(_)) if args.trace.arrivals.is_some() => None,
        (None, Some(_)) => {
            return Err(BadInput(
                "--speed replays a profile or a trace faster; give one (pooltune run PROFILE --speed 10, or --arrivals FILE --speed 10)".into(),
            )
            .into());
        }
    };
    let base = profile.as_ref().map_or_else(Settings::default, |p| p.starting(&Settings::default()));
    let mut ctx = RunContext::new(work, args, profile.as_ref())?;
    let mut settings = settings_from(base, args)?;
    if let Some(a) = &ctx.arrivals {
        settings = arrivals::replay_settings(settings, &args.workload.knobs(), a, args.speed)?;
    }
    if let Some(sample) = &ctx.service_sample {
        let named: Vec<_> =
            profile.iter().flat_map(|p| p.workload.iter().copied()).chain(args.workload.knobs()).collect();
        let traced = ctx.arrivals.as_ref().is_some_and(|a| a.service_mean().is_some());
        settings = sample::sample_settings(settings, &named, sample, traced)?;
    }
    ctx.supplied().check(&settings)?;
    // A phase that switches to empirical service needs the sample too: refused now, not then.
    for k in profile.iter().flat_map(|p| &p.phases).flat_map(|ph| &ph.knobs) {
        if let crate::settings::Knob::ServiceDist(d) = k {
            ctx.supplied().check(&Settings { service_dist: *d, ..settings.clone() })?;
        }
    }
    if !args.headless && !std::io::stdout().is_terminal() {
        return Err(BadInput(
            "stdout is not a terminal, and the dashboard needs one; add --headless to run without it (with --json/--csv for output)".into(),
        )
        .into());
    }
    let log = logging::init(args.log.as_deref(), args.console)?;
    let spec = profile.as_ref().map(|p| p.run).unwrap_or_default();
    let opts = options_from(args, &settings, args.headless, spec)?;
    ctx.metrics = args.metrics.metrics_addr.map(|a| prometheus::Exporter::bind(a, true).map(Arc::new)).transpose()?;
    let exporter = |m: &Arc<prometheus::Exporter>| if args.headless { m.announcement() } else { m.note() };
    let notes: Vec<String> = log.console_note.iter().cloned().chain(ctx.metrics.as_ref().map(exporter)).collect();
    let mut driver = driver::Driver::new(
        args.csv.as_deref(),
        args.report.as_deref(),
        args.record.as_deref(),
        profile.as_ref(),
        &settings,
        RunSpec { tick: Some(opts.interval), warmup: (!opts.warmup.is_zero()).then_some(opts.warmup), duration: None },
        opts.interval,
    )?;
    driver.record_arrivals(args.trace.source(profile.as_ref().and_then(|p| p.arrivals.as_ref())));
    driver.record_service_sample(args.sample.source(profile.as_ref().and_then(|p| p.service_sample.as_ref())));
    if args.headless {
        for note in &notes {
            eprintln!("pooltune: {note}");
        }
        headless::run(settings, opts, args, &ctx, driver)
    } else {
        dashboard::run(settings, opts, args, &ctx, driver, &notes)
    }
}
