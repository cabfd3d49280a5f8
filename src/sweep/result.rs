//! What a sweep measured and what it concludes: one [`Step`] per value, the knee, the target's
//! highest passing and first failing value beside the model's answer, and a one-line verdict.
//!
//! Each step's model is the one a run's summary would show for its window: the formulas at
//! the measured inputs, or, while a trace replays, the exact simulation of the window's own
//! arrivals ([`trace_report`]); a trace's step also says its speed (the rate over the trace's
//! own mean rate), so a `rate` sweep reads as "how much growth the pool takes".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::replay::Arrivals;
use crate::metrics::{Snapshot, Summary};
use crate::model::Inputs;
use crate::model::advisor::{self, Target};
use crate::model::sample::ServiceSample;
use crate::model::usl_points::Points;
use crate::report::model_report;
use crate::report::trace_model::{replayed, trace_report};
use crate::settings::{ArrivalKind, Knob, Rate, Settings};

/// The knee: p99 more than this many times the lowest step's.
pub const KNEE_FACTOR: f64 = 3.0;

/// One measured step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub value: f64,
    pub value_text: String,
    pub offered_per_s: f64,
    pub throughput_per_s: f64,
    pub utilisation: f64,
    pub latency_ms: Summary,
    pub wait_ms: Summary,
    pub service_ms: Summary,
    pub rejected: u64,
    pub dropped: u64,
    /// The queue reached its bound, jobs were refused, or the producer fell behind its rate.
    pub saturated: bool,
    /// A trace's replay: the speed it ran at (the rate over the trace's own mean rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// The model at the step's measured inputs (a trace's: the simulation of its window).
    pub model: Option<StepModel>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepModel {
    /// Which model answered ("trace simulation (exact, FIFO)" on a trace).
    #[serde(default)]
    pub method: String,
    pub latency_ms_mean: Option<f64>,
    pub latency_ms_p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knee {
    pub value: f64,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slo {
    pub p99_ms: f64,
    pub max_passing: Option<f64>,
    pub first_failing: Option<f64>,
    /// The advisor's answer from the model at the base settings (`rate`: the highest rate,
    /// `workers`: the fewest workers), where it has one.
    pub model_answer: Option<f64>,
    pub model_answer_reason: Option<String>,
}

/// The whole sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    /// The command line that ran the sweep (for the report).
    #[serde(default)]
    pub command: Vec<String>,
    /// The settings every step started from, as the run JSON's `config` shows them.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub knob: String,
    pub steps: Vec<Step>,
    pub knee: Option<Knee>,
    pub slo: Option<Slo>,
    /// Why the sweep stopped before its last step, if it did.
    pub stopped_early: Option<String>,
    pub verdict: String,
}

impl SweepReport {
    /// Whether the sweep replayed a trace (its steps carry a speed, and their model is the
    /// simulation of each window: tables and charts say "simulated" for "model").
    #[must_use]
    pub fn replayed(&self) -> bool {
        self.steps.iter().any(|s| s.speed.is_some())
    }

    /// A workers sweep's steps as the points of a USL fit ([`crate::model::usl_fit`]): each
    /// step is one steady window (its settling already left out). `None` for a sweep of another
    /// knob, whose steps do not vary the number of jobs inside.
    #[must_use]
    pub fn usl_points(&self) -> Option<Points> {
        (self.knob == "workers").then(|| {
            let mut p = Points::new();
            for s in &self.steps {
                let jobs = s.service_ms.count;
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let (workers, service_s, duration_s) = (
                    s.value.round() as u32,
                    jobs as f64 * s.service_ms.mean / 1e3,
                    if s.throughput_per_s > 0.0 { jobs as f64 / s.throughput_per_s } else { 0.0 },
                );
                p.push_steady(workers, duration_s, jobs, service_s);
            }
            p
        })
    }
}

/// The step measured in `s` (the window after `knob` was set), with the model of its window:
/// `arrivals` is the trace the run replays, if any.
pub(super) fn step_of(knob: Knob, s: &Snapshot, arrivals: Option<&Arrivals>) -> Step {
    let m = &s.measured;
    let trace = replayed(s, arrivals);
    // Behind: the producer owes arrivals (lag over 100 ms), or offered fewer than the rate by
    // more than 5% and 4 Poisson standard deviations over the window (√(r·T)/T). A trace's
    // window holds its own bursts and lulls, not the mean rate: only the lag counts there.
    let short = |r: f64| m.offered_per_s < r - (0.05 * r).max(4.0 * (r / m.duration_s.max(1e-3)).sqrt());
    let behind = !matches!(s.settings.arrival, ArrivalKind::Closed | ArrivalKind::Batch)
        && (s.producer_lag > Duration::from_millis(100)
            || (trace.is_none() && matches!(s.settings.rate, Rate::PerSec(r) if r > 0.0 && short(r))));
    let predicted = match trace {
        Some(a) => trace_report(s, None, a),
        None => model_report(s, None),
    }
    .predicted;
    Step {
        value: knob.ramp_value().unwrap_or(f64::NAN),
        value_text: knob.value_text(),
        offered_per_s: m.offered_per_s,
        throughput_per_s: m.throughput_per_s,
        utilisation: m.utilisation,
        latency_ms: m.latency.response,
        wait_ms: m.latency.wait,
        service_ms: m.latency.service,
        rejected: m.jobs.rejected,
        dropped: m.jobs.dropped,
        saturated: m.queue_depth_max >= s.settings.queue || m.jobs.rejected + m.jobs.dropped > 0 || behind,
        speed: trace.and_then(|a| a.speed_of(s.settings.rate)),
        model: predicted.map(|p| StepModel {
            method: p.method.to_string(),
            latency_ms_mean: p.latency_ms_mean,
            latency_ms_p99: p.latency_ms_p99,
        }),
    }
}

/// The steps in order from the lowest-load end (the end with the lower p99).
fn from_low_load(steps: &[Step]) -> Vec<&Step> {
    let mut v: Vec<&Step> = steps.iter().collect();
    if let (Some(a), Some(b)) = (steps.first(), steps.last())
        && b.latency_ms.p99 < a.latency_ms.p99
    {
        v.reverse();
    }
    v
}

pub(super) fn knee(steps: &[Step]) -> Option<Knee> {
    let ordered = from_low_load(steps);
    let lowest = ordered.iter().map(|s| s.latency_ms.p99).filter(|p| *p > 0.0).fold(f64::INFINITY, f64::min);
    let at = ordered.iter().find(|s| s.latency_ms.p99 > KNEE_FACTOR * lowest)?;
    Some(Knee {
        value: at.value,
        rule: format!(
            "the first step, from the lowest load, whose p99 exceeds {KNEE_FACTOR}× the lowest step's ({lowest:.3} ms)"
        ),
    })
}

pub(super) fn slo(
    steps: &[Step],
    knob: &str,
    (base, sample): (&Settings, Option<&ServiceSample>),
    target: Duration,
) -> Slo {
    let t = target.as_secs_f64() * 1e3;
    let passes = |s: &Step| s.latency_ms.p99 <= t && !s.saturated;
    // The passing step farthest from the low-load end, and the first failing one after it: a
    // p99 that wavers around the target on a flat stretch of the curve does not end the search.
    let ordered = from_low_load(steps);
    let last_pass = ordered.iter().rposition(|s| passes(s));
    let max_passing = last_pass.map(|i| ordered[i].value);
    let failing = match last_pass {
        Some(i) => (i + 1 < ordered.len()).then_some(i + 1),
        None => (!ordered.is_empty()).then_some(0),
    };
    let inputs = Inputs {
        rate: match base.rate {
            Rate::PerSec(r) => r,
            Rate::Max => 0.0,
        },
        service_mean: base.service.as_secs_f64(),
        workers: u32::try_from(base.workers).unwrap_or(u32::MAX),
        queue: None,
        arrival_cv: if base.arrival == ArrivalKind::Constant { 0.0 } else { 1.0 },
        service_cv: crate::model::draw::cv_of(base, sample),
        service_dist: base.service_dist,
        downstream: crate::model::usl::Usl::of(base),
    };
    let open = matches!(base.arrival, ArrivalKind::Poisson | ArrivalKind::Constant);
    let advice = open.then(|| advisor::advise(&inputs, Target::P99(target.as_secs_f64())));
    let (model_answer, model_answer_reason) = match (knob, advice) {
        ("rate", Some(a)) => (a.max_rate, a.max_rate_reason),
        ("workers", Some(a)) => (a.workers_needed.map(f64::from), a.workers_reason),
        _ if base.arrival == ArrivalKind::Trace => (
            None,
            Some("on a trace the model is each step's simulation: compare the simulated p99 with the target".into()),
        ),
        _ => (None, Some("the advisor answers rate and workers sweeps of open-loop arrivals".into())),
    };
    Slo { p99_ms: t, max_passing, first_failing: failing.map(|i| ordered[i].value), model_answer, model_answer_reason }
}

pub(super) fn verdict(knob: &str, steps: &[Step], knee: Option<&Knee>, slo: Option<&Slo>) -> String {
    let mut parts = Vec::new();
    if let Some(k) = knee {
        parts.push(format!("latency bends at {knob} {}", trim(k.value)));
    } else if !steps.is_empty() {
        parts.push("no knee in this range".into());
    }
    if let Some(s) = slo {
        parts.push(match (s.max_passing, s.first_failing) {
            (Some(p), Some(f)) => {
                format!("p99 ≤ {} ms holds up to {knob} {}, fails at {}", trim(s.p99_ms), trim(p), trim(f))
            }
            (Some(p), None) => format!("p99 ≤ {} ms holds over the whole range (to {})", trim(s.p99_ms), trim(p)),
            (None, _) => format!("p99 ≤ {} ms fails from the first step", trim(s.p99_ms)),
        });
        if let Some(m) = s.model_answer {
            parts.push(format!("the model says {}", trim(m)));
        }
    }
    parts.join("; ")
}

/// A value without needless decimals.
fn trim(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 { format!("{x:.0}") } else { format!("{x:.3}") }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the values compared are exact by construction
mod tests {
    use super::*;

    fn step(value: f64, p99: f64, saturated: bool) -> Step {
        Step {
            value,
            value_text: value.to_string(),
            offered_per_s: 0.0,
            throughput_per_s: 0.0,
            utilisation: 0.0,
            latency_ms: Summary { p99, ..Summary::default() },
            wait_ms: Summary::default(),
            service_ms: Summary::default(),
            rejected: 0,
            dropped: 0,
            saturated,
            speed: None,
            model: None,
        }
    }

    #[test]
    fn knee_and_target_from_either_end() {
        let rising = [step(1.0, 2.0, false), step(2.0, 3.0, false), step(3.0, 7.0, false), step(4.0, 30.0, true)];
        assert_eq!(knee(&rising).unwrap().value, 3.0);
        let s = slo(&rising, "rate", (&Settings::default(), None), Duration::from_millis(5));
        assert_eq!((s.max_passing, s.first_failing), (Some(2.0), Some(3.0)));
        // A p99 that wavers over the target on the flat part does not end the search.
        let wavering = [step(1.0, 4.9, false), step(2.0, 5.1, false), step(3.0, 4.8, false), step(4.0, 9.0, false)];
        let s = slo(&wavering, "rate", (&Settings::default(), None), Duration::from_millis(5));
        assert_eq!((s.max_passing, s.first_failing), (Some(3.0), Some(4.0)));
        // A workers sweep: latency falls along it, so the low-load end is the last step.
        let falling = [step(1.0, 90.0, true), step(2.0, 8.0, false), step(3.0, 2.5, false), step(4.0, 2.0, false)];
        assert_eq!(knee(&falling).unwrap().value, 2.0);
        let s = slo(&falling, "workers", (&Settings::default(), None), Duration::from_millis(10));
        assert_eq!((s.max_passing, s.first_failing), (Some(2.0), Some(1.0)));
    }
}
