//! Arrivals: the producer task and, in closed loop, its clients.
//!
//! Every job carries its *intended* arrival time from the schedule, not the time it got into the
//! queue: when the producer falls behind (a full queue under `block`, a starved runtime, a late
//! timer), the jobs it owes keep their scheduled times and are issued at once when it can, so
//! the delay shows in latency instead of being silently forgiven (no coordinated omission).
//! A job that could not be enqueued when a knob changed is kept and pushed first afterwards.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;
use super::queue::{FLOOD_BATCH, Job};
use super::replay::Clock;
use super::service::Sampler;
use crate::settings::{ArrivalKind, Policy, Rate, Settings};

/// What the producer follows: the settings and whether arrivals are paused.
#[derive(Debug, Clone)]
pub struct ProducerCfg {
    pub settings: Settings,
    pub paused: bool,
}

/// Seeds for the independent random streams of a run (arrivals, service, each client).
fn stream_seed(seed: u64, stream: u64) -> u64 {
    // SplitMix64 step: nearby seeds and streams give unrelated generators.
    let mut z = seed.wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many batches the flood mode issues between voluntary yields, so it never monopolises a
/// runtime thread when the queue always has room.
const FLOOD_YIELD_EVERY: u32 = 16;

struct Producer {
    shared: Arc<Shared>,
    rng: SmallRng,
    sampler: Sampler,
    pending: Option<Job>,
    /// Next arrival in schedule time (seconds since the engine started; for `bursty`, on-time).
    next: Option<f64>,
    last_intended: Option<Instant>,
    batch_left: Option<(Instant, u64)>,
    arrival: ArrivalKind,
    /// Until the producer first runs: its schedule starts at the run's clock (time 0), not when
    /// the runtime first polls it, so the run's first arrivals are owed (and show as lag), not
    /// lost.
    from_start: bool,
    /// A trace's replay: the next arrival (counted across passes) and where its clock stands.
    trace_next: u64,
    trace_clock: Option<Clock>,
}

pub async fn run(shared: Arc<Shared>, mut cfg: watch::Receiver<ProducerCfg>, cancel: CancellationToken) {
    let seed = cfg.borrow().settings.seed;
    let sampler = Sampler::new(stream_seed(seed, 1), shared.service_sample.clone());
    let mut p = Producer {
        shared,
        rng: SmallRng::seed_from_u64(stream_seed(seed, 0)),
        sampler,
        pending: None,
        next: None,
        last_intended: None,
        batch_left: None,
        arrival: cfg.borrow().settings.arrival,
        from_start: true,
        trace_next: 0,
        trace_clock: None,
    };
    while !cancel.is_cancelled() {
        let c = cfg.borrow_and_update().clone();
        if c.settings.arrival != p.arrival {
            if p.arrival == ArrivalKind::Trace {
                // Left the trace: its position is kept for a return, its end no longer ends the run.
                p.shared.arrivals_done.store(false, Ordering::Relaxed);
                p.trace_clock = None;
            }
            p.arrival = c.settings.arrival;
            p.next = None;
            p.batch_left = None;
        }
        if c.paused {
            // Paused from the start: arrivals resume from the moment of resuming, owing none.
            p.from_start = false;
            p.next = None;
            // A trace resumes where it stopped, its next arrival due on resuming.
            p.trace_clock = None;
            wait_change(&mut cfg, &cancel).await;
            continue;
        }
        match c.settings.arrival {
            ArrivalKind::Closed => p.closed_loop(&c.settings, &mut cfg, &cancel).await,
            ArrivalKind::Batch => p.batch(&c.settings, &mut cfg, &cancel).await,
            ArrivalKind::Trace => p.trace(&c.settings, &mut cfg, &cancel).await,
            _ if c.settings.rate == Rate::Max => p.flood(&c.settings, &mut cfg, &cancel).await,
            _ => p.open_loop(&c.settings, &mut cfg, &cancel).await,
        }
        p.from_start = false;
    }
    if p.pending.take().is_some() {
        p.shared.abandoned.fetch_add(1, Ordering::Relaxed);
    }
    p.shared.pending_intended.store(u64::MAX, Ordering::Relaxed);
}

/// Waits for an arrival's instant `at`; false when a knob changes or the run is cancelled
/// first (the caller returns to take the change; an arrival already due waits for nothing).
async fn due(shared: &Shared, at: Instant, cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) -> bool {
    if at > Instant::now() {
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            _ = cfg.changed() => false,
            () = shared.timer.sleep_until_strict(at) => true,
        }
    } else {
        !(cfg.has_changed().unwrap_or(true) || cancel.is_cancelled())
    }
}

async fn wait_change(cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        r = cfg.changed() => if r.is_err() { cancel.cancelled().await },
    }
}

impl Producer {
    fn make_job(&mut self, intended: Instant, s: &Settings, done: Option<Arc<Notify>>) -> Job {
        self.shared.offered.fetch_add(1, Ordering::Relaxed);
        if let Some(last) = self.last_intended {
            self.shared.gaps.add(intended.saturating_duration_since(last));
        }
        self.last_intended = Some(intended);
        Job {
            id: self.shared.next_id.fetch_add(1, Ordering::Relaxed),
            intended,
            enqueued: intended,
            service: self.sampler.draw(s),
            done,
            receipt: None,
        }
    }

    /// Whether the `jobs` limit lets one more job be offered.
    fn admit(&self, s: &Settings) -> bool {
        s.jobs.is_none_or(|n| self.shared.offered.load(Ordering::Relaxed) < n)
    }

    /// Pushes `job` under `policy`; if it must wait and a knob changes (or the run ends) first,
    /// keeps it as pending and returns false.
    async fn push(
        &mut self,
        job: Job,
        policy: Option<Policy>,
        cfg: &mut watch::Receiver<ProducerCfg>,
        cancel: &CancellationToken,
    ) -> bool {
        let q = &self.shared.queue;
        self.shared.pending_intended.store(self.shared.since_start(job.intended), Ordering::Relaxed);
        let job = match q.try_push_as(job, policy) {
            Ok(p) => {
                self.shared.account(p);
                self.shared.pending_intended.store(u64::MAX, Ordering::Relaxed);
                return true;
            }
            Err(job) => job,
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => {}
            _ = cfg.changed() => {}
            p = q.push_as(job.clone(), policy) => {
                self.shared.account(p);
                self.shared.pending_intended.store(u64::MAX, Ordering::Relaxed);
                return true;
            }
        }
        self.pending = Some(job);
        false
    }

    async fn push_pending(
        &mut self,
        cfg: &mut watch::Receiver<ProducerCfg>,
        cancel: &CancellationToken,
        policy: Option<Policy>,
    ) -> bool {
        match self.pending.take() {
            Some(job) => self.push(job, policy, cfg, cancel).await,
            None => true,
        }
    }

    /// Schedule time ↔ real time. For `bursty`, schedule time runs only during on-periods.
    fn to_real(&self, v: f64, s: &Settings) -> Instant {
        let secs = if s.arrival == ArrivalKind::Bursty {
            let (on, period) = (s.burst_on.as_secs_f64(), (s.burst_on + s.burst_off).as_secs_f64());
            let k = (v / on).floor();
            k * period + (v - k * on)
        } else {
            v
        };
        self.shared.start + Duration::from_secs_f64(secs.max(0.0))
    }

    fn to_schedule(&self, t: Instant, s: &Settings) -> f64 {
        let real = t.saturating_duration_since(self.shared.start).as_secs_f64();
        if s.arrival == ArrivalKind::Bursty {
            let (on, period) = (s.burst_on.as_secs_f64(), (s.burst_on + s.burst_off).as_secs_f64());
            let k = (real / period).floor();
            k * on + (real - k * period).min(on)
        } else {
            real
        }
    }

    fn gap(&mut self, s: &Settings, rate: f64) -> f64 {
        let rate = if s.arrival == ArrivalKind::Bursty {
            rate * (s.burst_on + s.burst_off).as_secs_f64() / s.burst_on.as_secs_f64()
        } else {
            rate
        };
        match s.arrival {
            ArrivalKind::Constant => 1.0 / rate,
            _ => Exp::new(rate).map_or(1.0 / rate, |d| d.sample(&mut self.rng)),
        }
    }

    async fn open_loop(&mut self, s: &Settings, cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) {
        let Rate::PerSec(rate) = s.rate else { return };
        if !self.push_pending(cfg, cancel, None).await {
            return;
        }
        if rate <= 0.0 {
            self.next = None;
            return wait_change(cfg, cancel).await;
        }
        let now_v = if self.from_start { 0.0 } else { self.to_schedule(Instant::now(), s) };
        let mut next = match (self.next, self.last_intended) {
            // Owed arrivals keep their times; a future one is re-drawn at the new rate.
            (Some(n), _) if n <= now_v => n,
            (_, Some(last)) if s.arrival == ArrivalKind::Constant => {
                (self.to_schedule(last, s) + self.gap(s, rate)).max(now_v)
            }
            _ => now_v + self.gap(s, rate),
        };
        loop {
            self.next = Some(next);
            if !self.admit(s) {
                return wait_change(cfg, cancel).await;
            }
            let at = self.to_real(next, s);
            if self.shared.end.is_some_and(|end| at >= end) {
                // The run ends first: this arrival is not part of it.
                return wait_change(cfg, cancel).await;
            }
            if !due(&self.shared, at, cfg, cancel).await {
                return;
            }
            let job = self.make_job(at, s, None);
            next += self.gap(s, rate);
            self.next = Some(next);
            if !self.push(job, None, cfg, cancel).await {
                return;
            }
            if self.to_real(next, s) > Instant::now() {
                // Let the worker just woken (queued on this thread) take the job before this
                // task spends time registering its next sleep: that time would be the job's wait.
                tokio::task::yield_now().await;
            }
        }
    }

    /// `trace`: the trace's arrival instants at the speed the rate gives ([`super::replay`]).
    async fn trace(&mut self, s: &Settings, cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) {
        let shared = Arc::clone(&self.shared);
        let (Some(a), Rate::PerSec(rate)) = (shared.arrivals.as_ref(), s.rate) else {
            return wait_change(cfg, cancel).await;
        };
        if !self.push_pending(cfg, cancel, None).await {
            return;
        }
        let speed = a.speed_for(rate);
        if speed <= 0.0 {
            return wait_change(cfg, cancel).await;
        }
        let now = if self.from_start { 0.0 } else { shared.start.elapsed().as_secs_f64() };
        // The trace time reached so far is kept and the rest runs at the new speed; a replay
        // (re)started from another arrival process has its next arrival due now.
        let clock = match (self.trace_clock, a.at(self.trace_next)) {
            (Some(c), Some(next)) if c.real_of(next) <= now => {
                // Owed at the old speed: issued at its time, the clock moves on from there.
                Clock { real: c.real_of(next), trace: next, speed }
            }
            (Some(c), _) => c.respeed(now, speed),
            (None, next) => Clock { real: now, trace: next.unwrap_or(0.0), speed },
        };
        self.trace_clock = Some(clock);
        loop {
            if !self.admit(s) {
                return wait_change(cfg, cancel).await;
            }
            let Some(next) = a.at(self.trace_next) else {
                // The last arrival is offered: nothing more until a knob changes.
                shared.arrivals_done.store(true, Ordering::Relaxed);
                return wait_change(cfg, cancel).await;
            };
            let at = shared.start + Duration::from_secs_f64(clock.real_of(next).max(0.0));
            if shared.end.is_some_and(|end| at >= end) {
                return wait_change(cfg, cancel).await;
            }
            if !due(&shared, at, cfg, cancel).await {
                return;
            }
            let mut job = self.make_job(at, s, None);
            if let Some(d) = a.service(self.trace_next, s.service) {
                job.service = d;
            }
            self.trace_next += 1;
            shared.trace_offered.store(self.trace_next, Ordering::Relaxed);
            if !self.push(job, None, cfg, cancel).await {
                return;
            }
            if a.at(self.trace_next).is_some_and(|t| clock.real_of(t) > shared.start.elapsed().as_secs_f64()) {
                // As in the open loop: let the worker just woken take the job first.
                tokio::task::yield_now().await;
            }
        }
    }

    /// `--rate max`: enqueue as fast as the queue accepts, waiting for room whatever the policy.
    /// Jobs go in batches of up to [`FLOOD_BATCH`] under one lock; each is intended at the
    /// instant its batch was made (the schedule is "now", as fast as possible).
    async fn flood(&mut self, s: &Settings, cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) {
        if !self.push_pending(cfg, cancel, Some(Policy::Block)).await {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let mut batch: Vec<Job> = Vec::with_capacity(FLOOD_BATCH);
        let mut n = 0u32;
        while !cancel.is_cancelled() && !cfg.has_changed().unwrap_or(true) {
            let left = s.jobs.map_or(u64::MAX, |j| j.saturating_sub(shared.offered.load(Ordering::Relaxed)));
            if left == 0 {
                return wait_change(cfg, cancel).await;
            }
            let room = shared.queue.room().min(FLOOD_BATCH).min(usize::try_from(left).unwrap_or(usize::MAX));
            if room == 0 {
                // Full: wait until a batch's worth is free, then fill again.
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    _ = cfg.changed() => return,
                    () = shared.queue.wait_refill() => continue,
                }
            }
            let now = Instant::now();
            for _ in 0..room {
                batch.push(Job {
                    id: shared.next_id.fetch_add(1, Ordering::Relaxed),
                    intended: now,
                    enqueued: now,
                    service: self.sampler.draw(s),
                    done: None,
                    receipt: None,
                });
            }
            let queued = shared.queue.push_many(&mut batch);
            shared.offered.fetch_add(queued as u64, Ordering::Relaxed);
            // Anything that no longer fits (the bound shrank meanwhile) is simply not offered.
            batch.clear();
            self.last_intended = Some(now);
            n += 1;
            if n.is_multiple_of(FLOOD_YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
    }

    /// `batch`: `jobs` jobs, all intended at the same instant, then nothing until a knob changes.
    async fn batch(&mut self, s: &Settings, cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) {
        let size = s.jobs.unwrap_or(1);
        let (t0, mut left) = *self.batch_left.get_or_insert((Instant::now(), size));
        if !self.push_pending(cfg, cancel, None).await {
            return;
        }
        while left > 0 {
            let job = self.make_job(t0, s, None);
            left -= 1;
            self.batch_left = Some((t0, left));
            if !self.push(job, None, cfg, cancel).await {
                return;
            }
        }
        wait_change(cfg, cancel).await;
    }

    /// Closed loop: `clients` tasks, each issuing one job, waiting for it, then thinking.
    async fn closed_loop(&mut self, s: &Settings, cfg: &mut watch::Receiver<ProducerCfg>, cancel: &CancellationToken) {
        if !self.push_pending(cfg, cancel, None).await {
            return;
        }
        let clients = cancel.child_token();
        let tracker = TaskTracker::new();
        for i in 0..s.clients {
            let seed = stream_seed(s.seed, 2 + i as u64);
            tracker.spawn(client(Arc::clone(&self.shared), cfg.clone(), seed, clients.clone()));
        }
        tracker.close();
        // Other knobs (workers, service, policy, ...) reach the clients live; only a change to
        // the loop itself restarts them.
        loop {
            wait_change(cfg, cancel).await;
            let c = cfg.borrow_and_update();
            if cancel.is_cancelled()
                || c.paused
                || c.settings.arrival != ArrivalKind::Closed
                || c.settings.clients != s.clients
                || c.settings.think != s.think
            {
                break;
            }
        }
        clients.cancel();
        tracker.wait().await;
    }
}

async fn client(shared: Arc<Shared>, cfg: watch::Receiver<ProducerCfg>, seed: u64, cancel: CancellationToken) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sampler = Sampler::new(stream_seed(seed, 1), shared.service_sample.clone());
    let think_mean = cfg.borrow().settings.think;
    let think = Exp::new(1.0 / think_mean.as_secs_f64().max(1e-12)).ok();
    let done = Arc::new(Notify::new());
    loop {
        let s = cfg.borrow().settings.clone();
        let thinking = Instant::now();
        if !think_mean.is_zero() {
            let pause = think.map_or(0.0, |d| d.sample(&mut rng));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = shared.timer.sleep(Duration::from_secs_f64(pause.min(3600.0))) => {}
            }
        }
        if s.jobs.is_some_and(|n| shared.offered.load(Ordering::Relaxed) >= n) {
            return cancel.cancelled().await;
        }
        shared.offered.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let thought = u64::try_from((now - thinking).as_nanos()).unwrap_or(u64::MAX);
        shared.think_ns.fetch_add(thought, Ordering::Relaxed);
        shared.thinks.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            id: shared.next_id.fetch_add(1, Ordering::Relaxed),
            intended: now,
            enqueued: now,
            service: sampler.draw(&s),
            done: Some(Arc::clone(&done)),
            receipt: None,
        };
        tokio::select! {
            () = cancel.cancelled() => {
                // Offered but never queued: account for it.
                shared.abandoned.fetch_add(1, Ordering::Relaxed);
                return;
            }
            p = shared.queue.push_as(job, None) => shared.account(p),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = done.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stream_seed;

    /// Nearby seeds and streams (the arrivals, the service and each client of a run) get
    /// unrelated generators: no two of 64 × 64 (seed, stream) pairs share a seed, and one bit
    /// more in the seed flips about half the bits of every stream's seed.
    #[test]
    fn streams_differ() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..64 {
            for stream in 0..64 {
                assert!(seen.insert(stream_seed(seed, stream)), "seed {seed} stream {stream} repeats a stream");
                let flipped = (stream_seed(seed, stream) ^ stream_seed(seed + 1, stream)).count_ones();
                assert!((16..=48).contains(&flipped), "seeds {seed} and {} differ in {flipped} bits", seed + 1);
            }
        }
    }
}
