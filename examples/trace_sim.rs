//! How fast the exact trace simulation (`pooltune::model::trace`) replays a bursty trace, and
//! what it says beside the fitted Poisson model.
//!
//! The trace is an on/off Markov-modulated Poisson process: on-periods (mean 0.2 s) at 5,000
//! arrivals/s, off-periods (mean 0.8 s) at 200/s, so 1,160/s on average with an arrival CV well
//! above 1; service is drawn exponential with mean 5 ms (offered load 5.8 workers).
//!
//! ```sh
//! cargo run --release --example trace_sim                 # 10,000 and 1,000,000 arrivals
//! cargo run --release --example trace_sim -- 10000000     # other sizes
//! ```

use std::time::{Duration, Instant};

use pooltune::model::predict;
use pooltune::model::trace::{Service, TraceInputs, poisson_equivalent, simulate};
use pooltune::model::trace_search::{fewest_workers, highest_speed, poisson_fewest_workers};
use pooltune::settings::{Policy, ServiceDist};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// `n` arrival offsets (ns) of the on/off process above.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn mmpp(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut exp = |mean: f64| -mean * (1.0 - rng.random::<f64>()).ln();
    let (mut t, mut on, mut switch) = (0.0, true, 0.0);
    switch += exp(0.2);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let gap = exp(if on { 1.0 / 5000.0 } else { 1.0 / 200.0 });
        if t + gap >= switch {
            // Memoryless: restart the draw at the switch in the other state.
            t = switch;
            on = !on;
            switch = t + exp(if on { 0.2 } else { 0.8 });
            continue;
        }
        t += gap;
        out.push((t * 1e9).round() as u64);
    }
    out
}

/// The fastest of `reps` runs of `f`.
fn fastest(reps: u32, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 1_000_000];
    }
    let service = Service::Drawn { mean: 0.005, cv: 1.0, dist: ServiceDist::Exponential, seed: 1, sample: None };
    for n in sizes {
        let arrivals = mmpp(n, 42);
        let i =
            TraceInputs { arrivals: &arrivals, speed: 1.0, service, workers: 8, queue: None, policy: Policy::Block };
        let reps = u32::try_from((2_000_000 / n).clamp(1, 50)).unwrap_or(1);
        println!(
            "{n} arrivals over {:.1} s (fastest of {reps}):",
            i.arrivals.last().copied().unwrap_or(0) as f64 * 1e-9
        );
        for c in [4, 8, 16, 32, 64, 256, 1024, 4096] {
            let mut p99 = 0.0;
            let t = fastest(reps, || p99 = simulate(&TraceInputs { workers: c, ..i }).response_ms.p99);
            let per = t.as_secs_f64() * 1e9 / n as f64;
            println!("  c = {c:>4}: {:>9.3} ms  ({per:.1} ns/arrival)  p99 {p99:.1} ms", t.as_secs_f64() * 1e3);
        }
        let target = 50.0;
        let t = Instant::now();
        let sized = fewest_workers(&i, target, 4096);
        let took = t.elapsed();
        let fit = poisson_equivalent(&i);
        let needs = sized.map_or("no pool up to 4096".to_string(), |s| {
            let fewer = s.p99_ms_fewer.map_or("-".into(), |p| format!("{p:.1}"));
            format!(
                "{} workers (p99 {fewer} / {:.1} / {:.1} ms at N−1, N, N+1; {} replays)",
                s.workers, s.p99_ms, s.p99_ms_more, s.simulations
            )
        });
        println!(
            "  p99 ≤ {target} ms: the trace needs {needs} in {:.1} ms; the Poisson fit (λ = {:.0}/s) says {:?}",
            took.as_secs_f64() * 1e3,
            fit.rate,
            poisson_fewest_workers(&i, target),
        );
        if let Some(s) = sized {
            let at = TraceInputs { workers: s.workers, ..i };
            let model = predict(&poisson_equivalent(&at)).ok().and_then(|p| p.latency_ms_p99);
            println!(
                "  at {} workers: the Poisson model's p99 {model:.1?} ms; highest speed {:.2?}; with reject at K = 100 p99 {:.1} ms",
                s.workers,
                highest_speed(&at, target),
                simulate(&TraceInputs { queue: Some(100), policy: Policy::Reject, ..at }).response_ms.p99,
            );
        }
    }
}
