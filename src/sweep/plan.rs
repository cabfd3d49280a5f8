//! What a sweep steps through: a numeric knob of the table, its values from FROM to TO on a
//! linear or log scale (each parsed as the knob's flag would be), and how long each step runs.

use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::settings::{KNOBS, Knob, KnobError, KnobSpec};

/// Why a sweep cannot be planned.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SweepError {
    #[error(transparent)]
    Knob(#[from] KnobError),
    #[error("{0} is not a numeric knob; a sweep steps one of: {1}")]
    NotNumeric(String, String),
    #[error("'{0}' is not a range; expected FROM..TO, e.g. 200..2000 or 1ms..10ms")]
    NotARange(String),
    #[error("the range {0}..{1} is empty; expected FROM below TO")]
    Empty(String, String),
    #[error("{0} steps cannot make a curve; expected 2 to 1000")]
    Steps(usize),
    #[error("a log scale needs FROM above 0 (got {0})")]
    LogFromZero(String),
}

/// How the steps are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Scale {
    Lin,
    Log,
}

/// What to sweep and how long each step takes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub knob: &'static str,
    pub values: Vec<Knob>,
    pub settle: Duration,
    pub per_step: Duration,
    pub stop_on_saturation: bool,
}

/// The knobs a sweep can step (the table's ramping ones).
#[must_use]
pub fn sweepable() -> Vec<&'static str> {
    KNOBS.iter().filter(|k| k.ramps).map(|k| k.key).collect()
}

impl Plan {
    /// Plans `steps` values of `knob` from `from` to `to` (each parsed as the knob's flag would
    /// be), evenly on `scale`, each value the nearest the knob can take.
    ///
    /// # Errors
    /// An unknown or non-numeric knob, an unparsable or empty range, fewer than 2 steps.
    pub fn values_of(
        knob: &str,
        range: &str,
        steps: usize,
        scale: Scale,
    ) -> Result<(&'static str, Vec<Knob>), SweepError> {
        let spec = KnobSpec::find(knob).ok_or_else(|| Knob::parse(knob, "0").unwrap_err())?;
        if !spec.ramps {
            return Err(SweepError::NotNumeric(spec.key.into(), sweepable().join(", ")));
        }
        let (from, to) = range.split_once("..").ok_or_else(|| SweepError::NotARange(range.into()))?;
        let (a, b) = (Knob::parse(spec.key, from.trim())?, Knob::parse(spec.key, to.trim())?);
        let (Some(x), Some(y)) = (a.ramp_value(), b.ramp_value()) else {
            return Err(SweepError::NotNumeric(format!("{} {from}..{to}", spec.key), sweepable().join(", ")));
        };
        if x >= y {
            return Err(SweepError::Empty(from.into(), to.into()));
        }
        if !(2..=1000).contains(&steps) {
            return Err(SweepError::Steps(steps));
        }
        if scale == Scale::Log && x <= 0.0 {
            return Err(SweepError::LogFromZero(from.into()));
        }
        #[allow(clippy::cast_precision_loss)]
        let at = |k: usize| {
            let f = k as f64 / (steps - 1) as f64;
            match scale {
                Scale::Lin => x + (y - x) * f,
                Scale::Log => x * (y / x).powf(f),
            }
        };
        // The ends as given; the steps between to 3 significant figures, the values a person
        // would choose (1410, not 1414.29): a step moves by at most 0.5% for it.
        let value = |k: usize| if k == 0 || k == steps - 1 { at(k) } else { round_sig(at(k), 3) };
        let mut values: Vec<Knob> = (0..steps).map(|k| a.with_ramp_value(value(k))).collect();
        values.dedup();
        Ok((spec.key, values))
    }
}

/// `x` rounded to `digits` significant figures.
fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(x.abs().log10().floor() as i32 - (digits - 1));
    (x / scale).round() * scale
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the values compared are exact by construction
mod tests {
    use super::*;

    #[test]
    fn plans_even_steps_on_either_scale() {
        let (k, v) = Plan::values_of("rate", "200..2000", 10, Scale::Lin).unwrap();
        assert_eq!(k, "rate");
        let xs: Vec<f64> = v.iter().map(|k| k.ramp_value().unwrap()).collect();
        assert_eq!(xs.first(), Some(&200.0));
        assert_eq!(xs.last(), Some(&2000.0));
        assert!((xs[1] - 400.0).abs() < 1e-9);
        let (_, v) = Plan::values_of("workers", "1..64", 7, Scale::Log).unwrap();
        let xs: Vec<f64> = v.iter().map(|k| k.ramp_value().unwrap()).collect();
        assert_eq!(xs, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        let (_, v) = Plan::values_of("service", "1ms..3ms", 3, Scale::Lin).unwrap();
        assert_eq!(v.iter().map(Knob::value_text).collect::<Vec<_>>(), ["1ms", "2ms", "3ms"]);
        // Steps between the ends as a person would write them, the ends as given.
        let text = |v: Vec<Knob>| v.iter().map(Knob::value_text).collect::<Vec<_>>();
        let (_, v) = Plan::values_of("rate", "200..2000", 8, Scale::Log).unwrap();
        assert_eq!(text(v), ["200", "278", "386", "537", "746", "1040", "1440", "2000"]);
        let (_, v) = Plan::values_of("rate", "100..1000", 8, Scale::Lin).unwrap();
        assert_eq!(text(v), ["100", "229", "357", "486", "614", "743", "871", "1000"]);
        let (_, v) = Plan::values_of("service", "1ms..2ms", 4, Scale::Log).unwrap();
        assert_eq!(text(v), ["1ms", "1.26ms", "1.59ms", "2ms"]);
    }

    #[test]
    fn bad_plans_say_what_is_accepted() {
        let msg = |r: Result<(&str, Vec<Knob>), SweepError>| r.unwrap_err().to_string();
        assert!(msg(Plan::values_of("wokers", "1..2", 2, Scale::Lin)).contains("did you mean 'workers'"));
        assert!(msg(Plan::values_of("policy", "1..2", 2, Scale::Lin)).contains("a sweep steps one of: workers"));
        assert!(msg(Plan::values_of("rate", "2000..200", 5, Scale::Lin)).contains("expected FROM below TO"));
        assert!(msg(Plan::values_of("rate", "200-2000", 5, Scale::Lin)).contains("expected FROM..TO"));
        assert!(msg(Plan::values_of("rate", "200..2000", 1, Scale::Lin)).contains("expected 2 to 1000"));
        assert!(msg(Plan::values_of("rate", "0..2000", 3, Scale::Log)).contains("FROM above 0"));
        assert!(msg(Plan::values_of("rate", "200..max", 3, Scale::Lin)).contains("not a numeric knob"));
    }
}
