//! `cargo bench --bench engine`: the figures the README quotes, each measured side by side in
//! one run so that ratios are comparable on a noisy shared machine.
//!
//! (a) ceiling: completed jobs/s at zero service with 1, 2, 4, 8 workers, beside a bare tokio
//!     channel pool of the same shape (one producer, N consumers sharing one receiver);
//! (b) timer precision at 100 µs, 200 µs, 1 ms and 10 ms: pooltune's timer and tokio's beside
//!     this machine's floor (a busy-waiting thread) and the OS's own sleep, interleaved rounds,
//!     and the timer thread's CPU cost (see `engine/timer.rs`);
//! (c) recording cost per job;
//! (d) the dashboard's cost: rendering a 200×60 frame, and the ceiling with the dashboard drawing
//!     beside a headless follower;
//! (e) with `--features console` only: tokio-console's cost, the ceiling of the same build with
//!     no subscriber and then with the console's layer installed and serving;
//! (f) replaying a trace against the Poisson generator: the same Poisson arrivals at 2,000/s,
//!     once drawn by the producer and once read from a trace of them, on a pool with room to
//!     spare (64 workers, 100 µs constant service), so a job's wait is the producer's lateness
//!     and the hand-off; three rounds alternating, wait p50, p99 and p99.9 of each;
//! (g) the pool's own overhead in a run's exact account, pooltune against the bare channel pool
//!     of (a) instrumented the same way (`engine/account.rs`).
//!
//! `BENCH_SECONDS` (default 2) sets each ceiling measurement's length; `BENCH_SECTIONS` (for
//! example `ae`) runs only those sections; `BENCH_THREADS` sets the runtime threads (default:
//! one per core); `BENCH_TIMERS` picks section (b)'s variants of the timer (see there).

#[path = "engine/account.rs"]
mod account;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::metrics::recorder::{Batch, JobTimes, Kind, Recorders, ShardStats};
use pooltune::settings::{Rate, Settings};
use pooltune::tui::State;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[path = "engine/timer.rs"]
mod timer;

fn seconds() -> Duration {
    let s = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

/// Whether section `letter` runs (`BENCH_SECTIONS` unset: all of them).
fn wants(letter: char) -> bool {
    std::env::var("BENCH_SECTIONS").map_or(true, |v| v.contains(letter))
}

/// Runtime threads: `BENCH_THREADS`, or pooltune's default.
fn threads() -> usize {
    std::env::var("BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or_else(pooltune::settings::default_threads)
}

/// A ceiling run: `--rate max`, zero service, `workers` workers, `run` measured after 300 ms.
fn ceiling(workers: usize, run: Duration) -> (Settings, RunOptions) {
    let s = Settings {
        workers,
        rate: Rate::Max,
        service: Duration::ZERO,
        queue: 1024,
        threads: threads(),
        ..Settings::default()
    };
    let warm = Duration::from_millis(300);
    (s, RunOptions { duration: Some(run + warm), warmup: warm, ..RunOptions::default() })
}

/// The engine's ceiling: completed jobs per second.
fn engine_ceiling(workers: usize, run: Duration) -> f64 {
    let (s, opts) = ceiling(workers, run);
    EngineHandle::start(s, opts).unwrap().join().measured.throughput_per_s
}

/// A bare pool: one producer, `workers` consumers sharing one receiver, no instrumentation.
fn bare_ceiling(workers: usize, run: Duration) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads()).enable_all().build().unwrap();
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<u64>(1024);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut consumers = Vec::new();
        for _ in 0..workers {
            let (rx, done) = (Arc::clone(&rx), Arc::clone(&done));
            consumers.push(tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    let job = rx.lock().await.recv().await;
                    if job.is_none() {
                        break;
                    }
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            }));
        }
        let (stop2, sent) = (Arc::clone(&stop), Arc::new(AtomicU64::new(0)));
        let sent2 = Arc::clone(&sent);
        let producer = tokio::spawn(async move {
            let mut i = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                if tx.send(i).await.is_err() {
                    break;
                }
                i += 1;
                // One relaxed store: the bench's only reading of the bare pool's progress.
                sent2.store(i, Ordering::Relaxed);
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Over the measured stretch, jobs sent = jobs consumed ± the channel's 1024 places.
        let (start, from) = (Instant::now(), sent.load(Ordering::Relaxed));
        tokio::time::sleep(run).await;
        let (secs, to) = (start.elapsed().as_secs_f64(), sent.load(Ordering::Relaxed));
        stop.store(true, Ordering::Relaxed);
        let _ = producer.await;
        for c in consumers {
            let _ = c.await;
        }
        assert!(done.load(Ordering::Relaxed) >= to, "every sent job was consumed");
        (to - from) as f64 / secs
    })
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Nanoseconds to record one job: through a worker's batch (the engine's path), with one
/// shard lock a job, and through the batch keeping its instants for the account.
fn recording_cost() -> (f64, f64, f64) {
    let r = Recorders::new(1);
    let shard = r.shard(0);
    let n = 2_000_000u32;
    let t0 = Instant::now();
    let times = |i: u32| {
        let at = t0 + Duration::from_nanos(u64::from(i));
        JobTimes {
            intended: at,
            enqueued: at,
            ready: at,
            fetched: at + Duration::from_micros(3),
            start: at + Duration::from_micros(3),
            end: at + Duration::from_micros(50),
            asked: Duration::from_micros(47),
        }
    };
    let start = Instant::now();
    {
        let mut batch = Batch::new(&r, 0);
        for i in 0..n {
            shard.start();
            batch.push(times(i), Kind::Ok);
        }
    }
    let batched = start.elapsed().as_nanos() as f64 / f64::from(n);
    let start = Instant::now();
    for i in 0..n {
        shard.start();
        shard.finish(times(i), Kind::Ok);
    }
    let locked = start.elapsed().as_nanos() as f64 / f64::from(n);
    // Keeping each job's instants for the account: two untimed passes first, drained as the
    // aggregator drains a tick, so the shard's vector has its room (as after a run's first
    // ticks); 3 × 150,000 jobs stay within the 500,000 a run keeps.
    r.keep_jobs(true);
    let (mut spares, mut into) = (vec![ShardStats::new()], ShardStats::new());
    let kept = 150_000u32;
    let mut pass = || {
        let start = Instant::now();
        let mut batch = Batch::new(&r, 0);
        for i in 0..kept {
            shard.start();
            batch.push(times(i), Kind::Ok);
        }
        drop(batch);
        let ns = start.elapsed().as_nanos() as f64 / f64::from(kept);
        r.drain_into(&mut spares, &mut into);
        assert_eq!(into.jobs.len(), kept as usize, "every job kept");
        into.clear();
        ns
    };
    let (_, _, keeping) = (pass(), pass(), pass());
    (batched, locked, keeping)
}

/// The engine's ceiling (4 workers) with a client following its snapshots on another thread:
/// either a headless follower that only reads them, or the dashboard's state update plus a
/// 200×60 render whenever something changed, at most 30 frames a second (as the run loop does).
fn ceiling_with_client(dashboard: bool, run: Duration) -> f64 {
    let (s, opts) = ceiling(4, run);
    let engine = EngineHandle::start(s, opts).unwrap();
    let mut rx = engine.subscribe();
    let mut state = State::new(engine.latest(), opts.interval);
    let client = std::thread::spawn(move || {
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
        let frame = Duration::from_millis(1000 / pooltune::tui::app::FPS);
        loop {
            if rx.has_changed().is_err() {
                break;
            }
            if rx.has_changed().unwrap_or(false) {
                let snap = rx.borrow_and_update().clone();
                let finished = snap.finished;
                if dashboard {
                    state.on_snapshot(snap);
                }
                if finished {
                    break;
                }
            }
            if dashboard && std::mem::take(&mut state.dirty) {
                terminal.draw(|f| f.render_widget(&state, f.area())).unwrap();
            }
            std::thread::sleep(frame);
        }
    });
    let last = engine.join();
    let _ = client.join();
    last.measured.throughput_per_s
}

/// Mean and p99 time to render one 200×60 frame, from a state fed by 3 s of a real engine run.
fn frame_cost() -> (f64, f64) {
    let opts = RunOptions {
        duration: Some(Duration::from_secs(3)),
        interval: Duration::from_millis(50),
        ..RunOptions::default()
    };
    let engine = EngineHandle::start(Settings { threads: threads(), ..Settings::default() }, opts).unwrap();
    let mut rx = engine.subscribe();
    let mut state = State::new(engine.latest(), opts.interval);
    while rx.has_changed().is_ok() {
        if rx.has_changed().unwrap_or(false) {
            let snap = rx.borrow_and_update().clone();
            let done = snap.finished;
            state.on_snapshot(snap);
            if done {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = engine.join();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut times: Vec<f64> = (0..300)
        .map(|_| {
            let t = Instant::now();
            terminal.draw(|f| f.render_widget(&state, f.area())).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    (mean, percentile(&mut times, 0.99))
}

/// Alternating pairs of ceiling runs for the dashboard comparison.
const PAIRS: usize = 9;

fn main() {
    let run = seconds();
    println!("pooltune benchmarks ({} runtime threads, {:.1} s per ceiling run)\n", threads(), run.as_secs_f64());
    // Single ceiling runs here are bimodal (where tokio places producer and consumers), so each
    // figure is the median of 5 runs, the two pools alternating.
    if wants('a') {
        section_a(run);
    }
    if wants('b') {
        timer::section_b(threads());
    }
    if wants('d') {
        section_d(run);
    }
    if wants('c') {
        let (batched, locked, keeping) = recording_cost();
        println!(
            "\n(c) recording one job (3 histograms + sums): {batched:.1} ns through a worker's batch, {locked:.1} ns with a lock a job, {keeping:.1} ns through the batch keeping its instants for the account"
        );
    }
    #[cfg(feature = "console")]
    if wants('e') {
        section_e(run);
    }
    if wants('f') {
        section_f();
    }
    if wants('g') {
        account::section_g(threads());
    }
}

/// The wait distribution (p50, p99, p99.9, ms) of one 5 s run of 2,000 Poisson arrivals a
/// second, replayed from `trace` when given, else drawn by the producer.
fn lateness(trace: Option<&pooltune::engine::replay::Arrivals>) -> [f64; 3] {
    use pooltune::settings::{ArrivalKind, ServiceDist};
    let s = Settings {
        workers: 64,
        queue: 100_000,
        rate: Rate::PerSec(2000.0),
        arrival: if trace.is_some() { ArrivalKind::Trace } else { ArrivalKind::Poisson },
        service: Duration::from_micros(100),
        service_dist: ServiceDist::Constant,
        threads: threads(),
        seed: 3,
        ..Settings::default()
    };
    let opts = RunOptions {
        duration: Some(Duration::from_secs(5)),
        warmup: Duration::from_millis(500),
        ..RunOptions::default()
    };
    let engine = EngineHandle::start_replay(s, opts, None, pooltune::engine::QueueChoice::InProcess, trace.cloned())
        .expect("valid settings");
    let w = engine.join().measured.latency.wait;
    [w.p50, w.p99, w.p999]
}

fn section_f() {
    use pooltune::engine::replay::Arrivals;
    // 6 s of Poisson arrivals at 2,000/s, the trace the producer would have drawn.
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let (mut t, mut offsets) = (0.0f64, Vec::new());
    while t < 6.0 {
        offsets.push((t * 1e9) as u64);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        t += -(1.0 - (rng >> 11) as f64 / (1u64 << 53) as f64).ln() / 2000.0;
    }
    let trace = pooltune::trace::Trace { offsets, ..pooltune::trace::Trace::default() };
    let a = Arrivals::new(Arc::new(trace), false).expect("a trace with a rate");
    println!("\n(f) a trace replayed against the Poisson generator, 2,000/s, 64 workers, 100 µs: wait ms");
    println!("round   trace p50    p99  p99.9   poisson p50    p99  p99.9");
    for round in 1..=3 {
        let (r, p) = (lateness(Some(&a)), lateness(None));
        println!("{round:>5} {:>11.3} {:>6.3} {:>6.3} {:>13.3} {:>6.3} {:>6.3}", r[0], r[1], r[2], p[0], p[1], p[2]);
    }
}

fn section_a(run: Duration) {
    println!("(a) ceiling, completed jobs/s at zero service, median of 5 alternating runs each");
    println!("workers   pooltune      bare pool     ratio");
    for workers in [1, 2, 4, 8] {
        let (mut bare, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            bare.push(bare_ceiling(workers, run));
            ours.push(engine_ceiling(workers, run));
        }
        let (b, o) = (percentile(&mut bare, 0.5), percentile(&mut ours, 0.5));
        println!("{workers:>7} {o:>10.0} {b:>13.0} {:>9.2}x", o / b);
    }
}

fn section_d(run: Duration) {
    println!("\n(d) the dashboard's cost");
    let (mean, p99) = frame_cost();
    println!("rendering one 200×60 frame: mean {mean:.0} µs, p99 {p99:.0} µs");
    // Single ceiling runs here are bimodal (where tokio places the producer and the workers), so
    // the two clients alternate over five pairs and their medians are compared.
    let (mut headless, mut dash) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        headless.push(ceiling_with_client(false, run));
        dash.push(ceiling_with_client(true, run));
    }
    println!("headless runs  {headless:.0?}\ndashboard runs {dash:.0?}");
    let (h, d) = (percentile(&mut headless, 0.5), percentile(&mut dash, 0.5));
    println!(
        "ceiling (4 workers), median of {PAIRS} alternating runs: headless follower {h:.0}/s, dashboard drawing at 30 fps {d:.0}/s: {:.2}x",
        d / h
    );
}

/// The ceiling on one runtime thread: with two, where tokio places the producer and the
/// workers makes single runs bimodal (see (a)), which hides a cost of this size.
#[cfg(feature = "console")]
fn one_thread_ceiling(run: Duration) -> f64 {
    let (mut s, opts) = ceiling(4, run);
    s.threads = 1;
    EngineHandle::start(s, opts).unwrap().join().measured.throughput_per_s
}

/// tokio-console's cost. A global subscriber cannot be taken down again, so the runs without
/// it come first; each figure is the median of 5 runs.
#[cfg(feature = "console")]
fn section_e(run: Duration) {
    use tracing_subscriber::prelude::*;
    println!(
        "\n(e) tokio-console's cost, this build (tokio/tracing compiled in): ceiling, 4 workers, 1 runtime thread"
    );
    let measure = || {
        let mut v: Vec<f64> = (0..5).map(|_| one_thread_ceiling(run)).collect();
        println!("  runs {v:.0?}");
        percentile(&mut v, 0.5)
    };
    println!("no subscriber:");
    let without = measure();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let layer = console_subscriber::ConsoleLayer::builder().server_addr(addr).spawn();
    tracing_subscriber::registry().with(layer).init();
    println!("console layer serving on {addr}:");
    let with = measure();
    println!("medians: {without:.0}/s without, {with:.0}/s with the console: {:.2}x", with / without);
}
