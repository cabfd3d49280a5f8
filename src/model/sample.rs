//! An empirical service-time sample (`--service-dist empirical`): the times a user measured, or
//! the percentiles of a pooltune run's service times, kept as a quantile function with its mean,
//! coefficient of variation and p99. [`super::draw`] draws from it for the engine and the model
//! alike, scaled so that its mean is the `service` knob's (the shape is kept).
//!
//! # Shapes
//! - **Values** (a file of durations): the values themselves, sorted. A draw is one of them, each
//!   with probability 1/n: the quantile function is x₍⌊u·n⌋₊₁₎ for u in [0, 1). Mean and CV are
//!   the sample's own (population CV); p99 is the nearest rank, the ⌈0.99·n⌉-th smallest.
//! - **Percentiles** (a run's JSON, which keeps the count, mean, p50, p90, p99, p99.9 and max of
//!   its service times, not the histogram): the quantile function is piecewise linear through
//!   (0, x₀), (0.5, p50), (0.9, p90), (0.99, p99), (0.999, p99.9) and (1, max); x₀, which the JSON
//!   does not hold, is chosen so the function's mean is the run's mean, within [0, p50]. Its
//!   mean, CV and p99 are those of that function (the mean is the run's unless x₀ had to be
//!   clamped; the p99 is the run's).
//!
//! Memory: 8 bytes a value.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A sample to draw service times from.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSample {
    /// Where it came from, for messages and displays (the file as given).
    source: String,
    shape: Shape,
    /// Nanoseconds.
    mean: f64,
    cv: f64,
    /// Nanoseconds.
    p99: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Nanoseconds, ascending.
    Values(Vec<u64>),
    /// (u, nanoseconds) from u = 0 to u = 1, both ascending, and the run's count of service
    /// times behind them.
    Knots(Vec<(f64, f64)>, u64),
}

impl ServiceSample {
    /// A sample of measured times, in nanoseconds (in any order).
    ///
    /// # Errors
    /// No values, or all of them 0 (a sample without a mean cannot be scaled to the knob's).
    pub fn from_values(source: impl Into<String>, mut values: Vec<u64>) -> Result<ServiceSample, String> {
        if values.is_empty() {
            return Err("the sample holds no service times".into());
        }
        values.sort_unstable();
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let rank = (values.len() * 99).div_ceil(100).max(1) - 1;
        let p99 = values[rank] as f64;
        let shape = Shape::Values(values);
        ServiceSample::checked(source.into(), shape, mean, var, p99)
    }

    /// A sample known by its percentiles (a run's JSON): `points` are (u, nanoseconds) with u
    /// in (0, 1], the last at u = 1 (the largest); `mean` in nanoseconds fixes the value at u = 0;
    /// `count` is the number of times they summarise.
    ///
    /// # Errors
    /// Points out of order or negative, no point at u = 1, no times behind them, or nothing
    /// above 0.
    pub fn from_percentiles(
        source: impl Into<String>,
        points: &[(f64, f64)],
        mean: f64,
        count: u64,
    ) -> Result<ServiceSample, String> {
        let ordered = points.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        let valid = points.iter().all(|&(u, x)| u > 0.0 && u <= 1.0 && x.is_finite() && x >= 0.0);
        if points.last().map(|p| p.0) != Some(1.0) || !ordered || !valid || !mean.is_finite() {
            return Err("the percentiles must rise with the percentile, be 0 or more, and end at the largest".into());
        }
        if count == 0 {
            return Err("the run measured no service times".into());
        }
        let (u1, x1) = points[0];
        // Segments after the first are fixed; the first, from (0, x₀) to (u₁, x₁), has mean
        // area u₁·(x₀ + x₁)/2: solve it for the run's mean.
        let rest: f64 = points.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
        let x0 = ((mean - rest) * 2.0 / u1 - x1).clamp(0.0, x1);
        let mut knots = vec![(0.0, x0)];
        knots.extend_from_slice(points);
        let seg = |w: &[(f64, f64)]| (w[1].0 - w[0].0, w[0].1, w[1].1);
        let m: f64 = knots.windows(2).map(seg).map(|(du, a, b)| du * (a + b) / 2.0).sum();
        let m2: f64 = knots.windows(2).map(seg).map(|(du, a, b)| du * (a * a + a * b + b * b) / 3.0).sum();
        let mut s = ServiceSample::checked(source.into(), Shape::Knots(knots, count), m, m2 - m * m, 0.0)?;
        s.p99 = s.quantile(0.99);
        Ok(s)
    }

    fn checked(source: String, shape: Shape, mean: f64, var: f64, p99: f64) -> Result<ServiceSample, String> {
        if mean <= 0.0 || !mean.is_finite() {
            return Err("every service time in the sample is 0: it has no mean to scale to the service knob".into());
        }
        Ok(ServiceSample { source, shape, mean, cv: var.max(0.0).sqrt() / mean, p99 })
    }

    /// The file it came from, as given.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The sample's own mean.
    #[must_use]
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.mean.round() as u64)
    }

    /// The coefficient of variation (standard deviation / mean); scaling keeps it.
    #[must_use]
    pub fn cv(&self) -> f64 {
        self.cv
    }

    /// The 99th percentile when the sample is scaled to mean `mean` (seconds), in seconds.
    #[must_use]
    pub fn p99_at(&self, mean: f64) -> f64 {
        self.p99 / self.mean * mean
    }

    /// The values behind it: the sample's size, or the count of the run's service times.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.shape {
            Shape::Values(v) => v.len(),
            Shape::Knots(_, count) => usize::try_from(*count).unwrap_or(usize::MAX),
        }
    }

    /// Never true: a sample holds one value at least.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The u-quantile of the sample as it is (u in [0, 1)), nanoseconds: what a draw of u gives
    /// before scaling.
    #[must_use]
    pub fn quantile(&self, u: f64) -> f64 {
        match &self.shape {
            Shape::Values(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)] as f64,
            Shape::Knots(k, _) => {
                let i = k.partition_point(|p| p.0 <= u).clamp(1, k.len() - 1);
                let ((ua, xa), (ub, xb)) = (k[i - 1], k[i]);
                xa + (xb - xa) * ((u - ua) / (ub - ua)).clamp(0.0, 1.0)
            }
        }
    }

    /// The scale that gives mean `mean` (seconds): each draw is multiplied by it.
    #[must_use]
    pub fn scale_to(&self, mean: f64) -> f64 {
        mean * 1e9 / self.mean
    }

    /// How it is kept, for displays: `values` or `percentiles of a run`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self.shape {
            Shape::Values(_) => "values",
            Shape::Knots(..) => "percentiles of a run",
        }
    }
}

/// One line: `FILE: 500 values, mean 38ms, cv 1.60, p99 210ms`.
impl fmt::Display for ServiceSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ns: f64| crate::duration::format(Duration::from_micros((ns / 1e3).round() as u64));
        let what = match &self.shape {
            Shape::Values(v) => format!("{} values", v.len()),
            Shape::Knots(_, n) => format!("the percentiles of a run's {n} service times"),
        };
        write!(f, "{}: {what}, mean {}, cv {:.2}, p99 {}", self.source, d(self.mean), self.cv, d(self.p99))
    }
}

/// What the JSON says of a sample: where it came from and its own figures (not its values).
impl Serialize for ServiceSample {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            file: &'a str,
            kind: &'static str,
            count: usize,
            mean_ms: f64,
            cv: f64,
            p99_ms: f64,
        }
        View {
            file: &self.source,
            kind: self.kind(),
            count: self.len(),
            mean_ms: self.mean / 1e6,
            cv: self.cv,
            p99_ms: self.p99 / 1e6,
        }
        .serialize(s)
    }
}

#[cfg(test)]
#[path = "sample_tests.rs"]
mod tests;
