//! The control thread: applies commands, owns the worker set, ticks the aggregator, publishes
//! snapshots and runs the graceful shutdown.
//!
//! It runs on a current-thread runtime of its own, so ticks and commands keep flowing when the
//! workload's runtime is saturated or blocked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::{self, Handle};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::adaptive::{Adaptive, Replayed};
use super::backend::{Queue, Update};
use super::inputs;
use super::introspect::Introspect;
use super::producer::{self, ProducerCfg};
use super::queue::JobQueue;
use super::service::kind_code;
use super::spawn::spawn_named;
use super::timer::Timer;
use super::{Command, EngineError, GapCounters, QueueChoice, RunOptions, Shared, worker};
use crate::metrics::Snapshot;
use crate::metrics::aggregate::Aggregator;
use crate::metrics::recorder::Recorders;
use crate::settings::{Knob, Settings, SettingsError};

/// Shards per runtime thread: enough that workers on different threads rarely share one.
const SHARDS_PER_THREAD: usize = 4;

#[cfg_attr(not(feature = "broker"), allow(clippy::needless_pass_by_value))]
pub fn run_thread(
    settings: Settings,
    opts: RunOptions,
    supplied: super::Supplied,
    queue: QueueChoice,
    commands: mpsc::Receiver<Command>,
    snapshots: &watch::Sender<Snapshot>,
    ready: &std::sync::mpsc::Sender<Result<(), EngineError>>,
) {
    let built = runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .thread_name("pooltune-worker")
        .enable_all()
        .build()
        .and_then(|w| runtime::Builder::new_current_thread().enable_all().build().map(|c| (w, c)));
    let (workload, control) = match built {
        Ok(rts) => rts,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Start(e.to_string())));
            return;
        }
    };
    // A broker is connected to and set up on the workload runtime (its client's tasks live
    // there), before the run's clock starts.
    let queue = match queue {
        QueueChoice::InProcess => Queue::Local(JobQueue::new(settings.queue, settings.policy)),
        #[cfg(feature = "broker")]
        QueueChoice::Broker(spec) => {
            match workload.block_on(super::broker::BrokerQueue::connect(&spec, &settings, Instant::now())) {
                Ok(b) => Queue::Broker(Box::new(b)),
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    workload.shutdown_background();
                    return;
                }
            }
        }
        #[cfg(feature = "broker")]
        QueueChoice::Node { spec, name } => {
            match workload.block_on(super::broker::BrokerQueue::join(&spec, &name, &settings)) {
                Ok(b) => Queue::Broker(Box::new(b)),
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    workload.shutdown_background();
                    return;
                }
            }
        }
    };
    let _ = ready.send(Ok(()));
    let controller = Controller::new(settings, opts, workload.handle().clone(), supplied, queue);
    control.block_on(controller.run(commands, snapshots));
    // Threads stuck in blocking service are not waited for: their jobs are already abandoned.
    workload.shutdown_background();
}

struct Controller {
    shared: Arc<Shared>,
    settings: Settings,
    opts: RunOptions,
    handle: Handle,
    /// One retirement flag per active worker; index = worker id.
    workers: Vec<Arc<AtomicBool>>,
    tracker: TaskTracker,
    producer: watch::Sender<ProducerCfg>,
    producer_stop: CancellationToken,
    paused: bool,
    agg: Aggregator,
    /// Commands taken so far, applied or refused (published in every snapshot).
    commands: u64,
    introspect: Introspect,
    /// A worker node's latest report on its way.
    last_report: Option<tokio::task::JoinHandle<()>>,
    adaptive: Adaptive,
}

impl Controller {
    fn new(settings: Settings, opts: RunOptions, handle: Handle, supplied: super::Supplied, queue: Queue) -> Self {
        let super::Supplied { work, arrivals, service_sample } = supplied;
        let shards = (settings.threads * SHARDS_PER_THREAD).clamp(1, 256);
        // Everything slow to build (histograms, the timer thread, runtime introspection) is
        // built before the run's clock starts: the producer owes arrivals from that instant.
        let (recorders, timer) = (Recorders::new(shards), Timer::start());
        // Each job's instants are kept for the run's account (bounded: `metrics::account`);
        // over a broker the jobs run on other machines' clocks and are not replayed.
        recorders.keep_jobs(!queue.is_broker());
        let introspect = Introspect::new(&handle);
        let agg = Aggregator::new(Instant::now(), opts.warmup, shards)
            .with_distributions(opts.distributions)
            .with_run_distributions(opts.run_distributions);
        let start = Instant::now();
        let shared = Arc::new(Shared {
            queue,
            recorders,
            timer,
            start,
            end: opts.duration.map(|d| start + d),
            offered: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            work,
            timeout_ns: AtomicU64::new(timeout_ns(settings.timeout)),
            errors: std::sync::Mutex::new(std::collections::VecDeque::new()),
            rejected: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            pending_intended: AtomicU64::new(u64::MAX),
            gaps: GapCounters::default(),
            think_ns: AtomicU64::new(0),
            thinks: AtomicU64::new(0),
            service_kind: AtomicU8::new(kind_code(settings.service_kind)),
            downstream: super::downstream::Downstream::new(&settings),
            arrivals,
            service_sample,
            arrivals_done: std::sync::atomic::AtomicBool::new(false),
            trace_offered: AtomicU64::new(0),
        });
        let (producer, _) = watch::channel(ProducerCfg { settings: settings.clone(), paused: false });
        Self {
            agg: agg.starting(start),
            shared,
            settings,
            opts,
            workers: Vec::new(),
            tracker: TaskTracker::new(),
            producer,
            producer_stop: CancellationToken::new(),
            paused: false,
            commands: 0,
            introspect,
            handle,
            last_report: None,
            adaptive: Adaptive::new(),
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, out: &watch::Sender<Snapshot>) {
        let start = self.shared.start;
        // A broker's worker node serves the controller's arrivals and makes none.
        let produces = self.shared.queue.produces();
        if !produces {
            self.shared.recorders.tap();
        }
        // The pool exists before the first arrival: a job queued before its worker existed would
        // wait for the worker's creation, a time neither its lag nor its hand-off records.
        self.set_workers(self.settings.workers);
        let make = || {
            let (shared, cfg, stop) = (Arc::clone(&self.shared), self.producer.subscribe(), self.producer_stop.clone());
            async move {
                if produces {
                    producer::run(shared, cfg, stop).await;
                }
            }
        };
        #[cfg(all(tokio_unstable, feature = "console"))]
        let producer = match tokio::task::Builder::new().name("producer").spawn_on(make(), &self.handle) {
            Ok(h) => h,
            Err(_) => self.handle.spawn(make()),
        };
        #[cfg(not(all(tokio_unstable, feature = "console")))]
        let producer = self.handle.spawn(make());
        // A broker run's nodes wait for this word before they serve.
        self.shared.queue.publish_control(&self.handle, &self.settings, false);
        let end = self.shared.end;
        // Ticks and the end on the engine's own timer: tokio's rounds up to the next
        // millisecond, which ran every timed run a millisecond or two long.
        let timer = self.shared.timer.clone();
        let mut next_tick = start + self.opts.interval;
        // An extra tick where the warm-up ends, so the measured window starts exactly there.
        let mut warm_end = (!self.opts.warmup.is_zero()).then(|| start + self.opts.warmup);
        loop {
            let at = [end, warm_end].into_iter().flatten().fold(next_tick, Instant::min);
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.apply(cmd),
                },
                () = timer.sleep_until_strict(at) => {
                    if end.is_some_and(|e| at >= e) {
                        break;
                    }
                    match self.shared.queue.control_update() {
                        Some(Update::End) => break,
                        Some(Update::Knobs(knobs)) => self.follow(knobs),
                        None => {}
                    }
                    let snap = self.tick(false);
                    // A job limit reached, or a trace's last arrival offered in a run without a
                    // duration: the run ends once what was offered is served.
                    let traced = end.is_none() && self.shared.arrivals_done.load(Ordering::Relaxed);
                    let done = (self.settings.jobs.is_some_and(|n| snap.totals.offered >= n) || traced)
                        && snap.totals.in_system() == 0;
                    out.send_replace(snap);
                    if done {
                        break;
                    }
                    if warm_end.is_some_and(|w| at >= w) {
                        warm_end = None;
                    }
                    if at < next_tick {
                        continue;
                    }
                    next_tick += self.opts.interval;
                    let now = Instant::now();
                    if next_tick <= now {
                        // The control thread was starved: skip missed ticks rather than burst.
                        next_tick = now + self.opts.interval;
                    }
                }
            }
        }
        out.send_replace(self.shutdown(producer).await);
    }

    fn apply(&mut self, cmd: Command) {
        self.commands += 1;
        match cmd {
            Command::Set(knob) => self.set(knob, self.opts.reset_on_change),
            Command::Pause => {
                self.paused = true;
                self.update_producer();
            }
            Command::Resume => {
                self.paused = false;
                self.update_producer();
            }
            Command::ResetStats => self.agg.reset(),
            Command::SetNodeWorkers { node, workers } => match Knob::Workers(workers).check() {
                Ok(()) => self.shared.queue.set_node_workers(&node, workers),
                Err(e) => tracing::warn!("refused workers {workers} for node {node}: {e}"),
            },
            Command::Shutdown => {}
        }
    }

    /// Sets one knob, for a command or for the adaptive controller (whose changes do not start
    /// the statistics afresh: they are the run being measured).
    fn set(&mut self, knob: Knob, reset: bool) {
        match knob.live().map_err(SettingsError::from).and_then(|k| self.settings.with(k)) {
            Ok(s) if self.shared.queue.is_broker() && s.arrival == crate::settings::ArrivalKind::Closed => {
                tracing::warn!("refused {} {}: a closed loop over a broker", knob.name(), knob.value_text());
            }
            Ok(s) => {
                self.settings = s;
                if reset {
                    self.agg.reset();
                }
                match knob {
                    Knob::Workers(n) => {
                        self.set_workers(n);
                        if self.shared.queue.produces() {
                            self.shared.queue.set_all_workers(n);
                        }
                    }
                    Knob::Queue(_) | Knob::Policy(_) | Knob::Prefetch(_) | Knob::AckWait(_) => {
                        self.shared.queue.configure(&self.settings);
                    }
                    Knob::ServiceKind(k) => self.shared.service_kind.store(kind_code(k), Ordering::Relaxed),
                    Knob::Contention(_) | Knob::Coherency(_) | Knob::Capacity(_) => {
                        self.shared.downstream.configure(&self.settings);
                    }
                    Knob::Timeout(t) => self.shared.timeout_ns.store(timeout_ns(t), Ordering::Relaxed),
                    _ => {}
                }
                self.update_producer();
            }
            Err(e) => tracing::warn!("refused {} {}: {e}", knob.name(), knob.value_text()),
        }
    }

    fn update_producer(&self) {
        self.producer.send_replace(ProducerCfg { settings: self.settings.clone(), paused: self.paused });
    }

    fn set_workers(&mut self, n: usize) {
        self.shared.queue.set_local_workers(n);
        while self.workers.len() < n {
            let retire = Arc::new(AtomicBool::new(false));
            let id = self.workers.len();
            let task = self.introspect.tasks.instrument(worker::run(id, Arc::clone(&self.shared), Arc::clone(&retire)));
            spawn_named(&self.tracker, &self.handle, &format!("worker-{id}"), task);
            self.workers.push(retire);
        }
        if self.workers.len() > n {
            for w in self.workers.drain(n..) {
                w.store(true, Ordering::Release);
            }
            self.shared.queue.wake_consumers();
        }
    }

    fn tick(&mut self, finished: bool) -> Snapshot {
        let sh = Arc::clone(&self.shared);
        // A node takes its receipts before the records are drained: see `Queue::take_pending`.
        let pending = sh.queue.take_pending();
        let mut inputs = inputs::inputs(&sh, &self.settings, self.paused, self.tracker.len(), finished, self.commands);
        inputs.runtime = self.introspect.sample();
        sh.queue.absorb(&mut inputs, self.opts.interval);
        let mut snap = self.agg.tick(&inputs);
        // A worker node follows the controller's count; only the controller adapts it.
        if sh.queue.produces()
            && !finished
            && let Some(n) = self
                .adaptive
                .on_tick(&snap, Replayed { arrivals: sh.arrivals.as_ref(), sample: sh.service_sample.as_ref() })
        {
            self.set(Knob::Workers(n), false);
        }
        snap.adapt = self.adaptive.view();
        let stats = sh.recorders.take_tap();
        self.last_report =
            sh.queue.report(&self.handle, stats, pending, self.tracker.len(), sh.recorders.busy(), finished);
        sh.queue.publish_control(&self.handle, &self.settings, false);
        snap
    }

    /// A worker node follows the controller's knobs (its own `threads` and `seed` stay).
    fn follow(&mut self, knobs: Vec<Knob>) {
        for k in knobs {
            if self.settings.with(k).is_ok_and(|s| s != self.settings) {
                self.apply(Command::Set(k));
            }
        }
    }

    /// Arrivals stop; what is queued is abandoned; jobs in service get the grace time; anything
    /// still unaccounted for after that is abandoned too, so the final counts always add up.
    async fn shutdown(mut self, producer: tokio::task::JoinHandle<()>) -> Snapshot {
        let sh = Arc::clone(&self.shared);
        self.agg.freeze(&inputs::inputs(&sh, &self.settings, self.paused, self.tracker.len(), false, self.commands));
        self.producer_stop.cancel();
        let grace = self.opts.grace;
        let _ = tokio::time::timeout(grace, producer).await;
        let closed = self.shared.queue.close(&self.handle, &self.settings, self.opts.interval, grace).await;
        let abandoned = closed.left.len() as u64 + closed.left_in_broker;
        self.shared.abandoned.fetch_add(abandoned, Ordering::Relaxed);
        for job in &closed.left {
            job.release();
        }
        self.set_workers(0);
        self.tracker.close();
        let _ = tokio::time::timeout(grace, self.tracker.wait()).await;
        let held = self.shared.queue.finish().await;
        self.shared.abandoned.fetch_add(held, Ordering::Relaxed);
        let mut last = self.tick(true);
        // A node's last report (and the acknowledgements after it) must leave before the runtime
        // that sends it stops.
        if let Some(sent) = self.last_report.take() {
            let _ = tokio::time::timeout(grace, sent).await;
        }
        let unaccounted = last.totals.in_system();
        last.totals.abandoned += unaccounted;
        // Over a broker every job is accounted for by a count of its own; what is not is shown:
        // after the run's stream went with its server, as the jobs the broker lost.
        if let Some(b) = last.broker.as_mut() {
            if b.link.streams_lost > 0 {
                b.lost_in_broker = unaccounted;
            } else {
                b.unaccounted = unaccounted;
            }
        }
        last.in_flight = 0;
        last
    }
}

fn timeout_ns(t: Option<Duration>) -> u64 {
    t.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1))
}
