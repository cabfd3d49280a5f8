//! A profile's `[service_sample]` table: the sample `service_dist = "empirical"` draws service
//! times from, the same choices as `--service-sample FILE` and its flags (a flag given on the
//! command line wins over the profile), and reading it into the model's [`ServiceSample`].
//!
//! ```toml
//! [service_sample]
//! file = "service-times.txt"    # relative to the profile's folder; or a pooltune run's JSON
//! column = "service_ms"         # --service-sample-column
//! unit = "ms"                   # --service-sample-unit: s, ms, us or ns (bare numbers)
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use super::arrivals::Value;
use crate::model::sample::ServiceSample;
use crate::trace::{self, SampleData, SampleSpec};

/// The keys `[service_sample]` takes.
pub const KEYS: &[&str] = &["file", "column", "unit"];

/// A profile's service sample; `spec.path` as the profile names it until
/// [`super::library::find`] resolves it against the profile's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSample {
    pub spec: SampleSpec,
}

impl ProfileSample {
    /// Reads the sample.
    ///
    /// # Errors
    /// One line naming the file (and the line, where there is one) and what was expected.
    pub fn load(&self) -> Result<ServiceSample, String> {
        let file = self.spec.path.display().to_string();
        let built = match trace::load_sample(&self.spec).map_err(|e| e.to_string())? {
            SampleData::Values(v) => ServiceSample::from_values(&file, v),
            SampleData::Percentiles { points, mean, count } => {
                ServiceSample::from_percentiles(&file, &points, mean, count)
            }
        };
        built.map_err(|why| format!("{file}: {why}"))
    }
}

/// Builds the table from its entries (`key`, value); each error is `(key, message)` for the
/// parser to locate.
pub fn from_entries(entries: Vec<(&str, Value)>) -> Result<ProfileSample, (String, String)> {
    let mut spec = SampleSpec::new(PathBuf::new());
    let mut file = None;
    for (key, v) in entries {
        let bad = |m: String| (key.to_string(), m);
        let Value::Text(text) = v else {
            return Err(bad(format!("{key} must be a string, not true or false")));
        };
        match key {
            "file" => file = Some(text),
            "column" => spec.column = Some(text),
            "unit" => spec.unit = Some(trace::parse_unit(&text).map_err(|e| bad(format!("unit {e}")))?),
            _ => {
                return Err(bad(format!("unknown key '{key}' in [service_sample]; known keys: {}", KEYS.join(", "))));
            }
        }
    }
    spec.path = PathBuf::from(file.ok_or_else(|| {
        (
            "service_sample".to_string(),
            "[service_sample] needs file = \"PATH\" (the sample, relative to the profile)".to_string(),
        )
    })?);
    Ok(ProfileSample { spec })
}

/// The table as TOML lines, for a recording.
#[must_use]
pub fn to_toml(p: &ProfileSample) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let s = &p.spec;
    let mut out = format!("\n[service_sample]\nfile = {}\n", q(&s.path.display().to_string()));
    if let Some(c) = &s.column {
        let _ = writeln!(out, "column = {}", q(c));
    }
    if let Some(u) = s.unit {
        let _ = writeln!(out, "unit = {}", q(u.short()));
    }
    out
}
