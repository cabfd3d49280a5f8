//! Exact trace-driven simulation: a recorded (or synthetic) arrival trace replayed through c
//! identical FIFO workers behind a queue of K places, under the queue's overflow policy. It owns
//! [`simulate`], [`replicate`], [`latency_percentiles`], each job's start ([`starts`]), the figures ([`TraceSim`], [`Dist`],
//! [`Spread`]), the fitted Poisson model beside it ([`poisson_equivalent`]) and the simulation as
//! a [`Prediction`].
//! The searches built on it are in [`super::trace_search`].
//!
//! # What is simulated
//! Arrival i comes at `arrivals[i] / speed` ns and needs its service time: given per arrival, or
//! drawn per arrival in arrival order from one seeded generator by the engine's own draw
//! ([`super::draw::Draw`]: a named distribution, or an empirical sample scaled to the mean), so
//! job i has the same demand whatever the pool size or policy. Each job goes to the
//! earliest free worker, first come first served: job j starts at max(its entry, the earliest
//! free time). At one instant a worker's end comes before an arrival (the arrival may take it).
//!
//! # Policies
//! - **block** (and any policy with no bound): the producer holds a job while the K places are
//!   full and lets jobs in in order as places free; latency counts from the intended arrival.
//!   *Response times are those of the unbounded FIFO queue.* Proof, by induction on j: FIFO
//!   start times are non-decreasing (job j takes the earliest free time F ≤ its start, and every
//!   other worker is free at F or later, so job j+1 starts no earlier). With the bound, job j
//!   enters when job j−K has started (then at most K−1 wait before it, and while j−K waits so do
//!   j−K+1…j−1): e(j) = max(a(j), s(j−K)). Its start is max(e(j), F(j)); if jobs before j start as
//!   in the unbounded queue, F(j) is the same, and s(j−K) ≤ s(j) = max(a(j), F(j)) (starts do not
//!   decrease), so max(e(j), F(j)) = max(a(j), F(j)): the unbounded start. (K = 0: e(j) = s(j).)
//!   Reported: `queue_len_mean`, the time-average of jobs in the K places (Σ (s(j) − e(j)) / span),
//!   and separately `held_mean`, the time-average of jobs the producer holds (Σ (e(j) − a(j)) /
//!   span); their sum is the unbounded queue's mean length.
//! - **reject**: an arrival that finds c workers busy and K waiting is refused (`rejected`),
//!   never served. K waiting means the K-th latest admitted job has not started (starts of
//!   admitted jobs do not decrease); with K = 0, that every worker's free time is later.
//! - **drop-oldest**: an arrival that finds K waiting evicts the oldest waiting job (`dropped`,
//!   not completed; its time in the queue counts in `queue_len_mean`) and joins the tail. With
//!   K = 0 there is no waiting job to evict: an arrival finding every worker busy is dropped.
//!
//! # Figures
//! Percentiles are exact, by nearest rank over the completed jobs: the q-quantile is the
//! ⌈q·n⌉-th smallest (found by selection, O(n), no histogram error). Times are f64
//! nanoseconds, exact for integer traces below 2⁵³ ns (104 days) at speed 1. The span runs from
//! the first arrival to the last arrival or end, whichever is later; utilisation, throughput
//! and time-averages divide by it. Memory: the samples (8 bytes a completed job, twice), the
//! workers' free times and at most K queued entries: O(n + c + K).

use std::fmt::Write;

use serde::Serialize;

use super::sample::ServiceSample;
use super::{Inputs, Prediction, draw, usl};
use crate::settings::{Policy, ServiceDist};

/// Where each job's service time comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Service<'a> {
    /// Nanoseconds, one per arrival.
    PerArrival(&'a [u64]),
    /// Drawn per arrival: mean in seconds, coefficient of variation (for uniform and
    /// lognormal), shape, seed, and the sample `empirical` draws from (scaled to the mean).
    Drawn { mean: f64, cv: f64, dist: ServiceDist, seed: u64, sample: Option<&'a ServiceSample> },
}

/// A trace and the pool it is replayed through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceInputs<'a> {
    /// Nanosecond offsets, ascending (equal allowed).
    pub arrivals: &'a [u64],
    /// Traffic growth factor: arrival i comes at `arrivals[i] / speed`.
    pub speed: f64,
    pub service: Service<'a>,
    pub workers: u32,
    /// Waiting places K (`None`: unbounded).
    pub queue: Option<u64>,
    pub policy: Policy,
}

/// A distribution over completed jobs, in milliseconds (all 0 when none completed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Dist {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What one replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TraceSim {
    pub offered: u64,
    pub completed: u64,
    pub rejected: u64,
    pub dropped: u64,
    /// Intended arrival to start.
    pub wait_ms: Dist,
    /// Intended arrival to end.
    pub response_ms: Dist,
    /// The fraction of completed jobs that waited at all.
    pub p_wait: f64,
    /// Utilisation: service done / (c · span).
    pub busy: f64,
    /// Time-average number of jobs in the K waiting places.
    pub queue_len_mean: f64,
    /// Block: time-average number of jobs the producer holds outside the full queue.
    pub held_mean: f64,
    pub throughput_per_s: f64,
    /// First arrival to the last arrival or end, seconds.
    pub span_s: f64,
}

/// 95% confidence half-widths of a [`replicate`] mean, figure by figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Replications behind it; with 1 (or service given per arrival, which does not vary)
    /// every half-width is 0.
    pub reps: u32,
    pub completed: f64,
    pub rejected: f64,
    pub dropped: f64,
    pub wait_ms: Dist,
    pub response_ms: Dist,
    pub p_wait: f64,
    pub busy: f64,
    pub queue_len_mean: f64,
    pub held_mean: f64,
    pub throughput_per_s: f64,
}

/// Replays the trace.
///
/// # Panics
/// No workers, a speed that is not a positive finite number, arrivals out of order, or
/// service given per arrival with a different length.
#[must_use]
pub fn simulate(i: &TraceInputs) -> TraceSim {
    run(i, true)
}

/// Replays the trace and gives each arrival's start in the replay (ns, in arrival order; NaN
/// for one refused or dropped): the ideal pool's side of a run's per-job account
/// ([`crate::metrics::account`]), job by job. Costs 8 bytes an arrival beyond [`simulate`]'s.
///
/// # Panics
/// As [`simulate`].
#[must_use]
pub fn starts(i: &TraceInputs) -> Vec<f64> {
    run::starts(i)
}

/// Replays with service drawn from `reps` seeds (seed, seed+1, …): the mean of each figure and
/// its 95% confidence half-width (Student t over the replications). Counts in the mean are
/// rounded. Service given per arrival is replayed once.
///
/// # Panics
/// As [`simulate`].
#[must_use]
pub fn replicate(i: &TraceInputs, reps: u32) -> (TraceSim, Spread) {
    let Service::Drawn { seed, .. } = i.service else {
        return (simulate(i), Spread { reps: 1, ..Spread::default() });
    };
    let reps = reps.max(1);
    let runs: Vec<[f64; FIGURES]> =
        (0..reps).map(|r| figures(&simulate(&reseeded(i, seed.wrapping_add(u64::from(r)))))).collect();
    let n = f64::from(reps);
    let t = if reps > 1 { t975(reps - 1) } else { 0.0 };
    let (mut mean, mut half) = ([0.0; FIGURES], [0.0; FIGURES]);
    for k in 0..FIGURES {
        mean[k] = runs.iter().map(|f| f[k]).sum::<f64>() / n;
        let var = runs.iter().map(|f| (f[k] - mean[k]).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        half[k] = t * (var / n).sqrt();
    }
    let m = unfigures(&mean);
    let h = unfigures(&half);
    let spread = Spread {
        reps,
        completed: half[1],
        rejected: half[2],
        dropped: half[3],
        wait_ms: h.wait_ms,
        response_ms: h.response_ms,
        p_wait: h.p_wait,
        busy: h.busy,
        queue_len_mean: h.queue_len_mean,
        held_mean: h.held_mean,
        throughput_per_s: h.throughput_per_s,
    };
    (m, spread)
}

/// The response time (ms) at each of `percentiles` (0 to 100), nearest rank over the completed
/// jobs (0 the shortest): the simulation's side of the percentile plot. Drawn service is
/// averaged, percentile by percentile, over `reps` seeds as [`replicate`] draws them; empty when
/// no job completes.
///
/// # Panics
/// As [`simulate`].
#[must_use]
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn latency_percentiles(i: &TraceInputs, reps: u32, percentiles: &[f64]) -> Vec<f64> {
    let seeds: Vec<TraceInputs> = match i.service {
        Service::Drawn { seed, .. } => (0..reps.max(1)).map(|r| reseeded(i, seed.wrapping_add(u64::from(r)))).collect(),
        Service::PerArrival(_) => vec![*i],
    };
    let mut sum = vec![0.0; percentiles.len()];
    for r in &seeds {
        let mut v = run::responses(r);
        if v.is_empty() {
            return Vec::new();
        }
        v.sort_unstable_by(f64::total_cmp);
        let n = v.len() as f64;
        for (s, p) in sum.iter_mut().zip(percentiles) {
            // The ⌈p·n⌉-th smallest (a hair under, so 99% of 100 is the 99th, not the 100th).
            let rank = ((p / 100.0 * n - 1e-9).ceil().max(1.0) as usize).min(v.len());
            *s += v[rank - 1] * 1e-6;
        }
    }
    sum.iter().map(|s| s / seeds.len() as f64).collect()
}

/// `i` with its drawn service seeded `seed`.
fn reseeded<'a>(i: &TraceInputs<'a>, seed: u64) -> TraceInputs<'a> {
    let service = match i.service {
        Service::Drawn { mean, cv, dist, sample, .. } => Service::Drawn { mean, cv, dist, seed, sample },
        given @ Service::PerArrival(_) => given,
    };
    TraceInputs { service, ..*i }
}

/// The replay's p99 response (ms) alone, without the wait samples: what the searches need.
pub(super) fn run_p99(i: &TraceInputs) -> f64 {
    run(i, false).response_ms.p99
}

const FIGURES: usize = 20;

fn dist_figures(d: Dist) -> [f64; 5] {
    [d.mean, d.p50, d.p90, d.p99, d.max]
}

#[allow(clippy::cast_precision_loss)]
fn figures(s: &TraceSim) -> [f64; FIGURES] {
    let (w, r) = (dist_figures(s.wait_ms), dist_figures(s.response_ms));
    [
        s.offered as f64,
        s.completed as f64,
        s.rejected as f64,
        s.dropped as f64,
        w[0],
        w[1],
        w[2],
        w[3],
        w[4],
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        s.p_wait,
        s.busy,
        s.queue_len_mean,
        s.held_mean,
        s.throughput_per_s,
        s.span_s,
    ]
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn unfigures(f: &[f64; FIGURES]) -> TraceSim {
    let dist = |d: &[f64]| Dist { mean: d[0], p50: d[1], p90: d[2], p99: d[3], max: d[4] };
    TraceSim {
        offered: f[0].round() as u64,
        completed: f[1].round() as u64,
        rejected: f[2].round() as u64,
        dropped: f[3].round() as u64,
        wait_ms: dist(&f[4..9]),
        response_ms: dist(&f[9..14]),
        p_wait: f[14],
        busy: f[15],
        queue_len_mean: f[16],
        held_mean: f[17],
        throughput_per_s: f[18],
        span_s: f[19],
    }
}

/// Student t's 97.5% point with `df` degrees of freedom: a table to 30, then the
/// Cornish–Fisher expansion (within 0.001 there).
fn t975(df: u32) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        return T[df as usize - 1];
    }
    let (z, v) = (1.959_964_f64, f64::from(df.max(1)));
    z + (z.powi(3) + z) / (4.0 * v) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

impl TraceSim {
    /// The replay as a model [`Prediction`], so it shows wherever the model is shown. ρ is the
    /// utilisation the replay carried; `p_reject` (with a bound under reject or drop-oldest) is
    /// the fraction of arrivals lost, refused or dropped, as M/M/c/K's P(reject) (the two policies
    /// lose alike when every job needs the same time); under block the note gives the
    /// producer's held jobs.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn prediction(&self, i: &TraceInputs) -> Prediction {
        let mut p = Prediction::blank("trace simulation (exact, FIFO)", true, self.busy, self.throughput_per_s);
        let some = Some;
        p.p_wait = some(self.p_wait);
        let bounded = i.queue.is_some() && i.policy != Policy::Block;
        if bounded && self.offered > 0 {
            p.p_reject = some((self.rejected + self.dropped) as f64 / self.offered as f64);
        }
        p.wait_ms_mean = some(self.wait_ms.mean);
        p.latency_ms_mean = some(self.response_ms.mean);
        p.queue_len_mean = some(self.queue_len_mean);
        p.in_system_mean = some(self.queue_len_mean + self.busy * f64::from(i.workers));
        (p.wait_ms_p50, p.wait_ms_p90, p.wait_ms_p99) =
            (some(self.wait_ms.p50), some(self.wait_ms.p90), some(self.wait_ms.p99));
        (p.latency_ms_p50, p.latency_ms_p90, p.latency_ms_p99) =
            (some(self.response_ms.p50), some(self.response_ms.p90), some(self.response_ms.p99));
        let mut note = format!("replay of {} arrivals", self.offered);
        if self.dropped > 0 {
            let _ = write!(note, ", {} dropped (oldest waiting)", self.dropped);
        }
        if self.held_mean > 0.0 {
            let _ = write!(note, "; the producer held {:.2} more jobs on average (block)", self.held_mean);
        }
        p.note = Some(note);
        p
    }
}

/// The fitted Poisson model of the same replay: arrival rate n / span × speed with arrival CV 1,
/// the service's mean and CV (per arrival: measured over the trace, population CV; its shape
/// is then the one a bare CV implies; an empirical sample's own CV), the same pool, bound and
/// no downstream. A trace whose
/// arrivals share one instant has no span: its rate is 0.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn poisson_equivalent(i: &TraceInputs) -> Inputs {
    let n = i.arrivals.len();
    let span_ns = match (i.arrivals.first(), i.arrivals.last()) {
        (Some(&a), Some(&b)) => b.saturating_sub(a) as f64,
        _ => 0.0,
    };
    let rate = if span_ns > 0.0 { n as f64 / (span_ns * 1e-9) * i.speed } else { 0.0 };
    let (service_mean, service_cv, service_dist) = match i.service {
        Service::PerArrival(s) => {
            let m = s.iter().map(|&x| x as f64).sum::<f64>() / (s.len().max(1) as f64);
            let var = s.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (s.len().max(1) as f64);
            let cv = if m > 0.0 { var.sqrt() / m } else { 0.0 };
            (m * 1e-9, cv, ServiceDist::Exponential)
        }
        Service::Drawn { mean, cv, dist, sample, .. } => (mean, draw::cv(dist, cv, sample), dist),
    };
    Inputs {
        rate,
        service_mean,
        workers: i.workers,
        queue: i.queue,
        arrival_cv: 1.0,
        service_cv,
        service_dist,
        downstream: usl::Usl { contention: 0.0, coherency: 0.0, capacity: None },
    }
}

#[path = "trace_run.rs"]
mod run;
use run::run;

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
