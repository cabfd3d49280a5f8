//! The per-job side of a run's account of its gap to theory: every job's instants kept in a
//! bounded log ([`JobLog`]), replayed through the model's exact FIFO pool
//! ([`crate::model::trace::starts`]) three times, and the measured mean response split into the
//! parts the replays tell apart ([`Replay`]). The theory those parts are added to lives with the
//! model report (`report::account`); this module needs no formula.
//!
//! # The three replays
//! Each replays the jobs the workers ran (completed or failed; a refused or dropped job never
//! reached a worker), through the same number of workers, first come first served, no bound (the
//! instants already carry whatever the bound did: under `block` a job enters when there is room).
//! A job's response is always counted from its intended arrival, as the engine counts it.
//! - **ideal**: arriving at the intended instants, each needing the service it was asked for:
//!   the ideal pool on the run's own random draws.
//! - **entered**: arriving when they entered the queue, needing what they were asked for.
//! - **served**: arriving when they entered the queue, needing what they really took (end −
//!   start): the ideal pool given everything the producer and the timer did.
//!
//! Job by job, the measured response is then ideal + (entered − ideal) + (served − entered) +
//! (measured − served): **lateness** (the producer behind its schedule), **inflation** (services
//! longer than asked) and **overhead** (what the pool itself adds: hand-off, scheduling). The
//! sum is exact by construction; [`Replay::sum_ms`] shows it. FIFO starts only move later when
//! any start is delayed, so each job's overhead is ≥ 0 up to clock reads ([`Replay::overhead_min_us`]).
//!
//! # Memory, and long runs
//! A job costs 48 bytes in the log ([`Entry`]); the log holds [`CAPACITY`] jobs (24 MB) at most.
//! The workers copy each job's instants into their shard's vector only while the log has room;
//! once it is full they stop, and the account covers the first [`CAPACITY`] jobs of the run (the
//! measured window's share of them), saying so in [`Replay::complete`]. The replays run on the
//! control thread, never on a worker, at most 1/20 of its time ([`Accounting::refresh`]).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::trace::{Service, TraceInputs, starts};
use crate::settings::Policy;

/// The most jobs a run keeps: 48 bytes each, 24 MB.
pub const CAPACITY: usize = 500_000;

/// One job, in nanoseconds since the engine's recorders were made (before any job).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub intended: u64,
    pub enqueued: u64,
    pub start: u64,
    pub end: u64,
    pub asked: u64,
    /// A successful job of the measured window: one the window's mean response counts. Made
    /// true for a success; the aggregator clears it for one outside the window.
    pub counted: bool,
}

/// The run's kept jobs in the order they were drained (not sorted).
#[derive(Debug, Clone, Default)]
pub struct JobLog {
    entries: Vec<Entry>,
}

/// A mean and a 99th percentile, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Part {
    pub mean: f64,
    pub p99: f64,
}

/// What the three replays say of the measured window's jobs (all in ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Replay {
    /// Jobs the account covers: the window's successful jobs in the log.
    pub jobs: u64,
    /// Every job of the run so far is in the log (false once [`CAPACITY`] were kept).
    pub complete: bool,
    /// The covered jobs' measured response.
    pub measured: Part,
    /// The ideal pool's response on the run's draws (the **ideal** replay).
    pub ideal: Part,
    /// Per job: entered − ideal, served − entered, measured − served.
    pub lateness: Part,
    pub inflation: Part,
    pub overhead: Part,
    /// The smallest per-job overhead, µs: below 0 only by the clock reads' error.
    pub overhead_min_us: f64,
    /// ideal + lateness + inflation + overhead (means): the measured mean, shown.
    pub sum_ms: f64,
}

impl JobLog {
    /// Takes a drain's jobs (leaving `jobs` empty, its capacity kept); `window`: the measured
    /// window counts this drain's jobs.
    pub fn take(&mut self, jobs: &mut Vec<Entry>, window: bool) {
        self.entries.extend(jobs.drain(..).map(|e| Entry { counted: e.counted && window, ..e }));
    }

    /// The measured window starts afresh: no job logged so far is counted.
    pub fn reset_window(&mut self) {
        for e in &mut self.entries {
            e.counted = false;
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The account of the counted jobs through `workers` workers (`complete`: the log holds
    /// every job of the run); `None` when none is counted.
    #[must_use]
    pub fn replay(&self, workers: u32, complete: bool) -> Option<Replay> {
        replay(&self.entries, workers, complete)
    }
}

/// The aggregator's side: the log, the latest account of it, and when it is next worked out.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    log: JobLog,
    latest: Option<Replay>,
    /// When the account was last worked out, and how long that took.
    last: Option<(Instant, Duration)>,
}

/// The account is worked out again only after this many times its own cost has passed (three
/// sorts and three replays of the log), so the control thread spends at most 1/20 of its time
/// on it.
const COST_RATIO: u32 = 20;

impl Accounting {
    /// Takes a drain's jobs ([`JobLog::take`]).
    pub fn take(&mut self, jobs: &mut Vec<Entry>, window: bool) {
        self.log.take(jobs, window);
    }

    /// The measured window starts afresh.
    pub fn reset_window(&mut self) {
        self.log.reset_window();
        (self.latest, self.last) = (None, None);
    }

    /// The account at `now`, worked out again when due or when `force`d (the run's end).
    pub fn refresh(&mut self, now: Instant, workers: u32, complete: bool, force: bool) -> Option<Replay> {
        let due = self.last.is_none_or(|(at, cost)| now.saturating_duration_since(at) >= cost * COST_RATIO);
        if force || due {
            let t = Instant::now();
            self.latest = self.log.replay(workers, complete);
            self.last = Some((now, t.elapsed()));
        }
        self.latest
    }
}

/// Each job's start in a replay whose arrivals are `at(e)` and demands `need(e)`, by index in
/// `jobs`.
#[allow(clippy::cast_precision_loss)]
fn replayed(jobs: &[Entry], workers: u32, at: fn(&Entry) -> u64, need: fn(&Entry) -> u64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&k| (at(&jobs[k]), k));
    let arrivals: Vec<u64> = order.iter().map(|&k| at(&jobs[k])).collect();
    let service: Vec<u64> = order.iter().map(|&k| need(&jobs[k])).collect();
    let sim = starts(&TraceInputs {
        arrivals: &arrivals,
        speed: 1.0,
        service: Service::PerArrival(&service),
        workers,
        queue: None,
        policy: Policy::Block,
    });
    let mut by_job = vec![0.0; jobs.len()];
    for (rank, &k) in order.iter().enumerate() {
        by_job[k] = sim[rank];
    }
    by_job
}

/// Mean and nearest-rank p99 of `v` (ns) in ms.
#[allow(clippy::cast_precision_loss)]
fn part(v: &mut [f64]) -> Part {
    if v.is_empty() {
        return Part::default();
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let rank = (v.len() * 99).div_ceil(100).max(1) - 1;
    let p99 = *v.select_nth_unstable_by(rank, f64::total_cmp).1;
    Part { mean: mean * 1e-6, p99: p99 * 1e-6 }
}

/// The account of `jobs`' counted ones (see the module doc).
#[allow(clippy::cast_precision_loss)]
fn replay(jobs: &[Entry], workers: u32, complete: bool) -> Option<Replay> {
    if workers == 0 || !jobs.iter().any(|e| e.counted) {
        return None;
    }
    let served = |e: &Entry| e.end.saturating_sub(e.start);
    let ideal = replayed(jobs, workers, |e| e.intended, |e| e.asked);
    let entered = replayed(jobs, workers, |e| e.enqueued, |e| e.asked);
    let real = replayed(jobs, workers, |e| e.enqueued, |e| e.end.saturating_sub(e.start));
    let n = jobs.iter().filter(|e| e.counted).count();
    let (mut m, mut i, mut l, mut f, mut o) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (k, e) in jobs.iter().enumerate().filter(|(_, e)| e.counted) {
        let from = e.intended as f64;
        let r_ideal = ideal[k] + e.asked as f64 - from;
        let r_entered = entered[k] + e.asked as f64 - from;
        let r_served = real[k] + served(e) as f64 - from;
        let r_measured = e.end as f64 - from;
        m.push(r_measured);
        i.push(r_ideal);
        l.push(r_entered - r_ideal);
        f.push(r_served - r_entered);
        o.push(r_measured - r_served);
    }
    let overhead_min_us = o.iter().copied().fold(f64::INFINITY, f64::min) * 1e-3;
    let (measured, ideal, lateness, inflation, overhead) =
        (part(&mut m), part(&mut i), part(&mut l), part(&mut f), part(&mut o));
    Some(Replay {
        jobs: n as u64,
        complete,
        measured,
        ideal,
        lateness,
        inflation,
        overhead,
        overhead_min_us,
        sum_ms: ideal.mean + lateness.mean + inflation.mean + overhead.mean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A successful job at `at` ns (intended, enqueued, start, end), asked for `asked` ns.
    fn entry(at: [u64; 4], asked: u64) -> Entry {
        Entry { intended: at[0], enqueued: at[1], start: at[2], end: at[3], asked, counted: true }
    }

    fn log(jobs: &[([u64; 4], u64)]) -> JobLog {
        let mut log = JobLog::default();
        let mut v: Vec<_> = jobs.iter().map(|&(at, asked)| entry(at, asked)).collect();
        log.take(&mut v, true);
        assert!(v.is_empty());
        log
    }

    #[test]
    fn an_ideal_run_has_no_parts_beyond_the_ideal_pool() {
        // One worker, two jobs: the second waits for the first. Everything on time.
        let r = log(&[([0, 0, 0, 1000], 1000), ([500, 500, 1000, 2000], 1000)]).replay(1, true).unwrap();
        assert_eq!(r.jobs, 2);
        assert!((r.measured.mean - 1.25e-3).abs() < 1e-12, "{r:?}");
        assert!((r.ideal.mean - r.measured.mean).abs() < 1e-12);
        assert_eq!((r.lateness.mean, r.inflation.mean, r.overhead.mean), (0.0, 0.0, 0.0));
        assert!((r.sum_ms - r.measured.mean).abs() < 1e-12);
    }

    #[test]
    fn each_cause_lands_in_its_own_part() {
        // Job 1 entered 100 ns late and ran 200 ns long; job 2 started 50 ns after its worker
        // was free (the pool's overhead), and job 1's 300 ns carry over to it.
        let r = log(&[([0, 100, 100, 1300], 1000), ([500, 500, 1350, 2350], 1000)]).replay(1, true).unwrap();
        // Responses: ideal 1000, 1500; entered 1100, 1600; served 1300, 1800; measured 1300, 1850.
        let ns = |x: f64| x * 1e6;
        assert!((ns(r.ideal.mean) - 1250.0).abs() < 1e-6, "{r:?}");
        assert!((ns(r.lateness.mean) - 100.0).abs() < 1e-6);
        assert!((ns(r.inflation.mean) - 200.0).abs() < 1e-6);
        assert!((ns(r.overhead.mean) - 25.0).abs() < 1e-6);
        assert!((ns(r.overhead.p99) - 50.0).abs() < 1e-6);
        assert!((r.sum_ms - r.measured.mean).abs() < 1e-12);
        assert!(r.overhead_min_us.abs() < 1e-9);
    }

    #[test]
    fn only_the_window_is_counted_but_every_job_is_replayed() {
        let mut log = JobLog::default();
        // A warm-up job holds the only worker until 2000: the window's job waits for it.
        log.take(&mut vec![entry([0, 0, 0, 2000], 2000)], false);
        log.take(&mut vec![entry([1000, 1000, 2000, 3000], 1000)], true);
        let r = log.replay(1, true).unwrap();
        assert_eq!(r.jobs, 1);
        assert!((r.ideal.mean * 1e6 - 2000.0).abs() < 1e-6, "the warm-up job is in the replay: {r:?}");
        assert!(r.overhead.mean.abs() < 1e-12);
        log.reset_window();
        assert!(log.replay(1, true).is_none(), "nothing counted after a reset");
    }
}
