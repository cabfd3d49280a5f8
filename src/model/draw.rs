//! One service-time draw, for the engine's producer and the model's trace simulation alike, so a
//! simulation draws what a run draws: a named distribution around a mean (with a coefficient of
//! variation for uniform and lognormal), or the empirical sample scaled to the mean. And the
//! coefficient of variation the service really has ([`cv_of`]), which the formulas take.
//!
//! Every draw is in seconds, never negative and never above [`MAX_SECS`]. A distribution built
//! from settings that cannot hold (no mean, a CV of 0, `empirical` without a sample, which the
//! engine and the command line refuse) draws the mean itself.

use rand::RngExt;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp, LogNormal};

use super::sample::ServiceSample;
use crate::settings::{ServiceDist, Settings};

/// The longest service time drawn: an hour.
pub const MAX_SECS: f64 = 3600.0;

/// A service-time distribution, ready to draw from.
#[derive(Debug, Clone)]
pub enum Draw<'a> {
    Constant(f64),
    Exp(Exp<f64>),
    Uniform(f64, f64),
    LogNormal(LogNormal<f64>),
    /// The sample's quantile at a uniform u, times the scale that gives the mean.
    Sample(&'a ServiceSample, f64),
}

impl<'a> Draw<'a> {
    /// The distribution with mean `mean` seconds: `dist` with coefficient of variation `cv`
    /// (uniform and lognormal take it), or `sample` scaled to the mean for `empirical`.
    #[must_use]
    pub fn new(mean: f64, cv: f64, dist: ServiceDist, sample: Option<&'a ServiceSample>) -> Draw<'a> {
        let mean = mean.max(0.0);
        match (dist, sample) {
            _ if mean == 0.0 => Draw::Constant(0.0),
            (ServiceDist::Exponential, _) => Exp::new(1.0 / mean).map_or(Draw::Constant(mean), Draw::Exp),
            (ServiceDist::Uniform, _) if cv > 0.0 => {
                let half = mean * 3f64.sqrt() * cv;
                Draw::Uniform((mean - half).max(0.0), mean + half)
            }
            (ServiceDist::Lognormal, _) if cv > 0.0 => {
                let sigma2 = (1.0 + cv * cv).ln();
                LogNormal::new(mean.ln() - sigma2 / 2.0, sigma2.sqrt()).map_or(Draw::Constant(mean), Draw::LogNormal)
            }
            (ServiceDist::Empirical, Some(s)) => Draw::Sample(s, s.scale_to(mean) * 1e-9),
            _ => Draw::Constant(mean),
        }
    }

    /// The distribution `s` asks for, drawing from `sample` when it is `empirical`.
    #[must_use]
    pub fn of(s: &Settings, sample: Option<&'a ServiceSample>) -> Draw<'a> {
        Draw::new(s.service.as_secs_f64(), s.service_cv, s.service_dist, sample)
    }

    /// One service time, seconds.
    pub fn secs(&self, rng: &mut SmallRng) -> f64 {
        let secs = match self {
            Draw::Constant(m) => *m,
            Draw::Exp(e) => e.sample(rng),
            Draw::Uniform(lo, hi) => rng.random_range(*lo..=*hi),
            Draw::LogNormal(l) => l.sample(rng),
            Draw::Sample(s, scale) => s.quantile(rng.random::<f64>()) * scale,
        };
        secs.clamp(0.0, MAX_SECS)
    }
}

/// The coefficient of variation of service times under `dist`: 0 constant, 1 exponential, `cv`
/// for uniform and lognormal, the sample's own for `empirical` (`cv` without one).
#[must_use]
pub fn cv(dist: ServiceDist, cv: f64, sample: Option<&ServiceSample>) -> f64 {
    match (dist, sample) {
        (ServiceDist::Constant, _) => 0.0,
        (ServiceDist::Exponential, _) => 1.0,
        (ServiceDist::Empirical, Some(s)) => s.cv(),
        (ServiceDist::Uniform | ServiceDist::Lognormal | ServiceDist::Empirical, _) => cv,
    }
}

/// The coefficient of variation the service of `s` really has, whatever `service_cv` says.
#[must_use]
pub fn cv_of(s: &Settings, sample: Option<&ServiceSample>) -> f64 {
    cv(s.service_dist, s.service_cv, sample)
}
