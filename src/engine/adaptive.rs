//! The adaptive controller's seat in the engine: after each tick it adds the tick's figures to
//! the window in progress, and when the algorithm has enough it asks for a worker count. The
//! control thread sends that count through the same path as an operator's `workers` command.
//!
//! It follows the settings: `adapt` turned on starts the algorithm from the running count, a
//! different algorithm starts afresh, `off` drops it; a count set by someone else (the operator,
//! a profile's timeline, a replayed recording) restarts the window and the algorithm goes on
//! from that count. `slo` and `queue-length` are also built afresh when their target or the
//! model's inputs (arrival process, service distribution, downstream) change.

use std::sync::Arc;

use super::replay::Arrivals;
use crate::adapt::sizer::Recent;
use crate::adapt::{self, AdaptView, Bounds, Limiter, Window};
use crate::metrics::Snapshot;
use crate::model::sample::ServiceSample;
use crate::settings::{Adapt, ArrivalKind, Settings};

pub struct Adaptive {
    algorithm: Adapt,
    limiter: Option<Box<dyn Limiter>>,
    window: Window,
    /// The count this controller set last (or found when it started).
    last_set: usize,
    /// Failures and arrivals counted up to the previous tick.
    last_failed: u64,
    last_offered: u64,
    /// What the model-driven controllers were built from: a change rebuilds them.
    built_from: Option<Settings>,
    windows: u64,
}

/// Completions the run's measured holding-time CV must rest on before a controller uses it.
const CV_JOBS: u64 = 500;
/// The most of a replayed trace's latest arrivals a controller is given: each update simulates
/// them a few times over (about 2 log₂ of the pool), on the control thread.
const MOST_RECENT: u64 = 20_000;

/// What a run replays, for a controller that sizes on a trace's latest arrivals.
#[derive(Clone, Copy)]
pub struct Replayed<'a> {
    pub arrivals: Option<&'a Arrivals>,
    pub sample: Option<&'a Arc<ServiceSample>>,
}

/// The latest arrivals of the trace `snap` replays, `secs` of them at the set rate (at most
/// [`MOST_RECENT`]): `None` when it replays none, or at `rate max`, which has no speed.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn recent(snap: &Snapshot, r: Replayed<'_>, secs: f64) -> Option<Recent> {
    let s = &snap.settings;
    let a = r.arrivals.filter(|_| s.arrival == ArrivalKind::Trace)?;
    let speed = a.speed_of(s.rate)?;
    let end = snap.trace_offered;
    let n = ((a.mean_rate() * speed * secs).ceil() as u64).clamp(2, MOST_RECENT).min(end);
    let (arrivals, service) = a.excerpt(end - n, end, s.service)?;
    Some(Recent { arrivals, service, speed, seed: s.seed, sample: r.sample.cloned() })
}

/// The settings a controller is built from: for `slo` and `queue-length`, their target and the
/// model's inputs; for `hill-climb`, its bias; for the others, nothing beyond the algorithm.
fn build_key(s: &Settings) -> Option<Settings> {
    if s.adapt == Adapt::HillClimb {
        // Only its bias: a change of rate or service is what it climbs through, not a restart.
        return Some(Settings { adapt_bias: s.adapt_bias, ..Settings::default() });
    }
    matches!(s.adapt, Adapt::Slo | Adapt::QueueLength).then(|| Settings {
        workers: 0,
        workers_min: 0,
        workers_max: 0,
        rate: crate::settings::Rate::Max,
        queue: 0,
        ..s.clone()
    })
}

impl Adaptive {
    #[must_use]
    pub fn new() -> Adaptive {
        Adaptive {
            algorithm: Adapt::Off,
            limiter: None,
            window: Window::default(),
            last_set: 0,
            last_failed: 0,
            last_offered: 0,
            built_from: None,
            windows: 0,
        }
    }

    /// Takes a tick's snapshot; returns the worker count to set now, if it changes.
    #[allow(clippy::cast_precision_loss)]
    pub fn on_tick(&mut self, snap: &Snapshot, replayed: Replayed<'_>) -> Option<usize> {
        let s = &snap.settings;
        let failed = std::mem::replace(&mut self.last_failed, snap.totals.failed);
        let offered = std::mem::replace(&mut self.last_offered, snap.totals.offered);
        let key = build_key(s);
        if s.adapt != self.algorithm || key != self.built_from {
            // Turned on live with a count outside its bounds, it starts inside them.
            let start = s.adaptive_start();
            let workers = start.unwrap_or(s.workers);
            self.algorithm = s.adapt;
            self.limiter = adapt::limiter(s, workers);
            self.built_from = key;
            (self.window, self.last_set, self.windows) = (Window::default(), workers, 0);
            return start;
        }
        let limiter = self.limiter.as_mut()?;
        if s.workers != self.last_set {
            limiter.reset_to(s.workers);
            (self.window, self.last_set) = (Window::default(), s.workers);
            return None;
        }
        if snap.paused || snap.finished {
            self.window = Window::default();
            return None;
        }
        let busy = (snap.busy_workers as f64).max(snap.utilisation * s.workers as f64);
        let service = &snap.latency.service;
        self.window.add(&Window {
            secs: snap.tick_len.as_secs_f64(),
            completed: service.count,
            service_s: service.mean / 1e3,
            inflight: busy,
            drops: snap.totals.failed.saturating_sub(failed),
            workers: s.workers,
            arrived: snap.totals.offered.saturating_sub(offered),
            waiting: snap.queue.depth as f64,
            in_system: snap.in_flight as f64,
            // The run's CV once it rests on enough jobs (its relative error for exponential
            // holding times is about √(2/n): 6% at 500); before, one slow job just after the
            // warm-up's reset reads as a CV of 2 or more and the model asks for the bound.
            service_cv: if snap.measured.jobs.completed >= CV_JOBS { snap.measured.holding_cv } else { 0.0 },
        });
        if !limiter.ready(&self.window) {
            return None;
        }
        if let Some(r) = limiter.looks_back().and_then(|secs| recent(snap, replayed, secs)) {
            limiter.recent(r);
        }
        let bounds = Bounds { min: s.workers_min, max: s.workers_max, timeout: s.timeout };
        let n = limiter.update(&self.window, &bounds);
        if n != s.workers {
            let w = &self.window;
            tracing::info!(
                "{}: workers {} -> {n} ({}; window {:.2} s, {} arrived, {} done, {:.2} ms held, {} waiting)",
                s.adapt,
                s.workers,
                limiter.state(),
                w.secs,
                w.arrived,
                w.completed,
                w.service_s * 1e3,
                w.waiting
            );
        }
        self.window = Window::default();
        self.windows += 1;
        (n != s.workers).then(|| {
            self.last_set = n;
            n
        })
    }

    /// The controller's figures for the snapshot (`None` when `adapt` is off).
    #[must_use]
    pub fn view(&self) -> Option<AdaptView> {
        self.limiter.as_ref().map(|l| AdaptView {
            algorithm: self.algorithm,
            limit: l.limit(),
            windows: self.windows,
            state: l.state(),
        })
    }
}
