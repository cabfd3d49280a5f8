//! A sweep as a state machine fed by snapshots: each snapshot in, the commands to send now out.
//! The headless sweep ([`run`]) and the dashboard's `:sweep` both drive one, so a step
//! settles, is measured and ends by the same rule wherever it runs.
//!
//! A step: `Set` the value, let `settle` pass (by the snapshots' clock), `ResetStats`, then wait
//! for a snapshot whose measured window began after the reset and is at least `per_step` long.

use std::sync::Arc;
use std::time::Duration;

use super::plan::Plan;
use super::result::{Step, SweepReport, knee, slo, step_of, verdict};
use crate::engine::replay::Arrivals;
use crate::engine::{Command, EngineError, EngineHandle};
use crate::metrics::Snapshot;
use crate::model::sample::ServiceSample;
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The next step's value is still to be set.
    Start,
    /// Set at `since` (seconds into the run); waiting out the settle time.
    Settling {
        since: f64,
    },
    /// Statistics reset at `since`; measuring.
    Measuring {
        since: f64,
    },
    Done,
}

/// One sweep in progress, or finished.
#[derive(Debug, Clone)]
pub struct Sweeper {
    plan: Plan,
    base: Settings,
    slo_p99: Option<Duration>,
    /// The trace the run replays, if any: each step's model is then its window's simulation.
    arrivals: Option<Arrivals>,
    /// The run's service sample, as its snapshots name it (for the advisor's answer and the
    /// report's settings).
    sample: Option<Arc<ServiceSample>>,
    /// The step in progress (an index into the plan's values).
    at: usize,
    phase: Phase,
    /// The steps so far and what they conclude, brought up to date as each step is measured
    /// (the dashboard draws it every frame; the knee, target and verdict change only then).
    report: SweepReport,
    /// Seconds into the run of the latest snapshot seen.
    now: f64,
}

impl Sweeper {
    /// A sweep of `plan` from `base`; `arrivals` is the trace the run replays (a clone of its
    /// handle is kept: the trace itself is shared).
    #[must_use]
    pub fn new(plan: Plan, base: Settings, slo_p99: Option<Duration>, arrivals: Option<&Arrivals>) -> Sweeper {
        let settings = match serde_json::to_value(&base) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let report = SweepReport {
            command: Vec::new(),
            settings,
            knob: plan.knob.to_string(),
            steps: Vec::new(),
            knee: None,
            slo: None,
            stopped_early: None,
            verdict: String::new(),
        };
        let arrivals = arrivals.cloned();
        let mut s =
            Sweeper { plan, base, slo_p99, arrivals, sample: None, at: 0, phase: Phase::Start, report, now: 0.0 };
        s.conclude();
        s
    }

    /// The knee, the target's verdict and the one-line summary from the steps so far.
    fn conclude(&mut self) {
        let (knob, steps) = (self.plan.knob, &self.report.steps);
        let knee = knee(steps);
        let slo = self.slo_p99.map(|t| slo(steps, knob, (&self.base, self.sample.as_deref()), t));
        self.report.verdict = verdict(knob, steps, knee.as_ref(), slo.as_ref());
        (self.report.knee, self.report.slo) = (knee, slo);
    }

    /// Takes a snapshot; returns the commands to send now (in order).
    pub fn on_snapshot(&mut self, s: &Snapshot) -> Vec<Command> {
        let now = s.elapsed.as_secs_f64();
        self.now = now;
        if self.sample.is_none()
            && let Some(sample) = &s.service_sample
        {
            // The sweep's settings name the sample its steps draw from, as a run's config does.
            if let Ok(v) = serde_json::to_value(sample.as_ref()) {
                self.report.settings.insert("service_sample".into(), v);
            }
            self.sample = Some(sample.clone());
        }
        let settle = self.plan.settle.as_secs_f64();
        match self.phase {
            Phase::Start => {
                self.phase = Phase::Settling { since: now };
                vec![Command::Set(self.plan.values[self.at])]
            }
            Phase::Settling { since } if now >= since + settle => {
                self.phase = Phase::Measuring { since: now };
                vec![Command::ResetStats]
            }
            // The window must have begun at the reset (not before it) and be long enough.
            Phase::Measuring { since }
                if now - s.measured.duration_s >= since - 1e-6
                    && s.measured.duration_s >= self.plan.per_step.as_secs_f64() =>
            {
                let step = step_of(self.plan.values[self.at], s, self.arrivals.as_ref());
                let saturated = step.saturated;
                self.report.steps.push(step);
                self.conclude();
                let more = self.at + 1 < self.plan.values.len();
                if saturated && self.plan.stop_on_saturation && more {
                    let value = self.plan.values[self.at].value_text();
                    self.stop(format!("step {} ({value}) saturated the pool", self.at + 1));
                    return Vec::new();
                }
                if !more {
                    self.phase = Phase::Done;
                    return Vec::new();
                }
                self.at += 1;
                self.phase = Phase::Settling { since: now };
                vec![Command::Set(self.plan.values[self.at])]
            }
            _ => Vec::new(),
        }
    }

    /// Ends the sweep before its last step, saying why (a saturated step, the operator).
    pub fn stop(&mut self, why: impl Into<String>) {
        if self.phase != Phase::Done {
            self.report.stopped_early = Some(why.into());
            self.phase = Phase::Done;
        }
    }

    #[must_use]
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The step in progress, from 1, and how many there are.
    #[must_use]
    pub fn progress(&self) -> (usize, usize) {
        ((self.at + 1).min(self.plan.values.len()), self.plan.values.len())
    }

    /// About how long the rest of the sweep takes, from the latest snapshot.
    #[must_use]
    pub fn time_left(&self) -> Duration {
        let each = (self.plan.settle + self.plan.per_step).as_secs_f64();
        let into = match self.phase {
            Phase::Start => 0.0,
            Phase::Settling { since } => self.now - since,
            Phase::Measuring { since } => self.now - since + self.plan.settle.as_secs_f64(),
            Phase::Done => return Duration::ZERO,
        };
        #[allow(clippy::cast_precision_loss)]
        let left = (self.plan.values.len() - self.at) as f64 * each - into.min(each);
        Duration::from_secs_f64(left.max(0.0))
    }

    #[must_use]
    pub fn knob(&self) -> &'static str {
        self.plan.knob
    }

    /// The steps measured so far.
    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.report.steps
    }

    /// The sweep so far (or whole): its steps, knee, target and verdict.
    #[must_use]
    pub fn report(&self) -> &SweepReport {
        &self.report
    }
}

/// Runs `plan` on a started engine (its settings `base`, replaying `arrivals` if given), calling
/// `progress(step, of, left)` as each step starts, then shuts the engine down. Steps are driven by a [`Sweeper`] fed with
/// the engine's snapshots, as the dashboard's `:sweep` drives its own.
///
/// # Errors
/// The engine refused a step's knob, or stopped.
pub async fn run(
    engine: &EngineHandle,
    plan: &Plan,
    base: &Settings,
    slo_p99: Option<Duration>,
    arrivals: Option<&Arrivals>,
    mut progress: impl FnMut(usize, usize, Duration),
) -> Result<SweepReport, EngineError> {
    let mut sweeper = Sweeper::new(plan.clone(), base.clone(), slo_p99, arrivals);
    let mut rx = engine.subscribe();
    let mut shown = 0;
    loop {
        let snap = rx.borrow_and_update().clone();
        for cmd in sweeper.on_snapshot(&snap) {
            engine.send(cmd).await?;
        }
        let (k, n) = sweeper.progress();
        if k != shown && !sweeper.done() {
            shown = k;
            progress(k, n, sweeper.time_left());
        }
        if sweeper.done() || snap.finished || rx.changed().await.is_err() {
            break;
        }
    }
    let _ = engine.send(Command::Shutdown).await;
    Ok(sweeper.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::Scale;

    fn plan(stop_on_saturation: bool) -> Plan {
        let (knob, values) = Plan::values_of("rate", "100..300", 3, Scale::Lin).unwrap();
        Plan { knob, values, settle: Duration::from_secs(1), per_step: Duration::from_secs(2), stop_on_saturation }
    }

    /// A snapshot at `t` seconds whose measured window is `window` seconds long, arrivals on
    /// time (the step is not saturated).
    fn snap(t: f64, window: f64) -> Snapshot {
        let mut s = Snapshot::initial(Settings { rate: crate::settings::Rate::PerSec(500.0), ..Settings::default() });
        s.elapsed = Duration::from_secs_f64(t);
        s.measured.duration_s = window;
        s.measured.offered_per_s = 500.0;
        s
    }

    #[test]
    fn each_step_is_set_settled_reset_and_measured_in_turn() {
        let mut w = Sweeper::new(plan(true), Settings::default(), None, None);
        let set = |w: &mut Sweeper, t, win| w.on_snapshot(&snap(t, win));
        assert!(matches!(set(&mut w, 0.0, 0.0)[..], [Command::Set(k)] if k.value_text() == "100"));
        assert!(set(&mut w, 0.5, 0.5).is_empty(), "still settling");
        assert_eq!(set(&mut w, 1.0, 1.0), [Command::ResetStats]);
        assert_eq!(w.time_left(), Duration::from_secs(8), "2 s of this step's measuring and two steps of 3 s");
        // A window that began before the reset is not this step's, however long it is.
        assert!(set(&mut w, 3.5, 3.5).is_empty());
        assert!(set(&mut w, 2.9, 1.8).is_empty(), "too short yet");
        assert!(matches!(set(&mut w, 3.1, 2.0)[..], [Command::Set(k)] if k.value_text() == "200"));
        assert_eq!(w.steps().len(), 1);
        assert_eq!(w.progress(), (2, 3));
        assert_eq!(set(&mut w, 4.1, 1.0), [Command::ResetStats]);
        assert!(matches!(set(&mut w, 6.2, 2.1)[..], [Command::Set(_)]));
        assert_eq!(set(&mut w, 7.2, 1.0), [Command::ResetStats]);
        assert!(set(&mut w, 9.2, 2.0).is_empty());
        assert!(w.done());
        assert_eq!(w.report().steps.len(), 3);
        assert_eq!(w.time_left(), Duration::ZERO);
    }

    #[test]
    fn a_stop_ends_it_with_the_reason_and_keeps_the_steps() {
        let mut w = Sweeper::new(plan(true), Settings::default(), None, None);
        for (t, win) in [(0.0, 0.0), (1.0, 1.0), (3.0, 2.0)] {
            w.on_snapshot(&snap(t, win));
        }
        w.stop("you changed workers");
        assert!(w.done());
        assert!(w.on_snapshot(&snap(10.0, 5.0)).is_empty(), "a stopped sweep sends nothing");
        let r = w.report();
        assert_eq!((r.steps.len(), r.stopped_early.as_deref()), (1, Some("you changed workers")));
    }
}
