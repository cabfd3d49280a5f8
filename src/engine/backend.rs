//! The queue seam: what the producer, the workers and the control thread call, whichever queue
//! the run has.
//!
//! - [`Queue::Local`]: the in-process [`JobQueue`], the default.
//! - `Queue::Broker` (feature `broker`): a NATS JetStream stream. The producer pushes into a
//!   local *outbox* that a publisher task drains into the stream; a fetcher task pulls from the
//!   stream's consumer into a local *inbox* that the workers pop. Both are [`JobQueue`]s, so the
//!   producer and the workers run the same code either way. The bound and the policy are the
//!   stream's; the outbox only ever blocks (the policy is applied where the bound is, on the
//!   server) and holds at most the bound, so under `block` a full stream holds the producer.
//!
//! Everything else in the engine knows only this type.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::queue::{Job, JobQueue, Pushed, Receipt};
use crate::metrics::aggregate::DepthStats;
use crate::settings::{Policy, Settings};

/// Settles a finished job's receipt (acknowledges it to the broker).
pub async fn settle(receipt: Receipt) {
    #[cfg(feature = "broker")]
    receipt.settle().await;
    #[cfg(not(feature = "broker"))]
    match receipt {}
}

/// When a broker job was pulled from the stream into this process (`None` on the local queue).
#[must_use]
pub fn fetched(job: &Job) -> Option<Instant> {
    #[cfg(feature = "broker")]
    return job.receipt.as_ref().map(Receipt::fetched);
    #[cfg(not(feature = "broker"))]
    job.receipt.as_ref().map(|r| match *r {})
}

/// A worker node's receipts, kept until the report that counts their jobs has gone.
#[cfg(feature = "broker")]
pub type Pending = Vec<(u64, Box<dyn super::broker::adapter::Ack>)>;
/// A worker node's receipts: none without the `broker` feature.
#[cfg(not(feature = "broker"))]
pub type Pending = Vec<std::convert::Infallible>;

/// What a worker node's controller said.
#[cfg_attr(not(feature = "broker"), allow(dead_code))]
pub enum Update {
    /// The run is over.
    End,
    /// The live knobs, as they apply to this node.
    Knobs(Vec<crate::settings::Knob>),
}

/// What a closed queue hands back.
pub struct Closed {
    /// Jobs that were waiting in this process (never started): abandoned.
    pub left: Vec<Job>,
    /// Jobs still in the broker, never delivered: abandoned too.
    pub left_in_broker: u64,
}

/// Counts the queue keeps itself (the broker's refusals and discards are learnt after the push).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub rejected: u64,
    pub dropped: u64,
}

// The local queue is the hot path and stays inline; the broker's state is boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Queue {
    Local(JobQueue),
    #[cfg(feature = "broker")]
    Broker(Box<super::broker::BrokerQueue>),
}

impl Queue {
    /// Whether the jobs go through a broker.
    pub fn is_broker(&self) -> bool {
        !matches!(self, Queue::Local(_))
    }

    /// Where the producer pushes.
    fn inlet(&self) -> &JobQueue {
        match self {
            Queue::Local(q) => q,
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.outbox(),
        }
    }

    /// Where the workers pop.
    fn outlet(&self) -> &JobQueue {
        match self {
            Queue::Local(q) => q,
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.inbox(),
        }
    }

    /// The policy a push applies here: the run's on the local queue; on the broker's outbox
    /// always `block` (the run's policy is the stream's).
    fn push_policy(&self, asked: Option<Policy>) -> Option<Policy> {
        match self {
            Queue::Local(_) => asked,
            #[cfg(feature = "broker")]
            Queue::Broker(_) => Some(Policy::Block),
        }
    }

    /// Whether this process makes the arrivals (not a broker's worker node).
    pub fn produces(&self) -> bool {
        match self {
            Queue::Local(_) => true,
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.produces(),
        }
    }

    /// A worker node's receipts since the last report (take them before the tick's drain).
    pub fn take_pending(&self) -> Pending {
        match self {
            Queue::Local(_) => Pending::default(),
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.take_pending(),
        }
    }

    /// A controller: adds its nodes' reports and the broker's state to the tick's inputs.
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_self))]
    pub fn absorb(&self, inputs: &mut crate::metrics::aggregate::TickInputs<'_>, interval: std::time::Duration) {
        #[cfg(feature = "broker")]
        if let Queue::Broker(b) = self {
            if let Some(a) = b.absorb(inputs.recorders, inputs.now, interval) {
                inputs.nodes = a.nodes;
                inputs.node_workers = a.workers;
                inputs.duplicates = a.duplicates;
                // The nodes' inboxes: jobs pulled ahead, waiting for a worker there.
                if let Some(p) = inputs.depth.parts.as_mut() {
                    p.held += a.held_now as f64;
                }
                if let Some(p) = inputs.depth.parts_mean.as_mut() {
                    p.held += a.held_mean;
                }
            }
            inputs.broker = Some(b.view());
        }
        #[cfg(not(feature = "broker"))]
        let _ = (inputs, interval);
    }

    /// A worker node: sends the tick's report, then acknowledges `pending`. The task sending
    /// it is returned, for the last report to be waited for.
    pub fn report(
        &self,
        handle: &tokio::runtime::Handle,
        stats: crate::metrics::recorder::ShardStats,
        pending: Pending,
        workers: usize,
        busy: u64,
        last: bool,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.report(handle, stats, pending, workers, busy, last),
            _ => {
                let _ = (handle, stats, pending, workers, busy, last);
                None
            }
        }
    }

    /// A controller: tells its nodes the knobs.
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_self))]
    pub fn publish_control(&self, handle: &tokio::runtime::Handle, s: &Settings, end: bool) {
        #[cfg(feature = "broker")]
        if let Queue::Broker(b) = self {
            b.publish_control(handle, s, end);
        }
        #[cfg(not(feature = "broker"))]
        let _ = (handle, s, end);
    }

    /// How many workers this process runs now.
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_self))]
    pub fn set_local_workers(&self, n: usize) {
        #[cfg(feature = "broker")]
        if let Queue::Broker(b) = self {
            b.set_local_workers(n);
        }
        #[cfg(not(feature = "broker"))]
        let _ = n;
    }

    /// The operator set the workers during the run: a broker's nodes take the count too.
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_self))]
    pub fn set_all_workers(&self, n: usize) {
        #[cfg(feature = "broker")]
        if let Queue::Broker(b) = self {
            b.set_all_workers(n);
        }
        #[cfg(not(feature = "broker"))]
        let _ = n;
    }

    /// The operator set one node's workers (a controller of a broker run; elsewhere there are
    /// no nodes, and the engine handle refuses the command before it is sent).
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_self))]
    pub fn set_node_workers(&self, node: &str, n: usize) {
        #[cfg(feature = "broker")]
        if let Queue::Broker(b) = self {
            b.set_node_workers(node, n);
        }
        #[cfg(not(feature = "broker"))]
        let _ = (node, n);
    }

    /// A worker node: what its controller said since the last call.
    pub fn control_update(&self) -> Option<Update> {
        match self {
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.control_update(),
            _ => None,
        }
    }

    /// See [`JobQueue::try_push_as`].
    pub fn try_push_as(&self, job: Job, policy: Option<Policy>) -> Result<Pushed, Job> {
        self.inlet().try_push_as(job, self.push_policy(policy))
    }

    /// See [`JobQueue::push_as`].
    pub async fn push_as(&self, job: Job, policy: Option<Policy>) -> Pushed {
        self.inlet().push_as(job, self.push_policy(policy)).await
    }

    /// See [`JobQueue::room`].
    pub fn room(&self) -> usize {
        self.inlet().room()
    }

    /// See [`JobQueue::wait_refill`].
    pub async fn wait_refill(&self) {
        self.inlet().wait_refill().await;
    }

    /// See [`JobQueue::push_many`].
    pub fn push_many(&self, jobs: &mut Vec<Job>) -> usize {
        self.inlet().push_many(jobs)
    }

    /// See [`JobQueue::try_pop_at`].
    pub fn try_pop_at(&self, now: Instant) -> Result<Option<(Job, Instant)>, ()> {
        self.outlet().try_pop_at(now)
    }

    /// See [`JobQueue::pop`].
    pub async fn pop(&self, stop: &AtomicBool) -> Option<(Job, Instant)> {
        self.outlet().pop(stop).await
    }

    /// See [`JobQueue::wake_consumers`].
    pub fn wake_consumers(&self) {
        self.outlet().wake_consumers();
    }

    /// Applies a change of the queue's knobs (bound, policy, and the broker's own).
    pub fn configure(&self, s: &Settings) {
        match self {
            Queue::Local(q) => {
                q.set_bound(s.queue);
                q.set_policy(s.policy);
            }
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.configure(s),
        }
    }

    /// The depth now, and its mean and maximum since the last call.
    pub fn take_depth_stats(&self) -> DepthStats {
        match self {
            Queue::Local(q) => q.take_depth_stats(),
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.take_depth_stats(),
        }
    }

    /// Refusals and discards the queue counted itself (none for the local queue: its pushes
    /// say at once, and the producer counts them).
    pub fn counts(&self) -> QueueCounts {
        match self {
            Queue::Local(_) => QueueCounts::default(),
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.counts(),
        }
    }

    /// Closes the queue: pushes are refused from now on; what never reached a worker is handed
    /// back or counted.
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_async))]
    pub async fn close(
        &self,
        handle: &tokio::runtime::Handle,
        s: &Settings,
        interval: std::time::Duration,
        grace: std::time::Duration,
    ) -> Closed {
        match self {
            Queue::Local(q) => {
                let _ = (handle, s, interval, grace);
                Closed { left: q.close(), left_in_broker: 0 }
            }
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.close(handle, s, interval, grace).await,
        }
    }

    /// After the last job: counts the jobs the broker still holds, never run (abandoned), and
    /// releases what the queue holds outside this process (the run's stream).
    #[cfg_attr(not(feature = "broker"), allow(clippy::unused_async))]
    pub async fn finish(&self) -> u64 {
        match self {
            #[cfg(feature = "broker")]
            Queue::Broker(b) => b.finish().await,
            _ => 0,
        }
    }
}
