//! A batch: N jobs that all arrive at once in front of c workers, served in order.
//!
//! Job k (counting from 0) starts when a worker frees up for it, so everything follows from when
//! the workers free up:
//! - **Constant service S** (exact): job k starts at ⌊k/c⌋·S and ends at (⌊k/c⌋ + 1)·S. With
//!   q = ⌊N/c⌋ and r = N − q·c, the mean response is S·(c·q(q + 1)/2 + r·(q + 1))/N, which is
//!   S·(N/c + 1)/2 when c divides N (100 jobs on 5 workers at 20 ms: 210 ms), and the last job
//!   ends at ⌈N/c⌉·S. Percentiles are those of that list of N responses.
//! - **Exponential service, mean 1/μ** (exact means): while all c workers are busy, completions
//!   come at rate cμ whatever has happened before, so job k ≥ c starts after k − c + 1 of them:
//!   E\[start\] = (k − c + 1)/(cμ). The mean response is 1/μ + (N − c)(N − c + 1)/(2N·cμ) for
//!   N > c (1/μ otherwise), and the last job ends after the first N − c completions plus the
//!   longest of the c services then running: (N − c)/(cμ) + H(c)/μ, H(c) = 1 + 1/2 + … + 1/c
//!   (H(N)/μ when N ≤ c). Percentiles are approximate: those of the jobs' mean responses.
//! - **Other distributions** (approximate): the exponential form's means, which count each
//!   start as (k − c + 1) mean services over c workers, and ⌈N/c⌉·S for the last job.

use super::Prediction;
use crate::settings::ServiceDist;

/// A batch, times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batch {
    pub jobs: u64,
    pub workers: u32,
    pub service_mean: f64,
    pub service_dist: ServiceDist,
}

/// The batch's prediction. `jobs` and `workers` are at least 1, the service mean more than 0
/// (checked by the caller).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn predict(b: &Batch) -> Prediction {
    let (n, c, s) = (b.jobs as f64, f64::from(b.workers), b.service_mean);
    let busy = b.jobs.min(u64::from(b.workers)) as f64;
    let (method, exact, mean, makespan) = match b.service_dist {
        ServiceDist::Constant => {
            let q = (b.jobs / u64::from(b.workers)) as f64;
            let r = n - q * c;
            let mean = s * (c * q * (q + 1.0) / 2.0 + r * (q + 1.0)) / n;
            ("batch, constant service", true, mean, (n / c).ceil() * s)
        }
        ServiceDist::Exponential => {
            let harmonic = (1..=b.jobs.min(u64::from(b.workers))).map(|k| 1.0 / k as f64).sum::<f64>();
            let extra = (n - busy).max(0.0);
            let mean = s + extra * (extra + 1.0) / (2.0 * n * c) * s;
            ("batch, exponential service", true, mean, extra / c * s + harmonic * s)
        }
        ServiceDist::Uniform | ServiceDist::Lognormal | ServiceDist::Empirical => {
            let extra = (n - busy).max(0.0);
            let mean = s + extra * (extra + 1.0) / (2.0 * n * c) * s;
            ("batch", false, mean, (n / c).ceil() * s)
        }
    };
    let mut p = Prediction::blank(method, exact, n * s / (c * makespan), n / makespan);
    p.p_wait = Some((n - busy) / n);
    p.wait_ms_mean = Some((mean - s) * 1e3);
    p.latency_ms_mean = Some(mean * 1e3);
    // Time averages over the batch's span (Little's law over [0, makespan]).
    p.queue_len_mean = Some(n * (mean - s) / makespan);
    p.in_system_mean = Some(n * mean / makespan);
    p.makespan_ms = Some(makespan * 1e3);
    // Job k's response: exact for constant service, its mean otherwise.
    let response = |k: u64| match b.service_dist {
        ServiceDist::Constant => ((k / u64::from(b.workers)) as f64 + 1.0) * s,
        _ => s + (k as f64 - c + 1.0).max(0.0) / c * s,
    };
    // Nearest rank: the smallest response at least a fraction q of the jobs have.
    let quantile = |q: f64| response(((q * n).ceil() as u64).clamp(1, b.jobs) - 1);
    let ms = |x: f64| Some(x * 1e3);
    p.latency_ms_p50 = ms(quantile(0.50));
    p.latency_ms_p90 = ms(quantile(0.90));
    p.latency_ms_p99 = ms(quantile(0.99));
    p.wait_ms_p50 = ms(quantile(0.50) - s);
    p.wait_ms_p90 = ms(quantile(0.90) - s);
    p.wait_ms_p99 = ms(quantile(0.99) - s);
    if b.service_dist != ServiceDist::Constant {
        p.note = Some("approximate percentiles (each job's mean response)".into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(jobs: u64, workers: u32, dist: ServiceDist) -> Prediction {
        predict(&Batch { jobs, workers, service_mean: 0.02, service_dist: dist })
    }

    /// The seed's batch: 100 jobs, 5 workers, constant 20 ms.
    #[test]
    fn the_seed_batch_ends_at_400_ms_with_a_210_ms_mean() {
        let p = batch(100, 5, ServiceDist::Constant);
        assert!((p.makespan_ms.unwrap() - 400.0).abs() < 1e-9);
        assert!((p.latency_ms_mean.unwrap() - 210.0).abs() < 1e-9);
        assert!((p.latency_ms_p50.unwrap() - 200.0).abs() < 1e-9);
        assert!((p.latency_ms_p99.unwrap() - 400.0).abs() < 1e-9);
        assert!((p.rho - 1.0).abs() < 1e-12);
    }

    /// Against the list itself, for workers that do not divide the batch.
    #[test]
    fn constant_service_matches_a_direct_count() {
        for (n, c) in [(7u64, 3u32), (1, 4), (10, 10), (11, 10), (101, 7)] {
            let direct = (0..n).map(|k| ((k / u64::from(c)) as f64 + 1.0) * 20.0).sum::<f64>() / n as f64;
            let p = batch(n, c, ServiceDist::Constant);
            assert!((p.latency_ms_mean.unwrap() - direct).abs() < 1e-9, "{n} on {c}");
            assert!((p.makespan_ms.unwrap() - (n as f64 / f64::from(c)).ceil() * 20.0).abs() < 1e-9);
        }
    }

    /// Against an exact simulation (each job starts when the earliest worker frees up) over
    /// 20,000 seeds: each figure within 4 standard errors of the simulated mean (the standard
    /// deviation across seeds over √20,000).
    #[test]
    fn exponential_means_match_a_simulation() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp};
        let (n, c, s) = (40usize, 4usize, 0.02);
        let serve = Exp::new(1.0 / s).unwrap();
        let runs = 20_000u64;
        let (mut means, mut lasts) = (Vec::new(), Vec::new());
        for seed in 0..runs {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut free = vec![0.0f64; c];
            let (mut sum, mut end_max) = (0.0, 0.0f64);
            for _ in 0..n {
                let (i, &t) = free.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap();
                free[i] = t + serve.sample(&mut rng);
                sum += free[i];
                end_max = end_max.max(free[i]);
            }
            means.push(sum / n as f64 * 1e3);
            lasts.push(end_max * 1e3);
        }
        let within = |xs: &[f64], want: f64, what: &str| {
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt();
            let se = sd / (xs.len() as f64).sqrt();
            assert!((want - m).abs() <= 4.0 * se, "{what}: model {want}, simulated {m} ± {se}");
        };
        let p = batch(n as u64, c as u32, ServiceDist::Exponential);
        within(&means, p.latency_ms_mean.unwrap(), "mean response");
        within(&lasts, p.makespan_ms.unwrap(), "last job");
    }
}
