//! The downstream's Universal Scalability Law fitted from what a run saw: σ (contention) and κ
//! (coherency) from the (jobs inside N, mean holding time S) points of a workers sweep, hill
//! climbing, or an operator changing the count, with 95% intervals, the peak N* and the peak
//! throughput. The fitted curve is a [`Usl`], the same type the model and the engine use.
//!
//! **Why this form.** The law says X(N) = N / (S₁·(1 + σ(N−1) + κN(N−1))), so the time a job
//! holds its worker with N inside, S(N) = N/X(N), is *linear* in (a, b, c) = (S₁, S₁σ, S₁κ):
//! S = a + b(N−1) + c·N(N−1). Fitting S rather than X makes ordinary least squares exact for the
//! law (no iteration, no starting guess), and S is what a run measures per job. Each point's
//! mean is of n jobs whose holding times spread in proportion to their mean (a saturated pool's
//! service CV does not depend on N), so its variance is ∝ S²/n: the fit weighs each point by
//! n/S² (weighted least squares with the inverse variances), so a short window or a long service
//! counts for less. The law needs σ, κ ≥ 0: when the unconstrained fit makes b or c negative,
//! every subset of {b, c} held at 0 is fitted and the feasible one with the least weighted
//! squared error kept (exact non-negative least squares for two constrained coefficients).
//!
//! **Intervals.** The unconstrained fit's residual variance s² = Σw·r²/(m − 3) (m counts)
//! scales its (XᵀWX)⁻¹ into the coefficients' covariance; σ = b/a, κ = c/a and N* = √((a − b)/c)
//! get standard errors by the delta method and 95% intervals with Student's t at m − 3 degrees
//! of freedom (wide with few counts, as they should be). Taking the unconstrained covariance
//! gives a coefficient held at 0 the range the points allow above it, rather than none. With
//! exactly three counts there is no residual to judge the noise by, so the fit has no intervals
//! and says one more count gives them.
//!
//! **No peak.** When κ's interval reaches 0 the data cannot tell a peak from a plateau: the fit
//! says "no peak in range" rather than report an N* that is only noise. Fewer than three distinct
//! worker counts cannot fix three coefficients: [`NotEnough`] says how many more and at which
//! counts. Pure maths: no I/O, no tokio.

use serde::Serialize;

use super::usl::Usl;

/// One worker count's measurement: N jobs inside on average, each held S seconds, n jobs seen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// The worker count this point was measured at.
    pub workers: u32,
    /// Mean jobs inside the downstream (busy workers) over the point's windows.
    pub inside: f64,
    /// Mean holding time of a job, seconds.
    pub hold_s: f64,
    /// Jobs measured.
    pub jobs: u64,
}

impl Point {
    /// Jobs completed a second: the jobs inside over the holding time (Little's law).
    #[must_use]
    pub fn throughput(&self) -> f64 {
        self.inside / self.hold_s
    }
}

/// An estimate and its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The fitted law.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UslFit {
    /// σ and κ as fitted, no capacity limit: the curve the model uses.
    pub usl: Usl,
    /// S₁ = 1/λ, the holding time of a job alone, seconds.
    pub alone_s: f64,
    /// `None` with exactly as many counts as free coefficients (no residual to judge noise by).
    pub contention: Option<Interval>,
    pub coherency: Option<Interval>,
    /// N*, when κ's interval excludes 0 (or, without intervals, κ > 0).
    pub peak: Option<Interval>,
    /// X(N*) = N*/(S₁·(1 + σ(N*−1) + κN*(N*−1))), jobs a second.
    pub peak_per_s: Option<f64>,
    /// N* lies past the largest count measured: an extrapolation.
    pub peak_extrapolated: bool,
    pub points: Vec<Point>,
    /// What to measure next for a better fit, if anything.
    pub advice: Option<String>,
}

/// Too few distinct worker counts to fit three coefficients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEnough {
    pub have: Vec<u32>,
    /// Counts that would complete the fit.
    pub suggest: Vec<u32>,
}

/// The fewest distinct worker counts that fix a, b and c.
pub const MIN_COUNTS: usize = 3;

impl std::fmt::Display for NotEnough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let need = MIN_COUNTS - self.have.len();
        let have = if self.have.is_empty() { "none".to_string() } else { list(&self.have) };
        write!(
            f,
            "USL fit: needs {MIN_COUNTS} worker counts (have {have}); measure {need} more, e.g. at {} workers",
            list(&self.suggest)
        )
    }
}

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom (then 1.96).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

fn t975(dof: usize) -> f64 {
    T975.get(dof.wrapping_sub(1)).copied().unwrap_or(1.96)
}

/// Counts not yet measured that spread the fit: doublings past the largest, then halvings.
fn suggest(have: &[u32], need: usize) -> Vec<u32> {
    let max = have.iter().copied().max().unwrap_or(1).max(1);
    let min = have.iter().copied().min().unwrap_or(1).max(1);
    let ups = (1..=4).map(|k| max.saturating_mul(1 << k));
    let downs = [min / 2, min / 4].into_iter().filter(|c| *c >= 1);
    let base = if have.is_empty() { vec![2, 8, 16] } else { Vec::new() };
    let mut out: Vec<u32> = Vec::new();
    for c in base.into_iter().chain(ups).chain(downs) {
        if !have.contains(&c) && !out.contains(&c) && out.len() < need {
            out.push(c);
        }
    }
    out.sort_unstable();
    out
}

/// Weighted least squares of S on the columns `cols` of (1, N−1, N(N−1)): the coefficients
/// (0 for the columns left out), the weighted squared error and (XᵀWX)⁻¹ in full 3×3 form.
fn solve(points: &[Point], cols: &[usize]) -> Option<([f64; 3], f64, [[f64; 3]; 3])> {
    let row = |p: &Point| [1.0, p.inside - 1.0, p.inside * (p.inside - 1.0)];
    let weight = |p: &Point| {
        #[allow(clippy::cast_precision_loss)]
        let n = p.jobs.max(1) as f64;
        n / (p.hold_s * p.hold_s)
    };
    let k = cols.len();
    let (mut m, mut v) = ([[0.0f64; 3]; 3], [0.0f64; 3]);
    for p in points {
        let (x, w) = (row(p), weight(p));
        for i in 0..k {
            v[i] += w * x[cols[i]] * p.hold_s;
            for j in 0..k {
                m[i][j] += w * x[cols[i]] * x[cols[j]];
            }
        }
    }
    let inv = invert(&m, k)?;
    let mut coef = [0.0; 3];
    for i in 0..k {
        coef[cols[i]] = (0..k).map(|j| inv[i][j] * v[j]).sum();
    }
    let sse = points
        .iter()
        .map(|p| {
            let x = row(p);
            let r = p.hold_s - (coef[0] * x[0] + coef[1] * x[1] + coef[2] * x[2]);
            weight(p) * r * r
        })
        .sum();
    let mut full = [[0.0; 3]; 3];
    for i in 0..k {
        for j in 0..k {
            full[cols[i]][cols[j]] = inv[i][j];
        }
    }
    Some((coef, sse, full))
}

/// The inverse of the leading k×k block of `m` by Gauss–Jordan with partial pivoting; `None`
/// when it is singular (the points cannot separate the coefficients).
fn invert(m: &[[f64; 3]; 3], k: usize) -> Option<[[f64; 3]; 3]> {
    let mut a = *m;
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate().take(k) {
        row[i] = 1.0;
    }
    let scale = (0..k).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    for col in 0..k {
        let piv = (col..k).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[piv][col].abs() <= scale * 1e-13 {
            return None;
        }
        a.swap(col, piv);
        inv.swap(col, piv);
        let d = a[col][col];
        for j in 0..k {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for r in (0..k).filter(|r| *r != col) {
            let f = a[r][col];
            for j in 0..k {
                a[r][j] -= f * a[col][j];
                inv[r][j] -= f * inv[col][j];
            }
        }
    }
    Some(inv)
}

/// `g`'s standard error from the gradient `d` and the covariance `cov`.
fn delta(d: [f64; 3], cov: &[[f64; 3]; 3]) -> f64 {
    let mut v = 0.0;
    for i in 0..3 {
        for j in 0..3 {
            v += d[i] * cov[i][j] * d[j];
        }
    }
    v.max(0.0).sqrt()
}

/// Fits the law to per-count points (one per worker count: aggregate windows first).
///
/// # Errors
/// Fewer than [`MIN_COUNTS`] distinct counts with jobs measured, or points that cannot separate
/// the coefficients (reported the same way, asking for counts further apart).
pub fn fit(points: &[Point]) -> Result<UslFit, NotEnough> {
    let mut pts: Vec<Point> =
        points.iter().copied().filter(|p| p.jobs > 0 && p.hold_s.is_finite() && p.hold_s > 0.0).collect();
    pts.sort_by(|x, y| x.inside.total_cmp(&y.inside));
    let mut have: Vec<u32> = pts.iter().map(|p| p.workers).collect();
    have.sort_unstable();
    have.dedup();
    let not_enough = |have: Vec<u32>| {
        let need = MIN_COUNTS.saturating_sub(have.len()).max(1);
        NotEnough { suggest: suggest(&have, need), have }
    };
    if have.len() < MIN_COUNTS {
        return Err(not_enough(have));
    }
    // Every subset of {b, c} set free; the feasible fit with the least error wins.
    let best = [&[0usize, 1, 2][..], &[0, 1], &[0, 2], &[0]]
        .into_iter()
        .filter_map(|cols| solve(&pts, cols))
        .filter(|(c, _, _)| c[0] > 0.0 && c[1] >= 0.0 && c[2] >= 0.0)
        .min_by(|x, y| x.1.total_cmp(&y.1));
    let Some(([a, b, c], _, _)) = best else { return Err(not_enough(have)) };
    // The covariance of the unconstrained fit: a coefficient held at 0 still gets the range
    // the points allow above it.
    let dof = pts.len().saturating_sub(3);
    #[allow(clippy::cast_precision_loss)]
    let cov = solve(&pts, &[0, 1, 2]).filter(|_| dof > 0).map(|(_, sse, inv)| {
        let s2 = sse / dof as f64;
        inv.map(|r| r.map(|x| x * s2))
    });
    let t = t975(dof);
    let interval = |value: f64, d: [f64; 3]| {
        cov.as_ref().map(|cov| {
            let h = t * delta(d, cov);
            Interval { value, low: (value - h).max(0.0), high: value + h }
        })
    };
    let (sigma, kappa) = (b / a, c / a);
    let contention = interval(sigma, [-b / (a * a), 1.0 / a, 0.0]);
    let coherency = interval(kappa, [-c / (a * a), 0.0, 1.0 / a]);
    let peaked = kappa > 0.0 && coherency.is_none_or(|k| k.value - (k.high - k.value) > 0.0);
    let usl = Usl { contention: sigma, coherency: kappa, capacity: None };
    let (peak, peak_per_s) = match usl.peak().filter(|_| peaked && sigma < 1.0) {
        Some(n) => {
            let d = [1.0 / (2.0 * n * c), -1.0 / (2.0 * n * c), -(a - b) / (2.0 * n * c * c)];
            let i = interval(n, d).unwrap_or(Interval { value: n, low: n, high: n });
            (Some(i), Some(n / (a * usl.stretch(n))))
        }
        None => (None, None),
    };
    let top = pts.iter().map(|p| p.inside).fold(0.0, f64::max);
    let peak_extrapolated = peak.is_some_and(|n| n.value > top);
    let advice = if dof == 0 {
        Some(format!(
            "no interval yet: measure one more count (e.g. {} workers)",
            suggest(&have, 1).first().copied().unwrap_or(1)
        ))
    } else if peak_extrapolated {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let near = peak.map_or(1, |n| n.value.round() as u32);
        Some(format!("N* is past the counts measured: measure near {near} workers to confirm it"))
    } else {
        None
    };
    Ok(UslFit { usl, alone_s: a, contention, coherency, peak, peak_per_s, peak_extrapolated, points: pts, advice })
}

impl UslFit {
    /// The downstream to size pools by: the fitted curve when it has a peak (a plateau fitted
    /// from noise would only make the model pessimistic), else `None`.
    #[must_use]
    pub fn downstream(&self) -> Option<Usl> {
        self.peak.map(|_| self.usl)
    }

    /// The advisor's line for `target` at `rate` jobs/s in front of the fitted downstream, with a
    /// job alone holding its worker S₁ (exponential service): only for a fit whose peak the run
    /// has measured past, the one a sizer may trust.
    #[must_use]
    pub fn advice(&self, rate: f64, target: super::advisor::Target) -> Option<String> {
        let u = self.downstream().filter(|_| !self.peak_extrapolated)?;
        let i = super::Inputs { downstream: u, ..super::Inputs::mmc(rate, self.alone_s, 1) };
        (rate > 0.0).then(|| super::advisor::advise(&i, target).line())
    }

    /// One line: σ, κ and N* with their intervals, and the peak throughput.
    #[must_use]
    pub fn line(&self) -> String {
        let iv = |i: Option<Interval>, v: f64, p: usize| match i {
            Some(i) => format!("{:.p$} [{:.p$}–{:.p$}]", i.value, i.low, i.high),
            None => format!("{v:.p$}"),
        };
        let head = format!(
            "σ {} κ {}",
            iv(self.contention, self.usl.contention, 3),
            iv(self.coherency, self.usl.coherency, 4)
        );
        match (self.peak, self.peak_per_s) {
            (Some(n), Some(x)) => {
                let past = if self.peak_extrapolated { ", extrapolated" } else { "" };
                let range = if n.high > n.low { format!(" [{:.1}–{:.1}]", n.low, n.high) } else { String::new() };
                format!("{head}  N* {:.1}{range}{past}  peak {x:.0}/s", n.value)
            }
            _ => format!("{head}  no peak in range (κ ≈ 0)"),
        }
    }
}

#[cfg(test)]
#[path = "usl_fit_tests.rs"]
mod tests;
