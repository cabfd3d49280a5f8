//! Why a trace was refused: [`TraceError`], one line each, naming the file, the line where there
//! is one, what was found and what is accepted.

use super::time::TIME_FORMS;

/// The layouts a trace file may have, quoted when a file holds none.
pub const FORMATS: &str = "one time per line, CSV or TSV with a header line, or JSON lines";

/// The layouts a service sample may have, quoted when a file holds none.
pub const SAMPLE_FORMATS: &str = "one duration per line, a column of a CSV or TSV file, a field of JSON lines, \
     or a pooltune run's JSON (pooltune run --json)";

/// Why a trace file could not be read as arrivals. `Display` is the one line a user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The file is missing or unreadable (`what`: "trace", "service sample").
    #[error("{file}: cannot read the {what}: {why}")]
    Read { file: String, what: &'static str, why: String },
    /// Nothing to replay: an empty file, only blank lines, or a header without data.
    #[error("{file}: no arrivals: {why}; expected {FORMATS}")]
    Empty { file: String, why: &'static str },
    /// The header has no column of this name (`role` is "arrivals" or "service").
    #[error("{file}:{line}: the header has no {role} column '{name}'; its columns are: {}", columns.join(", "))]
    NoColumn { file: String, line: usize, role: &'static str, name: String, columns: Vec<String> },
    /// A column was named but the file has no header (its first line is data).
    #[error(
        "{file}:{line}: the {role} column '{name}' cannot be found: the file has no header line (its first line, \
         '{first}', is data); add a header line naming the columns, or give the column's number (1 is the first)"
    )]
    NoHeader { file: String, line: usize, role: &'static str, name: String, first: String },
    /// No column or field holds a time, and none was named.
    #[error("{file}:{line}: {message}")]
    NoTimeColumn { file: String, line: usize, message: String },
    /// A data line lacks the time or service value (too few fields, or a JSON field missing).
    #[error("{file}:{line}: {message}")]
    Missing { file: String, line: usize, message: String },
    /// A value that is not a time (or not of the same kind as the first one).
    #[error("{file}:{line}: '{value}' {why}; expected {expected}")]
    NotATime { file: String, line: usize, value: String, why: String, expected: String },
    /// A service value that is not a service time.
    #[error("{file}:{line}: service value '{value}' {why}; expected {expected}")]
    BadService { file: String, line: usize, value: String, why: &'static str, expected: String },
    /// A line of a JSON-lines file that is not a JSON object.
    #[error("{file}:{line}: not a JSON object ({why}); expected one JSON object per line, like {{\"ts\": 12.5}}")]
    NotJson { file: String, line: usize, why: String },
    /// A service sample without a value: an empty file, or a header without data.
    #[error("{file}: no service times: {why}; expected {SAMPLE_FORMATS}")]
    EmptySample { file: String, why: &'static str },
    /// A JSON document that is not a pooltune run's JSON with service times.
    #[error(
        "{file}: {why}; expected a pooltune run's JSON (pooltune run --json), whose service_ms holds its service \
         times' percentiles"
    )]
    NoServiceHistogram { file: String, why: String },
    /// The `--arrivals-window` keeps no arrival.
    #[error("{file}: the window {window} holds no arrivals; the trace spans {span} from its first arrival")]
    EmptyWindow { file: String, window: String, span: String },
}

/// The default `expected` of [`TraceError::NotATime`].
pub fn time_forms() -> String {
    TIME_FORMS.to_string()
}

/// A value for a message: lossy UTF-8, control characters escaped (a message stays one line),
/// at most 40 characters (an arbitrary line can be long).
pub fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(64));
    for (i, c) in text.chars().enumerate() {
        if i == 40 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
