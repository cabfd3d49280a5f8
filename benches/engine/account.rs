//! Section (g) of the engine bench: the pool's own overhead in the exact account of a run
//! (`pooltune::metrics::account`), pooltune against the bare tokio channel pool of section (a),
//! instrumented the same way: each job's intended arrival, enqueue, start, end and asked service
//! kept, and the same replay through the model's exact FIFO pool. Both pools sleep their services
//! and their arrivals on the same precise timer, so what differs is the hand-off alone.
//!
//! M/M/4 at ρ 0.7, 1 ms exponential service; `BENCH_ACCOUNT_SECONDS` (default 8) per run,
//! after a 1 s warm-up; three rounds, the two pools alternating; medians and spread printed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pooltune::engine::timer::Timer;
use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::metrics::account::{Entry, JobLog, Replay};
use pooltune::settings::{ArrivalKind, Rate, ServiceDist, Settings};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};

const WORKERS: usize = 4;
const SERVICE: Duration = Duration::from_millis(1);
const RHO: f64 = 0.7;
const WARM: Duration = Duration::from_secs(1);

fn seconds() -> Duration {
    let s = std::env::var("BENCH_ACCOUNT_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(8.0);
    Duration::from_secs_f64(s)
}

fn rate() -> f64 {
    RHO * WORKERS as f64 / SERVICE.as_secs_f64()
}

/// pooltune's account of one run.
fn engine(threads: usize, run: Duration, seed: u64) -> Replay {
    let s = Settings {
        workers: WORKERS,
        queue: 100_000,
        arrival: ArrivalKind::Poisson,
        rate: Rate::PerSec(rate()),
        service: SERVICE,
        service_dist: ServiceDist::Exponential,
        threads,
        seed,
        ..Settings::default()
    };
    let opts = RunOptions { duration: Some(run + WARM), warmup: WARM, ..RunOptions::default() };
    EngineHandle::start(s, opts).unwrap().join().account.expect("a run with jobs has an account")
}

/// A job of the bare pool: intended arrival, enqueue, asked service.
type BareJob = (Instant, Instant, Duration);

/// The bare pool's account of one run: one producer drawing Poisson arrivals and exponential
/// services and sending them into a tokio mpsc channel, `WORKERS` consumers sharing its receiver
/// behind a tokio mutex (section (a)'s shape), each serving a job by sleeping on the same timer.
fn bare(threads: usize, run: Duration, seed: u64) -> Replay {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    let timer = Timer::start();
    let epoch = Instant::now();
    let kept: Arc<Mutex<Vec<Entry>>> = Arc::default();
    let start = Instant::now() + Duration::from_millis(50);
    let (warm_end, end) = (start + WARM, start + WARM + run);
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel::<BareJob>(100_000);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut consumers = Vec::new();
        for _ in 0..WORKERS {
            let (rx, timer, kept) = (Arc::clone(&rx), timer.clone(), Arc::clone(&kept));
            consumers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let Some((intended, enqueued, asked)) = rx.lock().await.recv().await else { break };
                    let begin = Instant::now();
                    timer.sleep_until(begin + asked).await;
                    let done = Instant::now();
                    let ns = |t: Instant| t.saturating_duration_since(epoch).as_nanos() as u64;
                    mine.push(Entry {
                        intended: ns(intended),
                        enqueued: ns(enqueued),
                        start: ns(begin),
                        end: ns(done),
                        asked: asked.as_nanos() as u64,
                        // The window: jobs intended after the warm-up, as the engine's counts
                        // the jobs that end after it (the same jobs, but for the edge).
                        counted: intended >= warm_end,
                    });
                }
                kept.lock().unwrap().extend(mine);
            }));
        }
        let producer_timer = timer.clone();
        let producer = tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed);
            let (gaps, serve) = (Exp::new(rate()).unwrap(), Exp::new(1.0 / SERVICE.as_secs_f64()).unwrap());
            let mut at = start;
            while at < end {
                producer_timer.sleep_until(at).await;
                let asked = Duration::from_secs_f64(serve.sample(&mut rng));
                if tx.send((at, Instant::now(), asked)).await.is_err() {
                    break;
                }
                at += Duration::from_secs_f64(gaps.sample(&mut rng));
            }
        });
        let _ = producer.await;
        for c in consumers {
            let _ = c.await;
        }
    });
    let mut log = JobLog::default();
    let mut all = std::mem::take(&mut *kept.lock().unwrap());
    log.take(&mut all, true);
    log.replay(WORKERS as u32, true).expect("jobs in the window")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Section (g): three alternating rounds, the overhead's mean in µs and as a share of the mean
/// response, and the ratio of the medians.
pub fn section_g(threads: usize) {
    let run = seconds();
    println!(
        "\n(g) the pool's overhead in the exact account: M/M/{WORKERS}, ρ {RHO}, 1 ms exponential service, {:.0} s runs",
        run.as_secs_f64()
    );
    println!("round  pool       jobs   response µs  overhead µs   share   p99 µs   lateness µs  inflation µs");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=3u64 {
        for (name, r) in [("pooltune", engine(threads, run, round)), ("bare", bare(threads, run, round))] {
            let share = r.overhead.mean / r.measured.mean;
            println!(
                "{round:>5}  {name:<8} {:>7} {:>13.1} {:>12.2} {:>6.2}% {:>8.1} {:>13.1} {:>13.1}",
                r.jobs,
                r.measured.mean * 1e3,
                r.overhead.mean * 1e3,
                share * 100.0,
                r.overhead.p99 * 1e3,
                r.lateness.mean * 1e3,
                r.inflation.mean * 1e3
            );
            let v = if name == "bare" { &mut theirs } else { &mut ours };
            v.push((r.overhead.mean * 1e3, share));
        }
    }
    let spread = |v: &[(f64, f64)]| {
        let lo = v.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
        let hi = v.iter().map(|x| x.0).fold(0.0, f64::max);
        (lo, hi)
    };
    let (o, b) = (
        median(&mut ours.iter().map(|x| x.0).collect::<Vec<_>>()),
        median(&mut theirs.iter().map(|x| x.0).collect::<Vec<_>>()),
    );
    let (os, bs) = (
        median(&mut ours.iter().map(|x| x.1).collect::<Vec<_>>()),
        median(&mut theirs.iter().map(|x| x.1).collect::<Vec<_>>()),
    );
    let ((olo, ohi), (blo, bhi)) = (spread(&ours), spread(&theirs));
    println!(
        "medians: pooltune overhead {o:.2} µs ({:.2}% of the response; {olo:.2}–{ohi:.2}), bare pool {b:.2} µs ({:.2}%; {blo:.2}–{bhi:.2}): {:.2}x (goal ≤ 1.2x)",
        os * 100.0,
        bs * 100.0,
        o / b
    );
}
