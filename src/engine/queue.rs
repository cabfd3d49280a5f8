//! The bounded FIFO between the producer and the workers.
//!
//! A `VecDeque` behind a std `Mutex`: every critical section is a push or a pop plus a few
//! counters, far shorter than a context switch, so an async mutex would only add cost. Waiting is
//! done outside the lock on two `Notify`s (not empty, not full). The bound and the policy change
//! live; shrinking the bound below the depth refuses new jobs until the queue drains and never
//! discards what is already queued. The depth's time integral is kept here, under the same lock,
//! so the mean depth per tick is exact rather than sampled.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::metrics::aggregate::{DepthStats, GapSums};
use crate::settings::Policy;

/// The room a flooding producer waits for before it fills the queue again: half the bound, at
/// most one flood batch, at least one place.
#[must_use]
pub fn refill_mark(bound: usize) -> usize {
    (bound / 2).clamp(1, FLOOD_BATCH)
}

/// The most jobs `--rate max` puts in the queue under one lock.
pub const FLOOD_BATCH: usize = 64;

/// A job's receipt from the broker, settled once the job is done. Uninhabited without the
/// `broker` feature, so the local queue's jobs carry nothing.
#[cfg(feature = "broker")]
pub type Receipt = super::broker::Receipt;
/// A job's receipt from the broker: none without the `broker` feature.
#[cfg(not(feature = "broker"))]
#[derive(Debug, Clone)]
pub enum Receipt {}

/// One unit of work as it travels through the queue. Small and allocation-free (the completion
/// handle, when present, is a reference-count increment).
#[derive(Debug, Clone)]
pub struct Job {
    /// Unique within the run, in arrival order (the job context's id).
    pub id: u64,
    /// When the arrival schedule said the job arrives: latency is measured from here.
    pub intended: Instant,
    /// When it actually entered the queue.
    pub enqueued: Instant,
    /// The service demand drawn at arrival.
    pub service: Duration,
    /// A closed-loop client waiting for this job to be done (completed, rejected or dropped).
    pub done: Option<Arc<Notify>>,
    /// The broker's receipt, settled when the job is done (none on the local queue).
    pub receipt: Option<Receipt>,
}

impl Job {
    /// Tells a waiting closed-loop client that this job is finished with, whatever its outcome.
    pub fn release(&self) {
        if let Some(n) = &self.done {
            n.notify_one();
        }
    }
}

/// What became of a push.
#[derive(Debug)]
pub enum Pushed {
    Queued,
    /// Refused (policy `reject`, or the queue is closed); the job is handed back.
    Rejected(Job),
    /// Queued, and the oldest job was discarded to make room (policy `drop-oldest`).
    Dropped(Job),
}

struct Inner {
    jobs: VecDeque<Job>,
    closed: bool,
    last_change: Instant,
    /// ∫ depth dt in depth·ns since `window_start`.
    area: u128,
    window_start: Instant,
    max: usize,
    /// The last enqueue, and the gaps between enqueues since the last tick: the arrival
    /// process as the queue saw it (the producer's lateness included).
    last_push: Option<Instant>,
    gaps: GapSums,
}

impl Inner {
    /// Adds the depth since the last change to the integral. `now` may be a little older than
    /// the last change (a worker passes the clock read that ended its previous job): the mark
    /// never moves back, so no stretch is counted twice.
    fn touch(&mut self, now: Instant) {
        if now > self.last_change {
            let dt = (now - self.last_change).as_nanos();
            self.area += dt * self.jobs.len() as u128;
            self.last_change = now;
        }
    }

    /// Counts `n` jobs entering at `now`: one gap since the previous enqueue, then `n − 1` of 0.
    fn arrived(&mut self, now: Instant, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(last) = self.last_push {
            let gap = now.saturating_duration_since(last).as_secs_f64();
            self.gaps.sum += gap;
            self.gaps.sum_sq += gap * gap;
            self.gaps.count += 1;
        }
        self.gaps.count += n as u64 - 1;
        self.last_push = Some(now);
    }
}

pub struct JobQueue {
    inner: Mutex<Inner>,
    not_empty: Notify,
    not_full: Notify,
    bound: AtomicUsize,
    policy: AtomicU8,
    /// Whether a push stamps the job's enqueue time (not in a relay, whose jobs were enqueued
    /// elsewhere: the broker's inbox).
    stamps: bool,
}

fn policy_code(p: Policy) -> u8 {
    match p {
        Policy::Block => 0,
        Policy::Reject => 1,
        Policy::DropOldest => 2,
    }
}

impl JobQueue {
    #[must_use]
    pub fn new(bound: usize, policy: Policy) -> Self {
        let now = Instant::now();
        Self {
            inner: Mutex::new(Inner {
                jobs: VecDeque::with_capacity(bound.min(4096)),
                closed: false,
                last_change: now,
                area: 0,
                window_start: now,
                max: 0,
                last_push: None,
                gaps: GapSums::default(),
            }),
            not_empty: Notify::new(),
            not_full: Notify::new(),
            bound: AtomicUsize::new(bound),
            policy: AtomicU8::new(policy_code(policy)),
            stamps: true,
        }
    }

    /// A queue that keeps the enqueue time its jobs arrive with (policy `block`).
    #[cfg(feature = "broker")]
    #[must_use]
    pub fn relay(bound: usize) -> Self {
        Self { stamps: false, ..Self::new(bound, Policy::Block) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_bound(&self, bound: usize) {
        self.bound.store(bound, Ordering::Relaxed);
        // Producers blocked on a full queue may now fit.
        self.not_full.notify_waiters();
    }

    pub fn set_policy(&self, p: Policy) {
        self.policy.store(policy_code(p), Ordering::Relaxed);
        self.not_full.notify_waiters();
    }

    #[must_use]
    pub fn policy(&self) -> Policy {
        match self.policy.load(Ordering::Relaxed) {
            0 => Policy::Block,
            1 => Policy::Reject,
            _ => Policy::DropOldest,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Pushes without waiting, applying the overflow policy (the queue's own, or `policy` when
    /// given) if the queue is full; under `block` a full queue hands the job back as `Err` so the
    /// caller can wait.
    ///
    /// # Errors
    /// The job, when the policy is `block` and the queue is full.
    pub fn try_push_as(&self, mut job: Job, policy: Option<Policy>) -> Result<Pushed, Job> {
        let bound = self.bound.load(Ordering::Relaxed);
        let policy = policy.unwrap_or_else(|| self.policy());
        let now = Instant::now();
        let mut q = self.lock();
        if q.closed {
            return Ok(Pushed::Rejected(job));
        }
        let mut dropped = None;
        if q.jobs.len() >= bound {
            match policy {
                Policy::Block => return Err(job),
                Policy::Reject => return Ok(Pushed::Rejected(job)),
                Policy::DropOldest => {
                    q.touch(now);
                    // After a shrink the depth can exceed the bound: discard only one per arrival.
                    dropped = q.jobs.pop_front();
                }
            }
        }
        q.touch(now);
        q.arrived(now, 1);
        if self.stamps {
            job.enqueued = now;
        }
        q.jobs.push_back(job);
        q.max = q.max.max(q.jobs.len());
        drop(q);
        self.not_empty.notify_one();
        Ok(dropped.map_or(Pushed::Queued, Pushed::Dropped))
    }

    /// Pushes, waiting for room while the policy is `block` and the queue is full. Dropping the
    /// future never leaves a job half-pushed: the push happens within one poll or not at all.
    pub async fn push_as(&self, mut job: Job, policy: Option<Policy>) -> Pushed {
        match self.try_push_as(job, policy) {
            Ok(p) => return p,
            Err(back) => job = back,
        }
        loop {
            let room = self.not_full.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push_as(job, policy) {
                Ok(p) => return p,
                Err(back) => job = back,
            }
            room.await;
        }
    }

    /// Takes the oldest job if there is one, with the instant it left the queue (its start);
    /// `Err(())` once the queue is closed and empty.
    pub fn try_pop(&self) -> Result<Option<(Job, Instant)>, ()> {
        self.try_pop_at(Instant::now())
    }

    /// [`Self::try_pop`] with the clock already read: a worker going straight from one job to
    /// the next passes the first one's end.
    pub fn try_pop_at(&self, now: Instant) -> Result<Option<(Job, Instant)>, ()> {
        let bound = self.bound.load(Ordering::Relaxed);
        let mut q = self.lock();
        q.touch(now);
        let was = q.jobs.len();
        match q.jobs.pop_front() {
            Some(job) => {
                drop(q);
                // A producer waits for room only when the queue was full (one place is enough
                // for `block`) or, flooding, for the refill mark ([`Self::wait_refill`]).
                let room = bound.saturating_sub(was - 1);
                if was >= bound || room == refill_mark(bound) {
                    self.not_full.notify_one();
                }
                Ok(Some((job, now)))
            }
            None if q.closed => Err(()),
            None => Ok(None),
        }
    }

    /// Takes the oldest job, waiting while the queue is empty; `None` once the queue is closed
    /// and empty, or when `stop` is set (a retiring worker: see [`Self::wake_consumers`]).
    ///
    /// The fast path is one lock; only an empty queue registers a waiter. A waiter that leaves
    /// after being picked by `notify_one` hands the notification on (tokio's `Notified` does so
    /// when dropped), so no job is left waiting while a worker sleeps.
    pub async fn pop(&self, stop: &AtomicBool) -> Option<(Job, Instant)> {
        loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(job) = self.try_pop().ok()? {
                return Some(job);
            }
            let ready = self.not_empty.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(job) = self.try_pop().ok()? {
                return Some(job);
            }
            ready.await;
        }
    }

    /// Wakes every waiting consumer so that retiring ones see their stop flag (set it first).
    pub fn wake_consumers(&self) {
        self.not_empty.notify_waiters();
    }

    /// Waits until the queue has room for [`refill_mark`] jobs (or is closed). A flooding
    /// producer that woke for every freed place would cost a thread wake-up per job; waiting for
    /// a batch's worth costs one per batch.
    pub async fn wait_refill(&self) {
        loop {
            let room = self.not_full.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let bound = self.bound.load(Ordering::Relaxed);
            let ready = {
                let q = self.lock();
                q.closed || bound.saturating_sub(q.jobs.len()) >= refill_mark(bound)
            };
            if ready {
                return;
            }
            room.await;
        }
    }

    /// Free places under the bound (0 when full or closed).
    pub fn room(&self) -> usize {
        let bound = self.bound.load(Ordering::Relaxed);
        let q = self.lock();
        if q.closed { 0 } else { bound.saturating_sub(q.jobs.len()) }
    }

    /// Pushes every job in `jobs` (the caller made sure they fit, see [`Self::room`]) under one
    /// lock, stamping them enqueued now; jobs beyond the bound are handed back in `jobs`.
    /// Returns how many were queued. For `--rate max`, where one lock a job would be the cost.
    pub fn push_many(&self, jobs: &mut Vec<Job>) -> usize {
        let bound = self.bound.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut q = self.lock();
        if q.closed {
            return 0;
        }
        q.touch(now);
        let n = jobs.len().min(bound.saturating_sub(q.jobs.len()));
        q.arrived(now, n);
        for mut job in jobs.drain(..n) {
            if self.stamps {
                job.enqueued = now;
            }
            q.jobs.push_back(job);
        }
        q.max = q.max.max(q.jobs.len());
        drop(q);
        if n == 1 {
            self.not_empty.notify_one();
        } else if n > 1 {
            self.not_empty.notify_waiters();
            self.not_empty.notify_one();
        }
        n
    }

    /// Closes the queue: pushes are refused from now on and every queued job is handed back
    /// (for the caller to count as abandoned); waiting workers and producers are woken.
    pub fn close(&self) -> Vec<Job> {
        let now = Instant::now();
        let mut q = self.lock();
        q.touch(now);
        q.closed = true;
        let left: Vec<Job> = q.jobs.drain(..).collect();
        drop(q);
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
        left
    }

    /// The depth now, and its time-weighted mean and maximum since the last call.
    pub fn take_depth_stats(&self) -> DepthStats {
        let now = Instant::now();
        let mut q = self.lock();
        q.touch(now);
        let span = now.saturating_duration_since(q.window_start).as_nanos();
        #[allow(clippy::cast_precision_loss)]
        let mean = if span == 0 { q.jobs.len() as f64 } else { q.area as f64 / span as f64 };
        let stats = DepthStats {
            now: q.jobs.len(),
            mean,
            max: q.max.max(q.jobs.len()),
            enqueue_gaps: std::mem::take(&mut q.gaps),
            parts: None,
            parts_mean: None,
        };
        q.area = 0;
        q.window_start = now;
        q.max = q.jobs.len();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job told apart by its service demand (`id` nanoseconds).
    fn job(id: u64) -> Job {
        let now = Instant::now();
        Job { id, intended: now, enqueued: now, service: Duration::from_nanos(id), done: None, receipt: None }
    }

    fn id(j: &Job) -> u64 {
        j.service.as_nanos() as u64
    }

    #[test]
    fn policies_at_the_bound() {
        let q = JobQueue::new(2, Policy::Reject);
        assert!(matches!(q.try_push_as(job(1), None), Ok(Pushed::Queued)));
        assert!(matches!(q.try_push_as(job(2), None), Ok(Pushed::Queued)));
        assert!(matches!(q.try_push_as(job(3), None), Ok(Pushed::Rejected(j)) if id(&j) == 3));
        q.set_policy(Policy::DropOldest);
        assert!(matches!(q.try_push_as(job(4), None), Ok(Pushed::Dropped(j)) if id(&j) == 1));
        q.set_policy(Policy::Block);
        assert!(matches!(q.try_push_as(job(5), None), Err(j) if id(&j) == 5));
        assert_eq!(q.len(), 2);
    }

    /// The gaps between enqueues: one per job after the first, a batch's jobs 0 apart, refused
    /// jobs not counted, and each tick's gaps handed out once.
    #[test]
    fn enqueue_gaps_are_the_arrivals_the_queue_saw() {
        let q = JobQueue::new(10, Policy::Reject);
        q.try_push_as(job(1), None).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        q.try_push_as(job(2), None).unwrap();
        let g = q.take_depth_stats().enqueue_gaps;
        assert_eq!(g.count, 1);
        assert!(g.sum >= 0.002 && (g.sum_sq - g.sum * g.sum).abs() < 1e-15, "{g:?}");
        let mut batch: Vec<Job> = (3..6).map(job).collect();
        assert_eq!(q.push_many(&mut batch), 3);
        q.set_bound(5);
        assert!(matches!(q.try_push_as(job(9), None), Ok(Pushed::Rejected(_))));
        let g = q.take_depth_stats().enqueue_gaps;
        assert_eq!(g.count, 3, "one gap from job 2, then two of 0; the refused job is no arrival");
        assert!(g.sum > 0.0 && (g.sum_sq - g.sum * g.sum).abs() < 1e-15, "{g:?}");
        assert_eq!(q.take_depth_stats().enqueue_gaps.count, 0);
    }

    #[test]
    fn shrinking_the_bound_keeps_what_is_queued() {
        let q = JobQueue::new(10, Policy::Reject);
        for i in 0..5 {
            q.try_push_as(job(i), None).unwrap();
        }
        q.set_bound(2);
        assert_eq!(q.len(), 5);
        assert!(matches!(q.try_push_as(job(9), None), Ok(Pushed::Rejected(_))));
        let left = q.close();
        assert_eq!(left.iter().map(id).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_blocked_push_resumes_when_a_worker_takes_a_job() {
        let q = Arc::new(JobQueue::new(1, Policy::Block));
        q.push_as(job(1), None).await;
        let q2 = Arc::clone(&q);
        let pusher = tokio::spawn(async move { q2.push_as(job(2), None).await });
        tokio::task::yield_now().await;
        assert!(!pusher.is_finished());
        assert_eq!(id(&q.pop(&AtomicBool::new(false)).await.unwrap().0), 1);
        assert!(matches!(pusher.await.unwrap(), Pushed::Queued));
        assert_eq!(id(&q.pop(&AtomicBool::new(false)).await.unwrap().0), 2);
    }

    #[tokio::test]
    async fn a_stopped_consumer_leaves_and_hands_on_its_wake_up() {
        let q = Arc::new(JobQueue::new(4, Policy::Block));
        let stop = Arc::new(AtomicBool::new(false));
        let (q2, stop2) = (Arc::clone(&q), Arc::clone(&stop));
        let retiring = tokio::spawn(async move { q2.pop(&stop2).await });
        tokio::task::yield_now().await;
        stop.store(true, Ordering::Release);
        q.wake_consumers();
        assert!(retiring.await.unwrap().is_none());
        let mut batch = vec![job(1), job(2), job(3)];
        assert_eq!(q.push_many(&mut batch), 3);
        assert!(batch.is_empty());
        assert_eq!(q.room(), 1);
        let mut more = vec![job(4), job(5)];
        assert_eq!(q.push_many(&mut more), 1, "only what fits under the bound");
        assert_eq!(more.len(), 1);
    }

    #[tokio::test]
    async fn close_wakes_waiting_workers() {
        let q = Arc::new(JobQueue::new(4, Policy::Block));
        let q2 = Arc::clone(&q);
        let worker = tokio::spawn(async move { q2.pop(&AtomicBool::new(false)).await });
        tokio::task::yield_now().await;
        q.close();
        assert!(worker.await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_flooding_producer_waits_for_a_refill_not_for_one_place() {
        let q = Arc::new(JobQueue::new(8, Policy::Block));
        assert_eq!(refill_mark(8), 4);
        let mut full: Vec<Job> = (0..8).map(job).collect();
        assert_eq!(q.push_many(&mut full), 8);
        let q2 = Arc::clone(&q);
        let mut refill = tokio::spawn(async move { q2.wait_refill().await });
        for _ in 0..3 {
            q.try_pop().unwrap().unwrap();
            tokio::task::yield_now().await;
            assert!(futures_util::poll!(&mut refill).is_pending(), "woken with room {}", q.room());
        }
        q.try_pop().unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(5), refill).await.expect("woken at the mark").unwrap();
        assert_eq!(q.room(), 4);
    }
}
