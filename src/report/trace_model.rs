//! The model of a trace replay: the exact simulation of the measured window's own arrivals
//! ([`crate::model::trace`]) beside what was measured, and the textbook model fitted to the same
//! mean rate and service (Poisson arrivals) beside it, so the user sees how far off it is.
//!
//! Which arrivals: the window's offered jobs are the last ones the producer took from the trace
//! ([`Snapshot::trace_offered`]), at the speed in force (a window holds one setting: any change
//! starts a new one). Their service times are the trace's own (scaled to the `service` knob's
//! mean) or, without a service column, drawn from the run's distribution (an empirical sample
//! included, by the engine's own draw) over [`DRAWN_REPLICATIONS`] seeds. The simulation starts with an empty pool at the window's first
//! arrival; a window that opened on a queue (after the warm-up, or a knob change under load)
//! carries that queue in its measurements and not in the simulation.

use super::compare::{ModelReport, figures, formula_distribution, model_report};
use crate::engine::replay::Arrivals;
use crate::metrics::Snapshot;
use crate::metrics::hist::{dist_percentiles, dist_points};
use crate::model::advisor::Target;
use crate::model::trace::{Service, TraceInputs, latency_percentiles, poisson_equivalent, replicate, simulate};
use crate::model::trace_search::{fewest_workers, poisson_fewest_workers};
use crate::model::{Prediction, advisor, predict};
use crate::settings::ArrivalKind;

/// Replications of a simulation whose service times are drawn.
pub const DRAWN_REPLICATIONS: u32 = 5;

/// The most workers the advisor's search on a trace tries.
const MAX_ADVISED: u32 = 10_000;

/// The trace `s` replays: `arrivals` when its settings say `arrival = trace` (a run given a
/// trace may have switched to another process since), else `None`. Every client that puts a
/// model beside a window asks this before choosing [`trace_report`] over [`model_report`].
#[must_use]
pub fn replayed<'a>(s: &Snapshot, arrivals: Option<&'a Arrivals>) -> Option<&'a Arrivals> {
    arrivals.filter(|_| s.settings.arrival == ArrivalKind::Trace)
}

/// The window's arrivals, nanoseconds from its first, and their service times (ns) when the
/// trace has them: `None` when the window holds none of the trace.
pub fn window(s: &Snapshot, a: &Arrivals) -> Option<(Vec<u64>, Option<Vec<u64>>)> {
    let end = s.trace_offered;
    let n = s.measured.jobs.offered.min(end);
    a.excerpt(end - n, end, s.settings.service)
}

/// The inputs of the window's simulation (arrival offsets and service times from [`window`]).
fn inputs<'a>(
    s: &'a Snapshot,
    a: &Arrivals,
    at: &'a [u64],
    service: Option<&'a [u64]>,
    workers: usize,
) -> TraceInputs<'a> {
    let st = &s.settings;
    TraceInputs {
        arrivals: at,
        speed: a.speed_of(st.rate).unwrap_or(1.0),
        service: match service {
            Some(v) => Service::PerArrival(v),
            None => Service::Drawn {
                mean: st.service.as_secs_f64(),
                cv: st.service_cv,
                dist: st.service_dist,
                seed: st.seed,
                sample: s.service_sample.as_deref(),
            },
        },
        workers: u32::try_from(workers).unwrap_or(u32::MAX),
        // Under block nothing is refused and latency counts from the intended arrival: the
        // unbounded queue (as the formulas are given it, so the fitted model is M/G/c).
        queue: (st.policy != crate::settings::Policy::Block).then_some(st.queue as u64),
        policy: st.policy,
    }
}

/// The model report of a trace replay: as [`model_report`] (whose reasons for not comparing
/// hold here too), with the simulation as the prediction and the fitted Poisson model beside it;
/// with a target, the fewest workers the simulation of this window says meet it.
#[must_use]
pub fn trace_report(s: &Snapshot, target: Option<Target>, a: &Arrivals) -> ModelReport {
    report(s, target, a, false)
}

/// As [`trace_report`], with the percentile distributions of the report's plot (left out per
/// tick: they sort every response): the simulation's, averaged over the replications when
/// service is drawn, and the fitted Poisson model's.
#[must_use]
pub fn trace_report_with_distribution(s: &Snapshot, target: Option<Target>, a: &Arrivals) -> ModelReport {
    report(s, target, a, true)
}

fn report(s: &Snapshot, target: Option<Target>, a: &Arrivals, distribution: bool) -> ModelReport {
    let base = model_report(s, None);
    if base.predicted.is_none() {
        return base;
    }
    let Some((at, service)) = window(s, a) else {
        return ModelReport::not_compared("the window holds none of the trace's arrivals".into());
    };
    // The workers that served the window, every worker node's included, as the formulas see them.
    let workers = base.inputs.map_or(s.settings.workers + s.remote_workers, |m| m.workers);
    let i = inputs(s, a, &at, service.as_deref(), workers);
    if i.workers == 0 {
        return ModelReport::not_compared("no workers to simulate the trace on".into());
    }
    let reps = if service.is_some() { 1 } else { DRAWN_REPLICATIONS };
    let sim = if reps == 1 { simulate(&i) } else { replicate(&i, reps).0 };
    let predicted = sim.prediction(&i);
    let fitted = fitted(&i);
    let service_mean = s.settings.service.as_secs_f64();
    let compared = figures(&predicted, s, service_mean, i.workers, true);
    let advice = target.map(|t| advise(&i, t));
    let (latency_distribution, fitted_latency_distribution) = if distribution {
        let simulated = latency_percentiles(&i, reps, &dist_percentiles());
        let simulated = (!simulated.is_empty()).then(|| dist_points(&simulated));
        let fit = fitted.as_ref().and_then(|_| formula_distribution(&poisson_equivalent(&i)));
        (simulated, fit)
    } else {
        (None, None)
    };
    ModelReport {
        predicted: Some(predicted),
        fitted,
        compared,
        advice,
        latency_distribution,
        fitted_latency_distribution,
        ..base
    }
}

/// A fitted model's figure beside the simulation's: `12.345 ms (-40%)`, the fitted against the
/// simulated (`n/a (unstable)` without a figure).
#[must_use]
pub fn off_the_simulation(fitted: Option<f64>, simulated: Option<f64>) -> String {
    match (fitted, simulated) {
        (Some(a), Some(b)) if b > 0.0 => format!("{a:.3} ms ({:+.0}%)", (a - b) / b * 100.0),
        (Some(a), _) => format!("{a:.3} ms"),
        _ => "n/a (unstable)".into(),
    }
}

/// What the textbook model says for the same mean rate and service with Poisson arrivals.
fn fitted(i: &TraceInputs) -> Option<Prediction> {
    let mut p = predict(&poisson_equivalent(i)).ok()?;
    p.note = Some(format!("fitted: Poisson arrivals at the trace's mean rate; {}", p.note.unwrap_or_default()));
    Some(p)
}

/// The advisor on the trace: the fewest workers whose simulated p99 meets the target, the
/// highest rate being left to the formulas (a search over speeds needs many replays; `pooltune
/// model --arrivals` does it).
fn advise(i: &TraceInputs, t: Target) -> advisor::Advice {
    let answer = |workers_needed, workers_reason: String, fitted_workers| advisor::Advice {
        target: format!("{} on this trace", t.describe()),
        workers_needed,
        workers_reason: Some(workers_reason),
        max_rate: None,
        max_rate_reason: None,
        fitted_workers,
    };
    let Target::P99(secs) = t else {
        return answer(None, "on a trace the advisor sizes for a p99 target (--slo-p99)".into(), None);
    };
    let ms = secs * 1e3;
    let fitted = poisson_fewest_workers(i, ms).ok();
    match fewest_workers(i, ms, MAX_ADVISED) {
        Some(z) => answer(Some(z.workers), format!("simulated p99 {:.1} ms at {}", z.p99_ms, z.workers), fitted),
        None => answer(None, format!("no pool up to {MAX_ADVISED} workers meets it on this trace"), fitted),
    }
}
