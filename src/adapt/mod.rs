//! Adaptive concurrency: controllers that set the worker count from what the pool measures, as
//! production pools do at run time. Pure arithmetic on measured windows: no tokio, no I/O. The
//! engine feeds a controller after each tick and sends its decisions as `workers` commands.
//!
//! Four algorithms, each as its reference defines it (the reference's defaults below):
//!
//! - **`hill-climb`** ([`hill`]): the .NET thread pool's `HillClimbing`. It maximises throughput:
//!   it adds a square wave (period 4 samples) to the worker count, measures the throughput's
//!   component at the wave's frequency by the Goertzel algorithm over the last 8 waves, takes the
//!   noise from the two neighbouring frequencies, and moves toward the gradient, scaled by its
//!   confidence (signal to noise over a target of 3) and a gain exponent of 2, at most 4 workers
//!   a second and 20 a sample. A bias of 0.15 asks that a worker raise throughput by 15% of its
//!   share before one is added, so it settles a little below the throughput peak N*. A sample is
//!   one tick, extended until the count of completions is accurate to 15%
//!   ((workers − 1)/completions < 0.15). The wave's size follows the measured noise (at most 20).
//!   The bias is a knob (`adapt_bias`, 0 to 0.9). Added: it holds the count through a window at
//!   whose end no job waits for a worker: throughput is then the arrival rate whatever the
//!   count, and the bias alone would lean the count down with nothing measured to say so.
//!   Left out: the CPU-over-95% veto (workers here wait, they do not spin) and the random
//!   sample length (samples follow the engine's ticks).
//! - **`vegas`** ([`vegas`]): concurrency-limits' `VegasLimit`. From the no-load service time
//!   (the least window mean seen, probed afresh every 30 × limit × U(0.5, 1) windows) it
//!   estimates the jobs queued inside the downstream, queue = ⌈limit × (1 − no-load/rtt)⌉, with
//!   log = max(1, ⌊log₁₀ limit⌋) (√limit from 1000): queue ≤ log grows the limit by 6·log,
//!   queue < 3·log by log, queue > 6·log shrinks it by log; a failure shrinks it by log. It does
//!   not grow while fewer than half the workers are busy.
//! - **`gradient2`** ([`gradient2`]): `Gradient2Limit`. The gradient is
//!   clamp(1.5 × long/short, 0.5, 1) with short the window's mean service time and long its
//!   exponential average over 600 windows (plain mean over the first 10; cut by 5% when it
//!   exceeds twice the short); new = limit × gradient + 4, smoothed 0.2 toward it. No growth
//!   while fewer than half the workers are busy.
//! - **`aimd`** ([`aimd`]): `AIMDLimit`. A window with a failure or timeout, or whose mean
//!   service time exceeds the run's `timeout` (5 s without one), multiplies the limit by 0.9
//!   (at least one less); otherwise, with at least half the workers busy, adds one.
//!
//! The last three sample as concurrency-limits' `WindowedLimit` does: a window is 1 s long and
//! holds at least 10 completions; its figure is the mean service time. They are fed the
//! **service** time (pick to done), never the wait in the queue: a backlog means the pool is too
//! small, and a controller fed the wait would shrink it exactly then. Where the references have
//! their own bounds (Vegas 1 to 1000, Gradient2 20 to 200), the run's `workers_min` and
//! `workers_max` stand in; every algorithm starts from the running worker count, and an
//! operator's change of the count restarts it from there (.NET's `ForceChange`).

pub mod aimd;
pub mod gradient2;
pub mod hill;
pub mod queue_length;
pub mod sizer;
pub mod slo;
pub mod vegas;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::settings::{Adapt, Settings};

/// A concurrency-limits window's least length, seconds.
pub const WINDOW_S: f64 = 1.0;
/// The fewest completions a concurrency-limits window needs.
pub const MIN_SAMPLES: u64 = 10;

/// What the pool measured over one window (or one hill-climbing sample), summed from ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub secs: f64,
    /// Jobs that finished, successes and failures.
    pub completed: u64,
    /// Their mean service time (pick to done), seconds.
    pub service_s: f64,
    /// The most jobs in service at once.
    pub inflight: f64,
    /// Failures and timeouts.
    pub drops: u64,
    /// The worker count the window ran with (the latest, if it changed).
    pub workers: usize,
    /// Jobs that arrived (admitted or refused).
    pub arrived: u64,
    /// At the window's end: jobs waiting for a worker, and jobs in the system (waiting and in
    /// service).
    pub waiting: f64,
    pub in_system: f64,
    /// The holding time's coefficient of variation as measured so far (0: not yet known).
    pub service_cv: f64,
}

impl Window {
    /// Adds one tick's figures.
    pub fn add(&mut self, t: &Window) {
        let n = self.completed + t.completed;
        if n > 0 {
            #[allow(clippy::cast_precision_loss)]
            let mean = (self.service_s * self.completed as f64 + t.service_s * t.completed as f64) / n as f64;
            self.service_s = mean;
        }
        self.completed = n;
        self.secs += t.secs;
        self.inflight = self.inflight.max(t.inflight);
        self.drops += t.drops;
        self.workers = t.workers;
        self.arrived += t.arrived;
        (self.waiting, self.in_system, self.service_cv) = (t.waiting, t.in_system, t.service_cv);
    }

    /// Long enough for a concurrency-limits controller.
    #[must_use]
    pub fn full(&self) -> bool {
        self.secs >= WINDOW_S - 1e-9 && self.completed >= MIN_SAMPLES
    }
}

/// What bounds a controller: the run's `workers_min`, `workers_max` and `timeout`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min: usize,
    pub max: usize,
    pub timeout: Option<Duration>,
}

impl Bounds {
    #[must_use]
    pub fn clamp(&self, x: f64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        x.clamp(self.min.max(1) as f64, self.max.max(self.min.max(1)) as f64)
    }
}

/// One adaptive controller.
pub trait Limiter: Send {
    /// `w` holds enough to decide on.
    fn ready(&self, w: &Window) -> bool;
    /// Takes a window; returns the worker count to run with (within `b`).
    fn update(&mut self, w: &Window, b: &Bounds) -> usize;
    /// Someone else set the count (the operator, a timeline): continue from `workers`.
    fn reset_to(&mut self, workers: usize);
    /// The limit as the algorithm holds it (hill-climb: its control setting, without the wave).
    fn limit(&self) -> f64;
    fn state(&self) -> State;
    /// How many seconds of a replayed trace's latest arrivals it sizes on, if any (`slo`): the
    /// engine then hands them over ([`Limiter::recent`]) before each update.
    fn looks_back(&self) -> Option<f64> {
        None
    }
    /// A replayed trace's latest arrivals (see [`Limiter::looks_back`]).
    fn recent(&mut self, _r: sizer::Recent) {}
}

/// The controller `s.adapt` names, starting at `workers` (`None` for `off`).
#[must_use]
pub fn limiter(s: &Settings, workers: usize) -> Option<Box<dyn Limiter>> {
    #[allow(clippy::cast_precision_loss)]
    let start = workers.max(1) as f64;
    let seed = s.seed;
    match s.adapt {
        Adapt::Off => None,
        Adapt::Slo => {
            let target = s.slo_p99.map_or(f64::INFINITY, |d| d.as_secs_f64());
            Some(Box::new(slo::SloLimit::new(workers.max(1), target, sizer::Sizer::of(s))))
        }
        Adapt::QueueLength => Some(Box::new(queue_length::QueueLength::new(workers.max(1), s.queue_target))),
        Adapt::HillClimb => Some(Box::new(hill::HillClimb::new(workers.max(1), s.adapt_bias))),
        Adapt::Vegas => Some(Box::new(vegas::Vegas::new(start, seed))),
        Adapt::Gradient2 => Some(Box::new(gradient2::Gradient2::new(start))),
        Adapt::Aimd => Some(Box::new(aimd::Aimd::new(workers.max(1)))),
    }
}

/// What a controller is doing, for the dashboard and the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Nothing decided yet.
    Starting,
    HillClimb {
        /// The last sample's throughput, jobs/s.
        throughput_per_s: f64,
        /// The last move of the control setting, workers.
        step: f64,
        /// The square wave's height, workers (0: holding, no job waited for a worker).
        wave: usize,
        /// Signal over noise against the target, 0 to 1.
        confidence: f64,
    },
    Vegas {
        /// Jobs estimated queued inside the downstream.
        queue: f64,
        rtt_ms: f64,
        rtt_noload_ms: f64,
    },
    Gradient2 {
        gradient: f64,
        short_ms: f64,
        long_ms: f64,
    },
    Aimd {
        /// Windows that backed off so far.
        backoffs: u64,
        rtt_ms: f64,
    },
    Slo {
        /// The arrival rate it sizes for (fast to rise, slow to fall), jobs/s.
        rate_per_s: f64,
        /// The holding time's mean, ms, and CV.
        hold_ms: f64,
        hold_cv: f64,
        /// The model's fewest workers for the target at that rate (0: no pool meets it).
        model: usize,
        /// Workers added to drain the backlog within the target.
        backlog: usize,
        /// Windows left before it may scale down (0: it may now).
        cooldown: u32,
    },
    QueueLength {
        /// Jobs in the system per worker, against the target.
        per_worker: f64,
        target: f64,
        /// This window's recommendation, and the one the stabilisation window holds it to.
        desired: usize,
        held: usize,
    },
}

impl State {
    /// The state in short parts, most telling first, for a panel that drops what does not fit.
    #[must_use]
    pub fn parts(&self) -> Vec<String> {
        match *self {
            State::Starting => vec!["measuring its first window".into()],
            State::HillClimb { throughput_per_s, wave: 0, .. } => {
                vec![format!("{throughput_per_s:.0}/s"), "holding: no job waits for a worker".into()]
            }
            State::HillClimb { throughput_per_s, step, wave, confidence } => vec![
                format!("{throughput_per_s:.0}/s"),
                format!("step {step:+.2}"),
                format!("wave ±{wave}"),
                format!("sure {:.0}%", confidence * 100.0),
            ],
            State::Vegas { queue, rtt_ms, rtt_noload_ms } => {
                vec![
                    format!("queue {queue:.0} (3..6)"),
                    format!("svc {rtt_ms:.2} ms"),
                    format!("no-load {rtt_noload_ms:.2}"),
                ]
            }
            State::Gradient2 { gradient, short_ms, long_ms } => {
                vec![format!("gradient {gradient:.2}"), format!("svc {short_ms:.2} ms"), format!("long {long_ms:.2}")]
            }
            State::Aimd { backoffs, rtt_ms } => vec![format!("{backoffs} back-offs"), format!("svc {rtt_ms:.2} ms")],
            State::Slo { rate_per_s, hold_ms, hold_cv, model, backlog, cooldown } => vec![
                if model == 0 { "model: no pool meets it".into() } else { format!("model {model}") },
                format!("{rate_per_s:.0}/s"),
                format!("hold {hold_ms:.2} ms cv {hold_cv:.2}"),
                format!("backlog +{backlog}"),
                if cooldown == 0 { "may scale down".into() } else { format!("cool-down {cooldown}") },
            ],
            State::QueueLength { per_worker, target, desired, held } => vec![
                format!("{per_worker:.2}/worker (target {target})"),
                format!("wants {desired}"),
                format!("held {held}"),
            ],
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts().join(", "))
    }
}

/// A controller's figures in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdaptView {
    pub algorithm: Adapt,
    /// The limit as the algorithm holds it (fractional for the smoothed ones).
    pub limit: f64,
    /// Windows decided on so far.
    pub windows: u64,
    pub state: State,
}

/// `limit` as a worker count within `b`.
#[must_use]
pub fn workers_of(limit: f64, b: &Bounds) -> usize {
    b.clamp(limit.floor()) as usize
}

/// A one-second window of 100 completions, for the algorithms' scripted tests.
#[cfg(test)]
pub(crate) fn window_of(service_ms: f64, inflight: f64, drops: u64) -> Window {
    Window { secs: 1.0, completed: 100, service_s: service_ms / 1e3, inflight, drops, workers: 20, ..Window::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_weigh_service_by_completions_and_keep_the_peak() {
        let mut w = Window::default();
        w.add(&Window {
            secs: 0.25,
            completed: 10,
            service_s: 0.010,
            inflight: 4.0,
            drops: 0,
            workers: 8,
            ..Window::default()
        });
        w.add(&Window {
            secs: 0.25,
            completed: 30,
            service_s: 0.020,
            inflight: 7.0,
            drops: 2,
            workers: 9,
            ..Window::default()
        });
        assert!((w.service_s - 0.0175).abs() < 1e-12, "{}", w.service_s);
        assert_eq!((w.completed, w.drops, w.workers), (40, 2, 9));
        assert!((w.inflight - 7.0).abs() < 1e-12 && (w.secs - 0.5).abs() < 1e-12);
        assert!(!w.full(), "half a second is not a window");
        w.add(&Window {
            secs: 0.5,
            completed: 0,
            service_s: 0.0,
            inflight: 0.0,
            drops: 0,
            workers: 9,
            ..Window::default()
        });
        assert!(w.full() && (w.service_s - 0.0175).abs() < 1e-12, "an idle tick leaves the mean");
    }

    #[test]
    fn bounds_hold_the_limit_and_never_give_zero() {
        let b = Bounds { min: 0, max: 10, timeout: None };
        assert_eq!(workers_of(0.3, &b), 1);
        assert_eq!(workers_of(17.9, &b), 10);
        assert_eq!(workers_of(7.9, &b), 7);
    }
}
