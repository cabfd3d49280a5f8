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
//! What the model is fed, so that the machine's timing moves both sides alike ([`check`]): the
//! measured arrival rate, the measured service mean **and coefficient of variation** (a timer
//! tail that lengthens some services raises E\[S²\], which Pollaczek–Khinchine and Allen–Cunneen
//! then account for), and the measured producer lag is added to the prediction (a job's wait
//! starts at its intended arrival; the queue sees it only once it is enqueued).
//!
//! What is not judged: a run during which another process or the host took the cores
//! ([`disturbed`], by the kernel's own figures), which is repeated instead; its comparison is
//! printed all the same, marked "not judged", so the limits can be checked against it.

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

/// Runs an open-loop Poisson workload and returns (measured, predicted, tolerance) for the
/// response mean, and the same for the wait mean.
///
/// The prediction is the model's at the run's measured inputs (rate, service mean and CV), plus
/// the measured mean producer lag (enqueued − intended): the model's premise is a job entering
/// the queue at its arrival instant, and the lag is the measured part of the response before
/// that. On a quiet machine it is 20–50 µs; the timer's ordinary tail makes a 1 ms exponential
/// service run 0.3–4.6% long with a CV of 0.98–1.01 (constant 1 ms: CV 0.10–0.25), all of which
/// the model now sees. (Measured over 42 runs here, quiet and with one core taken.)
fn check(c: usize, rho: f64, service: Duration, constant: bool, secs: u64) -> ((f64, f64, f64), (f64, f64, f64)) {
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
        ..settings()
    };
    // Up to ATTEMPTS runs; the first that no other process or the host disturbed is judged.
    // A disturbed run's comparison is still printed, marked as not judged: the data the limits
    // are calibrated from. Which run is judged depends only on the kernel's figures.
    let mut seen = Vec::new();
    for _ in 0..ATTEMPTS {
        let (last, rq) = run_queue(|| run_for(s.clone(), Duration::from_secs(secs), Duration::from_secs(1)));
        assert_accounted(&last);
        let out = compare(&last, rate, es, c, constant, rho);
        let Some(why) = rq.and_then(|rq| disturbed(&rq)) else { return out };
        let show = |(m, p, tol): (f64, f64, f64)| {
            let ok = (m - p).abs() <= p * tol + HANDOFF_MS;
            format!(
                "{m:.4} ms against {p:.4} ({:+.1}%, {})",
                (m / p - 1.0) * 100.0,
                if ok { "within" } else { "outside" }
            )
        };
        eprintln!("not judged ({why}): response {}, wait {}; run again", show(out.0), show(out.1));
        seen.push(why);
    }
    panic!("the machine never left the engine its cores in {ATTEMPTS} runs: {seen:?}");
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
    let lag = m.latency.wait.mean - m.queued_ms_mean;
    let inputs = Inputs {
        rate: m.offered_per_s,
        service_mean: m.latency.service.mean / 1e3,
        workers: c as u32,
        queue: None,
        arrival_cv: 1.0,
        service_cv: m.service_cv,
        service_dist: if constant { ServiceDist::Constant } else { ServiceDist::Exponential },
    };
    let p = predict(&inputs).unwrap();
    eprintln!(
        "inputs: {:.1} jobs/s, service {:.4} ms (cv {:.3}), producer lag {lag:.4} ms; model {}",
        inputs.rate, m.latency.service.mean, m.service_cv, p.method
    );
    let n = m.jobs.completed as usize;
    let (rsd_resp, rsd_wait) = exact_spread(rate, es, constant, c, n);
    (
        (m.latency.response.mean, p.latency_ms_mean.unwrap() + lag, 4.0 * rsd_resp),
        (m.latency.wait.mean, p.wait_ms_mean.unwrap() + lag, 4.0 * rsd_wait),
    )
}

/// The limit on the mean time this process's threads waited for a CPU each time they became
/// runnable ([`common::RunQueue::mean_wait`]). It tells "another process took the cores" apart
/// from the engine's own timing, which the model is fed anyway. Measured here over the three
/// statistical tests (42 runs): 7–12 µs on a quiet machine (the engine's own timer, producer and
/// runtime threads share 2 cores), 11–14 µs with one core taken by a busy loop (every comparison
/// still passed), 24–36 µs with both cores taken (the M/M/4 comparison then failed 2 runs in 3,
/// by +12% and +15% against a 9.2% band). The producer lag and the service ratio, which the
/// previous gate used, overlap between a quiet machine and a busy one (service 1.002–1.046× quiet,
/// 1.03–1.04× with a core taken), so they are no longer gated on.
const RUN_QUEUE_WAIT_LIMIT: Duration = Duration::from_micros(20);
/// On a virtual machine the host can take the cores without the guest's run queue showing it:
/// the guest counts it as steal time. (Two clean-clone CI runs failed M/M/4 by +14% with a quiet
/// run queue, 10.7–12.3 µs, and the service running 5–6% long: the mark of a host that paused
/// the machine.) M/M/4 keeps both vCPUs busy and so sees more steal than M/M/1 at the same time
/// (7–14% against 2–5% in one busy hour). The limit was 10%: in 16 full `cargo test` runs three
/// failed because every attempt of M/M/4 saw 10.3–22%. The comparisons of such runs, printed
/// unjudged, matched quiet runs: +4.9%, +5.0% and +4.9% at 11.7%, 12.1% and 10.3% steal, against
/// +3.5% to +5.6% quiet. Hence 15%, with more attempts to ride out a burst.
const STEAL_LIMIT: f64 = 0.15;
/// Other processes' share of the machine's CPU time ([`common::RunQueue::others`]). A
/// low-priority (`nice 19`) build on the same 2 cores kept the run-queue wait quiet (11.6 µs)
/// while M/M/4 measured +25% against a 9.2% band. Calibrated with `THEORY_JUDGE_EVERY_RUN=1`
/// (every first run judged), the binary alone and beside two `nice -n 19` busy loops, alternating,
/// 3 runs each: alone, others used 0.0–3.2% and M/M/4 sat +3.5% to +5.6% above the model (all
/// passed); beside the loops, others used 83–96%, the run-queue wait stayed 4.7–15.6 µs, and
/// M/M/4 sat +5.0%, +9.4% and +12.8% (one failure). 25% is far from both.
const OTHERS_LIMIT: f64 = 0.25;
const ATTEMPTS: usize = 5;

/// Why a run was disturbed, if it was: this process's threads waited for a CPU (see
/// [`RUN_QUEUE_WAIT_LIMIT`]), the host stole the machine, or other processes used it. Prints the
/// figures either way. `THEORY_JUDGE_EVERY_RUN=1` judges every first run whatever they say: how
/// the limits were calibrated. Where the kernel does not report them, every run is judged.
fn disturbed(rq: &common::RunQueue) -> Option<String> {
    let wait = rq.mean_wait();
    eprintln!(
        "run-queue wait {:.1} µs a slice ({} slices, {:.0} ms in all), steal {:.1}%, other processes {:.1}%",
        wait.as_secs_f64() * 1e6,
        rq.slices,
        rq.delay.as_secs_f64() * 1e3,
        rq.steal * 100.0,
        rq.others * 100.0
    );
    if std::env::var_os("THEORY_JUDGE_EVERY_RUN").is_some() {
        return None;
    }
    let mut why = Vec::new();
    if wait > RUN_QUEUE_WAIT_LIMIT {
        why.push(format!("run-queue wait {:.1} µs > {RUN_QUEUE_WAIT_LIMIT:?}", wait.as_secs_f64() * 1e6));
    }
    if rq.steal > STEAL_LIMIT {
        why.push(format!("host steal {:.1}% > {:.0}%", rq.steal * 100.0, STEAL_LIMIT * 100.0));
    }
    if rq.others > OTHERS_LIMIT {
        why.push(format!("other processes {:.1}% > {:.0}%", rq.others * 100.0, OTHERS_LIMIT * 100.0));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

fn within(what: &str, (measured, predicted, tol): (f64, f64, f64), extra_ms: f64) {
    let diff = (measured - predicted).abs();
    eprintln!("{what}: measured {measured:.4} ms, predicted {predicted:.4} ms, tolerance {:.1}%", tol * 100.0);
    assert!(
        diff <= predicted * tol + extra_ms,
        "{what}: measured {measured:.4} ms, predicted {predicted:.4} ms, allowed ±{:.4} ms ({:.1}% + {extra_ms} ms)",
        predicted * tol + extra_ms,
        tol * 100.0
    );
}

/// An arrival that finds an idle worker still waits for the hand-off: the producer's wake-up and
/// the worker's poll. It is real time the job spends waiting, and the engine reports it; measured
/// here at about 30 µs on the mean wait (M/M/4, 500 µs service, 110,000 jobs). Allow 50 µs.
const HANDOFF_MS: f64 = 0.05;

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
    let (resp, _) = check(1, 0.5, Duration::from_millis(1), false, 8);
    within("M/M/1 mean response", resp, HANDOFF_MS);
}

#[test]
fn mmc_mean_response_is_erlang_c() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    let (resp, _) = check(4, 0.7, Duration::from_millis(1), false, 8);
    within("M/M/4 mean response", resp, HANDOFF_MS);
}

#[test]
fn md1_mean_wait_is_pollaczek_khinchine() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    let (_, wait) = check(1, 0.5, Duration::from_millis(1), true, 8);
    within("M/D/1 mean wait", wait, HANDOFF_MS);
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

#[test]
fn batch_of_100_on_5_workers_ends_at_20_services() {
    let _g = exclusive();
    let s = Settings {
        workers: 5,
        arrival: ArrivalKind::Batch,
        jobs: Some(100),
        queue: 100,
        service: Duration::from_millis(20),
        service_dist: ServiceDist::Constant,
        ..settings()
    };
    let opts = pooltune::engine::RunOptions { interval: Duration::from_millis(20), ..Default::default() };
    let last = pooltune::engine::EngineHandle::start(s, opts).unwrap().join();
    assert_eq!(last.totals.completed, 100);
    let svc = &last.measured.latency.service;
    let max = last.measured.latency.response.max;
    // Each worker runs 20 jobs back to back from the same intended instant, so the last one ends
    // after 20 services: at least 20 × the shortest, at most 20 × the longest plus 20 hand-offs.
    assert!(max >= 20.0 * svc.p50.min(svc.mean) * 0.999, "last job at {max} ms, before 20 services");
    assert!(max <= 20.0 * (svc.max + HANDOFF_MS), "last job at {max} ms, after 20 × {} ms", svc.max);
    // The median job waits for 10 rounds.
    // The median job (the 50th or 51st) ends in round 10 or 11.
    let p50 = last.measured.latency.response.p50;
    assert!((p50 / svc.mean - 10.5).abs() <= 1.0, "median at {p50} ms = {} services", p50 / svc.mean);
}
