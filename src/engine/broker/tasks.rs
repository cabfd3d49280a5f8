//! The broker queue's tasks: publisher, acknowledgement collector, fetcher, sampler and admin
//! (see the module doc of `queue`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{PullConsumer, pull};
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::stream as js_stream;
use async_nats::jetstream::{self, AckKind, ErrorCode};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::CONSUMER;
use super::state::{
    Cfg, Inner, MAX_BACKOFF, PUBLISH_ACK_WAIT, PULL_EXPIRES, PULL_LOST, Receipt, SAMPLE_EVERY, Settler, add,
    consumer_config, stream_config,
};
use super::wire::{Wire, at, offset};
use crate::engine::queue::{Job, JobQueue};
use crate::settings::Policy;

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

pub async fn publish(
    outbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    cfg: watch::Receiver<Cfg>,
    acks: mpsc::Sender<(Job, PublishAckFuture)>,
    stop: CancellationToken,
    unpublished: Arc<AtomicU64>,
) {
    let never = AtomicBool::new(false);
    let subject = async_nats::Subject::from(inner.spec.subject());
    while let Some((job, _)) = outbox.pop(&never).await {
        inner.counts.publishing.store(1, Ordering::Relaxed);
        publish_one(&inner, &subject, &cfg, &acks, &stop, &unpublished, job).await;
        inner.counts.publishing.store(0, Ordering::Relaxed);
    }
}

/// Publishes one job: under `block` until the stream stores it (or the run stops), otherwise
/// once, its acknowledgement handed to the collector.
async fn publish_one(
    inner: &Inner,
    subject: &async_nats::Subject,
    cfg: &watch::Receiver<Cfg>,
    acks: &mpsc::Sender<(Job, PublishAckFuture)>,
    stop: &CancellationToken,
    unpublished: &AtomicU64,
    job: Job,
) {
    let epoch = inner.epoch;
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
        let why = match inner.js.publish(subject.clone(), payload).await {
            Err(e) if block => e.to_string(),
            Err(e) => {
                failed(inner, &job, &e);
                return;
            }
            Ok(ack) if !block => {
                if let Err(mpsc::error::SendError((job, _))) = acks.send((job, ack)).await {
                    failed(inner, &job, &"the acknowledgement reader has stopped");
                }
                return;
            }
            Ok(ack) => match acked(ack).await {
                Ok(()) => {
                    add(&inner.counts.stored, 1);
                    return;
                }
                // Under `block` a job is never refused: a full stream, or a broker away (its
                // stream being made again), is waited out; the outbox fills and the
                // producer's lag shows.
                Err(e) if is_full(&e) => String::new(),
                Err(e) => e.to_string(),
            },
        };
        add(&inner.counts.retries, 1);
        if !why.is_empty() {
            add(&inner.counts.publish_errors, 1);
            tracing::debug!("publishing job {} again: {why}", job.id);
        }
        tokio::select! {
            () = stop.cancelled() => {
                unpublished.fetch_add(1, Ordering::Relaxed);
                job.release();
                return;
            }
            () = tokio::time::sleep(backoff) => {
                backoff = (backoff * 2).min(if why.is_empty() { MAX_BACKOFF } else { PULL_EXPIRES });
            }
        }
    }
}

/// A publish's acknowledgement, or an error after [`PUBLISH_ACK_WAIT`]: a publish in flight when
/// the server went away is never answered, and the client's own 5 s would hold the queue.
async fn acked(ack: PublishAckFuture) -> Result<(), PublishError> {
    match tokio::time::timeout(PUBLISH_ACK_WAIT, ack.into_future()).await {
        Ok(r) => r.map(drop),
        Err(_) => Err(PublishError::new(async_nats::jetstream::context::PublishErrorKind::TimedOut)),
    }
}

pub async fn collect(inner: Arc<Inner>, mut acks: mpsc::Receiver<(Job, PublishAckFuture)>) {
    while let Some((job, ack)) = acks.recv().await {
        match acked(ack).await {
            Ok(()) => add(&inner.counts.stored, 1),
            Err(e) if is_full(&e) => {
                add(&inner.counts.rejected, 1);
                job.release();
            }
            Err(e) => failed(&inner, &job, &e),
        }
    }
}

pub async fn fetch(
    consumer: PullConsumer,
    inbox: Arc<JobQueue>,
    inner: Arc<Inner>,
    settler: Arc<Settler>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        // With no workers here, jobs pulled would only wait for other processes' workers.
        if inner.counts.local_workers.load(Ordering::Relaxed) == 0 {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(PULL_EXPIRES / 4) => continue,
            }
        }
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
        // One the server lost (it went away) is given up after PULL_LOST, where the client would
        // wait 5 s more.
        let lost = tokio::time::sleep(PULL_LOST);
        tokio::pin!(lost);
        loop {
            let m = tokio::select! {
                m = batch.next() => m,
                () = &mut lost => {
                    tracing::debug!("a pull request not ended by the server: pulling again");
                    break;
                }
            };
            match m {
                Some(Ok(m)) => take(&inner, &settler, &inbox, m).await,
                Some(Err(e)) => {
                    tracing::debug!("pull request ended: {e}");
                    break;
                }
                None => break,
            }
        }
    }
}

/// Takes one delivered message into the inbox, counting first deliveries, redeliveries and the
/// jobs the stream discarded before this one.
async fn take(inner: &Inner, settler: &Arc<Settler>, inbox: &JobQueue, m: jetstream::Message) {
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
        if seq > 0 {
            let last = c.last_seq.swap(seq, Ordering::Relaxed);
            // A first delivery at or below the last one's sequence is from a stream made again.
            let from = if seq <= last { 0 } else { last };
            if seq > from + 1 && c.gaps_are_drops.load(Ordering::Relaxed) {
                add(&c.dropped, seq - from - 1);
            }
        }
    } else {
        add(&c.redelivered, 1);
    }
    let epoch = inner.epoch;
    let published = at(epoch, w.published_ns);
    let in_broker = Instant::now().saturating_duration_since(published);
    crate::metrics::hist::record(&mut inner.broker_time.lock().unwrap_or_else(PoisonError::into_inner), in_broker);
    add(&c.broker_time_ns, u64::try_from(in_broker.as_nanos()).unwrap_or(u64::MAX));
    let job = Job {
        id: w.id,
        intended: at(epoch, w.intended_ns),
        enqueued: at(epoch, w.enqueued_ns),
        service: Duration::from_nanos(w.service_ns),
        done: None,
        receipt: Some(Receipt::new(m, w.id, settler)),
    };
    inbox.push_as(job, Some(Policy::Block)).await;
}

pub async fn sample(consumer: PullConsumer, inner: Arc<Inner>, cfg: watch::Receiver<Cfg>, stop: CancellationToken) {
    let c = &inner.counts;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
        match consumer.get_info().await {
            Ok(info) => {
                let held = info.num_ack_pending as u64;
                c.ack_pending_max.fetch_max(held, Ordering::Relaxed);
                let n = info.num_pending;
                c.pending.store(n, Ordering::Relaxed);
                add(&c.pending_sum, n);
                // One reading's two counts: the stream's holding at one instant.
                let stored = n + held;
                c.stored_now.store(stored, Ordering::Relaxed);
                add(&c.stored_sum, stored);
                c.stored_max.fetch_max(stored, Ordering::Relaxed);
                add(&c.pending_samples, 1);
            }
            Err(e) => {
                tracing::debug!("could not read the consumer: {e}");
                let now = *cfg.borrow();
                if inner.link.down_for().is_none() {
                    recover(&inner, now).await;
                }
            }
        }
    }
}

/// The controller, when the consumer cannot be read on a live connection: a server restarted
/// with memory storage has lost the run's stream and consumer, so both are made again (the
/// stream's loss counted; what it held is counted lost at the end). A consumer gone on its own is
/// made again too. Anything else (the server still starting JetStream) waits for the next sample.
async fn recover(inner: &Inner, cfg: Cfg) {
    use async_nats::jetstream::context::GetStreamErrorKind;
    let name = inner.spec.stream();
    let stream = match inner.js.get_stream(&name).await {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) => {
            match inner.js.create_stream(stream_config(&inner.spec, cfg)).await {
                Ok(s) => {
                    add(&inner.streams_lost, 1);
                    tracing::warn!("stream {name} was gone with the server's memory: made again");
                    s
                }
                Err(e) => return tracing::warn!("stream {name} is gone and could not be made again: {e}"),
            }
        }
        Err(_) => return,
    };
    if stream.get_consumer::<pull::Config>(CONSUMER).await.is_err() {
        match stream.create_consumer(consumer_config(cfg)).await {
            Ok(_) => tracing::warn!("consumer {CONSUMER} of {name} was gone: made again"),
            Err(e) => tracing::warn!("consumer {CONSUMER} of {name} could not be made again: {e}"),
        }
    }
}

pub async fn admin(
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

/// A node's part of [`admin`]: the stream and the consumer are the controller's to change; the
/// inbox (`prefetch`) is the node's own.
pub async fn follow_prefetch(inbox: Arc<JobQueue>, mut cfg: watch::Receiver<Cfg>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = cfg.changed() => if r.is_err() { return },
        }
        inbox.set_bound(cfg.borrow_and_update().prefetch);
    }
}
