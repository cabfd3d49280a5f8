//! The model beside the measurements: feed the model what was *measured* (arrival rate, service
//! mean and coefficients of variation), so that a slow timer or a starved runtime shows up as a
//! gap between the two, and name the likely cause.

use serde::Serialize;

use crate::metrics::hist::{dist_percentiles, dist_points};
use crate::metrics::{Quantile, Snapshot};
use crate::model::advisor::{self, Advice, Target};
use crate::model::batch::Batch;
use crate::model::bursty::Bursty;
use crate::model::closed::Closed;
use crate::model::{self, Inputs, Prediction, Workload};
use crate::settings::{ArrivalKind, Policy, Rate, ServiceDist, ServiceKind};

/// The formulas' response-time distribution for `i` at the percentile plot's points (`None` for
/// an unstable pool or inputs the model cannot take).
pub(crate) fn formula_distribution(i: &Inputs) -> Option<Vec<Quantile>> {
    model::latency_percentiles(i, &dist_percentiles()).ok().flatten().map(|v| dist_points(&v))
}

/// What the model was fed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ModelInputs {
    pub rate_per_s: f64,
    pub service_ms_mean: f64,
    pub workers: usize,
    pub queue: Option<usize>,
    pub arrival_cv: f64,
    pub service_cv: f64,
    /// Closed loop: the clients and their mean think time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think_ms: Option<f64>,
    /// Batch: its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u64>,
    /// Bursty: the on- and off-periods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_on_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_off_ms: Option<f64>,
}

/// One figure, predicted and measured, with their relative difference.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Compared {
    pub name: &'static str,
    pub predicted: Option<f64>,
    pub measured: f64,
    /// (measured − predicted) / predicted.
    pub diff: Option<f64>,
}

/// The model's predictions beside what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub inputs: Option<ModelInputs>,
    pub predicted: Option<Prediction>,
    pub compared: Vec<Compared>,
    /// Little's law from the measurements alone: the mean number of jobs waiting for a worker
    /// (over a broker: outbox, stream and pulled ahead) against throughput × mean time from
    /// enqueue to start.
    pub little: Option<Compared>,
    /// Why there is no prediction.
    pub reason: Option<String>,
    /// The likely cause of a gap between the model and the measurements.
    pub diagnosis: Option<String>,
    pub advice: Option<Advice>,
    /// The model's response-time percentile distribution at the measured inputs (open-loop
    /// workloads; filled in by [`ModelReport::with_distribution`] for a run's summary).
    #[serde(rename = "latency_distribution_ms", skip_serializing_if = "Option::is_none")]
    pub latency_distribution: Option<Vec<Quantile>>,
    /// A replayed trace: `predicted` is its exact simulation, and this what the textbook model
    /// fitted to the same mean rate and service (Poisson arrivals) says, to show how far off it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fitted: Option<Prediction>,
    /// A replayed trace: the fitted model's response-time percentile distribution, beside the
    /// simulation's in `latency_distribution` (both for a run's summary, by
    /// [`super::trace_model::trace_report_with_distribution`]).
    #[serde(rename = "fitted_latency_distribution_ms", skip_serializing_if = "Option::is_none")]
    pub fitted_latency_distribution: Option<Vec<Quantile>>,
}

/// The fewest completed jobs a window needs before it is compared with the model or a cause is
/// named. The mean of n response times with coefficient of variation c has a relative standard
/// error c/√n; an M/M/c response has c ≈ 1, so 400 jobs put the mean within ±10% (2 standard
/// errors) of its own long-run value: differences smaller than that are not yet there to explain.
pub const MIN_COMPARE_JOBS: u64 = 400;

fn pair(name: &'static str, predicted: Option<f64>, measured: f64) -> Compared {
    // A relative difference against a prediction of (practically) zero says nothing: a rejection
    // probability of 1e-232 against a measured 21% is "the model expects none", not "+6e232%".
    let diff = predicted.filter(|p| *p > 1e-9).map(|p| (measured - p) / p);
    Compared { name, predicted, measured, diff }
}

impl ModelReport {
    /// No comparison, for `reason`.
    #[must_use]
    pub fn not_compared(reason: String) -> ModelReport {
        ModelReport {
            inputs: None,
            predicted: None,
            compared: Vec::new(),
            little: None,
            reason: Some(reason),
            diagnosis: None,
            advice: None,
            latency_distribution: None,
            fitted: None,
            fitted_latency_distribution: None,
        }
    }

    /// Adds the model's percentile distribution at the inputs it was fed, for the report's
    /// percentile plot (left out per tick: each point is a bisection).
    #[must_use]
    pub fn with_distribution(mut self, s: &Snapshot) -> ModelReport {
        if self.predicted.is_some()
            && let (_, Workload::Open(i)) = workload(s)
        {
            self.latency_distribution = formula_distribution(&i);
        }
        self
    }
}

/// Compares the model with the measured window of `s`.
#[must_use]
pub fn model_report(s: &Snapshot, target: Option<Target>) -> ModelReport {
    let m = &s.measured;
    let st = &s.settings;
    let enough = m.latency.service.count >= MIN_COMPARE_JOBS;
    let none = |why: &str| ModelReport {
        diagnosis: if enough { diagnose(s) } else { None },
        ..ModelReport::not_compared(why.to_string())
    };
    let open = !matches!(st.arrival, ArrivalKind::Closed | ArrivalKind::Batch);
    if open && st.rate == Rate::Max {
        return none("the model needs a set rate (not max), a closed loop or a batch");
    }
    if st.arrival == ArrivalKind::Batch {
        // A batch is compared whole: all of it, measured from its start.
        let (want, done) = (st.jobs.unwrap_or(0), m.jobs.completed + m.jobs.failed);
        if done < want || m.jobs.offered < want {
            return none(&format!("comparing a batch needs all its {want} jobs done in the window ({done} so far)"));
        }
    } else if !enough {
        return none(&format!(
            "comparing needs {MIN_COMPARE_JOBS} completed jobs in the window ({} so far)",
            m.latency.service.count
        ));
    }
    if m.setting_changes > 0 {
        return none(&format!(
            "the settings changed {} times in this window: the model describes settings held still",
            m.setting_changes
        ));
    }
    let (inputs, workload) = workload(s);
    let predicted = match model::predict_workload(&workload) {
        Ok(p) => p,
        Err(e) => {
            return ModelReport { inputs: Some(inputs), ..none(&e.to_string()) };
        }
    };
    let mi = match workload {
        Workload::Open(i) => i,
        Workload::Bursty(b) => b.base,
        Workload::Closed(_) | Workload::Batch(_) => Inputs {
            rate: m.offered_per_s,
            service_mean: inputs.service_ms_mean / 1e3,
            ..Inputs::mmc(0.0, 1.0, u32::try_from(inputs.workers).unwrap_or(u32::MAX))
        },
    };
    let compared = figures(&predicted, s, mi.service_mean, mi.workers, open);
    let little = (m.throughput_per_s > 0.0)
        .then(|| pair("little_queue_len", Some(m.throughput_per_s * m.queued_ms_mean / 1e3), m.queue_waiting_mean));
    // The advisor searches open-loop pools.
    let advice = target.filter(|_| matches!(workload, Workload::Open(_))).map(|t| advisor::advise(&mi, t));
    ModelReport {
        inputs: Some(inputs),
        // Held jobs measured at the nodes name the wait's gap more closely than the general causes.
        diagnosis: prefetch_gap(s, &compared).or_else(|| diagnose(s)),
        predicted: Some(predicted),
        compared,
        little,
        reason: None,
        advice,
        latency_distribution: None,
        fitted: None,
        fitted_latency_distribution: None,
    }
}

/// Each figure `predicted` has, beside the window's measurement of it (`service_mean` in
/// seconds and `workers` make the predicted utilisation; `open`: the arrivals set the
/// throughput, so it is not compared).
pub(crate) fn figures(
    predicted: &Prediction,
    s: &Snapshot,
    service_mean: f64,
    workers: u32,
    open: bool,
) -> Vec<Compared> {
    let m = &s.measured;
    let refused = m.jobs.rejected + m.jobs.dropped;
    let p_reject = if m.jobs.offered > 0 { refused as f64 / m.jobs.offered as f64 } else { 0.0 };
    let mut compared = vec![
        pair("utilisation", Some(predicted.throughput_per_s * service_mean / f64::from(workers.max(1))), m.utilisation),
        pair("wait_ms_mean", predicted.wait_ms_mean, m.latency.wait.mean),
        pair("latency_ms_mean", predicted.latency_ms_mean, m.latency.response.mean),
        pair("latency_ms_p99", predicted.latency_ms_p99, m.latency.response.p99),
        // The jobs waiting for a worker wherever they wait (over a broker: outbox, stream and
        // pulled ahead at the nodes), as the model's queue is.
        pair("queue_len_mean", predicted.queue_len_mean, m.queue_waiting_mean),
    ];
    if predicted.p_reject.is_some() {
        compared.push(pair("p_reject", predicted.p_reject, p_reject));
    }
    if !open {
        compared.insert(0, pair("throughput_per_s", Some(predicted.throughput_per_s), m.throughput_per_s));
    }
    if predicted.makespan_ms.is_some() {
        compared.push(pair("makespan_ms", predicted.makespan_ms, m.latency.response.max));
    }
    compared
}

/// What the model is fed for the window of `s`: the measured rate and service, the configured
/// shape of the workload.
pub(crate) fn workload(s: &Snapshot) -> (ModelInputs, Workload) {
    let m = &s.measured;
    let st = &s.settings;
    let configured_arrival_cv = match st.arrival {
        ArrivalKind::Poisson | ArrivalKind::Bursty => Some(1.0),
        ArrivalKind::Constant => Some(0.0),
        _ => None,
    };
    // A producer held back by a full queue (`block`) offers what the pool lets it, not what its
    // schedule says: then the scheduled rate is the arrival rate the queue really faces.
    let rate = match st.rate {
        Rate::PerSec(r) if st.policy == Policy::Block && s.producer_lag > std::time::Duration::from_millis(10) => {
            r.max(m.offered_per_s)
        }
        _ => m.offered_per_s,
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut inputs = ModelInputs {
        rate_per_s: rate,
        service_ms_mean: m.latency.service.mean,
        // A broker run's worker nodes serve the same queue: the model sees every worker.
        workers: window_workers(s),
        // Under `block` nothing is refused and latency counts from the intended time, so the
        // producer's backlog is part of the queue: the unbounded model applies.
        queue: (st.policy != Policy::Block).then_some(st.queue),
        // Bursty arrivals are Poisson within a burst; the bursts are the model's own.
        arrival_cv: if st.arrival == ArrivalKind::Bursty {
            1.0
        } else {
            snap_cv(configured_arrival_cv, m.arrival_cv, m.jobs.offered)
        },
        // Your own job has no configured distribution: its measured CV is all there is.
        // An empirical sample's CV is its own (the snapshot names the run's sample).
        service_cv: snap_cv(
            (!s.custom_work).then(|| model::draw::cv_of(st, s.service_sample.as_deref())),
            m.service_cv,
            m.latency.service.count,
        ),
        clients: None,
        think_ms: None,
        jobs: None,
        burst_on_ms: None,
        burst_off_ms: None,
    };
    let workers = u32::try_from(inputs.workers).unwrap_or(u32::MAX);
    let service_dist = if s.custom_work { ServiceDist::Exponential } else { st.service_dist };
    let mi = Inputs {
        rate: inputs.rate_per_s,
        service_mean: inputs.service_ms_mean / 1e3,
        workers,
        queue: inputs.queue.map(|q| q as u64),
        arrival_cv: inputs.arrival_cv,
        service_cv: inputs.service_cv,
        service_dist,
        // Your own job does not pass through the synthetic downstream.
        downstream: if s.custom_work { model::usl::Usl::default() } else { model::usl::Usl::of(st) },
    };
    let w = match st.arrival {
        ArrivalKind::Bursty => {
            (inputs.burst_on_ms, inputs.burst_off_ms) = (Some(ms(st.burst_on)), Some(ms(st.burst_off)));
            Workload::Bursty(Bursty { base: mi, on: st.burst_on.as_secs_f64(), off: st.burst_off.as_secs_f64() })
        }
        ArrivalKind::Closed => {
            // The think time clients really spent (the timer runs each a little long).
            let think_ms = m.think_ms_mean.unwrap_or_else(|| ms(st.think));
            (inputs.clients, inputs.think_ms) = (Some(st.clients), Some(think_ms));
            Workload::Closed(Closed {
                clients: st.clients as u64,
                think: think_ms / 1e3,
                workers,
                queue: mi.queue,
                service_mean: mi.service_mean,
                service_cv: mi.service_cv,
                service_dist,
            })
        }
        ArrivalKind::Batch => {
            inputs.jobs = st.jobs;
            Workload::Batch(Batch { jobs: st.jobs.unwrap_or(0), workers, service_mean: mi.service_mean, service_dist })
        }
        // A trace's own model is its simulation (the client that holds the trace adds it); the
        // formulas see its measured rate and arrival CV, the fitted G/G/c it is compared with.
        ArrivalKind::Poisson | ArrivalKind::Constant | ArrivalKind::Trace => Workload::Open(mi),
    };
    (inputs, w)
}

/// The workers that served the window: its worker-seconds (the controller's and every worker
/// node's, tick by tick) over its seconds, to the nearest whole worker. Not the count now: at a
/// broker run's end the nodes have finished and count none, though they served the window.
/// Before anything is summed, the count now.
fn window_workers(s: &Snapshot) -> usize {
    let w = &s.measured.workers;
    if w.worker_seconds > 0.0 && w.mean.is_finite() {
        w.mean.round() as usize
    } else {
        s.settings.workers + s.remote_workers
    }
}

/// The configured coefficient of variation when the measured one is within sampling noise of it,
/// else the measured one: a Poisson run is then modelled as M/M/c, not as a G/G/c whose CV
/// happens to read 0.98. The noise is 3 standard errors of a sample CV from `n` draws; for an
/// exponential the delta method gives Var(ĉv) ≈ 3/n (cv = 1, kurtosis 9), which also bounds the
/// lighter-tailed shapes; a floor of 0.05 absorbs timer jitter around a constant.
fn snap_cv(configured: Option<f64>, measured: f64, n: u64) -> f64 {
    match configured {
        Some(c) if n >= 2 && (measured - c).abs() <= (3.0 * (3.0 / n as f64).sqrt() * c.max(0.1)).max(0.05) => c,
        _ => measured,
    }
}

/// A broker run whose measured wait exceeds the model's mostly by the time jobs were held at the
/// worker process that pulled them: the model's queue is one queue shared by every worker, and
/// `prefetch` N lets each process take N jobs ahead, so a job can wait at a busy node while
/// another node's worker is idle — one queue per node. `prefetch 1` keeps the jobs in the
/// stream, shared, but each pull costs a round trip to the server. Named when the gap is beyond 25% and 0.1 ms and the held time is at least
/// half of it.
fn prefetch_gap(s: &Snapshot, compared: &[Compared]) -> Option<String> {
    s.broker.as_ref()?;
    let held = s.measured.held_ms_mean;
    let wait = compared.iter().find(|c| c.name == "wait_ms_mean")?;
    let (predicted, diff) = (wait.predicted?, wait.diff?);
    let gap = wait.measured - predicted;
    (s.settings.prefetch > 1 && diff > 0.25 && gap > 0.1 && held >= 0.5 * gap).then(|| {
        format!(
            "prefetch {} holds jobs at busy nodes: wait {:+.0}% ({held:.2} of {:.2} ms held at a node); \
             prefetch 1 keeps them in the shared stream, the model's one queue ({predicted:.2} ms), \
             at a pull round trip a job",
            s.settings.prefetch,
            diff * 100.0,
            wait.measured
        )
    })
}

/// Names the likely cause when the pool does not behave as the configured workload says.
fn diagnose(s: &Snapshot) -> Option<String> {
    let m = &s.measured;
    let st = &s.settings;
    if !s.custom_work && matches!(st.service_kind, ServiceKind::Block | ServiceKind::Spin) && st.workers > st.threads {
        return Some(format!(
            "{} service holds a runtime thread for each job: at most {} of {} workers run at once (try offload)",
            st.service_kind, st.threads, st.workers
        ));
    }
    let sched_ms = m.runtime.mean_scheduled_delay_us / 1e3;
    if m.latency.response.mean > 0.0 && sched_ms > 0.1 * m.latency.response.mean && sched_ms > 0.5 {
        return Some(format!(
            "the runtime is a bottleneck: worker tasks wait {sched_ms:.1} ms to be polled (a blocking or CPU-heavy job?)"
        ));
    }
    let configured = s.settings.service.as_secs_f64() * 1e3;
    let n = m.latency.service.count;
    if !s.custom_work && configured > 0.0 && n >= MIN_COMPARE_JOBS && m.setting_changes == 0 {
        let over = m.latency.service.mean / configured - 1.0;
        // Beyond 3 standard errors of the mean of n draws (relative SE = CV/√n), and 5%.
        let noise = 3.0 * m.service_cv / (n as f64).sqrt();
        if over > noise.max(0.05) {
            return Some(format!(
                "service runs {:.0}% longer than configured: a late timer or a starved runtime (blocking jobs?)",
                over * 100.0
            ));
        }
    }
    // The rate the settings asked for over the window, averaged over its time: a ramp's
    // arrivals are compared with the ramp, not with where it ended.
    if let Some(r) = m.set_rate_per_s
        && r > 0.0
        && m.duration_s > 1.0
        && m.offered_per_s < 0.95 * r
        // A trace's own instants set its rate (bursts, lulls, the drain after its last one):
        // the producer's lag says whether it kept them.
        && !matches!(s.settings.arrival, ArrivalKind::Bursty | ArrivalKind::Trace)
    {
        return Some(format!(
            "arrivals run {:.0}% below the set rate: the producer cannot keep its schedule (backpressure or a starved runtime)",
            (1.0 - m.offered_per_s / r) * 100.0
        ));
    }
    None
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
