//! A downstream that pushes back: the Universal Scalability Law (Gunther). With N jobs inside
//! the downstream, each takes S·(1 + σ(N−1) + κN(N−1)), so the downstream completes
//! X(N) = N / (S·(1 + σ(N−1) + κN(N−1))) jobs a second: contention σ makes extra concurrency pay
//! less and less, coherency κ makes it cost, and X peaks at N* = √((1−σ)/κ). A `capacity` C
//! lets at most C jobs inside at once; the rest wait inside it, holding their workers.
//!
//! **The engine** stretches each job's service by the factor at its start (N counted with the
//! job itself), rather than sharing the downstream among the jobs inside as they come and go
//! (processor sharing): one multiplication a job, no timer re-armed at every arrival and
//! departure, and the same X(N) whenever the number inside holds still, which is what a pool
//! of N busy workers in steady state is.
//!
//! **The model** of an open pool in front of it is a birth–death chain on the jobs in the
//! system, k: arrivals at λ (refused when the queue is full), completions at X(min(k, c, C))
//! with c workers. For exponential service under processor sharing it is exact; here it is an
//! approximation (stretch at start), and with σ = κ = 0 and no capacity limit it is M/M/c.

use super::tail::Tail;
use super::{Inputs, ModelError, Percentiles, Prediction};

/// The downstream's scalability: no contention, no coherency, no capacity limit by default.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Usl {
    pub contention: f64,
    pub coherency: f64,
    /// At most this many jobs inside at once (`None`: no limit).
    pub capacity: Option<u32>,
}

/// States the unbounded chain sums before its geometric tail (a pool has at most this many
/// workers, so every state with a free worker is summed exactly).
const MAX_STATES: u64 = 200_000;

impl Usl {
    /// The downstream a run's settings describe (a capacity at its maximum is no limit).
    #[must_use]
    pub fn of(s: &crate::settings::Settings) -> Usl {
        let capacity =
            (s.capacity < crate::settings::MAX_WORKERS).then(|| u32::try_from(s.capacity).unwrap_or(u32::MAX));
        Usl { contention: s.contention, coherency: s.coherency, capacity }
    }

    /// No downstream effect at all: the model is the plain queue's.
    #[must_use]
    pub fn is_none(&self) -> bool {
        self.contention == 0.0 && self.coherency == 0.0 && self.capacity.is_none()
    }

    /// The service-time factor with `n` jobs inside: 1 + σ(n−1) + κn(n−1).
    #[must_use]
    pub fn stretch(&self, n: f64) -> f64 {
        let n = n.max(1.0);
        1.0 + self.contention * (n - 1.0) + self.coherency * n * (n - 1.0)
    }

    /// Jobs inside the downstream when `busy` workers hold jobs.
    #[must_use]
    pub fn inside(&self, busy: u32) -> u32 {
        self.capacity.map_or(busy, |c| busy.min(c))
    }

    /// Completions a second with `busy` workers holding jobs of mean service `s` seconds.
    #[must_use]
    pub fn throughput(&self, busy: u32, s: f64) -> f64 {
        let n = self.inside(busy);
        if n == 0 { 0.0 } else { f64::from(n) / (s * self.stretch(f64::from(n))) }
    }

    /// The concurrency of peak throughput, N* = √((1−σ)/κ); `None` without coherency (throughput
    /// then only flattens).
    #[must_use]
    pub fn peak(&self) -> Option<f64> {
        (self.coherency > 0.0).then(|| ((1.0 - self.contention).max(0.0) / self.coherency).sqrt())
    }

    /// The fewest workers that reach the highest throughput: ⌊N*⌋ or ⌈N*⌉, whichever gives
    /// more, and never past the capacity (workers beyond it only wait inside). `None` when more
    /// workers always help.
    #[must_use]
    pub fn best_workers(&self) -> Option<u32> {
        let best = self.peak().map(|n| {
            let (lo, hi) = ((n.floor() as u32).max(1), (n.ceil() as u32).max(1));
            if self.throughput(hi, 1.0) > self.throughput(lo, 1.0) { hi } else { lo }
        });
        match (best, self.capacity) {
            (Some(b), Some(c)) => Some(b.min(c)),
            (b, c) => b.or(c),
        }
    }
}

/// Predicts an open pool of `i.workers` in front of the downstream `i.downstream`.
pub(crate) fn predict(i: &Inputs, which: Percentiles) -> Result<(Prediction, Option<Tail>), ModelError> {
    let u = i.downstream;
    let (c, s, lambda) = (i.workers, i.service_mean, i.rate);
    let mu = |k: u64| u.throughput(u32::try_from(k.min(u64::from(c))).unwrap_or(c), s);
    let full = i.queue.map(|q| u64::from(c) + q);
    let method = "M/M/c before a USL downstream (birth–death)";
    // Unnormalised π_k: π_0 = 1, π_k = π_{k−1}·λ/μ_k, summed with k·π_k and (k − c)⁺·π_k.
    let (mut p, mut sum, mut l, mut lq, mut busy, mut waits) = (1.0f64, 1.0f64, 0.0, 0.0, 0.0, 0.0);
    let last = full.unwrap_or(u64::from(c)).min(MAX_STATES);
    for k in 1..=last {
        p *= lambda / mu(k);
        if !p.is_finite() {
            return Err(ModelError::Invalid("the downstream model overflowed; expected a smaller load".into()));
        }
        sum += p;
        #[allow(clippy::cast_precision_loss)]
        let kf = k as f64;
        l += kf * p;
        lq += (kf - f64::from(c)).max(0.0) * p;
        busy += kf.min(f64::from(c)) * p;
        if k >= u64::from(c) && full.is_none_or(|f| k < f) {
            waits += p;
        }
    }
    let mut stable = true;
    if full.is_none() {
        // All c workers busy from here on: a geometric tail with ratio λ/X(c).
        let r = lambda / mu(u64::from(c));
        if r >= 1.0 {
            stable = false;
        } else {
            let (pc, cf) = (p, f64::from(c));
            let tail = pc * r / (1.0 - r);
            sum += tail;
            l += pc * (cf * r / (1.0 - r) + r / ((1.0 - r) * (1.0 - r)));
            lq += pc * r / ((1.0 - r) * (1.0 - r));
            busy += cf * tail;
            waits += tail;
        }
    }
    let peak = u.throughput(u.best_workers().unwrap_or(c).min(c), s);
    let mut pred = Prediction::blank(method, false, 0.0, lambda);
    if !stable {
        pred.stable = false;
        pred.rho = lambda / mu(u64::from(c));
        pred.throughput_per_s = mu(u64::from(c));
        pred.growth_per_s = Some(lambda - mu(u64::from(c)));
        pred.note = Some(format!(
            "unstable: the downstream completes at most {:.0} jobs/s with {c} workers (peak {peak:.0}/s), below the {lambda:.0}/s offered",
            mu(u64::from(c))
        ));
        return Ok((pred, None));
    }
    let p_full = full.map_or(0.0, |_| p / sum);
    let x = lambda * (1.0 - p_full);
    let (l, lq) = (l / sum, lq / sum);
    pred.rho = busy / sum / f64::from(c);
    pred.throughput_per_s = x;
    pred.p_reject = full.map(|_| p_full);
    let p_wait = if full.is_some() { waits / sum / (1.0 - p_full).max(1e-300) } else { waits / sum };
    pred.p_wait = Some(p_wait);
    let (w, wq) = if x > 0.0 { (l / x, lq / x) } else { (s, 0.0) };
    pred.wait_ms_mean = Some(wq * 1e3);
    pred.latency_ms_mean = Some(w * 1e3);
    pred.queue_len_mean = Some(lq);
    pred.in_system_mean = Some(l);
    // Percentiles: the wait's exponential tail matched to its mean, over a service whose mean is
    // the time a job holds its worker under this load.
    let theta = if wq > 0.0 { p_wait / wq } else { f64::INFINITY };
    let tail = Tail::new(p_wait, theta, (w - wq).max(1e-9), i.service_cv, super::shape(i));
    if which == Percentiles::All {
        pred.wait_ms_p50 = Some(tail.wait_quantile(0.50) * 1e3);
        pred.wait_ms_p90 = Some(tail.wait_quantile(0.90) * 1e3);
        pred.wait_ms_p99 = Some(tail.wait_quantile(0.99) * 1e3);
        pred.latency_ms_p50 = Some(tail.response_quantile(0.50) * 1e3);
        pred.latency_ms_p90 = Some(tail.response_quantile(0.90) * 1e3);
    }
    if which != Percentiles::None {
        pred.latency_ms_p99 = Some(tail.response_quantile(0.99) * 1e3);
    }
    pred.note = Some(match u.peak() {
        Some(n) => format!("downstream peaks at N* = {n:.1} jobs inside ({peak:.0} jobs/s); approximate percentiles"),
        None => "a downstream with contention: approximate percentiles".into(),
    });
    Ok((pred, Some(tail)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Inputs, predict as predict_plain};

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn the_law_and_its_peak() {
        let u = Usl { contention: 0.1, coherency: 0.01, capacity: None };
        assert!((u.stretch(1.0) - 1.0).abs() < 1e-12);
        assert!((u.stretch(10.0) - (1.0 + 0.9 + 0.9)).abs() < 1e-12);
        let n = u.peak().unwrap();
        assert!((n - 90f64.sqrt()).abs() < 1e-12);
        // X rises to N* and falls after it.
        let x = |k: u32| u.throughput(k, 0.005);
        assert!(x(5) < x(9) && x(9) > x(20) && x(20) > x(40));
        assert_eq!(u.best_workers(), Some(9), "X(9) = {} > X(10) = {}", x(9), x(10));
        // A capacity below N* is the best pool: more workers only wait inside.
        assert_eq!(Usl { capacity: Some(4), ..u }.best_workers(), Some(4));
        assert_eq!(Usl { contention: 0.2, ..Usl::default() }.best_workers(), None);
    }

    /// With σ = κ = 0 the chain is M/M/c: the same means as Erlang C, bounded or not.
    #[test]
    fn without_contention_it_is_the_plain_queue() {
        let none = Usl { contention: 0.0, coherency: 0.0, capacity: Some(1000) };
        for queue in [None, Some(50)] {
            let i = Inputs { queue, downstream: none, ..Inputs::mmc(3000.0, 0.001, 4) };
            let plain = predict_plain(&Inputs { downstream: Usl::default(), ..i }).unwrap();
            let (chain, _) = predict(&i, Percentiles::All).unwrap();
            for (name, a, b) in [
                ("wait", chain.wait_ms_mean, plain.wait_ms_mean),
                ("latency", chain.latency_ms_mean, plain.latency_ms_mean),
                ("queue", chain.queue_len_mean, plain.queue_len_mean),
                ("p_wait", chain.p_wait, plain.p_wait),
            ] {
                assert!(rel(a.unwrap(), b.unwrap()) < 1e-9, "{queue:?} {name}: {a:?} against {b:?}");
            }
            assert!(rel(chain.throughput_per_s, plain.throughput_per_s) < 1e-9);
        }
    }

    /// The advisor sizes the pool below the peak, and says so when even the peak misses.
    #[test]
    fn the_advisor_never_goes_past_the_peak() {
        use crate::model::advisor::{self, Target};
        let u = Usl { contention: 0.1, coherency: 0.01, capacity: None };
        let i = Inputs { downstream: u, ..Inputs::mmc(400.0, 0.005, 2) };
        let n = advisor::workers_needed(&i, Target::P99(0.2)).unwrap();
        assert!((1..=9).contains(&n), "{n} workers");
        // 700/s is within the peak's 714/s, but only with a queue no p99 of 100 ms survives.
        let e = advisor::workers_needed(&Inputs { rate: 700.0, ..i }, Target::P99(0.1)).unwrap_err();
        assert!(e.contains("best pool (9 workers"), "{e}");
        // The highest rate a pool sustains is the downstream's, not c/S.
        let r = advisor::max_rate(&Inputs { workers: 30, ..i }, Target::P99(10.0)).unwrap();
        assert!(r < u.throughput(30, 0.005), "{r}");
    }

    /// Past N*, more workers make a saturated pool slower: less throughput, longer waits.
    #[test]
    fn more_workers_past_the_peak_make_it_worse() {
        let u = Usl { contention: 0.1, coherency: 0.01, capacity: None };
        let at = |c: u32| {
            predict(&Inputs { queue: Some(100), downstream: u, ..Inputs::mmc(2000.0, 0.005, c) }, Percentiles::All)
                .unwrap()
                .0
        };
        let (best, over) = (at(9), at(24));
        assert!(
            over.throughput_per_s < best.throughput_per_s * 0.8,
            "{} against {}",
            over.throughput_per_s,
            best.throughput_per_s
        );
        assert!(over.latency_ms_mean > best.latency_ms_mean);
        // The completions a saturated pool of 9 can give: X(9) = 9 / (5 ms · (1 + 0.8 + 0.72)).
        assert!(rel(best.throughput_per_s, 9.0 / (0.005 * 2.52)) < 1e-3, "{}", best.throughput_per_s);
    }
}
