//! The application side: command-line parsing, exit codes, and the clients of the engine
//! (the headless runner, the dashboard, the model printer).
//!
//! Exit status: 0 done; 1 a runtime failure; 2 bad input (flags, values, files), always with a
//! one-line message naming what was wrong and what is accepted; 130 and 143 when a run was ended
//! by SIGINT or SIGTERM (its outputs are still written whole).

pub mod app;
pub mod args;
mod dashboard;
mod driver;
mod finish;
mod headless;
mod logging;
mod model_cmd;
mod profiles_cmd;
mod summary;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

use crate::engine::RunOptions;
use crate::profile::RunSpec;
use crate::settings::Settings;
use args::{Cli, Cmd, KindFlag, RunArgs};

/// Your work, shared by every engine this process starts.
pub type Work = std::sync::Arc<dyn crate::work::Work>;

thread_local! {
    /// The work `main_with` was given, for the run commands (the CLI runs on one thread).
    static WORK: std::cell::RefCell<Option<Work>> = const { std::cell::RefCell::new(None) };
}

/// The work this process runs, if any.
pub(crate) fn work() -> Option<Work> {
    WORK.with(|w| w.borrow().clone())
}

/// The HTTP target and its status counts, when the run sends requests (`--target`).
pub(crate) type Http = (std::sync::Arc<crate::http::Target>, std::sync::Arc<crate::http::HttpStats>);

thread_local! {
    static HTTP: std::cell::RefCell<Option<Http>> = const { std::cell::RefCell::new(None) };
}

pub(crate) fn http() -> Option<Http> {
    HTTP.with(|h| h.borrow().clone())
}

/// With `--target`, the run's work becomes the HTTP service.
fn set_up_http(args: &RunArgs) -> Result<(), BadInput> {
    let kind = args.workload.service_kind;
    let Some(url) = &args.target else {
        return match kind {
            Some(KindFlag::Http) => {
                Err(BadInput("--service-kind http sends each job as a request: give its URL with --target URL".into()))
            }
            _ => Ok(()),
        };
    };
    if let Some(KindFlag::Synthetic(k)) = kind {
        return Err(BadInput(format!(
            "--target makes each job an HTTP request, so --service-kind {} does not apply; use --service-kind http or leave it out",
            k.value_text()
        )));
    }
    if work().is_some() {
        return Err(BadInput("--target and your own job were both given; a run has one kind of work".into()));
    }
    let target = crate::http::Target::new(
        url,
        args.method.as_deref().unwrap_or("GET"),
        &args.header,
        args.body.as_deref(),
        args.body_file.as_deref(),
    )
    .map_err(BadInput)?;
    let trust = crate::http::Trust { ca_cert: args.ca_cert.as_deref(), insecure: args.insecure };
    let w = crate::http::HttpWork::new(target, &trust).map_err(BadInput)?;
    HTTP.with(|h| *h.borrow_mut() = Some((std::sync::Arc::clone(&w.target), std::sync::Arc::clone(&w.stats))));
    WORK.with(|slot| *slot.borrow_mut() = Some(std::sync::Arc::new(w)));
    Ok(())
}

/// Bad input from the user: exit status 2 with this one-line message.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The default headless run length when neither `--duration` nor a job count ends the run.
pub const HEADLESS_DURATION: Duration = Duration::from_secs(10);

#[must_use]
pub fn main() -> ExitCode {
    main_with(None)
}

/// The command line, with `work` (your own job) in place of the synthetic service when given.
#[must_use]
pub fn main_with(work: Option<Work>) -> ExitCode {
    WORK.with(|w| *w.borrow_mut() = work);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let result = match cli.command {
        Some(Cmd::Run(cmd)) => run(cmd.profile.as_deref(), &cmd.args),
        Some(Cmd::Model(args)) => model_cmd::run(&args),
        Some(Cmd::Profiles) => profiles_cmd::list(),
        Some(Cmd::Validate { files }) => Ok(profiles_cmd::validate(&files)),
        None => run(None, &cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(bad) = e.downcast_ref::<BadInput>() {
                eprintln!("pooltune: {bad}");
                ExitCode::from(2)
            } else {
                eprintln!("pooltune: error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
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
    let tip = lines.find(|l| l.starts_with("tip:")).map(|t| format!(" ({t})")).unwrap_or_default();
    eprintln!("pooltune: {first}{tip}; see 'pooltune --help'");
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
    s.validate().map_err(BadInput)?;
    Ok(s)
}

/// The run's timing: flags, then the profile's `[run]`; headless runs default to 10 s unless a
/// job count ends them.
///
/// # Errors
/// [`BadInput`] when the warm-up is not shorter than the run.
pub fn options_from(args: &RunArgs, s: &Settings, headless: bool, spec: RunSpec) -> Result<RunOptions, BadInput> {
    let defaults = RunOptions::default();
    let duration = args.duration.or(spec.duration).or((headless && s.jobs.is_none()).then_some(HEADLESS_DURATION));
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
    Ok(RunOptions { duration, warmup, interval: args.interval.or(spec.tick).unwrap_or(defaults.interval), ..defaults })
}

fn run(profile: Option<&str>, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let profile = profile.map(crate::profile::library::find).transpose().map_err(BadInput)?;
    let profile = match (profile, args.speed) {
        (Some(p), Some(x)) => Some(p.time_scaled(x)),
        (p, None) => p,
        (None, Some(_)) => {
            return Err(BadInput(
                "--speed replays a profile faster; give one (pooltune run PROFILE --speed 10)".into(),
            )
            .into());
        }
    };
    let base = profile.as_ref().map_or_else(Settings::default, |p| p.starting(&Settings::default()));
    let settings = settings_from(base, args)?;
    set_up_http(args)?;
    if !args.headless && !std::io::stdout().is_terminal() {
        return Err(BadInput(
            "stdout is not a terminal, and the dashboard needs one; add --headless to run without it (with --json/--csv for output)".into(),
        )
        .into());
    }
    let log = logging::init(args.log.as_deref(), args.console)?;
    let spec = profile.as_ref().map(|p| p.run).unwrap_or_default();
    let opts = options_from(args, &settings, args.headless, spec)?;
    let driver = driver::Driver::new(
        args.csv.as_deref(),
        args.record.as_deref(),
        profile.as_ref(),
        &settings,
        RunSpec { tick: Some(opts.interval), warmup: (!opts.warmup.is_zero()).then_some(opts.warmup), duration: None },
        opts.interval,
    )?;
    if args.headless {
        if let Some(note) = &log.console_note {
            eprintln!("pooltune: {note}");
        }
        headless::run(settings, opts, args, driver)
    } else {
        dashboard::run(settings, opts, args, driver, log.console_note.as_deref())
    }
}
