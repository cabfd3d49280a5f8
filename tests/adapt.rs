//! Adaptive concurrency on the engine: the controllers run side by side with the static optimum
//! on a downstream that pushes back, `slo` fits a downstream it was not told of, and switching
//! them live loses nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{assert_accounted, exclusive, instrumented, median, run_for, settings, timed, wait_for};
use pooltune::engine::timer::Timer;
use pooltune::engine::{Command, EngineHandle, RunOptions};
use pooltune::metrics::Snapshot;
use pooltune::model::usl::Usl;
use pooltune::settings::{Adapt, Knob, Policy, Rate, Settings};
use pooltune::work::JobContext;

/// The `contention` profile's downstream (σ 0.1, κ 0.01: N* = √90 ≈ 9.5, 9 workers best at
/// 714 jobs/s) under 1,200 jobs/s, more than it can take.
fn contention(adapt: Adapt, workers: usize, seed: u64) -> Settings {
    Settings {
        workers,
        adapt,
        workers_max: 40,
        service: Duration::from_millis(5),
        rate: Rate::PerSec(1200.0),
        queue: 200,
        policy: Policy::Reject,
        contention: 0.1,
        coherency: 0.01,
        timeout: (adapt == Adapt::Aimd).then(|| Duration::from_millis(100)),
        seed,
        ..settings()
    }
}

/// Runs every settings at once (each engine on its own threads), for `warmup` + `measured`.
fn side_by_side(all: Vec<Settings>, measured: Duration, warmup: Duration) -> Vec<Snapshot> {
    let runs: Vec<_> =
        all.into_iter().map(|s| std::thread::spawn(move || run_for(s, warmup + measured, warmup))).collect();
    runs.into_iter().map(|h| h.join().expect("the run ended")).collect()
}

/// Every controller starts at 2 workers against the static optimum (9), in one run, so they
/// share the machine's noise. 15 s let them settle; the next 20 s are measured.
///
/// hill-climb's own goal is tested below, on two downstreams and three seeds. vegas, gradient2
/// and aimd (with a 100 ms timeout) trade throughput for latency by design; where each
/// settles, its throughput and its p99 are printed for the README.
#[test]
fn controllers_beside_the_static_optimum_on_a_downstream_that_pushes_back() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    assert_eq!(Usl::of(&contention(Adapt::Off, 9, 1)).best_workers(), Some(9));
    let algorithms = [Adapt::Off, Adapt::HillClimb, Adapt::Vegas, Adapt::Gradient2, Adapt::Aimd];
    let all = algorithms.iter().map(|&a| contention(a, if a == Adapt::Off { 9 } else { 2 }, 7)).collect();
    let last = side_by_side(all, Duration::from_secs(20), Duration::from_secs(15));
    for s in &last {
        assert_accounted(s);
    }
    let fixed = &last[0].measured;
    for (a, s) in algorithms.iter().zip(&last) {
        let (m, w) = (&s.measured, &s.measured.workers);
        eprintln!(
            "{a:<10} workers {}..{} mean {:.2} ({} changes, {:.0} worker-s), {:.0}/s ({:.0}% of static), p99 {:.1} ms, service mean {:.2} p99 {:.2} ms",
            w.min,
            w.max,
            w.mean,
            w.changes,
            w.worker_seconds,
            m.throughput_per_s,
            100.0 * m.throughput_per_s / fixed.throughput_per_s,
            m.latency.response.p99,
            m.latency.service.mean,
            m.latency.service.p99
        );
        if *a != Adapt::Off {
            assert!(s.adapt.is_some_and(|v| v.algorithm == *a && v.windows > 0), "{a} decided nothing: {:?}", s.adapt);
            assert!(w.min >= 1 && w.max <= 40, "{a} left its bounds: {w:?}");
        }
    }
}

/// A downstream of `contention` σ and `coherency` κ (5 ms service) under `rate`, more than it
/// can take; `adapt` started at `workers`.
fn downstream(adapt: Adapt, workers: usize, sigma: f64, kappa: f64, rate: f64, seed: u64) -> Settings {
    Settings {
        contention: sigma,
        coherency: kappa,
        rate: Rate::PerSec(rate),
        timeout: None,
        ..contention(adapt, workers, seed)
    }
}

/// Runs `s` for `warmup` + `measured` (100 ms ticks), reading every snapshot: the last one,
/// and the lowest and highest control setting (`adapt.limit`) the measured part saw.
fn run_watching_the_limit(s: Settings, measured: Duration, warmup: Duration) -> (Snapshot, f64, f64) {
    let engine = EngineHandle::start(s, timed(warmup + measured, warmup)).expect("valid settings");
    let (mut rx, start) = (engine.subscribe(), std::time::Instant::now());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    loop {
        let snap = rx.borrow_and_update().clone();
        if snap.finished {
            break;
        }
        if let (Some(a), true) = (snap.adapt, start.elapsed() > warmup) {
            (lo, hi) = (lo.min(a.limit), hi.max(a.limit));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (engine.join(), lo, hi)
}

/// Hill climbing keeps .NET's bias (0.15: a worker must add 15% of its share of throughput),
/// which aims it at d ln X / d ln N = 0.15, about 0.8 N*, where the curve is flat: what it must
/// show is throughput, not position. On two downstreams — σ 0.1, κ 0.01 (N* 9.5, 9 workers best
/// at 714/s) under 1,200 jobs/s and σ 0.05, κ 0.002 (N* 21.8, 22 best at 1,479/s) under 2,000
/// — started from 2 and from 4 workers, beside the best static pool in the same run (45 s and
/// 70 s to settle, 20 s measured): the median of the seeds' throughput ≥ 0.95× the static
/// pool's, and the median mean count ≤ 1.1 N*. On a downstream that does not push back (no
/// contention, 20 workers at 1,000 jobs/s, ρ 0.25) its control setting stays within 10% of
/// where it started.
///
/// Tolerance: completions over T = 20 s at X/s vary like a Poisson count at most (a saturated
/// pool completes more regularly), a standard error of √(X/T): 6.0/s at 714/s and 8.6/s at
/// 1,479/s, so a ratio of two independent runs has a standard error of √2·√(X/T)/X = 1.2% and
/// 0.8%. At its aim the bias costs 1.6% and 1.7% of the peak's throughput (the USL at 7.6 and
/// 17.2 workers), so the 5% bar stands 2.8 and 4.1 of those errors below where a settled run is
/// expected.
///
/// The controller's own wandering is larger than the counting noise, and it decides how many
/// seeds the median needs. Its samples are the engine's 100 ms ticks, about 70 completions on
/// the first curve (a 12% counting error each), so the gradient it steers by is noisy and its
/// restoring force near the aim is small (the square of the gradient left). Simulated (.NET's
/// algorithm on the USL with Poisson counts, 600 runs per row), one run's 20 s after 30 s of
/// settling lands below 0.95× the peak in 17% of runs, and in 25% with another 10% of noise per
/// sample from a busy host; a median of 3 then fails 6% and 12% of the time per start, which is
/// what CI saw once (0.937× from 2: seeds at 6.7 and 6.4 workers). After 45 s, a median of 5
/// fails 1% and 3–5%. So 5 seeds and 45 s on the first curve; the second is flatter at its aim
/// (its seeds land at 0.97–1.0×).
#[test]
fn hill_climbing_keeps_the_best_static_pools_throughput() {
    const SEEDS: u64 = 5;
    if instrumented() {
        return;
    }
    let _g = exclusive();
    let measured = Duration::from_secs(20);
    // (σ, κ, the rate, the best static count, the time to settle): from 2 workers the climb
    // nears 0.8 N* in about 15 s on the first curve and 60 s on the second, and its last steps
    // are small (the gain is the square of the gradient left, which vanishes at the aim):
    // simulated, the median seed's mean count is 7.3 after 30 s and 7.5 after 45 s (aim 7.6).
    let curves = [(0.1, 0.01, 1200.0, 9usize, 45), (0.05, 0.002, 2000.0, 22, 70)];
    for &(sigma, kappa, rate, best, _) in &curves {
        assert_eq!(Usl::of(&downstream(Adapt::Off, best, sigma, kappa, rate, 1)).best_workers(), Some(best as u32));
    }
    // Each batch runs its seeds at once: the static pool and hill climbing from each start.
    // The first curve runs one start at a time (10 engines): a busier host is a noisier sample,
    // the wave grows with the noise, and the mean count with it (all 15 of its engines at once,
    // under a CPU hog, averaged 8.5–11.5 workers from 4, against 7.5–8.9 with 3 seeds; 1.1 N* is
    // 10.4). The second, flatter curve runs both starts at once, with the flat downstream's three
    // seeds watched beside it (18 engines).
    let batches: [(usize, &[usize]); 3] = [(0, &[2]), (0, &[4]), (1, &[2, 4])];
    let (mut ratios, mut counts) = (vec![vec![Vec::new(); 2]; 2], vec![vec![Vec::new(); 2]; 2]);
    let mut flat = Vec::new();
    for &(c, starts) in &batches {
        let (sigma, kappa, rate, best, settle) = curves[c];
        let warmup = Duration::from_secs(settle);
        let mut all = Vec::new();
        for seed in 1..=SEEDS {
            all.push(downstream(Adapt::Off, best, sigma, kappa, rate, seed));
            for &start in starts {
                all.push(downstream(Adapt::HillClimb, start, sigma, kappa, rate, seed));
            }
        }
        let watched: Vec<_> = (1..=3u64)
            .filter(|_| c == 1)
            .map(|seed| {
                let level = Settings {
                    contention: 0.0,
                    coherency: 0.0,
                    rate: Rate::PerSec(1000.0),
                    ..contention(Adapt::HillClimb, 20, seed)
                };
                std::thread::spawn(move || run_watching_the_limit(level, measured, warmup))
            })
            .collect();
        let last = side_by_side(all, measured, warmup);
        flat.extend(watched.into_iter().map(|h| h.join().expect("the flat run ended")));
        for s in &last {
            assert_accounted(s);
        }
        for (i, runs) in last.chunks(1 + starts.len()).enumerate() {
            let fixed = runs[0].measured.throughput_per_s;
            for (&start, s) in starts.iter().zip(&runs[1..]) {
                let m = &s.measured;
                eprintln!(
                    "seed {} σ {sigma} κ {kappa} from {start}: {:.0}/s ({:.3}× static {fixed:.0}/s), workers mean {:.2} ({}..{}), p99 {:.1} ms",
                    i + 1,
                    m.throughput_per_s,
                    m.throughput_per_s / fixed,
                    m.workers.mean,
                    m.workers.min,
                    m.workers.max,
                    m.latency.response.p99
                );
                let k = usize::from(start == 4);
                ratios[c][k].push(m.throughput_per_s / fixed);
                counts[c][k].push(m.workers.mean);
            }
        }
    }
    for (s, ..) in &flat {
        assert_accounted(s);
    }
    for (c, &(sigma, kappa, ..)) in curves.iter().enumerate() {
        let peak = Usl::of(&downstream(Adapt::Off, 1, sigma, kappa, 1.0, 1)).peak().expect("a peak");
        for (k, start) in [2, 4].into_iter().enumerate() {
            let (ratio, count) = (median(ratios[c][k].clone()), median(counts[c][k].clone()));
            assert!(
                ratio >= 0.95,
                "σ {sigma} κ {kappa} from {start}: median {ratio:.3}× the static pool's throughput: {:?}",
                ratios[c][k]
            );
            assert!(
                count <= 1.1 * peak,
                "σ {sigma} κ {kappa} from {start}: median mean count {count:.2} > 1.1 N* = {:.2}",
                1.1 * peak
            );
        }
    }
    for (seed, (s, lo, hi)) in flat.iter().enumerate() {
        let w = &s.measured.workers;
        eprintln!(
            "seed {} flat from 20: limit {lo:.2}..{hi:.2}, workers {}..{} mean {:.2}",
            seed + 1,
            w.min,
            w.max,
            w.mean
        );
        assert!(
            *lo >= 18.0 && *hi <= 22.0,
            "seed {}: on a flat downstream the control moved to {lo:.2}..{hi:.2} from 20",
            seed + 1
        );
    }
}

/// Switching algorithms, bounds and the count itself while jobs flow never panics and never
/// loses a job; `off` hands the count back to the operator where the controller left it.
#[test]
fn switching_controllers_live_loses_nothing() {
    let _g = exclusive();
    let s = Settings { workers: 4, rate: Rate::PerSec(800.0), service: Duration::from_millis(5), ..settings() };
    let opts = RunOptions { interval: Duration::from_millis(50), ..RunOptions::default() };
    let engine = EngineHandle::start(s, opts).expect("valid settings");
    let steps = [
        Knob::Adapt(Adapt::HillClimb),
        Knob::Workers(9),
        Knob::Adapt(Adapt::Vegas),
        Knob::WorkersMax(6),
        Knob::Adapt(Adapt::Gradient2),
        Knob::WorkersMin(3),
        Knob::Adapt(Adapt::Aimd),
        Knob::Timeout(Some(Duration::from_millis(2))),
        Knob::Adapt(Adapt::HillClimb),
        Knob::Workers(2),
        Knob::Adapt(Adapt::Off),
    ];
    for k in steps {
        engine.try_send(Command::Set(k)).expect("the engine takes commands");
        std::thread::sleep(Duration::from_millis(400));
    }
    let before = wait_for(&engine, Duration::from_secs(10), "adapt off", |s| s.settings.adapt == Adapt::Off);
    assert!(before.adapt.is_none(), "off drops the controller: {:?}", before.adapt);
    // Refused before it is sent: a range holding no count; the settings stay as they were.
    let err = engine.try_send(Command::Set(Knob::WorkersMin(10))).expect_err("min above max");
    assert!(err.to_string().contains("workers_min 10 is above workers_max 6"), "{err}");
    let after = wait_for(&engine, Duration::from_secs(10), "every command", |s| s.commands >= 11);
    assert_eq!((after.settings.workers_min, after.settings.workers_max), (3, 6));
    engine.try_send(Command::Shutdown).expect("sent");
    let last = engine.join();
    assert_accounted(&last);
    assert!(last.totals.completed > 1000, "jobs flowed throughout: {:?}", last.totals);
}

/// The distinct worker counts in a CSV series, in order, with repeats collapsed.
fn counts_in_series(csv: &str) -> Vec<usize> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = header.iter().position(|c| *c == "workers").expect("a workers column");
    let mut out: Vec<usize> = lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect();
    out.dedup();
    out
}

/// A controller's decisions are recorded as `workers` phases; replayed with `--adapt off` they
/// are the worker counts the run goes through, in the same order.
#[test]
fn decisions_are_recorded_and_replay_as_recorded() {
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let (rec, first, again) = (dir.path().join("rec.toml"), dir.path().join("a.csv"), dir.path().join("b.csv"));
    let bin = env!("CARGO_BIN_EXE_pooltune");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).stdin(std::process::Stdio::null()).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let common = ["--rate", "1200", "--service", "5ms", "--contention", "0.1", "--coherency", "0.01"];
    let mut args = vec!["run", "--headless", "--adapt", "hill-climb", "--workers", "2", "--threads", "2"];
    args.extend(common);
    args.extend(["--interval", "100ms", "--duration", "6s", "--record", rec.to_str().unwrap()]);
    args.extend(["--csv", first.to_str().unwrap()]);
    run(&args);
    let profile = std::fs::read_to_string(&rec).unwrap();
    assert!(profile.contains("adapt = \"hill-climb\""), "{profile}");
    let recorded = counts_in_series(&std::fs::read_to_string(&first).unwrap());
    assert!(recorded.len() > 3, "hill climbing moved the count: {recorded:?}");
    assert_eq!(profile.matches("workers = ").count(), recorded.len(), "one phase a change, and the start: {profile}");
    run(&["run", rec.to_str().unwrap(), "--headless", "--adapt", "off", "--csv", again.to_str().unwrap()]);
    let replayed = counts_in_series(&std::fs::read_to_string(&again).unwrap());
    assert_eq!(replayed, recorded);
}

/// The `contention` profile's law (σ 0.1, κ 0.01: N* = √90 ≈ 9.49) around 5 ms jobs, kept in the
/// job itself: each job sleeps 5 ms × (1 + σ(N − 1) + κN(N − 1)), N the jobs inside as it
/// starts (itself included).
fn contended() -> Arc<dyn pooltune::work::Work> {
    // pooltune's own precise timer: tokio's rounds every sleep up to the next millisecond, which
    // would add about 0.5 ms to each job and move the law's peak from 9.5 to about 10.4.
    let timer = Arc::new(Timer::start());
    let inside = Arc::new(AtomicUsize::new(0));
    Arc::new(move |_ctx: JobContext| {
        let (inside, timer) = (Arc::clone(&inside), Arc::clone(&timer));
        async move {
            #[allow(clippy::cast_precision_loss)]
            let n = (inside.fetch_add(1, Ordering::SeqCst) + 1) as f64;
            let law = Usl { contention: 0.1, coherency: 0.01, capacity: None };
            timer.sleep(Duration::from_secs_f64(0.005 * law.stretch(n))).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), String>(())
        }
    })
}

fn run_contended(s: Settings, measured: Duration, warmup: Duration) -> Snapshot {
    let opts = timed(warmup + measured, warmup);
    EngineHandle::start_with(s, opts, Some(contended())).expect("valid settings").join()
}

/// Under 1,200 jobs/s, more than the law's peak (714/s at 9 workers) can take, with a p99 target
/// no pool meets: `slo`, started at 4 with up to 40 workers, must fit the curve from what it
/// sees and keep the pool in front of its peak — never past 1.1 N* on average once settled, and
/// at least 0.95× the static optimum's throughput (9 workers of the same job, side by side).
/// Median of 3 seeds, 30 s to settle, 20 s measured.
///
/// Tolerance: completions over T = 20 s at X ≈ 700/s have a standard error of √(X/T) ≈ 5.9/s,
/// a ratio of two runs √2·5.9/700 = 1.2%; the peak is flat (8 or 11 workers give 99% of 9's), so
/// a controller in front of it is expected near 1.0×, and the 5% bar stands 4 of those errors
/// below; the median of 3 falls below it only if two runs do.
#[test]
fn slo_fits_a_downstream_it_was_not_told_and_stays_in_front_of_its_peak() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    let (measured, warmup) = (Duration::from_secs(20), Duration::from_secs(30));
    let peak = 90f64.sqrt();
    let base = |seed| Settings {
        service: Duration::from_millis(5),
        rate: Rate::PerSec(1200.0),
        queue: 200,
        policy: Policy::Reject,
        workers_max: 40,
        slo_p99: Some(Duration::from_millis(100)),
        seed,
        ..settings()
    };
    let mut runs = Vec::new();
    for seed in 1..=3u64 {
        runs.push(Settings { workers: 9, ..base(seed) });
        runs.push(Settings { workers: 4, adapt: Adapt::Slo, ..base(seed) });
    }
    let handles: Vec<_> =
        runs.into_iter().map(|s| std::thread::spawn(move || run_contended(s, measured, warmup))).collect();
    let last: Vec<Snapshot> = handles.into_iter().map(|h| h.join().expect("the run ended")).collect();
    let (mut ratios, mut counts) = (Vec::new(), Vec::new());
    for (i, pair) in last.chunks(2).enumerate() {
        assert_accounted(&pair[0]);
        assert_accounted(&pair[1]);
        let (fixed, slo) = (&pair[0].measured, &pair[1].measured);
        let ratio = slo.throughput_per_s / fixed.throughput_per_s;
        eprintln!(
            "seed {}: slo {:.0}/s ({ratio:.3}× static 9: {:.0}/s), workers mean {:.2} ({}..{}), {} changes; state {:?}",
            i + 1,
            slo.throughput_per_s,
            fixed.throughput_per_s,
            slo.workers.mean,
            slo.workers.min,
            slo.workers.max,
            slo.workers.changes,
            pair[1].adapt.map(|a| a.state.to_string())
        );
        ratios.push(ratio);
        counts.push(slo.workers.mean);
    }
    let (ratio, count) = (median(ratios.clone()), median(counts.clone()));
    assert!(ratio >= 0.95, "median {ratio:.3}× the static optimum's throughput: {ratios:?}");
    assert!(count <= 1.1 * peak, "median mean count {count:.2} past 1.1 N* = {:.2}: {counts:?}", 1.1 * peak);
}
