//! On/off arrivals: Poisson at λₒₙ = λ·(on + off)/on during each on-period, nothing during
//! the off-periods, so that the mean rate is λ. Approximate, in two regimes, each saying what
//! it leaves out:
//!
//! - **Bursts the pool can keep up with** (λₒₙ·E\[S\] < c): *quasi-static*. Every job arrives
//!   during a burst and, when bursts are long against the service time, meets the queue of a
//!   steady G/G/c at λₒₙ; so the figures are that queue's (Erlang C, Allen–Cunneen for other
//!   service distributions), at utilisation λ·E\[S\]/c overall. Each burst starts with an empty
//!   queue, so this is a little high for short bursts.
//! - **Bursts that overload the pool** (λₒₙ > cμ, μ = 1/E\[S\]): *fluid*. During a burst the
//!   backlog grows at λₒₙ − cμ and drains at cμ afterwards (by the next burst whenever λ < cμ).
//!   A job arriving t into a burst waits (λₒₙ/(cμ) − 1)·t, so waits are uniform on
//!   \[0, (λₒₙ/(cμ) − 1)·on\]: mean half the top, the q-quantile q times it. With a bound K
//!   (`reject`), the backlog stops at K: later arrivals of the burst are refused at rate
//!   λₒₙ − cμ, the admitted ones wait K/(cμ). What it leaves out is the randomness of the
//!   arrivals and services: the backlog at the end of a burst has a standard deviation of
//!   √((λₒₙ + cμ)·on) jobs (arrivals and departures both Poisson), σ of wait at cμ. The top
//!   percentiles come from the bursts with the most arrivals, so the prediction states 2σ as
//!   how far its figures can be off (the mean is off by far less: the bursts' excesses average
//!   out).
//!
//! Default workload (`--rate 500 --workers 4 --service 5ms`, on 200 ms, off 800 ms): λₒₙ =
//! 2,500/s against cμ = 800/s, mean wait 212.5 ms, p99 421 ms, stated error ±64 ms.

use super::{Inputs, ModelError, Prediction};

/// On/off arrivals in front of the pool: `base` carries the mean rate λ and everything else.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bursty {
    pub base: Inputs,
    /// On- and off-period lengths, seconds.
    pub on: f64,
    pub off: f64,
}

/// The bursty prediction.
///
/// # Errors
/// Inputs the model cannot take (see [`super::predict`]), or an on-period of 0.
pub fn predict(b: &Bursty) -> Result<Prediction, ModelError> {
    if !(b.on > 0.0 && b.on.is_finite() && b.off >= 0.0 && b.off.is_finite()) {
        return Err(ModelError::Invalid(format!(
            "burst on {} s, off {} s: expected an on-period above 0 and an off-period of 0 or more",
            b.on, b.off
        )));
    }
    let i = &b.base;
    let lambda_on = i.rate * (b.on + b.off) / b.on;
    let capacity = f64::from(i.workers) / i.service_mean;
    if lambda_on < capacity {
        let mut p = super::predict(&Inputs { rate: lambda_on, arrival_cv: 1.0, ..*i })?;
        p.method = "bursty: quasi-static G/G/c within bursts";
        p.exact = false;
        p.rho = i.rho();
        p.throughput_per_s = i.rate * (1.0 - p.p_reject.unwrap_or(0.0));
        let tq = p.wait_ms_mean.unwrap_or(0.0);
        p.queue_len_mean = Some(p.throughput_per_s * tq / 1e3);
        p.in_system_mean = p.latency_ms_mean.map(|w| p.throughput_per_s * w / 1e3);
        p.note = Some("approximate: assumes each burst long enough for the queue to settle".into());
        return Ok(p);
    }
    let mut p = Prediction::blank("bursty: fluid", false, i.rho(), i.rate);
    if i.rate >= capacity {
        p.stable = false;
        p.growth_per_s = Some(i.rate - capacity);
        p.note =
            Some(format!("unstable: ρ = {:.2} ≥ 1, the queue grows by about {:.0} jobs/s", i.rho(), i.rate - capacity));
        return Ok(p);
    }
    let slope = lambda_on / capacity - 1.0;
    // The backlog fills the bound (if any) `fill` seconds into the burst.
    let fill = i.queue.map_or(b.on, |k| (k as f64 / (lambda_on - capacity)).min(b.on));
    let admitted_on = lambda_on * fill + capacity * (b.on - fill);
    let refused = 1.0 - admitted_on / (lambda_on * b.on);
    // Waits: uniform on [0, slope·fill] for the jobs before the bound fills, slope·fill after.
    let (before, after) = (lambda_on * fill / admitted_on, capacity * (b.on - fill) / admitted_on);
    let top = slope * fill;
    let wait_mean = before * top / 2.0 + after * top;
    let wait_quantile = |q: f64| if q <= before { top * q / before } else { top };
    let ms = |x: f64| Some(x * 1e3);
    p.throughput_per_s = i.rate * (1.0 - refused);
    if i.queue.is_some() {
        p.p_reject = Some(refused);
    }
    p.p_wait = Some(1.0);
    p.wait_ms_mean = ms(wait_mean);
    p.latency_ms_mean = ms(wait_mean + i.service_mean);
    p.queue_len_mean = Some(p.throughput_per_s * wait_mean);
    p.in_system_mean = Some(p.throughput_per_s * (wait_mean + i.service_mean));
    p.wait_ms_p50 = ms(wait_quantile(0.50));
    p.wait_ms_p90 = ms(wait_quantile(0.90));
    p.wait_ms_p99 = ms(wait_quantile(0.99));
    p.latency_ms_p50 = ms(wait_quantile(0.50) + i.service_mean);
    p.latency_ms_p90 = ms(wait_quantile(0.90) + i.service_mean);
    p.latency_ms_p99 = ms(wait_quantile(0.99) + i.service_mean);
    p.note = Some(format!("approximate (fluid): off by up to about ±{:.0} ms", error_s(b) * 1e3));
    Ok(p)
}

/// The fluid prediction's stated error, seconds: twice the standard deviation of a burst's
/// backlog, √((λₒₙ + cμ)·on) jobs, as wait at cμ.
#[must_use]
pub fn error_s(b: &Bursty) -> f64 {
    let i = &b.base;
    let lambda_on = i.rate * (b.on + b.off) / b.on;
    let capacity = f64::from(i.workers) / i.service_mean;
    2.0 * ((lambda_on + capacity) * b.on).sqrt() / capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_burst() -> Bursty {
        Bursty { base: Inputs::mmc(500.0, 0.005, 4), on: 0.2, off: 0.8 }
    }

    /// The default workload's figures, by hand (see the module docs).
    #[test]
    fn the_default_burst_overloads_and_drains() {
        let p = predict(&default_burst()).unwrap();
        assert!(!p.exact && p.method.contains("fluid"));
        assert!((p.wait_ms_mean.unwrap() - 212.5).abs() < 1e-9);
        assert!((p.wait_ms_p99.unwrap() - 0.99 * 425.0).abs() < 1e-9);
        assert!((error_s(&default_burst()) * 1e3 - 2.0 * (3300.0f64 * 0.2).sqrt() / 0.8).abs() < 1e-9);
        assert!(p.note.unwrap().contains("±64 ms"));
    }

    /// A bound stops the backlog: 2,500/s against 800/s fills 100 places in 1/17 s, and the rest
    /// of the burst's excess is refused.
    #[test]
    fn a_bound_refuses_the_excess() {
        let b = Bursty { base: Inputs { queue: Some(100), ..Inputs::mmc(500.0, 0.005, 4) }, ..default_burst() };
        let p = predict(&b).unwrap();
        let fill = 100.0 / 1700.0;
        let refused = 1700.0 * (0.2 - fill) / 500.0;
        assert!((p.p_reject.unwrap() - refused).abs() < 1e-12);
        assert!((p.wait_ms_p99.unwrap() - 125.0).abs() < 1e-9, "the bound's wait, 100 / 800 s");
    }

    /// Against an exact simulation of the same queue (Poisson arrivals at λₒₙ during each 200 ms
    /// burst, none in the 800 ms after, 4 workers serving first come first served, exponential
    /// 5 ms services) over 200 bursts: the mean wait and the p99 wait each within the error the
    /// model states.
    #[test]
    fn the_fluid_figures_are_within_their_stated_error_of_a_simulation() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp};
        let b = default_burst();
        let p = predict(&b).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let (gap, serve) = (Exp::new(2500.0).unwrap(), Exp::new(200.0).unwrap());
        let mut free = [0.0f64; 4];
        let mut waits = Vec::new();
        for burst in 0..200 {
            let start = f64::from(burst);
            let mut t = start + gap.sample(&mut rng);
            while t < start + 0.2 {
                let (i, &at) = free.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap();
                let begin = t.max(at);
                free[i] = begin + serve.sample(&mut rng);
                waits.push(begin - t);
                t += gap.sample(&mut rng);
            }
        }
        let mean = waits.iter().sum::<f64>() / waits.len() as f64 * 1e3;
        waits.sort_by(f64::total_cmp);
        let p99 = waits[waits.len() * 99 / 100] * 1e3;
        let stated = error_s(&b) * 1e3;
        assert!(
            (mean - p.wait_ms_mean.unwrap()).abs() <= stated,
            "mean wait: simulated {mean}, fluid {}",
            p.wait_ms_mean.unwrap()
        );
        assert!(
            (p99 - p.wait_ms_p99.unwrap()).abs() <= stated,
            "p99 wait: simulated {p99}, fluid {}",
            p.wait_ms_p99.unwrap()
        );
    }

    /// Bursts the pool keeps up with are an M/M/c at the on-rate.
    #[test]
    fn gentle_bursts_are_quasi_static() {
        let b = Bursty { base: Inputs::mmc(100.0, 0.005, 4), ..default_burst() };
        let p = predict(&b).unwrap();
        let steady = crate::model::predict(&Inputs::mmc(500.0, 0.005, 4)).unwrap();
        assert_eq!(p.wait_ms_mean, steady.wait_ms_mean);
        assert!((p.rho - 0.125).abs() < 1e-12 && (p.throughput_per_s - 100.0).abs() < 1e-9);
    }
}
