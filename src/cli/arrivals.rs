//! `--arrivals FILE` and its flags, shared by `run`, `sweep` and `model`: reading the trace
//! (every bad input an exit-2 line before anything starts), and the settings a replay starts
//! with (`arrival = trace`, the rate that gives the speed asked, the trace's mean service).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::BadInput;
use crate::engine::replay::Arrivals;
use crate::profile::arrivals::ProfileArrivals;
use crate::settings::{ArrivalKind, Knob, Rate, Settings};
use crate::trace::{self, ServiceSpec, TimeUnit, TraceSpec};

#[derive(Debug, Clone, Default, Args)]
pub struct ArrivalsArgs {
    /// Replay the arrival instants in this file (CSV/TSV with a header, JSON lines, or one time
    /// a line; see the README's "Your own traffic")
    #[arg(long, value_name = "FILE")]
    pub arrivals: Option<PathBuf>,
    /// The column (CSV/TSV header name, or JSON-lines field) that holds the arrival times
    /// [default: the first that parses as a time]
    #[arg(long, value_name = "NAME", requires = "arrivals")]
    pub arrivals_column: Option<String>,
    /// How bare numbers in the time column are read: s, ms, us or ns [default: by their size]
    #[arg(long, value_name = "UNIT", requires = "arrivals", value_parser = unit)]
    pub arrivals_unit: Option<TimeUnit>,
    /// Replay only the arrivals from FROM to TO after the trace's first, e.g. 10m..20m
    #[arg(long, value_name = "FROM..TO", requires = "arrivals", value_parser = trace::parse_window)]
    pub arrivals_window: Option<(Duration, Duration)>,
    /// Start the trace again after its last arrival (one mean gap later) instead of ending
    #[arg(long = "loop", requires = "arrivals")]
    pub looped: bool,
    /// Each arrival's service time from this column of the same file (a duration such as 12ms,
    /// a number in --service-unit, or a size with --service-per-unit)
    #[arg(long, value_name = "NAME", requires = "arrivals")]
    pub service_column: Option<String>,
    /// The unit of bare numbers in the service column: s, ms, us or ns
    #[arg(long, value_name = "UNIT", requires = "service_column", value_parser = unit, conflicts_with = "service_per_unit")]
    pub service_unit: Option<TimeUnit>,
    /// The service column holds a size: each job takes --service-base plus this per unit
    /// (e.g. 1ms per generated token)
    #[arg(long, value_name = "DUR", requires = "service_column", value_parser = crate::duration::parse)]
    pub service_per_unit: Option<Duration>,
    /// With --service-per-unit: the time every job takes besides its size [default 0s]
    #[arg(long, value_name = "DUR", requires = "service_per_unit", value_parser = crate::duration::parse)]
    pub service_base: Option<Duration>,
}

fn unit(s: &str) -> Result<TimeUnit, String> {
    trace::parse_unit(s)
}

impl ArrivalsArgs {
    /// The file's spec.
    fn spec(&self, path: &Path, dir: Option<&Path>) -> TraceSpec {
        let path = match dir {
            Some(d) if path.is_relative() => d.join(path),
            _ => path.to_path_buf(),
        };
        let service = match self.service_per_unit {
            Some(per_unit) => ServiceSpec::Size { base: self.service_base.unwrap_or(Duration::ZERO), per_unit },
            None => ServiceSpec::Duration { unit: self.service_unit },
        };
        TraceSpec {
            path,
            column: self.arrivals_column.clone(),
            unit: self.arrivals_unit,
            service_column: self.service_column.clone(),
            service,
            window: self.arrivals_window,
        }
    }

    /// The trace to replay as a profile's `[arrivals]` would name it: the flags' file, or the
    /// profile's own when no `--arrivals` is given.
    #[must_use]
    pub fn source(&self, profile: Option<&ProfileArrivals>) -> Option<ProfileArrivals> {
        match &self.arrivals {
            Some(path) => Some(ProfileArrivals { spec: self.spec(path, None), looped: self.looped, embedded: None }),
            None => profile.cloned(),
        }
    }

    /// Reads the trace, if one is given (by these flags, or else by the profile); a warning
    /// (arrivals sorted) goes to stderr.
    ///
    /// # Errors
    /// [`BadInput`]: the file, the line and what was expected.
    pub fn load(&self, profile: Option<&ProfileArrivals>) -> Result<Option<Arrivals>, BadInput> {
        let Some(source) = self.source(profile) else { return Ok(None) };
        let path = source.spec.path.clone();
        let t = source.load().map_err(|e| BadInput(e.to_string()))?;
        if t.moved > 0 {
            eprintln!(
                "pooltune: {}: {} arrivals were earlier than one before them (the first at line {}); replayed in time order",
                path.display(),
                t.moved,
                t.first_moved_line.unwrap_or(0)
            );
        }
        let a = Arrivals::new(Arc::new(t), source.looped).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        Ok(Some(a))
    }
}

/// The settings a replay of `a` starts with: `arrival = trace`; the rate that replays it at
/// `speed` (or the `--rate` given: the two are one choice); with a service column, its mean as
/// the `service` knob unless `--service` was given (which then scales every job).
///
/// # Errors
/// `--speed` with `--rate`, `--rate max`, or `--arrival` naming another process.
pub fn replay_settings(
    mut s: Settings,
    given: &[Knob],
    a: &Arrivals,
    speed: Option<f64>,
) -> Result<Settings, BadInput> {
    let rate_given = given.iter().find_map(|k| if let Knob::Rate(r) = k { Some(*r) } else { None });
    if let Some(ArrivalKind::Trace) | None =
        given.iter().find_map(|k| if let Knob::Arrival(x) = k { Some(*x) } else { None })
    {
    } else {
        return Err(BadInput(
            "--arrivals replays a trace, and --arrival names another process; give one of them".into(),
        ));
    }
    s.arrival = ArrivalKind::Trace;
    s.rate = match (rate_given, speed) {
        (Some(_), Some(_)) => {
            return Err(BadInput(
                "--speed and --rate both set how fast a trace replays; give one (--speed K is --rate K × the trace's mean rate)".into(),
            ));
        }
        (Some(Rate::Max), None) => {
            return Err(BadInput(
                "--rate max is not accepted with --arrivals; a trace replays at its own instants (--speed K to compress it)".into(),
            ));
        }
        (Some(r), None) => r,
        // To the thousandth of a job a second, as the knob prints (the speed moves by a few
        // millionths for it).
        (None, k) => Rate::PerSec((a.mean_rate() * k.unwrap_or(1.0) * 1000.0).round() / 1000.0),
    };
    let service_given = given.iter().any(|k| matches!(k, Knob::Service(_)));
    if let (Some(mean), false) = (a.service_mean(), service_given) {
        // To the microsecond, the timer's resolution (and the knob's).
        s.service = Duration::from_micros((mean * 1e6).round() as u64);
    }
    s.validate().map_err(BadInput::from)?;
    Ok(s)
}
