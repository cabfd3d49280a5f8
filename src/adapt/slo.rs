//! `slo`: the model in the loop. Each one-second window it estimates what the pool faces and asks
//! the queueing model ([`Sizer`]) for the fewest workers that meet the p99 target; none of the
//! reference controllers predicts, they react to latency or to queue length.
//!
//! The rules, and why:
//!
//! - **The arrival rate** (arrived jobs, admitted or refused, over the window) is estimated
//!   *fast to rise, slow to fall*: a window above the estimate replaces it, a window below moves
//!   it a tenth of the way ([`FALL`]). Under-estimating costs a queue that every later job waits
//!   behind; over-estimating costs only idle workers, so the estimate errs upward.
//! - **The holding time** (pick to done) is an exponential average of the windows' means
//!   ([`HOLD_SMOOTHING`]) and its CV is the run's measured one (the settings' until one is
//!   measured). Before a downstream that pushes back, the stretch it adds at the window's busy
//!   count is divided out, since the model adds it again for each pool it tries.
//! - **A replayed trace** is sized by its own simulation: the engine hands over the trace's
//!   latest [`LOOK_BACK_S`] seconds of arrivals (and service times, when the trace has them)
//!   before each update, and the answer is the fewest workers whose exact FIFO replay of them,
//!   at the replay's speed raised by the headroom, meets the target ([`Sizer::fewest_on`]). The
//!   rate estimate then serves the backlog rule and the sampling margin only.
//! - **The model's answer** is the fewest workers whose predicted p99 meets the target at the
//!   estimated rate raised by [`HEADROOM`] (5%): the count steps at rates the model puts right at
//!   the target, and the headroom keeps the pool off the step's edge, where a window's p99
//!   (the 99th percentile of a second's jobs) misses about half the time.
//! - **The window's own noise**: the target is met or missed by each second's p99, the 99th
//!   percentile of a few hundred jobs, which scatters around the model's p99 by its sampling
//!   error; the model is asked for the target less 1.645 of those standard deviations
//!   ([`model_target`]), so that 95% of windows meet it.
//! - **A backlog** in the queue adds what drains it within the target: with c workers of holding
//!   time h the spare rate is c/h − λ, so Q waiting jobs drain within the target T when
//!   c ≥ λh + Qh/T. The count is the larger of the model's answer and that.
//! - **Up at once, down slowly.** A count above the present one is set at once: a short pool's
//!   queue grows every second it is left short. A count below it is set only after
//!   [`COOLDOWN`] windows in a row asked for less, and then to the most any of those windows
//!   asked for (the Kubernetes autoscaler's scale-down stabilisation), giving up at most
//!   [`down_step`] (half the pool) at once: a single quiet window must not give up capacity
//!   the next one needs, and a steady load whose noise crosses one of the model's steps moves
//!   the count by one at most every cool-down, never back and forth every window (`tests/`
//!   below). A transient backlog (a stall at start, a burst) that sent the count up is given
//!   back within two cool-downs, not a worker per cool-down (before this rule, one stall at
//!   the start of a run held 16 workers where 5 to 8 were needed for 40 s).
//!
//! - **A downstream the settings do not describe** is fitted from the windows themselves: with
//!   no `contention`/`coherency`/`capacity` given, each window's (worker count, busy time, jobs)
//!   goes into a USL fit ([`crate::model::usl_fit`]); once the fit has a peak the run has
//!   measured past (κ's interval clear of 0, N* inside the counts seen: the throughput really
//!   fell), the model sizes in front of that curve, and never past its peak. A count the pool
//!   leaves after one window counts by that window ([`Points::keeping_firsts`]): a backlog that
//!   sends 4 workers to 26 and then 40 gives the fit its three counts. A pool sent straight to
//!   its bound has two; a window there that still has jobs waiting yet completes fewer a second
//!   than a smaller count did measures the count between the two next (`SloLimit::probe`).
//!   A pool found past a peak is brought back to it at once.
//!
//! With no pool meeting the target (the service time alone misses it) it holds the count, at
//! least enough to keep up with the arrivals; before a downstream with a peak (configured or
//! fitted), never more than the peak's count, whatever the model or the backlog ask.

use super::sizer::{Recent, Sizer};
use super::{Bounds, Limiter, State, Window};
use crate::model::usl::Usl;
use crate::model::usl_points::Points;

/// How far a window below the rate estimate moves it.
pub const FALL: f64 = 0.1;
/// How far a window moves the holding-time average.
pub const HOLD_SMOOTHING: f64 = 0.3;
/// The rate the model sizes for is the estimate times 1 + this.
pub const HEADROOM: f64 = 0.05;
/// Windows in a row asking for fewer workers before one scale-down.
pub const COOLDOWN: u32 = 5;
/// The one-sided normal quantile of the share of windows the margin is for (95%).
pub const Z: f64 = 1.645;
/// On a replayed trace, the seconds of its latest arrivals the model simulates: long enough to
/// hold the trace's bursts and lulls, so the count is the one that meets the target through
/// them (a burst is over before a pool sized after it has started), not one per burst.
pub const LOOK_BACK_S: f64 = 60.0;

/// The p99 the model is asked for, so that a window's *measured* p99 meets `target_s` in 95% of
/// windows. A window's p99 is the 99th percentile of the n = rate × 1 s jobs it holds; its
/// sampling standard deviation is √(0.99 × 0.01 / n) / f(p99), with f the response time's
/// density there. Where the wait is short against the service (a pool that meets its target),
/// the tail is the service time's: for exponential service f(p99) = 0.01 / h, and a tail scale
/// of h × max(cv, 1) is taken for others (a conservative scale for low-variance service, whose
/// response tail is the wait's). The model is asked for the target less Z standard deviations,
/// but never for less than halfway from the service time's own p99 to the target: where
/// sampling noise alone would miss the target that often, the pool cannot help, and asking for
/// more would only add workers.
#[must_use]
pub fn model_target(target_s: f64, rate: f64, hold: f64, cv: f64, sizer: &Sizer) -> f64 {
    let n = rate.max(1.0) * super::WINDOW_S;
    let sd = hold * cv.max(1.0) * (0.99 / (0.01 * n)).sqrt();
    // In the model's own shape: a measured CV of 1.05 makes exponential jobs lognormal to the
    // model, whose p99 (27.1 ms at 5.3 ms) an exponential floor (24.4 ms) would ask it to beat
    // by a hair, with 21 workers.
    let shape = crate::model::service_shape(sizer.service_dist, cv);
    let service_p99 = crate::model::tail::service_quantile(shape, hold, cv, 0.99);
    (target_s - Z * sd).max(0.5 * (target_s + service_p99))
}

/// The most one scale-down gives up: half the pool (at least one worker).
#[must_use]
pub fn down_step(workers: usize) -> usize {
    (workers / 2).max(1)
}

pub struct SloLimit {
    target_s: f64,
    sizer: Sizer,
    count: usize,
    /// The rate estimate, jobs/s (`None` before the first window).
    rate: Option<f64>,
    hold: Option<f64>,
    /// Windows in a row that asked for fewer workers, and the most any of them asked for.
    below: u32,
    below_most: usize,
    state: State,
    /// The windows summed per worker count, when the settings give no downstream.
    points: Option<Points>,
    /// A replayed trace's latest arrivals, for the next update.
    recent: Option<Recent>,
}

impl SloLimit {
    #[must_use]
    pub fn new(workers: usize, target_s: f64, sizer: Sizer) -> SloLimit {
        let points = sizer.downstream.is_none().then(Points::keeping_firsts);
        SloLimit {
            target_s,
            sizer,
            count: workers.max(1),
            rate: None,
            hold: None,
            below: 0,
            below_most: 0,
            state: State::Starting,
            points,
            recent: None,
        }
    }

    /// The downstream the model sizes in front of: the fitted curve, once it has a peak the run
    /// has measured past; none before.
    #[must_use]
    pub fn downstream(&self) -> Usl {
        self.sizer.downstream
    }

    /// Adds the window to the fit, and sizes in front of the fitted curve when it has a peak
    /// inside the counts measured (an extrapolated peak, or a plateau, leaves the model alone).
    #[allow(clippy::cast_precision_loss)]
    fn refit(&mut self, w: &Window) {
        let Some(points) = &mut self.points else { return };
        let workers = u32::try_from(w.workers).unwrap_or(u32::MAX);
        // A climb that leaves each count after one window must still give the fit its counts.
        points.push(workers, w.secs, w.completed, w.completed as f64 * w.service_s, false);
        if points.counts() < crate::model::usl_fit::MIN_COUNTS {
            return;
        }
        let fitted = points.fit().ok().and_then(|f| f.downstream().filter(|_| !f.peak_extrapolated));
        self.sizer = self.sizer.with_downstream(fitted.unwrap_or_default());
    }

    /// A count to measure next, when the fit lacks counts and this window shows a downstream
    /// pushing back: jobs still waited at its end, yet it completed fewer a second than a
    /// smaller count did. Without a third count the fit cannot say where the peak is, and a
    /// pool sent to its bound by the backlog would stay there; the count between the two
    /// (their geometric mean, a count not yet measured) is the one that places the peak.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn probe(&self, w: &Window) -> Option<usize> {
        let points = self.points.as_ref().filter(|p| p.counts() < crate::model::usl_fit::MIN_COUNTS)?;
        if w.waiting < 1.0 {
            return None;
        }
        let now = w.completed as f64 / w.secs.max(1e-9);
        let measured = points.points();
        let lower = measured
            .iter()
            .filter(|p| (p.workers as usize) < w.workers && p.throughput() > now)
            .max_by(|x, y| x.throughput().total_cmp(&y.throughput()))?;
        let mid = (f64::from(lower.workers) * w.workers as f64).sqrt().round() as usize;
        let fresh = |c: &usize| !measured.iter().any(|p| p.workers as usize == *c);
        Some(mid).filter(|m| *m > lower.workers as usize && *m < w.workers).filter(fresh)
    }

    /// The seam a fitted downstream comes in by: the model from now on uses `sizer`.
    pub fn set_sizer(&mut self, sizer: Sizer) {
        self.sizer = sizer;
    }
}

impl Limiter for SloLimit {
    fn ready(&self, w: &Window) -> bool {
        w.secs >= super::WINDOW_S - 1e-9
    }

    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn update(&mut self, w: &Window, b: &Bounds) -> usize {
        self.refit(w);
        let seen = w.arrived as f64 / w.secs.max(1e-9);
        let rate = match self.rate {
            Some(r) if seen < r => r + FALL * (seen - r),
            _ => seen,
        };
        self.rate = Some(rate);
        if w.completed > 0 && w.service_s > 0.0 {
            self.hold = Some(self.hold.map_or(w.service_s, |h| h + HOLD_SMOOTHING * (w.service_s - h)));
        }
        let Some(hold) = self.hold else {
            return b.clamp(self.count as f64) as usize;
        };
        let cv = if w.service_cv > 0.0 { w.service_cv } else { self.sizer.service_cv };
        let base = self.sizer.unstretched(hold, w.inflight);
        let asked = model_target(self.target_s, rate, hold, cv, &self.sizer);
        // A replayed trace is sized on its own latest arrivals, simulated (none past a fitted
        // downstream: the simulation has no stretch to apply).
        let recent = self.recent.take().filter(|_| self.sizer.downstream.is_none());
        let model = match &recent {
            Some(r) => self.sizer.fewest_on(r, base, cv, asked, HEADROOM),
            None => self.sizer.fewest(rate * (1.0 + HEADROOM), base, cv, asked),
        }
        .map(|c| c as usize);
        // Workers that keep up and drain the queue within the target.
        let drain = (rate * hold + w.waiting * hold / self.target_s).ceil() as usize;
        let want = match model {
            Some(m) => m.max(drain),
            None => self.count.max(drain + 1),
        };
        // Never past a downstream's peak: workers beyond it only slow every job, the backlog's
        // included; a pool found past it is brought back at once.
        let best = self.sizer.downstream.best_workers().map(|n| n as usize);
        let want = best.map_or(want, |best| want.min(best));
        let probe = self.probe(w);
        let want = b.clamp(probe.unwrap_or(want) as f64) as usize;
        if probe.is_some() || best.is_some_and(|best| self.count > best && want <= best) {
            self.count = want;
        }
        match want.cmp(&self.count) {
            std::cmp::Ordering::Greater => {
                self.count = want;
                self.below = 0;
            }
            std::cmp::Ordering::Less => {
                self.below_most = if self.below == 0 { want } else { self.below_most.max(want) };
                self.below += 1;
                if self.below >= COOLDOWN {
                    self.count = self.below_most.max(self.count - down_step(self.count));
                    self.below = 0;
                }
            }
            std::cmp::Ordering::Equal => self.below = 0,
        }
        self.count = b.clamp(self.count as f64) as usize;
        let cooldown = if want < self.count { COOLDOWN - self.below } else { 0 };
        self.state = State::Slo {
            rate_per_s: rate,
            hold_ms: hold * 1e3,
            hold_cv: cv,
            model: model.unwrap_or(0),
            backlog: drain.saturating_sub(model.unwrap_or(0)),
            cooldown,
        };
        self.count
    }

    fn reset_to(&mut self, workers: usize) {
        self.count = workers.max(1);
        self.below = 0;
    }

    fn limit(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let c = self.count as f64;
        c
    }

    fn state(&self) -> State {
        self.state
    }

    fn looks_back(&self) -> Option<f64> {
        Some(LOOK_BACK_S)
    }

    fn recent(&mut self, r: Recent) {
        self.recent = Some(r);
    }
}

#[cfg(test)]
#[path = "slo_tests.rs"]
mod tests;
