//! The advisor on a trace: the fewest workers, and the highest traffic growth, that keep the
//! simulated p99 response within a target, each by bisection over exact replays
//! ([`super::trace::simulate`]); and the fitted Poisson model's answer beside it.
//!
//! Drawn service uses the one seed in the inputs for every replay (common random numbers: job
//! j needs the same time at every pool size and speed), so the answer is for that draw.
//!
//! # Monotonicity
//! Without refusals (block, or no bound) each job's wait cannot grow when a worker is added,
//! for the same arrivals and demands. Sort the workers' remaining work at an arrival into a
//! vector (Kiefer–Wolfowitz): the job waits its least component, then adds its demand to it,
//! and the clock moves to the next arrival. Claim: the c largest components with c + 1 workers
//! are each at most the c components with c workers (true at the start, all 0). It survives a
//! step: for every t, the number of components above t with c + 1 workers, capped at c, is at
//! most the number with c (pair the least with the least and the (k+1)-th with the k-th; the
//! one left over is above t only if all c components with c workers are), and subtracting the
//! time to the next arrival and clipping at 0 keep it. The wait, the least component, is then
//! at most the second least, at most the least with c workers. So p99 is monotone in c and the bisection is exact. Under reject or
//! drop-oldest more workers admit other jobs, so the completed set and its p99 can move the
//! other way; after the bisection [`fewest_workers`] therefore scans down while N − 1 still
//! meets the target. Speed has no such guarantee (a periodic trace can fit a pool better at a
//! higher rate): [`highest_speed`] returns a speed verified to meet the target, with a failing
//! one within 2% above it, not necessarily the supremum of all meeting speeds.

use std::collections::BTreeMap;

use super::advisor::{self, Target};
use super::trace::{TraceInputs, poisson_equivalent};

/// [`fewest_workers`]'s answer: the count and the simulated p99 response (ms) beside it. (Not
/// `Sized`, which would shadow `std::marker::Sized` wherever it is imported.)
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PoolSize {
    pub workers: u32,
    pub p99_ms: f64,
    /// At `workers − 1` (`None` for 1 worker): above the target.
    pub p99_ms_fewer: Option<f64>,
    /// At `workers + 1`.
    pub p99_ms_more: f64,
    /// Replays the search took.
    pub simulations: u32,
}

/// Above this growth factor [`highest_speed`] stops doubling: a pool that meets the target
/// here meets it with the trace's arrivals all but simultaneous.
pub const MAX_SPEED: f64 = 1_048_576.0;

/// The replay's p99 response, ms.
fn p99(i: &TraceInputs) -> f64 {
    super::trace::run_p99(i)
}

/// The fewest workers whose simulated p99 response ≤ `target_p99_ms` (`None` if even
/// `max_workers` fails), with the p99 at N − 1, N and N + 1. O(log N) replays: doubling from 1,
/// bisection, then the scan down described in the module doc.
///
/// # Panics
/// As [`super::trace::simulate`] (`max_workers` 0 included).
#[must_use]
pub fn fewest_workers(i: &TraceInputs, target_p99_ms: f64, max_workers: u32) -> Option<PoolSize> {
    search(i, target_p99_ms, max_workers, false)
}

/// As [`fewest_workers`], but where even `max_workers` misses the target (the jobs' own times
/// miss it), the fewest workers whose p99 is as low as `max_workers` gives: a controller still
/// needs a count. Always `Some` (the type is [`fewest_workers`]'s).
///
/// # Panics
/// As [`super::trace::simulate`] (`max_workers` 0 included).
#[must_use]
pub fn fewest_toward(i: &TraceInputs, target_p99_ms: f64, max_workers: u32) -> Option<PoolSize> {
    search(i, target_p99_ms, max_workers, true)
}

/// The search of [`fewest_workers`]; with `floor`, the target is raised to the p99 at
/// `max_workers` (one replay, shared with the search).
fn search(i: &TraceInputs, target_p99_ms: f64, max_workers: u32, floor: bool) -> Option<PoolSize> {
    let mut seen = BTreeMap::new();
    let mut at = |c: u32| *seen.entry(c).or_insert_with(|| p99(&TraceInputs { workers: c, ..*i }));
    let top = at(max_workers);
    let target_p99_ms = if floor { target_p99_ms.max(top) } else { target_p99_ms };
    if top > target_p99_ms {
        return None;
    }
    // `lo` fails (0 workers serve nothing), `hi` meets.
    let (mut lo, mut hi) = (0, 1.min(max_workers));
    while at(hi) > target_p99_ms {
        lo = hi;
        hi = hi.saturating_mul(2).min(max_workers);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at(mid) <= target_p99_ms { hi = mid } else { lo = mid }
    }
    while hi > 1 && at(hi - 1) <= target_p99_ms {
        hi -= 1;
    }
    let fewer = (hi > 1).then(|| at(hi - 1));
    let (p99_ms, p99_ms_more) = (at(hi), at(hi.saturating_add(1)));
    let simulations = u32::try_from(seen.len()).unwrap_or(u32::MAX);
    Some(PoolSize { workers: hi, p99_ms, p99_ms_fewer: fewer, p99_ms_more, simulations })
}

/// The highest speed (traffic growth factor) at which `i.workers` keeps the simulated p99
/// response ≤ `target_p99_ms`, to 2%: `None` if even speed 0.01 fails, [`MAX_SPEED`] if that
/// still meets it. Doubling (or halving) from speed 1 finds a meeting and a failing speed;
/// geometric bisection closes them to a ratio of 1.02 and returns the meeting one.
///
/// # Panics
/// As [`super::trace::simulate`].
#[must_use]
pub fn highest_speed(i: &TraceInputs, target_p99_ms: f64) -> Option<f64> {
    const MIN: f64 = 0.01;
    let meets = |speed: f64| p99(&TraceInputs { speed, ..*i }) <= target_p99_ms;
    let (mut lo, mut hi) = if meets(1.0) {
        let mut lo = 1.0;
        while meets(lo * 2.0) {
            lo *= 2.0;
            if lo >= MAX_SPEED {
                return Some(MAX_SPEED);
            }
        }
        (lo, lo * 2.0)
    } else {
        if !meets(MIN) {
            return None;
        }
        let mut hi = 1.0;
        loop {
            let half = hi / 2.0;
            if half <= MIN {
                break (MIN, hi);
            }
            if meets(half) {
                break (half, hi);
            }
            hi = half;
        }
    };
    while hi / lo > 1.02 {
        let mid = (lo * hi).sqrt();
        if meets(mid) { lo = mid } else { hi = mid }
    }
    Some(lo)
}

/// What the fitted Poisson model ([`poisson_equivalent`]: M/G/c by Allen–Cunneen, arrival CV 1)
/// would choose for the same target: the advisor's fewest workers, or why there are none.
///
/// # Errors
/// The advisor's reason (the service alone misses the target, no pool up to the limit meets it).
pub fn poisson_fewest_workers(i: &TraceInputs, target_p99_ms: f64) -> Result<u32, String> {
    let inputs = poisson_equivalent(i);
    if inputs.rate <= 0.0 {
        return Err("the trace has no span, so no mean rate to fit".into());
    }
    advisor::workers_needed(&inputs, Target::P99(target_p99_ms / 1e3))
}
