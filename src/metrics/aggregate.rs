//! The per-tick merge: shards and counters in, one [`Snapshot`] out.
//!
//! Runs beside the engine (on the control thread, never on the workload runtime) and owns the
//! only long-lived histograms: one set for the tick and one for the measured window. Memory is
//! fixed: nothing here grows with the length of the run.

use std::time::{Duration, Instant};

use super::account::{Accounting, Replay};
use super::recorder::{Recorders, ShardStats};
use super::schedule::ScheduleSums;
use super::sparse::{Sparse, TickDist};
use super::{
    Counters, Distribution, Latency, Measured, Micros, QueueParts, QueueView, Rates, RuntimeStats, Snapshot, Summary,
};
use crate::settings::Settings;

/// Running sums of the scheduled inter-arrival gaps (seconds), for the arrival CV.
#[derive(Debug, Clone, Copy, Default)]
pub struct GapSums {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

/// The queue's depth since the previous tick: plain data the engine's queue fills in.
///
/// `now`, `mean` and `max` count what the `queue` bound counts: on the in-process queue the jobs
/// waiting; over a broker the jobs the stream holds (undelivered, pulled ahead by a worker
/// process, in service until acknowledged), as the server counts them. Over a broker `parts`
/// and `parts_mean` say where the jobs waiting for a worker are.
#[derive(Debug, Clone, Copy, Default)]
pub struct DepthStats {
    pub now: usize,
    /// Time-weighted mean over the tick.
    pub mean: f64,
    pub max: usize,
    /// The gaps between the tick's enqueues (seconds): the arrivals as the queue saw them.
    pub enqueue_gaps: GapSums,
    /// A broker run: the jobs waiting for a worker by place, now and (time-weighted) over the tick.
    pub parts: Option<QueueParts>,
    pub parts_mean: Option<QueueParts>,
}

impl DepthStats {
    /// The mean number of jobs waiting for a worker over the tick, wherever they wait: the
    /// queue length of Little's law and of the model. The in-process queue: its depth. A broker:
    /// outbox + stream (undelivered) + pulled ahead.
    #[must_use]
    pub fn waiting_mean(&self) -> f64 {
        self.parts_mean.map_or(self.mean, |p| p.total())
    }
}

impl GapSums {
    fn add(&mut self, o: &GapSums) {
        self.count += o.count;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }
}

/// Everything the aggregator needs for one tick besides the shards: the engine fills it in, and
/// the aggregator builds the [`Snapshot`] from it whole.
pub struct TickInputs<'a> {
    pub now: Instant,
    pub recorders: &'a Recorders,
    pub offered: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub abandoned: u64,
    pub depth: DepthStats,
    pub settings: &'a Settings,
    pub paused: bool,
    pub live_workers: usize,
    pub producer_lag: Duration,
    /// A replayed trace's arrivals offered so far ([`crate::metrics::Snapshot::trace_offered`]).
    pub trace_offered: u64,
    pub gaps: GapSums,
    /// Closed loop: the think times clients spent since the last tick (count and seconds).
    pub think: GapSums,
    pub finished: bool,
    pub commands: u64,
    pub runtime: RuntimeStats,
    /// The latest failure messages, newest last.
    pub recent_errors: Vec<String>,
    /// The workers run your own job, not the synthetic service.
    pub custom_work: bool,
    /// The run's service sample ([`crate::metrics::Snapshot::service_sample`]).
    pub service_sample: Option<std::sync::Arc<crate::model::sample::ServiceSample>>,
    /// A broker run's worker nodes, their workers (summed), and the jobs they finished twice
    /// since the last tick (counted once).
    pub nodes: Vec<super::NodeView>,
    pub node_workers: usize,
    pub duplicates: u64,
    pub broker: Option<super::BrokerView>,
}

pub struct Aggregator {
    start: Instant,
    warmup: Duration,
    spares: Vec<ShardStats>,
    tick_stats: ShardStats,
    window: ShardStats,
    tick_no: u64,
    last_tick: Instant,
    last: Counters,
    measuring: bool,
    since: Instant,
    base: Counters,
    base_gaps: GapSums,
    /// The gaps between enqueues over the window.
    enqueue_gaps: GapSums,
    /// Closed loop: think times over the window.
    think: GapSums,
    depth_area: f64,
    depth_max: usize,
    /// ∫ jobs waiting for a worker dt (see [`DepthStats::waiting_mean`]), and by place over a broker.
    waiting_area: f64,
    parts_area: Option<QueueParts>,
    worker_time: f64,
    /// The worker nodes' workers at the last tick: a freeze, which hears no node, counts them.
    node_workers: usize,
    /// The measured window as it stood when the run's measured part ended (see [`Self::freeze`]),
    /// and its account.
    frozen: Option<Measured>,
    frozen_account: Option<Replay>,
    /// The next tick continues the current one (its stats were partly drained by a freeze).
    carry: bool,
    runtime: RuntimeSums,
    /// Publish each tick's distributions in full ([`Snapshot::dist`]).
    distributions: bool,
    /// The whole run's distributions so far, when published ([`Snapshot::run_dist`]): bounded
    /// by the histograms' buckets, not by the run's length.
    run_dist: Option<std::sync::Arc<TickDist>>,
    schedule: ScheduleSums,
    /// Every kept job and the account of the window's ([`super::account`]).
    account: Accounting,
}

/// Sums of per-tick runtime figures over the measured window. The worker-task figures are
/// weighted by the polls each tick completed: a tick in which a long (blocking) poll was still
/// running completed none, and must not pull the mean towards zero.
#[derive(Debug, Clone, Copy, Default)]
struct RuntimeSums {
    ticks: f64,
    /// busy ratio, global queue depth, live tasks: per-tick means.
    sum: [f64; 3],
    /// scheduled delay, poll duration, slow-poll ratio: weighted by polls.
    weighted: [f64; 3],
    task_polls: u64,
    parks: u64,
    polls: Option<u64>,
    steals: Option<u64>,
    optional: [Option<f64>; 3],
    last_workers: usize,
}

impl RuntimeSums {
    fn add(&mut self, r: &RuntimeStats) {
        self.ticks += 1.0;
        for (s, x) in self.sum.iter_mut().zip([r.busy_ratio, r.global_queue_depth as f64, r.live_tasks as f64]) {
            *s += x;
        }
        let n = r.task_polls as f64;
        for (s, x) in self.weighted.iter_mut().zip([r.mean_scheduled_delay_us, r.mean_poll_us, r.slow_poll_ratio]) {
            *s += x * n;
        }
        self.task_polls += r.task_polls;
        self.parks += r.park_count;
        self.polls = r.polls.map(|p| self.polls.unwrap_or(0) + p);
        self.steals = r.steals.map(|p| self.steals.unwrap_or(0) + p);
        let o =
            [r.local_queue_depth.map(|x| x as f64), r.blocking_queue_depth.map(|x| x as f64), r.runtime_mean_poll_us];
        for (s, x) in self.optional.iter_mut().zip(o) {
            *s = x.map(|x| s.unwrap_or(0.0) + x);
        }
        self.last_workers = r.workers;
    }

    fn mean(&self) -> RuntimeStats {
        if self.ticks == 0.0 {
            return RuntimeStats::default();
        }
        let m = |i: usize| self.sum[i] / self.ticks;
        let w = |i: usize| if self.task_polls > 0 { self.weighted[i] / self.task_polls as f64 } else { 0.0 };
        RuntimeStats {
            workers: self.last_workers,
            busy_ratio: m(0),
            global_queue_depth: m(1).round() as usize,
            live_tasks: m(2).round() as usize,
            park_count: self.parks,
            mean_scheduled_delay_us: w(0),
            mean_poll_us: w(1),
            slow_poll_ratio: w(2),
            task_polls: self.task_polls,
            polls: self.polls,
            steals: self.steals,
            local_queue_depth: self.optional[0].map(|x| (x / self.ticks).round() as usize),
            blocking_queue_depth: self.optional[1].map(|x| (x / self.ticks).round() as usize),
            blocking_threads: None,
            runtime_mean_poll_us: self.optional[2].map(|x| x / self.ticks),
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn cv(count: f64, sum: f64, sum_sq: f64) -> f64 {
    if count < 2.0 || sum <= 0.0 {
        return 0.0;
    }
    let mean = sum / count;
    let var = (sum_sq / count - mean * mean).max(0.0);
    var.sqrt() / mean
}

impl Aggregator {
    #[must_use]
    pub fn new(start: Instant, warmup: Duration, shards: usize) -> Self {
        Self {
            start,
            warmup,
            spares: (0..shards).map(|_| ShardStats::new()).collect(),
            tick_stats: ShardStats::new(),
            window: ShardStats::new(),
            tick_no: 0,
            last_tick: start,
            last: Counters::default(),
            measuring: warmup.is_zero(),
            since: start,
            base: Counters::default(),
            base_gaps: GapSums::default(),
            enqueue_gaps: GapSums::default(),
            think: GapSums::default(),
            depth_area: 0.0,
            depth_max: 0,
            waiting_area: 0.0,
            parts_area: None,
            worker_time: 0.0,
            node_workers: 0,
            frozen: None,
            frozen_account: None,
            carry: false,
            runtime: RuntimeSums::default(),
            distributions: false,
            run_dist: None,
            schedule: ScheduleSums::default(),
            account: Accounting::default(),
        }
    }

    /// The same aggregator with the run's clock starting at `start`: its histograms take
    /// milliseconds to allocate, so it is built first and the clock started after.
    #[must_use]
    pub fn starting(mut self, start: Instant) -> Self {
        self.start = start;
        self.last_tick = start;
        self.since = start;
        self
    }

    /// Publishes each tick's distributions in full from now on ([`Snapshot::dist`]).
    #[must_use]
    pub fn with_distributions(mut self, on: bool) -> Self {
        self.distributions = on;
        self
    }

    /// Publishes the whole run's distributions from now on ([`Snapshot::run_dist`]).
    #[must_use]
    pub fn with_run_distributions(mut self, on: bool) -> Self {
        self.run_dist = on.then(std::sync::Arc::default);
        self
    }

    /// Ends the measured window now: a shutdown's drain still updates the totals and the last
    /// tick but no longer the measured statistics, so a timed run reports exactly its time. The
    /// tick in progress is not published here; the next [`Self::tick`] reports all of it.
    pub fn freeze(&mut self, i: &TickInputs<'_>) {
        if !std::mem::replace(&mut self.carry, true) {
            self.tick_stats.clear();
        }
        i.recorders.drain_into(&mut self.spares, &mut self.tick_stats);
        self.account.take(&mut self.tick_stats.jobs, self.measuring);
        let totals = self.totals(i);
        if self.measuring {
            let secs = i.now.saturating_duration_since(self.last_tick).as_secs_f64();
            self.window.merge(&self.tick_stats);
            self.add_depth(&i.depth, secs);
            self.enqueue_gaps.add(&i.depth.enqueue_gaps);
            self.think.add(&i.think);
            // The nodes' workers served until now too: the freeze's inputs hear no node.
            self.worker_time += (i.settings.workers + self.node_workers) as f64 * secs;
            self.schedule.add(i.settings, i.paused, secs);
        }
        self.frozen = Some(self.measured(&totals, &i.gaps, i.now));
        self.frozen_account = self.replay(i, true);
    }

    /// The window's account now (`now`) or when due; `None` without one (see
    /// [`super::account`]). The kept jobs' room freed once no more are kept.
    fn replay(&mut self, i: &TickInputs<'_>, now: bool) -> Option<Replay> {
        let complete = i.recorders.kept_all();
        if !complete {
            self.tick_stats.jobs = Vec::new();
            for s in &mut self.spares {
                s.jobs = Vec::new();
            }
        }
        let workers = u32::try_from(i.settings.workers).unwrap_or(u32::MAX);
        self.measuring.then(|| self.account.refresh(i.now, workers, complete, now)).flatten()
    }

    /// Adds a tick's depth over `secs` to the window's.
    fn add_depth(&mut self, d: &DepthStats, secs: f64) {
        self.depth_area += d.mean * secs;
        self.depth_max = self.depth_max.max(d.max);
        self.waiting_area += d.waiting_mean() * secs;
        if let Some(p) = d.parts_mean {
            self.parts_area = Some(self.parts_area.unwrap_or_default().plus(&p.scaled(secs)));
        }
    }

    fn totals(&self, i: &TickInputs<'_>) -> Counters {
        Counters {
            offered: i.offered,
            started: (self.last.completed + self.tick_stats.completed).saturating_sub(i.duplicates)
                + self.last.failed
                + self.tick_stats.failed
                + i.recorders.busy(),
            completed: (self.last.completed + self.tick_stats.completed).saturating_sub(i.duplicates),
            failed: self.last.failed + self.tick_stats.failed,
            timed_out: self.last.timed_out + self.tick_stats.timed_out,
            panicked: self.last.panicked + self.tick_stats.panicked,
            rejected: i.rejected,
            dropped: i.dropped,
            abandoned: i.abandoned,
        }
    }

    /// Starts the measured window afresh at the next tick (warm-up end or the operator's reset).
    pub fn reset(&mut self) {
        self.window.clear();
        self.account.reset_window();
        self.since = self.last_tick;
        self.base = self.last;
        self.depth_area = 0.0;
        self.depth_max = 0;
        self.waiting_area = 0.0;
        self.parts_area = None;
        self.enqueue_gaps = GapSums::default();
        self.think = GapSums::default();
        self.worker_time = 0.0;
        self.runtime = RuntimeSums::default();
        self.schedule.reset();
        self.base_gaps = GapSums { count: u64::MAX, ..GapSums::default() };
    }

    pub fn tick(&mut self, i: &TickInputs<'_>) -> Snapshot {
        let dt = i.now.saturating_duration_since(self.last_tick);
        let secs = dt.as_secs_f64();
        if !std::mem::take(&mut self.carry) {
            self.tick_stats.clear();
        }
        i.recorders.drain_into(&mut self.spares, &mut self.tick_stats);
        let totals = self.totals(i);
        let t = &self.tick_stats;
        let d = totals.since(&self.last);
        let rates = Rates {
            offered: per_s(d.offered, secs),
            started: per_s(d.started, secs),
            completed: per_s(d.completed, secs),
            failed: per_s(d.failed, secs),
            rejected: per_s(d.rejected, secs),
            dropped: per_s(d.dropped, secs),
        };
        #[allow(clippy::cast_precision_loss)]
        let workers = (i.settings.workers + i.node_workers) as f64;
        let busy_s = t.service_ns as f64 / 1e9;
        let utilisation = if workers > 0.0 && secs > 0.0 { busy_s / (workers * secs) } else { 0.0 };
        let latency = Latency {
            response: Summary::of(&t.latency, t.latency_ns),
            wait: Summary::of(&t.wait, t.wait_ns),
            service: Summary::of(&t.service, t.service_ns),
        };
        let tick_dist = (self.distributions || self.run_dist.is_some()).then(|| TickDist {
            response: Sparse::of(&t.latency, t.latency_ns),
            wait: Sparse::of(&t.wait, t.wait_ns),
            service: Sparse::of(&t.service, t.service_ns),
        });
        // Every tick's jobs, warm-up included, as `totals` counts them: a client that misses a
        // snapshot still finds them all in the next one.
        let run_dist = match (self.run_dist.as_mut(), &tick_dist) {
            (Some(run), Some(d)) => {
                std::sync::Arc::make_mut(run).merge(d);
                Some(run.clone())
            }
            _ => None,
        };
        let dist = tick_dist.filter(|_| self.distributions).map(std::sync::Arc::new);

        if !self.measuring && i.now.saturating_duration_since(self.start) >= self.warmup {
            self.account.take(&mut self.tick_stats.jobs, false);
            self.measuring = true;
            self.last = totals;
            self.last_tick = i.now;
            self.reset();
        } else if self.frozen.is_some() {
            self.account.take(&mut self.tick_stats.jobs, false);
            self.last = totals;
            self.last_tick = i.now;
        } else {
            self.account.take(&mut self.tick_stats.jobs, self.measuring);
            self.window.merge(&self.tick_stats);
            self.add_depth(&i.depth, secs);
            self.enqueue_gaps.add(&i.depth.enqueue_gaps);
            self.think.add(&i.think);
            self.worker_time += workers * secs;
            self.runtime.add(&i.runtime);
            self.schedule.add(i.settings, i.paused, secs);
            self.last = totals;
            self.last_tick = i.now;
        }
        if self.base_gaps.count == u64::MAX {
            self.base_gaps = i.gaps;
        }
        self.node_workers = i.node_workers;

        self.tick_no += 1;
        let account = if self.frozen.is_some() { self.frozen_account } else { self.replay(i, i.finished) };
        Snapshot {
            tick: self.tick_no,
            elapsed: i.now.saturating_duration_since(self.start),
            tick_len: dt,
            settings: i.settings.clone(),
            paused: i.paused,
            measuring: self.measuring,
            finished: i.finished,
            totals,
            rates,
            queue: QueueView {
                depth: i.depth.now,
                mean: i.depth.mean,
                max: i.depth.max,
                bound: i.settings.queue,
                parts: i.depth.parts,
            },
            in_flight: totals.in_system(),
            busy_workers: i.recorders.busy(),
            live_workers: i.live_workers,
            utilisation,
            latency,
            measured: self.frozen.unwrap_or_else(|| self.measured(&totals, &i.gaps, self.last_tick)),
            producer_lag: i.producer_lag,
            trace_offered: i.trace_offered,
            commands: i.commands,
            runtime: i.runtime,
            recent_errors: i.recent_errors.clone(),
            custom_work: i.custom_work,
            service_sample: i.service_sample.clone(),
            nodes: i.nodes.clone(),
            remote_workers: i.node_workers,
            broker: i.broker.clone(),
            adapt: None,
            dist,
            run_dist,
            account,
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn measured(&self, totals: &Counters, gaps: &GapSums, end: Instant) -> Measured {
        if !self.measuring {
            return Measured::default();
        }
        let secs = end.saturating_duration_since(self.since).as_secs_f64();
        let w = &self.window;
        let jobs = totals.since(&self.base);
        let n = w.completed as f64;
        let service_cv = cv(n, w.service_ns as f64 / 1e9, w.service_sq);
        let holding_cv = cv(n, (w.service_ns + w.handoff_ns) as f64 / 1e9, w.held_sq);
        let g = if self.base_gaps.count == u64::MAX { GapSums::default() } else { self.base_gaps };
        let arrival_cv = cv((gaps.count - g.count.min(gaps.count)) as f64, gaps.sum - g.sum, gaps.sum_sq - g.sum_sq);
        Measured {
            duration_s: secs,
            jobs,
            offered_per_s: per_s(jobs.offered, secs),
            throughput_per_s: per_s(jobs.completed, secs),
            latency: Latency {
                response: Summary::of(&w.latency, w.latency_ns),
                wait: Summary::of(&w.wait, w.wait_ns),
                service: Summary::of(&w.service, w.service_ns),
            },
            latency_distribution: Distribution::of(&w.latency),
            queue_depth_mean: if secs > 0.0 { self.depth_area / secs } else { 0.0 },
            queue_depth_max: self.depth_max,
            queue_waiting_mean: if secs > 0.0 { self.waiting_area / secs } else { 0.0 },
            queue_parts_mean: self.parts_area.filter(|_| secs > 0.0).map(|p| p.scaled(1.0 / secs)),
            queued_ms_mean: if w.completed > 0 { w.queued_ns as f64 / n / 1e6 } else { 0.0 },
            held_ms_mean: if w.completed > 0 { w.prefetched_ns as f64 / n / 1e6 } else { 0.0 },
            utilisation: if self.worker_time > 0.0 { w.service_ns as f64 / 1e9 / self.worker_time } else { 0.0 },
            service_cv,
            arrival_cv,
            think_ms_mean: (self.think.count > 0).then(|| self.think.sum / self.think.count as f64 * 1e3),
            enqueue_cv: cv(self.enqueue_gaps.count as f64, self.enqueue_gaps.sum, self.enqueue_gaps.sum_sq),
            lag_us: Micros::of(&w.lag, w.lag_ns),
            handoff_us: Micros::of(&w.handoff, w.handoff_ns),
            holding_cv,
            runtime: self.runtime.mean(),
            failed_latency: Summary::of(&w.failed_latency, w.failed_latency_ns),
            set_rate_per_s: self.schedule.set_rate_per_s(),
            setting_changes: self.schedule.changes(),
            workers: self.schedule.workers(self.worker_time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::recorder::JobTimes;

    #[test]
    fn cv_of_known_samples() {
        // Samples 1, 3: mean 2, population sd 1.
        assert!((cv(2.0, 4.0, 10.0) - 0.5).abs() < 1e-12);
        assert!(cv(1.0, 1.0, 1.0).abs() < f64::EPSILON);
    }

    /// One 2 ms job that arrived and started `at` into the run.
    fn job(rec: &Recorders, t0: Instant, at: Duration) {
        rec.shard(0).start();
        let start = t0 + at;
        rec.shard(0).finish(
            JobTimes {
                intended: start,
                enqueued: start,
                ready: start,
                fetched: start,
                start,
                end: start + Duration::from_millis(2),
                asked: Duration::from_millis(2),
            },
            crate::metrics::recorder::Kind::Ok,
        );
    }

    fn inputs<'a>(rec: &'a Recorders, settings: &'a Settings, now: Instant, offered: u64) -> TickInputs<'a> {
        TickInputs {
            now,
            recorders: rec,
            offered,
            rejected: 0,
            dropped: 0,
            abandoned: 0,
            depth: DepthStats::default(),
            settings,
            paused: false,
            live_workers: 1,
            producer_lag: Duration::ZERO,
            trace_offered: 0,
            gaps: GapSums::default(),
            think: GapSums::default(),
            finished: false,
            commands: 0,
            runtime: RuntimeStats::default(),
            recent_errors: Vec::new(),
            custom_work: false,
            service_sample: None,
            nodes: Vec::new(),
            node_workers: 0,
            duplicates: 0,
            broker: None,
        }
    }

    #[test]
    fn warmup_is_left_out_and_reset_starts_afresh() {
        let t0 = Instant::now();
        let rec = Recorders::new(1);
        let mut agg = Aggregator::new(t0, Duration::from_secs(1), 1);
        let settings = Settings::default();
        let inputs = |now: Instant, offered: u64| inputs(&rec, &settings, now, offered);
        job(&rec, t0, Duration::from_millis(100));
        let s = agg.tick(&inputs(t0 + Duration::from_millis(500), 1));
        assert!(!s.measuring);
        assert_eq!(s.totals.completed, 1);
        assert!(s.dist.is_none() && s.run_dist.is_none(), "distributions only when asked for");
        job(&rec, t0, Duration::from_millis(600));
        let s = agg.tick(&inputs(t0 + Duration::from_secs(1), 2));
        assert!(s.measuring);
        assert_eq!(s.measured.jobs.completed, 0, "the warm-up's jobs are left out");
        job(&rec, t0, Duration::from_millis(1100));
        job(&rec, t0, Duration::from_millis(1200));
        let s = agg.tick(&inputs(t0 + Duration::from_secs(2), 4));
        assert_eq!(s.totals.completed, 4);
        assert_eq!(s.measured.jobs.completed, 2);
        assert!((s.measured.throughput_per_s - 2.0).abs() < 1e-9);
        assert!((s.measured.latency.service.mean - 2.0).abs() < 1e-9);
        agg.reset();
        let s = agg.tick(&inputs(t0 + Duration::from_secs(3), 4));
        assert_eq!(s.measured.jobs.completed, 0);
    }

    /// The run's distributions hold every job, the warm-up's and those of ticks a client never
    /// saw, and a reset of the measured window leaves them alone; the tick's hold the tick's.
    #[test]
    fn the_run_distributions_keep_every_tick() {
        let t0 = Instant::now();
        let rec = Recorders::new(1);
        let mut agg =
            Aggregator::new(t0, Duration::from_secs(1), 1).with_distributions(true).with_run_distributions(true);
        let settings = Settings::default();
        let mut last = None;
        for (n, ms) in [100u64, 600, 1100, 1200, 2100].into_iter().enumerate() {
            job(&rec, t0, Duration::from_millis(ms));
            if n == 3 {
                agg.reset();
            }
            let s = agg.tick(&inputs(&rec, &settings, t0 + Duration::from_millis(ms + 50), n as u64 + 1));
            assert_eq!(s.dist.as_ref().map(|d| d.response.count()), Some(1), "a tick's own job");
            last = Some(s);
        }
        let run = last.and_then(|s| s.run_dist).expect("asked for");
        assert_eq!((run.response.count(), run.wait.count(), run.service.count()), (5, 5, 5));
        assert_eq!(run.service.sum_ns, 5 * 2_000_000, "five 2 ms services");
    }
}
