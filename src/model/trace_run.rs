//! The replay loop behind [`super::simulate`]: one pass over the arrivals per policy, the
//! service demands in arrival order, the workers' free times (scan or heap), and the recorder
//! that turns starts and ends into [`TraceSim`] figures (exact nearest-rank percentiles by
//! selection).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{Dist, Service, TraceInputs, TraceSim};
use crate::model::draw::Draw;
use crate::settings::Policy;

/// Replays `i`; without `waits` only the response distribution is kept (the searches need
/// nothing else), and the wait percentiles are left 0.
pub(super) fn run(i: &TraceInputs, waits: bool) -> TraceSim {
    match replay(i, waits, false) {
        Some((rec, refused)) => rec.finish(i.arrivals.len() as u64, refused, i.arrivals[0] as f64 / i.speed, i.workers),
        None => TraceSim::default(),
    }
}

/// The response time (ns) of every completed job, in no particular order: for a distribution.
pub(super) fn responses(i: &TraceInputs) -> Vec<f64> {
    replay(i, false, false).map_or_else(Vec::new, |(rec, _)| rec.responses)
}

/// Each arrival's start (ns), in arrival order; NaN for one refused or dropped.
pub(super) fn starts(i: &TraceInputs) -> Vec<f64> {
    replay(i, false, true).and_then(|(rec, _)| rec.starts).unwrap_or_default()
}

/// The replay's sums and samples and the arrivals refused; `None` without arrivals.
#[allow(clippy::cast_precision_loss)]
fn replay(i: &TraceInputs, waits: bool, starts: bool) -> Option<(Rec, u64)> {
    assert!(i.workers > 0, "workers 0: a pool with no workers serves nothing");
    assert!(i.speed.is_finite() && i.speed > 0.0, "speed {} is not a positive finite factor", i.speed);
    assert!(i.arrivals.is_sorted(), "arrivals must be in ascending order");
    let n = i.arrivals.len();
    if n == 0 {
        return None;
    }
    let mut rec = Rec::new(n, waits, starts);
    let mut demands = Demands::new(&i.service, n);
    let mut pool = Pool::new(i.workers);
    let at = |j: usize| i.arrivals[j] as f64 / i.speed;
    let mut refused = 0u64;
    match (i.policy, i.queue) {
        (_, None) | (Policy::Block, Some(_)) => {
            // Starts of the last K jobs: job j enters the queue at max(a(j), s(j−K)).
            let k = i.queue.map_or(usize::MAX, |k| usize::try_from(k).unwrap_or(usize::MAX));
            let mut last = VecDeque::new();
            for j in 0..n {
                let (a, s) = (at(j), demands.get(j));
                let start = pool.take(a, s);
                let enter = if i.queue.is_none() {
                    a
                } else if k == 0 {
                    start
                } else {
                    let e = if last.len() == k { last.pop_front().map_or(a, |s0: f64| s0.max(a)) } else { a };
                    last.push_back(start);
                    e
                };
                rec.held += enter - a;
                rec.queued += start - enter;
                rec.done(j, a, start, s);
            }
        }
        (Policy::Reject, Some(k)) => {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            let mut last: VecDeque<f64> = VecDeque::new();
            for j in 0..n {
                let (a, s) = (at(j), demands.get(j));
                let full = if k == 0 { pool.earliest() > a } else { last.len() == k && last[0] > a };
                if full {
                    refused += 1;
                    continue;
                }
                let start = pool.take(a, s);
                if k > 0 {
                    if last.len() == k {
                        last.pop_front();
                    }
                    last.push_back(start);
                }
                rec.queued += start - a;
                rec.done(j, a, start, s);
            }
        }
        (Policy::DropOldest, Some(k)) => {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            let mut waiting: VecDeque<(usize, f64, f64)> = VecDeque::new();
            let serve = |pool: &mut Pool, rec: &mut Rec, (qj, qa, qs): (usize, f64, f64)| {
                let start = pool.take(qa, qs);
                rec.queued += start - qa;
                rec.done(qj, qa, start, qs);
            };
            for j in 0..n {
                let (a, s) = (at(j), demands.get(j));
                // Waiting jobs that a worker takes by now (an end at `a` comes first).
                while !waiting.is_empty() && pool.earliest() <= a {
                    serve(&mut pool, &mut rec, waiting.pop_front().expect("not empty"));
                }
                if waiting.is_empty() && pool.earliest() <= a {
                    serve(&mut pool, &mut rec, (j, a, s));
                } else if waiting.len() < k {
                    waiting.push_back((j, a, s));
                } else {
                    rec.dropped += 1;
                    if let Some((_, oa, _)) = waiting.pop_front() {
                        rec.queued += a - oa;
                        waiting.push_back((j, a, s));
                    }
                }
            }
            while let Some(q) = waiting.pop_front() {
                serve(&mut pool, &mut rec, q);
            }
        }
    }
    rec.end = rec.end.max(at(n - 1));
    Some((rec, refused))
}

/// Sums and samples over completed jobs, ns.
struct Rec {
    waits: Option<Vec<f64>>,
    /// Each arrival's start, by arrival index (NaN until it starts): kept only when asked for.
    starts: Option<Vec<f64>>,
    responses: Vec<f64>,
    wait_sum: f64,
    wait_max: f64,
    waited: u64,
    busy: f64,
    /// ∫ jobs in the K places dt, and ∫ jobs the producer holds dt.
    queued: f64,
    held: f64,
    dropped: u64,
    end: f64,
}

impl Rec {
    fn new(n: usize, waits: bool, starts: bool) -> Rec {
        Rec {
            waits: waits.then(|| Vec::with_capacity(n)),
            starts: starts.then(|| vec![f64::NAN; n]),
            responses: Vec::with_capacity(n),
            wait_sum: 0.0,
            wait_max: 0.0,
            waited: 0,
            busy: 0.0,
            queued: 0.0,
            held: 0.0,
            dropped: 0,
            end: 0.0,
        }
    }

    #[inline]
    fn done(&mut self, j: usize, a: f64, start: f64, s: f64) {
        if let Some(v) = &mut self.starts {
            v[j] = start;
        }
        let w = start - a;
        self.wait_sum += w;
        self.wait_max = self.wait_max.max(w);
        self.waited += u64::from(w > 0.0);
        self.busy += s;
        self.end = self.end.max(start + s);
        self.responses.push(w + s);
        if let Some(v) = &mut self.waits {
            v.push(w);
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn finish(mut self, offered: u64, rejected: u64, first: f64, workers: u32) -> TraceSim {
        let completed = self.responses.len() as u64;
        let span = self.end - first;
        let per_span = |x: f64| if span > 0.0 { x / span } else { 0.0 };
        let mut wait_ms = self.waits.as_mut().map_or(Dist::default(), |v| dist(v));
        if completed > 0 {
            wait_ms.mean = self.wait_sum / completed as f64 * 1e-6;
            wait_ms.max = self.wait_max * 1e-6;
        }
        TraceSim {
            offered,
            completed,
            rejected,
            dropped: self.dropped,
            wait_ms,
            response_ms: dist(&mut self.responses),
            p_wait: if completed > 0 { self.waited as f64 / completed as f64 } else { 0.0 },
            busy: per_span(self.busy) / f64::from(workers),
            queue_len_mean: per_span(self.queued),
            held_mean: per_span(self.held),
            throughput_per_s: per_span(completed as f64) * 1e9,
            span_s: span * 1e-9,
        }
    }
}

/// Mean, nearest-rank p50/p90/p99 and max of `v` (ns) in ms; reorders `v`.
#[allow(clippy::cast_precision_loss)]
fn dist(v: &mut [f64]) -> Dist {
    let n = v.len();
    if n == 0 {
        return Dist::default();
    }
    // The ⌈n·pct/100⌉-th smallest, in integers (0.99·n in floating point can land above).
    let rank = |pct: usize| (n * pct).div_ceil(100).max(1) - 1;
    let mean = v.iter().sum::<f64>() / n as f64;
    let max = v.iter().copied().fold(0.0, f64::max);
    // Each selection leaves the smaller values to the left: the next one searches only there.
    let (r99, r90, r50) = (rank(99), rank(90), rank(50));
    let p99 = *v.select_nth_unstable_by(r99, f64::total_cmp).1;
    let p90 = *v[..=r99].select_nth_unstable_by(r90, f64::total_cmp).1;
    let p50 = *v[..=r90].select_nth_unstable_by(r50, f64::total_cmp).1;
    Dist { mean: mean * 1e-6, p50: p50 * 1e-6, p90: p90 * 1e-6, p99: p99 * 1e-6, max: max * 1e-6 }
}

/// Service demands in arrival order, in ns.
enum Demands<'a> {
    Given(&'a [u64]),
    Drawn(SmallRng, Draw<'a>),
}

impl Demands<'_> {
    fn new<'a>(s: &Service<'a>, n: usize) -> Demands<'a> {
        match *s {
            Service::PerArrival(v) => {
                assert_eq!(v.len(), n, "service given per arrival needs one time for each of the {n} arrivals");
                Demands::Given(v)
            }
            Service::Drawn { mean, cv, dist, seed, sample } => {
                Demands::Drawn(SmallRng::seed_from_u64(seed), Draw::new(mean, cv, dist, sample))
            }
        }
    }

    /// Job j's demand, ns (drawn ones at most an hour, rounded to whole ns).
    #[allow(clippy::cast_precision_loss)]
    fn get(&mut self, j: usize) -> f64 {
        match self {
            Demands::Given(v) => v[j] as f64,
            Demands::Drawn(rng, d) => (d.secs(rng) * 1e9).round(),
        }
    }
}

/// Up to this many workers a linear scan finds the earliest free one faster than a heap.
/// Measured by `examples/trace_sim.rs` (10,000 arrivals, release): scan 28, 34, 41, 51, 66 ns
/// an arrival at c = 4, 8, 16, 32, 64 against the heap's 29–32 ns at every c up to 4096 (the
/// heap's sift is cheap beside the sample and the draw).
const SCAN_MAX: u32 = 4;

/// The workers' free times (ns): the earliest found by scan or by a min-heap. Free times are
/// non-negative, so their bit patterns order as the numbers do.
enum Pool {
    Scan(Vec<f64>),
    Heap(BinaryHeap<Reverse<u64>>),
}

impl Pool {
    fn new(c: u32) -> Pool {
        if c <= SCAN_MAX {
            Pool::Scan(vec![0.0; c as usize])
        } else {
            Pool::Heap((0..c).map(|_| Reverse(0f64.to_bits())).collect())
        }
    }

    fn earliest(&self) -> f64 {
        match self {
            Pool::Scan(v) => v.iter().copied().fold(f64::INFINITY, f64::min),
            Pool::Heap(h) => h.peek().map_or(f64::INFINITY, |r| f64::from_bits(r.0)),
        }
    }

    /// The earliest free worker takes a job that can start at `at` and needs `s`: its start.
    fn take(&mut self, at: f64, s: f64) -> f64 {
        match self {
            Pool::Scan(v) => {
                let mut k = 0;
                for (j, &f) in v.iter().enumerate().skip(1) {
                    if f < v[k] {
                        k = j;
                    }
                }
                let start = v[k].max(at);
                v[k] = start + s;
                start
            }
            Pool::Heap(h) => {
                let mut top = h.peek_mut().expect("at least one worker");
                let start = f64::from_bits(top.0).max(at);
                *top = Reverse((start + s).to_bits());
                start
            }
        }
    }
}
