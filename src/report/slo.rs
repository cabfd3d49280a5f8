//! A run against a p99 target (`slo_p99`): how often it met it, and what meeting it had to cost.
//!
//! [`Track`] follows a run's snapshots (their per-tick distributions,
//! [`crate::engine::RunOptions::distributions`]) and cuts the measured window (after the
//! warm-up, the settle time) into one-second windows. From them, afterwards:
//!
//! - **`slo_attainment`**: the share of the windows with completions whose p99 response time met
//!   the target.
//! - **the hindsight schedule**: each window's fewest workers for its true arrival rate (the set
//!   rate; `max`'s measured one), sized by the same model the `slo` controller uses ([`Sizer`])
//!   with the run's measured holding time (its mean service time
//!   and CV over the measured window: what the jobs really took, the engine's own overhead
//!   included), for the target itself, computed after the run, as no
//!   controller can: it knows each second's rate before the second starts. Its worker-seconds are
//!   the least any schedule of whole workers could spend, by the model. On a replayed trace
//!   ([`Track::replaying`]) each second's own arrivals are simulated instead
//!   ([`Sizer::fewest_on`]): the fewest workers whose exact replay of that second meets the
//!   target, as the controller sizes a trace.
//! - **the static reference**: the best static pool that meets the target over the whole run,
//!   the most the hindsight schedule ever asks, held for the whole window (the pool a capacity
//!   plan would size for the peak), and its worker-seconds.
//!
//! Paused ticks and a last window shorter than a second are left out.

use std::sync::Arc;

use serde::Serialize;

use crate::adapt::sizer::{Recent, Sizer};
use crate::engine::replay::Arrivals;
use crate::metrics::Snapshot;
use crate::metrics::sparse::{Sparse, Summariser};
use crate::model::sample::ServiceSample;
use crate::settings::{ArrivalKind, Rate};

/// One second of the measured window.
#[derive(Debug, Clone, PartialEq)]
pub struct Second {
    /// Its end, seconds since the run started.
    pub t_s: f64,
    pub secs: f64,
    /// Its p99 response time, ms (`None`: no job completed in it).
    pub p99_ms: Option<f64>,
    /// Its true arrival rate, jobs/s.
    pub rate: f64,
    /// The model of its arrivals.
    pub sizer: Sizer,
    /// On a replayed trace: its arrivals this second (counted across passes), the speed, the
    /// service mean the replay scales the trace's column to, and the seed.
    pub trace: Option<TraceSecond>,
}

/// The part of a replayed trace one second held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSecond {
    pub from: u64,
    pub to: u64,
    pub speed: f64,
    pub service: std::time::Duration,
    pub seed: u64,
}

/// What the run's target says about it (see the module).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct References {
    pub slo_p99_ms: f64,
    /// The share of one-second windows whose p99 met the target, 0 to 1.
    pub slo_attainment: f64,
    /// The windows counted (those with completions).
    pub slo_windows: usize,
    /// `None` when the model finds no pool that meets the target in some window.
    pub hindsight_worker_seconds: Option<f64>,
    pub static_workers: Option<u32>,
    pub static_worker_seconds: Option<f64>,
    /// The hindsight schedule: (end of the window, s; workers), one a window.
    pub hindsight: Vec<(f64, u32)>,
}

#[derive(Default)]
struct Open {
    secs: f64,
    response: Sparse,
    /// The true rate integrated over the window's ticks: jobs.
    jobs: f64,
    /// The replayed trace's arrivals offered when it opened.
    trace_from: Option<u64>,
}

/// Follows a run's snapshots; see the module.
#[derive(Default)]
pub struct Track {
    open: Open,
    seconds: Vec<Second>,
    summariser: Summariser,
    target_s: Option<f64>,
    /// The run's measured holding time (mean, s; CV), the latest.
    hold: (f64, f64),
    last_elapsed: Option<f64>,
    /// The trace the run replays, and the service sample it draws from.
    arrivals: Option<Arrivals>,
    sample: Option<Arc<ServiceSample>>,
    /// The trace's arrivals offered at the previous snapshot.
    last_trace: u64,
}

impl Track {
    #[must_use]
    pub fn new() -> Track {
        Track::default()
    }

    /// A track of a run that replays `arrivals` (while its `arrival` is `trace`).
    #[must_use]
    pub fn replaying(arrivals: Option<Arrivals>) -> Track {
        Track { arrivals, ..Track::default() }
    }

    /// Takes the next snapshot.
    pub fn push(&mut self, snap: &Snapshot) {
        let s = &snap.settings;
        self.target_s = s.slo_p99.map(|d| d.as_secs_f64());
        let trace_before = std::mem::replace(&mut self.last_trace, snap.trace_offered);
        if !snap.measuring || snap.paused || snap.tick == 0 {
            self.open = Open::default();
            self.last_elapsed = None;
            return;
        }
        let Some(dist) = &snap.dist else { return };
        // From the elapsed times, so a tick this client never saw still counts its time.
        let now = snap.elapsed.as_secs_f64();
        let secs = self.last_elapsed.replace(now).map_or(snap.tick_len.as_secs_f64(), |t| now - t);
        if snap.latency.service.count > 0 || snap.measured.latency.service.count > 0 {
            let m = &snap.measured;
            self.hold = (m.latency.service.mean / 1e3, m.holding_cv);
        }
        let rate = match (s.arrival, s.rate) {
            (ArrivalKind::Poisson | ArrivalKind::Constant | ArrivalKind::Bursty, Rate::PerSec(r)) => r,
            _ => snap.rates.offered,
        };
        if self.open.secs == 0.0 {
            self.open.trace_from = Some(trace_before);
        }
        if snap.service_sample.is_some() {
            self.sample.clone_from(&snap.service_sample);
        }
        self.open.secs += secs;
        self.open.jobs += rate * secs;
        self.open.response.merge(&dist.response);
        if self.open.secs < crate::adapt::WINDOW_S - 1e-9 {
            return;
        }
        let o = std::mem::take(&mut self.open);
        let summary = self.summariser.summary(std::iter::once(&o.response));
        self.seconds.push(Second {
            t_s: now,
            secs: o.secs,
            p99_ms: (summary.count > 0).then_some(summary.p99),
            rate: o.jobs / o.secs,
            sizer: Sizer::of(s),
            trace: self
                .arrivals
                .as_ref()
                .filter(|_| s.arrival == ArrivalKind::Trace)
                .and_then(|a| a.speed_of(s.rate))
                .zip(o.trace_from)
                .map(|(speed, from)| TraceSecond {
                    from,
                    to: snap.trace_offered,
                    speed,
                    service: s.service,
                    seed: s.seed,
                }),
        });
    }

    /// The windows so far.
    #[must_use]
    pub fn seconds(&self) -> &[Second] {
        &self.seconds
    }

    /// The run's figures against its target (`None` without one, or without a full window).
    #[must_use]
    pub fn references(&self) -> Option<References> {
        let target_ms = self.target_s? * 1e3;
        let judged: Vec<f64> = self.seconds.iter().filter_map(|w| w.p99_ms).collect();
        if judged.is_empty() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let attainment = judged.iter().filter(|&&p| p <= target_ms).count() as f64 / judged.len() as f64;
        let (hold, cv) = self.hold;
        let counts: Option<Vec<u32>> = self
            .seconds
            .iter()
            .map(|w| {
                let cv = if cv > 0.0 { cv } else { w.sizer.service_cv };
                match self.recent(w) {
                    Some(r) => w.sizer.fewest_on(&r, hold, cv, self.target_s?, 0.0),
                    None => w.sizer.fewest(w.rate, hold, cv, self.target_s?),
                }
            })
            .collect();
        let total: f64 = self.seconds.iter().map(|w| w.secs).sum();
        let hindsight_worker_seconds =
            counts.as_ref().map(|c| c.iter().zip(&self.seconds).map(|(&n, w)| f64::from(n) * w.secs).sum());
        let static_workers = counts.as_ref().and_then(|c| c.iter().copied().max());
        Some(References {
            slo_p99_ms: target_ms,
            slo_attainment: attainment,
            slo_windows: judged.len(),
            hindsight_worker_seconds,
            static_workers,
            static_worker_seconds: static_workers.map(|n| f64::from(n) * total),
            hindsight: counts
                .map_or_else(Vec::new, |c| c.iter().zip(&self.seconds).map(|(&n, w)| (w.t_s, n)).collect()),
        })
    }
}

impl Track {
    /// The arrivals a second of a replayed trace held (the last [`MOST_PER_SECOND`] of them),
    /// when its model is their simulation: none before a downstream that pushes back.
    fn recent(&self, w: &Second) -> Option<Recent> {
        let (t, a) = (w.trace?, self.arrivals.as_ref()?);
        if !w.sizer.downstream.is_none() {
            return None;
        }
        let from = t.from.max(t.to.saturating_sub(MOST_PER_SECOND));
        let (arrivals, service) = a.excerpt(from, t.to, t.service).unwrap_or_default();
        Some(Recent { arrivals, service, speed: t.speed, seed: t.seed, sample: self.sample.clone() })
    }
}

/// The most arrivals of one second the hindsight reference simulates (each takes a few
/// simulations of them, after the run).
pub const MOST_PER_SECOND: u64 = 50_000;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::metrics::sparse::TickDist;
    use crate::settings::Settings;

    /// A tick of 250 ms whose jobs all took `ms`.
    fn tick(n: u64, rate: f64, ms: u64, count: u64) -> Snapshot {
        let settings =
            Settings { rate: Rate::PerSec(rate), slo_p99: Some(Duration::from_millis(30)), ..Settings::default() };
        let mut s = Snapshot::initial(settings);
        s.tick = n;
        s.measuring = true;
        s.tick_len = Duration::from_millis(250);
        s.elapsed = Duration::from_millis(250 * n);
        let response = Sparse { buckets: vec![(ms * 1000, count)], sum_ns: u128::from(ms * count) * 1_000_000 };
        s.dist = Some(Arc::new(TickDist { response, ..TickDist::default() }));
        // The run's jobs took 5 ms, CV 1.
        (s.measured.latency.service.mean, s.measured.latency.service.count, s.measured.holding_cv) = (5.0, 100, 1.0);
        s
    }

    #[test]
    fn attainment_counts_the_seconds_whose_p99_met_the_target() {
        let mut t = Track::new();
        // Three seconds: 10 ms, 50 ms, 10 ms jobs; then half a second that is left out.
        for (i, ms) in [10, 10, 10, 10, 50, 50, 50, 50, 10, 10, 10, 10, 90, 90].into_iter().enumerate() {
            t.push(&tick(i as u64 + 1, 400.0, ms, 100));
        }
        let r = t.references().expect("a target and full windows");
        assert_eq!(r.slo_windows, 3);
        assert!((r.slo_attainment - 2.0 / 3.0).abs() < 1e-12, "{}", r.slo_attainment);
    }

    #[test]
    fn on_a_replayed_trace_hindsight_simulates_each_seconds_own_arrivals() {
        // Each second: a 250 ms burst of 200 arrivals (800/s), then silence. A tick is 250 ms,
        // so a second's whole burst is offered in its first tick.
        let burst: Vec<u64> = (0..200u64).map(|i| i * 1_250_000).collect();
        let offsets: Vec<u64> = (0..8u64).flat_map(|s| burst.iter().map(move |b| s * 1_000_000_000 + b)).collect();
        let trace = crate::trace::Trace { offsets, ..crate::trace::Trace::default() };
        let a = Arrivals::new(Arc::new(trace), true).unwrap();
        let rate = a.mean_rate();
        let mut t = Track::replaying(Some(a));
        for n in 1..=8u64 {
            let mut snap = tick(n, rate, 10, 100);
            snap.settings.arrival = ArrivalKind::Trace;
            snap.trace_offered = 200 * n.div_ceil(4);
            t.push(&snap);
        }
        let r = t.references().unwrap();
        let settings = Settings { arrival: ArrivalKind::Trace, ..tick(1, rate, 10, 1).settings };
        let sizer = Sizer::of(&settings);
        let recent = Recent { arrivals: burst, service: None, speed: 1.0, seed: settings.seed, sample: None };
        let one = sizer.fewest_on(&recent, 0.005, 1.0, 0.030, 0.0).unwrap();
        assert_eq!(r.hindsight, vec![(1.0, one), (2.0, one)], "each second's own burst, simulated");
        // The open model at the second's mean rate (200/s) would ask for far fewer.
        let poisson = sizer.fewest(200.0, 0.005, 1.0, 0.030).unwrap();
        assert!(one >= 2 * poisson, "{one} vs {poisson}");
    }

    #[test]
    fn hindsight_follows_each_second_and_static_holds_the_peak() {
        let mut t = Track::new();
        let rates = [400.0, 400.0, 400.0, 400.0, 1000.0, 1000.0, 1000.0, 1000.0];
        for (i, r) in rates.into_iter().enumerate() {
            t.push(&tick(i as u64 + 1, r, 10, 100));
        }
        let r = t.references().unwrap();
        let sizer = Sizer::of(&tick(1, 400.0, 10, 1).settings);
        let lo = sizer.fewest(400.0, 0.005, 1.0, 0.030).unwrap();
        let hi = sizer.fewest(1000.0, 0.005, 1.0, 0.030).unwrap();
        assert!(lo < hi);
        assert_eq!(r.static_workers, Some(hi));
        assert!((r.hindsight_worker_seconds.unwrap() - f64::from(lo + hi)).abs() < 1e-9);
        assert!((r.static_worker_seconds.unwrap() - 2.0 * f64::from(hi)).abs() < 1e-9);
        assert_eq!(r.hindsight, vec![(1.0, lo), (2.0, hi)]);
    }
}
