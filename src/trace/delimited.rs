//! CSV, TSV and one value per line: the delimiter and header detected from the first line, the
//! time (and service) column chosen, and fields split without allocating (a quoted field with
//! `""` escapes is the only one copied).

use std::borrow::Cow;

use super::error::{TraceError, quote};
use super::parse::{Collector, LineIter};
use super::time::{Number, StampError, TIME_FORMS, parse_timestamp};

/// Header names taken for the time column when none is named (compared ignoring ASCII case);
/// JSON lines look for the same names.
pub const TIME_NAMES: [&str; 6] = ["timestamp", "time", "ts", "t", "arrival", "arrival_time"];

/// Reads every data line into `c`; returns the layout for the trace's description.
pub(super) fn read(lines: &mut LineIter<'_>, c: &mut Collector<'_>) -> Result<String, TraceError> {
    let Some(&(first_no, first)) = lines.peek() else { return Ok(String::new()) };
    let (delim, format) = delimiter(first);
    let names: Option<Vec<String>> = is_header(first, delim).then(|| {
        lines.next();
        header_names(first, delim)
    });
    let column =
        |role: &'static str, name: &String| named_column(c.file, (first_no, first), names.as_deref(), role, name);
    let service_col = c.spec.service_column.as_ref().map(|name| column("service", name)).transpose()?;
    let (time_col, how) = match &c.spec.column {
        Some(name) => (column("arrivals", name)?, "named by --arrivals-column"),
        None => match lines.peek() {
            Some(&(no, row)) => {
                choose(row, delim, names.as_deref()).ok_or_else(|| no_time_column(c.file, no, row, names.is_some()))?
            }
            None => (0, ""),
        },
    };
    let label = match &names {
        Some(names) if time_col < names.len() => format!("column '{}'", quote(names[time_col].as_bytes())),
        _ => format!("column {}", time_col + 1),
    };
    let layout = match (delim, &names) {
        (None, None) if c.spec.column.is_none() => format.to_string(),
        (_, None) => format!("{format} without a header, {label} ({how})"),
        (_, Some(_)) => format!("{format}, {label} ({how})"),
    };
    let last_col = time_col.max(service_col.unwrap_or(0));
    for (no, line) in lines {
        let (mut time, mut service) = (None, None);
        for (i, field) in fields(line, delim).enumerate().take(last_col + 1) {
            if i == time_col {
                time = Some(field.clone());
            }
            if Some(i) == service_col {
                service = Some(field);
            }
        }
        let missing = |role, col| missing_field(c.file, (no, line), delim, names.as_deref(), role, col);
        let time = time.ok_or_else(|| missing("arrivals", time_col))?;
        if service_col.is_some() && service.is_none() {
            return Err(missing("service", service_col.unwrap_or_default()));
        }
        c.push(no, &time, service.as_deref())?;
    }
    Ok(layout)
}

/// The delimiter the first line shows (a tab, else a comma, else none) and the layout's name.
pub(super) fn delimiter(first: &[u8]) -> (Option<u8>, &'static str) {
    if first.contains(&b'\t') {
        (Some(b'\t'), "TSV")
    } else if first.contains(&b',') {
        (Some(b','), "CSV")
    } else {
        (None, "one value per line")
    }
}

/// A header line's column names.
pub(super) fn header_names(first: &[u8], delim: Option<u8>) -> Vec<String> {
    fields(first, delim).map(|f| String::from_utf8_lossy(&f).into_owned()).collect()
}

/// The column `name` refers to (`role` names it in messages): a header name, exact or ignoring
/// ASCII case, else a column number from 1 (which also works without a header). `first` is the
/// file's first line, a header when `names` is given.
pub(super) fn named_column(
    file: &str,
    (first_no, first): (usize, &[u8]),
    names: Option<&[String]>,
    role: &'static str,
    name: &str,
) -> Result<usize, TraceError> {
    let number = || name.trim().parse::<usize>().ok().filter(|&n| n >= 1).map(|n| n - 1);
    match names {
        Some(names) => find(names, name).or_else(number).ok_or_else(|| TraceError::NoColumn {
            file: file.into(),
            line: first_no,
            role,
            name: name.to_string(),
            columns: names.iter().map(|n| format!("'{}'", quote(n.as_bytes()))).collect(),
        }),
        None => number().ok_or_else(|| TraceError::NoHeader {
            file: file.into(),
            line: first_no,
            role,
            name: name.to_string(),
            first: quote(first),
        }),
    }
}

/// Line `no` lacks field `col` (the `role` column).
pub(super) fn missing_field(
    file: &str,
    (no, line): (usize, &[u8]),
    delim: Option<u8>,
    names: Option<&[String]>,
    role: &str,
    col: usize,
) -> TraceError {
    let name = names.and_then(|n| n.get(col)).map_or(String::new(), |n| format!(" '{}'", quote(n.as_bytes())));
    let count = match fields(line, delim).count() {
        1 => "1 field".to_string(),
        n => format!("{n} fields"),
    };
    TraceError::Missing {
        file: file.into(),
        line: no,
        message: format!(
            "the line has {count}; the {role} column{name} is field {}; expected every line to have it",
            col + 1
        ),
    }
}

/// A header is a first line with a field that is neither a time nor a number.
fn is_header(first: &[u8], delim: Option<u8>) -> bool {
    fields(first, delim).any(|f| !f.is_empty() && kind(&f) == 0)
}

/// 2 for a timestamp (even out of range), 1 for a number, 0 for anything else.
fn kind(value: &[u8]) -> u8 {
    if parse_timestamp(value) == Err(StampError::NotStamp) { u8::from(Number::parse(value).is_some()) } else { 2 }
}

/// The column a name refers to: exactly, else ignoring ASCII case.
pub(super) fn find(names: &[String], name: &str) -> Option<usize> {
    names.iter().position(|n| n == name).or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(name)))
}

/// The time column when none is named, from the first data row: a column with a time name
/// holding a time, else the first holding a timestamp, else the first holding a number.
fn choose(row: &[u8], delim: Option<u8>, names: Option<&[String]>) -> Option<(usize, &'static str)> {
    // With a header, only its columns count: a longer data line's extra fields have no name.
    let columns = names.map_or(usize::MAX, <[String]>::len);
    let kinds: Vec<u8> = fields(row, delim).take(columns).map(|f| kind(&f)).collect();
    if let Some(names) = names {
        let named =
            names.iter().zip(&kinds).position(|(n, &k)| k > 0 && TIME_NAMES.iter().any(|t| n.eq_ignore_ascii_case(t)));
        if let Some(i) = named {
            return Some((i, "its name"));
        }
    }
    if let Some(i) = kinds.iter().position(|&k| k == 2) {
        return Some((i, "the first holding a timestamp"));
    }
    kinds.iter().position(|&k| k == 1).map(|i| (i, "the first holding a number"))
}

fn no_time_column(file: &str, line: usize, row: &[u8], header: bool) -> TraceError {
    let named = if header { format!(" or a column named {}", TIME_NAMES.join(", ")) } else { String::new() };
    TraceError::NoTimeColumn {
        file: file.into(),
        line,
        message: format!(
            "no column holds a time in '{}'; expected {TIME_FORMS}{named}, or name the column with --arrivals-column",
            quote(row)
        ),
    }
}

/// The fields of a line split at `delim` (the whole line when `None`), trimmed of spaces, with
/// `"…"` quotes removed and `""` inside them read as `"`. A quoted field cannot span lines.
pub(super) fn fields(line: &[u8], delim: Option<u8>) -> Fields<'_> {
    Fields { rest: Some(line), delim }
}

pub(super) struct Fields<'l> {
    rest: Option<&'l [u8]>,
    delim: Option<u8>,
}

impl<'l> Fields<'l> {
    fn pad(&self, b: u8) -> bool {
        b == b' ' || (b == b'\t' && self.delim != Some(b'\t'))
    }

    fn trim(&self, mut s: &'l [u8]) -> &'l [u8] {
        while let [first, rest @ ..] = s
            && self.pad(*first)
        {
            s = rest;
        }
        while let [rest @ .., last] = s
            && self.pad(*last)
        {
            s = rest;
        }
        s
    }
}

impl<'l> Iterator for Fields<'l> {
    type Item = Cow<'l, [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.trim(self.rest?);
        let Some(body) = s.strip_prefix(b"\"") else {
            let end = self.delim.and_then(|d| s.iter().position(|&b| b == d));
            self.rest = end.map(|e| &s[e + 1..]);
            return Some(Cow::Borrowed(self.trim(&s[..end.unwrap_or(s.len())])));
        };
        let (mut i, mut escaped) = (0, false);
        while let Some(&b) = body.get(i) {
            if b != b'"' {
                i += 1;
            } else if body.get(i + 1) == Some(&b'"') {
                escaped = true;
                i += 2;
            } else {
                break;
            }
        }
        let content = &body[..i];
        // After the closing quote, anything up to the delimiter is ignored (an unclosed quote
        // runs to the end of the line).
        let after = body.get(i + 1..).unwrap_or_default();
        self.rest = self.delim.and_then(|d| after.iter().position(|&b| b == d).map(|p| &after[p + 1..]));
        Some(if escaped {
            let mut owned = Vec::with_capacity(content.len());
            let mut rest = content;
            while let Some((&b, tail)) = rest.split_first() {
                owned.push(b);
                rest = if b == b'"' { tail.strip_prefix(b"\"").unwrap_or(tail) } else { tail };
            }
            Cow::Owned(owned)
        } else {
            Cow::Borrowed(content)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str, delim: Option<u8>) -> Vec<String> {
        fields(line.as_bytes(), delim).map(|f| String::from_utf8_lossy(&f).into_owned()).collect()
    }

    #[test]
    fn fields_split_trim_and_unquote() {
        assert_eq!(split("a, b ,c", Some(b',')), ["a", "b", "c"]);
        assert_eq!(split("a,,c,", Some(b',')), ["a", "", "c", ""]);
        assert_eq!(split(r#""x, y","say ""hi""",3"#, Some(b',')), ["x, y", r#"say "hi""#, "3"]);
        assert_eq!(split("\t1\t2", Some(b'\t')), ["", "1", "2"]);
        assert_eq!(split(r#"  "12.5"  "#, None), ["12.5"]);
        assert_eq!(split(r#""open, to the end"#, Some(b',')), ["open, to the end"]);
        assert_eq!(split(r#""a"junk,b"#, Some(b',')), ["a", "b"]);
    }

    #[test]
    fn headers_are_lines_that_are_not_all_times() {
        assert!(is_header(b"time,size", Some(b',')));
        assert!(!is_header(b"12.5,300", Some(b',')));
        assert!(!is_header(b"2023-11-16 18:17:03,1,", Some(b',')));
        assert!(is_header(b"ts", None));
        assert!(!is_header(b"1700000000", None));
    }
}
