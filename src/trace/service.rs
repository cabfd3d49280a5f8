//! The service column: a duration with a unit, a bare number in a given unit, or a size turned
//! into a time (`base + per_unit × size`), all to nanoseconds.

use std::time::Duration;

use super::time::Number;
use super::{ServiceSpec, TimeUnit};
use crate::duration;

/// Why a service value was refused (the message's middle part).
pub type Why = &'static str;

/// Where a unit for bare numbers is given, for messages: the flag and the profile's key.
pub type UnitFlag = (&'static str, &'static str);

/// A trace's service column takes its unit here.
pub const COLUMN_UNIT: UnitFlag = ("--service-unit", "service_unit in a profile's [arrivals]");

/// What a service value may look like under `spec` (bare numbers taking their unit from
/// `unit_flag`), for messages.
pub fn accepted(spec: &ServiceSpec, (flag, key): UnitFlag) -> String {
    match spec {
        ServiceSpec::Duration { unit: Some(u) } => {
            format!("a duration with a unit (12ms, 1.5s, 250us) or a non-negative number of {}", u.name())
        }
        ServiceSpec::Duration { unit: None } => {
            format!("a duration with a unit (12ms, 1.5s, 250us); for bare numbers give {flag} s, ms, us or ns ({key})")
        }
        ServiceSpec::Size { base, per_unit } => format!(
            "a non-negative number (a size: time = {} + {} × size)",
            duration::format(*base),
            duration::format(*per_unit)
        ),
    }
}

/// The service time of one value, in nanoseconds.
pub fn nanos(value: &[u8], spec: &ServiceSpec) -> Result<u64, Why> {
    match spec {
        ServiceSpec::Size { base, per_unit } => {
            let n = Number::parse(value).ok_or(if value.is_empty() { "is empty" } else { "is not a number" })?;
            if n.neg && n.to_nanos(TimeUnit::Nanos) != Some(0) {
                return Err("is negative");
            }
            n.scaled(saturating_nanos(*base), saturating_nanos(*per_unit)).ok_or("is too large")
        }
        ServiceSpec::Duration { unit } => {
            let split =
                value.iter().position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'-' | b'+')).unwrap_or(value.len());
            let (number, suffix) = value.split_at(split);
            let unit = match trim_start(suffix) {
                b"" if value.is_empty() => return Err("is empty"),
                b"" => unit.ok_or("is a bare number with no unit given for it")?,
                b"ns" => TimeUnit::Nanos,
                b"us" | [0xC2, 0xB5, b's'] => TimeUnit::Micros, // µs
                b"ms" => TimeUnit::Millis,
                b"s" => TimeUnit::Seconds,
                _ => return fallback(value),
            };
            let n = Number::parse(number).ok_or("is not a duration")?;
            let ns = n.to_nanos(unit).ok_or("is too large")?;
            u64::try_from(ns).map_err(|_| "is negative")
        }
    }
}

/// Forms the fast path does not read (`2m`, `1h`, `1m 30s`): through [`duration::parse`].
fn fallback(value: &[u8]) -> Result<u64, Why> {
    let text = std::str::from_utf8(value).map_err(|_| "is not a duration")?;
    if text.trim_start().starts_with('-') {
        return Err("is negative");
    }
    let d = duration::parse(text).map_err(|_| "is not a duration")?;
    u64::try_from(d.as_nanos()).map_err(|_| "is too large")
}

fn trim_start(s: &[u8]) -> &[u8] {
    s.strip_prefix(b" ").unwrap_or(s)
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_UNIT: ServiceSpec = ServiceSpec::Duration { unit: None };

    #[test]
    fn durations_with_units_need_no_spec() {
        assert_eq!(nanos(b"12ms", &NO_UNIT), Ok(12_000_000));
        assert_eq!(nanos(b"1.5s", &NO_UNIT), Ok(1_500_000_000));
        assert_eq!(nanos(b"250us", &NO_UNIT), Ok(250_000));
        assert_eq!(nanos("3µs".as_bytes(), &NO_UNIT), Ok(3_000));
        assert_eq!(nanos(b"7 ns", &NO_UNIT), Ok(7));
        assert_eq!(nanos(b"2m", &NO_UNIT), Ok(120_000_000_000));
        assert_eq!(nanos(b"0s", &NO_UNIT), Ok(0));
    }

    #[test]
    fn bare_numbers_take_the_given_unit_or_are_refused() {
        assert_eq!(nanos(b"12", &NO_UNIT), Err("is a bare number with no unit given for it"));
        let ms = ServiceSpec::Duration { unit: Some(TimeUnit::Millis) };
        assert_eq!(nanos(b"12.5", &ms), Ok(12_500_000));
        assert_eq!(nanos(b"12us", &ms), Ok(12_000));
        assert_eq!(nanos(b"-3", &ms), Err("is negative"));
        assert_eq!(nanos(b"-3ms", &ms), Err("is negative"));
        assert_eq!(nanos(b"-2m", &ms), Err("is negative"));
        assert_eq!(nanos(b"fast", &ms), Err("is not a duration"));
        assert_eq!(nanos(b"", &ms), Err("is empty"));
        assert_eq!(nanos(b"1.2.3ms", &ms), Err("is not a duration"));
    }

    #[test]
    fn sizes_become_base_plus_per_unit() {
        let size = ServiceSpec::Size { base: Duration::from_micros(100), per_unit: Duration::from_micros(2) };
        assert_eq!(nanos(b"0", &size), Ok(100_000));
        assert_eq!(nanos(b"1500", &size), Ok(3_100_000));
        assert_eq!(nanos(b"2.5", &size), Ok(105_000));
        assert_eq!(nanos(b"-1", &size), Err("is negative"));
        assert_eq!(nanos(b"12kb", &size), Err("is not a number"));
        assert!(accepted(&size, COLUMN_UNIT).contains("100us + 2us × size"), "{}", accepted(&size, COLUMN_UNIT));
    }
}
