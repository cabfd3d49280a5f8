//! Capacity sweeps: one engine run that steps a numeric knob through a range, lets each step
//! settle (left out of its statistics), measures it, and sums the steps up: where latency bends
//! (the knee) and, with a p99 target, the highest value that meets it beside the model's answer.
//!
//! A client of the engine like the headless runner: commands in (`Set`, `ResetStats`), the
//! latest snapshot out. The knobs it steps are the table's ramping ones (`workers`, `queue`,
//! `rate`, `clients`, `think`, `service`, …), through the same parser as flags and profiles.
//!
//! **The knee** (one rule, stated in the output): scanning from the step with the lowest p99
//! towards the other end, the first step whose p99 is more than [`KNEE_FACTOR`] times that
//! lowest p99. **The target**: a step passes when its p99 is within the target and it did not
//! saturate; the highest passing value is the passing step farthest from the lowest-load end,
//! and the first failing one the step after it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::{Command, EngineError, EngineHandle};
use crate::metrics::{Snapshot, Summary};
use crate::model::Inputs;
use crate::model::advisor::{self, Target};
use crate::report::model_report;
use crate::settings::{ArrivalKind, KNOBS, Knob, KnobError, KnobSpec, Rate, Settings};

/// The knee: p99 more than this many times the lowest step's.
pub const KNEE_FACTOR: f64 = 3.0;

/// Why a sweep cannot be planned.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SweepError {
    #[error(transparent)]
    Knob(#[from] KnobError),
    #[error("{0} is not a numeric knob; a sweep steps one of: {1}")]
    NotNumeric(String, String),
    #[error("'{0}' is not a range; expected FROM..TO, e.g. 200..2000 or 1ms..10ms")]
    NotARange(String),
    #[error("the range {0}..{1} is empty; expected FROM below TO")]
    Empty(String, String),
    #[error("{0} steps cannot make a curve; expected 2 to 1000")]
    Steps(usize),
    #[error("a log scale needs FROM above 0 (got {0})")]
    LogFromZero(String),
}

/// How the steps are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Scale {
    Lin,
    Log,
}

/// What to sweep and how long each step takes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub knob: &'static str,
    pub values: Vec<Knob>,
    pub settle: Duration,
    pub per_step: Duration,
    pub stop_on_saturation: bool,
}

/// The knobs a sweep can step (the table's ramping ones).
#[must_use]
pub fn sweepable() -> Vec<&'static str> {
    KNOBS.iter().filter(|k| k.ramps).map(|k| k.key).collect()
}

impl Plan {
    /// Plans `steps` values of `knob` from `from` to `to` (each parsed as the knob's flag would
    /// be), evenly on `scale`, each value the nearest the knob can take.
    ///
    /// # Errors
    /// An unknown or non-numeric knob, an unparsable or empty range, fewer than 2 steps.
    pub fn values_of(
        knob: &str,
        range: &str,
        steps: usize,
        scale: Scale,
    ) -> Result<(&'static str, Vec<Knob>), SweepError> {
        let spec = KnobSpec::find(knob).ok_or_else(|| Knob::parse(knob, "0").unwrap_err())?;
        if !spec.ramps {
            return Err(SweepError::NotNumeric(spec.key.into(), sweepable().join(", ")));
        }
        let (from, to) = range.split_once("..").ok_or_else(|| SweepError::NotARange(range.into()))?;
        let (a, b) = (Knob::parse(spec.key, from.trim())?, Knob::parse(spec.key, to.trim())?);
        let (Some(x), Some(y)) = (a.ramp_value(), b.ramp_value()) else {
            return Err(SweepError::NotNumeric(format!("{} {from}..{to}", spec.key), sweepable().join(", ")));
        };
        if x >= y {
            return Err(SweepError::Empty(from.into(), to.into()));
        }
        if !(2..=1000).contains(&steps) {
            return Err(SweepError::Steps(steps));
        }
        if scale == Scale::Log && x <= 0.0 {
            return Err(SweepError::LogFromZero(from.into()));
        }
        #[allow(clippy::cast_precision_loss)]
        let at = |k: usize| {
            let f = k as f64 / (steps - 1) as f64;
            match scale {
                Scale::Lin => x + (y - x) * f,
                Scale::Log => x * (y / x).powf(f),
            }
        };
        let mut values: Vec<Knob> = (0..steps).map(|k| a.with_ramp_value(at(k))).collect();
        values.dedup();
        Ok((spec.key, values))
    }
}

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
    /// The model at the step's measured inputs.
    pub model: Option<StepModel>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StepModel {
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

fn step_of(knob: Knob, s: &Snapshot) -> Step {
    let m = &s.measured;
    // Behind: the producer owes arrivals (lag over 100 ms), or offered fewer than the rate by
    // more than 5% and 4 Poisson standard deviations over the window (√(r·T)/T).
    let short = |r: f64| m.offered_per_s < r - (0.05 * r).max(4.0 * (r / m.duration_s.max(1e-3)).sqrt());
    let behind = !matches!(s.settings.arrival, ArrivalKind::Closed | ArrivalKind::Batch)
        && (s.producer_lag > Duration::from_millis(100)
            || matches!(s.settings.rate, Rate::PerSec(r) if r > 0.0 && short(r)));
    let predicted = model_report(s, None).predicted;
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
        model: predicted.map(|p| StepModel { latency_ms_mean: p.latency_ms_mean, latency_ms_p99: p.latency_ms_p99 }),
    }
}

/// Runs `plan` on a started engine (its settings `base`), calling `progress(step, of, left)`
/// before each step, then shuts the engine down.
///
/// # Errors
/// The engine refused a step's knob, or stopped.
pub async fn run(
    engine: &EngineHandle,
    plan: &Plan,
    base: &Settings,
    slo_p99: Option<Duration>,
    mut progress: impl FnMut(usize, usize, Duration),
) -> Result<SweepReport, EngineError> {
    let mut steps = Vec::new();
    let mut stopped_early = None;
    let each = plan.settle + plan.per_step;
    for (k, &knob) in plan.values.iter().enumerate() {
        progress(k + 1, plan.values.len(), each * u32::try_from(plan.values.len() - k).unwrap_or(u32::MAX));
        engine.send(Command::Set(knob)).await?;
        tokio::time::sleep(plan.settle).await;
        engine.send(Command::ResetStats).await?;
        let started = Instant::now();
        tokio::time::sleep(plan.per_step).await;
        // The latest tick may predate the step's end by up to one interval: wait for one after.
        let mut rx = engine.subscribe();
        while rx.borrow().elapsed < started.elapsed() && !rx.borrow().finished {
            if rx.changed().await.is_err() {
                break;
            }
        }
        let snap = rx.borrow().clone();
        let step = step_of(knob, &snap);
        let saturated = step.saturated;
        steps.push(step);
        if saturated && plan.stop_on_saturation && k + 1 < plan.values.len() {
            stopped_early = Some(format!("step {} ({}) saturated the pool", k + 1, knob.value_text()));
            break;
        }
    }
    let _ = engine.send(Command::Shutdown).await;
    let knee = knee(&steps);
    let slo = slo_p99.map(|t| slo(&steps, plan.knob, base, t));
    let verdict = verdict(plan.knob, &steps, knee.as_ref(), slo.as_ref());
    let settings = match serde_json::to_value(base) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    Ok(SweepReport {
        command: Vec::new(),
        settings,
        knob: plan.knob.to_string(),
        steps,
        knee,
        slo,
        stopped_early,
        verdict,
    })
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

fn knee(steps: &[Step]) -> Option<Knee> {
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

fn slo(steps: &[Step], knob: &str, base: &Settings, target: Duration) -> Slo {
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
        service_cv: base.effective_service_cv(),
        service_dist: base.service_dist,
    };
    let open = matches!(base.arrival, ArrivalKind::Poisson | ArrivalKind::Constant);
    let advice = open.then(|| advisor::advise(&inputs, Target::P99(target.as_secs_f64())));
    let (model_answer, model_answer_reason) = match (knob, advice) {
        ("rate", Some(a)) => (a.max_rate, a.max_rate_reason),
        ("workers", Some(a)) => (a.workers_needed.map(f64::from), a.workers_reason),
        _ => (None, Some("the advisor answers rate and workers sweeps of open-loop arrivals".into())),
    };
    Slo { p99_ms: t, max_passing, first_failing: failing.map(|i| ordered[i].value), model_answer, model_answer_reason }
}

fn verdict(knob: &str, steps: &[Step], knee: Option<&Knee>, slo: Option<&Slo>) -> String {
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

    #[test]
    fn plans_even_steps_on_either_scale() {
        let (k, v) = Plan::values_of("rate", "200..2000", 10, Scale::Lin).unwrap();
        assert_eq!(k, "rate");
        let xs: Vec<f64> = v.iter().map(|k| k.ramp_value().unwrap()).collect();
        assert_eq!(xs.first(), Some(&200.0));
        assert_eq!(xs.last(), Some(&2000.0));
        assert!((xs[1] - 400.0).abs() < 1e-9);
        let (_, v) = Plan::values_of("workers", "1..64", 7, Scale::Log).unwrap();
        let xs: Vec<f64> = v.iter().map(|k| k.ramp_value().unwrap()).collect();
        assert_eq!(xs, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        let (_, v) = Plan::values_of("service", "1ms..3ms", 3, Scale::Lin).unwrap();
        assert_eq!(v.iter().map(Knob::value_text).collect::<Vec<_>>(), ["1ms", "2ms", "3ms"]);
    }

    #[test]
    fn bad_plans_say_what_is_accepted() {
        let msg = |r: Result<(&str, Vec<Knob>), SweepError>| r.unwrap_err().to_string();
        assert!(msg(Plan::values_of("wokers", "1..2", 2, Scale::Lin)).contains("did you mean 'workers'"));
        assert!(msg(Plan::values_of("policy", "1..2", 2, Scale::Lin)).contains("a sweep steps one of: workers"));
        assert!(msg(Plan::values_of("rate", "2000..200", 5, Scale::Lin)).contains("expected FROM below TO"));
        assert!(msg(Plan::values_of("rate", "200-2000", 5, Scale::Lin)).contains("expected FROM..TO"));
        assert!(msg(Plan::values_of("rate", "200..2000", 1, Scale::Lin)).contains("expected 2 to 1000"));
        assert!(msg(Plan::values_of("rate", "0..2000", 3, Scale::Log)).contains("FROM above 0"));
        assert!(msg(Plan::values_of("rate", "200..max", 3, Scale::Lin)).contains("not a numeric knob"));
    }

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
            model: None,
        }
    }

    #[test]
    fn knee_and_target_from_either_end() {
        let rising = [step(1.0, 2.0, false), step(2.0, 3.0, false), step(3.0, 7.0, false), step(4.0, 30.0, true)];
        assert_eq!(knee(&rising).unwrap().value, 3.0);
        let s = slo(&rising, "rate", &Settings::default(), Duration::from_millis(5));
        assert_eq!((s.max_passing, s.first_failing), (Some(2.0), Some(3.0)));
        // A p99 that wavers over the target on the flat part does not end the search.
        let wavering = [step(1.0, 4.9, false), step(2.0, 5.1, false), step(3.0, 4.8, false), step(4.0, 9.0, false)];
        let s = slo(&wavering, "rate", &Settings::default(), Duration::from_millis(5));
        assert_eq!((s.max_passing, s.first_failing), (Some(3.0), Some(4.0)));
        // A workers sweep: latency falls along it, so the low-load end is the last step.
        let falling = [step(1.0, 90.0, true), step(2.0, 8.0, false), step(3.0, 2.5, false), step(4.0, 2.0, false)];
        assert_eq!(knee(&falling).unwrap().value, 2.0);
        let s = slo(&falling, "workers", &Settings::default(), Duration::from_millis(10));
        assert_eq!((s.max_passing, s.first_failing), (Some(2.0), Some(1.0)));
    }
}
