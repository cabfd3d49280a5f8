//! The broker queue: outbox → publisher → the run's stream → fetcher → inbox, and its counts.
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
//! - **Sampler** (a task): reads the consumer's undelivered count every [`SAMPLE_EVERY`].
//! - **Admin** (a task): applies bound, policy, `prefetch` and `ack_wait` changes to the
//!   stream, the consumer and the inbox.
//!
//! A job's receipt is acknowledged when its worker is done with it, whatever the outcome: a
//! failed job is counted failed, not redelivered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::stream::{self as js_stream, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, ErrorCode};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::wire::{Wire, at, offset};
use super::{BrokerError, BrokerSpec, CONSUMER, connect};
use crate::engine::backend::{Closed, QueueCounts};
use crate::engine::queue::{Job, JobQueue};
use crate::metrics::aggregate::DepthStats;
use crate::settings::{Policy, Settings};

/// Jobs the outbox holds before the producer waits for the publisher.
const OUTBOX: usize = 1024;
/// Publishes whose acknowledgements may be outstanding at once under `reject`/`drop-oldest`.
const ACKS_IN_FLIGHT: usize = 1024;
/// How long one pull request waits for jobs before the fetcher asks again.
const PULL_EXPIRES: Duration = Duration::from_millis(100);
/// How often the consumer's undelivered count is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// The longest wait between two tries of a publish the stream refused under `block`.
const MAX_BACKOFF: Duration = Duration::from_millis(20);
/// How long closing waits for each task.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The knobs the broker applies.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cfg {
    bound: usize,
    policy: Policy,
    prefetch: usize,
    ack_wait: Duration,
}

impl Cfg {
    fn of(s: &Settings) -> Cfg {
        Cfg { bound: s.queue, policy: s.policy, prefetch: s.prefetch, ack_wait: s.ack_wait }
    }
}

fn stream_config(spec: &BrokerSpec, c: Cfg) -> js_stream::Config {
    js_stream::Config {
        name: spec.stream(),
        subjects: vec![spec.subject()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::Memory,
        max_messages: i64::try_from(c.bound).unwrap_or(i64::MAX),
        discard: if c.policy == Policy::DropOldest { DiscardPolicy::Old } else { DiscardPolicy::New },
        num_replicas: 1,
        ..Default::default()
    }
}

fn consumer_config(c: Cfg) -> pull::Config {
    pull::Config {
        durable_name: Some(CONSUMER.to_string()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: c.ack_wait,
        max_ack_pending: i64::try_from(c.bound).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// Counters, written by the tasks and read each tick.
#[derive(Default)]
struct Counts {
    /// Publishes the stream stored.
    stored: AtomicU64,
    rejected: AtomicU64,
    /// Publishes that failed for another reason than a full stream (counted rejected too).
    publish_errors: AtomicU64,
    retries: AtomicU64,
    /// First deliveries, and redeliveries.
    delivered: AtomicU64,
    redelivered: AtomicU64,
    dropped: AtomicU64,
    /// The stream sequence of the latest first delivery.
    last_seq: AtomicU64,
    /// Messages that were not pooltune jobs of this version (terminated, not run).
    malformed: AtomicU64,
    /// The undelivered jobs at the latest sample, and the samples since the last tick.
    pending: AtomicU64,
    pending_sum: AtomicU64,
    pending_samples: AtomicU64,
    pending_max: AtomicU64,
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

struct Inner {
    spec: BrokerSpec,
    js: jetstream::Context,
    /// Time 0 of the run's messages.
    epoch: Instant,
    /// The stream's last sequence before this run's first job.
    seq0: u64,
    counts: Counts,
}

/// A delivered job's message, acknowledged when the job is done.
#[derive(Debug, Clone)]
pub struct Receipt(Box<(jetstream::Message, Arc<AckErrors>)>);

/// Where failed acknowledgements are counted.
#[derive(Debug, Default)]
pub struct AckErrors(AtomicU64);

impl Receipt {
    /// Acknowledges the job: the stream forgets it and it is not redelivered.
    pub async fn settle(self) {
        let (msg, errors) = *self.0;
        if let Err(e) = msg.ack().await {
            errors.0.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("acknowledging a job failed: {e}");
        }
    }
}

pub(crate) struct BrokerQueue {
    outbox: Arc<JobQueue>,
    inbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    consumer: PullConsumer,
    ack_errors: Arc<AckErrors>,
    cfg: watch::Sender<Cfg>,
    /// Stops the publisher's retries, then the fetcher, then everything.
    stop_publish: CancellationToken,
    stop_fetch: CancellationToken,
    stop_all: CancellationToken,
    tasks: Mutex<Tasks>,
    /// Jobs the publisher held when the run ended (never stored).
    unpublished: Arc<AtomicU64>,
}

#[derive(Default)]
struct Tasks {
    publisher: Option<JoinHandle<()>>,
    collector: Option<JoinHandle<()>>,
    fetcher: Option<JoinHandle<()>>,
}

impl BrokerQueue {
    /// Connects, sets up the run's stream and consumer (an earlier run's leftovers of the same
    /// name are purged), and starts the tasks on the current runtime.
    pub async fn connect(spec: &BrokerSpec, s: &Settings, epoch: Instant) -> Result<BrokerQueue, BrokerError> {
        let client = connect(spec).await?;
        let js = jetstream::new(client);
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
        let inner = Arc::new(Inner { spec: spec.clone(), js, epoch, seq0, counts: Counts::default() });
        inner.counts.last_seq.store(seq0, Ordering::Relaxed);
        let q = BrokerQueue {
            outbox: Arc::new(JobQueue::new(OUTBOX, Policy::Block)),
            inbox: Arc::new(JobQueue::relay(cfg.prefetch)),
            inner,
            consumer,
            ack_errors: Arc::default(),
            cfg: watch::channel(cfg).0,
            stop_publish: CancellationToken::new(),
            stop_fetch: CancellationToken::new(),
            stop_all: CancellationToken::new(),
            tasks: Mutex::default(),
            unpublished: Arc::default(),
        };
        q.spawn_tasks(stream);
        Ok(q)
    }

    fn spawn_tasks(&self, stream: js_stream::Stream) {
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
            Arc::clone(&self.ack_errors),
            self.stop_fetch.clone(),
        )));
        tokio::spawn(sample(self.consumer.clone(), Arc::clone(&self.inner), self.stop_all.clone()));
        tokio::spawn(admin(
            stream,
            Arc::clone(&self.inner),
            Arc::clone(&self.inbox),
            self.cfg.subscribe(),
            self.stop_all.clone(),
        ));
    }

    pub fn outbox(&self) -> &JobQueue {
        &self.outbox
    }

    pub fn inbox(&self) -> &JobQueue {
        &self.inbox
    }

    pub fn configure(&self, s: &Settings) {
        let c = Cfg::of(s);
        self.cfg.send_if_modified(|old| std::mem::replace(old, c) != c);
    }

    pub fn counts(&self) -> QueueCounts {
        let c = &self.inner.counts;
        QueueCounts { rejected: c.rejected.load(Ordering::Relaxed), dropped: c.dropped.load(Ordering::Relaxed) }
    }

    /// Jobs waiting anywhere before a worker: the outbox, the stream (sampled: its mean is the
    /// mean of the samples) and the inbox. The maximum is the sum of the three maxima, an upper
    /// bound. The arrivals' gaps are the outbox's (where the producer puts them).
    pub fn take_depth_stats(&self) -> DepthStats {
        let out = self.outbox.take_depth_stats();
        let inb = self.inbox.take_depth_stats();
        let c = &self.inner.counts;
        let now = c.pending.load(Ordering::Relaxed);
        let n = c.pending_samples.swap(0, Ordering::Relaxed);
        let sum = c.pending_sum.swap(0, Ordering::Relaxed);
        let max = c.pending_max.swap(now, Ordering::Relaxed).max(now);
        let mean = if n == 0 { now as f64 } else { sum as f64 / n as f64 };
        let now = usize::try_from(now).unwrap_or(usize::MAX);
        DepthStats {
            now: out.now + now + inb.now,
            mean: out.mean + mean + inb.mean,
            max: out.max + usize::try_from(max).unwrap_or(usize::MAX) + inb.max,
            enqueue_gaps: out.enqueue_gaps,
        }
    }

    /// Ends publishing and fetching. Jobs never published, and jobs fetched but never started,
    /// are handed back; jobs still undelivered in the stream are counted. The drops are then
    /// recounted from the stream's sequence: stored = delivered + dropped + undelivered.
    pub async fn close(&self) -> Closed {
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
        left.extend(self.inbox.close());
        let c = &self.inner.counts;
        let mut undelivered = self.unpublished.load(Ordering::Relaxed);
        match self.consumer.get_info().await {
            Ok(info) => undelivered += info.num_pending,
            Err(e) => tracing::warn!("could not read the consumer at the end: {e}"),
        }
        match self.inner.js.get_stream(self.inner.spec.stream()).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => {
                    let stored = info.state.last_sequence.saturating_sub(self.inner.seq0);
                    let never = stored
                        .saturating_sub(c.delivered.load(Ordering::Relaxed))
                        .saturating_sub(undelivered - self.unpublished.load(Ordering::Relaxed));
                    let seen = c.dropped.swap(never, Ordering::Relaxed);
                    if seen != never {
                        tracing::warn!("drops: {seen} seen in the delivery order, {never} by the stream's count");
                    }
                }
                Err(e) => tracing::warn!("could not read the stream at the end: {e}"),
            },
            Err(e) => tracing::warn!("could not read the stream at the end: {e}"),
        }
        Closed { left, left_in_broker: undelivered }
    }

    /// Deletes the run's stream (and with it the consumer) and stops the remaining tasks.
    pub async fn finish(&self) {
        self.stop_all.cancel();
        if let Err(e) = self.inner.js.delete_stream(self.inner.spec.stream()).await {
            tracing::warn!("could not delete the stream {}: {e}", self.inner.spec.stream());
        }
    }
}

/// Whether a publish was refused because the stream is full (discard `new`).
fn is_full(e: &PublishError) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|j| j.error_code() == ErrorCode::STREAM_STORE_FAILED)
}

/// Counts a publish that failed for another reason than a full stream: the job is refused.
fn failed(inner: &Inner, job: &Job, e: &dyn std::fmt::Display) {
    add(&inner.counts.rejected, 1);
    add(&inner.counts.publish_errors, 1);
    tracing::warn!("publishing job {} failed: {e}", job.id);
    job.release();
}

async fn publish(
    outbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    cfg: watch::Receiver<Cfg>,
    acks: mpsc::Sender<(Job, PublishAckFuture)>,
    stop: CancellationToken,
    unpublished: Arc<AtomicU64>,
) {
    let never = AtomicBool::new(false);
    let subject = async_nats::Subject::from(inner.spec.subject());
    let epoch = inner.epoch;
    while let Some((job, _)) = outbox.pop(&never).await {
        let mut backoff = Duration::from_micros(200);
        loop {
            let w = Wire {
                id: job.id,
                intended_ns: offset(epoch, job.intended),
                enqueued_ns: offset(epoch, job.enqueued),
                service_ns: u64::try_from(job.service.as_nanos()).unwrap_or(u64::MAX),
                published_ns: offset(epoch, Instant::now()),
            };
            let payload = bytes::Bytes::copy_from_slice(&w.encode());
            let block = cfg.borrow().policy == Policy::Block;
            match inner.js.publish(subject.clone(), payload).await {
                Err(e) => failed(&inner, &job, &e),
                Ok(ack) if !block => {
                    if let Err(mpsc::error::SendError((job, _))) = acks.send((job, ack)).await {
                        failed(&inner, &job, &"the acknowledgement reader has stopped");
                    }
                }
                Ok(ack) => match ack.await {
                    Ok(_) => add(&inner.counts.stored, 1),
                    Err(e) if is_full(&e) => {
                        add(&inner.counts.retries, 1);
                        tokio::select! {
                            () = stop.cancelled() => {
                                unpublished.fetch_add(1, Ordering::Relaxed);
                                job.release();
                            }
                            () = tokio::time::sleep(backoff) => {
                                backoff = (backoff * 2).min(MAX_BACKOFF);
                                continue;
                            }
                        }
                    }
                    Err(e) => failed(&inner, &job, &e),
                },
            }
            break;
        }
    }
}

async fn collect(inner: Arc<Inner>, mut acks: mpsc::Receiver<(Job, PublishAckFuture)>) {
    while let Some((job, ack)) = acks.recv().await {
        match ack.await {
            Ok(_) => add(&inner.counts.stored, 1),
            Err(e) if is_full(&e) => {
                add(&inner.counts.rejected, 1);
                job.release();
            }
            Err(e) => failed(&inner, &job, &e),
        }
    }
}

async fn fetch(
    consumer: PullConsumer,
    inbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    ack_errors: Arc<AckErrors>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let room = inbox.room();
        if room == 0 {
            tokio::select! {
                () = stop.cancelled() => break,
                () = inbox.wait_refill() => continue,
            }
        }
        let mut batch = match consumer.batch().max_messages(room).expires(PULL_EXPIRES).messages().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("pulling jobs failed: {e}");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(PULL_EXPIRES) => continue,
                }
            }
        };
        // A pull request ends by itself within PULL_EXPIRES: whatever it delivered is taken in.
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => take(&inner, &ack_errors, &inbox, m).await,
                Err(e) => {
                    tracing::debug!("pull request ended: {e}");
                    break;
                }
            }
        }
    }
}

/// Takes one delivered message into the inbox, counting first deliveries, redeliveries and the
/// jobs the stream discarded before this one.
async fn take(inner: &Inner, ack_errors: &Arc<AckErrors>, inbox: &JobQueue, m: jetstream::Message) {
    let c = &inner.counts;
    let (seq, delivered) = match m.info() {
        Ok(i) => (i.stream_sequence, i.delivered),
        Err(_) => (0, 1),
    };
    let w = match Wire::decode(&m.payload) {
        Ok(w) => w,
        Err(e) => {
            add(&c.malformed, 1);
            tracing::warn!("stream {}: a message that is not a job: {e}", inner.spec.stream());
            let _ = m.ack_with(AckKind::Term).await;
            return;
        }
    };
    if delivered <= 1 {
        add(&c.delivered, 1);
        let last = c.last_seq.fetch_max(seq, Ordering::Relaxed);
        if seq > last + 1 {
            add(&c.dropped, seq - last - 1);
        }
    } else {
        add(&c.redelivered, 1);
    }
    let epoch = inner.epoch;
    let job = Job {
        id: w.id,
        intended: at(epoch, w.intended_ns),
        enqueued: at(epoch, w.enqueued_ns),
        service: Duration::from_nanos(w.service_ns),
        done: None,
        receipt: Some(Receipt(Box::new((m, Arc::clone(ack_errors))))),
    };
    inbox.push_as(job, Some(Policy::Block)).await;
}

async fn sample(consumer: PullConsumer, inner: Arc<Inner>, stop: CancellationToken) {
    let c = &inner.counts;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
        if let Ok(info) = consumer.get_info().await {
            let n = info.num_pending;
            c.pending.store(n, Ordering::Relaxed);
            add(&c.pending_sum, n);
            add(&c.pending_samples, 1);
            c.pending_max.fetch_max(n, Ordering::Relaxed);
        }
    }
}

async fn admin(
    stream: js_stream::Stream,
    inner: Arc<Inner>,
    inbox: Arc<JobQueue>,
    mut cfg: watch::Receiver<Cfg>,
    stop: CancellationToken,
) {
    let mut was = *cfg.borrow_and_update();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = cfg.changed() => if r.is_err() { return },
        }
        let c = *cfg.borrow_and_update();
        inbox.set_bound(c.prefetch);
        if (c.bound, c.policy) != (was.bound, was.policy)
            && let Err(e) = inner.js.update_stream(stream_config(&inner.spec, c)).await
        {
            tracing::warn!("stream {}: could not apply bound {} / {}: {e}", inner.spec.stream(), c.bound, c.policy);
        }
        if (c.bound, c.ack_wait) != (was.bound, was.ack_wait)
            && let Err(e) = stream.create_consumer(consumer_config(c)).await
        {
            tracing::warn!("consumer {CONSUMER}: could not apply ack_wait/bound: {e}");
        }
        was = c;
    }
}
