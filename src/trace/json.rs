//! JSON lines: each line is checked to be a JSON object (by `serde_json`, without building it),
//! then its top-level members are scanned in place, so a number keeps its exact digits
//! (`1700000000.123456789` is not rounded through an `f64`) and a string is copied only when it
//! has escapes.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::delimited::TIME_NAMES;
use super::error::{TraceError, quote};
use super::parse::{Collector, LineIter};

/// Reads every line into `c`; returns the layout for the trace's description.
pub(super) fn read(lines: &mut LineIter<'_>, c: &mut Collector<'_>) -> Result<String, TraceError> {
    let Some(&(first_no, first)) = lines.peek() else { return Ok(String::new()) };
    check(c.file, first_no, first)?;
    let (key, how) = if let Some(name) = &c.spec.column {
        (name.clone(), "named by --arrivals-column")
    } else {
        let found = TIME_NAMES.iter().find(|name| members(first).any(|(k, _)| *k == *name.as_bytes()));
        let Some(name) = found else {
            return Err(TraceError::NoTimeColumn {
                file: c.file.into(),
                line: first_no,
                message: format!(
                    "no time field; expected one of {}, or name the field with --arrivals-column; the line has: {}",
                    TIME_NAMES.join(", "),
                    keys(first)
                ),
            });
        };
        ((*name).to_string(), "the first of the usual names")
    };
    let service_key = c.spec.service_column.clone();
    for (no, line) in lines {
        check(c.file, no, line)?;
        let (mut time, mut service) = (None, None);
        for (k, v) in members(line) {
            if time.is_none() && *k == *key.as_bytes() {
                time = Some(v.clone());
            }
            if service.is_none() && service_key.as_ref().is_some_and(|s| *k == *s.as_bytes()) {
                service = Some(v);
            }
        }
        let missing = |role: &str, name: &str| missing_member(c.file, (no, line), role, name);
        let time = time.ok_or_else(|| missing("arrivals", &key))?;
        if let (Some(name), None) = (&service_key, &service) {
            return Err(missing("service", name));
        }
        c.push(no, &time, service.as_deref())?;
    }
    Ok(format!("JSON lines, field '{key}' ({how})"))
}

/// Line `no` lacks the field `name` (the `role` field).
pub(super) fn missing_member(file: &str, (no, line): (usize, &[u8]), role: &str, name: &str) -> TraceError {
    TraceError::Missing {
        file: file.into(),
        line: no,
        message: format!(
            "no field '{name}' (the {role} field); expected it on every line; the line has: {}",
            keys(line)
        ),
    }
}

/// A line must be one JSON object.
pub(super) fn check(file: &str, line: usize, text: &[u8]) -> Result<(), TraceError> {
    let fail = |why: String| TraceError::NotJson { file: file.into(), line, why };
    serde_json::from_slice::<IgnoredAny>(text).map_err(|e| fail(e.to_string()))?;
    if text.trim_ascii_start().starts_with(b"{") {
        Ok(())
    } else {
        Err(fail(format!("found '{}'", quote(text.trim_ascii()))))
    }
}

/// The keys of a line, for messages.
pub(super) fn keys(line: &[u8]) -> String {
    let keys: Vec<String> = members(line).map(|(k, _)| format!("'{}'", quote(&k))).collect();
    if keys.is_empty() { "no fields".into() } else { keys.join(", ") }
}

/// The top-level members of a JSON object line as (key, value) bytes: a string value without
/// its quotes (unescaped), any other value as written. Stops quietly at anything malformed.
pub(super) fn members(line: &[u8]) -> Members<'_> {
    let start = line.iter().position(|&b| b == b'{').map_or(line.len(), |p| p + 1);
    Members { s: line, i: start }
}

pub(super) struct Members<'l> {
    s: &'l [u8],
    i: usize,
}

impl<'l> Members<'l> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace() || *b == b',') {
            self.i += 1;
        }
    }

    /// The string starting at `self.i` (a `"`), unescaped; moves past it.
    fn string(&mut self) -> Option<Cow<'l, [u8]>> {
        let start = self.i;
        let (mut j, mut escaped) = (start + 1, false);
        loop {
            match self.s.get(j)? {
                b'\\' => (escaped, j) = (true, j + 2),
                b'"' => break,
                _ => j += 1,
            }
        }
        self.i = j + 1;
        if escaped {
            let text: String = serde_json::from_slice(&self.s[start..=j]).ok()?;
            Some(Cow::Owned(text.into_bytes()))
        } else {
            Some(Cow::Borrowed(&self.s[start + 1..j]))
        }
    }

    /// Moves past a non-string value (a number, a literal, or a nested object or array).
    fn skip_value(&mut self) -> Option<&'l [u8]> {
        let start = self.i;
        let mut depth = 0usize;
        while let Some(&b) = self.s.get(self.i) {
            match b {
                b'"' if depth > 0 => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' | b',' if depth == 0 => break,
                b if b.is_ascii_whitespace() && depth == 0 => break,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
            self.i += 1;
        }
        Some(&self.s[start..self.i])
    }
}

impl<'l> Iterator for Members<'l> {
    type Item = (Cow<'l, [u8]>, Cow<'l, [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        self.skip_ws();
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let key = self.string()?;
        self.skip_ws();
        if self.s.get(self.i) != Some(&b':') {
            return None;
        }
        self.i += 1;
        self.skip_ws();
        let value = if self.s.get(self.i) == Some(&b'"') { self.string()? } else { Cow::Borrowed(self.skip_value()?) };
        Some((key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(line: &str) -> Vec<(String, String)> {
        members(line.as_bytes())
            .map(|(k, v)| (String::from_utf8_lossy(&k).into(), String::from_utf8_lossy(&v).into()))
            .collect()
    }

    #[test]
    fn members_keep_numbers_exact_and_skip_nested_values() {
        let got = all(r#"{"a": {"x": [1, "}"]}, "ts": 1700000000.123456789, "s\"q": "12\"ms", "n": null}"#);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "ts", "s\"q", "n"]);
        assert_eq!(got[1].1, "1700000000.123456789");
        assert_eq!(got[2].1, "12\"ms");
        assert_eq!(got[3].1, "null");
        assert_eq!(all("{}"), []);
    }
}
