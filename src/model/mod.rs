//! Queueing theory for the settings that are running: what a pool of `c` workers behind a queue
//! should do at arrival rate λ and mean service time E\[S\].
//!
//! - [`erlang`]: Erlang B and C by recurrence, M/M/c/K through Erlang B (no factorials).
//! - [`tail`]: waiting- and response-time distributions and their percentiles.
//! - [`advisor`]: the smallest pool, or the highest rate, that meets a latency target.
//! - [`bursty`], [`closed`], [`batch`]: on/off arrivals (approximate: quasi-static or fluid),
//!   closed loops (M/M/c//N, exact for exponential service) and batches (exact for constant
//!   service, exact means for exponential); [`predict_workload`] picks the model for a workload.
//! - [`trace`], [`trace_search`]: an arrival trace replayed exactly (FIFO, c workers, each
//!   overflow policy), its fitted Poisson model beside it, and the advisor's searches on it.
//! - [`usl`], [`usl_fit`], [`usl_points`]: a downstream that pushes back (the Universal
//!   Scalability Law), and its σ and κ fitted from the (workers, holding time) points a run saw.
//! - [`sample`], [`draw`]: an empirical service-time sample, and the one service-time draw the
//!   engine and the trace simulation share.
//! - [`partitions`]: a partitioned log (Kafka's topic): each partition consumed in order is a
//!   queue of its own, against the workers shared; keys placed by Kafka's partitioner.
//!
//! Which formula applies: M/M/c (Erlang C) for Poisson arrivals and exponential service;
//! M/G/1 (Pollaczek–Khinchine, exact for means) for one worker and Poisson arrivals;
//! otherwise G/G/c by the Allen–Cunneen approximation from the coefficients of variation; with a
//! queue bound, M/M/c/K rejection and means (waits scaled by Allen–Cunneen when not M/M).
//! Pure maths: no tokio, no I/O. Nothing here returns NaN or infinity as a number: an
//! unstable system gives `None` and a growth rate instead.
//!
//! # The formulas
//! Notation: arrival rate λ, service rate μ = 1/E\[S\], c workers, offered load a = λ/μ,
//! utilisation ρ = a/c, K waiting places (the queue bound).
//!
//! **M/M/c** (Poisson arrivals, exponential service, unbounded queue). Stable only for ρ < 1;
//! otherwise the queue grows by about λ − cμ jobs a second.
//! - Erlang B by recurrence, which needs no factorials and stays stable for thousands of
//!   workers: B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)).
//! - Erlang C, the probability of waiting: C = c·B(c) / (c − a·(1 − B(c))).
//! - Mean wait Wq = C / (cμ − λ); mean response W = Wq + 1/μ; Lq = λ·Wq and L = λ·W (Little).
//! - Wait tail P(Wq > t) = C·e^(−(cμ−λ)t). Response T = Wq + S: with α = cμ − λ ≠ μ,
//!   P(T > t) = (1 − C)·e^(−μt) + C·(α·e^(−μt) − μ·e^(−αt)) / (α − μ), and with α = μ the last
//!   factor is e^(−μt)·(1 + μt). Percentiles solve P(T > t) = 1 − q by bisection.
//! - Check values: c = 3, a = 2 gives C = 4/9; c = 1 gives C = ρ and Wq = ρ/(μ − λ).
//!
//! **M/M/c/K** (c + K places in the system). p(n) ∝ aⁿ/n! for n ≤ c and ∝ (aᶜ/c!)·ρ^(n−c) for
//! c < n ≤ c + K. An arrival that finds c + K jobs is refused: P(reject) = p(c + K). Throughput is
//! λ(1 − P(reject)); means sum over p(n), and Little's law uses the admitted rate. Check value:
//! c = 1, ρ = 1, K = 4 gives P(reject) = 1/6.
//!
//! **M/G/1** (Pollaczek–Khinchine, exact for means): Wq = λ·E\[S²\] / (2(1 − ρ)) =
//! ρ·(1 + Cₛ²)/(2(1 − ρ))·E\[S\], with Cₛ the service time's coefficient of variation;
//! constant service (M/D/1) has Cₛ = 0.
//!
//! **G/G/c** (Allen–Cunneen, an approximation): Wq ≈ (Cₐ² + Cₛ²)/2 · Wq(M/M/c), with Cₐ and
//! Cₛ the coefficients of variation of inter-arrival and service times. Exact for M/M/c, good
//! at moderate ρ, rough for heavy tails (the prediction says so above [`ROUGH_CV`]).
//!
//! # Testing against it
//! A measured mean converges slowly at high ρ, because successive waits are correlated. The
//! engine's theory tests therefore derive each tolerance from the run itself: an exact
//! simulation of the same queue (each arrival starts at max(arrival, earliest free worker)) over
//! many seeds with as many jobs as the run measured, allowing 4 standard deviations of the
//! statistic across seeds, after a left-out warm-up and with a fixed seed.

pub mod advisor;
pub mod batch;
pub mod bursty;
pub mod closed;
pub mod draw;
pub mod erlang;
pub mod partitions;
pub mod sample;
pub mod simulate;
pub mod tail;
pub mod trace;
pub mod trace_search;
pub mod usl;
pub mod usl_fit;
pub mod usl_points;

use serde::Serialize;
use thiserror::Error;

use crate::settings::ServiceDist;

/// Why the model cannot answer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    #[error("{0}")]
    Invalid(String),
}

/// What the model needs; times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// Arrival rate λ, jobs per second.
    pub rate: f64,
    /// Mean service time E\[S\], seconds.
    pub service_mean: f64,
    /// Workers c.
    pub workers: u32,
    /// Waiting places K (the queue bound); `None` for an unbounded queue.
    pub queue: Option<u64>,
    /// Coefficient of variation of inter-arrival times (1 for Poisson).
    pub arrival_cv: f64,
    /// Coefficient of variation of service times.
    pub service_cv: f64,
    /// The service distribution's shape, for response-time percentiles.
    pub service_dist: ServiceDist,
    /// A downstream that slows as more jobs are inside it ([`usl`]); none by default.
    pub downstream: usl::Usl,
}

impl Inputs {
    /// Poisson arrivals and exponential service: the M/M/c case.
    #[must_use]
    pub fn mmc(rate: f64, service_mean: f64, workers: u32) -> Inputs {
        Inputs {
            rate,
            service_mean,
            workers,
            queue: None,
            arrival_cv: 1.0,
            service_cv: 1.0,
            service_dist: ServiceDist::Exponential,
            downstream: usl::Usl { contention: 0.0, coherency: 0.0, capacity: None },
        }
    }

    fn check(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(m));
        if !self.rate.is_finite() || self.rate < 0.0 {
            return bad(format!(
                "rate {} is not accepted; expected a finite rate of 0 or more jobs per second",
                self.rate
            ));
        }
        if !self.service_mean.is_finite() || self.service_mean <= 0.0 {
            return bad(
                "the service time must be more than zero (with no service time there is no queue to model)".into()
            );
        }
        if self.workers == 0 {
            return bad("workers 0: a pool with no workers serves nothing; expected at least 1".into());
        }
        let u = self.downstream;
        for (name, v) in [("contention", u.contention), ("coherency", u.coherency)] {
            if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} {v} is not accepted; expected 0 to 1"));
            }
        }
        if u.capacity == Some(0) {
            return bad("capacity 0: a downstream that serves nothing; expected at least 1".into());
        }
        for (name, v) in [("arrival cv", self.arrival_cv), ("service cv", self.service_cv)] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} {v} is not accepted; expected a finite value of 0 or more"));
            }
        }
        Ok(())
    }

    /// Offered load a = λ·E\[S\] (in workers).
    #[must_use]
    pub fn load(&self) -> f64 {
        self.rate * self.service_mean
    }

    /// Utilisation ρ = a / c.
    #[must_use]
    pub fn rho(&self) -> f64 {
        self.load() / f64::from(self.workers)
    }
}

/// The model's answer for one set of inputs; times in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Which formula produced it.
    pub method: &'static str,
    /// Whether the means are exact for these inputs (not an approximation).
    pub exact: bool,
    pub rho: f64,
    pub stable: bool,
    /// When unstable: how fast the queue grows, jobs per second (λ − cμ).
    pub growth_per_s: Option<f64>,
    pub p_wait: Option<f64>,
    /// With a queue bound: the probability that an arrival is refused.
    pub p_reject: Option<f64>,
    /// Jobs completed per second (λ, less rejections).
    pub throughput_per_s: f64,
    pub wait_ms_mean: Option<f64>,
    pub latency_ms_mean: Option<f64>,
    pub queue_len_mean: Option<f64>,
    pub in_system_mean: Option<f64>,
    pub wait_ms_p50: Option<f64>,
    pub wait_ms_p90: Option<f64>,
    pub wait_ms_p99: Option<f64>,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p90: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// A batch: when its last job is expected to end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub makespan_ms: Option<f64>,
    /// A caveat worth showing beside the numbers.
    pub note: Option<String>,
}

impl Prediction {
    /// A prediction with no figures yet but its method, utilisation and throughput.
    #[must_use]
    pub(crate) fn blank(method: &'static str, exact: bool, rho: f64, throughput_per_s: f64) -> Prediction {
        Prediction {
            method,
            exact,
            rho,
            stable: true,
            growth_per_s: None,
            p_wait: None,
            p_reject: None,
            throughput_per_s,
            wait_ms_mean: None,
            latency_ms_mean: None,
            queue_len_mean: None,
            in_system_mean: None,
            wait_ms_p50: None,
            wait_ms_p90: None,
            wait_ms_p99: None,
            latency_ms_p50: None,
            latency_ms_p90: None,
            latency_ms_p99: None,
            makespan_ms: None,
            note: None,
        }
    }
}

/// Above this service CV the Allen–Cunneen approximation is rough, and the UI says so.
pub const ROUGH_CV: f64 = 2.0;

/// Predicts the pool's behaviour.
///
/// # Errors
/// Inputs the model cannot take (no workers, no service time, a negative or NaN rate).
pub fn predict(i: &Inputs) -> Result<Prediction, ModelError> {
    predict_for(i, Percentiles::All)
}

/// Any workload pooltune runs, with what its model needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// Open-loop arrivals at a set rate with a given CV (Poisson, constant, or a measured CV).
    Open(Inputs),
    /// On/off arrivals ([`bursty`]).
    Bursty(bursty::Bursty),
    /// Clients that think, submit and wait ([`closed`]).
    Closed(closed::Closed),
    /// N jobs at once ([`batch`]).
    Batch(batch::Batch),
}

/// Predicts any workload: [`predict`] for open-loop arrivals, the bursty, closed-loop and batch
/// models otherwise. The prediction names its method and says whether it is exact.
///
/// # Errors
/// Inputs the model cannot take, with what is accepted.
pub fn predict_workload(w: &Workload) -> Result<Prediction, ModelError> {
    fn bad<T>(m: &str) -> Result<T, ModelError> {
        Err(ModelError::Invalid(m.to_string()))
    }
    let service = |s: f64| {
        if s.is_finite() && s > 0.0 {
            Ok(())
        } else {
            bad("the service time must be more than zero (with no service time there is no queue to model)")
        }
    };
    let workers = |c: u32| {
        if c == 0 { bad("workers 0: a pool with no workers serves nothing; expected at least 1") } else { Ok(()) }
    };
    match w {
        Workload::Open(i) => predict(i),
        Workload::Bursty(b) => bursty::predict(b),
        Workload::Closed(l) => {
            service(l.service_mean)?;
            workers(l.workers)?;
            if l.clients == 0 {
                return bad("a closed loop of 0 clients offers nothing; expected --clients 1 or more");
            }
            if !(l.think.is_finite() && l.think >= 0.0) {
                return bad(&format!("think time {} s is not accepted; expected 0 or more", l.think));
            }
            Ok(closed::predict(l))
        }
        Workload::Batch(b) => {
            service(b.service_mean)?;
            workers(b.workers)?;
            if b.jobs == 0 {
                return bad("a batch of 0 jobs has nothing to model; expected --jobs 1 or more");
            }
            Ok(batch::predict(b))
        }
    }
}

/// Which percentiles to compute: with a general service distribution each one costs a
/// bisection over an average of 1000 terms, and the advisor needs only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Percentiles {
    All,
    LatencyP99,
    None,
}

pub(crate) fn predict_for(i: &Inputs, which: Percentiles) -> Result<Prediction, ModelError> {
    predict_with_tail(i, which).map(|(p, _)| p)
}

/// The response time at each of `percentiles` (0 to 100), in milliseconds: the model's side of
/// HdrHistogram's percentile plot. `None` for an unstable pool (the queue grows without end).
///
/// # Errors
/// Inputs the model cannot take, as [`predict`].
pub fn latency_percentiles(i: &Inputs, percentiles: &[f64]) -> Result<Option<Vec<f64>>, ModelError> {
    let (_, tail) = predict_with_tail(i, Percentiles::None)?;
    Ok(tail.map(|t| percentiles.iter().map(|p| t.response_quantile(p / 100.0) * 1e3).collect()))
}

fn predict_with_tail(i: &Inputs, which: Percentiles) -> Result<(Prediction, Option<tail::Tail>), ModelError> {
    i.check()?;
    if !i.downstream.is_none() {
        return usl::predict(i, which);
    }
    let c = i.workers;
    let cf = f64::from(c);
    let mu = 1.0 / i.service_mean;
    let a = i.load();
    let rho = i.rho();
    let poisson = (i.arrival_cv - 1.0).abs() < 1e-9;
    let expo = (i.service_cv - 1.0).abs() < 1e-9;
    // Allen–Cunneen factor; 1 for M/M/c, exact (Pollaczek–Khinchine) for M/G/1.
    let ac = f64::midpoint(i.arrival_cv * i.arrival_cv, i.service_cv * i.service_cv);
    let (method, exact) = match (i.queue.is_some(), poisson && expo, poisson && c == 1) {
        (false, true, _) => ("M/M/c (Erlang C)", true),
        (false, false, true) if i.service_cv == 0.0 => ("M/D/1 (Pollaczek–Khinchine)", true),
        (false, false, true) => ("M/G/1 (Pollaczek–Khinchine)", true),
        (false, false, false) => ("G/G/c (Allen–Cunneen)", false),
        (true, true, _) => ("M/M/c/K", true),
        (true, false, _) => ("G/G/c/K (M/M/c/K with Allen–Cunneen waits)", false),
    };
    let mut note = (i.service_cv > ROUGH_CV && !exact)
        .then(|| format!("service cv {:.1} is heavy-tailed: Allen–Cunneen is rough here", i.service_cv));
    let mut p = Prediction::blank(method, exact, rho, i.rate);
    let (p_wait, wait_mean, theta) = if let Some(k) = i.queue {
        let m = erlang::mmck(c, a, k);
        let admitted = i.rate * (1.0 - m.p_reject);
        p.p_reject = Some(m.p_reject);
        p.throughput_per_s = admitted;
        let wq = if admitted > 0.0 { m.lq / admitted * ac } else { 0.0 };
        p.queue_len_mean = Some(wq * admitted);
        (m.p_wait, wq, if wq > 0.0 { m.p_wait / wq } else { f64::INFINITY })
    } else {
        if rho >= 1.0 {
            p.stable = false;
            // An unstable pool completes what its workers can: its capacity, not the arrivals.
            p.throughput_per_s = cf * mu;
            p.growth_per_s = Some(i.rate - cf * mu);
            note = Some(format!("unstable: ρ = {rho:.2} ≥ 1, the queue grows by about {:.0} jobs/s", i.rate - cf * mu));
            p.note = note;
            return Ok((p, None));
        }
        let cw = erlang::erlang_c(c, a);
        let wq = cw / (cf * mu - i.rate) * ac;
        p.queue_len_mean = Some(i.rate * wq);
        // Exact M/M/c tail: P(Wq > t) = C·e^(−(cμ−λ)t); otherwise an exponential tail with the
        // same probability of waiting and the same mean.
        let theta = if exact && expo && poisson {
            cf * mu - i.rate
        } else if wq > 0.0 {
            cw / wq
        } else {
            f64::INFINITY
        };
        (cw, wq, theta)
    };
    p.p_wait = Some(p_wait);
    p.wait_ms_mean = Some(wait_mean * 1e3);
    p.latency_ms_mean = Some((wait_mean + i.service_mean) * 1e3);
    p.in_system_mean = Some(p.throughput_per_s * (wait_mean + i.service_mean));
    let tail = tail::Tail::new(p_wait, theta, i.service_mean, i.service_cv, shape(i));
    let ms = |x: f64| Some(x * 1e3);
    if which == Percentiles::All {
        p.wait_ms_p50 = ms(tail.wait_quantile(0.50));
        p.wait_ms_p90 = ms(tail.wait_quantile(0.90));
        p.wait_ms_p99 = ms(tail.wait_quantile(0.99));
        p.latency_ms_p50 = ms(tail.response_quantile(0.50));
        p.latency_ms_p90 = ms(tail.response_quantile(0.90));
    }
    if which != Percentiles::None {
        p.latency_ms_p99 = ms(tail.response_quantile(0.99));
    }
    if !exact || i.queue.is_some() {
        note.get_or_insert_with(|| "approximate percentiles (exponential wait tail)".into());
    }
    p.note = note;
    Ok((p, Some(tail)))
}

/// The service distribution the percentiles assume: the named one, or the shape a bare CV
/// implies (0 constant, 1 exponential, otherwise lognormal). An empirical sample is known to the
/// formulas by its CV alone: its percentiles are those of that shape.
fn shape(i: &Inputs) -> ServiceDist {
    service_shape(i.service_dist, i.service_cv)
}

/// The shape the model gives a service time of distribution `dist` and coefficient of variation
/// `cv`: an exponential (or a sample) whose CV is not 1 is taken as lognormal with that CV (a
/// CV of 0 as constant). Whoever bounds a target by the service time's own tail uses this, so
/// the bound and the model agree.
#[must_use]
pub fn service_shape(dist: ServiceDist, cv: f64) -> ServiceDist {
    match dist {
        ServiceDist::Exponential | ServiceDist::Empirical if (cv - 1.0).abs() > 1e-9 => {
            if cv == 0.0 {
                ServiceDist::Constant
            } else {
                ServiceDist::Lognormal
            }
        }
        ServiceDist::Empirical => ServiceDist::Exponential,
        d => d,
    }
}

#[cfg(test)]
mod tests;
