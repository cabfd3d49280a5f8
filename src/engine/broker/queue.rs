//! The broker queue: outbox → publisher → the run's stream → fetcher → inbox, and its counts.
//!
//! A controller (`pooltune run --broker`) has all of it and hears its worker nodes through a
//! [`Cluster`]; a worker node (`pooltune worker`) has the fetcher and the inbox only, and sends a
//! report each tick before it acknowledges the jobs the report counts (its side: `node`).
//!
//! - **Publisher** (a task): takes jobs from the outbox in order and publishes them. Under
//!   `reject` and `drop-oldest` publishes are pipelined and a collector task reads their
//!   acknowledgements in order: a publish the stream refused (full, discard `new`) is counted
//!   as rejected. Under `block` each publish waits for its acknowledgement and a refused one is
//!   retried with backoff (counted as a retry), so the outbox fills and the producer's lag
//!   shows, as it does on a full local queue.
//! - **Fetcher** (a task): pulls at most the inbox's free places (the `prefetch` knob) per pull
//!   request and puts the jobs into the inbox. The consumer delivers new jobs in stream order,
//!   so a jump in the stream sequence of first deliveries is jobs the stream discarded before
//!   delivery (`drop-oldest`): counted as dropped, exactly.
//! - **Sampler** (a task): reads the consumer's undelivered count every `SAMPLE_EVERY`. When it
//!   cannot on a live connection, the server has come back without the run's stream (memory
//!   storage): it makes the stream and the consumer again and counts the loss.
//! - **Admin** (a task): applies bound, policy, `prefetch` and `ack_wait` changes to the
//!   stream, the consumer and the inbox.
//!
//! A job's receipt is acknowledged when its worker is done with it, whatever the outcome: a
//! failed job is counted failed, not redelivered.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::stream as js_stream;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cluster::{self, Absorbed, Cluster};
use super::leftovers;
use super::node::{self, NodeSide};
use super::protocol::{self, Control};
use super::reports;
use super::state::{
    ACKS_IN_FLIGHT, CLOSE_WAIT, Cfg, Counts, Inner, JS_TIMEOUT, Link, Settle, Settler, add, broker_time_hist,
    consumer_config, outbox_bound, stream_config,
};
use super::tasks::{admin, collect, fetch, follow_prefetch, publish, sample};
use super::{BrokerError, BrokerSpec, CONSUMER, connect};
use crate::engine::backend::{Closed, QueueCounts, Update};
use crate::engine::queue::JobQueue;
use crate::metrics::aggregate::DepthStats;
use crate::metrics::recorder::{Recorders, ShardStats};
use crate::metrics::{BrokerView, LinkView, QueueParts, Summary};
use crate::settings::{Policy, Settings};

/// At the end, the consumer is read up to this many times, this far apart, until two
/// readings agree (the server applies acknowledgements asynchronously).
const SETTLE_READS: usize = 50;
const SETTLE_GAP: Duration = Duration::from_millis(20);

pub(crate) struct BrokerQueue {
    client: async_nats::Client,
    outbox: Arc<JobQueue>,
    inbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    consumer: PullConsumer,
    settler: Arc<Settler>,
    cfg: watch::Sender<Cfg>,
    /// Stops the publisher's retries, then the fetcher, then everything.
    stop_publish: CancellationToken,
    stop_fetch: CancellationToken,
    stop_all: CancellationToken,
    tasks: Mutex<Tasks>,
    /// Jobs the publisher held when the run ended (never stored).
    unpublished: Arc<AtomicU64>,
    /// The ids of the jobs fetched here and handed back unstarted at the end (the stream
    /// still holds them).
    returned: Mutex<Vec<u64>>,
    /// The controller's view of its nodes (`None` on a node).
    cluster: Option<Arc<Cluster>>,
    node: Option<NodeSide>,
    /// The policy has been `drop-oldest` at some point of the run (the stream may have
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
    /// The controller: connects, sets up the run's stream and consumer (an earlier run's
    /// leftovers of the same name are purged), and starts its tasks on the current runtime.
    pub async fn connect(spec: &BrokerSpec, s: &Settings, epoch: Instant) -> Result<BrokerQueue, BrokerError> {
        let (client, link) = connect(spec).await?;
        let js = context(&client);
        let cfg = Cfg::of(s);
        let setup = |what: &str, e: &dyn std::fmt::Display| BrokerError::Setup {
            url: spec.url.clone(),
            what: what.to_string(),
            reason: e.to_string(),
        };
        let what = format!("stream {}", spec.stream());
        let stream = js.get_or_create_stream(stream_config(spec, cfg)).await.map_err(|e| setup(&what, &e))?;
        js.update_stream(stream_config(spec, cfg)).await.map_err(|e| setup(&what, &e))?;
        let purged = stream.purge().await.map_err(|e| setup(&what, &e))?.purged;
        if purged > 0 {
            tracing::info!("stream {}: purged {purged} jobs an earlier run of this name left", spec.stream());
        }
        let _ = stream.delete_consumer(CONSUMER).await;
        let consumer: PullConsumer =
            stream.create_consumer(consumer_config(cfg)).await.map_err(|e| setup("consumer workers", &e))?;
        let seq0 = stream.get_info().await.map_err(|e| setup(&what, &e))?.state.last_sequence;
        let cluster = Arc::new(Cluster::default());
        let how = Settle::Controller(Arc::clone(&cluster));
        let q = Self::assemble(client, link, js, spec, cfg, epoch, seq0, consumer, how);
        let q = BrokerQueue { cluster: Some(cluster), ..q };
        q.refresh_gaps();
        q.spawn_controller_tasks(stream);
        Ok(q)
    }

    /// A worker node: connects, waits for the run (its first control message), estimates the
    /// clock offset from the controller, and starts fetching.
    pub async fn join(spec: &BrokerSpec, name: &str, s: &Settings) -> Result<BrokerQueue, BrokerError> {
        let (client, link) = connect(spec).await?;
        let js = context(&client);
        let mut sub = client
            .subscribe(protocol::control_subject(&spec.run_name))
            .await
            .map_err(|e| BrokerError::Unreachable { url: spec.url.clone(), reason: e.to_string() })?;
        let first = node::first_word(&mut sub, spec).await?;
        let setup = |what: &str, e: &dyn std::fmt::Display| BrokerError::Setup {
            url: spec.url.clone(),
            what: what.to_string(),
            reason: e.to_string(),
        };
        let stream = js.get_stream(spec.stream()).await.map_err(|e| setup("stream", &e))?;
        let consumer: PullConsumer = stream.get_consumer(CONSUMER).await.map_err(|e| setup("consumer", &e))?;
        let clock = node::estimate_clock(&client, &spec.run_name).await.map_err(|e| setup("clock", &e))?;
        let (tx, control) = watch::channel(Some(first));
        let mut q = Self::assemble(
            client,
            link,
            js,
            spec,
            Cfg::of(s),
            clock.epoch,
            0,
            consumer,
            Settle::Node(Mutex::new(Vec::new())),
        );
        q.node = Some(NodeSide::new(name, clock, control));
        q.tasks.lock().unwrap_or_else(PoisonError::into_inner).fetcher = Some(tokio::spawn(fetch(
            q.consumer.clone(),
            Arc::clone(&q.inbox),
            Arc::clone(&q.inner),
            Arc::clone(&q.settler),
            q.stop_fetch.clone(),
        )));
        if let Some(side) = &q.node {
            let subject = protocol::report_subject(&spec.run_name);
            let (client, mailbox, settler) = (q.client.clone(), Arc::clone(&side.mailbox), Arc::clone(&q.settler));
            tokio::spawn(reports::send(client, subject, mailbox, settler));
        }
        tokio::spawn(node::listen_control(sub, tx, q.stop_all.clone()));
        tokio::spawn(follow_prefetch(Arc::clone(&q.inbox), q.cfg.subscribe(), q.stop_all.clone()));
        Ok(q)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        client: async_nats::Client,
        link: Arc<Link>,
        js: jetstream::Context,
        spec: &BrokerSpec,
        cfg: Cfg,
        epoch: Instant,
        seq0: u64,
        consumer: PullConsumer,
        how: Settle,
    ) -> BrokerQueue {
        let inner = Arc::new(Inner {
            spec: spec.clone(),
            js,
            epoch,
            seq0,
            counts: Counts::default(),
            link,
            streams_lost: AtomicU64::new(0),
            broker_time: broker_time_hist(),
        });
        inner.counts.last_seq.store(seq0, Ordering::Relaxed);
        BrokerQueue {
            client,
            outbox: Arc::new(JobQueue::new(outbox_bound(cfg.bound), Policy::Block)),
            inbox: Arc::new(JobQueue::relay(cfg.prefetch)),
            inner,
            consumer,
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

    fn spawn_controller_tasks(&self, stream: js_stream::Stream) {
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
            self.consumer.clone(),
            Arc::clone(&self.inbox),
            Arc::clone(&self.inner),
            Arc::clone(&self.settler),
            self.stop_fetch.clone(),
        )));
        tokio::spawn(sample(
            self.consumer.clone(),
            Arc::clone(&self.inner),
            self.cfg.subscribe(),
            self.stop_all.clone(),
        ));
        tokio::spawn(admin(
            stream,
            Arc::clone(&self.inner),
            Arc::clone(&self.inbox),
            self.cfg.subscribe(),
            self.stop_all.clone(),
        ));
        if let Some(cluster) = &self.cluster {
            let run = self.inner.spec.run_name.clone();
            tokio::spawn(cluster::listen(self.client.clone(), run.clone(), Arc::clone(cluster), self.stop_all.clone()));
            tokio::spawn(cluster::clock(self.client.clone(), run, self.inner.epoch, self.stop_all.clone()));
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
        let (client, subject) = (self.client.clone(), protocol::control_subject(&self.inner.spec.run_name));
        handle.spawn(async move {
            if let Err(e) = client.publish(subject.clone(), body.into()).await {
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
    pub fn take_pending(&self) -> Vec<(u64, jetstream::Message)> {
        self.settler.take_pending()
    }

    /// A node: posts the tick's report (see [`NodeSide::report`]).
    pub fn report(
        &self,
        handle: &Handle,
        stats: ShardStats,
        pending: Vec<(u64, jetstream::Message)>,
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
        BrokerView {
            url: self.inner.spec.url.clone(),
            stream: self.inner.spec.stream(),
            consumer: CONSUMER.to_string(),
            redelivered: c.redelivered.load(Ordering::Relaxed)
                + cluster.map_or(0, |k| k.redelivered.load(Ordering::Relaxed)),
            duplicates: cluster.map_or(0, Cluster::duplicates),
            publish_retries: c.retries.load(Ordering::Relaxed),
            ack_pending_cap: self.cfg.borrow().bound as u64,
            ack_pending_max: c.ack_pending_max.load(Ordering::Relaxed),
            time_in_broker_ms: Summary::of(&hist, u128::from(broker_ns)),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
            link: self.link_view(),
            lost_in_broker: 0,
            unaccounted: 0,
        }
    }

    fn link_view(&self) -> LinkView {
        let l = &self.inner.link;
        let down = l.down_for();
        let outage =
            down.map_or_else(|| l.last_outage_ns.load(Ordering::Relaxed) as f64 / 1e6, |d| d.as_secs_f64() * 1e3);
        LinkView {
            connected: down.is_none(),
            disconnects: l.disconnects.load(Ordering::Relaxed),
            outage_ms: outage,
            streams_lost: self.inner.streams_lost.load(Ordering::Relaxed),
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

    /// After every worker here and on the nodes is done. A controller recounts the drops from
    /// the stream's sequence (stored = first deliveries + dropped + undelivered), counts the
    /// jobs the stream still holds that never ran (see [`leftovers`]), and deletes the run's
    /// stream. Returns those jobs.
    pub async fn finish(&self) -> u64 {
        self.stop_all.cancel();
        let Some(cluster) = &self.cluster else { return 0 };
        let c = &self.inner.counts;
        // This process's acknowledgements reach the server first; the server applies them on
        // its own time, so the consumer is read until two readings agree.
        if let Err(e) = self.client.flush().await {
            tracing::warn!("could not flush the last acknowledgements: {e}");
        }
        let mut seen = None;
        for _ in 0..SETTLE_READS {
            match self.consumer.get_info().await {
                Ok(info) => {
                    let now = (info.num_pending, info.num_ack_pending as u64);
                    if seen == Some(now) {
                        break;
                    }
                    seen = Some(now);
                }
                Err(e) => tracing::warn!("could not read the consumer at the end: {e}"),
            }
            tokio::time::sleep(SETTLE_GAP).await;
        }
        let (undelivered, held) = seen.unwrap_or_default();
        let returned: HashSet<u64> =
            self.returned.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
        // A stream made again starts its sequence anew: its count says nothing of the run's
        // first. Only discard `old` drops jobs; a node lost before reporting its last deliveries
        // would otherwise make them look dropped.
        let remade = self.inner.streams_lost.load(Ordering::Relaxed) > 0;
        if self.dropping.load(Ordering::Relaxed) && !remade {
            let delivered = c.delivered.load(Ordering::Relaxed) + cluster.delivered.load(Ordering::Relaxed);
            match self.inner.js.get_stream(self.inner.spec.stream()).await {
                Ok(mut stream) => match stream.info().await {
                    Ok(info) => {
                        let stored = info.state.last_sequence.saturating_sub(self.inner.seq0);
                        let never = stored.saturating_sub(delivered).saturating_sub(undelivered);
                        let seen = c.dropped.swap(never, Ordering::Relaxed);
                        if seen != never {
                            tracing::info!("drops: {seen} seen in this process's deliveries, {never} by the stream's");
                        }
                    }
                    Err(e) => tracing::warn!("could not read the stream at the end: {e}"),
                },
                Err(e) => tracing::warn!("could not read the stream at the end: {e}"),
            }
        }
        let stream = self.inner.spec.stream();
        let counted = |id| cluster.is_finished(id) || returned.contains(&id);
        let left = match leftovers::never_run(&self.inner.js, &stream, counted).await {
            Ok(n) => n,
            Err(e) => {
                // Counts only: a job finished but never acknowledged would count here too.
                tracing::warn!("could not read what the stream {stream} holds at the end ({e}): counting it");
                undelivered + held.saturating_sub(returned.len() as u64)
            }
        };
        if let Err(e) = self.inner.js.delete_stream(&stream).await {
            tracing::warn!("could not delete the stream {stream}: {e}");
        }
        left
    }
}

/// The JetStream context of a run's process: its requests (and the consumer's, which keeps a
/// copy) give up after [`JS_TIMEOUT`], so one the server took with it when it stopped does not
/// hold a task for the client's default 10 s.
fn context(client: &async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client.clone());
    js.set_timeout(JS_TIMEOUT);
    js
}
