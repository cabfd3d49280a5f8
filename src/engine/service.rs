//! Service times: drawing a job's demand at arrival, and doing the work at a worker.
//!
//! The demand is drawn by the producer from its own seeded generator, so the same `--seed` gives
//! the same sequence of service demands whichever worker picks each job up. The *kind* of work
//! is read when the job starts, so switching `sleep` to `offload` applies to the next job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::timer::Timer;
use crate::model::draw::Draw;
use crate::model::sample::ServiceSample;
use crate::settings::{ServiceKind, Settings};

/// Draws service demands, by the model's own draw ([`Draw`]), so a simulation of the run draws
/// alike.
pub struct Sampler {
    rng: SmallRng,
    /// The run's sample, drawn from while `service_dist = empirical`.
    sample: Option<Arc<ServiceSample>>,
}

impl Sampler {
    #[must_use]
    pub fn new(seed: u64, sample: Option<Arc<ServiceSample>>) -> Self {
        Self { rng: SmallRng::seed_from_u64(seed), sample }
    }

    /// One demand for the current settings, never negative and never above an hour.
    pub fn draw(&mut self, s: &Settings) -> Duration {
        let secs = Draw::of(s, self.sample.as_deref()).secs(&mut self.rng);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO)
    }
}

pub fn kind_code(k: ServiceKind) -> u8 {
    match k {
        ServiceKind::Sleep => 0,
        ServiceKind::Spin => 1,
        ServiceKind::Block => 2,
        ServiceKind::Offload => 3,
    }
}

fn kind_of(code: u8) -> ServiceKind {
    match code {
        1 => ServiceKind::Spin,
        2 => ServiceKind::Block,
        3 => ServiceKind::Offload,
        _ => ServiceKind::Sleep,
    }
}

/// Does `demand` worth of work of the current kind, starting at `start`.
pub async fn serve(kind: &AtomicU8, timer: &Timer, start: Instant, demand: Duration) {
    if demand.is_zero() {
        return;
    }
    match kind_of(kind.load(Ordering::Relaxed)) {
        ServiceKind::Sleep => timer.sleep_until(start + demand).await,
        ServiceKind::Spin => {
            let end = start + demand;
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        }
        ServiceKind::Block => std::thread::sleep(demand),
        ServiceKind::Offload => {
            // spawn_blocking boxes the closure: one allocation per job, inherent to offloading.
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(demand)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ServiceDist;

    /// Mean and CV of 200,000 draws, each within 4 standard errors estimated from the sample
    /// itself: the mean's standard error is sd/√n; the standard deviation's is about
    /// ½·√((m4 − m2²)/n)/m2 of it (delta method on the second moment), which is what lets the
    /// heavy-tailed lognormal have a wider band than the exponential without a hand-picked number.
    #[test]
    fn draws_have_the_configured_mean_and_cv() {
        let n = 200_000u32;
        let nf = f64::from(n);
        for (dist, cv) in [
            (ServiceDist::Constant, 0.0),
            (ServiceDist::Exponential, 1.0),
            (ServiceDist::Uniform, 0.5),
            (ServiceDist::Lognormal, 2.0),
        ] {
            let s = Settings {
                service: Duration::from_millis(4),
                service_dist: dist,
                service_cv: cv,
                ..Settings::default()
            };
            let mut sampler = Sampler::new(7, None);
            let (mut m1, mut m2, mut m4) = (0.0, 0.0, 0.0);
            for _ in 0..n {
                let x = sampler.draw(&s).as_secs_f64() * 1000.0;
                m1 += x / nf;
                m2 += x * x / nf;
                m4 += x * x * x * x / nf;
            }
            let sd = (m2 - m1 * m1).max(0.0).sqrt();
            let mean_tol = 4.0 * sd / nf.sqrt() + 1e-9;
            assert!((m1 - 4.0).abs() <= mean_tol, "{dist}: mean {m1} ms, tolerance {mean_tol}");
            let sd_rel_se = 0.5 * ((m4 - m2 * m2).max(0.0) / nf).sqrt() / m2;
            let cv_tol = 4.0 * (sd_rel_se + sd / m1 / nf.sqrt()) * cv + 1e-9;
            let want = crate::model::draw::cv_of(&s, None);
            assert!((sd / m1 - want).abs() <= cv_tol, "{dist}: cv {} want {want} tolerance {cv_tol}", sd / m1);
        }
    }

    #[test]
    fn same_seed_same_draws() {
        let s = Settings::default();
        let (mut a, mut b) = (Sampler::new(3, None), Sampler::new(3, None));
        for _ in 0..100 {
            assert_eq!(a.draw(&s), b.draw(&s));
        }
    }
}
