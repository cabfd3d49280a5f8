//! The closed-form pieces: Erlang B and C by recurrence, and the M/M/c/K state probabilities
//! through Erlang B, so nothing ever computes a factorial or a power that overflows.

/// Erlang B (blocking probability of c servers with offered load `a`), by the recurrence
/// B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)); stable for c in the thousands.
#[must_use]
pub fn erlang_b(c: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    b
}

/// Erlang C (probability that an arrival waits), C = c·B / (c − a·(1 − B)); meaningful for a < c.
#[must_use]
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let b = erlang_b(c, a);
    let c = f64::from(c);
    (c * b / (c - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// The M/M/c/K distribution, with K waiting places (c + K in the system).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mmck {
    /// Probability that an arrival finds the system full and is refused.
    pub p_reject: f64,
    /// Probability that an admitted arrival has to wait.
    pub p_wait: f64,
    /// Mean number waiting.
    pub lq: f64,
    /// Normalised probability of the first waiting state, `p_c` (the rest are `p_c·ρʲ`).
    pub p_c: f64,
}

/// Σ_{j=0}^{K} ρʲ and Σ_{j=0}^{K} j·ρʲ, stable near ρ = 1 and for large K.
fn geometric_sums(rho: f64, k: u64) -> (f64, f64) {
    let kf = k as f64;
    if k <= 100_000 {
        let (mut g, mut gj, mut term) = (0.0, 0.0, 1.0);
        for j in 0..=k {
            g += term;
            gj += j as f64 * term;
            term *= rho;
            if term < 1e-300 {
                break;
            }
        }
        return (g, gj);
    }
    if (rho - 1.0).abs() < 1e-12 {
        return (kf + 1.0, kf * (kf + 1.0) / 2.0);
    }
    // ρ^(K+1) through exp(ln) so large K underflows cleanly to zero.
    let ln_rho = rho.ln();
    let r_k1 = ((kf + 1.0) * ln_rho).exp();
    let r_k = (kf * ln_rho).exp();
    let g = -((kf + 1.0) * ln_rho).exp_m1() / (1.0 - rho);
    let gj = rho * (1.0 - (kf + 1.0) * r_k + kf * r_k1) / ((1.0 - rho) * (1.0 - rho));
    (g, gj)
}

/// M/M/c/K with offered load `a` = λ/μ. Above ρ = 1 the geometric weights are taken from the
/// far end (ρ^(j−K)), so a long queue under overload neither overflows nor loses precision.
#[must_use]
pub fn mmck(c: u32, a: f64, k: u64) -> Mmck {
    let b = erlang_b(c, a);
    let rho = a / f64::from(c);
    let kf = k as f64;
    // With S = Σ_{n≤c} aⁿ/n!: Σ_{n<c} aⁿ/n! = S(1 − B) and a^c/c! = S·B, so S cancels and
    // p_(c+j) = B·ρʲ / ((1 − B) + B·Σρʲ).
    let (p_c, p_reject, waiting, lq) = if rho <= 1.0 {
        let (g, gj) = geometric_sums(rho, k);
        let p_c = b / ((1.0 - b) + b * g);
        let p_reject = if k == 0 { p_c } else { p_c * (kf * rho.ln()).exp() };
        (p_c, p_reject, p_c * g - p_reject, p_c * gj)
    } else {
        let r = 1.0 / rho;
        let (gr, gjr) = geometric_sums(r, k);
        let inv_rk = (-kf * rho.ln()).exp();
        let p_reject = b / ((1.0 - b) * inv_rk + b * gr);
        (p_reject * inv_rk, p_reject, p_reject * (gr - 1.0), p_reject * (kf * gr - gjr))
    };
    let admitted = (1.0 - p_reject).max(f64::MIN_POSITIVE);
    Mmck { p_reject, p_wait: (waiting.max(0.0) / admitted).clamp(0.0, 1.0), lq, p_c }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn erlang_values_from_the_tables() {
        // Exact: c = 3, a = 2 gives C = 4/9; c = 2, a = 1 gives C = 1/3 (by hand from the formulas in the module docs).
        assert!(close(erlang_c(3, 2.0), 4.0 / 9.0, 1e-12));
        assert!(close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-12));
        // c = 1: C = ρ.
        assert!(close(erlang_c(1, 0.7), 0.7, 1e-12));
        // Erlang B table (e.g. the standard traffic tables): 10 trunks at 5 Erlangs block 1.838%.
        assert!(close(erlang_b(10, 5.0), 0.018_38, 5e-6));
        // Erlang C table: 10 Erlangs on 11 agents wait with probability 0.6821.
        assert!(close(erlang_c(11, 10.0), 0.6821, 5e-5));
    }

    #[test]
    fn huge_pools_stay_finite() {
        let c = erlang_c(10_000, 9_990.0);
        assert!(c.is_finite() && (0.0..=1.0).contains(&c), "{c}");
    }

    #[test]
    fn mmck_check_values() {
        // c = 1, ρ = 1, K = 4 (5 places): the 5 + 1 states are equally likely, so 1/6 is refused.
        assert!(close(mmck(1, 1.0, 4).p_reject, 1.0 / 6.0, 1e-12));
        // M/M/1/K closed form: p_K = (1 − ρ)ρ^(K+1−1)… with N = K+1 places, p_N = (1−ρ)ρ^N/(1−ρ^(N+1)).
        let (rho, n) = (0.8f64, 6u64);
        let want = (1.0 - rho) * rho.powi(n as i32) / (1.0 - rho.powi(n as i32 + 1));
        assert!(close(mmck(1, rho, n - 1).p_reject, want, 1e-12));
        // K = 0 is Erlang's loss system: rejection is Erlang B.
        assert!(close(mmck(10, 5.0, 0).p_reject, erlang_b(10, 5.0), 1e-12));
    }

    #[test]
    fn overload_rejects_the_excess() {
        // ρ = 2 with a long queue: half the arrivals must be refused, and the queue is full.
        let m = mmck(1, 2.0, 10_000_000);
        assert!(close(m.p_reject, 0.5, 1e-9), "{}", m.p_reject);
        assert!(m.lq > 9_999_990.0 && m.lq.is_finite());
        assert!(close(m.p_wait, 1.0, 1e-9));
    }

    #[test]
    fn closed_forms_agree_with_summation() {
        for rho in [0.5, 0.99, 1.0] {
            let direct = geometric_sums(rho, 1000);
            let mut big = 0.0;
            let mut bigj = 0.0;
            for j in 0..=200_000u64 {
                let t = rho.powf(j as f64);
                big += t;
                bigj += j as f64 * t;
            }
            let closed = geometric_sums(rho, 200_000);
            assert!(direct.0.is_finite());
            assert!(((closed.0 - big) / big).abs() < 1e-6, "{rho}: {} vs {big}", closed.0);
            assert!(((closed.1 - bigj) / bigj).abs() < 1e-6, "{rho}: {} vs {bigj}", closed.1);
        }
    }
}
