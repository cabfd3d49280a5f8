//! A sample of service times (`--service-sample FILE`), read by the trace reader's own pieces
//! (its lines, fields, header and column rules, and messages): one duration per line, a column
//! of a CSV or TSV file, or a field of JSON lines; or a pooltune run's JSON, whose service-time
//! percentiles stand for the sample ([`super::run_json`]).
//!
//! # Layout
//! A file that is one JSON document with pooltune's keys (or any JSON document spanning lines)
//! is a run's JSON. Otherwise, as for a trace: **JSON lines** when the first line starts with `{`,
//! else **TSV** with a tab, **CSV** with a comma, else **one value per line**. The first line is
//! a header when one of its fields does not start like a number (a digit, a sign or a point).
//!
//! # The column
//! [`SampleSpec::column`] (a header name, exactly or ignoring ASCII case, or a column number
//! from 1; a JSON field); else the first column (or field, on the first line) whose name starts
//! with one of [`DURATION_NAMES`], ignoring case; else the first column whose first value starts
//! like a number and is not a timestamp, or a JSON line's only field.
//!
//! # Values
//! A duration with a unit (`12ms`, `1.5s`, `250us`, `2m`), or a bare number in
//! [`SampleSpec::unit`]: without it a bare number is refused, as a trace's service column refuses
//! it. A negative, empty or non-numeric value is an error naming the file and the line.

use std::path::PathBuf;

use super::delimited::{delimiter, fields, header_names, missing_field, named_column};
use super::error::{TraceError, quote};
use super::json::{check, keys, members, missing_member};
use super::parse::{LineIter, Lines};
use super::service::{self, UnitFlag};
use super::time::{StampError, parse_timestamp};
use super::{ServiceSpec, TimeUnit};

/// Header names (prefixes, ignoring ASCII case) taken for the sample's column when none is named.
pub const DURATION_NAMES: [&str; 5] = ["service", "duration", "latency", "elapsed", "time_taken"];

/// Where a bare number's unit is given, for messages.
const UNIT_FLAG: UnitFlag = ("--service-sample-unit", "unit in a profile's [service_sample]");

/// Where a sample is and how to read it (`--service-sample` and its flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    pub path: PathBuf,
    /// `--service-sample-column NAME`: a header name, a column number, or a JSON-lines field.
    pub column: Option<String>,
    /// `--service-sample-unit s|ms|us|ns`: the unit of bare numbers.
    pub unit: Option<TimeUnit>,
}

impl SampleSpec {
    /// A spec reading `path` with everything detected.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SampleSpec { path: path.into(), column: None, unit: None }
    }
}

/// What a sample file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleData {
    /// Durations in nanoseconds, in file order.
    Values(Vec<u64>),
    /// A run's service-time percentiles: (u, nanoseconds) for u = 0.5, 0.9, 0.99, 0.999 and 1
    /// (the largest), their mean in nanoseconds and how many times they summarise.
    Percentiles { points: Vec<(f64, f64)>, mean: f64, count: u64 },
}

/// Reads the sample `spec` names.
pub fn load_sample(spec: &SampleSpec) -> Result<SampleData, TraceError> {
    let (file, bytes) = super::read(&spec.path, "service sample")?;
    sample_bytes(&file, &bytes, spec)
}

/// Reads a sample held in memory, named `file` in messages. Never panics, whatever the bytes.
pub fn sample_bytes(file: &str, bytes: &[u8], spec: &SampleSpec) -> Result<SampleData, TraceError> {
    if let Some(run) = super::run_json::read(file, bytes) {
        return run.map(|r| SampleData::Percentiles { points: r.points, mean: r.mean, count: r.count });
    }
    let mut lines = Lines::of(bytes).peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(TraceError::EmptySample { file: file.into(), why: "the file is empty or blank" });
    };
    let r = Reader { file, service: ServiceSpec::Duration { unit: spec.unit }, values: Vec::new() };
    let values = if first.trim_ascii_start().starts_with(b"{") {
        r.json(&mut lines, spec.column.as_deref())?
    } else {
        r.delimited(&mut lines, spec.column.as_deref())?
    };
    if values.is_empty() {
        return Err(TraceError::EmptySample { file: file.into(), why: "the header has no data lines below it" });
    }
    Ok(SampleData::Values(values))
}

struct Reader<'a> {
    file: &'a str,
    service: ServiceSpec,
    values: Vec<u64>,
}

impl Reader<'_> {
    fn push(&mut self, line: usize, value: &[u8]) -> Result<(), TraceError> {
        let ns = service::nanos(value, &self.service).map_err(|why| TraceError::BadService {
            file: self.file.into(),
            line,
            value: quote(value),
            why,
            expected: service::accepted(&self.service, UNIT_FLAG),
        })?;
        self.values.push(ns);
        Ok(())
    }

    fn delimited(mut self, lines: &mut LineIter<'_>, column: Option<&str>) -> Result<Vec<u64>, TraceError> {
        let Some(&(first_no, first)) = lines.peek() else { return Ok(self.values) };
        let (delim, _) = delimiter(first);
        let names = fields(first, delim).any(|f| !f.is_empty() && !numeric(&f)).then(|| {
            lines.next();
            header_names(first, delim)
        });
        let col = match (column, lines.peek()) {
            (Some(name), _) => named_column(self.file, (first_no, first), names.as_deref(), "service sample", name)?,
            (None, Some(&(no, row))) => choose(row, delim, names.as_deref()).ok_or_else(|| TraceError::NoTimeColumn {
                file: self.file.into(),
                line: no,
                message: format!(
                    "no column holds a duration in '{}'; expected {}, or name the column with --service-sample-column",
                    quote(row),
                    service::accepted(&self.service, UNIT_FLAG)
                ),
            })?,
            (None, None) => 0,
        };
        for (no, line) in lines {
            let Some(value) = fields(line, delim).nth(col) else {
                return Err(missing_field(self.file, (no, line), delim, names.as_deref(), "service sample", col));
            };
            self.push(no, &value)?;
        }
        Ok(self.values)
    }

    fn json(mut self, lines: &mut LineIter<'_>, column: Option<&str>) -> Result<Vec<u64>, TraceError> {
        let Some(&(first_no, first)) = lines.peek() else { return Ok(self.values) };
        check(self.file, first_no, first)?;
        let key = match column {
            Some(name) => name.as_bytes().to_vec(),
            None => self.json_key(first_no, first)?,
        };
        for (no, line) in lines {
            check(self.file, no, line)?;
            let Some((_, value)) = members(line).find(|(k, _)| **k == *key) else {
                let name = String::from_utf8_lossy(&key);
                return Err(missing_member(self.file, (no, line), "service sample", &name));
            };
            self.push(no, &value)?;
        }
        Ok(self.values)
    }
}

impl Reader<'_> {
    /// The field when none is named: the first named like a duration, else the only one.
    fn json_key(&self, first_no: usize, first: &[u8]) -> Result<Vec<u8>, TraceError> {
        let all: Vec<Vec<u8>> = members(first).map(|(k, _)| k.into_owned()).collect();
        if let Some(k) = all.iter().find(|k| duration_name(&String::from_utf8_lossy(k))) {
            return Ok(k.clone());
        }
        if let [only] = all.as_slice() {
            return Ok(only.clone());
        }
        Err(TraceError::NoTimeColumn {
            file: self.file.into(),
            line: first_no,
            message: format!(
                "no service-time field; expected one named like {}, or name it with --service-sample-column; the \
                 line has: {}",
                DURATION_NAMES.join(", "),
                keys(first)
            ),
        })
    }
}

/// A field that starts like a number: a digit, a sign or a point.
fn numeric(field: &[u8]) -> bool {
    field.first().is_some_and(|b| b.is_ascii_digit() || b"+-.".contains(b))
}

/// A header name that says it holds durations.
fn duration_name(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    DURATION_NAMES.iter().any(|d| lower.starts_with(d))
}

/// The column when none is named, from the first data row: one named like a duration, else
/// the first holding a number (not a timestamp).
fn choose(row: &[u8], delim: Option<u8>, names: Option<&[String]>) -> Option<usize> {
    let named = names.and_then(|n| n.iter().position(|name| duration_name(name)));
    named.or_else(|| fields(row, delim).position(|f| numeric(&f) && parse_timestamp(&f) == Err(StampError::NotStamp)))
}

#[cfg(test)]
#[path = "sample_tests.rs"]
mod tests;
