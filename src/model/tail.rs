//! Waiting- and response-time distributions and their percentiles.
//!
//! The wait has an atom at zero (probability 1 − P(wait)) and an exponential tail:
//! P(Wq > t) = P(wait)·e^(−θt). For M/M/c, θ = cμ − λ exactly; otherwise θ is matched to the
//! predicted mean wait. The response time is wait plus an independent service time: closed form
//! for exponential service, otherwise averaged over the service distribution's quantiles.

use crate::settings::ServiceDist;

/// Quantile points used to average over the service distribution: enough that p99 of the
/// response is resolved for heavy tails (the largest point is u = 0.9995).
const SERVICE_POINTS: usize = 1000;

pub struct Tail {
    pub p_wait: f64,
    pub theta: f64,
    pub service_mean: f64,
    pub dist: ServiceDist,
    /// The service distribution's quantiles at (k + ½)/n, computed once (empty where the
    /// response has a closed form).
    service: Vec<f64>,
}

impl Tail {
    #[must_use]
    pub fn new(p_wait: f64, theta: f64, service_mean: f64, service_cv: f64, dist: ServiceDist) -> Self {
        let closed = dist == ServiceDist::Exponential && theta.is_finite();
        let n = SERVICE_POINTS as f64;
        let service = if closed {
            Vec::new()
        } else {
            (0..SERVICE_POINTS)
                .map(|k| service_quantile(dist, service_mean, service_cv, (k as f64 + 0.5) / n))
                .collect()
        };
        Self { p_wait, theta, service_mean, dist, service }
    }

    /// P(Wq > t).
    #[must_use]
    pub fn wait_exceeds(&self, t: f64) -> f64 {
        if t < 0.0 {
            1.0
        } else if self.theta.is_infinite() {
            0.0
        } else {
            self.p_wait * (-self.theta * t).exp()
        }
    }

    /// The q-quantile of the wait, in seconds.
    #[must_use]
    pub fn wait_quantile(&self, q: f64) -> f64 {
        let tail = 1.0 - q;
        if self.p_wait <= tail || self.theta.is_infinite() {
            return 0.0;
        }
        (self.p_wait / tail).ln() / self.theta
    }

    /// P(T > t) for the response time T = Wq + S.
    #[must_use]
    pub fn response_exceeds(&self, t: f64) -> f64 {
        let mu = 1.0 / self.service_mean;
        if self.dist == ServiceDist::Exponential && self.theta.is_finite() {
            let (c, alpha) = (self.p_wait, self.theta);
            let s = (-mu * t).exp();
            if (alpha - mu).abs() < 1e-9 * mu {
                // α = μ: the convolution's last factor becomes e^(−μt)·(1 + μt).
                return (1.0 - c) * s + c * s * (1.0 + mu * t);
            }
            return (1.0 - c) * s + c * (alpha * s - mu * (-alpha * t).exp()) / (alpha - mu);
        }
        self.service.iter().map(|&s| if s > t { 1.0 } else { self.wait_exceeds(t - s) }).sum::<f64>()
            / self.service.len() as f64
    }

    /// The q-quantile of the response time, in seconds, by bisection.
    #[must_use]
    pub fn response_quantile(&self, q: f64) -> f64 {
        let target = 1.0 - q;
        let mut hi = self.service_mean.max(1e-9);
        while self.response_exceeds(hi) > target && hi < 1e9 {
            hi *= 2.0;
        }
        // To 1e-6 of the answer: far below what any measurement resolves.
        let mut lo = 0.0;
        while hi - lo > 1e-6 * hi {
            let mid = 0.5 * (lo + hi);
            if self.response_exceeds(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }
}

/// The u-quantile of a service time with this mean and coefficient of variation. An empirical
/// sample is known here by its CV alone, and taken as lognormal with that CV.
#[must_use]
pub fn service_quantile(dist: ServiceDist, mean: f64, cv: f64, u: f64) -> f64 {
    match dist {
        ServiceDist::Constant => mean,
        ServiceDist::Exponential => -mean * (1.0 - u).ln(),
        ServiceDist::Uniform => (mean * (1.0 + 3f64.sqrt() * cv * (2.0 * u - 1.0))).max(0.0),
        ServiceDist::Lognormal | ServiceDist::Empirical => {
            let sigma2 = (1.0 + cv * cv).ln();
            let m = mean.ln() - sigma2 / 2.0;
            (m + sigma2.sqrt() * normal_quantile(u)).exp()
        }
    }
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error below 1.2e-9).
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let low = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}
