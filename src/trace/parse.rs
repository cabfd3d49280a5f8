//! The pieces of the single pass over a trace's bytes: lines (BOM, CRLF and blank lines
//! handled) and the [`Collector`] that the format's reader (`delimited`, `json`; chosen from the
//! first line by [`super::load_bytes`]) feeds each time to (deciding the kind
//! and unit from the first), counts arrivals out of order, then sorts, windows and re-bases.

use std::iter::Peekable;
use std::time::Duration;

use super::error::{TraceError, quote, time_forms};
use super::time::{Number, StampError, parse_timestamp, unit_by_magnitude};
use super::{TimeUnit, Trace, TraceSpec, service};
use crate::duration;

/// The non-blank lines of a file with their 1-based line numbers, without `\n` or `\r\n`.
pub(super) struct Lines<'b> {
    bytes: &'b [u8],
    pos: usize,
    line: usize,
}

pub(super) type LineIter<'b> = Peekable<Lines<'b>>;

impl<'b> Lines<'b> {
    /// The lines of a file's bytes, a UTF-8 byte order mark left out.
    pub(super) fn of(bytes: &'b [u8]) -> Lines<'b> {
        Lines { bytes: bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes), pos: 0, line: 0 }
    }
}

impl<'b> Iterator for Lines<'b> {
    type Item = (usize, &'b [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.bytes.len() {
            let rest = &self.bytes[self.pos..];
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            self.pos += end + 1;
            self.line += 1;
            let line = &rest[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some((self.line, line));
            }
        }
        None
    }
}

/// What the times are, fixed by the first value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stamp,
    Number(TimeUnit),
}

/// Gathers the arrivals (and service times) in file order.
pub(super) struct Collector<'a> {
    pub file: &'a str,
    pub spec: &'a TraceSpec,
    times: Vec<i64>,
    service: Option<Vec<u64>>,
    kind: Option<(Kind, usize)>,
    decision: String,
    max: i64,
    moved: usize,
    first_moved_line: Option<usize>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(file: &'a str, spec: &'a TraceSpec) -> Self {
        Collector {
            file,
            spec,
            times: Vec::new(),
            service: spec.service_column.as_ref().map(|_| Vec::new()),
            kind: None,
            decision: String::new(),
            max: i64::MIN,
            moved: 0,
            first_moved_line: None,
        }
    }

    /// One arrival from `line`: its time value and, when a service column was asked for, its
    /// service value.
    #[inline]
    pub fn push(&mut self, line: usize, time: &[u8], service: Option<&[u8]>) -> Result<(), TraceError> {
        let t = match self.kind {
            Some((Kind::Number(unit), _)) => match Number::parse(time).and_then(|n| n.to_nanos(unit)) {
                Some(t) => t,
                None => return Err(self.not_a_time(line, time)),
            },
            Some((Kind::Stamp, _)) => parse_timestamp(time).map_err(|_| self.not_a_time(line, time))?,
            None => self.first(line, time)?,
        };
        if let Some(values) = self.service.as_mut() {
            let value = service.unwrap_or_default();
            let ns = service::nanos(value, &self.spec.service).map_err(|why| TraceError::BadService {
                file: self.file.into(),
                line,
                value: quote(value),
                why,
                expected: service::accepted(&self.spec.service, service::COLUMN_UNIT),
            })?;
            values.push(ns);
        }
        if t < self.max {
            self.moved += 1;
            self.first_moved_line.get_or_insert(line);
        } else {
            self.max = t;
        }
        self.times.push(t);
        Ok(())
    }

    /// The first value decides the kind of every value, and the unit of bare numbers.
    fn first(&mut self, line: usize, time: &[u8]) -> Result<i64, TraceError> {
        let (kind, t) = match parse_timestamp(time) {
            Ok(t) => {
                self.decision = "timestamps".into();
                (Kind::Stamp, Some(t))
            }
            Err(StampError::OutOfRange) => (Kind::Stamp, None),
            Err(StampError::NotStamp) => {
                let Some(n) = Number::parse(time) else {
                    return Err(self.not_a_time(line, time));
                };
                let (unit, why) = if let Some(u) = self.spec.unit {
                    (u, "set by --arrivals-unit".to_string())
                } else {
                    let (u, rule) = unit_by_magnitude(n);
                    (u, format!("first value {} is {rule}; --arrivals-unit overrides", quote(time)))
                };
                self.decision = format!("numbers in {} ({why})", unit.name());
                (Kind::Number(unit), n.to_nanos(unit))
            }
        };
        self.kind = Some((kind, line));
        t.ok_or_else(|| self.not_a_time(line, time))
    }

    fn not_a_time(&self, line: usize, value: &[u8]) -> TraceError {
        let stamp = parse_timestamp(value);
        let number = Number::parse(value);
        let why = match (self.kind, stamp, number) {
            (_, Err(StampError::OutOfRange), _) => "is out of range (years 1678 to 2261)".to_string(),
            (Some((Kind::Number(u), _)), _, Some(_)) => format!("is too large for {}", u.name()),
            (Some((Kind::Number(_), first)), Ok(_), _) => {
                format!("is a timestamp, but the first value (line {first}) was a number")
            }
            (Some((Kind::Stamp, first)), _, Some(_)) => {
                format!("is a number, but the first value (line {first}) was a timestamp")
            }
            _ if value.is_empty() => "is empty".to_string(),
            _ => "is not a time".to_string(),
        };
        TraceError::NotATime { file: self.file.into(), line, value: quote(value), why, expected: time_forms() }
    }

    /// Sorts (stably, service times moving with their arrivals), applies the window and re-bases
    /// to offsets from the first arrival kept.
    pub(super) fn finish(self, layout: &str) -> Result<Trace, TraceError> {
        let Collector { file, spec, mut times, mut service, decision, moved, first_moved_line, .. } = self;
        if times.is_empty() {
            return Err(TraceError::Empty { file: file.into(), why: "the header has no data lines below it" });
        }
        if moved > 0 {
            match service.take() {
                None => times.sort_unstable(), // equal integers cannot be told apart: stable enough
                Some(values) => {
                    let mut pairs: Vec<(i64, u64)> = times.into_iter().zip(values).collect();
                    pairs.sort_by_key(|p| p.0);
                    let (t, s) = pairs.into_iter().unzip();
                    (times, service) = (t, Some(s));
                }
            }
        }
        let first = times[0];
        let file_span = times[times.len() - 1].abs_diff(first);
        let (from, to) = spec.window.unwrap_or((Duration::ZERO, Duration::MAX));
        let (from_ns, to_ns) = (saturating_nanos(from), saturating_nanos(to));
        let lo = times.partition_point(|t| t.abs_diff(first) < from_ns);
        let hi = if to == Duration::MAX { times.len() } else { times.partition_point(|t| t.abs_diff(first) < to_ns) };
        if lo >= hi {
            return Err(TraceError::EmptyWindow {
                file: file.into(),
                window: window_text(from, to),
                span: duration::format(Duration::from_nanos(file_span)),
            });
        }
        times.truncate(hi);
        times.drain(..lo);
        let base = times[0];
        // In place (same size and alignment): the offsets reuse the times' allocation.
        let mut offsets: Vec<u64> = times.into_iter().map(|t| t.abs_diff(base)).collect();
        // Growth and the window leave spare capacity: give it back (8 bytes an arrival).
        offsets.shrink_to_fit();
        if let Some(s) = service.as_mut() {
            s.truncate(hi);
            s.drain(..lo);
            s.shrink_to_fit();
        }
        let mut trace = Trace { offsets, service, describe: String::new(), moved, first_moved_line };
        let window = spec.window.map_or(String::new(), |(f, t)| {
            format!(" (window {} of {})", window_text(f, t), duration::format(Duration::from_nanos(file_span)))
        });
        trace.describe = format!(
            "{layout}, {decision}; {} arrivals over {}{window}, {}",
            trace.len(),
            super::rounded(trace.span()),
            super::rate_text(trace.mean_rate())
        );
        Ok(trace)
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `FROM..TO` as the user would write it (an open end left empty).
pub(super) fn window_text(from: Duration, to: Duration) -> String {
    let from = if from.is_zero() { String::new() } else { duration::format(from) };
    let to = if to == Duration::MAX { String::new() } else { duration::format(to) };
    format!("{from}..{to}")
}
