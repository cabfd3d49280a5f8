//! The broker queue's tasks: publisher, acknowledgement collector, fetcher, sampler and admin
//! (see the module doc of `queue`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::adapter::{Confirm, Delivery, Published, Shared};
use super::state::{
    Cfg, Inner, MAX_BACKOFF, PUBLISH_ACK_WAIT, PUBLISH_WINDOW, PULL_EXPIRES, PULL_LOST, Receipt, SAMPLE_EVERY, Settler,
    add, outbox_bound,
};
use super::wire::{Wire, at, offset};
use crate::engine::queue::{Job, JobQueue};
use crate::settings::Policy;

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
    acks: mpsc::Sender<(Job, Confirm)>,
    stop: CancellationToken,
    unpublished: Arc<AtomicU64>,
) {
    let never = AtomicBool::new(false);
    let p = Publisher {
        inner: &inner,
        cfg: &cfg,
        acks: &acks,
        stop: &stop,
        unpublished: &unpublished,
        retrying: AtomicU64::new(0),
        turn: tokio::sync::Mutex::new(()),
        room_seen: AtomicBool::new(false),
    };
    // Publishes in flight, each awaiting its answer (under `block`) or handing it to the
    // collector: at most the bound of them (and `PUBLISH_WINDOW`), so that what waits between the
    // producer and the broker is at most the outbox's bound and as many being published. While
    // one waits out a full queue no further job is taken: the outbox fills and holds the
    // producer.
    let mut flight = FuturesUnordered::new();
    loop {
        let window = PUBLISH_WINDOW.min(outbox_bound(cfg.borrow().bound));
        let room = flight.len() < window && p.retrying.load(Ordering::Relaxed) == 0;
        tokio::select! {
            biased;
            Some(()) = flight.next(), if !flight.is_empty() => {}
            next = outbox.pop(&never), if room => match next {
                Some((job, _)) => flight.push(p.publish_one(job)),
                None => break,
            },
        }
    }
    while flight.next().await.is_some() {}
}

/// What the publisher's jobs in flight share.
struct Publisher<'a> {
    inner: &'a Inner,
    cfg: &'a watch::Receiver<Cfg>,
    acks: &'a mpsc::Sender<(Job, Confirm)>,
    stop: &'a CancellationToken,
    unpublished: &'a AtomicU64,
    /// Jobs refused at least once and not yet stored (`block`).
    retrying: AtomicU64,
    /// Held by the job whose turn it is to try again: refused jobs are retried one at a time,
    /// in the order they were refused (the lock is fair), so a full queue is asked once per
    /// backoff rather than once per job, and the jobs keep their order.
    turn: tokio::sync::Mutex<()>,
    /// Set when a retried job is stored, taken by the next job to get its turn: the queue had
    /// room a moment ago, so that job tries at once instead of sleeping its backoff first.
    /// Without it, a queue held at its bound took one job per backoff (200 µs: about 5,000
    /// jobs/s whatever the pool drained), with it one per publish round trip.
    room_seen: AtomicBool,
}

impl Publisher<'_> {
    /// Publishes one job: under `block` until the broker stores it (or the run stops),
    /// otherwise once, its acknowledgement handed to the collector. Until it is sent, and
    /// while it waits to be tried again, it is counted in `publishing`: a place a job waits.
    /// (Sent and not yet answered, it is in transit through the broker, which the job's time in
    /// the broker measures, and in no count: counted here it would be counted twice once
    /// stored.)
    async fn publish_one(&self, job: Job) {
        let publishing = &self.inner.counts.publishing;
        publishing.fetch_add(1, Ordering::Relaxed);
        let mut held = true;
        let mut refused = false;
        self.tries(job, &mut held, &mut refused).await;
        if refused {
            self.retrying.fetch_sub(1, Ordering::Relaxed);
        }
        if held {
            publishing.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn tries(&self, job: Job, held: &mut bool, refused: &mut bool) {
        let publishing = &self.inner.counts.publishing;
        let inner = self.inner;
        let epoch = inner.epoch;
        let mut backoff = Duration::from_micros(200);
        let mut turn = None;
        loop {
            let w = Wire {
                id: job.id,
                intended_ns: offset(epoch, job.intended),
                enqueued_ns: offset(epoch, job.enqueued),
                service_ns: u64::try_from(job.service.as_nanos()).unwrap_or(u64::MAX),
                published_ns: offset(epoch, Instant::now()),
            };
            let now = *self.cfg.borrow();
            let block = now.policy == Policy::Block;
            let why = match inner.broker.publish(w.encode().to_vec(), now).await {
                Err(e) if block => e,
                Err(e) => {
                    failed(inner, &job, &e);
                    return;
                }
                Ok(ack) if !block => {
                    if let Err(mpsc::error::SendError((job, _))) = self.acks.send((job, ack)).await {
                        failed(inner, &job, &"the acknowledgement reader has stopped");
                    }
                    return;
                }
                Ok(ack) => {
                    // Sent: in transit until answered (see `publish_one`).
                    *held = false;
                    publishing.fetch_sub(1, Ordering::Relaxed);
                    match acked(ack).await {
                        Published::Stored { dropped } => {
                            stored(inner, dropped);
                            if *refused {
                                self.room_seen.store(true, Ordering::Relaxed);
                            }
                            return;
                        }
                        // Under `block` a job is never refused: a full queue, or a broker away
                        // (its queue being made again), is waited out; the outbox fills and the
                        // producer's lag shows.
                        Published::Full => String::new(),
                        Published::Failed(e) => e,
                    }
                }
            };
            add(&inner.counts.retries, 1);
            if !*held {
                *held = true;
                publishing.fetch_add(1, Ordering::Relaxed);
            }
            if !*refused {
                *refused = true;
                self.retrying.fetch_add(1, Ordering::Relaxed);
            }
            if !why.is_empty() {
                add(&inner.counts.publish_errors, 1);
                tracing::debug!("publishing job {} again: {why}", job.id);
            }
            let wait = async {
                if turn.is_none() {
                    turn = Some(self.turn.lock().await);
                    if self.room_seen.swap(false, Ordering::Relaxed) {
                        return;
                    }
                }
                tokio::time::sleep(backoff).await;
            };
            tokio::select! {
                () = self.stop.cancelled() => {
                    self.unpublished.fetch_add(1, Ordering::Relaxed);
                    job.release();
                    return;
                }
                () = wait => {
                    backoff = (backoff * 2).min(if why.is_empty() { MAX_BACKOFF } else { PULL_EXPIRES });
                }
            }
        }
    }
}

/// A publish's answer, or a failure after [`PUBLISH_ACK_WAIT`]: a publish in flight when the
/// server went away is never answered, and a client's own wait would hold the queue.
async fn acked(ack: Confirm) -> Published {
    tokio::time::timeout(PUBLISH_ACK_WAIT, ack)
        .await
        .unwrap_or_else(|_| Published::Failed(format!("no answer within {PUBLISH_ACK_WAIT:?}")))
}

/// A job stored, and the jobs the broker discarded for it (as the adapter learnt at publish).
fn stored(inner: &Inner, dropped: u64) {
    add(&inner.counts.stored, 1);
    add(&inner.counts.dropped, dropped);
}

pub async fn collect(inner: Arc<Inner>, mut acks: mpsc::Receiver<(Job, Confirm)>) {
    while let Some((job, ack)) = acks.recv().await {
        match acked(ack).await {
            Published::Stored { dropped } => stored(&inner, dropped),
            Published::Full => {
                add(&inner.counts.rejected, 1);
                job.release();
            }
            Published::Failed(e) => failed(&inner, &job, &e),
        }
    }
}

pub async fn fetch(inbox: Arc<JobQueue>, inner: Arc<Inner>, settler: Arc<Settler>, stop: CancellationToken) {
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
        let mut batch = match inner.broker.fetch(room, PULL_EXPIRES).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("pulling jobs failed: {e}");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(PULL_EXPIRES) => continue,
                }
            }
        };
        // A request ends by itself within PULL_EXPIRES: whatever it delivered is taken in. One
        // the server lost (it went away) is given up after PULL_LOST, where a client might wait
        // much longer.
        let lost = tokio::time::sleep(PULL_LOST);
        tokio::pin!(lost);
        loop {
            let d = tokio::select! {
                d = batch.next() => d,
                () = &mut lost => {
                    tracing::debug!("a pull request not ended by the server: pulling again");
                    break;
                }
            };
            match d {
                Some(d) => take(&inner, &settler, &inbox, d).await,
                None => break,
            }
        }
    }
}

/// Takes one delivered message into the inbox, counting first deliveries, redeliveries and the
/// jobs the broker discarded before this one.
async fn take(inner: &Inner, settler: &Arc<Settler>, inbox: &JobQueue, d: Delivery) {
    let c = &inner.counts;
    let w = match Wire::decode(&d.payload) {
        Ok(w) => w,
        Err(e) => {
            add(&c.malformed, 1);
            tracing::warn!("queue {}: a message that is not a job: {e}", inner.broker.names().0);
            let _ = d.ack.discard().await;
            return;
        }
    };
    if d.redelivered {
        add(&c.redelivered, 1);
    } else {
        add(&c.delivered, 1);
        if let Some(seq) = d.seq {
            let last = c.last_seq.swap(seq, Ordering::Relaxed);
            // A first delivery at or below the last one's place is from a queue made again.
            let from = if seq <= last { 0 } else { last };
            if seq > from + 1 && c.gaps_are_drops.load(Ordering::Relaxed) {
                add(&c.dropped, seq - from - 1);
            }
        }
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
        receipt: Some(Receipt::new(d.ack, w.id, settler)),
    };
    inbox.push_as(job, Some(Policy::Block)).await;
}

pub async fn sample(inner: Arc<Inner>, cfg: watch::Receiver<Cfg>, stop: CancellationToken) {
    let c = &inner.counts;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
        match inner.broker.holding().await {
            Ok(h) => {
                let held = h.unacked;
                c.ack_pending_max.fetch_max(held, Ordering::Relaxed);
                let n = h.undelivered;
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
                tracing::debug!("could not read the queue: {e}");
                let now = *cfg.borrow();
                if inner.broker.link().down_for().is_none() {
                    match inner.broker.recover(now).await {
                        Ok(true) => add(&inner.streams_lost, 1),
                        Ok(false) => {}
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            }
        }
    }
}

pub async fn admin(inner: Arc<Inner>, inbox: Arc<JobQueue>, mut cfg: watch::Receiver<Cfg>, stop: CancellationToken) {
    let mut was = *cfg.borrow_and_update();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = cfg.changed() => if r.is_err() { return },
        }
        let c = *cfg.borrow_and_update();
        inbox.set_bound(c.prefetch);
        if let Err(e) = inner.broker.apply(was, c).await {
            tracing::warn!("{e}");
        }
        was = c;
    }
}

/// A node's part of [`admin`]: the stream and the consumer are the controller's to change; the
/// inbox (`prefetch`) and what the broker pushes to this process are the node's own.
pub async fn follow_prefetch(
    inbox: Arc<JobQueue>,
    broker: Shared,
    mut cfg: watch::Receiver<Cfg>,
    stop: CancellationToken,
) {
    let mut was = *cfg.borrow_and_update();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = cfg.changed() => if r.is_err() { return },
        }
        let now = *cfg.borrow_and_update();
        inbox.set_bound(now.prefetch);
        broker.follow(was, now);
        was = now;
    }
}
