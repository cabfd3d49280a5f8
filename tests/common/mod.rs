//! Helpers shared by the integration tests.
#![allow(dead_code)]

// Broker runs through the binary: built with the command line (which brings the broker).
#[cfg(feature = "cli")]
pub mod procs;
pub mod prometheus;
#[cfg(feature = "cli")]
pub mod scenarios;
pub mod servers;
pub mod tls;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::metrics::Snapshot;
use pooltune::settings::Settings;
use pooltune::sweep::{Plan, SweepReport};

/// Runs that measure queueing behaviour take the machine one at a time, so two of them never
/// compete for the same two cores.
static HEAVY: Mutex<()> = Mutex::new(());

pub fn exclusive() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// With the `console` feature, tokio instruments every task (`tokio/tracing`), and each poll
/// and wake-up costs more: measured here, the M/M/4 run's mean response then sat 8–14% above
/// the model (against +1–4% in the default build), the instrumentation's own cost rather than
/// the queue's. The statistical comparisons judge the engine as users measure with it, so they
/// run in the default build (`cargo test`, which `.ci/run` runs too); under the feature they
/// print this one line and return early.
pub fn instrumented() -> bool {
    if cfg!(feature = "console") {
        eprintln!("skipped under --features console: task instrumentation slows every hand-off; run `cargo test`");
        return true;
    }
    false
}

/// The middle value (of an odd count; the upper middle of an even one).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn settings() -> Settings {
    Settings { threads: 2, ..Settings::default() }
}

/// A run of `duration` with 100 ms ticks, its first `warmup` left out of the statistics.
pub fn timed(duration: Duration, warmup: Duration) -> RunOptions {
    RunOptions { duration: Some(duration), warmup, interval: Duration::from_millis(100), ..RunOptions::default() }
}

pub fn run_for(s: Settings, duration: Duration, warmup: Duration) -> Snapshot {
    EngineHandle::start(s, timed(duration, warmup)).expect("valid settings").join()
}

/// Runs `plan` on an engine started at its first value (100 ms ticks), as `pooltune sweep` does:
/// the sweep's report, and the engine's last snapshot.
pub fn sweep(base: &Settings, plan: &Plan, slo_p99: Option<Duration>) -> (SweepReport, Snapshot) {
    let mut first = base.clone();
    plan.values[0].apply(&mut first);
    let opts = RunOptions { interval: Duration::from_millis(100), ..RunOptions::default() };
    let engine = EngineHandle::start(first, opts).expect("valid settings");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let report =
        rt.block_on(pooltune::sweep::run(&engine, plan, base, slo_p99, None, |_, _, _| {})).expect("the sweep ran");
    (report, engine.join())
}

/// Waits (polling snapshots) until `pred` holds, or panics after `limit`: a liveness bound, not
/// a timing assertion.
pub fn wait_for(engine: &EngineHandle, limit: Duration, what: &str, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let start = Instant::now();
    let mut rx = engine.subscribe();
    loop {
        let s = rx.borrow_and_update().clone();
        if pred(&s) {
            return s;
        }
        assert!(start.elapsed() < limit, "gave up waiting for {what}; last snapshot: {s:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `pooltune run --headless --duration 1s` with `extra` is refused as bad input: exit status
/// 2, one line on stderr, saying `want`.
pub fn refused_run(extra: &[String], want: &str) {
    let mut args = vec!["run", "--headless", "--duration", "1s"];
    args.extend(extra.iter().map(String::as_str));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pooltune"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("pooltune runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

/// Every offered job is accounted for at the end of a run.
pub fn assert_accounted(s: &Snapshot) {
    let t = &s.totals;
    assert_eq!(t.offered, t.completed + t.failed + t.rejected + t.dropped + t.abandoned, "jobs unaccounted for: {t:?}");
}

/// What the kernel says of this process's threads over a closure: how long they waited runnable
/// for a CPU (the run-queue delay) and how many times they were put on one (`/proc/self/task/*/
/// schedstat`, second and third fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunQueue {
    pub delay: Duration,
    pub slices: u64,
    /// On a virtual machine: the share of the machine's CPU time the hypervisor gave to others
    /// while the closure ran (`/proc/stat`, the `cpu` line's steal field, over wall time × CPUs).
    pub steal: f64,
    /// The share of the machine's CPU time other processes used meanwhile: the machine's busy
    /// time (`/proc/stat`: user, nice, system, irq, softirq) less this process's own
    /// (`/proc/self/stat`: utime, stime), over wall time × CPUs. A low-priority (`nice`) process
    /// yields to this one at once, so it barely shows in the run-queue wait, but it still shares
    /// the cores' caches and, on sibling hyper-threads, their execution units.
    pub others: f64,
    /// The same share over the busiest half second: a neighbour that works in bursts (a
    /// compiler, another test's engine) stalls the engine in them while its average stays low.
    pub others_peak: f64,
}

impl RunQueue {
    /// The mean wait for a CPU each time a thread became runnable. A thread that wakes on a quiet
    /// machine gets an idle core within microseconds; behind another process's busy thread it
    /// waits for that thread's time slice, milliseconds.
    pub fn mean_wait(&self) -> Duration {
        if self.slices == 0 { Duration::ZERO } else { self.delay / u32::try_from(self.slices).unwrap_or(u32::MAX) }
    }
}

/// Runs `f` and reports the [`RunQueue`] figures of this process's threads meanwhile. Threads
/// that start and end inside `f` are seen through a sampler that reads every thread every 50 ms,
/// so at most 50 ms of a thread's last figures are missed. `None` where the kernel does not report
/// them.
pub fn run_queue<T>(f: impl FnOnce() -> T) -> (T, Option<RunQueue>) {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    type Seen = HashMap<String, ([u64; 2], [u64; 2])>;
    /// Reads every thread; one first seen after the start counts from zero (it was born in `f`).
    fn read_all(seen: &mut Seen, at_start: bool) -> bool {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return false };
        for task in dir.flatten() {
            let Some(now) = std::fs::read_to_string(task.path().join("schedstat")).ok().and_then(|s| {
                let f: Vec<u64> = s.split_whitespace().filter_map(|v| v.parse().ok()).collect();
                (f.len() == 3).then(|| [f[1], f[2]])
            }) else {
                continue;
            };
            let name = task.file_name().to_string_lossy().into_owned();
            seen.entry(name).and_modify(|e| e.1 = now).or_insert((if at_start { now } else { [0, 0] }, now));
        }
        true
    }
    /// The machine's steal and busy time, and this process's CPU time, in clock ticks
    /// (`USER_HZ`, 100 a second on Linux).
    fn ticks() -> Option<[u64; 3]> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        let busy = [0, 1, 2, 5, 6].iter().map(|&i| cpu.get(i).copied().unwrap_or(0)).sum();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name: state, ppid, …; utime and stime are the 12th and 13th.
        let own: Vec<&str> = own.rsplit(')').next()?.split_whitespace().collect();
        let field = |i: usize| own.get(i).and_then(|v| v.parse::<u64>().ok());
        Some([*cpu.get(7)?, busy, field(11)? + field(12)?])
    }
    let mut start = Seen::new();
    if !read_all(&mut start, true) {
        return (f(), None);
    }
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
    // Other processes' share of the machine between two readings of [`ticks`].
    let others = move |a: [u64; 3], b: [u64; 3], secs: f64| {
        b[1].saturating_sub(a[1]).saturating_sub(b[2].saturating_sub(a[2])) as f64 / 100.0 / (secs * cpus)
    };
    let (ticks_start, wall) = (ticks(), std::time::Instant::now());
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seen = start;
            let (mut window, mut peak) = ((ticks_start, std::time::Instant::now()), 0.0f64);
            while !stop.load(Ordering::Relaxed) {
                read_all(&mut seen, false);
                std::thread::sleep(Duration::from_millis(50));
                let secs = window.1.elapsed().as_secs_f64();
                if secs >= 0.5 {
                    let now = ticks();
                    if let (Some(a), Some(b)) = (window.0, now) {
                        peak = peak.max(others(a, b, secs));
                    }
                    window = (now, std::time::Instant::now());
                }
            }
            read_all(&mut seen, false);
            let rq = seen.values().fold(RunQueue::default(), |acc, (first, last)| RunQueue {
                delay: acc.delay + Duration::from_nanos(last[0] - first[0]),
                slices: acc.slices + (last[1] - first[1]),
                ..acc
            });
            RunQueue { others_peak: peak, ..rq }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let mut rq = sampler.join().expect("the schedstat sampler does not panic");
    if let (Some(a), Some(b)) = (ticks_start, ticks()) {
        let secs = wall.elapsed().as_secs_f64();
        rq.steal = b[0].saturating_sub(a[0]) as f64 / 100.0 / (secs * cpus);
        rq.others = others(a, b, secs);
    }
    (out, Some(rq))
}
