//! The model the `slo` controller and the run's hindsight reference size a pool with: the fewest
//! workers whose predicted p99 response time meets a target, for an arrival rate and a holding
//! time, with the queueing model that fits the run's arrivals.
//!
//! - Poisson and constant arrivals (and a replayed trace, for now): Erlang C, Allen–Cunneen for
//!   other arrival and service CVs (the advisor's [`workers_needed`]).
//! - On/off (MMPP) arrivals: the bursty model ([`crate::model::bursty`]), quasi-static within
//!   bursts the pool keeps up with, fluid for bursts that overload it.
//! - A downstream that pushes back: the [`Usl`] the sizer holds. [`Sizer::of`] takes the one
//!   the run's settings configure; [`Sizer::with_downstream`] is the seam a fitted curve comes
//!   in by. The holding time measured in front of such a downstream is already stretched by it,
//!   so the controller divides the stretch out before asking the model (the model stretches it
//!   again for each pool size it tries).
//!
//! A replayed trace would be sized best by its own simulation (`model::trace_run`); that costs a
//! simulation per candidate pool each window, so a trace is sized as an open process with the
//! arrival CV the run measured, and says so in the run's notes.

use crate::model::Inputs;
use crate::model::advisor::{Target, workers_needed};
use crate::model::bursty::{self, Bursty};
use crate::model::usl::Usl;
use crate::settings::{ArrivalKind, MAX_WORKERS, ServiceDist, Settings};

/// The arrivals as the model sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// An open process with this inter-arrival CV (1: Poisson, 0: constant).
    Open { cv: f64 },
    /// Poisson bursts of these lengths (seconds), silent between.
    OnOff { on: f64, off: f64 },
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

    #[test]
    fn a_downstream_stretch_is_divided_out() {
        let u = Usl { contention: 0.1, coherency: 0.01, capacity: None };
        let s = open().with_downstream(u);
        let measured = 0.005 * u.stretch(6.0);
        assert!((s.unstretched(measured, 6.0) - 0.005).abs() < 1e-12);
        assert!((open().unstretched(measured, 6.0) - measured).abs() < 1e-12);
    }
}
