//! One time value, read from bytes without allocating: civil timestamps (with or without a zone)
//! to nanoseconds since the Unix epoch, bare decimal numbers kept exactly until their unit is
//! known, and the unit decision by magnitude.
//!
//! Timestamps take nanoseconds in an `i64`, so years 1678 to 2261 are accepted; others are out of
//! range (an error, never a wrap).

use super::TimeUnit;

/// What a time value looks like, quoted in every error about one.
pub const TIME_FORMS: &str = "a timestamp (2023-11-16 18:17:03.97, 2023-11-16T18:17:03Z, \
     2023-11-16T18:17:03.5+01:00) or a number (epoch or offset: 1700000000.25, 1700000000250, 12.5)";

/// A bare decimal number, exact: sign, integer part and the first 9 fraction digits (the rest
/// are below a nanosecond in every unit and are truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    pub neg: bool,
    pub int: u64,
    frac: u64,
    frac_digits: u32,
}

impl Number {
    /// `[+-]digits[.digits]` (either side of the point may be empty, not both); `None` for
    /// anything else, or an integer part beyond `u64`.
    pub fn parse(s: &[u8]) -> Option<Number> {
        let (neg, s) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let mut i = 0;
        let mut int: u64 = 0;
        while let Some(&b) = s.get(i).filter(|b| b.is_ascii_digit()) {
            int = int.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            i += 1;
        }
        let mut digits = i;
        let (mut frac, mut frac_digits) = (0, 0);
        if s.get(i) == Some(&b'.') {
            i += 1;
            while let Some(&b) = s.get(i).filter(|b| b.is_ascii_digit()) {
                if frac_digits < 9 {
                    frac = frac * 10 + u64::from(b - b'0');
                    frac_digits += 1;
                }
                digits += 1;
                i += 1;
            }
        }
        (i == s.len() && digits > 0).then_some(Number { neg, int, frac, frac_digits })
    }

    /// The number as nanoseconds when read in `unit`; `None` when that overflows an `i64`.
    pub fn to_nanos(self, unit: TimeUnit) -> Option<i64> {
        let scale = unit.nanos();
        let whole = self.int.checked_mul(scale)?;
        // frac < 1e9 and scale <= 1e9, so the product fits a u64.
        let part = self.frac * scale / 10u64.pow(self.frac_digits);
        let v = i64::try_from(whole.checked_add(part)?).ok()?;
        Some(if self.neg { -v } else { v })
    }

    /// `base + per_unit × self` in nanoseconds (a size's service time); `None` on overflow.
    pub fn scaled(self, base: u64, per_unit: u64) -> Option<u64> {
        let per = u128::from(per_unit);
        let part = per * u128::from(self.frac) / 10u128.pow(self.frac_digits);
        let total = per.checked_mul(u128::from(self.int))?.checked_add(part)?.checked_add(u128::from(base))?;
        u64::try_from(total).ok()
    }
}

/// The unit of bare numbers decided by the magnitude of the first one: ≥ 1e17 nanoseconds,
/// ≥ 1e14 microseconds, ≥ 1e11 milliseconds, else seconds (epoch seconds since 2001 are ~1e9,
/// offsets are small). Returns the unit and the rule that chose it, for the trace's description.
pub fn unit_by_magnitude(first: Number) -> (TimeUnit, &'static str) {
    match first.int {
        100_000_000_000_000_000.. => (TimeUnit::Nanos, "≥ 1e17"),
        100_000_000_000_000.. => (TimeUnit::Micros, "≥ 1e14"),
        100_000_000_000.. => (TimeUnit::Millis, "≥ 1e11"),
        _ => (TimeUnit::Seconds, "< 1e11"),
    }
}

/// Why a value that looks like a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampError {
    /// Not the timestamp form at all.
    NotStamp,
    /// A timestamp with a field out of range (month 13, 25:00) or a year outside 1678..2261.
    OutOfRange,
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.fraction][zone]` to nanoseconds since the Unix epoch (UTC when a zone
/// is given; taken as-is without one). The zone is `Z`, `±HH:MM`, `±HHMM` or `±HH`, optionally
/// after one space; fraction digits past the 9th are truncated.
pub fn parse_timestamp(s: &[u8]) -> Result<i64, StampError> {
    use StampError::{NotStamp, OutOfRange};
    if s.len() < 19
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b' ' | b'T' | b't')
        || s[13] != b':'
        || s[16] != b':'
    {
        return Err(NotStamp);
    }
    let year = digits(&s[0..4]).ok_or(NotStamp)?;
    let [month, day, hour, minute, second] = [5, 8, 11, 14, 17].map(|at| digits(&s[at..at + 2]).ok_or(NotStamp));
    let (month, day, hour, minute, second) = (month?, day?, hour?, minute?, second?);
    let mut i = 19;
    let mut frac: i64 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000;
        while let Some(&b) = s.get(i).filter(|b| b.is_ascii_digit()) {
            frac += i64::from(b - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(NotStamp);
        }
    }
    let zone = zone_seconds(&s[i..]).ok_or(NotStamp)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(OutOfRange);
    }
    let secs =
        days_from_civil(i64::from(year), month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - zone;
    secs.checked_mul(1_000_000_000).and_then(|ns| ns.checked_add(frac)).ok_or(OutOfRange)
}

/// The zone suffix as seconds east of UTC; `None` when it is not one.
fn zone_seconds(z: &[u8]) -> Option<i64> {
    let z = z.strip_prefix(b" ").filter(|r| matches!(r.first(), Some(b'+' | b'-'))).unwrap_or(z);
    let sign = match z.first() {
        None => return Some(0),
        Some(b'Z' | b'z') if z.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let (h, m) = match &z[1..] {
        [a, b] => (digits(&[*a, *b])?, 0),
        [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
        _ => return None,
    };
    (h <= 23 && m <= 59).then(|| sign * i64::from(h * 3600 + m * 60))
}

/// The value of a run of ASCII digits (at most 4 here); `None` if any byte is not a digit.
fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, <https://howardhinnant.github.io/date_algorithms.html>).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2023, 11, 16), 19_677);
        assert_eq!(days_from_civil(2024, 2, 29) + 1, days_from_civil(2024, 3, 1));
    }

    #[test]
    fn timestamps_in_every_accepted_form() {
        let base = 1_700_158_623 * 1_000_000_000; // 2023-11-16T18:17:03Z
        assert_eq!(parse_timestamp(b"2023-11-16 18:17:03"), Ok(base));
        assert_eq!(parse_timestamp(b"2023-11-16T18:17:03Z"), Ok(base));
        assert_eq!(parse_timestamp(b"2023-11-16 18:17:03.9799600"), Ok(base + 979_960_000));
        assert_eq!(parse_timestamp(b"2023-11-16T18:17:03.123456789123Z"), Ok(base + 123_456_789));
        assert_eq!(parse_timestamp(b"2023-11-16T19:17:03+01:00"), Ok(base));
        assert_eq!(parse_timestamp(b"2023-11-16T17:17:03.5-0100"), Ok(base + 500_000_000));
        assert_eq!(parse_timestamp(b"2023-11-16 20:17:03 +02"), Ok(base));
        assert_eq!(parse_timestamp(b"2023-11-16 18:17"), Err(StampError::NotStamp));
        assert_eq!(parse_timestamp(b"2023-11-16 18:17:03."), Err(StampError::NotStamp));
        assert_eq!(parse_timestamp(b"2023-11-16 18:17:03+1"), Err(StampError::NotStamp));
        assert_eq!(parse_timestamp(b"2023-02-29 18:17:03"), Err(StampError::OutOfRange));
        assert_eq!(parse_timestamp(b"2023-13-01 00:00:00"), Err(StampError::OutOfRange));
        assert_eq!(parse_timestamp(b"9999-01-01 00:00:00"), Err(StampError::OutOfRange));
    }

    #[test]
    fn numbers_are_exact_in_each_unit() {
        let n = Number::parse(b"1700000000.123456789").unwrap();
        assert_eq!(n.to_nanos(TimeUnit::Seconds), Some(1_700_000_000_123_456_789));
        assert_eq!(Number::parse(b"12.5").unwrap().to_nanos(TimeUnit::Millis), Some(12_500_000));
        assert_eq!(Number::parse(b"-1.5").unwrap().to_nanos(TimeUnit::Micros), Some(-1_500));
        assert_eq!(Number::parse(b".25").unwrap().to_nanos(TimeUnit::Seconds), Some(250_000_000));
        assert_eq!(Number::parse(b"7.9").unwrap().to_nanos(TimeUnit::Nanos), Some(7));
        assert_eq!(Number::parse(b"10000000000").unwrap().to_nanos(TimeUnit::Seconds), None);
        for bad in [&b""[..], b".", b"-", b"1e9", b"1.2.3", b"12ms", b" 1", b"99999999999999999999999"] {
            assert_eq!(Number::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Number::parse(b"2.5").unwrap().scaled(1_000, 2_000), Some(6_000));
    }

    #[test]
    fn unit_follows_the_magnitude_of_the_first_value() {
        let unit = |s: &[u8]| unit_by_magnitude(Number::parse(s).unwrap()).0;
        assert_eq!(unit(b"12.5"), TimeUnit::Seconds);
        assert_eq!(unit(b"1700000000.5"), TimeUnit::Seconds);
        assert_eq!(unit(b"1700000000123"), TimeUnit::Millis);
        assert_eq!(unit(b"1700000000123456"), TimeUnit::Micros);
        assert_eq!(unit(b"1700000000123456789"), TimeUnit::Nanos);
    }
}
