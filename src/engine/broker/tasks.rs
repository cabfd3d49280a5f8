//! The broker queue's tasks: publisher, acknowledgement collector, fetcher, sampler and admin
//! (see the module doc of `queue`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::stream as js_stream;
use async_nats::jetstream::{self, AckKind, ErrorCode};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::CONSUMER;
use super::state::{
    Cfg, Inner, MAX_BACKOFF, PULL_EXPIRES, Receipt, SAMPLE_EVERY, Settler, add, consumer_config, stream_config,
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

pub async fn collect(inner: Arc<Inner>, mut acks: mpsc::Receiver<(Job, PublishAckFuture)>) {
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
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => take(&inner, &settler, &inbox, m).await,
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
        let last = c.last_seq.fetch_max(seq, Ordering::Relaxed);
        if seq > last + 1 {
            add(&c.dropped, seq - last - 1);
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

pub async fn sample(consumer: PullConsumer, inner: Arc<Inner>, stop: CancellationToken) {
    let c = &inner.counts;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
        if let Ok(info) = consumer.get_info().await {
            c.ack_pending_max.fetch_max(info.num_ack_pending as u64, Ordering::Relaxed);
            let n = info.num_pending;
            c.pending.store(n, Ordering::Relaxed);
            add(&c.pending_sum, n);
            add(&c.pending_samples, 1);
            c.pending_max.fetch_max(n, Ordering::Relaxed);
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
