//! Parsing a profile, with every error located: `FILE:LINE:COL: message`.
//!
//! The TOML is read into a spanned table (`toml::de::DeTable`) and walked by hand, so that each
//! key and value keeps its position: an unknown key (with the nearest known one), a wrong type,
//! a value out of range, a bad duration, phases out of order or past the run, and the TOML
//! parser's own syntax errors all point at the place.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::arrivals::{self, ProfileArrivals};
use super::sample::{self, ProfileSample};
use super::{Phase, Profile, RunSpec};
use crate::duration;
use crate::engine::MAX_RUN;
use crate::settings::{KNOB_NAMES, Knob, KnobSpec, Settings, ValueKind, live_names};

/// A profile error with its position (1-based line and column; both 1 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ProfileError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Line and column (1-based, in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ProfileError {
        let (line, col) = position(self.text, span.start);
        ProfileError { file: self.file.to_string(), line, col, message: message.into() }
    }
}

/// Parses a profile from bytes (a file that is not UTF-8 text is refused with its position).
///
/// # Errors
/// The first problem found, located.
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Profile, ProfileError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains('\0') => {
            let at = text.find('\0').unwrap_or(0);
            Err(Ctx { file, text }
                .err(at..at, "this is not a text file (it contains a NUL byte); expected a TOML profile"))
        }
        Ok(text) => parse(file, text),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
            let (line, col) = position(good, good.len());
            Err(ProfileError {
                file: file.to_string(),
                line,
                col,
                message: format!(
                    "this is not a text file (invalid UTF-8 at byte {}); expected a TOML profile",
                    e.valid_up_to()
                ),
            })
        }
    }
}

const TOP_KEYS: &[&str] = &["name", "description", "workload", "run", "phase", "arrivals", "service_sample"];
const RUN_KEYS: &[&str] = &["duration", "warmup", "tick"];

/// `[workload]` takes every knob; a `[[phase]]` only those that change live.
fn phase_keys() -> Vec<&'static str> {
    let mut v = vec!["at", "ramp"];
    v.extend(live_names());
    v
}

fn unknown(ctx: &Ctx<'_>, key: &Spanned<toml::de::DeString<'_>>, section: &str, known: &[&str]) -> ProfileError {
    let name = key.get_ref().as_ref();
    let hint = crate::suggest::closest(name, known).map(|b| format!("; did you mean '{b}'?")).unwrap_or_default();
    ctx.err(key.span(), format!("unknown key '{name}' in {section}{hint} Known keys: {}", known.join(", ")))
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a whole number",
        DeValue::Float(_) => "a number with a fraction",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn string(ctx: &Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Result<String, ProfileError> {
    match v.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        other => Err(ctx.err(v.span(), format!("{key} must be a string, not {}", type_name(other)))),
    }
}

fn duration_of(ctx: &Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Result<Duration, ProfileError> {
    match v.get_ref() {
        DeValue::String(s) => duration::parse(s).map_err(|e| ctx.err(v.span(), format!("{key} {e}"))),
        other => {
            Err(ctx.err(v.span(), format!("{key} must be a duration string such as \"5s\", not {}", type_name(other))))
        }
    }
}

/// A knob's value as text for [`Knob::parse`], refusing TOML types the knob's kind cannot take.
fn knob_of(ctx: &Ctx<'_>, spec: &KnobSpec, v: &Spanned<DeValue<'_>>) -> Result<Knob, ProfileError> {
    let key = spec.key;
    let text = match (spec.kind, v.get_ref()) {
        (ValueKind::Count | ValueKind::Number | ValueKind::Rate, DeValue::Integer(i)) => integer_text(ctx, v, i)?,
        (ValueKind::Number | ValueKind::Rate, DeValue::Float(f)) => f.as_str().replace('_', ""),
        (ValueKind::Rate, DeValue::String(s)) if s.as_ref() == "max" => "max".to_string(),
        (ValueKind::Duration | ValueKind::OptionalDuration | ValueKind::Choice(_), DeValue::String(s)) => s.to_string(),
        (kind, other) => {
            return Err(ctx.err(v.span(), format!("{key} must be {}, not {}", kind.toml_want(), type_name(other))));
        }
    };
    Knob::parse(key, &text).map_err(|e| ctx.err(v.span(), e.to_string()))
}

fn integer_text(ctx: &Ctx<'_>, v: &Spanned<DeValue<'_>>, i: &toml::de::DeInteger<'_>) -> Result<String, ProfileError> {
    let digits = i.as_str().replace('_', "");
    if i.radix() == 10 {
        return Ok(digits);
    }
    let body = digits.trim_start_matches(['0', 'x', 'o', 'b']);
    u64::from_str_radix(if body.is_empty() { "0" } else { body }, i.radix())
        .map(|n| n.to_string())
        .map_err(|_| ctx.err(v.span(), format!("'{}' is not a number pooltune can read", i.as_str())))
}

fn table<'t, 'i>(ctx: &Ctx<'_>, key: &str, v: &'t Spanned<DeValue<'i>>) -> Result<&'t DeTable<'i>, ProfileError> {
    match v.get_ref() {
        DeValue::Table(t) => Ok(t),
        other => Err(ctx.err(v.span(), format!("{key} must be a table ([{key}]), not {}", type_name(other)))),
    }
}

/// Builds a table from its entries; an error is `(key, message)`, for the parser to locate.
type Build<T> = fn(Vec<(&str, arrivals::Value)>) -> Result<T, (String, String)>;

/// A table of strings and flags (`[arrivals]`, `[service_sample]`) named `name`, taking `keys`,
/// built by `build`: each error at the key it is about.
fn entries_table<T>(
    ctx: &Ctx<'_>,
    value: &Spanned<DeValue<'_>>,
    name: &str,
    keys: &'static [&'static str],
    build: Build<T>,
) -> Result<T, ProfileError> {
    let t = table(ctx, name, value)?;
    let mut entries = Vec::new();
    for (k, v) in t {
        let key_name = k.get_ref().as_ref();
        let Some(key) = keys.iter().find(|n| **n == key_name) else {
            return Err(unknown(ctx, k, &format!("[{name}]"), keys));
        };
        let value = match v.get_ref() {
            DeValue::Boolean(b) => arrivals::Value::Flag(*b),
            DeValue::String(s) => arrivals::Value::Text(s.to_string()),
            other => return Err(ctx.err(v.span(), format!("{key_name} must be a string, not {}", type_name(other)))),
        };
        entries.push((*key, value));
    }
    build(entries).map_err(|(key, message)| {
        let span = t.iter().find(|(k, _)| k.get_ref().as_ref() == key).map_or_else(|| value.span(), |(_, v)| v.span());
        ctx.err(span, message)
    })
}

/// `[arrivals]`.
fn parse_arrivals(ctx: &Ctx<'_>, value: &Spanned<DeValue<'_>>) -> Result<ProfileArrivals, ProfileError> {
    entries_table(ctx, value, "arrivals", arrivals::KEYS, arrivals::from_entries)
}

/// `[service_sample]`.
fn parse_sample(ctx: &Ctx<'_>, value: &Spanned<DeValue<'_>>) -> Result<ProfileSample, ProfileError> {
    entries_table(ctx, value, "service_sample", sample::KEYS, sample::from_entries)
}

/// Parses a profile's text.
///
/// # Errors
/// The first problem found, located.
pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
    let ctx = Ctx { file, text };
    let doc = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().lines().next().unwrap_or("invalid TOML").trim().to_string();
        ctx.err(span, format!("invalid TOML: {msg}"))
    })?;
    let mut p = Profile {
        name: String::new(),
        description: String::new(),
        workload: Vec::new(),
        run: RunSpec::default(),
        phases: Vec::new(),
        arrivals: None,
        service_sample: None,
    };
    let mut phase_spans = Vec::new();
    for (key, value) in doc.get_ref() {
        match key.get_ref().as_ref() {
            "name" => p.name = string(&ctx, "name", value)?,
            "description" => p.description = string(&ctx, "description", value)?,
            "workload" => {
                for (k, v) in table(&ctx, "workload", value)? {
                    match KnobSpec::find(k.get_ref().as_ref()).filter(|s| s.key == k.get_ref().as_ref()) {
                        Some(spec) => p.workload.push(knob_of(&ctx, spec, v)?),
                        None => return Err(unknown(&ctx, k, "[workload]", KNOB_NAMES)),
                    }
                }
            }
            "run" => {
                for (k, v) in table(&ctx, "run", value)? {
                    let name = k.get_ref().as_ref();
                    let d = match name {
                        "duration" | "warmup" | "tick" => duration_of(&ctx, name, v)?,
                        _ => return Err(unknown(&ctx, k, "[run]", RUN_KEYS)),
                    };
                    match name {
                        "duration" if d.is_zero() => {
                            return Err(ctx.err(v.span(), "duration 0s is not accepted; expected a positive duration"));
                        }
                        "duration" | "warmup" if d > MAX_RUN => {
                            return Err(ctx.err(
                                v.span(),
                                format!(
                                    "{name} {} is not accepted; expected at most 365d (a year)",
                                    duration::format(d)
                                ),
                            ));
                        }
                        "duration" => p.run.duration = Some(d),
                        "warmup" => p.run.warmup = Some(d),
                        _ => {
                            crate::engine::check_interval("tick", d).map_err(|e| ctx.err(v.span(), e))?;
                            p.run.tick = Some(d);
                        }
                    }
                }
            }
            "phase" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(ctx.err(
                        value.span(),
                        format!("phase must be an array of tables ([[phase]]), not {}", type_name(value.get_ref())),
                    ));
                };
                for item in items {
                    let (phase, at_span) = parse_phase(&ctx, item)?;
                    phase_spans.push(at_span);
                    p.phases.push(phase);
                }
            }
            "arrivals" => p.arrivals = Some(parse_arrivals(&ctx, value)?),
            "service_sample" => p.service_sample = Some(parse_sample(&ctx, value)?),
            _ => return Err(unknown(&ctx, key, "the profile", TOP_KEYS)),
        }
    }
    canonical(&mut p.workload);
    for ph in &mut p.phases {
        canonical(&mut ph.knobs);
    }
    check_timeline(&ctx, &p, &phase_spans)?;
    if let (Some(w), Some(d)) = (p.run.warmup, p.run.duration)
        && w >= d
    {
        let span = doc.get_ref().iter().find(|(k, _)| k.get_ref().as_ref() == "run").map_or(0..0, |(_, v)| v.span());
        return Err(ctx.err(
            span,
            format!("warmup {} is not shorter than duration {}", duration::format(w), duration::format(d)),
        ));
    }
    check_combinations(&ctx, &p, &doc, &phase_spans)?;
    Ok(p)
}

/// Each value was checked alone; this checks the settings they make together, at the start
/// (e.g. a uniform distribution with too high a CV) and after every phase.
fn check_combinations(
    ctx: &Ctx<'_>,
    p: &Profile,
    doc: &Spanned<DeTable<'_>>,
    spans: &[Range<usize>],
) -> Result<(), ProfileError> {
    let workload_span =
        doc.get_ref().iter().find(|(k, _)| k.get_ref().as_ref() == "workload").map_or(0..0, |(k, _)| k.span());
    let mut s = p.settings(&Settings::default());
    let mut current = match s.as_mut() {
        Ok(s) => s.clone(),
        Err(e) => return Err(ctx.err(workload_span, format!("[workload]: {e}"))),
    };
    for (ph, span) in p.phases.iter().zip(spans) {
        for k in &ph.knobs {
            current = current
                .with(*k)
                .map_err(|e| ctx.err(span.clone(), format!("phase at {}: {e}", duration::format(ph.at))))?;
        }
    }
    Ok(())
}

/// Knobs in the knob table's order, however the file (or the TOML map) ordered them.
fn canonical(knobs: &mut [Knob]) {
    knobs.sort_by_key(|k| KNOB_NAMES.iter().position(|n| *n == k.name()));
}

fn parse_phase(ctx: &Ctx<'_>, item: &Spanned<DeValue<'_>>) -> Result<(Phase, Range<usize>), ProfileError> {
    let t = table(ctx, "phase", item)?;
    let known = phase_keys();
    let (mut at, mut ramp, mut knobs) = (None, None, Vec::new());
    for (k, v) in t {
        match k.get_ref().as_ref() {
            "at" => at = Some((duration_of(ctx, "at", v)?, v.span())),
            "ramp" => ramp = Some(duration_of(ctx, "ramp", v)?),
            name => match KnobSpec::find(name).filter(|s| s.key == name && s.live) {
                Some(spec) => knobs.push(knob_of(ctx, spec, v)?),
                None => return Err(unknown(ctx, k, "[[phase]]", &known)),
            },
        }
    }
    let Some((at, span)) = at else {
        return Err(ctx.err(item.span(), "a [[phase]] needs at = \"…\", the time it starts"));
    };
    if knobs.is_empty() {
        return Err(ctx.err(item.span(), "a [[phase]] changes nothing; give at least one knob (e.g. rate = 900)"));
    }
    Ok((Phase { at, ramp, knobs }, span))
}

fn check_timeline(ctx: &Ctx<'_>, p: &Profile, spans: &[Range<usize>]) -> Result<(), ProfileError> {
    let mut last = Duration::ZERO;
    for (ph, span) in p.phases.iter().zip(spans) {
        if ph.at < last {
            return Err(ctx.err(
                span.clone(),
                format!(
                    "phase at {} comes before the one at {}; phases must be in time order",
                    duration::format(ph.at),
                    duration::format(last)
                ),
            ));
        }
        let end = ph.at + ph.ramp.unwrap_or_default();
        match (p.run.duration, ph.ramp) {
            (Some(d), None) if end > d => {
                return Err(ctx.err(
                    span.clone(),
                    format!("phase at {} is past the run's duration {}", duration::format(ph.at), duration::format(d)),
                ));
            }
            (Some(d), Some(r)) if end > d => {
                return Err(ctx.err(
                    span.clone(),
                    format!(
                        "phase at {} with ramp {} ends at {}, past the run's duration {}",
                        duration::format(ph.at),
                        duration::format(r),
                        duration::format(end),
                        duration::format(d)
                    ),
                ));
            }
            _ => {}
        }
        last = ph.at;
    }
    Ok(())
}
