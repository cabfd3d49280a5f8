//! Exact event-by-event simulations of a closed loop, independent of [`super::closed`]'s
//! birth–death solution: what the model's tests check it against, and where a run's sampling
//! error comes from (the spread of a statistic over many seeds of the same length).
//!
//! Clients think for exponential times of mean Z, then submit one job; c workers serve jobs
//! first come, first served, for exponential times of mean E\[S\]; the client thinks again when its
//! job ends.

use std::collections::VecDeque;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};

/// One stretch of a simulated loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopStats {
    /// Jobs ended per second.
    pub throughput_per_s: f64,
    /// Mean response (submission to end), ms.
    pub response_ms_mean: f64,
    /// 99th percentile of the wait (submission to start), ms.
    pub wait_ms_p99: f64,
}

/// Simulates `clients` clients (mean think `think` s) in front of `workers` workers (mean
/// service `service` s) and returns one [`LoopStats`] for each of `stretches` consecutive
/// stretches of `jobs` ended jobs, after `warm` jobs left out.
///
/// # Panics
/// If a mean is not above 0 or there are no clients or workers.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn closed_loop(
    (clients, think, workers, service): (usize, f64, usize, f64),
    warm: usize,
    jobs: usize,
    stretches: usize,
    seed: u64,
) -> Vec<LoopStats> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (think, serve) = (Exp::new(1.0 / think).expect("think > 0"), Exp::new(1.0 / service).expect("service > 0"));
    // Each client's next submission (while thinking), each worker's end and client (while busy).
    let mut submit: Vec<Option<f64>> = (0..clients).map(|_| Some(think.sample(&mut rng))).collect();
    let mut ends: Vec<Option<(f64, usize)>> = vec![None; workers];
    let (mut queue, mut submitted_at) = (VecDeque::new(), vec![0.0; clients]);
    let mut out = Vec::with_capacity(stretches);
    let (mut done, mut t0, mut resp, mut waits) = (0usize, 0.0, 0.0, Vec::with_capacity(jobs));
    let mut warming = warm;
    while out.len() < stretches {
        let next_submit =
            submit.iter().enumerate().filter_map(|(i, t)| t.map(|t| (t, i))).min_by(|a, b| a.0.total_cmp(&b.0));
        let next_end =
            ends.iter().enumerate().filter_map(|(w, e)| e.map(|(t, i)| (t, w, i))).min_by(|a, b| a.0.total_cmp(&b.0));
        match (next_submit, next_end) {
            (Some((t, i)), e) if e.is_none_or(|e| t < e.0) => {
                submit[i] = None;
                submitted_at[i] = t;
                match ends.iter().position(Option::is_none) {
                    Some(w) => {
                        ends[w] = Some((t + serve.sample(&mut rng), i));
                        waits.push(0.0);
                    }
                    None => queue.push_back(i),
                }
            }
            (_, Some((t, w, i))) => {
                resp += t - submitted_at[i];
                submit[i] = Some(t + think.sample(&mut rng));
                ends[w] = queue.pop_front().map(|j| {
                    waits.push(t - submitted_at[j]);
                    (t + serve.sample(&mut rng), j)
                });
                if warming > 0 {
                    warming -= 1;
                    (t0, resp) = (t, 0.0);
                    waits.clear();
                    continue;
                }
                done += 1;
                if done == jobs {
                    waits.sort_by(f64::total_cmp);
                    out.push(LoopStats {
                        throughput_per_s: jobs as f64 / (t - t0),
                        response_ms_mean: resp / jobs as f64 * 1e3,
                        wait_ms_p99: waits[(waits.len() * 99 / 100).min(waits.len() - 1)] * 1e3,
                    });
                    (done, t0, resp) = (0, t, 0.0);
                    waits.clear();
                }
            }
            _ => unreachable!("some client is thinking or some job is running"),
        }
    }
    out
}

/// Mean and standard deviation of `f` over `stats`.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn spread(stats: &[LoopStats], f: impl Fn(&LoopStats) -> f64) -> (f64, f64) {
    let n = stats.len() as f64;
    let mean = stats.iter().map(&f).sum::<f64>() / n;
    let var = stats.iter().map(|s| (f(s) - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
