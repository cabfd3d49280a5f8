//! The broker queue: outbox → publisher → the run's queue on the broker → fetcher → inbox, and
//! its counts, whatever the broker (the [`Adapter`](super::adapter::Adapter) moves the bytes).
//!
//! A controller (`pooltune run --broker`) has all of it and hears its worker nodes through a
//! [`Cluster`]; a worker node (`pooltune worker`) has the fetcher and the inbox only, and sends a
//! report each tick before it acknowledges the jobs the report counts (its side: `node`).
//!
//! - **Publisher** (a task): takes jobs from the outbox in order and publishes them, up to
//!   `PUBLISH_WINDOW` in flight. Under `reject` and `drop-oldest` a collector task reads their
//!   acknowledgements in order: a publish the broker refused (full) is counted as rejected.
//!   Under `block` each publish awaits its acknowledgement and a refused one is retried with
//!   backoff (counted as a retry); while one is retried no further job is taken, so the outbox
//!   fills and the producer's lag shows, as it does on a full local queue.
//! - **Fetcher** (a task): pulls at most the inbox's free places (the `prefetch` knob) per
//!   request and puts the jobs into the inbox. Where the broker numbers its messages
//!   ([`Delivery::seq`](super::adapter::Delivery)), a jump between first deliveries is jobs it
//!   discarded before delivery (`drop-oldest`): counted as dropped, exactly.
//! - **Sampler** (a task): reads what the queue holds every `SAMPLE_EVERY`. When it cannot on a
//!   live connection, the server may have come back without the run's queue (memory storage):
//!   the adapter makes it again and the loss is counted.
//! - **Admin** (a task): applies bound, policy, `prefetch` and `ack_wait` changes to the
//!   broker and the inbox.
//!
//! A job's receipt is acknowledged when its worker is done with it, whatever the outcome: a
//! failed job is counted failed, not redelivered.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::adapter::{Ack, Shared, Topic};
use super::cluster::{self, Absorbed, Cluster};
use super::leftovers;
use super::node::{self, NodeSide};
use super::protocol::Control;
use super::reports;
use super::state::{
    ACKS_IN_FLIGHT, CLOSE_WAIT, Cfg, Counts, Inner, Settle, Settler, add, broker_time_hist, outbox_bound,
};
use super::tasks::{admin, collect, fetch, follow_prefetch, publish, sample};
use super::{BrokerError, BrokerSpec, connect};
use crate::engine::backend::{Closed, QueueCounts, Update};
use crate::engine::queue::JobQueue;
use crate::metrics::aggregate::DepthStats;
use crate::metrics::recorder::{Recorders, ShardStats};
use crate::metrics::{BrokerView, QueueParts, Summary};
use crate::settings::{Policy, Settings};

/// At the end, the queue is read up to this many times, this far apart, until two
/// readings agree (the server applies acknowledgements asynchronously).
const SETTLE_READS: usize = 50;
const SETTLE_GAP: Duration = Duration::from_millis(20);

pub(crate) struct BrokerQueue {
    outbox: Arc<JobQueue>,
    inbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    settler: Arc<Settler>,
    cfg: watch::Sender<Cfg>,
    /// Stops the publisher's retries, then the fetcher, then everything.
    stop_publish: CancellationToken,
    stop_fetch: CancellationToken,
    stop_all: CancellationToken,
    tasks: Mutex<Tasks>,
    /// Jobs the publisher held when the run ended (never stored).
    unpublished: Arc<AtomicU64>,
    /// The ids of the jobs fetched here and handed back unstarted at the end (the broker still
    /// holds them).
    returned: Mutex<Vec<u64>>,
    /// The controller's view of its nodes (`None` on a node).
    cluster: Option<Arc<Cluster>>,
    node: Option<NodeSide>,
    /// The policy has been `drop-oldest` at some point of the run (the broker may have
    /// discarded jobs).
    dropping: AtomicBool,
    /// A node: when its depth was last taken (its inbox's integral runs from there).
    depth_taken: Mutex<Instant>,
}

#[derive(Default)]
struct Tasks {
    publisher: Option<JoinHandle<()>>,
    collector: Option<JoinHandle<()>>,
    fetcher: Option<JoinHandle<()>>,
}

impl BrokerQueue {
    /// The controller: connects, sets up the run's queue (an earlier run's leftovers of the
    /// same name are purged), and starts its tasks on the current runtime.
    pub async fn connect(spec: &BrokerSpec, s: &Settings, epoch: Instant) -> Result<BrokerQueue, BrokerError> {
        let broker = connect(spec).await?;
        let cfg = Cfg::of(s);
        broker.create(cfg).await?;
        let cluster = Arc::new(Cluster::default());
        let how = Settle::Controller(Arc::clone(&cluster));
        let q = Self::assemble(broker, spec, cfg, epoch, how);
        let q = BrokerQueue { cluster: Some(cluster), ..q };
        q.refresh_gaps();
        q.spawn_controller_tasks();
        Ok(q)
    }

    /// A worker node: connects, waits for the run (its first control message), estimates the
    /// clock offset from the controller, and starts fetching.
    pub async fn join(spec: &BrokerSpec, name: &str, s: &Settings) -> Result<BrokerQueue, BrokerError> {
        let broker = connect(spec).await?;
        let mut sub = broker
            .subscribe(Topic::Control)
            .await
            .map_err(|reason| BrokerError::Unreachable { url: spec.shown(), reason })?;
        let first = node::first_word(&mut sub, spec).await?;
        broker.open().await?;
        let clock = node::estimate_clock(&broker).await.map_err(|reason| BrokerError::Setup {
            url: spec.shown(),
            what: "clock".into(),
            reason,
        })?;
        let (tx, control) = watch::channel(Some(first));
        let mut q =
            Self::assemble(Arc::clone(&broker), spec, Cfg::of(s), clock.epoch, Settle::Node(Mutex::new(Vec::new())));
        q.node = Some(NodeSide::new(name, clock, control));
        q.tasks.lock().unwrap_or_else(PoisonError::into_inner).fetcher = Some(tokio::spawn(fetch(
            Arc::clone(&q.inbox),
            Arc::clone(&q.inner),
            Arc::clone(&q.settler),
            q.stop_fetch.clone(),
        )));
        if let Some(side) = &q.node {
            let (mailbox, settler) = (Arc::clone(&side.mailbox), Arc::clone(&q.settler));
            tokio::spawn(reports::send(broker, mailbox, settler));
        }
        tokio::spawn(node::listen_control(sub, tx, q.stop_all.clone()));
        let follow =
            follow_prefetch(Arc::clone(&q.inbox), Arc::clone(&q.inner.broker), q.cfg.subscribe(), q.stop_all.clone());
        tokio::spawn(follow);
        Ok(q)
    }

    fn assemble(broker: Shared, spec: &BrokerSpec, cfg: Cfg, epoch: Instant, how: Settle) -> BrokerQueue {
        let inner = Arc::new(Inner {
            spec: spec.clone(),
            broker,
            epoch,
            counts: Counts::default(),
            streams_lost: AtomicU64::new(0),
            broker_time: broker_time_hist(),
        });
        BrokerQueue {
            outbox: Arc::new(JobQueue::new(outbox_bound(cfg.bound), Policy::Block)),
            inbox: Arc::new(JobQueue::relay(cfg.prefetch)),
            inner,
            settler: Arc::new(Settler { how, ack_errors: AtomicU64::new(0) }),
            cfg: watch::channel(cfg).0,
            stop_publish: CancellationToken::new(),
            stop_fetch: CancellationToken::new(),
            stop_all: CancellationToken::new(),
            tasks: Mutex::default(),
            unpublished: Arc::default(),
            returned: Mutex::default(),
            cluster: None,
            node: None,
            dropping: AtomicBool::new(cfg.policy == Policy::DropOldest),
            depth_taken: Mutex::new(Instant::now()),
        }
    }

    fn spawn_controller_tasks(&self) {
        let (acks_tx, acks_rx) = mpsc::channel(ACKS_IN_FLIGHT);
        let mut t = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        t.publisher = Some(tokio::spawn(publish(
            Arc::clone(&self.outbox),
            Arc::clone(&self.inner),
            self.cfg.subscribe(),
            acks_tx,
            self.stop_publish.clone(),
            Arc::clone(&self.unpublished),
        )));
        t.collector = Some(tokio::spawn(collect(Arc::clone(&self.inner), acks_rx)));
        t.fetcher = Some(tokio::spawn(fetch(
            Arc::clone(&self.inbox),
            Arc::clone(&self.inner),
            Arc::clone(&self.settler),
            self.stop_fetch.clone(),
        )));
        tokio::spawn(sample(Arc::clone(&self.inner), self.cfg.subscribe(), self.stop_all.clone()));
        tokio::spawn(admin(
            Arc::clone(&self.inner),
            Arc::clone(&self.inbox),
            self.cfg.subscribe(),
            self.stop_all.clone(),
        ));
        if let Some(cluster) = &self.cluster {
            let broker = Arc::clone(&self.inner.broker);
            tokio::spawn(cluster::listen(Arc::clone(&broker), Arc::clone(cluster), self.stop_all.clone()));
            tokio::spawn(cluster::clock(broker, self.inner.epoch, self.stop_all.clone()));
        }
    }

    pub fn outbox(&self) -> &JobQueue {
        &self.outbox
    }

    pub fn inbox(&self) -> &JobQueue {
        &self.inbox
    }

    /// Whether this process publishes the arrivals (a controller) or only serves (a node).
    pub fn produces(&self) -> bool {
        self.node.is_none()
    }

    /// How many workers this process runs (the fetcher pulls only when there are some).
    pub fn set_local_workers(&self, n: usize) {
        self.inner.counts.local_workers.store(n as u64, Ordering::Relaxed);
    }

    /// A controller's operator set the workers: every node takes the count too.
    pub fn set_all_workers(&self, n: usize) {
        if let Some(c) = &self.cluster {
            c.set_all_workers(n);
        }
    }

    /// The controller's operator set one node's workers.
    pub fn set_node_workers(&self, node: &str, n: usize) {
        if let Some(c) = &self.cluster {
            c.set_node_workers(node, n);
        }
    }

    pub fn configure(&self, s: &Settings) {
        let c = Cfg::of(s);
        self.outbox.set_bound(outbox_bound(c.bound));
        if c.policy == Policy::DropOldest {
            self.dropping.store(true, Ordering::Relaxed);
            self.refresh_gaps();
        }
        self.cfg.send_if_modified(|old| std::mem::replace(old, c) != c);
    }

    pub fn counts(&self) -> QueueCounts {
        let c = &self.inner.counts;
        QueueCounts { rejected: c.rejected.load(Ordering::Relaxed), dropped: c.dropped.load(Ordering::Relaxed) }
    }

    /// The depth the bound counts, and where the jobs waiting for a worker are (see
    /// [`DepthStats`]). A controller: the stream's holding (undelivered + unacknowledged) from
    /// its sampler's readings of the consumer, each reading one instant (the maximum is the
    /// most at a reading: never above the bound); the outbox and this process's inbox from
    /// their own integrals; the stream's undelivered jobs from the same readings. The nodes'
    /// inboxes are added when their reports are absorbed. A node: its inbox, which it also keeps
    /// for its next report. The arrivals' gaps are the outbox's (where the producer puts them).
    pub fn take_depth_stats(&self) -> DepthStats {
        let out = self.outbox.take_depth_stats();
        let inb = self.inbox.take_depth_stats();
        let c = &self.inner.counts;
        if self.node.is_some() {
            let now = Instant::now();
            let since = std::mem::replace(&mut *self.depth_taken.lock().unwrap_or_else(PoisonError::into_inner), now);
            let area = inb.mean * now.saturating_duration_since(since).as_secs_f64() * 1e6;
            c.held_now.store(inb.now as u64, Ordering::Relaxed);
            add(&c.held_area_us, area as u64);
            return inb;
        }
        let n = c.pending_samples.swap(0, Ordering::Relaxed);
        let mean = |sum: u64, now: u64| if n == 0 { now as f64 } else { sum as f64 / n as f64 };
        let pending = c.pending.load(Ordering::Relaxed);
        let pending_mean = mean(c.pending_sum.swap(0, Ordering::Relaxed), pending);
        let stored = c.stored_now.load(Ordering::Relaxed);
        let stored_mean = mean(c.stored_sum.swap(0, Ordering::Relaxed), stored);
        let stored_max = c.stored_max.swap(stored, Ordering::Relaxed).max(stored);
        let publishing = c.publishing.load(Ordering::Relaxed);
        let whole = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
        DepthStats {
            now: whole(stored),
            mean: stored_mean,
            max: whole(stored_max),
            enqueue_gaps: out.enqueue_gaps,
            parts: Some(QueueParts {
                outbox: (out.now as u64 + publishing) as f64,
                stream: pending as f64,
                held: inb.now as f64,
            }),
            parts_mean: Some(QueueParts { outbox: out.mean, stream: pending_mean, held: inb.mean }),
        }
    }

    /// The controller: takes the nodes' reports into `recorders` (see [`Cluster::absorb`]).
    pub fn absorb(&self, recorders: &Recorders, now: Instant, interval: Duration) -> Option<Absorbed> {
        let cluster = self.cluster.as_ref()?;
        self.refresh_gaps();
        Some(cluster.absorb(recorders, now, interval))
    }

    /// Sets [`Counts::gaps_are_drops`] (which the fetch task reads, not seeing the cluster): a
    /// controller that has been dropping and that no worker node has joined.
    fn refresh_gaps(&self) {
        let alone = self.cluster.as_ref().is_some_and(|k| !k.has_nodes());
        let gaps = alone && self.dropping.load(Ordering::Relaxed);
        self.inner.counts.gaps_are_drops.store(gaps, Ordering::Relaxed);
    }

    /// The controller: tells the nodes the knobs (and, at the end, to stop).
    pub fn publish_control(&self, handle: &Handle, s: &Settings, end: bool) {
        let Some(cluster) = &self.cluster else { return };
        let control = Control { node_workers: cluster.node_workers(), ..Control::of(s, cluster.all_workers(), end) };
        let body = serde_json::to_vec(&control).unwrap_or_default();
        let broker = Arc::clone(&self.inner.broker);
        handle.spawn(async move {
            if let Err(e) = broker.broadcast(Topic::Control, body).await {
                tracing::warn!("could not tell the nodes: {e}");
            }
        });
    }

    /// A node: the controller's latest word, once per change.
    pub fn control_update(&self) -> Option<Update> {
        self.node.as_ref()?.control_update()
    }

    /// A node's receipts kept since the last report: take them *before* the tick drains the
    /// records, so every job acknowledged after a report is in it.
    pub fn take_pending(&self) -> Vec<(u64, Box<dyn Ack>)> {
        self.settler.take_pending()
    }

    /// A node: posts the tick's report (see [`NodeSide::report`]).
    pub fn report(
        &self,
        handle: &Handle,
        stats: ShardStats,
        pending: Vec<(u64, Box<dyn Ack>)>,
        workers: usize,
        busy: u64,
        last: bool,
    ) -> Option<JoinHandle<()>> {
        let tick = node::Tick { stats, pending, workers, busy, last };
        self.node.as_ref()?.report(&self.inner, handle, tick)
    }

    /// The broker's part of a snapshot.
    pub fn view(&self) -> BrokerView {
        let c = &self.inner.counts;
        let mut hist = self.inner.broker_time.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let cluster = self.cluster.as_deref();
        let broker_ns = c.broker_time_ns.load(Ordering::Relaxed) + cluster.map_or(0, |k| k.broker_time(&mut hist));
        let (stream, consumer) = self.inner.broker.names();
        let extra = self.inner.broker.stats().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        BrokerView {
            kind: self.inner.broker.kind().to_string(),
            holder: self.inner.broker.holder().to_string(),
            bound_label: self.inner.broker.bound_label().to_string(),
            extra,
            url: self.inner.spec.shown(),
            stream,
            consumer,
            redelivered: c.redelivered.load(Ordering::Relaxed)
                + cluster.map_or(0, |k| k.redelivered.load(Ordering::Relaxed)),
            duplicates: cluster.map_or(0, Cluster::duplicates),
            publish_retries: c.retries.load(Ordering::Relaxed),
            ack_pending_cap: self.cfg.borrow().bound as u64,
            ack_pending_max: c.ack_pending_max.load(Ordering::Relaxed),
            time_in_broker_ms: Summary::of(&hist, u128::from(broker_ns)),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
            link: self.inner.broker.link().view(self.inner.streams_lost.load(Ordering::Relaxed)),
            lost_in_broker: 0,
            unaccounted: 0,
            bound_held: self
                .inner
                .broker
                .bound_held()
                .map(|b| b as u64)
                .filter(|&b| b != self.cfg.borrow().bound as u64),
        }
    }

    /// Ends publishing and fetching. Jobs never published, and jobs fetched here but never
    /// started, are handed back. A controller then tells its nodes to finish and waits (up to
    /// `grace` and a little) for their last reports.
    pub async fn close(&self, handle: &Handle, s: &Settings, interval: Duration, grace: Duration) -> Closed {
        let mut left = self.outbox.close();
        self.stop_publish.cancel();
        let (publisher, collector, fetcher) = {
            let mut t = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            (t.publisher.take(), t.collector.take(), t.fetcher.take())
        };
        for task in [publisher, collector].into_iter().flatten() {
            let _ = tokio::time::timeout(CLOSE_WAIT, task).await;
        }
        self.stop_fetch.cancel();
        if let Some(f) = fetcher {
            let _ = tokio::time::timeout(CLOSE_WAIT, f).await;
        }
        let here = self.inbox.close();
        self.returned.lock().unwrap_or_else(PoisonError::into_inner).extend(here.iter().map(|j| j.id));
        left.extend(here);
        if let Some(cluster) = &self.cluster {
            self.publish_control(handle, s, true);
            let until = Instant::now() + grace + interval * 4;
            while !cluster.all_done(Instant::now(), interval) && Instant::now() < until {
                tokio::time::sleep(interval / 4).await;
            }
        }
        Closed { left, left_in_broker: self.unpublished.load(Ordering::Relaxed) }
    }

    /// After every worker here and on the nodes is done. A controller recounts the drops (see
    /// [`Adapter::dropped`](super::adapter::Adapter::dropped)), counts the jobs the broker still
    /// holds that never ran (see [`leftovers`]), and deletes the run's queue. Returns those jobs.
    pub async fn finish(&self) -> u64 {
        self.stop_all.cancel();
        let Some(cluster) = &self.cluster else { return 0 };
        let c = &self.inner.counts;
        let broker = &self.inner.broker;
        // This process's acknowledgements reach the server first; the server applies them on
        // its own time, so the queue is read until two readings agree.
        if let Err(e) = broker.flush().await {
            tracing::warn!("could not flush the last acknowledgements: {e}");
        }
        let mut seen = None;
        for _ in 0..SETTLE_READS {
            match broker.holding().await {
                Ok(h) => {
                    if seen == Some(h) {
                        break;
                    }
                    seen = Some(h);
                }
                Err(e) => tracing::warn!("could not read the queue at the end: {e}"),
            }
            tokio::time::sleep(SETTLE_GAP).await;
        }
        let h = seen.unwrap_or_default();
        let returned: HashSet<u64> =
            self.returned.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
        // A queue made again starts its count anew: its count says nothing of the run's first.
        // Only `drop-oldest` drops jobs; a node lost before reporting its last deliveries would
        // otherwise make them look dropped.
        let remade = self.inner.streams_lost.load(Ordering::Relaxed) > 0;
        if self.dropping.load(Ordering::Relaxed) && !remade {
            let delivered = c.delivered.load(Ordering::Relaxed) + cluster.delivered.load(Ordering::Relaxed);
            match broker.dropped(delivered, h.undelivered).await {
                Ok(Some(never)) => {
                    let seen = c.dropped.swap(never, Ordering::Relaxed);
                    if seen != never {
                        tracing::info!("drops: {seen} seen in this process's deliveries, {never} by the broker's");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("could not read the drops at the end: {e}"),
            }
        }
        let (queue, _) = broker.names();
        let counted = |id| cluster.is_finished(id) || returned.contains(&id);
        let left = match leftovers::never_run(broker.as_ref(), counted).await {
            Ok(n) => n,
            Err(e) => {
                // Counts only: a job finished but never acknowledged would count here too.
                tracing::warn!("could not read what the queue {queue} holds at the end ({e}): counting it");
                h.undelivered + h.unacked.saturating_sub(returned.len() as u64)
            }
        };
        if let Err(e) = broker.delete().await {
            tracing::warn!("could not delete the queue {queue}: {e}");
        }
        left
    }
}
