//! The workload engine: a producer, one bounded queue and a pool of workers on a multi-thread
//! tokio runtime of their own, changed through typed [`Command`]s and observed through
//! [`Snapshot`]s.
//!
//! ```text
//!            Command (bounded mpsc)                      Snapshot (watch, latest wins)
//! client ───────────────────────────▶ control thread ─────────────────────────────▶ clients
//!                                    (current-thread rt:
//!                                     commands, ticks, merge)
//!                                          │ spawns, cancels, reads atomics
//!                                          ▼
//!                        workload runtime (multi-thread, `threads` threads)
//!                        producer ─▶ JobQueue ─▶ worker-0 … worker-N ─▶ shard recorders
//! ```
//!
//! The control thread never runs workload code and the workload never waits on a client, so a
//! job that blocks every runtime thread still gets its ticks published and its commands applied.
//! Clients (dashboard, headless runner, recorder) name only [`Command`], [`Knob`] and
//! [`Snapshot`]; the queue and the pool stay private to this module.

mod adaptive;
mod backend;
#[cfg(feature = "broker")]
pub mod broker;
mod control;
mod downstream;
mod inputs;
mod introspect;
mod producer;
mod queue;
pub mod replay;
mod service;
mod spawn;
mod supplied;
pub mod timer;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::{mpsc, watch};

use crate::metrics::Snapshot;
use crate::metrics::aggregate::GapSums;
use crate::metrics::recorder::Recorders;
use crate::settings::{Knob, Settings, SettingsError};
use backend::Queue;
use queue::Pushed;
pub use supplied::Supplied;
use supplied::{Has, check};
use timer::Timer;

/// A change to a running engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Set one knob (workers, queue bound, policy, rate, service, arrival, ...).
    Set(Knob),
    /// Stop arrivals; queued and in-flight jobs carry on.
    Pause,
    Resume,
    /// Start the measured statistics afresh.
    ResetStats,
    /// A broker run: set one worker node's workers (`:workers NODE N`), over the count every
    /// node takes from `Set(Workers)`.
    SetNodeWorkers {
        node: String,
        workers: usize,
    },
    /// Graceful end: arrivals stop, queued jobs are abandoned, in-flight jobs get the grace time.
    Shutdown,
}

/// Why the engine refused something.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    /// Settings, or a knob change, that the settings layer refuses.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Run options the engine refuses (interval, duration, warm-up).
    #[error("{0}")]
    Invalid(String),
    #[error("the engine is busy applying earlier commands; try again")]
    Busy,
    #[error("the engine has stopped")]
    Stopped,
    #[error("could not start the workload runtime: {0}")]
    Start(String),
    /// The engine's own thread panicked: a bug, reported rather than hidden behind a summary.
    #[error("the engine thread panicked: {0}")]
    Panicked(String),
    /// The broker could not be reached or set up.
    #[cfg(feature = "broker")]
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
}

/// Where the run's queue lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum QueueChoice {
    /// In this process (the default).
    #[default]
    InProcess,
    /// A NATS JetStream stream; this process publishes the arrivals and hosts the `workers`.
    #[cfg(feature = "broker")]
    Broker(broker::BrokerSpec),
    /// A worker node of a broker run: this process serves the run's jobs with its `workers`
    /// and reports to the run's controller; it makes no arrivals.
    #[cfg(feature = "broker")]
    Node {
        spec: broker::BrokerSpec,
        /// This node's name in the controller's table.
        name: String,
    },
}

/// The shortest snapshot period.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest snapshot period.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The longest run or warm-up: a year (longer ones are a typo, and past the clock's range).
pub const MAX_RUN: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a run is timed, fixed for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// End the run after this long (`None`: run until shut down).
    pub duration: Option<Duration>,
    /// Statistics leave out this first stretch.
    pub warmup: Duration,
    /// Snapshot period.
    pub interval: Duration,
    /// How long in-flight jobs get to finish at shutdown.
    pub grace: Duration,
    /// Start the measured statistics afresh at every knob change, so they describe the settings
    /// now running (the dashboard's choice; a headless summary covers the whole run).
    pub reset_on_change: bool,
    /// Publish each tick's distributions in full ([`crate::metrics::Snapshot::dist`]), for a
    /// client that keeps trailing windows of them (the dashboard).
    pub distributions: bool,
    /// Publish the whole run's distributions so far ([`crate::metrics::Snapshot::run_dist`]),
    /// for a client that exports cumulative histograms (the Prometheus exporter).
    pub run_distributions: bool,
}

/// Checks a snapshot period (`label` names it: `--interval`, a profile's `tick`).
///
/// # Errors
/// The period refused, and the range accepted.
pub fn check_interval(label: &str, d: Duration) -> Result<(), String> {
    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        Ok(())
    } else {
        Err(format!(
            "{label} {} is not accepted; expected {} to {}s",
            crate::duration::format(d),
            crate::duration::format(MIN_INTERVAL),
            MAX_INTERVAL.as_secs()
        ))
    }
}

impl RunOptions {
    /// Checks the timing on its own: the interval and the run and warm-up lengths.
    ///
    /// # Errors
    /// The value refused and what is accepted.
    pub fn validate(&self) -> Result<(), String> {
        let fmt = crate::duration::format;
        check_interval("interval", self.interval)?;
        for (what, d) in [("duration", self.duration), ("warmup", Some(self.warmup))] {
            if let Some(d) = d.filter(|d| *d > MAX_RUN) {
                return Err(format!("{what} {} is not accepted; expected at most 365d (a year)", fmt(d)));
            }
        }
        Ok(())
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            duration: None,
            warmup: Duration::ZERO,
            interval: Duration::from_millis(250),
            grace: Duration::from_secs(1),
            reset_on_change: false,
            distributions: false,
            run_distributions: false,
        }
    }
}

/// Refuses what a queue cannot do: over a broker, a closed loop's clients would have to hear
/// of each job's end from wherever it ran, which nodes do not report yet.
#[cfg_attr(not(feature = "broker"), allow(unused_variables, clippy::unnecessary_wraps))]
pub(crate) fn check_queue_choice(queue: &QueueChoice, s: &Settings) -> Result<(), EngineError> {
    match queue {
        QueueChoice::InProcess => Ok(()),
        #[cfg(feature = "broker")]
        QueueChoice::Broker(_) if s.arrival == crate::settings::ArrivalKind::Closed => Err(EngineError::Invalid(
            "--arrival closed is not accepted with --broker; expected poisson, constant, bursty or batch".into(),
        )),
        #[cfg(feature = "broker")]
        QueueChoice::Broker(_) | QueueChoice::Node { .. } => Ok(()),
    }
}

/// How many recent failure messages snapshots carry.
pub const RECENT_ERRORS: usize = 5;

/// The bound of the command channel: small, because commands are human-paced and a backlog
/// would only delay the operator's latest intent.
const COMMAND_BUFFER: usize = 64;

/// State shared by the producer, the workers and the control thread.
pub(crate) struct Shared {
    pub queue: Queue,
    pub recorders: Recorders,
    pub timer: Timer,
    /// The run's clock: schedule time 0, from which the producer owes arrivals.
    pub start: Instant,
    /// When a timed run ends: no arrival is intended at or after it.
    pub end: Option<Instant>,
    pub offered: AtomicU64,
    pub next_id: AtomicU64,
    /// Your work, run in place of the synthetic service when present.
    pub work: Option<std::sync::Arc<dyn crate::work::Work>>,
    /// The timeout knob in nanoseconds (0: none), read by workers at the start of each job.
    pub timeout_ns: AtomicU64,
    /// The latest failure messages, newest last (at most [`RECENT_ERRORS`]).
    pub errors: std::sync::Mutex<std::collections::VecDeque<String>>,
    pub rejected: AtomicU64,
    pub dropped: AtomicU64,
    /// Offered jobs that never reached the queue or a worker (cut off by shutdown).
    pub abandoned: AtomicU64,
    /// Intended time (ns since `start`) of the job the producer is trying to enqueue; `u64::MAX` when none.
    pub pending_intended: AtomicU64,
    pub gaps: GapCounters,
    /// Closed loop: the think time clients really spent (from their job's end to their next
    /// submission), summed since the last tick: the timer runs a think a little long, and the
    /// model is fed what was measured.
    pub think_ns: AtomicU64,
    pub thinks: AtomicU64,
    /// The service kind, read by workers at the start of each job so a switch applies at once.
    pub service_kind: std::sync::atomic::AtomicU8,
    /// The synthetic service's downstream (contention, coherency, capacity).
    pub downstream: downstream::Downstream,
    /// The trace replayed when `arrival = trace`.
    pub arrivals: Option<replay::Arrivals>,
    /// The sample drawn from when `service_dist = empirical`.
    pub service_sample: Option<std::sync::Arc<crate::model::sample::ServiceSample>>,
    /// The producer has offered a trace's last arrival (it does not loop): the run ends once
    /// that is served, unless it has a duration.
    pub arrivals_done: std::sync::atomic::AtomicBool,
    /// The trace's arrivals offered so far, across passes (the producer's position).
    pub trace_offered: AtomicU64,
}

impl Shared {
    /// Counts what became of a push and releases refused or discarded jobs' clients.
    pub fn account(&self, p: Pushed) {
        match p {
            Pushed::Queued => {}
            Pushed::Rejected(job) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                job.release();
            }
            Pushed::Dropped(old) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                old.release();
            }
        }
    }

    pub fn since_start(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

/// Sums of the scheduled inter-arrival gaps, written by the producer alone (plain loads and
/// stores, no read-modify-write) and read by the control thread each tick. A reader may see one
/// gap's update half applied, which moves a coefficient of variation by nothing measurable.
#[derive(Default)]
pub(crate) struct GapCounters {
    count: AtomicU64,
    sum: AtomicU64,
    sum_sq: AtomicU64,
}

impl GapCounters {
    /// Adds one gap; call from the producer only.
    pub fn add(&self, gap: Duration) {
        let s = gap.as_secs_f64();
        let add = |a: &AtomicU64, v: f64| {
            a.store((f64::from_bits(a.load(Ordering::Relaxed)) + v).to_bits(), Ordering::Relaxed);
        };
        add(&self.sum, s);
        add(&self.sum_sq, s * s);
        self.count.store(self.count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub fn read(&self) -> GapSums {
        GapSums {
            count: self.count.load(Ordering::Relaxed),
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
            sum_sq: f64::from_bits(self.sum_sq.load(Ordering::Relaxed)),
        }
    }
}

/// A running engine. Dropping it asks the engine to shut down.
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    snapshots: watch::Receiver<Snapshot>,
    thread: Option<JoinHandle<()>>,
    queue: QueueChoice,
    /// A trace or a sample was given: `arrival = trace`, `service_dist = empirical` are accepted.
    has: Has,
}

impl EngineHandle {
    /// Starts an engine on its own thread and runtime.
    ///
    /// ```
    /// use pooltune::engine::{Command, EngineHandle, RunOptions};
    /// use pooltune::settings::{Knob, Settings};
    /// use std::time::Duration;
    ///
    /// let settings = Settings { rate: "200".parse().unwrap(), threads: 1, ..Settings::default() };
    /// let opts = RunOptions { duration: Some(Duration::from_millis(300)), ..RunOptions::default() };
    /// let engine = EngineHandle::start(settings, opts).unwrap();
    /// engine.try_send(Command::Set(Knob::Workers(6))).unwrap();
    /// let last = engine.join();
    /// assert!(last.finished);
    /// assert_eq!(last.settings.workers, 6);
    /// ```
    ///
    /// # Errors
    /// Invalid settings, or a runtime that could not be built.
    pub fn start(settings: Settings, opts: RunOptions) -> Result<EngineHandle, EngineError> {
        Self::start_with(settings, opts, None)
    }

    /// Starts an engine whose workers run `work` (your own job) instead of the synthetic service.
    ///
    /// # Errors
    /// Invalid settings, or a runtime that could not be built.
    pub fn start_with(
        settings: Settings,
        opts: RunOptions,
        work: Option<std::sync::Arc<dyn crate::work::Work>>,
    ) -> Result<EngineHandle, EngineError> {
        Self::start_on(settings, opts, work, QueueChoice::InProcess)
    }

    /// Starts an engine whose queue is `queue` (a broker is connected to and set up before
    /// this returns, so an unreachable one is an error here, not a failed run).
    ///
    /// # Errors
    /// Invalid settings, a runtime that could not be built, or a broker that could not be used.
    pub fn start_on(
        settings: Settings,
        opts: RunOptions,
        work: Option<std::sync::Arc<dyn crate::work::Work>>,
        queue: QueueChoice,
    ) -> Result<EngineHandle, EngineError> {
        Self::start_supplied(settings, opts, queue, Supplied { work, ..Supplied::default() })
    }

    /// Starts an engine that replays `arrivals` (a trace) whenever `arrival = trace`, on
    /// `queue`, with `work`.
    ///
    /// # Errors
    /// As [`EngineHandle::start_on`], and `arrival = trace` without a trace.
    pub fn start_replay(
        settings: Settings,
        opts: RunOptions,
        work: Option<std::sync::Arc<dyn crate::work::Work>>,
        queue: QueueChoice,
        arrivals: Option<replay::Arrivals>,
    ) -> Result<EngineHandle, EngineError> {
        Self::start_supplied(settings, opts, queue, Supplied { work, arrivals, service_sample: None })
    }

    /// Starts an engine on `queue` with what the run was given ([`Supplied`]): your job, a trace
    /// replayed whenever `arrival = trace`, a sample drawn from whenever `service_dist =
    /// empirical`.
    ///
    /// # Errors
    /// As [`EngineHandle::start_on`], and `arrival = trace` without a trace or `service_dist =
    /// empirical` without a sample.
    pub fn start_supplied(
        settings: Settings,
        opts: RunOptions,
        queue: QueueChoice,
        supplied: Supplied,
    ) -> Result<EngineHandle, EngineError> {
        let settings = settings.resolved();
        settings.validate()?;
        check_queue_choice(&queue, &settings)?;
        let has = supplied.has();
        check(&settings, has)?;
        opts.validate().map_err(EngineError::Invalid)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_BUFFER);
        let (snap_tx, snap_rx) = watch::channel(Snapshot::initial(settings.clone()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let choice = queue.clone();
        let thread = std::thread::Builder::new()
            .name("pooltune-engine".into())
            .spawn(move || control::run_thread(settings, opts, supplied, queue, cmd_rx, &snap_tx, &ready_tx))
            .map_err(|e| EngineError::Start(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {
                Ok(EngineHandle { commands: cmd_tx, snapshots: snap_rx, thread: Some(thread), queue: choice, has })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EngineError::Start("the engine thread ended while starting".into())),
        }
    }

    /// Checks a command against the latest settings, so a refusal is reported at once.
    ///
    /// # Errors
    /// The reason a knob value is refused.
    pub fn check(&self, cmd: &Command) -> Result<(), EngineError> {
        match cmd {
            Command::Set(knob) => {
                let after = self.snapshots.borrow().settings.with(knob.live().map_err(SettingsError::from)?)?;
                check_queue_choice(&self.queue, &after)?;
                check(&after, self.has)?;
            }
            Command::SetNodeWorkers { node, workers } => {
                Knob::Workers(*workers).check().map_err(SettingsError::from)?;
                let snap = self.snapshots.borrow();
                let live: Vec<&str> =
                    snap.nodes.iter().filter(|n| !n.lost && !n.finished).map(|n| n.name.as_str()).collect();
                if live.is_empty() {
                    return Err(EngineError::Invalid(format!(
                        "no worker node '{node}': this run has no worker nodes (they join a broker run with pooltune worker)"
                    )));
                }
                if !live.contains(&node.as_str()) {
                    return Err(EngineError::Invalid(format!(
                        "no worker node '{node}'; expected one of {}",
                        live.join(", ")
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends a command without waiting (for UIs): refused values and a full channel are errors.
    ///
    /// # Errors
    /// [`EngineError::Settings`], [`EngineError::Busy`] or [`EngineError::Stopped`].
    pub fn try_send(&self, cmd: Command) -> Result<(), EngineError> {
        self.check(&cmd)?;
        self.commands.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Busy,
            mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
        })
    }

    /// Sends a command, waiting for room in the channel.
    ///
    /// # Errors
    /// [`EngineError::Settings`] or [`EngineError::Stopped`].
    pub async fn send(&self, cmd: Command) -> Result<(), EngineError> {
        self.check(&cmd)?;
        self.commands.send(cmd).await.map_err(|_| EngineError::Stopped)
    }

    /// A receiver of snapshots; each client takes its own.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.snapshots.clone()
    }

    /// The latest snapshot.
    #[must_use]
    pub fn latest(&self) -> Snapshot {
        self.snapshots.borrow().clone()
    }

    /// Waits for the engine to end (by its duration, its job count or a `Shutdown`) and returns
    /// the final snapshot.
    ///
    /// # Errors
    /// [`EngineError::Panicked`], with the panic's message, if the engine's thread panicked.
    pub fn try_join(mut self) -> Result<Snapshot, EngineError> {
        if let Some(t) = self.thread.take() {
            t.join().map_err(|p| EngineError::Panicked(crate::work::panic_message(p.as_ref())))?;
        }
        Ok(self.snapshots.borrow().clone())
    }

    /// [`Self::try_join`] for callers that treat an engine panic as their own (tests, examples).
    ///
    /// # Panics
    /// If the engine's thread panicked, with its message.
    #[must_use]
    pub fn join(self) -> Snapshot {
        self.try_join().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Asks for a graceful shutdown and waits for it.
    ///
    /// # Errors
    /// As [`Self::try_join`].
    pub fn try_shutdown(self) -> Result<Snapshot, EngineError> {
        let _ = self.commands.try_send(Command::Shutdown);
        self.try_join()
    }

    /// [`Self::try_shutdown`], panicking as [`Self::join`] does.
    #[must_use]
    pub fn shutdown(self) -> Snapshot {
        self.try_shutdown().unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.commands.try_send(Command::Shutdown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic on the engine's thread comes back from `try_join` with its message.
    #[test]
    fn an_engine_thread_panic_is_an_error_with_its_message() {
        let (commands, _rx) = mpsc::channel(1);
        let (_tx, snapshots) = watch::channel(Snapshot::initial(Settings::default()));
        let thread = std::thread::spawn(|| panic!("the clock overflowed"));
        let engine = EngineHandle {
            commands,
            snapshots,
            thread: Some(thread),
            queue: QueueChoice::InProcess,
            has: Has::default(),
        };
        assert_eq!(engine.try_join(), Err(EngineError::Panicked("the clock overflowed".into())));
    }

    #[test]
    fn run_lengths_past_a_year_are_refused() {
        let opts = RunOptions { duration: Some(Duration::from_secs(10_000_000_000)), ..RunOptions::default() };
        let err = opts.validate().unwrap_err();
        assert!(err.contains("at most 365d"), "{err}");
        assert!(RunOptions { duration: Some(MAX_RUN), ..RunOptions::default() }.validate().is_ok());
        let err = RunOptions { interval: Duration::from_millis(1), ..RunOptions::default() }.validate().unwrap_err();
        assert!(err.contains("expected 10ms to 60s"), "{err}");
    }
}
