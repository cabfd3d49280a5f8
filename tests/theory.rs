//! The engine against queueing theory, judged through each run's exact account of its gap to
//! theory (`pooltune::report::account`): theory at the configured inputs + randomness +
//! lateness + inflation + overhead = the measured mean response. What pooltune owns is judged
//! exactly: the parts add up, the replay of each job's own inputs through the exact FIFO pool
//! matches the measurement up to the pool's overhead, and that overhead is within its bound.
//! Theory is compared only with the ideal pool on the run's own draws (the randomness part),
//! which machine noise cannot reach; the producer's lateness and the services' inflation, which
//! a noisy machine does move, are printed and never judged.
//!
//! How the randomness tolerance is derived: [`exact_spread`] simulates the same queue exactly
//! (FCFS with c servers: each arrival starts at max(arrival, earliest free server), the
//! Kiefer–Wolfowitz recursion) for 200 seeds with as many jobs as the account covers, and takes
//! the standard deviation of the mean response across seeds. The test allows 4 of those standard
//! deviations (a false failure about once in 16,000 runs): the run length's alone.
//!
//! The overhead's bound is a timing figure: a run outside it is repeated only if the kernel says
//! the machine was disturbed (this process's wait for a CPU, the host's steal, other processes'
//! use, all printed), and fails at once otherwise.

mod common;

use std::time::Duration;

use common::{assert_accounted, exclusive, instrumented, run_for, run_queue, settings};
use pooltune::report::account;
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

/// Runs an open-loop Poisson workload and judges its exact account
/// (`pooltune::report::account`): what pooltune owns, exactly, and theory only through the part
/// that is pure chance.
///
/// - **It adds up**: theory + randomness + lateness + inflation + overhead is the measured mean
///   within 0.5% (by construction, up to rounding), and the account covers exactly the jobs the
///   window's mean response counts, with the same mean.
/// - **The replay is the measurement, up to the overhead**: fed each job's enqueue instant and
///   its measured service, the exact FIFO pool never ends a job later than the engine did (FIFO
///   starts only move later when any start is delayed), so every job's overhead is ≥ 0 but for
///   the clock reads ([`CLOCK_US`]).
/// - **The overhead is within its bound** ([`OVERHEAD_BOUND_US`]): the one timing figure
///   judged, so a run outside it on a machine the kernel calls disturbed is repeated
///   ([`ATTEMPTS`]).
/// - **Randomness is chance**: the ideal pool on this run's own draws (its intended arrivals
///   and asked services, which no machine noise touches) against theory at the configured
///   inputs, within 4 standard deviations of the mean response of as many jobs ([`exact_spread`]:
///   the run length sets the tolerance).
///
/// Lateness (the producer behind schedule) and inflation (services longer than asked) are
/// printed, never judged: a noisy machine moves them and fails nothing.
///
/// `threads` is the runtime's thread count; 0 is the default, resolved when the engine starts.
fn check(what: &str, c: usize, rho: f64, service: Duration, constant: bool, secs: u64, threads: usize) {
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
        let m = &last.measured;
        assert_eq!(m.jobs.rejected, 0, "the bound is far out of reach at ρ = {rho}");
        let r = last.account.expect("a run with jobs has its replay");
        let a = account::of(&last).expect("a run at a set rate has an account");
        let us = |x: f64| x * 1e3;
        eprintln!(
            "{what}: {} jobs, measured {:.1} µs = theory ({}) {:.1} + randomness {:+.1} + lateness {:+.1} + inflation {:+.1} + overhead {:+.1} (p99 {:.1}, least {:.2}) = {:.1} ({:+.4}%)",
            a.jobs,
            us(a.measured.mean_ms),
            a.method,
            us(a.theory.mean_ms),
            us(a.randomness.mean_ms),
            us(a.lateness.mean_ms),
            us(a.inflation.mean_ms),
            us(a.overhead.mean_ms),
            us(r.overhead.p99),
            r.overhead_min_us,
            us(a.sum_ms),
            a.sum_error * 100.0
        );
        // It adds up, over the very jobs the window counts.
        assert!(
            a.sum_error.abs() <= 0.005,
            "{what}: the parts add up to {:.4} ms, measured {:.4}",
            a.sum_ms,
            a.measured.mean_ms
        );
        assert!(r.complete);
        assert_eq!(r.jobs, m.latency.response.count, "{what}: the account covers the window's jobs");
        let rel = (r.measured.mean - m.latency.response.mean).abs() / m.latency.response.mean;
        assert!(
            rel < 1e-6,
            "{what}: the account's mean {} against the window's {}",
            r.measured.mean,
            m.latency.response.mean
        );
        // The replay is the measurement up to the overhead, job by job.
        assert!(
            r.overhead_min_us >= -CLOCK_US,
            "{what}: a job ended {:.2} µs before the ideal pool allows",
            -r.overhead_min_us
        );
        // Randomness is chance: the ideal pool on the run's own draws against theory.
        let (rsd, _) = exact_spread(rate, es, constant, c, a.jobs as usize);
        let (ideal, theory, tol) = (a.theory.mean_ms + a.randomness.mean_ms, a.theory.mean_ms, 4.0 * rsd);
        eprintln!(
            "{what}: ideal pool {ideal:.4} ms against theory {theory:.4} ms ({:+.2}%), tolerance {:.2}%",
            (ideal / theory - 1.0) * 100.0,
            tol * 100.0
        );
        assert!(
            (ideal - theory).abs() <= theory * tol,
            "{what}: ideal pool {ideal:.4} ms, theory {theory:.4} ms ± {:.1}%",
            tol * 100.0
        );
        // The pool's own overhead within its bound: the one timing figure judged.
        let over = us(a.overhead.mean_ms);
        if over <= OVERHEAD_BOUND_US {
            return;
        }
        let Some(why) = disturbance else {
            panic!(
                "{what}: the pool's overhead is {over:.1} µs a job on average, above its {OVERHEAD_BOUND_US} µs bound"
            );
        };
        eprintln!("overhead {over:.1} µs outside its bound, on a disturbed machine ({why}): run again");
        seen.push(format!("{over:.1} µs ({why})"));
    }
    panic!("{what}: the overhead was outside its bound {ATTEMPTS} times, each on a disturbed machine: {seen:?}");
}

/// How far a job's replayed start may follow its measured one by the clock reads alone, µs: a
/// worker that takes a queued job at once reuses the clock read that ended its last job as the
/// start, and the producer stamps the enqueue just before taking the queue's lock, so a start
/// can precede the enqueue it follows by the length of that lock and push.
const CLOCK_US: f64 = 5.0;

/// The pool's own overhead, mean µs a job, that pooltune answers for (see the README's
/// account): measured here at M/M/4 ρ 0.7 with 1 ms services, 2-core shared VM, 2026-12-02.
const OVERHEAD_BOUND_US: f64 = 25.0;

/// A run is repeated only when its overhead is outside its bound *and* the kernel says the
/// machine was disturbed; within is accepted whatever the machine did, and outside on an
/// undisturbed machine fails at once.
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

#[test]
fn mm1_account_is_exact_and_its_chance_is_erlang_c() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    check("M/M/1 account", 1, 0.5, Duration::from_millis(1), false, 8, 2);
}

#[test]
fn mmc_account_is_exact_and_its_chance_is_erlang_c() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    // With the thread count a newcomer leaves at its default (0: resolved when the engine
    // starts), so the default is measured against theory; the others pin 2.
    check("M/M/4 account", 4, 0.7, Duration::from_millis(1), false, 8, 0);
}

#[test]
fn md1_account_is_exact_and_its_chance_is_pollaczek_khinchine() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    check("M/D/1 account", 1, 0.5, Duration::from_millis(1), true, 8, 2);
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
