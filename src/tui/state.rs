//! Everything the dashboard shows, updated from snapshots and actions; rendering reads it and
//! nothing else (see `render`). No clocks are read here: time comes from the snapshots, so a
//! fixed sequence of snapshots always renders the same screen.

use std::collections::VecDeque;
use std::time::Duration;

use super::trail::{Recent, Trail};
use crate::engine::replay::Arrivals;
use crate::metrics::Snapshot;
use crate::model::advisor::Target;
use crate::report::trace_model::{replayed, trace_report};
use crate::report::{ModelReport, model_report};
use crate::settings::{ArrivalKind, Knob, Policy, Settings};

/// The chart windows offered (`z`/`Z`, `:window`).
pub const WINDOWS: [Duration; 3] = [Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(600)];

/// One tick of chart data.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Seconds since the run started.
    pub t: f64,
    pub offered: f64,
    pub completed: f64,
    pub refused: f64,
    pub depth: f64,
    pub bound: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub predicted_mean: Option<f64>,
    pub predicted_p99: Option<f64>,
    pub predicted_queue: Option<f64>,
    /// Workers set, alive and busy, and an adaptive controller's limit.
    pub workers: f64,
    pub live: f64,
    pub busy: f64,
    pub limit: Option<f64>,
}

/// A knob change, drawn as a vertical line on the charts; a ramp (the same knob moved by the
/// timeline at consecutive ticks) is one marker spanning `t` to `until`, drawn at both ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub t: f64,
    /// Where a ramp ended so far (`t` for a single change).
    pub until: f64,
    pub label: String,
    key: &'static str,
    /// The value before the change, and the tick of the latest step.
    from: String,
    last_tick: u64,
}

/// A step this many ticks after the previous one of the same knob continues its ramp.
const RAMP_TICKS: u64 = 2;
/// An adaptive controller's change this many seconds after its previous one continues its
/// burst: one marker per burst of decisions, not one per window.
const ADAPT_BURST_S: f64 = 5.0;

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// Seconds of queue depth the overload slope is fitted over.
const GROWTH_SPAN: f64 = 3.0;
/// The most knob-change markers kept (older ones are off every chart window anyway).
const MAX_MARKERS: usize = 256;
/// The most chart points kept, whatever the tick: 10 minutes at 10 ms.
const MAX_POINTS: usize = 60_000;

/// How the dashboard shows what colour says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Palette {
    #[default]
    Colour,
    /// No colour: attributes and markers instead.
    Mono,
}

pub struct State {
    pub snap: Snapshot,
    /// The settings as the dashboard has asked for them, ahead of the engine by the commands in
    /// flight; reconciled with the engine's when it has taken every command sent.
    pub desired: Settings,
    /// Commands sent to the engine.
    pub sent: u64,
    /// The trace replayed when `arrival = trace`: the rate knob is then its speed (the
    /// dashboard says so), and the model is its simulation.
    pub arrivals: Option<Arrivals>,
    /// When the trace's simulation last ran and how long it took: it runs again after twenty
    /// times that, so a long window's replay takes at most a twentieth of the dashboard's time.
    trace_model_cost: (f64, f64),
    pub paused_sent: bool,
    pub history: VecDeque<Point>,
    capacity: usize,
    pub markers: VecDeque<Marker>,
    pub window: usize,
    pub help: bool,
    pub input: Option<String>,
    pub message: Option<Message>,
    pub model: Option<ModelReport>,
    /// The window's exact account of its gap to theory (one line in the model panel).
    pub account: Option<crate::report::account::Account>,
    pub slo: Option<Target>,
    pub overload: Option<String>,
    /// The last knob change, in words.
    pub last_change: Option<String>,
    /// Lines shown under the knobs by other parts (profile progress, console address).
    pub notes: Vec<String>,
    /// A profile's timeline still has knob changes to make (its progress, in words): a live
    /// sweep would fight it, so `:sweep` waits for it.
    pub timeline_running: Option<String>,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Knobs the operator changed by hand and the engine has not shown yet: their markers are
    /// labelled manual (the rest came from a timeline).
    pub manual: Vec<&'static str>,
    /// What the workers run when it is not the synthetic service ("http GET").
    pub work_label: Option<String>,
    /// The distribution over the chart's window, from the trailing windows kept here.
    pub recent: Option<Recent>,
    /// A live sweep (`:sweep`), running or finished; its view replaces the charts.
    pub sweep: Option<crate::sweep::Sweeper>,
    /// In colour, or without (`NO_COLOR`, `--color never`: bold, dim, underline, reverse video
    /// and the charts' markers carry what colour would).
    pub palette: Palette,
    trail: Trail,
    /// The steady windows of the run summed per worker count, and the USL fitted to them: the
    /// downstream as this run has seen it (the model panel's `USL fit` line). Not on a broker
    /// run: its count set is this process's workers, not the pool the downstream sees.
    pub usl_points: crate::model::usl_points::Points,
    pub usl_fit: Option<Result<crate::model::usl_fit::UslFit, crate::model::usl_fit::NotEnough>>,
    /// The `:slo` advice in front of the fitted downstream, when the settings configure none.
    pub usl_advice: Option<String>,
}

impl State {
    #[must_use]
    pub fn new(first: Snapshot, interval: Duration) -> Self {
        let per_window = WINDOWS[WINDOWS.len() - 1].as_secs_f64() / interval.as_secs_f64().max(1e-3);
        let capacity = (per_window.ceil() as usize + 1).clamp(16, MAX_POINTS);
        Self {
            desired: first.settings.clone(),
            snap: first,
            sent: 0,
            arrivals: None,
            trace_model_cost: (f64::NEG_INFINITY, 0.0),
            paused_sent: false,
            history: VecDeque::with_capacity(capacity),
            capacity,
            markers: VecDeque::new(),
            window: 0,
            palette: Palette::Colour,
            help: false,
            input: None,
            message: None,
            model: None,
            account: None,
            slo: None,
            overload: None,
            last_change: None,
            notes: Vec::new(),
            timeline_running: None,
            dirty: true,
            manual: Vec::new(),
            work_label: None,
            recent: None,
            sweep: None,
            trail: Trail::new(&WINDOWS),
            usl_points: crate::model::usl_points::Points::new(),
            usl_fit: None,
            usl_advice: None,
        }
    }

    /// Shows chart window `i` (an index into [`WINDOWS`]), and the distribution over it.
    pub fn set_window(&mut self, i: usize) {
        self.window = i.min(WINDOWS.len() - 1);
        self.recent = self.trail.recent(self.window, self.now());
    }

    /// The statistics start afresh: so does the distribution over the window.
    pub fn reset_distribution(&mut self) {
        self.trail.clear();
        self.recent = None;
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message { text: text.into(), error: true });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message { text: text.into(), error: false });
    }

    /// The engine accepted a command: the desired settings move at once.
    pub fn sent(&mut self, knob: Option<Knob>) {
        self.sent += 1;
        if let Some(k) = knob {
            k.apply(&mut self.desired);
            let speed = self.trace_speed().filter(|_| matches!(k, Knob::Rate(_)));
            let speed = speed.map(|x| format!(": the trace at ×{x:.2} its own speed")).unwrap_or_default();
            self.info(format!("{} → {}{speed}", k.name().replace('_', " "), k.value_text()));
        }
    }

    /// The speed a trace replays at (the rate over its own mean rate), while one replays.
    #[must_use]
    pub fn trace_speed(&self) -> Option<f64> {
        let a = self.arrivals.as_ref().filter(|_| self.desired.arrival == ArrivalKind::Trace)?;
        a.speed_of(self.desired.rate)
    }

    pub fn on_snapshot(&mut self, snap: Snapshot) {
        let t = snap.elapsed.as_secs_f64();
        let before = Knob::all_of(&self.snap.settings);
        for k in Knob::changed(&self.snap.settings, &snap.settings) {
            let by_hand = self.manual.iter().position(|m| *m == k.name()).map(|i| self.manual.swap_remove(i)).is_some();
            let name = k.name().replace('_', " ");
            // The controller's own change (a timeline's or the operator's restarts it).
            let adapted = snap.adapt.filter(|_| !by_hand && matches!(k, Knob::Workers(_))).map(|a| a.algorithm);
            let ramp =
                (!by_hand).then(|| self.markers.iter_mut().rev().find(|m| m.key == k.name())).flatten().filter(|m| {
                    match adapted {
                        Some(_) => t - m.until <= ADAPT_BURST_S,
                        None => snap.tick.saturating_sub(m.last_tick) <= RAMP_TICKS,
                    }
                });
            let how = adapted.map_or_else(|| "ramp".to_string(), |a| a.name().to_string());
            let label = if let Some(m) = ramp {
                m.until = t;
                m.last_tick = snap.tick;
                m.label = format!("{name} {}→{} ({how})", m.from, k.value_text());
                m.label.clone()
            } else {
                let by = if by_hand {
                    " (manual)".to_string()
                } else {
                    adapted.map(|a| format!(" ({a})")).unwrap_or_default()
                };
                let label = format!("{name} {}{by}", k.value_text());
                let from = before.iter().find(|b| b.name() == k.name()).map_or_else(String::new, Knob::value_text);
                if self.markers.len() == MAX_MARKERS {
                    self.markers.pop_front();
                }
                self.markers.push_back(Marker {
                    t,
                    until: t,
                    label: label.clone(),
                    key: k.name(),
                    from,
                    last_tick: snap.tick,
                });
                label
            };
            self.last_change = Some(label);
        }
        if snap.commands >= self.sent {
            self.desired = snap.settings.clone();
            self.paused_sent = snap.paused;
        }
        // Each tick once, even if a snapshot came twice.
        if let Some(d) = snap.dist.as_ref().filter(|_| snap.tick > self.snap.tick) {
            self.trail.add(t, snap.tick_len.as_secs_f64(), d);
        }
        if snap.tick > self.snap.tick && snap.measuring && snap.broker.is_none() {
            let svc = &snap.latency.service;
            #[allow(clippy::cast_precision_loss)]
            let busy_s = svc.count as f64 * svc.mean / 1e3;
            let workers = u32::try_from(snap.settings.workers).unwrap_or(u32::MAX);
            self.usl_points.push(workers, snap.tick_len.as_secs_f64(), svc.count, busy_s, snap.paused);
            self.usl_fit = (self.usl_points.counts() > 0).then(|| self.usl_points.fit());
            let plain = crate::model::usl::Usl::of(&snap.settings).is_none();
            let fit = self.usl_fit.as_ref().and_then(|f| f.as_ref().ok()).filter(|_| plain);
            self.usl_advice = fit.zip(self.slo).and_then(|(f, t)| f.advice(snap.measured.offered_per_s, t));
        }
        self.snap = snap;
        self.recent = self.trail.recent(self.window, t);
        self.refresh_model();
        let p = self.model.as_ref().and_then(|m| m.predicted.as_ref());
        let s = &self.snap;
        if s.tick > 0 {
            if self.history.len() == self.capacity {
                self.history.pop_front();
            }
            self.history.push_back(Point {
                t,
                offered: s.rates.offered,
                completed: s.rates.completed,
                refused: s.rates.rejected + s.rates.dropped,
                depth: s.queue.depth as f64,
                bound: s.queue.bound as f64,
                p50: s.latency.response.p50,
                p99: s.latency.response.p99,
                max: s.latency.response.max,
                predicted_mean: p.and_then(|p| p.latency_ms_mean),
                predicted_p99: p.and_then(|p| p.latency_ms_p99),
                predicted_queue: p.and_then(|p| p.queue_len_mean),
                workers: s.settings.workers as f64,
                live: s.live_workers as f64,
                busy: s.busy_workers as f64,
                limit: s.adapt.map(|a| a.limit),
            });
        }
        self.overload = self.overload_text();
        self.dirty = true;
    }

    /// The knob a timeline is ramping now (a ramp whose latest step was within
    /// two ticks of this one).
    #[must_use]
    pub fn ramping(&self) -> Option<&'static str> {
        self.markers
            .iter()
            .rev()
            .find(|m| m.until > m.t && self.snap.tick.saturating_sub(m.last_tick) <= RAMP_TICKS)
            .map(|m| m.key)
    }

    /// The model beside the measurements, unless a ramp is moving the settings: then each
    /// window is a tick long and still settling, too short to compare or to name a cause.
    pub fn refresh_model(&mut self) {
        self.account = crate::report::account::of(&self.snap);
        if let Some(k) = self.ramping() {
            let why = format!("ramping {}: comparing when settings hold", k.replace('_', " "));
            self.model = Some(ModelReport::not_compared(why));
            return;
        }
        let Some(a) = replayed(&self.snap, self.arrivals.as_ref()).cloned() else {
            self.model = Some(model_report(&self.snap, self.slo));
            return;
        };
        let ((at, cost), now) = (self.trace_model_cost, self.now());
        if now - at < 20.0 * cost && self.model.as_ref().is_some_and(|m| m.predicted.is_some()) {
            return;
        }
        let started = std::time::Instant::now();
        self.model = Some(trace_report(&self.snap, self.slo, &a));
        self.trace_model_cost = (now, started.elapsed().as_secs_f64());
    }

    /// The points inside the current window.
    pub fn visible(&self) -> impl Iterator<Item = &Point> {
        let from = self.now() - WINDOWS[self.window].as_secs_f64();
        self.history.iter().filter(move |p| p.t >= from)
    }

    /// Seconds since the run started, by the latest snapshot.
    #[must_use]
    pub fn now(&self) -> f64 {
        self.snap.elapsed.as_secs_f64()
    }

    /// Overload said in words: a growing queue and when it hits its bound, backpressure,
    /// rejections, drops.
    fn overload_text(&self) -> Option<String> {
        let s = &self.snap;
        let mut parts = Vec::new();
        let growth = self.queue_growth();
        if s.settings.policy == Policy::Block && s.producer_lag > Duration::from_millis(50) {
            parts.push(format!(
                "overloaded: queue full, producer {} behind schedule (backpressure)",
                crate::duration::format(Duration::from_millis(s.producer_lag.as_millis() as u64))
            ));
        } else if let Some(g) =
            growth.filter(|g| *g > (0.02 * s.rates.offered).max(1.0) && s.queue.depth > 2 * s.settings.workers.max(1))
        {
            let left = s.queue.bound.saturating_sub(s.queue.depth) as f64;
            if left > 0.0 {
                parts
                    .push(format!("overloaded: queue grows ~{g:.0}/s, bound reached in ~{:.0} s", (left / g).max(1.0)));
            } else {
                parts.push(format!("overloaded: queue grows ~{g:.0}/s and is at its bound"));
            }
        }
        if s.rates.rejected >= 1.0 {
            parts.push(format!("rejecting {:.0}/s", s.rates.rejected));
        }
        if s.rates.dropped >= 1.0 {
            parts.push(format!("dropping {:.0}/s", s.rates.dropped));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }

    /// How fast the queue grows, jobs per second: the least-squares slope of its depth over the
    /// last [`GROWTH_SPAN`] seconds (`None` until that much history exists). A stable queue's
    /// depth wanders; only a slope that is large against the arrival rate (2%) and a queue deeper
    /// than twice the pool count as overload.
    fn queue_growth(&self) -> Option<f64> {
        let last = self.history.back()?;
        let pts: Vec<&Point> = self.history.iter().rev().take_while(|p| last.t - p.t <= GROWTH_SPAN).collect();
        if pts.len() < 3 || last.t - pts[pts.len() - 1].t < GROWTH_SPAN * 0.9 {
            return None;
        }
        let n = pts.len() as f64;
        let (mt, md) = (pts.iter().map(|p| p.t).sum::<f64>() / n, pts.iter().map(|p| p.depth).sum::<f64>() / n);
        let (num, den) =
            pts.iter().fold((0.0, 0.0), |(a, b), p| (a + (p.t - mt) * (p.depth - md), b + (p.t - mt).powi(2)));
        (den > 0.0).then(|| num / den)
    }
}
