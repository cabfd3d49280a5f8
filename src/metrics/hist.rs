//! HDR histograms in microseconds, and the percentile summary every output uses.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest value a histogram holds: one hour, in microseconds. Longer values saturate here.
pub const MAX_US: u64 = 3_600_000_000;

/// A histogram of durations in microseconds, 3 significant digits, 1 µs to 1 h.
///
/// `Histogram::new(3)` would start with a maximum of 2 and clamp every saturating record to it,
/// hence explicit bounds.
#[must_use]
pub fn new() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("1..=MAX_US with 3 digits are valid bounds")
}

/// Records a duration (rounded to the nearest microsecond; beyond an hour it saturates).
///
/// In u64 arithmetic: `as_nanos()` is a u128, and dividing one by 1000 is a library call that
/// cost more than the histogram record itself, three times a job.
#[inline]
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = d.as_secs().saturating_mul(1_000_000).saturating_add(u64::from((d.subsec_nanos() + 500) / 1000));
    h.saturating_record(us.min(MAX_US));
}

/// Percentiles of a distribution of durations, in milliseconds. The mean comes from exact sums,
/// not from the histogram's buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `h` with the exact sum of the recorded values in nanoseconds.
    #[must_use]
    pub fn of(h: &Histogram<u64>, sum_ns: u128) -> Summary {
        let count = h.len();
        if count == 0 {
            return Summary::default();
        }
        #[allow(clippy::cast_precision_loss)]
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| ms(h.median_equivalent(h.value_at_quantile(p)));
        #[allow(clippy::cast_precision_loss)]
        let mean = sum_ns as f64 / count as f64 / 1e6;
        Summary { count, mean, p50: q(0.50), p90: q(0.90), p99: q(0.99), p999: q(0.999), max: ms(h.max()) }
    }
}

/// The quantiles of a [`Distribution`]: 1/(1 − q) = 1, 2, 4, 10, 20, 50, 100, … 100,000, the
/// 1-2-5 steps of HdrHistogram's percentile plot, whose axis is 1/(1 − q) on a log scale.
pub const DIST_QUANTILES: [f64; 16] =
    [0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999, 0.99995, 0.99998, 0.99999];

/// A latency distribution at [`DIST_QUANTILES`], in milliseconds, with the number of values
/// behind it. Fixed size, so a snapshot carries it without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Distribution {
    pub count: u64,
    pub ms: [f64; DIST_QUANTILES.len()],
}

/// One point of a distribution: a percentile and the latency at it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Quantile {
    pub percentile: f64,
    pub latency_ms: f64,
}

impl Distribution {
    /// The quantiles of `h` in one pass, each as [`Summary::of`] reads one (the median of the
    /// value's bucket).
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> Distribution {
        let mut ms = [0.0; DIST_QUANTILES.len()];
        for (m, us) in ms.iter_mut().zip(h.value_at_quantiles(DIST_QUANTILES)) {
            #[allow(clippy::cast_precision_loss)]
            let v = h.median_equivalent(us) as f64;
            *m = v / 1000.0;
        }
        Distribution { count: h.len(), ms }
    }

    /// The points the sample supports: a percentile p needs at least 1/(1 − p) values (p99.9
    /// from 100 values would be the maximum in disguise).
    #[must_use]
    pub fn points(&self) -> Vec<Quantile> {
        DIST_QUANTILES
            .iter()
            .zip(self.ms)
            .filter(|(q, _)| supported(**q, self.count))
            .map(|(q, ms)| Quantile { percentile: q * 100.0, latency_ms: ms })
            .collect()
    }
}

/// [`DIST_QUANTILES`] as percentages: where a model's curve is drawn beside a measured one.
#[must_use]
pub fn dist_percentiles() -> [f64; DIST_QUANTILES.len()] {
    DIST_QUANTILES.map(|q| q * 100.0)
}

/// Response times `ms` at [`dist_percentiles`], as a curve's points.
#[must_use]
pub fn dist_points(ms: &[f64]) -> Vec<Quantile> {
    dist_percentiles().iter().zip(ms).map(|(p, ms)| Quantile { percentile: *p, latency_ms: *ms }).collect()
}

/// Whether `count` values support the quantile `q` (see [`Distribution::points`]).
#[must_use]
pub fn supported(q: f64, count: u64) -> bool {
    #[allow(clippy::cast_precision_loss)]
    let n = count as f64;
    count > 0 && 1.0 / (1.0 - q) <= n * (1.0 + 1e-9)
}

impl Serialize for Distribution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.points().serialize(s)
    }
}

/// A short engine overhead (producer lag, hand-off) in microseconds: its exact mean, some
/// percentiles and the largest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Micros {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Micros {
    /// Summarises `h` with the exact sum of the recorded values in nanoseconds.
    #[must_use]
    pub fn of(h: &Histogram<u64>, sum_ns: u128) -> Micros {
        let s = Summary::of(h, sum_ns);
        Micros { mean: s.mean * 1e3, p50: s.p50 * 1e3, p99: s.p99 * 1e3, p999: s.p999 * 1e3, max: s.max * 1e3 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_known_spread() {
        let mut h = new();
        let mut sum = 0u128;
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us));
            sum += u128::from(us) * 1000;
        }
        let s = Summary::of(&h, sum);
        assert_eq!(s.count, 1000);
        assert!((s.mean - 0.5005).abs() < 1e-9);
        // 3 significant digits: within 0.1% of the true quantiles.
        assert!((s.p50 - 0.5).abs() <= 0.5 * 1e-3 + 1e-3, "{}", s.p50);
        assert!((s.p99 - 0.99).abs() <= 0.99 * 1e-3 + 1e-3, "{}", s.p99);
        assert!(s.max >= 1.0 && s.max <= 1.001);
    }

    #[test]
    #[allow(clippy::float_cmp)]
    fn distribution_matches_the_summary_and_drops_what_the_sample_cannot_support() {
        let mut h = new();
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us * 7));
        }
        let d = Distribution::of(&h);
        let s = Summary::of(&h, 0);
        let at = |q: f64| d.ms[DIST_QUANTILES.iter().position(|x| *x == q).unwrap()];
        assert_eq!(at(0.5), s.p50);
        assert_eq!(at(0.9), s.p90);
        assert_eq!(at(0.99), s.p99);
        assert_eq!(at(0.999), s.p999);
        assert!((at(0.0) - 0.007).abs() < 1e-3, "the smallest value: {}", at(0.0));
        assert!(d.ms.windows(2).all(|w| w[0] <= w[1]), "{:?}", d.ms);
        // 1000 values support p99.9 (1/(1 − p) = 1000) and nothing beyond it.
        let points = d.points();
        assert!((points.last().unwrap().percentile - 99.9).abs() < 1e-9);
        assert_eq!(points.len(), 10);
        assert!(Distribution::of(&new()).points().is_empty());
    }

    #[test]
    fn rounds_to_the_nearest_microsecond() {
        for (ns, us) in [(0u64, 0u64), (499, 0), (500, 1), (1_499, 1), (999_999_499, 999_999), (999_999_500, 1_000_000)]
        {
            let mut h = new();
            record(&mut h, Duration::from_nanos(ns));
            assert_eq!(h.max(), h.highest_equivalent(us), "{ns} ns");
        }
        let mut h = new();
        record(&mut h, Duration::from_nanos(2_000_000_400));
        assert_eq!(h.max(), h.highest_equivalent(2_000_000));
    }

    #[test]
    fn saturates_instead_of_failing() {
        let mut h = new();
        record(&mut h, Duration::from_secs(10 * 3600));
        assert_eq!(h.len(), 1);
        assert!(h.max() >= MAX_US);
    }
}
