//! The hot path's side of measurement: sharded per-job recording.
//!
//! Workers record into one of a few shards (worker id modulo shard count), each a `Mutex` that
//! only its own workers and, once per tick, the aggregator ever touch: uncontended, it costs tens
//! of nanoseconds and never allocates. Sharding, not one histogram per worker, keeps memory fixed
//! when the pool has 100,000 workers. The aggregator swaps a shard's stats for an empty set under
//! the lock and merges outside it, so workers never wait on a merge.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::account::{CAPACITY, Entry};
use super::hist;

/// What a shard has recorded since the aggregator last took it.
pub struct ShardStats {
    pub latency: Histogram<u64>,
    pub wait: Histogram<u64>,
    pub service: Histogram<u64>,
    pub completed: u64,
    /// Every job that did not succeed: errors, timeouts and panics.
    pub failed: u64,
    pub timed_out: u64,
    pub panicked: u64,
    /// Latency of the jobs that did not succeed, kept apart from the successes'.
    pub failed_latency: Histogram<u64>,
    pub failed_latency_ns: u128,
    pub latency_ns: u128,
    pub wait_ns: u128,
    pub service_ns: u128,
    /// Σ service² in s², for the measured coefficient of variation.
    pub service_sq: f64,
    /// Σ (start − enqueue), the time spent in the queue itself, for Little's law.
    pub queued_ns: u128,
    /// Σ (start − fetched): a broker run's time at the worker process between the pull from
    /// the stream and a worker taking the job (`prefetch`), on that process's own clock.
    pub prefetched_ns: u128,
    /// Producer lag (enqueued − intended): how late the job entered the queue.
    pub lag: Histogram<u64>,
    pub lag_ns: u128,
    /// Hand-off (start − ready): how long a job and a free worker both existed before they met.
    pub handoff: Histogram<u64>,
    pub handoff_ns: u128,
    /// Σ (end − ready)² in s²: the time a job held its worker, hand-off included, for the CV
    /// of what the queue's servers really spent on a job.
    pub held_sq: f64,
    /// Every recorded job's instants, while [`Recorders::keep_jobs`] is on: the per-job side of
    /// the run's account ([`super::account`]). Only a drain moves them (into the drain's
    /// target); [`Self::merge`] leaves them, so a node's report or a tap never carries them.
    /// The drain hands the shard back a spare whose vector keeps its capacity: after the first
    /// ticks a job's record is a copy into room already there, not an allocation.
    pub jobs: Vec<Entry>,
}

impl ShardStats {
    #[must_use]
    pub fn new() -> Self {
        Self {
            latency: hist::new(),
            wait: hist::new(),
            service: hist::new(),
            completed: 0,
            failed: 0,
            timed_out: 0,
            panicked: 0,
            failed_latency: hist::new(),
            failed_latency_ns: 0,
            latency_ns: 0,
            wait_ns: 0,
            service_ns: 0,
            service_sq: 0.0,
            queued_ns: 0,
            prefetched_ns: 0,
            lag: hist::new(),
            lag_ns: 0,
            handoff: hist::new(),
            handoff_ns: 0,
            held_sq: 0.0,
            jobs: Vec::new(),
        }
    }

    /// Adds `other` into `self` (not its per-job records: see [`Self::jobs`]).
    pub fn merge(&mut self, other: &ShardStats) {
        // Same bounds everywhere, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.wait.add(&other.wait);
        let _ = self.service.add(&other.service);
        let _ = self.failed_latency.add(&other.failed_latency);
        let _ = self.lag.add(&other.lag);
        let _ = self.handoff.add(&other.handoff);
        self.completed += other.completed;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.panicked += other.panicked;
        self.failed_latency_ns += other.failed_latency_ns;
        self.latency_ns += other.latency_ns;
        self.wait_ns += other.wait_ns;
        self.service_ns += other.service_ns;
        self.service_sq += other.service_sq;
        self.queued_ns += other.queued_ns;
        self.prefetched_ns += other.prefetched_ns;
        self.lag_ns += other.lag_ns;
        self.handoff_ns += other.handoff_ns;
        self.held_sq += other.held_sq;
    }

    pub fn clear(&mut self) {
        self.latency.reset();
        self.wait.reset();
        self.service.reset();
        self.failed_latency.reset();
        self.lag.reset();
        self.handoff.reset();
        self.completed = 0;
        self.failed = 0;
        self.timed_out = 0;
        self.panicked = 0;
        self.failed_latency_ns = 0;
        self.latency_ns = 0;
        self.wait_ns = 0;
        self.service_ns = 0;
        self.service_sq = 0.0;
        self.queued_ns = 0;
        self.prefetched_ns = 0;
        self.lag_ns = 0;
        self.handoff_ns = 0;
        self.held_sq = 0.0;
        self.jobs.clear();
    }
}

impl Default for ShardStats {
    fn default() -> Self {
        Self::new()
    }
}

/// One shard; aligned so two shards never share a cache line.
#[repr(align(128))]
pub struct Shard {
    stats: Mutex<ShardStats>,
    busy: AtomicI64,
}

/// How a job ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Failed,
    TimedOut,
    Panicked,
}

/// The instants of one finished job.
#[derive(Debug, Clone, Copy)]
pub struct JobTimes {
    pub intended: Instant,
    pub enqueued: Instant,
    /// When the job and a free worker first both existed: the later of its enqueue and the
    /// moment the worker that took it became free. An ideal queue starts the job here.
    pub ready: Instant,
    /// When the job reached the process whose worker ran it: a broker job's pull from the
    /// stream; the start on the in-process queue (nothing was pulled ahead).
    pub fetched: Instant,
    pub start: Instant,
    pub end: Instant,
    /// The service the job was given to run (the synthetic service's drawn demand; zero for
    /// your own work, which has none).
    pub asked: Duration,
}

impl Shard {
    /// A worker took a job. (Started jobs are not counted here: they are the finished ones plus
    /// the busy ones, which saves an atomic a job.)
    pub fn start(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker finished a job: latency = end − intended, wait = start − intended,
    /// service = end − start, lag = enqueued − intended, hand-off = start − ready.
    pub fn finish(&self, t: JobTimes, kind: Kind) {
        self.busy.fetch_sub(1, Ordering::Relaxed);
        self.record(&[(t, kind)], None);
    }

    /// Records `jobs`; with `epoch`, keeps each one's instants too ([`ShardStats::jobs`]).
    fn record(&self, jobs: &[(JobTimes, Kind)], epoch: Option<Instant>) {
        let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        for &(t, kind) in jobs {
            s.add(t, kind);
        }
        if let Some(epoch) = epoch {
            s.jobs.extend(jobs.iter().map(|&(t, kind)| entry(epoch, &t, kind)));
        }
    }
}

impl ShardStats {
    fn add(&mut self, t: JobTimes, kind: Kind) {
        let latency = t.end.saturating_duration_since(t.intended);
        let wait = t.start.saturating_duration_since(t.intended);
        let service = t.end.saturating_duration_since(t.start);
        let queued = t.start.saturating_duration_since(t.enqueued);
        let lag = t.enqueued.saturating_duration_since(t.intended);
        let handoff = t.start.saturating_duration_since(t.ready);
        let held = t.end.saturating_duration_since(t.ready).as_secs_f64();
        let s = self;
        if kind == Kind::Ok {
            s.completed += 1;
            hist::record(&mut s.latency, latency);
            hist::record(&mut s.wait, wait);
            hist::record(&mut s.service, service);
            s.latency_ns += latency.as_nanos();
            s.wait_ns += wait.as_nanos();
            s.service_ns += service.as_nanos();
            s.service_sq += service.as_secs_f64() * service.as_secs_f64();
            s.queued_ns += queued.as_nanos();
            s.prefetched_ns += t.start.saturating_duration_since(t.fetched).as_nanos();
            hist::record(&mut s.lag, lag);
            s.lag_ns += lag.as_nanos();
            hist::record(&mut s.handoff, handoff);
            s.handoff_ns += handoff.as_nanos();
            s.held_sq += held * held;
        } else {
            s.failed += 1;
            s.timed_out += u64::from(kind == Kind::TimedOut);
            s.panicked += u64::from(kind == Kind::Panicked);
            hist::record(&mut s.failed_latency, latency);
            s.failed_latency_ns += latency.as_nanos();
        }
    }
}

/// `t` as the account keeps it: nanoseconds from `epoch`.
#[allow(clippy::cast_possible_truncation)]
fn entry(epoch: Instant, t: &JobTimes, kind: Kind) -> Entry {
    let since = |i: Instant| i.saturating_duration_since(epoch).as_nanos() as u64;
    Entry {
        intended: since(t.intended),
        enqueued: since(t.enqueued),
        start: since(t.start),
        end: since(t.end),
        asked: t.asked.as_nanos() as u64,
        counted: kind == Kind::Ok,
    }
}

/// How many records a worker keeps before taking its shard's lock.
const BATCH: usize = 32;
/// The longest a record waits in a worker's batch while the worker keeps busy.
const BATCH_AGE: Duration = Duration::from_millis(1);

/// A worker's own buffer of finished jobs, published to its shard under one lock: every 32 jobs,
/// after 1 ms, before the worker may wait, and when it ends. At the engine's ceiling this takes
/// the shard's lock off the per-job path. A fixed array: nothing is allocated per job.
pub struct Batch<'a> {
    shard: &'a Shard,
    /// Where the engine keeps each job's instants ([`Recorders::keep_jobs`]), asked once a flush.
    recorders: &'a Recorders,
    buf: [(JobTimes, Kind); BATCH],
    len: usize,
}

impl<'a> Batch<'a> {
    /// A batch for the worker with id `worker`.
    #[must_use]
    pub fn new(recorders: &'a Recorders, worker: usize) -> Self {
        let now = Instant::now();
        let blank = JobTimes {
            intended: now,
            enqueued: now,
            ready: now,
            fetched: now,
            start: now,
            end: now,
            asked: Duration::ZERO,
        };
        Self { shard: recorders.shard(worker), recorders, buf: [(blank, Kind::Ok); BATCH], len: 0 }
    }

    /// The job is no longer busy at once; its statistics follow with the batch.
    pub fn push(&mut self, t: JobTimes, kind: Kind) {
        self.shard.busy.fetch_sub(1, Ordering::Relaxed);
        self.buf[self.len] = (t, kind);
        self.len += 1;
        if self.len == BATCH || t.end.saturating_duration_since(self.buf[0].0.end) >= BATCH_AGE {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            let keep = self.recorders.admit(self.len).then_some(self.recorders.epoch);
            self.shard.record(&self.buf[..self.len], keep);
            self.len = 0;
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// All shards of one engine, and what other processes' workers reported (a broker run's worker
/// nodes, merged as if a local shard had recorded it).
pub struct Recorders {
    shards: Box<[Shard]>,
    /// Remote workers' records since the last drain, and how many of them are busy.
    remote: Mutex<ShardStats>,
    remote_busy: AtomicI64,
    /// A worker node's copy of each drain, for its report (`None`: not kept).
    tap: Mutex<Option<ShardStats>>,
    /// Workers keep each job's instants for the account ([`ShardStats::jobs`]): off for a run
    /// that has none, and once [`CAPACITY`] jobs are kept.
    keep: AtomicBool,
    /// Jobs the run may still keep (below 0: the last flush found no room).
    room: AtomicI64,
    /// The instant kept jobs' times count from: before any job of the run.
    pub epoch: Instant,
}

impl Recorders {
    #[must_use]
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| Shard { stats: Mutex::new(ShardStats::new()), busy: AtomicI64::new(0) })
            .collect();
        Self {
            shards,
            remote: Mutex::new(ShardStats::new()),
            remote_busy: AtomicI64::new(0),
            tap: Mutex::new(None),
            keep: AtomicBool::new(false),
            room: AtomicI64::new(i64::try_from(CAPACITY).unwrap_or(i64::MAX)),
            epoch: Instant::now(),
        }
    }

    /// Whether the workers keep each job's instants from now on ([`ShardStats::jobs`]).
    pub fn keep_jobs(&self, on: bool) {
        self.keep.store(on, Ordering::Relaxed);
    }

    /// Whether `n` more jobs may be kept: the first [`CAPACITY`] of the run are, whole
    /// batches at a time; the first batch refused turns keeping off for good.
    fn admit(&self, n: usize) -> bool {
        if !self.keep.load(Ordering::Relaxed) {
            return false;
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        if self.room.fetch_sub(n, Ordering::Relaxed) >= n {
            return true;
        }
        self.keep.store(false, Ordering::Relaxed);
        false
    }

    /// Every job so far was kept (no batch was refused for want of room).
    #[must_use]
    pub fn kept_all(&self) -> bool {
        self.room.load(Ordering::Relaxed) >= 0
    }

    /// Adds a remote worker node's records; the next drain takes them with the local ones.
    pub fn merge_remote(&self, stats: &ShardStats) {
        self.remote.lock().unwrap_or_else(PoisonError::into_inner).merge(stats);
    }

    /// How many remote workers are running a job (the sum over nodes, as last reported).
    pub fn set_remote_busy(&self, n: u64) {
        self.remote_busy.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Keeps a copy of every drain from now on, for [`Self::take_tap`] (a worker node's report).
    pub fn tap(&self) {
        self.tap.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(ShardStats::new);
    }

    /// What the drains since the last call took from the local shards (empty when not tapped).
    pub fn take_tap(&self) -> ShardStats {
        let mut tap = self.tap.lock().unwrap_or_else(PoisonError::into_inner);
        tap.as_mut().map(std::mem::take).unwrap_or_default()
    }

    #[must_use]
    pub fn shard(&self, worker: usize) -> &Shard {
        &self.shards[worker % self.shards.len()]
    }

    /// Workers running a job right now.
    #[must_use]
    pub fn busy(&self) -> u64 {
        let b: i64 = self.shards.iter().map(|s| s.busy.load(Ordering::Relaxed)).sum::<i64>()
            + self.remote_busy.load(Ordering::Relaxed);
        u64::try_from(b).unwrap_or(0)
    }

    /// Swaps each shard's stats for the matching (empty) spare and merges what was taken into
    /// `into`; the spares come back empty. `spares` must have one entry per shard.
    pub fn drain_into(&self, spares: &mut [ShardStats], into: &mut ShardStats) {
        let mut tap = self.tap.lock().unwrap_or_else(PoisonError::into_inner);
        for (shard, spare) in self.shards.iter().zip(spares.iter_mut()) {
            std::mem::swap(&mut *shard.stats.lock().unwrap_or_else(PoisonError::into_inner), spare);
            into.merge(spare);
            into.jobs.append(&mut spare.jobs);
            if let Some(t) = tap.as_mut() {
                t.merge(spare);
            }
            spare.clear();
        }
        drop(tap);
        let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        into.merge(&remote);
        remote.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_latency_into_wait_and_service() {
        let r = Recorders::new(2);
        let t0 = Instant::now();
        let shard = r.shard(3);
        shard.start();
        assert_eq!(r.busy(), 1);
        shard.finish(
            JobTimes {
                intended: t0,
                enqueued: t0 + Duration::from_millis(1),
                ready: t0 + Duration::from_millis(2),
                fetched: t0 + Duration::from_millis(3),
                start: t0 + Duration::from_millis(3),
                end: t0 + Duration::from_millis(10),
                asked: Duration::from_millis(7),
            },
            Kind::Ok,
        );
        assert_eq!(r.busy(), 0);
        let mut spares: Vec<_> = (0..2).map(|_| ShardStats::new()).collect();
        let mut all = ShardStats::new();
        r.drain_into(&mut spares, &mut all);
        assert_eq!(all.completed, 1);
        assert_eq!(all.latency_ns, 10_000_000);
        assert_eq!(all.wait_ns, 3_000_000);
        assert_eq!(all.service_ns, 7_000_000);
        assert_eq!(all.queued_ns, 2_000_000);
        assert_eq!(all.lag_ns, 1_000_000, "enqueued − intended");
        assert_eq!(all.handoff_ns, 1_000_000, "start − ready");
        assert!((all.held_sq - 0.008f64.powi(2)).abs() < 1e-12, "(end − ready)² in seconds²");
        assert!((all.service_sq - 0.007f64.powi(2)).abs() < 1e-12, "service² in seconds²");
        // Drained: a second drain finds nothing.
        let mut again = ShardStats::new();
        r.drain_into(&mut spares, &mut again);
        assert_eq!(again.completed, 0);
    }
}
