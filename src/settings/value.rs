//! [`KnobValue`]: how each kind of knob value is parsed, printed, range-checked and ramped, so
//! the knob table ([`super::knob`]) states only a knob's bounds, never its parsing or messages.
//!
//! One implementation per value type: counts (`usize`, `u64`), numbers (`f64`), durations,
//! an optional duration (`off` for none), the arrival [`Rate`], and the named enums.

use std::time::Duration;

use super::{Adapt, ArrivalKind, KnobError, Policy, Rate, ServiceDist, ServiceKind};
use crate::duration;

/// The shape of a knob's value, for everything that is not Rust: TOML types in profiles, the
/// README's table, help texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A whole number (TOML integer).
    Count,
    /// A number (TOML integer or float).
    Number,
    /// A duration string such as "5ms".
    Duration,
    /// A duration string, or "off" for none.
    OptionalDuration,
    /// Jobs per second (TOML number), or the string "max".
    Rate,
    /// One of a fixed set of names (TOML string).
    Choice(&'static str),
}

impl ValueKind {
    /// What a profile value of this kind must be, for type errors.
    #[must_use]
    pub fn toml_want(self) -> &'static str {
        match self {
            ValueKind::Count => "a whole number",
            ValueKind::Number => "a number",
            ValueKind::Rate => "a number of jobs per second or \"max\"",
            ValueKind::Duration => "a duration string such as \"5ms\"",
            ValueKind::OptionalDuration => "a duration string such as \"5ms\", or \"off\"",
            ValueKind::Choice(_) => "a string",
        }
    }

    /// Whether a value of this kind is written bare (not quoted) in TOML.
    #[must_use]
    pub fn bare_in_toml(self) -> bool {
        matches!(self, ValueKind::Count | ValueKind::Number | ValueKind::Rate)
    }
}

/// A knob's value type. `Bound` is what the table gives as the knob's range (`()` for names).
pub trait KnobValue: Copy + PartialEq + Sized {
    type Bound: Copy;
    const KIND: ValueKind;

    /// Parses `text` for the knob `key` (syntax only; the range is [`KnobValue::check`]'s).
    ///
    /// # Errors
    /// What was wrong and what is accepted.
    fn parse(key: &str, text: &str, lo: Self::Bound, hi: Self::Bound) -> Result<Self, KnobError>;

    /// The value as [`KnobValue::parse`] takes it.
    fn text(&self) -> String;

    /// Checks the value against the knob's range; `label` names the knob in the message.
    ///
    /// # Errors
    /// The value, and the range accepted.
    fn check(&self, label: &'static str, lo: Self::Bound, hi: Self::Bound) -> Result<(), KnobError>;

    /// The range as help prints it (`None` where there is none to print).
    fn range_text(lo: Self::Bound, hi: Self::Bound) -> Option<String>;

    /// The value as a number, for ramps (`None`: this value does not ramp).
    fn numeric(&self) -> Option<f64> {
        None
    }

    /// The value nearest `v` within the range, for a ramp's steps. Only called on values whose
    /// [`KnobValue::numeric`] is `Some`.
    #[must_use]
    fn ramped(&self, _v: f64, _lo: Self::Bound) -> Self {
        *self
    }
}

fn count_range(lo: u64, hi: u64) -> String {
    match (lo, hi) {
        (0, u64::MAX) => "any whole number".into(),
        (lo, u64::MAX) => format!("at least {lo}"),
        (lo, hi) => format!("{lo} to {hi}"),
    }
}

fn parse_count(key: &str, text: &str, lo: u64, hi: u64) -> Result<u64, KnobError> {
    text.trim().parse::<u64>().map_err(|_| {
        KnobError::Malformed(format!("{key} '{text}' is not a whole number; expected {}", count_range(lo, hi)))
    })
}

/// A value outside its range: `{label} {value} {verdict}; expected {expected}`.
fn out_of_range(
    label: &'static str,
    value: &dyn std::fmt::Display,
    verdict: &'static str,
    expected: String,
) -> KnobError {
    KnobError::OutOfRange { label, value: value.to_string(), verdict, expected }
}

fn check_count(label: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), KnobError> {
    if v > hi {
        Err(out_of_range(label, &v, "is too many", count_range(lo, hi)))
    } else if v < lo {
        Err(out_of_range(label, &v, "is not accepted", count_range(lo, hi)))
    } else {
        Ok(())
    }
}

impl KnobValue for u64 {
    type Bound = u64;
    const KIND: ValueKind = ValueKind::Count;
    fn parse(key: &str, text: &str, lo: u64, hi: u64) -> Result<Self, KnobError> {
        parse_count(key, text, lo, hi)
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn check(&self, label: &'static str, lo: u64, hi: u64) -> Result<(), KnobError> {
        check_count(label, *self, lo, hi)
    }
    fn range_text(lo: u64, hi: u64) -> Option<String> {
        Some(count_range(lo, hi))
    }
}

impl KnobValue for usize {
    type Bound = usize;
    const KIND: ValueKind = ValueKind::Count;
    fn parse(key: &str, text: &str, lo: usize, hi: usize) -> Result<Self, KnobError> {
        let v = parse_count(key, text, lo as u64, hi as u64)?;
        usize::try_from(v).map_err(|_| KnobError::Malformed(format!("{key} {v} is too large; expected at most {hi}")))
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn check(&self, label: &'static str, lo: usize, hi: usize) -> Result<(), KnobError> {
        check_count(label, *self as u64, lo as u64, hi as u64)
    }
    fn range_text(lo: usize, hi: usize) -> Option<String> {
        Some(count_range(lo as u64, hi as u64))
    }
    fn numeric(&self) -> Option<f64> {
        Some(*self as f64)
    }
    fn ramped(&self, v: f64, lo: usize) -> Self {
        (v.round().max(0.0) as usize).max(lo)
    }
}

impl KnobValue for f64 {
    type Bound = f64;
    const KIND: ValueKind = ValueKind::Number;
    fn parse(key: &str, text: &str, lo: f64, hi: f64) -> Result<Self, KnobError> {
        text.trim()
            .parse::<f64>()
            .map_err(|_| KnobError::Malformed(format!("{key} '{text}' is not a number; expected {lo} to {hi}")))
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn check(&self, label: &'static str, lo: f64, hi: f64) -> Result<(), KnobError> {
        if self.is_finite() && (lo..=hi).contains(self) {
            Ok(())
        } else {
            Err(out_of_range(label, &self, "is not accepted", format!("{lo} to {hi}")))
        }
    }
    fn range_text(lo: f64, hi: f64) -> Option<String> {
        Some(format!("{lo} to {hi}"))
    }
    fn numeric(&self) -> Option<f64> {
        Some(*self)
    }
    /// To a thousandth: files stay readable.
    fn ramped(&self, v: f64, lo: f64) -> Self {
        ((v * 1000.0).round() / 1000.0).max(lo)
    }
}

fn check_time(label: &'static str, d: Duration, lo: Duration, hi: Duration) -> Result<(), KnobError> {
    if d < lo || d > hi {
        let expected = format!("{} to {}", duration::format(lo), duration::format(hi));
        Err(out_of_range(label, &duration::format(d), "is not accepted", expected))
    } else {
        Ok(())
    }
}

impl KnobValue for Duration {
    type Bound = Duration;
    const KIND: ValueKind = ValueKind::Duration;
    fn parse(key: &str, text: &str, _: Duration, _: Duration) -> Result<Self, KnobError> {
        duration::parse(text).map_err(|e| KnobError::Malformed(format!("{key} {e}")))
    }
    fn text(&self) -> String {
        duration::format(*self)
    }
    fn check(&self, label: &'static str, lo: Duration, hi: Duration) -> Result<(), KnobError> {
        check_time(label, *self, lo, hi)
    }
    fn range_text(lo: Duration, hi: Duration) -> Option<String> {
        Some(format!("{} to {}", duration::format(lo), duration::format(hi)))
    }
    fn numeric(&self) -> Option<f64> {
        Some(self.as_secs_f64())
    }
    /// To the microsecond, the timer's resolution.
    fn ramped(&self, v: f64, lo: Duration) -> Self {
        Duration::from_micros((v.max(0.0) * 1e6).round() as u64).max(lo)
    }
}

/// A duration that can be switched off (`off` or `none`).
impl KnobValue for Option<Duration> {
    type Bound = Duration;
    const KIND: ValueKind = ValueKind::OptionalDuration;
    fn parse(key: &str, text: &str, lo: Duration, hi: Duration) -> Result<Self, KnobError> {
        match text.trim() {
            "off" | "none" => Ok(None),
            v => <Duration as KnobValue>::parse(key, v, lo, hi).map(Some),
        }
    }
    fn text(&self) -> String {
        self.map_or_else(|| "off".into(), duration::format)
    }
    fn check(&self, label: &'static str, lo: Duration, hi: Duration) -> Result<(), KnobError> {
        self.map_or(Ok(()), |d| check_time(label, d, lo, hi))
    }
    fn range_text(lo: Duration, hi: Duration) -> Option<String> {
        Some(format!("{} to {}, or off", duration::format(lo), duration::format(hi)))
    }
}

impl KnobValue for Rate {
    type Bound = f64;
    const KIND: ValueKind = ValueKind::Rate;
    fn parse(_: &str, text: &str, _: f64, _: f64) -> Result<Self, KnobError> {
        text.parse().map_err(KnobError::Malformed)
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn check(&self, label: &'static str, lo: f64, hi: f64) -> Result<(), KnobError> {
        match *self {
            Rate::PerSec(v) if !v.is_finite() || v < lo => {
                Err(out_of_range(label, &v, "is not accepted", format!("{lo} to {hi} jobs per second or 'max'")))
            }
            Rate::PerSec(v) if v > hi => {
                Err(out_of_range(label, &v, "is too high", format!("at most {hi} jobs per second or 'max'")))
            }
            Rate::PerSec(_) | Rate::Max => Ok(()),
        }
    }
    fn range_text(lo: f64, hi: f64) -> Option<String> {
        Some(format!("{lo} to {hi}, or max"))
    }
    fn numeric(&self) -> Option<f64> {
        match *self {
            Rate::PerSec(r) => Some(r),
            Rate::Max => None,
        }
    }
    /// To a hundredth of a job per second.
    fn ramped(&self, v: f64, lo: f64) -> Self {
        Rate::PerSec(((v * 100.0).round() / 100.0).max(lo))
    }
}

macro_rules! choice_value {
    ($($t:ty),+) => {$(
        impl KnobValue for $t {
            type Bound = ();
            const KIND: ValueKind = ValueKind::Choice(<$t>::NAMES);
            fn parse(_: &str, text: &str, (): (), (): ()) -> Result<Self, KnobError> {
                text.parse().map_err(KnobError::Malformed)
            }
            fn text(&self) -> String {
                self.name().to_string()
            }
            fn check(&self, _: &'static str, (): (), (): ()) -> Result<(), KnobError> {
                Ok(())
            }
            fn range_text((): (), (): ()) -> Option<String> {
                None
            }
        }
    )+};
}

choice_value!(Policy, ArrivalKind, ServiceDist, ServiceKind, Adapt);
