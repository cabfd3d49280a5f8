//! A closed loop: N clients, each thinking for an exponential time of mean Z, then submitting
//! one job and waiting for it, in front of c workers (the finite-source queue M/M/c//N).
//!
//! **Exact for exponential service** (mean 1/μ), by its birth–death solution. With n jobs in
//! the pool (queued or in service), jobs arrive at λₙ = (N − n)/Z and leave at μₙ = min(n, c)·μ;
//! pₙ ∝ Π_{i<n} λᵢ/μᵢ₊₁, computed in logarithms so that 100,000 clients neither overflow nor
//! underflow. With a queue bound K under `reject`, n stops at c + K and a client that finds it
//! full is refused and thinks again; under `block` it waits, which is the unbounded case.
//! - Throughput X = Σ pₙ·μₙ; utilisation X/(cμ); in the pool L = Σ n·pₙ, in the queue
//!   Lq = Σ (n − c)⁺·pₙ; mean response R = L/X and mean wait Lq/X (Little). Check value
//!   (mean value analysis): 1 worker, N = 2, Z = 1/μ gives X = 0.8μ and R = 1.5/μ.
//! - What an arriving job finds (the arrival theorem): πₙ ∝ (N − n)·pₙ. It waits when it finds
//!   n ≥ c, for n − c + 1 completions at rate cμ, an Erlang time, so
//!   P(Wq > t) = Σ_{n≥c} πₙ·P(Erlang(n − c + 1, cμ) > t), exact; response percentiles add a
//!   service time drawn from the service distribution to that exact wait.
//!
//! For other service distributions the same figures are an approximation (the method says so).
//! Think time 0 keeps every client in the pool: n = min(N, c + K).

use super::Prediction;
use super::tail::service_quantile;
use crate::settings::ServiceDist;

/// A closed loop, times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closed {
    pub clients: u64,
    /// Mean think time Z (exponential).
    pub think: f64,
    pub workers: u32,
    /// Waiting places K under `reject`; `None` when a full queue makes the client wait.
    pub queue: Option<u64>,
    pub service_mean: f64,
    pub service_cv: f64,
    pub service_dist: ServiceDist,
}

/// Service-time points for response percentiles.
const POINTS: usize = 1000;
/// Beyond this many waiting states, or an Erlang order above [`EXACT_ORDER`] (thousands of
/// clients queued), the wait's mixture of Erlang times is summed up by a normal distribution with
/// its mean and variance: each exact evaluation costs a pass over every order up to the largest,
/// and an Erlang time of order k is normal but for a skewness of 2/√k (0.14 at 200).
const EXACT_STATES: usize = 500;
const EXACT_ORDER: u64 = 200;

/// The waits an arriving job can meet: Erlang(k, rate) with weight w, for each k ≥ 1.
struct Waits {
    rate: f64,
    /// (k, probability) for the states that make a job wait, k increasing.
    erlang: Vec<(u64, f64)>,
    /// With more than [`EXACT_STATES`] states: P(wait), and the mean and standard deviation of
    /// the wait given that the job waits.
    normal: Option<(f64, f64, f64)>,
}

impl Waits {
    /// The wait's mean and variance: Σ w·k/r and Σ w·(k/r² + (k/r)²) − mean².
    #[allow(clippy::cast_precision_loss)]
    fn moments(&self) -> (f64, f64) {
        let r = self.rate;
        let mean: f64 = self.erlang.iter().map(|&(k, w)| w * k as f64 / r).sum();
        let second: f64 = self.erlang.iter().map(|&(k, w)| w * (k as f64 / (r * r) + (k as f64 / r).powi(2))).sum();
        (mean, (second - mean * mean).max(0.0))
    }

    /// P(Wq > t), exact: one pass, the Poisson terms e^(−x)·xʲ/j! built up in logarithms; past
    /// [`EXACT_STATES`] or [`EXACT_ORDER`], the normal with the same mean and variance (given
    /// the job waits).
    #[allow(clippy::cast_precision_loss)]
    fn exceeds(&self, t: f64) -> f64 {
        if let Some((p, m, sd)) = self.normal {
            return p * (1.0 - normal_cdf((t - m) / sd));
        }
        let x = self.rate * t.max(0.0);
        let (mut j, mut ln_term, mut below) = (0u64, -x, 0.0f64);
        let mut total = 0.0;
        for &(k, w) in &self.erlang {
            // P(Erlang(k) > t) = P(Poisson(x) < k) = Σ_{j<k} terms.
            while j < k {
                below += ln_term.exp();
                j += 1;
                ln_term += x.ln() - (j as f64).ln();
            }
            total += w * below.min(1.0);
        }
        total
    }
}

/// The loop's prediction. `clients` and `workers` are at least 1, the service mean more than 0
/// (checked by the caller).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn predict(l: &Closed) -> Prediction {
    let c = u64::from(l.workers);
    let mu = 1.0 / l.service_mean;
    let top = l.queue.map_or(l.clients, |k| l.clients.min(c.saturating_add(k)));
    // ln pₙ up to a constant, then normalised.
    let mut ln_p = Vec::with_capacity(usize::try_from(top).unwrap_or(0) + 1);
    if l.think <= 0.0 {
        ln_p.extend((0..top).map(|_| f64::NEG_INFINITY));
        ln_p.push(0.0);
    } else {
        ln_p.push(0.0);
        for n in 1..=top {
            let arrive = (l.clients - (n - 1)) as f64 / l.think;
            let leave = n.min(c) as f64 * mu;
            ln_p.push(ln_p[ln_p.len() - 1] + arrive.ln() - leave.ln());
        }
    }
    let peak = ln_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = ln_p.iter().map(|v| (v - peak).exp()).collect();
    let sum: f64 = p.iter().sum();
    let p: Vec<f64> = p.iter().map(|v| v / sum).collect();
    let at = |n: usize| n as u64;
    let x: f64 = p.iter().enumerate().map(|(n, pn)| pn * at(n).min(c) as f64 * mu).sum();
    let in_pool: f64 = p.iter().enumerate().map(|(n, pn)| pn * n as f64).sum();
    let queued: f64 = p.iter().enumerate().map(|(n, pn)| pn * at(n).saturating_sub(c) as f64).sum();
    let expo = l.service_dist == ServiceDist::Exponential && (l.service_cv - 1.0).abs() < 1e-9;
    let method = if expo { "M/M/c//N closed loop" } else { "M/G/c//N closed loop" };
    let mut pr = Prediction::blank(method, expo, x / (f64::from(l.workers) * mu), x);
    pr.wait_ms_mean = Some(queued / x * 1e3);
    pr.latency_ms_mean = Some(in_pool / x * 1e3);
    pr.queue_len_mean = Some(queued);
    pr.in_system_mean = Some(in_pool);
    // What arrivals find: πₙ ∝ (N − n)·pₙ (with zero think time, every arrival finds the pool
    // as it always is, less itself).
    let seen: Vec<f64> = if l.think <= 0.0 {
        let mut v = vec![0.0; p.len()];
        v[p.len() - 1 - usize::from(top == l.clients && top > 0)] = 1.0;
        v
    } else {
        p.iter().enumerate().map(|(n, pn)| pn * (l.clients - at(n)) as f64).collect()
    };
    let total: f64 = seen.iter().sum();
    let refused = if top < l.clients && total > 0.0 { seen[seen.len() - 1] / total } else { 0.0 };
    if l.queue.is_some() {
        pr.p_reject = Some(refused);
    }
    let admitted = (total * (1.0 - refused)).max(f64::MIN_POSITIVE);
    let last = if refused > 0.0 { seen.len() - 1 } else { seen.len() };
    let waits = Waits {
        rate: f64::from(l.workers) * mu,
        erlang: (0..last)
            .filter(|&n| at(n) >= c && seen[n] / admitted > 1e-15)
            .map(|n| (at(n) - c + 1, seen[n] / admitted))
            .collect(),
        normal: None,
    };
    let largest = waits.erlang.last().map_or(0, |e| e.0);
    let waits = if waits.erlang.len() > EXACT_STATES || largest > EXACT_ORDER {
        let p: f64 = waits.erlang.iter().map(|e| e.1).sum();
        let (mean, var) = waits.moments();
        let (m, second) = (mean / p, (var + mean * mean) / p);
        Waits { normal: Some((p, m, (second - m * m).max(1e-30).sqrt())), ..waits }
    } else {
        waits
    };
    pr.p_wait = Some(waits.erlang.iter().map(|e| e.1).sum());
    let service: Vec<f64> = (0..POINTS)
        .map(|k| service_quantile(l.service_dist, l.service_mean, l.service_cv, (k as f64 + 0.5) / POINTS as f64))
        .collect();
    let response_exceeds =
        |t: f64| service.iter().map(|&s| if s > t { 1.0 } else { waits.exceeds(t - s) }).sum::<f64>() / POINTS as f64;
    let ms = |v: f64| Some(v * 1e3);
    for (q, wait, resp) in [
        (0.50, &mut pr.wait_ms_p50, &mut pr.latency_ms_p50),
        (0.90, &mut pr.wait_ms_p90, &mut pr.latency_ms_p90),
        (0.99, &mut pr.wait_ms_p99, &mut pr.latency_ms_p99),
    ] {
        *wait = ms(quantile(|t| waits.exceeds(t), 1.0 - q, l.service_mean));
        *resp = ms(quantile(response_exceeds, 1.0 - q, l.service_mean));
    }
    if !expo {
        pr.note = Some("approximate: exact for exponential service".into());
    } else if waits.normal.is_some() {
        pr.note = Some("approximate percentiles (thousands of clients waiting: a normal wait)".into());
    }
    pr
}

/// Φ(z), from erfc by the Numerical Recipes Chebyshev fit (relative error below 1.2e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// The smallest t with `exceeds(t) ≤ tail`, by bisection (0 when already there at 0).
fn quantile(exceeds: impl Fn(f64) -> f64, tail: f64, scale: f64) -> f64 {
    if exceeds(0.0) <= tail {
        return 0.0;
    }
    let mut hi = scale.max(1e-9);
    while exceeds(hi) > tail && hi < 1e9 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    while hi - lo > 1e-5 * hi {
        let mid = 0.5 * (lo + hi);
        if exceeds(mid) > tail { lo = mid } else { hi = mid }
    }
    hi
}

#[cfg(test)]
#[path = "closed_tests.rs"]
mod tests;
