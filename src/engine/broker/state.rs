//! The broker queue's shared state: its knobs, counters, and the receipts by which finished
//! jobs are acknowledged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::BrokerSpec;
pub use super::adapter::Cfg;
use super::adapter::{Ack, Shared};
use super::cluster::Cluster;

/// The most jobs the outbox holds before the producer waits for the publisher: the queue bound
/// (at least 1), following its live changes. Under `block` a full stream keeps the publisher
/// retrying, so the outbox fills and the producer waits: its lag shows, and at most `queue`
/// jobs wait on the controller besides the `queue` the stream holds.
#[must_use]
pub fn outbox_bound(queue: usize) -> usize {
    queue.max(1)
}
/// Publishes whose acknowledgements may be outstanding at once under `reject`/`drop-oldest`.
pub const ACKS_IN_FLIGHT: usize = 1024;
/// Publishes the publisher keeps in flight at once. A broker answers a publish in a round trip;
/// one at a time, `block` ran at a round trip per job (RabbitMQ's confirms: 0.12-0.23x the
/// client's own pipelined loop).
pub const PUBLISH_WINDOW: usize = 256;
/// How long one pull request waits for jobs before the fetcher asks again.
pub const PULL_EXPIRES: Duration = Duration::from_millis(100);
/// How long after it was made a pull request counts as lost (the server that had it gone).
pub const PULL_LOST: Duration = Duration::from_secs(1);
/// How often the consumer's undelivered count is read.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// The longest wait between two tries of a publish the stream refused under `block`.
pub const MAX_BACKOFF: Duration = Duration::from_millis(20);
/// How long a publish waits for the broker's answer.
pub const PUBLISH_ACK_WAIT: Duration = Duration::from_secs(1);
/// How long closing waits for each task.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Counters, written by the tasks and read each tick.
#[derive(Default)]
pub struct Counts {
    /// Publishes the stream stored.
    pub stored: AtomicU64,
    pub rejected: AtomicU64,
    /// Publishes that failed for another reason than a full stream (counted rejected too).
    pub publish_errors: AtomicU64,
    pub retries: AtomicU64,
    /// First deliveries, and redeliveries.
    pub delivered: AtomicU64,
    pub redelivered: AtomicU64,
    pub dropped: AtomicU64,
    /// The stream sequence of the latest first delivery.
    pub last_seq: AtomicU64,
    /// Whether a jump in that sequence is jobs the stream discarded: only on a controller whose
    /// policy has been `drop-oldest` (discard `new` discards nothing) and that no worker node has
    /// joined (a jump is then the nodes' deliveries; the end of the run recounts the drops).
    pub gaps_are_drops: AtomicBool,
    /// Messages that were not pooltune jobs of this version (terminated, not run).
    pub malformed: AtomicU64,
    /// The undelivered jobs at the latest sample, and the samples since the last tick.
    pub pending: AtomicU64,
    pub pending_sum: AtomicU64,
    pub pending_samples: AtomicU64,
    /// The jobs the stream holds (undelivered + delivered, not acknowledged) at the latest
    /// sample, their sum over the samples since the last tick, and their most: what the bound
    /// counts, from one reading of the consumer.
    pub stored_now: AtomicU64,
    pub stored_sum: AtomicU64,
    pub stored_max: AtomicU64,
    /// The jobs the publisher took from the outbox and has not yet sent, or that wait to be sent
    /// again (refused by a full queue, or the broker away): a place a job waits, counted with the
    /// outbox.
    pub publishing: AtomicU64,
    /// A node: the jobs in its inbox (pulled ahead, not started) at its last tick, and ∫ of
    /// that depth over its ticks since its last report (jobs·µs).
    pub held_now: AtomicU64,
    pub held_area_us: AtomicU64,
    /// Σ time in broker (ns) of the jobs delivered here.
    pub broker_time_ns: AtomicU64,
    /// The most jobs held unacknowledged at a sample.
    pub ack_pending_max: AtomicU64,
    /// Workers in this process: with none, the fetcher pulls nothing.
    pub local_workers: AtomicU64,
}

pub fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

pub struct Inner {
    pub spec: BrokerSpec,
    pub broker: Shared,
    /// Time 0 of the run's messages.
    pub epoch: Instant,
    pub counts: Counts,
    /// Times the controller found the run's queue gone (a server restarted with memory storage
    /// loses it) and made it again.
    pub streams_lost: AtomicU64,
    /// Publish → delivered here, over the run (µs; the sum in `counts.broker_time_ns`).
    pub broker_time: Mutex<Histogram<u64>>,
}

/// How a finished job's receipt is settled.
pub enum Settle {
    /// The controller's own workers: acknowledge at once, and mark the job finished.
    Controller(Arc<Cluster>),
    /// A worker node: keep the receipt until the tick's report that counts the job has been
    /// sent, then acknowledge (a node killed in between has its jobs redelivered, not lost).
    Node(Mutex<Vec<(u64, Box<dyn Ack>)>>),
}

/// A delivered job's message, settled when its worker is done with it, whatever the outcome
/// (a failed job is counted failed, not redelivered).
#[derive(Clone)]
pub struct Receipt(Arc<Mutex<Option<Box<dyn Ack>>>>, u64, Arc<Settler>, Instant);

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Receipt(job {})", self.1)
    }
}

/// The settling side of a broker queue, shared by its receipts.
pub struct Settler {
    pub how: Settle,
    pub ack_errors: AtomicU64,
}

impl Receipt {
    /// The receipt of a job pulled from the stream into this process now.
    pub fn new(ack: Box<dyn Ack>, id: u64, settler: &Arc<Settler>) -> Receipt {
        Receipt(Arc::new(Mutex::new(Some(ack))), id, Arc::clone(settler), Instant::now())
    }

    /// When the job was pulled from the stream into this process.
    #[must_use]
    pub fn fetched(&self) -> Instant {
        self.3
    }

    /// Settles the job (see [`Settle`]).
    pub async fn settle(self) {
        let Receipt(ack, id, settler, _) = self;
        // A receipt is settled once (a clone shares it): the first to settle takes the handle.
        let Some(ack) = ack.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        match &settler.how {
            Settle::Controller(cluster) => {
                cluster.finished(id);
                settler.ack(ack).await;
            }
            Settle::Node(pending) => pending.lock().unwrap_or_else(PoisonError::into_inner).push((id, ack)),
        }
    }
}

impl Settler {
    /// Acknowledges one message, counting a failure.
    pub async fn ack(&self, ack: Box<dyn Ack>) {
        if let Err(e) = ack.ack().await {
            self.ack_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("acknowledging a job failed: {e}");
        }
    }

    /// A node's receipts kept since the last call.
    pub fn take_pending(&self) -> Vec<(u64, Box<dyn Ack>)> {
        match &self.how {
            Settle::Node(p) => std::mem::take(&mut *p.lock().unwrap_or_else(PoisonError::into_inner)),
            Settle::Controller(_) => Vec::new(),
        }
    }
}

/// Publish → delivered to this process, over the run (µs).
pub fn broker_time_hist() -> Mutex<Histogram<u64>> {
    Mutex::new(crate::metrics::hist::new())
}

/// The instant on this machine's monotonic clock that corresponds to the run's epoch, and the
/// wall clock offset from the controller's, with its uncertainty.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub epoch: Instant,
    pub offset_ns: i64,
    pub uncertainty_ns: u64,
}
