//! What the engine measures and publishes.
//!
//! - [`account`]: every job's instants, kept (bounded), and replayed through the model's exact
//!   pool to split the measured mean response into what the ideal pool, the producer's
//!   lateness, the services' inflation and the pool's own overhead each add.
//! - [`recorder`]: the hot path's sharded per-job recording (no allocation, no waiting).
//! - [`hist`]: HDR histograms in microseconds and the [`Summary`] of percentiles.
//! - [`aggregate`]: the per-tick merge that turns shards and counters into a [`Snapshot`].
//! - `node` (feature `broker`): a worker node's per-tick report, as it travels to the controller.
//! - `waiting`: where the jobs wait ([`QueueView`], [`QueueParts`]) and where a response's time
//!   goes ([`ResponseSplit`]).
//! - [`schedule`]: what the settings asked for over the measured window (the mean set rate,
//!   the changes).
//!
//! A [`Snapshot`] is the only thing clients (dashboard, headless printer, recorder) read. It is
//! small and owns no histogram, so publishing one per tick on a `watch` channel costs nothing
//! that grows with the run. No tokio, no UI.

pub mod account;
pub mod aggregate;
pub mod hist;
#[cfg(feature = "broker")]
pub mod node;
pub mod recorder;
pub mod schedule;
pub mod sparse;
mod waiting;

use std::time::Duration;

use serde::Serialize;

pub use hist::{Distribution, Micros, Quantile, Summary};
pub use waiting::{QueueParts, QueueView, ResponseSplit};

use crate::settings::Settings;

/// Job counts. `offered = completed + failed + rejected + dropped + abandoned + in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub offered: u64,
    pub started: u64,
    pub completed: u64,
    /// Jobs that did not succeed: errors, timeouts and panics together.
    pub failed: u64,
    /// Of the failed: cancelled by the timeout.
    pub timed_out: u64,
    /// Of the failed: panicked (caught; the worker carried on).
    pub panicked: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub abandoned: u64,
}

impl Counters {
    /// `self − base`, field by field (saturating).
    #[must_use]
    pub fn since(&self, base: &Counters) -> Counters {
        Counters {
            offered: self.offered.saturating_sub(base.offered),
            started: self.started.saturating_sub(base.started),
            completed: self.completed.saturating_sub(base.completed),
            failed: self.failed.saturating_sub(base.failed),
            timed_out: self.timed_out.saturating_sub(base.timed_out),
            panicked: self.panicked.saturating_sub(base.panicked),
            rejected: self.rejected.saturating_sub(base.rejected),
            dropped: self.dropped.saturating_sub(base.dropped),
            abandoned: self.abandoned.saturating_sub(base.abandoned),
        }
    }

    /// Jobs offered and not yet accounted for (queued or in service).
    #[must_use]
    pub fn in_system(&self) -> u64 {
        self.offered.saturating_sub(self.completed + self.failed + self.rejected + self.dropped + self.abandoned)
    }
}

/// Per-second rates over one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    pub offered: f64,
    pub started: f64,
    pub completed: f64,
    pub failed: f64,
    pub rejected: f64,
    pub dropped: f64,
}

/// Response time (latency), wait and service, each measured from the job's instants:
/// latency = end − intended arrival, wait = start − intended arrival, service = end − start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    #[serde(rename = "latency_ms")]
    pub response: Summary,
    #[serde(rename = "wait_ms")]
    pub wait: Summary,
    #[serde(rename = "service_ms")]
    pub service: Summary,
}

/// A worker node of a broker run, as the controller last heard of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeView {
    pub name: String,
    pub workers: usize,
    pub busy: u64,
    pub completed: u64,
    pub failed: u64,
    /// Jobs this node was delivered a second time or more.
    pub redelivered: u64,
    /// Silent for 3 ticks or more.
    pub lost: bool,
    /// The node has said it is done.
    pub finished: bool,
    /// The node's wall clock minus the controller's, and the estimate's uncertainty.
    pub clock_offset_ms: f64,
    pub clock_uncertainty_ms: f64,
    /// Since the node's last report.
    pub last_heard_ms: f64,
    /// Over the whole run on this node.
    pub latency_ms: Summary,
    pub service_ms: Summary,
}

/// The broker under a run: where it is and what it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokerView {
    /// Which broker: `nats`, … (the adapter's name).
    pub kind: String,
    /// What the broker calls the place that holds the run's jobs (`stream`, `queue`), for labels.
    #[serde(skip)]
    pub holder: String,
    /// What the bound counts (`bound`, RabbitMQ's `ready bound`), for labels.
    #[serde(skip)]
    pub bound_label: String,
    /// The URL, its password or token shown as `***`.
    pub url: String,
    /// The run's queue (NATS: its stream) and its consumer (group) on the broker.
    pub stream: String,
    pub consumer: String,
    /// Deliveries after the first (a node lost, or `ack_wait` passed).
    pub redelivered: u64,
    /// Jobs finished twice (counted once in the totals).
    pub duplicates: u64,
    /// Publishes refused by a full stream and tried again (`block`).
    pub publish_retries: u64,
    /// The consumer's `max_ack_pending`, and the most jobs held unacknowledged at a sample.
    pub ack_pending_cap: u64,
    pub ack_pending_max: u64,
    /// Publish → delivered to a worker process, over the run.
    pub time_in_broker_ms: Summary,
    /// Publishes that failed for another reason than a full stream (the broker away, say):
    /// refused under `reject` and `drop-oldest`, retried under `block`.
    pub publish_errors: u64,
    #[serde(flatten)]
    pub link: LinkView,
    /// Jobs the broker lost: the stream went with its server (memory storage) while it held
    /// them. Counted at the end, and folded into `abandoned`.
    pub lost_in_broker: u64,
    /// Jobs no count could place at the end (folded into `abandoned`): 0 unless a job was lost.
    pub unaccounted: u64,
    /// The bound the broker holds the run's queue to, where it could not follow a change of the
    /// `queue` knob (RabbitMQ fixes `x-max-length` when the queue is declared); absent when the
    /// broker's bound is the knob's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_held: Option<u64>,
    /// The broker's own counts, by name (each adapter's doc and the README say what they are),
    /// beside the fields above in the JSON.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, u64>,
}

impl Default for BrokerView {
    fn default() -> BrokerView {
        BrokerView {
            kind: "nats".into(),
            holder: "stream".into(),
            bound_label: "bound".into(),
            url: String::new(),
            stream: String::new(),
            consumer: String::new(),
            redelivered: 0,
            duplicates: 0,
            publish_retries: 0,
            ack_pending_cap: 0,
            ack_pending_max: 0,
            time_in_broker_ms: Summary::default(),
            publish_errors: 0,
            link: LinkView::default(),
            lost_in_broker: 0,
            unaccounted: 0,
            bound_held: None,
            extra: std::collections::BTreeMap::new(),
        }
    }
}

/// A process's connection to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkView {
    pub connected: bool,
    /// Times the connection was lost (the client reconnects by itself).
    pub disconnects: u64,
    /// How long the connection has been down, or the last outage lasted.
    pub outage_ms: f64,
    /// Times the controller found the run's stream gone and made it again.
    pub streams_lost: u64,
}

impl Default for LinkView {
    fn default() -> LinkView {
        LinkView { connected: true, disconnects: 0, outage_ms: 0.0, streams_lost: 0 }
    }
}

impl LinkView {
    /// What changed since `before`, in a sentence for the status line, if anything did.
    #[must_use]
    pub fn news(&self, before: &LinkView, url: &str) -> Option<String> {
        if before.connected && !self.connected {
            return Some(format!("lost the broker at {url}; reconnecting"));
        }
        let mut text = (!before.connected && self.connected)
            .then(|| format!("reconnected to the broker at {url} after {:.1} s", self.outage_ms / 1e3));
        if self.streams_lost > before.streams_lost {
            let lost = "the run's stream was gone (the server keeps it in memory) and is made again; \
                        the jobs it held are counted lost_in_broker at the end";
            text = Some(text.map_or_else(|| lost.to_string(), |t| format!("{t}; {lost}")));
        }
        text
    }
}

/// Statistics since the warm-up ended or the operator last reset them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Measured {
    pub duration_s: f64,
    pub jobs: Counters,
    pub offered_per_s: f64,
    pub throughput_per_s: f64,
    #[serde(flatten)]
    pub latency: Latency,
    /// The response time's percentile distribution (HdrHistogram's percentile plot).
    #[serde(rename = "latency_distribution_ms")]
    pub latency_distribution: Distribution,
    /// The time-weighted mean and the maximum of the depth that `queue` bounds (see
    /// [`QueueView`]: over a broker, the jobs the stream holds).
    pub queue_depth_mean: f64,
    pub queue_depth_max: usize,
    /// The mean number of jobs waiting for a worker, wherever they wait: the queue length of
    /// Little's law and of the model. The in-process queue: `queue_depth_mean`. A broker: the
    /// outbox, the stream's undelivered jobs and the jobs pulled ahead (`queue_parts_mean`).
    pub queue_waiting_mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_parts_mean: Option<QueueParts>,
    /// Mean time spent in the queue itself (start − enqueue), for Little's law on the queue.
    pub queued_ms_mean: f64,
    /// A broker run: the mean time a job was held at the worker process that pulled it, before
    /// a worker there took it (start − pull, one machine's clock): `prefetch`'s part of the wait.
    /// 0 on the in-process queue.
    pub held_ms_mean: f64,
    /// Busy worker time over available worker time.
    pub utilisation: f64,
    /// Coefficient of variation of measured service times.
    pub service_cv: f64,
    /// Coefficient of variation of the inter-arrival times the producer scheduled.
    pub arrival_cv: f64,
    /// Coefficient of variation of the gaps between enqueues: the arrivals as the queue saw
    /// them, which a producer woken late makes burstier than its schedule.
    pub enqueue_cv: f64,
    /// Closed loop: the mean think time clients really spent (`None` without a closed loop).
    pub think_ms_mean: Option<f64>,
    /// How late jobs entered the queue (enqueued − intended): the producer's wake-up.
    pub lag_us: Micros,
    /// How long a job and a free worker both existed before the worker took it: waking the
    /// worker, scheduling it, the pop. An ideal queue has none; the engine reports it apart.
    pub handoff_us: Micros,
    /// Coefficient of variation of the time a job held its worker, hand-off included (ready to
    /// end): the service time the queue's servers really gave, for a model fed the engine's own
    /// overheads.
    pub holding_cv: f64,
    /// The runtime over the window: means of the per-tick figures (`park_count`, `polls` and
    /// `steals` are totals).
    pub runtime: RuntimeStats,
    /// Latency of the jobs that failed (error, timeout, panic), apart from the successes'.
    #[serde(rename = "failed_latency_ms")]
    pub failed_latency: Summary,
    /// The set arrival rate averaged over the window's time (`None`: `max`, closed or batch
    /// arrivals at some point): what `offered_per_s` is to be compared with when the rate ramps.
    pub set_rate_per_s: Option<f64>,
    /// Ticks in the window at which a knob changed: the model describes settings held still.
    pub setting_changes: u64,
    /// The worker count over the window (what an adaptive controller spent).
    pub workers: WorkerUse,
}

/// The worker count over a measured window. Worker-seconds count the controller's and the
/// nodes' workers; the least, most and changes are the controller's own count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WorkerUse {
    pub min: usize,
    pub max: usize,
    /// Worker-seconds over the window's seconds.
    pub mean: f64,
    /// Ticks at which the count changed.
    pub changes: u64,
    pub worker_seconds: f64,
}

/// The workload runtime over one tick, from tokio-metrics: a `RuntimeMonitor` over the runtime
/// and a `TaskMonitor` over the worker tasks. The `Option` fields need `--cfg tokio_unstable`
/// (set in `.cargo/config.toml`) and are `None` without it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RuntimeStats {
    /// Runtime worker threads.
    pub workers: usize,
    /// Share of the threads' time spent polling tasks (1.0: every thread always busy).
    pub busy_ratio: f64,
    /// Tasks waiting in the runtime's global (injection) queue.
    pub global_queue_depth: usize,
    pub live_tasks: usize,
    /// Times the threads parked (went idle) this tick.
    pub park_count: u64,
    /// Worker tasks: mean time from being woken to being polled.
    pub mean_scheduled_delay_us: f64,
    /// Worker tasks: mean duration of a poll.
    pub mean_poll_us: f64,
    /// Worker tasks: share of polls slower than 50 µs (tokio-metrics' threshold).
    pub slow_poll_ratio: f64,
    /// Worker tasks: polls completed (a poll that outlasts the tick completes in a later one).
    pub task_polls: u64,
    pub polls: Option<u64>,
    pub steals: Option<u64>,
    pub local_queue_depth: Option<usize>,
    pub blocking_queue_depth: Option<usize>,
    pub blocking_threads: Option<usize>,
    /// Runtime-wide mean poll duration (all tasks).
    pub runtime_mean_poll_us: Option<f64>,
}

/// Everything a client needs for one tick; published latest-wins. (Its flags are independent
/// facts a client reads one by one, not a state machine.)
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub tick: u64,
    pub elapsed: Duration,
    pub tick_len: Duration,
    pub settings: Settings,
    pub paused: bool,
    /// The warm-up is over: `measured` holds real statistics.
    pub measuring: bool,
    /// The last snapshot of a run.
    pub finished: bool,
    /// Whole-run counts (warm-up included), so every job is accounted for.
    pub totals: Counters,
    pub rates: Rates,
    pub queue: QueueView,
    /// Jobs admitted and not finished (queued plus in service).
    pub in_flight: u64,
    pub busy_workers: u64,
    /// Worker tasks alive, including ones finishing their last job after a shrink.
    pub live_workers: usize,
    pub utilisation: f64,
    /// This tick's latency, wait and service.
    pub latency: Latency,
    pub measured: Measured,
    /// How far the producer is behind its arrival schedule (backpressure under `block`).
    pub producer_lag: Duration,
    /// A replayed trace's arrivals offered so far, counted across its passes (0 without one):
    /// which of them the measured window holds, for the trace's simulation.
    pub trace_offered: u64,
    /// Commands the engine has taken so far (applied or refused), so a client that sent N knows
    /// when `settings` reflects all of them.
    pub commands: u64,
    /// The workload runtime itself this tick.
    pub runtime: RuntimeStats,
    /// The latest failure messages (errors, timeouts, panics), newest last.
    pub recent_errors: Vec<String>,
    /// The workers run your own job, not the synthetic service.
    pub custom_work: bool,
    /// The sample `service_dist = empirical` draws from (`--service-sample FILE`), the run's own
    /// (shared, never copied), so every client shows and models the sample the run draws from.
    pub service_sample: Option<std::sync::Arc<crate::model::sample::ServiceSample>>,
    /// This tick's distributions in full, for clients that keep trailing windows; only when the
    /// run asked for them ([`crate::engine::RunOptions::distributions`]).
    #[serde(skip)]
    pub dist: Option<std::sync::Arc<sparse::TickDist>>,
    /// The whole run's distributions so far (warm-up included, never reset, as [`Self::totals`]),
    /// for clients that export cumulative histograms; only when the run asked for them
    /// ([`crate::engine::RunOptions::run_distributions`]).
    #[serde(skip)]
    pub run_dist: Option<std::sync::Arc<sparse::TickDist>>,
    /// A broker run's worker nodes (the controller's own workers are not among them), and
    /// their workers, summed over the nodes neither lost nor finished.
    pub nodes: Vec<NodeView>,
    pub remote_workers: usize,
    /// The broker, on a broker run.
    pub broker: Option<BrokerView>,
    /// The adaptive controller, when one sets the worker count.
    pub adapt: Option<crate::adapt::AdaptView>,
    /// The measured window's jobs replayed through the ideal pool ([`account`]): `None` before
    /// the window has a job, on a broker run, or when the run keeps no jobs.
    pub account: Option<account::Replay>,
}

impl Snapshot {
    /// A snapshot before the first tick.
    #[must_use]
    pub fn initial(settings: Settings) -> Snapshot {
        Snapshot {
            tick: 0,
            elapsed: Duration::ZERO,
            tick_len: Duration::ZERO,
            queue: QueueView { bound: settings.queue, ..QueueView::default() },
            settings,
            paused: false,
            measuring: false,
            finished: false,
            totals: Counters::default(),
            rates: Rates::default(),
            in_flight: 0,
            busy_workers: 0,
            live_workers: 0,
            utilisation: 0.0,
            latency: Latency::default(),
            measured: Measured::default(),
            producer_lag: Duration::ZERO,
            trace_offered: 0,
            commands: 0,
            runtime: RuntimeStats::default(),
            recent_errors: Vec::new(),
            custom_work: false,
            service_sample: None,
            dist: None,
            run_dist: None,
            nodes: Vec::new(),
            remote_workers: 0,
            broker: None,
            adapt: None,
            account: None,
        }
    }
}
