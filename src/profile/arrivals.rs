//! A profile's `[arrivals]` table: the trace it replays and how to read it, the same choices as
//! `--arrivals FILE` and its flags (a flag given on the command line wins over the profile).
//!
//! ```toml
//! [arrivals]
//! file = "bursty-trace.csv"     # relative to the profile's folder
//! column = "t_s"                # --arrivals-column
//! unit = "s"                    # --arrivals-unit: s, ms, us or ns
//! window = "0s..60s"            # --arrivals-window
//! loop = false                  # --loop
//! service_column = "tokens"     # --service-column
//! service_unit = "ms"           # --service-unit (bare durations)
//! service_base = "5ms"          # --service-base (sizes)
//! service_per_unit = "100us"    # --service-per-unit (sizes)
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration;
use crate::trace::{self, ServiceSpec, TraceSpec};

/// The keys `[arrivals]` takes.
pub const KEYS: &[&str] =
    &["file", "column", "unit", "window", "loop", "service_column", "service_unit", "service_base", "service_per_unit"];

/// A profile's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileArrivals {
    /// How to read it; `spec.path` as the profile names it until [`super::library::find`]
    /// resolves it against the profile's folder.
    pub spec: TraceSpec,
    pub looped: bool,
    /// A shipped profile's trace, compiled in with it (so it runs from any folder).
    pub embedded: Option<&'static [u8]>,
}

impl ProfileArrivals {
    /// Reads the trace.
    ///
    /// # Errors
    /// The file, the line and what was wrong.
    pub fn load(&self) -> Result<trace::Trace, trace::TraceError> {
        match self.embedded {
            Some(bytes) => trace::load_bytes(&self.spec.path.display().to_string(), bytes, &self.spec),
            None => trace::load(&self.spec),
        }
    }
}

/// One `[arrivals]` value, as text or a flag, for [`from_entries`].
pub enum Value {
    Text(String),
    Flag(bool),
}

/// Builds the table from its entries (`key`, value); each error is `(key, message)` for the
/// parser to locate.
pub fn from_entries(entries: Vec<(&str, Value)>) -> Result<ProfileArrivals, (String, String)> {
    let mut file = None;
    let mut spec = TraceSpec::new(PathBuf::new());
    let (mut looped, mut unit, mut base, mut per_unit) = (false, None, None, None);
    for (key, v) in entries {
        let bad = |m: String| (key.to_string(), m);
        let text = |v: Value| match v {
            Value::Text(t) => Ok(t),
            Value::Flag(_) => Err(bad(format!("{key} must be a string, not true or false"))),
        };
        let dur = |t: String| duration::parse(&t).map_err(|e| bad(format!("{key} {e}")));
        match key {
            "file" => file = Some(text(v)?),
            "column" => spec.column = Some(text(v)?),
            "unit" => spec.unit = Some(trace::parse_unit(&text(v)?).map_err(|e| bad(format!("unit {e}")))?),
            "window" => spec.window = Some(trace::parse_window(&text(v)?).map_err(|e| bad(format!("window {e}")))?),
            "loop" => match v {
                Value::Flag(b) => looped = b,
                Value::Text(_) => return Err(bad("loop must be true or false".into())),
            },
            "service_column" => spec.service_column = Some(text(v)?),
            "service_unit" => {
                unit = Some(trace::parse_unit(&text(v)?).map_err(|e| bad(format!("service_unit {e}")))?);
            }
            "service_base" => base = Some(dur(text(v)?)?),
            "service_per_unit" => per_unit = Some(dur(text(v)?)?),
            _ => return Err(bad(format!("unknown key '{key}' in [arrivals]; known keys: {}", KEYS.join(", ")))),
        }
    }
    spec.path = PathBuf::from(file.ok_or_else(|| {
        ("arrivals".to_string(), "[arrivals] needs file = \"PATH\" (the trace, relative to the profile)".to_string())
    })?);
    spec.service = match per_unit {
        Some(per_unit) => ServiceSpec::Size { base: base.unwrap_or(Duration::ZERO), per_unit },
        None => ServiceSpec::Duration { unit },
    };
    Ok(ProfileArrivals { spec, looped, embedded: None })
}

/// The table as TOML lines, for a recording.
#[must_use]
pub fn to_toml(a: &ProfileArrivals) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let s = &a.spec;
    let mut out = format!("\n[arrivals]\nfile = {}\n", q(&s.path.display().to_string()));
    let unit = |u: trace::TimeUnit| q(u.short());
    let lines = [
        s.column.as_deref().map(|c| format!("column = {}", q(c))),
        s.unit.map(|u| format!("unit = {}", unit(u))),
        s.window.map(|(a, b)| format!("window = {}", q(&format!("{}..{}", duration::format(a), duration::format(b))))),
        a.looped.then(|| "loop = true".to_string()),
        s.service_column.as_deref().map(|c| format!("service_column = {}", q(c))),
    ];
    for l in lines.into_iter().flatten() {
        out.push_str(&l);
        out.push('\n');
    }
    match s.service {
        ServiceSpec::Duration { unit: Some(u) } => {
            let _ = writeln!(out, "service_unit = {}", q(u.short()));
        }
        ServiceSpec::Duration { unit: None } => {}
        ServiceSpec::Size { base, per_unit } => {
            let _ = writeln!(out, "service_base = {}", q(&duration::format(base)));
            let _ = writeln!(out, "service_per_unit = {}", q(&duration::format(per_unit)));
        }
    }
    out
}
