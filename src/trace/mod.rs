//! Arrival traces: a user's own arrival times (and optionally service times) read from a file,
//! for the engine to replay and the model to describe; and samples of service times read the
//! same way. A pure library: no tokio, no UI.
//!
//! # Formats, detected from the first non-blank line
//! - **JSON lines** when it starts with `{`: one object per line. The time field is the one
//!   named by [`TraceSpec::column`], else the first of `timestamp`, `time`, `ts`, `t`, `arrival`,
//!   `arrival_time` present on the first line; a line without it is an error naming the line.
//!   Numbers keep their exact digits (they are not read through an `f64`).
//! - **TSV** when it holds a tab, else **CSV** when it holds a comma, else **one value per
//!   line**. The first line is a header when one of its fields is neither a time nor a number
//!   (empty fields aside).
//!   The time column is the one named (a header name, exact or ignoring ASCII case, or else a
//!   column number counting from 1, which also works without a header), else the
//!   first column named like a time (the JSON names above) holding a time in the first data
//!   line, else the first holding a timestamp, else the first holding a number. Fields may be
//!   quoted (`"…"`, with `""` for a quote; a quoted field cannot span lines) and are trimmed of
//!   spaces.
//! - A UTF-8 byte order mark, `\r\n` line ends, blank lines and a last line without a newline
//!   are accepted anywhere. Line numbers in messages count every line of the file from 1.
//!
//! # Times
//! - Timestamps `YYYY-MM-DD HH:MM:SS[.fraction][zone]`, with a space or `T` between date and
//!   time; the zone `Z`, `±HH:MM`, `±HHMM` or `±HH` (converted to UTC), or none (taken as-is:
//!   only differences matter). Fractions up to 9 digits; more are truncated. Years 1678..2261.
//! - Bare numbers, integer or decimal (`12`, `12.5`, `.5`, `-3`): epoch times or offsets. Their
//!   unit is [`TraceSpec::unit`] when given, else decided by the first value's magnitude:
//!   ≥ 1e17 nanoseconds, ≥ 1e14 microseconds, ≥ 1e11 milliseconds, else seconds (epoch seconds
//!   since 2001 are ~1e9; offsets are small). The decision is stated in [`Trace::describe`].
//! - Every value must be of the kind of the first one (timestamps or numbers).
//!
//! # Order, window, service
//! - A trace that goes backwards is sorted (stably; service times move with their arrivals);
//!   [`Trace::moved`] counts the arrivals earlier than one before them in the file, and
//!   [`Trace::first_moved_line`] names the first, for the caller's warning. Equal times stay:
//!   they are offered together.
//! - [`TraceSpec::window`] `(FROM, TO)` keeps the arrivals with FROM ≤ t − t₀ < TO, where t₀ is
//!   the trace's earliest arrival, then re-bases so the first kept is 0. An empty window is an
//!   error stating the trace's span.
//! - The service column ([`ServiceSpec`]) holds durations with a unit (`12ms`, `1.5s`, `250us`,
//!   `2m`), bare numbers in the given unit (refused without one), or sizes: time = base +
//!   `per_unit` × size. Negative or non-numeric values are errors.
//!
//! # Service samples
//! [`load_sample`] reads a sample of service times (`--service-sample FILE`) with the same
//! lines, fields, header and column rules and messages: one duration per line, a column, a
//! JSON-lines field, or a pooltune run's JSON (its service percentiles); rules in its module.
//!
//! # Cost
//! One pass over the bytes, no allocation per line (a quoted CSV field with `""` escapes or a
//! JSON string with escapes is copied). A loaded trace keeps 8 bytes per arrival (16 with service
//! times) besides the file's bytes while loading; `cargo run --release --example trace_load`
//! measures 10 million offsets.

mod delimited;
mod error;
mod json;
mod parse;
mod run_json;
mod sample;
mod service;
mod time;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use error::TraceError;
pub use sample::{DURATION_NAMES, SampleData, SampleSpec, load_sample, sample_bytes};
pub use time::TIME_FORMS;

use crate::duration;

/// How the time column's bare numbers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl TimeUnit {
    /// Nanoseconds in one of this unit.
    pub fn nanos(self) -> u64 {
        match self {
            TimeUnit::Seconds => 1_000_000_000,
            TimeUnit::Millis => 1_000_000,
            TimeUnit::Micros => 1_000,
            TimeUnit::Nanos => 1,
        }
    }

    /// The unit as `--arrivals-unit` takes it: `s`, `ms`, `us` or `ns`.
    pub fn short(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "s",
            TimeUnit::Millis => "ms",
            TimeUnit::Micros => "us",
            TimeUnit::Nanos => "ns",
        }
    }

    /// The unit in words, for descriptions.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "seconds",
            TimeUnit::Millis => "milliseconds",
            TimeUnit::Micros => "microseconds",
            TimeUnit::Nanos => "nanoseconds",
        }
    }
}

/// What the service column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSpec {
    /// Durations: values with a unit suffix (`12ms`) are always accepted; bare numbers are read
    /// in `unit`, and refused when it is `None`.
    Duration { unit: Option<TimeUnit> },
    /// Sizes (non-negative numbers): time = `base` + `per_unit` × value.
    Size { base: Duration, per_unit: Duration },
}

/// Durations with a unit only: what a spec holds when no service column is read.
impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec::Duration { unit: None }
    }
}

/// Where a trace is and how to read it (the `--arrivals-*` and `--service-column` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpec {
    pub path: PathBuf,
    /// `--arrivals-column NAME`: a CSV/TSV header name or a JSON-lines field.
    pub column: Option<String>,
    /// `--arrivals-unit s|ms|us|ns`: forces how bare numbers are read.
    pub unit: Option<TimeUnit>,
    /// `--service-column NAME`.
    pub service_column: Option<String>,
    pub service: ServiceSpec,
    /// `--arrivals-window FROM..TO`: offsets from the trace's first arrival.
    pub window: Option<(Duration, Duration)>,
}

impl TraceSpec {
    /// A spec reading `path` with everything detected: no named columns, no window.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TraceSpec {
            path: path.into(),
            column: None,
            unit: None,
            service_column: None,
            service: ServiceSpec::default(),
            window: None,
        }
    }
}

/// A loaded trace: arrival offsets (and service times), ready to replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Nanoseconds from the first arrival of the window: ascending, the first 0.
    pub offsets: Vec<u64>,
    /// Nanoseconds per arrival, the same length, when a service column was given.
    pub service: Option<Vec<u64>>,
    /// One line for the user: format, time kind and how it was decided, arrivals, span, mean rate.
    pub describe: String,
    /// Arrivals that were earlier than an arrival before them in the file (and were sorted).
    pub moved: usize,
    /// The line of the first of those.
    pub first_moved_line: Option<usize>,
}

/// Reads the trace `spec` names.
pub fn load(spec: &TraceSpec) -> Result<Trace, TraceError> {
    let (file, bytes) = read(&spec.path, "trace")?;
    load_bytes(&file, &bytes, spec)
}

/// The file's name for messages and its bytes; `what` names it if it cannot be read.
fn read(path: &std::path::Path, what: &'static str) -> Result<(String, Vec<u8>), TraceError> {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((file, bytes)),
        Err(e) => Err(TraceError::Read { file, what, why: e.to_string() }),
    }
}

/// Reads a trace held in memory (a shipped profile's, compiled in; [`load`] after reading the
/// file), named `file` in messages: JSON lines when the first line starts with `{`, else a
/// delimited file. Never panics, whatever the bytes.
pub fn load_bytes(file: &str, bytes: &[u8], spec: &TraceSpec) -> Result<Trace, TraceError> {
    let mut lines = parse::Lines::of(bytes).peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(TraceError::Empty { file: file.into(), why: "the file is empty or blank" });
    };
    let mut c = parse::Collector::new(file, spec);
    let layout = if first.trim_ascii_start().starts_with(b"{") {
        json::read(&mut lines, &mut c)?
    } else {
        delimited::read(&mut lines, &mut c)?
    };
    c.finish(&layout)
}

impl Trace {
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// From the first arrival to the last.
    pub fn span(&self) -> Duration {
        Duration::from_nanos(self.offsets.last().copied().unwrap_or(0))
    }

    /// Arrivals per second: (n − 1) / span, the reciprocal of the mean interarrival time. 0 for
    /// fewer than two arrivals, infinite when they all arrive at once.
    pub fn mean_rate(&self) -> f64 {
        if self.len() < 2 {
            return 0.0;
        }
        (self.len() - 1) as f64 / self.span().as_secs_f64()
    }

    /// Coefficient of variation (standard deviation / mean) of the interarrival times: 1 for a
    /// Poisson process, 0 for a regular one. NaN for fewer than two gaps or a zero mean.
    pub fn interarrival_cv(&self) -> f64 {
        let n = self.len().saturating_sub(1);
        if n < 2 {
            return f64::NAN;
        }
        let gaps = self.offsets.windows(2).map(|w| (w[1] - w[0]) as f64);
        let mean = self.span().as_nanos() as f64 / n as f64;
        if mean == 0.0 {
            return f64::NAN;
        }
        let var = gaps.map(|g| (g - mean) * (g - mean)).sum::<f64>() / n as f64;
        var.sqrt() / mean
    }

    /// Index of dispersion of counts: variance / mean of the arrivals in consecutive windows of
    /// `window` (the complete ones from 0 to the last arrival). 1 for Poisson, above for bursty,
    /// below for regular. NaN with fewer than two complete windows.
    pub fn dispersion(&self, window: Duration) -> f64 {
        let w = window.as_nanos();
        let windows = u128::from(self.offsets.last().copied().unwrap_or(0)).checked_div(w).unwrap_or(0);
        if windows < 2 {
            return f64::NAN;
        }
        let (mut sum, mut squares, mut current, mut count) = (0.0, 0.0, 0, 0.0f64);
        for &t in &self.offsets {
            let k = u128::from(t) / w;
            if k >= windows {
                break;
            }
            if k != current {
                (sum, squares, current, count) = (sum + count, squares + count * count, k, 0.0);
            }
            count += 1.0;
        }
        (sum, squares) = (sum + count, squares + count * count);
        let mean = sum / windows as f64;
        if mean == 0.0 {
            return f64::NAN;
        }
        (squares / windows as f64 - mean * mean) / mean
    }
}

/// Parses `FROM..TO` for `--arrivals-window`: durations like `10m..20m` or `0s..90s`; either
/// side may be empty (`..5m`, `1h..`). An open end is `Duration::ZERO` or `Duration::MAX`.
pub fn parse_window(text: &str) -> Result<(Duration, Duration), String> {
    const FORMS: &str = "FROM..TO with durations (10m..20m, 0s..90s, ..5m, 1h..)";
    let Some((from, to)) = text.split_once("..") else {
        return Err(format!("window '{text}' has no '..'; expected {FORMS}"));
    };
    let side = |s: &str, open: Duration| {
        if s.trim().is_empty() { Ok(open) } else { duration::parse(s).map_err(|e| format!("window '{text}': {e}")) }
    };
    let (from, to) = (side(from, Duration::ZERO)?, side(to, Duration::MAX)?);
    if from >= to {
        return Err(format!("window '{text}' is empty: FROM must be before TO; expected {FORMS}"));
    }
    Ok((from, to))
}

/// Parses `--arrivals-unit`: `s`, `ms`, `us` (or `µs`), `ns`.
pub fn parse_unit(text: &str) -> Result<TimeUnit, String> {
    match text.trim() {
        "s" | "sec" | "secs" | "seconds" => Ok(TimeUnit::Seconds),
        "ms" | "millis" | "milliseconds" => Ok(TimeUnit::Millis),
        "us" | "µs" | "micros" | "microseconds" => Ok(TimeUnit::Micros),
        "ns" | "nanos" | "nanoseconds" => Ok(TimeUnit::Nanos),
        _ => Err(format!("'{text}' is not a time unit; expected s, ms, us or ns")),
    }
}

/// A span for descriptions: to the millisecond above a second, exact below.
fn rounded(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        duration::format(Duration::from_millis(d.as_millis() as u64))
    } else {
        duration::format(d)
    }
}

/// A rate for descriptions, with three significant figures or more.
fn rate_text(rate: f64) -> String {
    match rate {
        r if !r.is_finite() => "all at the same time".into(),
        r if r >= 100.0 => format!("mean {r:.0}/s"),
        r if r >= 1.0 => format!("mean {r:.2}/s"),
        r => format!("mean {r:.4}/s"),
    }
}
