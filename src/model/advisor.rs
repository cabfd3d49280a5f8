//! The advisor: which pool meets a latency target at this rate, and which rate this pool
//! sustains under it.
//!
//! Both answers assume an unbounded queue: a queue bound can only meet a target by refusing
//! work, and the advisor answers the question of meeting it without refusing any.

use serde::Serialize;

use super::{Inputs, Percentiles, predict_for, tail};
use crate::settings::MAX_WORKERS;

/// A response-time target, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    P99(f64),
    Mean(f64),
}

impl Target {
    fn seconds(self) -> f64 {
        match self {
            Target::P99(s) | Target::Mean(s) => s,
        }
    }

    /// "p99 ≤ 20 ms" or "mean ≤ 5 ms".
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Target::P99(s) => format!("p99 ≤ {}", fmt_ms(s)),
            Target::Mean(s) => format!("mean ≤ {}", fmt_ms(s)),
        }
    }
}

fn fmt_ms(s: f64) -> String {
    let ms = s * 1e3;
    if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.3} ms").trim_end_matches('0').trim_end_matches('.').to_string() + ""
    }
}

/// The advisor's answer; an answer that does not exist comes with its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub target: String,
    pub workers_needed: Option<u32>,
    pub workers_reason: Option<String>,
    pub max_rate: Option<f64>,
    pub max_rate_reason: Option<String>,
    /// On a trace: the workers the fitted Poisson model would have said, beside the
    /// simulation's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fitted_workers: Option<u32>,
}

impl Advice {
    /// One line for the dashboard: "p99 ≤ 20 ms at this rate needs ≥ 9 workers".
    #[must_use]
    pub fn line(&self) -> String {
        let fitted = self.fitted_workers.map(|f| format!(" (a Poisson model would say {f})")).unwrap_or_default();
        match (self.workers_needed, &self.workers_reason) {
            (Some(n), _) => format!("{} at this rate needs ≥ {n} workers{fitted}", self.target),
            (None, Some(why)) => format!("{}: {why}", self.target),
            (None, None) => self.target.clone(),
        }
    }
}

/// The response-time figure the target is about, or `None` where the pool is unstable.
fn figure(i: &Inputs, t: Target) -> Option<f64> {
    let which = match t {
        Target::P99(_) => Percentiles::LatencyP99,
        Target::Mean(_) => Percentiles::None,
    };
    let p = predict_for(&Inputs { queue: None, ..*i }, which).ok()?;
    let ms = match t {
        Target::P99(_) => p.latency_ms_p99,
        Target::Mean(_) => p.latency_ms_mean,
    }?;
    Some(ms / 1e3)
}

fn meets(i: &Inputs, t: Target) -> bool {
    figure(i, t).is_some_and(|v| v <= t.seconds())
}

/// Why no pool can meet the target whatever its size: the service time alone misses it.
fn service_alone_misses(i: &Inputs, t: Target) -> Option<String> {
    let s = match t {
        Target::P99(_) => tail::service_quantile(super::shape(i), i.service_mean, i.service_cv, 0.99),
        Target::Mean(_) => i.service_mean,
    };
    (s >= t.seconds()).then(|| {
        let what = if matches!(t, Target::P99(_)) { "p99" } else { "mean" };
        format!("the service time alone ({what} {}) misses it; no pool size can help", fmt_ms(s))
    })
}

/// Advises for these inputs and target.
#[must_use]
pub fn advise(i: &Inputs, t: Target) -> Advice {
    let (workers_needed, workers_reason) = match workers_needed(i, t) {
        Ok(n) => (Some(n), None),
        Err(e) => (None, Some(e)),
    };
    let (max_rate, max_rate_reason) = match max_rate(i, t) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    Advice { target: t.describe(), workers_needed, workers_reason, max_rate, max_rate_reason, fitted_workers: None }
}

/// The smallest worker count that meets the target at this rate.
///
/// # Errors
/// Why none does.
pub fn workers_needed(i: &Inputs, t: Target) -> Result<u32, String> {
    if let Some(why) = service_alone_misses(i, t) {
        return Err(why);
    }
    // Before a downstream with a throughput peak, workers past it only slow the pool: the
    // search stops there.
    let best = i.downstream.best_workers();
    let max = best.unwrap_or_else(|| u32::try_from(MAX_WORKERS).unwrap_or(u32::MAX));
    let at = |c: u32| meets(&Inputs { workers: c, ..*i }, t);
    if let Some(b) = best
        && !at(b)
    {
        let x = i.downstream.throughput(b, i.service_mean);
        return Err(format!(
            "not even the downstream's best pool ({b} workers, {x:.0} jobs/s at most) meets it; more workers would only slow it"
        ));
    }
    let mut lo = (i.load().floor() as u32).clamp(0, max.saturating_sub(1)); // fails (unstable) or unknown
    let mut hi = lo.saturating_add(1).max(1);
    while !at(hi) {
        if hi >= max {
            return Err(format!("no pool of up to {max} workers meets it"));
        }
        lo = hi;
        hi = hi.saturating_mul(2).min(max);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at(mid) { hi = mid } else { lo = mid }
    }
    Ok(hi)
}

/// The highest arrival rate at which this pool meets the target.
///
/// # Errors
/// Why there is none.
pub fn max_rate(i: &Inputs, t: Target) -> Result<f64, String> {
    if let Some(why) = service_alone_misses(i, t) {
        return Err(why);
    }
    if i.workers == 0 {
        return Err("a pool with no workers sustains nothing".into());
    }
    let capacity = if i.downstream.is_none() {
        f64::from(i.workers) / i.service_mean
    } else {
        i.downstream.throughput(i.workers, i.service_mean)
    };
    let at = |r: f64| meets(&Inputs { rate: r, ..*i }, t);
    // To a millionth of the pool's capacity.
    let (mut lo, mut hi) = (0.0, capacity);
    while hi - lo > capacity * 1e-6 {
        let mid = 0.5 * (lo + hi);
        if at(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
