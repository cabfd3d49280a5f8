//! Human durations (`250us`, `2ms`, `1.5s`, `2m`), parsed by `humantime` with messages that say
//! what is accepted, and printed back in the shortest unit that keeps them readable.
//!
//! No tokio, no UI: profiles, the `:` command line and the CLI all parse durations here.

use std::time::Duration;

/// What a duration may look like; quoted in every error so the user can correct it at once.
pub const ACCEPTED: &str = "a number with a unit: ns, us, ms, s, m or h (e.g. 250us, 2ms, 1.5s, 2m)";

/// Parses a human duration such as `250us`, `2ms`, `1.5s` or `2m`.
///
/// # Errors
/// A message quoting the input and naming the accepted forms.
pub fn parse(input: &str) -> Result<Duration, String> {
    let trimmed = input.trim();
    if trimmed.starts_with('-') {
        return Err(format!("'{input}' is negative; expected {ACCEPTED}"));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        let why = match e {
            humantime::DurationError::UnknownUnit { .. } => "has no known unit",
            humantime::DurationError::NumberOverflow => "is too large",
            humantime::DurationError::Empty => "is empty",
            humantime::DurationError::InvalidCharacter(_) | humantime::DurationError::NumberExpected(_) => {
                "is not a duration"
            }
        };
        format!("'{input}' {why}; expected {ACCEPTED}")
    })
}

/// Formats a duration compactly and exactly: `250us`, `2ms`, `1.5s`, `2m`, `1.000000001s`; the
/// inverse of [`parse`] (profiles and recordings round-trip through it).
#[must_use]
pub fn format(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns.is_multiple_of(1_000_000_000) {
        let s = ns / 1_000_000_000;
        return if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        };
    }
    // Units are powers of ten of nanoseconds, so the decimal fraction is exact: no f64 rounding.
    let (unit, scale, digits) = if ns >= 1_000_000_000 {
        ("s", 1_000_000_000, 9)
    } else if ns >= 1_000_000 {
        ("ms", 1_000_000, 6)
    } else if ns >= 1_000 {
        ("us", 1_000, 3)
    } else {
        return format!("{ns}ns");
    };
    let (whole, frac) = (ns / scale, ns % scale);
    if frac == 0 {
        return format!("{whole}{unit}");
    }
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}{unit}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse("2ms").unwrap(), Duration::from_millis(2));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn refuses_with_the_accepted_forms() {
        for bad in ["10", "-5ms", "", "fast", "1e400s"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(ACCEPTED), "{bad}: {err}");
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::from_micros(250),
            Duration::from_micros(1500),
            Duration::from_millis(2),
            Duration::from_millis(1500),
            Duration::from_secs(150),
            Duration::from_secs(120),
            Duration::from_secs(7200),
            Duration::from_nanos(1),
            Duration::from_nanos(1_000_000_001),
            Duration::from_nanos(61_500_000_000),
            Duration::ZERO,
        ] {
            assert_eq!(parse(&format(d)).unwrap(), d, "{}", format(d));
        }
    }
}
