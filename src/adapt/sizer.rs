//! The model the `slo` controller and the run's hindsight reference size a pool with: the fewest
//! workers whose predicted p99 response time meets a target, for an arrival rate and a holding
//! time, with the queueing model that fits the run's arrivals.
//!
//! - Poisson and constant arrivals: Erlang C, Allen–Cunneen for
//!   other arrival and service CVs (the advisor's [`workers_needed`]).
//! - On/off (MMPP) arrivals: the bursty model ([`crate::model::bursty`]), quasi-static within
//!   bursts the pool keeps up with, fluid for bursts that overload it.
//! - A downstream that pushes back: the [`Usl`] the sizer holds. [`Sizer::of`] takes the one
//!   the run's settings configure; [`Sizer::with_downstream`] is the seam a fitted curve comes
//!   in by. The holding time measured in front of such a downstream is already stretched by it,
//!   so the controller divides the stretch out before asking the model (the model stretches it
//!   again for each pool size it tries).
//!
//! - A replayed trace: its own latest arrivals ([`Recent`]), replayed exactly through FIFO pools
//!   of each size ([`Sizer::fewest_on`], the trace model's simulation and search): a trace's
//!   bursts are what a fitted Poisson process smooths away, and a pool sized by it can be
//!   several times too small. In front of a downstream that pushes back the simulation has no
//!   stretch to apply, and the open model above sizes the trace instead.

use crate::model::Inputs;
use crate::model::advisor::{Target, workers_needed};
use crate::model::bursty::{self, Bursty};
use std::sync::Arc;

use crate::model::sample::ServiceSample;
use crate::model::trace::{Service, TraceInputs};
use crate::model::trace_search::fewest_toward;
use crate::model::usl::Usl;
use crate::settings::{ArrivalKind, MAX_WORKERS, Policy, ServiceDist, Settings};

/// The arrivals as the model sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// An open process with this inter-arrival CV (1: Poisson, 0: constant).
    Open { cv: f64 },
    /// Poisson bursts of these lengths (seconds), silent between.
    OnOff { on: f64, off: f64 },
}

/// A replayed trace's latest arrivals, as the engine hands them to the `slo` controller and the
/// run's hindsight reference takes them from each window.
#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    /// Instants, nanoseconds of trace time from the first (at speed 1).
    pub arrivals: Vec<u64>,
    /// Their service times (ns, as the replay scales them), when the trace has a column.
    pub service: Option<Vec<u64>>,
    /// The speed the replay runs the trace at (the `rate` knob over the trace's mean rate).
    pub speed: f64,
    /// Without a service column: the seed service times are drawn with, and the sample an
    /// `empirical` distribution draws from.
    pub seed: u64,
    pub sample: Option<Arc<ServiceSample>>,
}

/// What the model needs besides the rate and the holding time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizer {
    pub arrivals: Arrivals,
    pub service_dist: ServiceDist,
    /// The holding time's CV the settings give, used until the run has measured one.
    pub service_cv: f64,
    pub downstream: Usl,
}

impl Sizer {
    /// The model of a run with these settings, with the downstream they configure.
    #[must_use]
    pub fn of(s: &Settings) -> Sizer {
        let arrivals = match s.arrival {
            ArrivalKind::Constant => Arrivals::Open { cv: 0.0 },
            ArrivalKind::Bursty => Arrivals::OnOff { on: s.burst_on.as_secs_f64(), off: s.burst_off.as_secs_f64() },
            _ => Arrivals::Open { cv: 1.0 },
        };
        let service_cv = match s.service_dist {
            ServiceDist::Constant => 0.0,
            ServiceDist::Uniform | ServiceDist::Lognormal => s.service_cv,
            ServiceDist::Exponential | ServiceDist::Empirical => 1.0,
        };
        Sizer { arrivals, service_dist: s.service_dist, service_cv, downstream: Usl::of(s) }
    }

    /// The same model in front of another downstream (a curve fitted from the run's points).
    #[must_use]
    pub fn with_downstream(self, downstream: Usl) -> Sizer {
        Sizer { downstream, ..self }
    }

    /// The holding time with `busy` jobs inside the downstream, brought back to one job alone.
    #[must_use]
    pub fn unstretched(&self, hold_s: f64, busy: f64) -> f64 {
        if self.downstream.is_none() {
            return hold_s;
        }
        let inside = self.downstream.capacity.map_or(busy, |c| busy.min(f64::from(c)));
        hold_s / self.downstream.stretch(inside)
    }

    pub(crate) fn inputs(&self, rate: f64, hold_s: f64, cv: f64, workers: u32) -> Inputs {
        let (arrival_cv, service_cv) = match self.arrivals {
            Arrivals::Open { cv: a } => (a, cv),
            Arrivals::OnOff { .. } => (1.0, cv),
        };
        Inputs {
            rate,
            service_mean: hold_s,
            workers,
            queue: None,
            arrival_cv,
            service_cv,
            service_dist: self.service_dist,
            downstream: self.downstream,
        }
    }

    /// The fewest workers whose predicted p99 meets `target_s` at `rate` jobs/s with holding
    /// times of mean `hold_s` and coefficient of variation `cv`; `None` when no pool does.
    #[must_use]
    pub fn fewest(&self, rate: f64, hold_s: f64, cv: f64, target_s: f64) -> Option<u32> {
        if !(rate > 0.0 && hold_s > 0.0 && target_s > 0.0) {
            return (rate == 0.0).then_some(1);
        }
        match self.arrivals {
            Arrivals::Open { .. } => workers_needed(&self.inputs(rate, hold_s, cv, 1), Target::P99(target_s)).ok(),
            Arrivals::OnOff { on, off } => {
                let meets = |c: u32| {
                    let b = Bursty { base: self.inputs(rate, hold_s, cv, c), on, off };
                    bursty::predict(&b).ok().and_then(|p| p.latency_ms_p99).is_some_and(|p99| p99 / 1e3 <= target_s)
                };
                // p99 falls as workers are added: the first that meets it, from the mean load up.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let from = ((rate * hold_s).floor() as u32).max(1);
                let max = u32::try_from(MAX_WORKERS).unwrap_or(u32::MAX);
                let mut hi = from;
                while !meets(hi) {
                    if hi >= max {
                        return None;
                    }
                    hi = hi.saturating_mul(2).min(max);
                }
                let mut lo = from.saturating_sub(1).max(1).min(hi);
                if meets(lo) {
                    return Some(lo);
                }
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if meets(mid) { hi = mid } else { lo = mid }
                }
                Some(hi)
            }
        }
    }

    /// The fewest workers whose simulated p99 response over `recent`, run `1 + headroom` times
    /// faster, meets `target_s` (one for fewer than two arrivals; where the jobs' own times
    /// miss the target whatever the pool, the fewest that bring the p99 as low as any pool does), with holding times of mean `hold_s` (and coefficient of
    /// variation `cv` when they are drawn); `None` when no pool does. The trace's own service
    /// times, scaled to `hold_s`, keep their shape: scaling every service by k and the clock by
    /// k is the same queue in other units, so the simulation runs the trace k times faster on
    /// its own times against the target over k, and no scaled copy is made.
    #[must_use]
    pub fn fewest_on(&self, recent: &Recent, hold_s: f64, cv: f64, target_s: f64, headroom: f64) -> Option<u32> {
        if !(hold_s > 0.0 && target_s > 0.0 && recent.speed > 0.0) {
            return None;
        }
        if recent.arrivals.len() < 2 {
            // A lone job (or none) waits for nobody.
            return Some(1);
        }
        let speed = recent.speed * (1.0 + headroom);
        let (service, k) = match &recent.service {
            Some(v) => {
                #[allow(clippy::cast_precision_loss)]
                let own = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1e9;
                if own <= 0.0 {
                    return Some(1);
                }
                (Service::PerArrival(v), hold_s / own)
            }
            None => (
                Service::Drawn {
                    mean: hold_s,
                    cv,
                    dist: self.service_dist,
                    seed: recent.seed,
                    sample: recent.sample.as_deref(),
                },
                1.0,
            ),
        };
        let i = TraceInputs {
            arrivals: &recent.arrivals,
            speed: speed * k,
            service,
            workers: 1,
            queue: None,
            policy: Policy::Block,
        };
        // As many workers as jobs: nobody waits, the p99 is as low as any pool makes it.
        let max = u32::try_from(recent.arrivals.len().min(MAX_WORKERS)).unwrap_or(u32::MAX);
        fewest_toward(&i, target_s / k * 1e3, max).map(|p| p.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::predict;

    fn open() -> Sizer {
        Sizer {
            arrivals: Arrivals::Open { cv: 1.0 },
            service_dist: ServiceDist::Exponential,
            service_cv: 1.0,
            downstream: Usl::default(),
        }
    }

    #[test]
    fn the_fewest_meet_the_target_and_one_fewer_does_not() {
        let s = open();
        for rate in [400.0, 700.0, 1000.0] {
            let c = s.fewest(rate, 0.005, 1.0, 0.030).expect("a pool meets 30 ms");
            let p99 = |c| predict(&s.inputs(rate, 0.005, 1.0, c)).unwrap().latency_ms_p99;
            assert!(p99(c).is_some_and(|p| p <= 30.0), "{rate}: {c} workers: {:?}", p99(c));
            assert!(p99(c - 1).is_none_or(|p| p > 30.0), "{rate}: {} workers also meet it", c - 1);
        }
    }

    #[test]
    fn bursts_need_more_workers_than_their_mean_rate_says() {
        let on_off = Sizer { arrivals: Arrivals::OnOff { on: 0.25, off: 0.75 }, ..open() };
        let bursty = on_off.fewest(200.0, 0.005, 1.0, 0.050).expect("a pool meets it");
        let poisson = open().fewest(200.0, 0.005, 1.0, 0.050).expect("a pool meets it");
        let at_burst_rate = open().fewest(800.0, 0.005, 1.0, 0.050).expect("a pool meets it");
        assert!(bursty > poisson, "{bursty} vs {poisson}");
        assert!(
            bursty <= at_burst_rate,
            "the quasi-static regime is the burst rate's queue: {bursty} vs {at_burst_rate}"
        );
    }

    use crate::model::trace_search::fewest_workers;

    /// 10 s of on/off traffic: 250 ms bursts at 800 jobs/s every second, evenly spaced,
    /// silent between (a mean of 200/s), as nanosecond offsets.
    fn bursts() -> Vec<u64> {
        (0..10u64).flat_map(|s| (0..200u64).map(move |i| s * 1_000_000_000 + i * 1_250_000)).collect()
    }

    fn recent(service: Option<Vec<u64>>) -> Recent {
        Recent { arrivals: bursts(), service, speed: 1.0, seed: 3, sample: None }
    }

    #[test]
    fn a_trace_is_sized_by_its_own_bursts_not_its_mean_rate() {
        let s = open();
        let traced = s.fewest_on(&recent(None), 0.005, 1.0, 0.050, 0.0).expect("a pool meets it");
        let poisson = s.fewest(200.0, 0.005, 1.0, 0.050).expect("a pool meets it");
        // The bursts' own rate, 800/s, keeps four busy (800 × 5 ms); Poisson at 200/s asks two.
        assert!(traced >= 4 && traced >= 2 * poisson, "trace {traced}, Poisson at its mean rate {poisson}");
        // Exactly the trace model's search on the same inputs.
        let i = TraceInputs {
            arrivals: &recent(None).arrivals,
            speed: 1.0,
            service: Service::Drawn { mean: 0.005, cv: 1.0, dist: ServiceDist::Exponential, seed: 3, sample: None },
            workers: 1,
            queue: None,
            policy: Policy::Block,
        };
        assert_eq!(Some(traced), fewest_workers(&i, 50.0, 10_000).map(|p| p.workers));
        // Headroom runs the trace faster: never fewer workers.
        assert!(s.fewest_on(&recent(None), 0.005, 1.0, 0.050, 0.5).unwrap() >= traced);
    }

    #[test]
    fn a_traces_own_service_times_are_scaled_to_the_holding_time_without_a_copy() {
        // Alternating 2 ms and 8 ms (mean 5 ms), sized for a holding time of 10 ms: the same as
        // the column doubled, at the same speed.
        let column: Vec<u64> = (0..2000u64).map(|i| if i % 2 == 0 { 2_000_000 } else { 8_000_000 }).collect();
        let doubled: Vec<u64> = column.iter().map(|v| v * 2).collect();
        for target in [0.020, 0.040, 0.080] {
            let scaled = open().fewest_on(&recent(Some(column.clone())), 0.010, 0.0, target, 0.0);
            let i = TraceInputs {
                arrivals: &recent(None).arrivals,
                speed: 1.0,
                service: Service::PerArrival(&doubled),
                workers: 1,
                queue: None,
                policy: Policy::Block,
            };
            assert_eq!(scaled, fewest_workers(&i, target * 1e3, 10_000).map(|p| p.workers), "target {target}");
        }
    }

    #[test]
    fn where_the_jobs_own_times_miss_the_target_it_asks_for_the_pool_that_gets_closest() {
        // Ten jobs at once: a 100 ms one first, then nine of 1 ms. No pool meets 10 ms (the long
        // job's own time); two workers already give the floor, 100 ms (the long one on one,
        // the short ones one after another on the other), and one worker does not (109 ms).
        let mut column = vec![1_000_000u64; 10];
        column[0] = 100_000_000;
        let r = Recent { arrivals: vec![0; 10], service: Some(column.clone()), speed: 1.0, seed: 1, sample: None };
        let i = TraceInputs {
            arrivals: &r.arrivals,
            speed: 1.0,
            service: Service::PerArrival(&column),
            workers: 1,
            queue: None,
            policy: Policy::Block,
        };
        assert_eq!(fewest_workers(&i, 10.0, 10).map(|p| p.workers), None);
        assert_eq!(open().fewest_on(&r, 0.0109, 0.0, 0.010, 0.0), Some(2));
    }

    #[test]
    fn a_downstream_stretch_is_divided_out() {
        let u = Usl { contention: 0.1, coherency: 0.01, capacity: None };
        let s = open().with_downstream(u);
        let measured = 0.005 * u.stretch(6.0);
        assert!((s.unstretched(measured, 6.0) - 0.005).abs() < 1e-12);
        assert!((open().unstretched(measured, 6.0) - measured).abs() < 1e-12);
    }
}
