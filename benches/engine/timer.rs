//! Section (b) of the engine bench: how late a sleep ends (actual − requested), judged against
//! this machine's own floor measured in the same minutes.
//!
//! At 100 µs, 200 µs, 1 ms and 10 ms, 8 concurrent sleepers, in rounds of:
//! - **floor**: one thread busy-waiting to the deadlines of 8 chains of sleeps (what the host's
//!   preemption alone costs right now; it burns a core while it runs);
//! - **OS sleep**: 8 threads in `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` with the
//!   kernel's default timer slack;
//! - **pooltune**: 8 tasks on a tokio runtime sleeping on pooltune's timer, as the engine does;
//!   its error is split into the timer thread's part (its `wake()` against the deadline) and the
//!   runtime's (from that `wake()` to the task running);
//! - **tokio**: the same 8 tasks on `tokio::time::sleep`.
//!
//! Each is measured 3 times, interleaved, and reported as the median of the rounds with their
//! spread. The goal printed beside each duration: pooltune's p99 within the floor's p99.9 + 25 µs,
//! and its mean within ±5 µs. The timer thread's CPU (its on-CPU time from the kernel's
//! schedstat, not its own account) is printed per duration.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use nix::time::{ClockId, ClockNanosleepFlags, clock_gettime, clock_nanosleep};
use pooltune::engine::timer::{Timer, Tuning};

/// Sleepers at once, and rounds of each column.
const SLEEPERS: usize = 8;
const ROUNDS: usize = 3;
/// The goal's allowance over the floor's p99.9, and on the mean, µs.
const OVER_FLOOR_US: f64 = 25.0;
const MEAN_US: f64 = 5.0;

/// Durations and sleeps per sleeper: about 0.1 to 1.3 s a column, so a round of all columns takes
/// a few seconds and the rounds see the same machine.
const DURATIONS: [(u64, usize); 4] = [(100, 1000), (200, 1000), (1000, 400), (10_000, 125)];

/// The errors of one column's run, µs, and for pooltune the split of each.
#[derive(Default)]
struct Run {
    errors: Vec<f64>,
    /// pooltune only: the timer thread's `wake()` − deadline, and the task's poll − `wake()`.
    fired: Vec<f64>,
    to_poll: Vec<f64>,
    /// pooltune only: the timer thread's CPU over the run, and the runtime's threads' (where a
    /// sleep woken ahead spins), shares of one core.
    cpu: f64,
    rt_cpu: f64,
}

/// mean, p99 and p99.9 of `v`.
fn stats(v: &mut [f64]) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    let q = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    [v.iter().sum::<f64>() / v.len() as f64, q(0.99), q(0.999)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Busy-waits to the deadlines of `SLEEPERS` chains of `per` sleeps of `d` on one thread: each
/// chain's next deadline is `d` after its previous sleep ended, as a sleeper's would be.
fn floor(d: Duration, per: usize) -> Run {
    let mut next: Vec<(Instant, usize)> = (0..SLEEPERS).map(|_| (Instant::now() + d, 0)).collect();
    let mut errors = Vec::with_capacity(SLEEPERS * per);
    while let Some(i) = (0..next.len()).filter(|&i| next[i].1 < per).min_by_key(|&i| next[i].0) {
        let deadline = next[i].0;
        let mut now = Instant::now();
        while now < deadline {
            std::hint::spin_loop();
            now = Instant::now();
        }
        errors.push(us(now - deadline));
        next[i] = (now + d, next[i].1 + 1);
    }
    Run { errors, ..Run::default() }
}

fn monotonic() -> Duration {
    Duration::from(clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC"))
}

/// `SLEEPERS` threads, each sleeping `per` times to an absolute deadline `d` ahead.
fn os_sleep(d: Duration, per: usize) -> Run {
    let threads: Vec<_> = (0..SLEEPERS)
        .map(|_| {
            std::thread::spawn(move || {
                (0..per)
                    .map(|_| {
                        let deadline = monotonic() + d;
                        let abs = nix::sys::time::TimeSpec::from_duration(deadline);
                        while clock_nanosleep(ClockId::CLOCK_MONOTONIC, ClockNanosleepFlags::TIMER_ABSTIME, &abs)
                            .is_err()
                        {}
                        us(monotonic().saturating_sub(deadline))
                    })
                    .collect::<Vec<f64>>()
            })
        })
        .collect();
    Run { errors: threads.into_iter().flat_map(|t| t.join().unwrap()).collect(), ..Run::default() }
}

/// A waker that notes when it was first woken (on the timer thread) and passes the wake on.
struct Stamp {
    at: Mutex<Option<Instant>>,
    inner: Waker,
}

impl Wake for Stamp {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.at.lock().unwrap().get_or_insert_with(Instant::now);
        self.inner.wake_by_ref();
    }
}

/// Polls a sleep with a [`Stamp`] around the task's waker; yields when it was woken.
struct Stamped<F> {
    sleep: F,
    stamp: Option<Arc<Stamp>>,
}

impl<F: Future<Output = ()> + Unpin> Future for Stamped<F> {
    type Output = Option<Instant>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        let stamp = Arc::new(Stamp { at: Mutex::new(None), inner: cx.waker().clone() });
        let waker = Waker::from(Arc::clone(&stamp));
        let before = self.stamp.replace(stamp);
        match Pin::new(&mut self.sleep).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(()) => Poll::Ready(before.and_then(|s| *s.at.lock().unwrap())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The kernel's count of nanoseconds thread `tid` of this process has run.
fn on_cpu_ns(tid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap_or_default();
    s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// This process's threads named `name`.
fn tids(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == name).then(|| e.file_name().to_str()?.parse().ok())?
    })
    .collect()
}

/// A timer and its thread's id (for its CPU time and timer slack).
struct Measured {
    name: &'static str,
    timer: Timer,
    tid: u32,
}

impl Measured {
    fn start(name: &'static str, tuning: Tuning) -> Measured {
        let before = tids("pooltune-timer");
        let timer = Timer::start_tuned(tuning);
        let tid = loop {
            if let Some(t) = tids("pooltune-timer").into_iter().find(|t| !before.contains(t)) {
                break t;
            }
            std::thread::yield_now();
        };
        Measured { name, timer, tid }
    }
}

/// `SLEEPERS` tasks on a tokio runtime of `threads` threads, each sleeping `per` times for `d`
/// on `timer` (or on tokio's timer).
fn tasks(timer: Option<&Measured>, d: Duration, per: usize, threads: usize) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    let cpu_before = timer.map(|m| on_cpu_ns(m.tid));
    // Per thread: the runtime's own threads (those of earlier runtimes may still be ending).
    let runtime_cpu = || tids("tokio-runtime-w").into_iter().map(|t| (t, on_cpu_ns(t))).collect::<Vec<_>>();
    let rt_before = runtime_cpu();
    let began = Instant::now();
    let (all, rt_after) = rt.block_on(async {
        let handles: Vec<_> = (0..SLEEPERS)
            .map(|_| {
                let timer = timer.map(|m| m.timer.clone());
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(per);
                    for _ in 0..per {
                        let start = Instant::now();
                        let deadline = start + d;
                        let woke = if let Some(t) = &timer {
                            Stamped { sleep: Box::pin(t.sleep_until(deadline)), stamp: None }.await
                        } else {
                            tokio::time::sleep(d).await;
                            None
                        };
                        let now = Instant::now();
                        out.push((now.saturating_duration_since(deadline), deadline, woke, now));
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        (all, runtime_cpu())
    });
    let wall = began.elapsed().as_secs_f64();
    let signed = |a: Instant, b: Instant| if a >= b { us(a - b) } else { -us(b - a) };
    let mut run = Run::default();
    for (_, deadline, woke, now) in all {
        run.errors.push(signed(now, deadline));
        if let Some(w) = woke {
            run.fired.push(signed(w, deadline));
            run.to_poll.push(us(now.saturating_duration_since(w)));
        }
    }
    if let (Some(m), Some(b)) = (timer, cpu_before) {
        run.cpu = on_cpu_ns(m.tid).saturating_sub(b) as f64 / 1e9 / wall;
    }
    let ran: u64 = rt_after
        .iter()
        .map(|(t, ns)| ns - rt_before.iter().find(|(b, _)| b == t).map_or(0, |(_, before)| *before).min(*ns))
        .sum();
    run.rt_cpu = ran as f64 / 1e9 / wall;
    run
}

/// The median and the spread (min, max) of one figure over the rounds.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn cell(v: Vec<f64>) -> String {
    let (m, lo, hi) = spread(v);
    format!("{m:>7.1} [{lo:.1}–{hi:.1}]")
}

/// One duration: the columns in interleaved rounds, the table rows and the goal line.
fn duration(timers: &[Measured], d: Duration, per: usize, threads: usize) {
    // stats[column][round] = [mean, p99, p99.9]
    let columns = 3 + timers.len();
    let mut table: Vec<Vec<[f64; 3]>> = vec![Vec::new(); columns];
    let mut split: Vec<Vec<[f64; 4]>> = vec![Vec::new(); timers.len()];
    for _ in 0..ROUNDS {
        let mut runs = vec![floor(d, per), os_sleep(d, per)];
        runs.extend(timers.iter().map(|m| tasks(Some(m), d, per, threads)));
        runs.push(tasks(None, d, per, threads));
        for (c, mut r) in runs.into_iter().enumerate() {
            table[c].push(stats(&mut r.errors));
            if (2..2 + timers.len()).contains(&c) {
                split[c - 2].push([stats(&mut r.fired)[1], stats(&mut r.to_poll)[1], r.cpu * 100.0, r.rt_cpu * 100.0]);
            }
        }
    }
    let names: Vec<String> = ["floor (spin)", "OS sleep"]
        .into_iter()
        .map(String::from)
        .chain(timers.iter().map(|m| m.name.to_string()))
        .chain(["tokio".to_string()])
        .collect();
    let d_text = pooltune::duration::format(d);
    for (c, name) in names.iter().enumerate() {
        let col = |k: usize| table[c].iter().map(|s| s[k]).collect::<Vec<_>>();
        let first = if c == 0 { d_text.as_str() } else { "" };
        println!("{first:>8}  {name:<18} {} {} {}", cell(col(0)), cell(col(1)), cell(col(2)));
    }
    for (i, m) in timers.iter().enumerate() {
        let col = |k: usize| split[i].iter().map(|s| s[k]).collect::<Vec<_>>();
        println!(
            "{:>8}  {:<18} p99 of timer's wake() {} and wake to poll {}; CPU, % of a core: timer thread {}, runtime {}",
            "",
            m.name,
            cell(col(0)),
            cell(col(1)),
            cell(col(2)),
            cell(col(3))
        );
    }
    let floor_p999 = spread(table[0].iter().map(|s| s[2]).collect()).0;
    for (i, m) in timers.iter().enumerate() {
        let mean = spread(table[2 + i].iter().map(|s| s[0]).collect()).0;
        let p99 = spread(table[2 + i].iter().map(|s| s[1]).collect()).0;
        let bound = floor_p999 + OVER_FLOOR_US;
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "{:>8}  goal, {}: p99 {p99:.1} ≤ floor p99.9 {floor_p999:.1} + {OVER_FLOOR_US} = {bound:.1}: {}; |mean| {:.1} ≤ {MEAN_US}: {}",
            "",
            m.name,
            verdict(p99 <= bound),
            mean.abs(),
            verdict(mean.abs() <= MEAN_US),
        );
    }
}

/// Section (b): the table, then the `--timeout` heap check. `BENCH_TIMERS` picks pooltune's
/// variants (see [`Tuning`]): `now` (the engine's), `slack` (the kernel's default timer slack),
/// `tail` (spin for the park's error as mean + 4·dev), `prewake` (cold wake-ups fired ahead),
/// `both`; default `now,both`.
pub fn section_b(threads: usize) {
    println!(
        "\n(b) timer precision: error of a sleep (actual − requested), µs, {SLEEPERS} concurrent sleepers, \
         {threads} runtime threads;\n    {ROUNDS} interleaved rounds, median [min–max] of the rounds"
    );
    let now = Tuning::default();
    let variants = [
        ("now", "pooltune", now),
        ("slack", "  slack 50 µs", Tuning { low_slack: false, ..now }),
        ("tail", "  + tail spin", Tuning { spin_tail: true, ..now }),
        ("prewake", "  + cold prewake", Tuning { prewake: true, ..now }),
        ("both", "  + both", Tuning { spin_tail: true, prewake: true, ..now }),
    ];
    let chosen = std::env::var("BENCH_TIMERS").unwrap_or_else(|_| "now,both".into());
    let timers: Vec<Measured> = variants
        .into_iter()
        .filter(|(key, ..)| chosen.split(',').any(|c| c == *key))
        .map(|(_, name, tuning)| Measured::start(name, tuning))
        .collect();
    for m in &timers {
        let slack = std::fs::read_to_string(format!("/proc/{}/timerslack_ns", m.tid)).unwrap_or_default();
        println!("    {}: timer thread's timer slack {} ns", m.name, slack.trim());
    }
    println!("requested  column                mean               p99                p99.9");
    for (d, per) in DURATIONS {
        duration(&timers, Duration::from_micros(d), per, threads);
    }
    if let Some(m) = timers.iter().find(|m| m.name == "pooltune").or(timers.last()) {
        timeout_heap(&m.timer, threads);
    }
}

/// `--timeout`: every job races a long strict sleep, and the job wins.
fn timeout_heap(timer: &Timer, threads: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    let raced = 100_000;
    let peak = rt.block_on(async {
        let mut peak = (0, 0);
        for i in 0..raced {
            tokio::select! {
                () = timer.sleep_until_strict(Instant::now() + Duration::from_secs(60)) => {}
                () = tokio::task::yield_now() => {}
            }
            if i % 1000 == 0 {
                peak = peak.max(timer.pending());
            }
        }
        peak
    });
    let (entries, live) = timer.pending();
    println!(
        "timer heap after {raced} jobs beat a 60 s timeout: {entries} entries, {live} sleeps pending (largest seen: {} entries)",
        peak.0
    );
}
