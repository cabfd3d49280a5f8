//! The engine against queueing theory: headless runs with fixed seeds whose measured means fall
//! within tolerances derived from the statistics of the run length.
//!
//! How each tolerance is derived: [`exact_spread`] simulates the same queue exactly (FCFS with c
//! servers: each arrival starts at max(arrival, earliest free server), the Kiefer–Wolfowitz
//! recursion) for 200 seeds with as many jobs as the engine measured, and takes the standard
//! deviation of the statistic across seeds. The test allows 4 of those standard deviations
//! (a false failure about once in 16,000 runs), plus a small allowance for the engine's real,
//! measured overheads where the comment says so.
//!
//! What the model is fed ([`compare`]): the queue as it ran, so that the machine's timing moves
//! both sides alike. The arrivals as they entered the queue (the measured rate and the CV of the
//! gaps between enqueues: a producer woken late enqueues in bunches), each server's holding time
//! from the moment a job and a free worker both existed to the job's end (the measured service
//! plus the hand-off, mean and CV: a timer tail that lengthens some services raises E\[S²\],
//! which Pollaczek–Khinchine and Allen–Cunneen account for), and the measured producer lag added
//! to the prediction (a job's wait starts at its intended arrival; the queue sees it only once it
//! is enqueued). Nothing else is allowed for: the tolerance is the run length's alone.
//!
//! Every run is judged, busy machine or not: a comparison within the tolerance passes whatever
//! the machine did. One outside is repeated only if the kernel says the machine was disturbed
//! (this process's wait for a CPU, the host's steal, other processes' use, all printed), and
//! fails at once otherwise. The distance from the textbook queue at the measured rate and service
//! (the engine's own overhead) is printed too.

mod common;

use std::time::Duration;

use common::{assert_accounted, exclusive, run_for, run_queue, settings};
use pooltune::model::{Inputs, predict};
use pooltune::settings::{ArrivalKind, Policy, Rate, ServiceDist, Settings};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};

const SEEDS: u64 = 200;

/// Mean response and mean wait of `n` jobs (after `warm` left out) of an exact FCFS simulation.
fn simulate(rate: f64, service: f64, constant: bool, c: usize, warm: usize, n: usize, seed: u64) -> (f64, f64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let gaps = Exp::new(rate).unwrap();
    let serve = Exp::new(1.0 / service).unwrap();
    let mut free = vec![0.0f64; c];
    let (mut t, mut resp, mut wait) = (0.0, 0.0, 0.0);
    for k in 0..warm + n {
        t += gaps.sample(&mut rng);
        let s = if constant { service } else { serve.sample(&mut rng) };
        let (i, &earliest) = free.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        let start = t.max(earliest);
        free[i] = start + s;
        if k >= warm {
            resp += start + s - t;
            wait += start - t;
        }
    }
    (resp / n as f64, wait / n as f64)
}

/// Relative standard deviations (response, wait) of the means over [`SEEDS`] exact simulations.
fn exact_spread(rate: f64, service: f64, constant: bool, c: usize, n: usize) -> (f64, f64) {
    let runs: Vec<(f64, f64)> = (0..SEEDS).map(|seed| simulate(rate, service, constant, c, n / 5, n, seed)).collect();
    let rsd = |f: fn(&(f64, f64)) -> f64| {
        let m = runs.iter().map(f).sum::<f64>() / SEEDS as f64;
        let var = runs.iter().map(|r| (f(r) - m).powi(2)).sum::<f64>() / (SEEDS - 1) as f64;
        var.sqrt() / m
    };
    (rsd(|r| r.0), rsd(|r| r.1))
}

/// Runs an open-loop Poisson workload and judges `figure` against the model fed the queue as it
/// ran ([`compare`]), repeating a run only when it is outside on a disturbed machine
/// ([`ATTEMPTS`]).
///
/// Measured here, before the model was fed the enqueue CV and the hand-off (only the service
/// mean and CV and the lag), the M/M/4 response sat +3.5% to +5.6% above the model on a quiet
/// machine, +5% to +15% with both cores taken by `nice -n 19` busy loops, and up to +8.5% with
/// the host stealing 17–20% (the CI machine), against a 9.2% band; so a gate had to tell a
/// disturbed run apart, and on a CI host that never left the cores it failed. Fed the queue as
/// it ran, 6 runs each here: quiet (steal 1–6%), M/M/4 −0.2% to +1.5%, M/M/1 +0.6% to +1.8%,
/// M/D/1 wait −5% to −3%; with both cores taken (others 80–95%), M/M/4 −1.1% to +1.0%, M/M/1
/// −5.5% to +1.2%, M/D/1 wait −15% to −10% (band 26%); one run with the host stealing 20.4%,
/// M/M/4 +2.9% (against +31% from the textbook queue).
///
/// `threads` is the runtime's thread count; 0 is the default, resolved when the engine starts.
#[allow(clippy::too_many_arguments)]
fn check(what: &str, figure: Figure, c: usize, rho: f64, service: Duration, constant: bool, secs: u64, threads: usize) {
    let es = service.as_secs_f64();
    let rate = rho * c as f64 / es;
    let s = Settings {
        workers: c,
        queue: 100_000,
        policy: Policy::Reject,
        arrival: ArrivalKind::Poisson,
        rate: Rate::PerSec(rate),
        service,
        service_dist: if constant { ServiceDist::Constant } else { ServiceDist::Exponential },
        seed: 11,
        threads,
        ..settings()
    };
    let mut seen = Vec::new();
    for _ in 0..ATTEMPTS {
        let (last, rq) = run_queue(|| run_for(s.clone(), Duration::from_secs(secs), Duration::from_secs(1)));
        let disturbance = rq.and_then(|rq| disturbed(&rq));
        assert_accounted(&last);
        let out = compare(&last, rate, es, c, constant, rho);
        let (m, p, tol) = match figure {
            Figure::Response => out.0,
            Figure::Wait => out.1,
        };
        eprintln!(
            "{what}: measured {m:.4} ms, predicted {p:.4} ms ({:+.1}%), tolerance {:.1}%",
            (m / p - 1.0) * 100.0,
            tol * 100.0
        );
        // (A NaN prediction, from a measured ρ ≥ 1, is never within.)
        if (m - p).abs() <= p * tol {
            return;
        }
        let Some(why) = disturbance else {
            panic!("{what}: measured {m:.4} ms, predicted {p:.4} ms, allowed ±{:.4} ms ({:.1}%)", p * tol, tol * 100.0);
        };
        eprintln!("outside, on a disturbed machine ({why}): run again");
        seen.push(format!("{:+.1}% ({why})", (m / p - 1.0) * 100.0));
    }
    panic!("{what}: outside the {ATTEMPTS} times, each on a disturbed machine: {seen:?}");
}

/// Which mean a test judges.
#[derive(Clone, Copy)]
enum Figure {
    Response,
    Wait,
}

/// A run is repeated only when its comparison is outside the tolerance *and* the kernel says the
/// machine was disturbed; a comparison within is accepted whatever the machine did, and one
/// outside on an undisturbed machine fails at once.
const ATTEMPTS: usize = 3;

/// Why a run was disturbed, if it was, by the kernel's figures (printed either way): this
/// process's threads waited over 20 µs a time for a CPU, the host stole over 15% of the
/// machine, or other processes used over 25% of it on the whole or over 50% in its busiest half
/// second. Quiet here: 7–12 µs, steal 0–6%, others 0–3%. Comparisons seen outside here: M/M/4
/// +17% beside a CPU-bound test (others 50%), and +67% and +108% with a compiler and another
/// test binary working in bursts (others 14–19% on the whole, the producer's lag p99 15 ms).
fn disturbed(rq: &common::RunQueue) -> Option<String> {
    let wait = rq.mean_wait().as_secs_f64() * 1e6;
    eprintln!(
        "the machine meanwhile: run-queue wait {wait:.1} µs a slice ({} slices), host steal {:.1}%, other processes {:.1}% (busiest half second {:.0}%)",
        rq.slices,
        rq.steal * 100.0,
        rq.others * 100.0,
        rq.others_peak * 100.0
    );
    let mut why = Vec::new();
    if wait > 20.0 {
        why.push(format!("run-queue wait {wait:.1} µs > 20 µs"));
    }
    if rq.steal > 0.15 {
        why.push(format!("host steal {:.1}% > 15%", rq.steal * 100.0));
    }
    if rq.others > 0.25 {
        why.push(format!("other processes {:.1}% > 25%", rq.others * 100.0));
    }
    if rq.others_peak > 0.5 {
        why.push(format!("other processes {:.0}% > 50% in a half second", rq.others_peak * 100.0));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// The model fed what the run measured, beside the measurement: (measured, predicted,
/// tolerance) for the mean response and the mean wait.
fn compare(
    last: &pooltune::metrics::Snapshot,
    rate: f64,
    es: f64,
    c: usize,
    constant: bool,
    rho: f64,
) -> ((f64, f64, f64), (f64, f64, f64)) {
    let m = &last.measured;
    assert_eq!(m.jobs.rejected, 0, "the bound is far out of reach at ρ = {rho}");
    let lag = m.lag_us.mean / 1e3;
    let handoff = m.handoff_us.mean / 1e3;
    let dist = if constant { ServiceDist::Constant } else { ServiceDist::Exponential };
    // The textbook queue at the measured rate and service: what the dashboard's model panel
    // shows. Not judged (the engine's lag and hand-off are real time it does not contain); its
    // distance from the measurement is the engine's overhead, printed for the record.
    let ideal = Inputs {
        rate: m.offered_per_s,
        service_mean: m.latency.service.mean / 1e3,
        workers: c as u32,
        queue: None,
        arrival_cv: 1.0,
        service_cv: m.service_cv,
        service_dist: dist,
        downstream: pooltune::model::usl::Usl::default(),
    };
    // A machine that stalls the services enough makes even the measured load reach ρ ≥ 1: then
    // there is no prediction (NaN), and the comparison is outside.
    let ideal_resp = predict(&ideal).unwrap().latency_ms_mean.unwrap_or(f64::NAN);
    // The queue as it ran: arrivals when they entered it, each server held from the moment the
    // job and a free worker both existed until the job ended (hand-off included).
    let inputs = Inputs {
        service_mean: (m.latency.service.mean + handoff) / 1e3,
        arrival_cv: m.enqueue_cv,
        service_cv: m.holding_cv,
        ..ideal
    };
    let p = predict(&inputs).unwrap();
    eprintln!(
        "measured: {:.1} jobs/s entering with cv {:.3}; service {:.4} ms (cv {:.3}); producer lag {:.1} µs (p50 {:.0}, p99 {:.0}); hand-off {:.1} µs (p99 {:.0}); model {}",
        inputs.rate,
        m.enqueue_cv,
        m.latency.service.mean,
        m.service_cv,
        m.lag_us.mean,
        m.lag_us.p50,
        m.lag_us.p99,
        m.handoff_us.mean,
        m.handoff_us.p99,
        p.method
    );
    let resp = p.latency_ms_mean.unwrap_or(f64::NAN) + lag;
    eprintln!(
        "engine overhead: response {:.4} ms against the ideal queue's {ideal_resp:.4} ({:+.1}%), against the queue as it ran {resp:.4} ({:+.1}%)",
        m.latency.response.mean,
        (m.latency.response.mean / ideal_resp - 1.0) * 100.0,
        (m.latency.response.mean / resp - 1.0) * 100.0,
    );
    let n = m.jobs.completed as usize;
    let (rsd_resp, rsd_wait) = exact_spread(rate, es, constant, c, n);
    (
        (m.latency.response.mean, resp, 4.0 * rsd_resp),
        (m.latency.wait.mean, p.wait_ms_mean.unwrap_or(f64::NAN) + lag + handoff, 4.0 * rsd_wait),
    )
}

/// With the `console` feature, tokio instruments every task (`tokio/tracing`), and each poll
/// and wake-up costs more: measured here, the M/M/4 run's mean response then sat 8–14% above
/// the model (against +1–4% in the default build), the instrumentation's own cost rather than
/// the queue's. The statistical comparisons judge the engine as users measure with it, so they
/// run in the default build (`cargo test`, which `.ci/run` runs too) and say so here.
fn instrumented() -> bool {
    if cfg!(feature = "console") {
        eprintln!("skipped under --features console: task instrumentation slows every hand-off; run `cargo test`");
        return true;
    }
    false
}

#[test]
fn mm1_mean_response_is_erlang_c() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    check("M/M/1 mean response", Figure::Response, 1, 0.5, Duration::from_millis(1), false, 8, 2);
}

#[test]
fn mmc_mean_response_is_erlang_c() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    // With the thread count a newcomer leaves at its default (0: resolved when the engine
    // starts), so the default is measured against theory; the others pin 2.
    check("M/M/4 mean response", Figure::Response, 4, 0.7, Duration::from_millis(1), false, 8, 0);
}

#[test]
fn md1_mean_wait_is_pollaczek_khinchine() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    check("M/D/1 mean wait", Figure::Wait, 1, 0.5, Duration::from_millis(1), true, 8, 2);
}

#[test]
fn littles_law_holds_on_the_queue() {
    let _g = exclusive();
    let s = Settings {
        workers: 4,
        queue: 100_000,
        policy: Policy::Reject,
        rate: Rate::PerSec(1600.0),
        service: Duration::from_millis(2),
        seed: 5,
        ..settings()
    };
    let last = run_for(s, Duration::from_secs(4), Duration::from_millis(500));
    let m = &last.measured;
    let l = m.queue_depth_mean;
    let lambda_w = m.throughput_per_s * m.queued_ms_mean / 1e3;
    // Little's law is exact on a sample path that starts and ends empty; over a window, only jobs
    // straddling its two edges break it, each by at most its own time in queue. Bound: two edges
    // × the deepest queue × the longest wait, over the window.
    let edge = 2.0 * m.queue_depth_max as f64 * (m.latency.wait.max / 1e3) / m.duration_s;
    assert!(l > 0.0);
    assert!((l - lambda_w).abs() <= edge, "L = {l:.4}, λW = {lambda_w:.4}, edge bound {edge:.4}");
}
